"""GridNavi and its variants (PAPER_SPEC section 4): a 5x5 grid, goal hidden in one of 21 cells.

The agent starts at (0, 0). The goal is uniform over the 21 cells outside the 2x2 block
{0, 1} x {0, 1} at the start. Actions: 0 noop, 1 up (y+1), 2 right (x+1), 3 down (y-1),
4 left (x-1); moves off the grid leave the agent where it is. 15 steps per episode, 4 episodes
per trial, no termination at the goal.

Rewards per step (after the move):
    GridNavi       +1 on the goal, -0.1 elsewhere
    GridNavi-Dense +1 on the goal, -(L1 distance to goal) / 5 elsewhere
    GridNavi-Show  as GridNavi, and the observation shows the goal (gx, gy) instead of (x, y)
                   whenever the agent is on the start cell after a step.
Observation: float32 (2,) = (x, y) (or the goal, see Show). Task descriptor: goal (gx, gy).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

GRID_SIZE = 5
START = (0, 0)
GOAL_CELLS = tuple((x, y) for x in range(GRID_SIZE) for y in range(GRID_SIZE) if not (x < 2 and y < 2))
MOVES = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0))
VARIANTS = ("sparse", "dense", "show")


class GridNavi(gym.Env):
    """One task of the grid-world family; `variant` picks the reward / observation rule."""

    episodes_per_trial = 4
    max_episode_steps = 15
    task_dim = 2

    def __init__(self, variant: str = "sparse"):
        if variant not in VARIANTS:
            raise ValueError(f"unknown GridNavi variant {variant!r}; choose from {VARIANTS}")
        self.variant = variant
        self.observation_space = gym.spaces.Box(0.0, GRID_SIZE - 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.goal = GOAL_CELLS[-1]
        self.position = START

    def sample_task(self, rng: np.random.Generator) -> tuple[int, int]:
        return GOAL_CELLS[int(rng.integers(len(GOAL_CELLS)))]

    def all_tasks(self) -> list[tuple[int, int]]:
        return list(GOAL_CELLS)

    def set_task(self, task) -> None:
        self.goal = (int(task[0]), int(task[1]))

    def task_descriptor(self) -> np.ndarray:
        return np.array(self.goal, np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = START
        return np.array(self.position, np.float32), {}

    def reward(self) -> float:
        if self.position == self.goal:
            return 1.0
        if self.variant == "dense":
            distance = abs(self.position[0] - self.goal[0]) + abs(self.position[1] - self.goal[1])
            return -distance / GRID_SIZE
        return -0.1

    def step(self, action):
        dx, dy = MOVES[int(action)]
        x = min(max(self.position[0] + dx, 0), GRID_SIZE - 1)
        y = min(max(self.position[1] + dy, 0), GRID_SIZE - 1)
        self.position = (x, y)
        shown = self.goal if (self.variant == "show" and self.position == START) else self.position
        return np.array(shown, np.float32), self.reward(), False, False, {}
