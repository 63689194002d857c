"""MC-LS: the Minecraft-style memory maze (PAPER_SPEC section 4), a state machine over rendered views.

Task: the indicator, UP (green block) or DOWN (red block), p = 0.5, fixed for the trial.
Task descriptor float32 (1,): +1 UP, -1 DOWN. 2 inner episodes per trial, 200-step timeout per
inner episode (enforced by `TrialWrapper`; the timeout itself gives 0 reward).
Actions Discrete(3): 0 left, 1 forward, 2 right.

State machine of one inner episode (every reset starts at phase 0 and draws 16 new room types
from the env's RNG; room type = the side, left or right, on which the centre column shows diamond
ore; the other side shows iron ore):

    phase 0  INDICATOR  view indicator_up / indicator_down
             right -> DOOR of room 1, +0.1;  left, forward -> stay, 0
    phase 1  rooms k = 1..16, positions in order:
             DOOR        view door_diamond_<side>       forward -> CHOICE, +0.1
             CHOICE      view choice_diamond_<side>     left / right -> LANE_START of that lane,
                                                         +0.1 if it is the diamond side, else 0;
                                                         forward -> stay, 0 (the column is ahead)
             LANE_START  view lane_start_<lane>_<ore>   forward -> LANE_MID, +0.1
             LANE_MID    view lane_mid_<lane>_<ore>     forward -> LANE_END, +0.1
             LANE_END    view lane_end_<lane>           turn towards the centre (right in the left
                                                         lane, left in the right lane) -> EXIT, +0.1
             EXIT        view exit                      forward -> DOOR of room k+1, or END after
                                                         room 16, +0.1
             At every position but CHOICE, any other action leaves the agent where it is, 0.
    phase 2  END        view end
             right if UP / left if DOWN -> +4, terminated; the other turn -> -3, terminated;
             forward -> stay, 0.

In the view names, <side> is the room's diamond side, <lane> the lane walked, <ore> the ore the
lane's column face shows. The optimal policy needs only the current view and the indicator bit.

Optimal episode: 1 (indicator) + 16 x 6 (rooms) + 1 (end turn) = 98 steps, 97 x 0.1 + 4 = 13.7;
trial optimum 27.4. A policy that handles the rooms but cannot remember the indicator turns at the
end at random: 9.7 + (4 - 3) / 2 = 10.2 per episode in expectation.

Observation: the current view as an RGB frame (R, R, 3), R = `resolution` (10, 42 or 64),
flattened to float32 (3 R^2,) in [-1, 1). The views, their renderer and `frames_dir=PATH` (real
frames in this project's layout or the original MC-LS data's) are envs/minecraft_views.py;
scripted policies that play the maze are envs/minecraft_scripted.py.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rl_hyper.envs.minecraft_views import frame_to_observation, view_images

LEFT, FORWARD, RIGHT = 0, 1, 2  # actions; a turn's code is also the side it leads to
SIDE_NAMES = {LEFT: "left", RIGHT: "right"}
UP, DOWN = 1.0, -1.0
NUM_ROOMS = 16
STEP_REWARD = 0.1
END_CORRECT_REWARD = 4.0
END_WRONG_REWARD = -3.0

INDICATOR, ROOMS, END = 0, 1, 2  # phases
DOOR, CHOICE, LANE_START, LANE_MID, LANE_END, EXIT = range(6)  # positions in a room


class MinecraftMaze(gym.Env):
    """MC-LS task env (see module docstring). Task = indicator, UP (+1.0) or DOWN (-1.0)."""

    episodes_per_trial = 2
    max_episode_steps = 200
    task_dim = 1

    def __init__(self, resolution: int = 10, frames_dir: str | None = None):
        self.resolution = int(resolution)
        self.frames = view_images(self.resolution, frames_dir)
        self.observations = {name: frame_to_observation(frame) for name, frame in self.frames.items()}
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3 * self.resolution**2,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.indicator = UP
        self.diamond_sides = np.full(NUM_ROOMS, LEFT)
        self.phase, self.room, self.position, self.lane = INDICATOR, 0, DOOR, LEFT

    def sample_task(self, rng: np.random.Generator) -> float:
        return UP if rng.random() < 0.5 else DOWN

    def all_tasks(self) -> list[float]:
        return [UP, DOWN]

    def set_task(self, task) -> None:
        self.indicator = UP if float(task) > 0 else DOWN

    def task_descriptor(self) -> np.ndarray:
        return np.array([self.indicator], np.float32)

    def view_name(self) -> str:
        """Name of the view at the current state (a key of `minecraft_views.VIEWS`)."""
        if self.phase == INDICATOR:
            return "indicator_up" if self.indicator == UP else "indicator_down"
        if self.phase == END:
            return "end"
        diamond_side = int(self.diamond_sides[self.room])
        if self.position == DOOR:
            return f"door_diamond_{SIDE_NAMES[diamond_side]}"
        if self.position == CHOICE:
            return f"choice_diamond_{SIDE_NAMES[diamond_side]}"
        if self.position == LANE_END:
            return f"lane_end_{SIDE_NAMES[self.lane]}"
        if self.position == EXIT:
            return "exit"
        ore = "diamond" if self.lane == diamond_side else "iron"
        stage = "start" if self.position == LANE_START else "mid"
        return f"lane_{stage}_{SIDE_NAMES[self.lane]}_{ore}"

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.diamond_sides = np.where(self.np_random.random(NUM_ROOMS) < 0.5, LEFT, RIGHT)
        self.phase, self.room, self.position, self.lane = INDICATOR, 0, DOOR, LEFT
        return self.observations[self.view_name()], {}

    def step(self, action):
        action = int(action)
        reward, terminated = 0.0, False
        if self.phase == INDICATOR:
            if action == RIGHT:
                self.phase, self.room, self.position = ROOMS, 0, DOOR
                reward = STEP_REWARD
        elif self.phase == END:
            if action != FORWARD:
                correct = RIGHT if self.indicator == UP else LEFT
                reward = END_CORRECT_REWARD if action == correct else END_WRONG_REWARD
                terminated = True
        else:
            reward = self._room_step(action)
        return self.observations[self.view_name()], reward, terminated, False, {}

    def _room_step(self, action: int) -> float:
        """Advance inside the current room; returns the reward."""
        if self.position == CHOICE:
            if action == FORWARD:
                return 0.0
            self.lane, self.position = action, LANE_START
            return STEP_REWARD if action == self.diamond_sides[self.room] else 0.0
        if action != self._advancing_action():
            return 0.0
        if self.position != EXIT:
            self.position += 1
        elif self.room + 1 < NUM_ROOMS:
            self.room, self.position = self.room + 1, DOOR
        else:
            self.phase = END
        return STEP_REWARD

    def _advancing_action(self) -> int:
        """The one action that moves on from DOOR, LANE_START, LANE_MID, LANE_END or EXIT."""
        if self.position == LANE_END:
            return RIGHT if self.lane == LEFT else LEFT
        return FORWARD
