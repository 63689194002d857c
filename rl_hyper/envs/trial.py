"""One gymnasium episode = one meta-RL trial of K inner episodes of one task.

`TrialWrapper` turns a `MetaTask` env (one MDP per task) into the env RLlib samples from:

    reset():  sample a task from the wrapper's seeded RNG (or take options["task"]), set it,
              reset the task env.
    step(a):  step the task env; when an inner episode ends (terminated, or its step limit is
              reached) and fewer than K have been played, reset the task env with the same task
              and raise the inner-episode-ended flag; after the K-th inner episode the trial ends
              with terminated=True (returns and GAE flow across inner-episode boundaries).

The observation returned at an inner-episode boundary (`boundary_obs`):
    "terminal": the task obs of the step that ended the episode (its last position), with the
                flag up; the task env is already reset, so the next action acts from the start
                state. The original code does this on every env but its mazes.
    "reset":    the start obs of the next episode, with the flag up (the original's mazes, MC-LS).

Observation (float32, flat), laid out as `ObsLayout` says:
    [task obs (S), inner-episode-ended flag (1, only when K > 1),
     previous action (one-hot n for Discrete(n), raw A for Box(A,)), previous raw reward (1)]

info at every step: "task" (task descriptor, float32 (D,)), "inner_episode" (0..K-1, the inner
episode the returned observation belongs to); at the trial's last step also "inner_returns"
(float32 (K,), raw return of each inner episode; an inner episode cut short by the end of the
trial counts what it collected).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

# keys of the info dict every step returns (see the module docstring); the connectors, the
# evaluation and the callbacks read them by these names
INFO_TASK = "task"
INFO_INNER_EPISODE = "inner_episode"
INFO_INNER_RETURNS = "inner_returns"


@runtime_checkable
class MetaTask(Protocol):
    """A task env: a gymnasium env whose reward or dynamics depend on a settable task.

    Attributes:
        episodes_per_trial: K, inner episodes per trial.
        max_episode_steps: step limit of one inner episode (the wrapper enforces it).
        task_dim: length D of `task_descriptor()`.
    """

    episodes_per_trial: int
    max_episode_steps: int
    task_dim: int
    observation_space: gym.Space
    action_space: gym.Space

    def sample_task(self, rng: np.random.Generator) -> Any:
        """Draw a task using only `rng` (so one seed gives one task sequence everywhere)."""

    def all_tasks(self) -> list | None:
        """Every task of a finite task distribution (uniform over them), else None."""

    def set_task(self, task: Any) -> None:
        """Make `task` the current task; it stays until the next call."""

    def task_descriptor(self) -> np.ndarray:
        """The current task as float32 (D,): what task-inference methods predict."""

    def reset(self, *, seed: int | None = None, options: dict | None = None): ...

    def step(self, action): ...


@dataclass(frozen=True)
class ObsLayout:
    """Where each part of the trial observation lies; models read these sizes, never the env.

    state_dim:  task observation plus the inner-episode-ended flag (the policy's "state").
    action_dim: previous action (one-hot size n for Discrete(n), A for Box(A,)).
    reward_dim: previous reward (always 1).
    """

    state_dim: int
    action_dim: int
    reward_dim: int = 1

    @property
    def obs_dim(self) -> int:
        return self.state_dim + self.action_dim + self.reward_dim

    def as_model_config(self) -> dict:
        return {"state_dim": self.state_dim, "action_dim": self.action_dim, "reward_dim": self.reward_dim}


def action_feature_size(space: gym.Space) -> int:
    """Size of the previous-action feature: n for Discrete(n) (one-hot), A for Box(A,)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    raise TypeError(f"unsupported action space {space}")


BOUNDARY_OBS = ("terminal", "reset")


class TrialWrapper(gym.Env):
    """Plays K inner episodes of one task as one gymnasium episode (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, task_env: MetaTask, boundary_obs: str = "terminal"):
        if not isinstance(task_env, MetaTask):
            raise TypeError(f"{type(task_env).__name__} does not implement the MetaTask protocol")
        if boundary_obs not in BOUNDARY_OBS:
            raise ValueError(f"unknown boundary_obs {boundary_obs!r}; choose from {BOUNDARY_OBS}")
        self.task_env = task_env
        self.boundary_obs = boundary_obs
        self.episodes_per_trial = int(task_env.episodes_per_trial)
        self.max_episode_steps = int(task_env.max_episode_steps)
        self.trial_length = self.episodes_per_trial * self.max_episode_steps
        task_obs_dim = int(np.prod(task_env.observation_space.shape))
        self.layout = ObsLayout(
            state_dim=task_obs_dim + (1 if self.episodes_per_trial > 1 else 0),
            action_dim=action_feature_size(task_env.action_space),
        )
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.layout.obs_dim,), np.float32)
        self.action_space = task_env.action_space
        self._task_env_seeded = False
        self._inner_episode = 0
        self._inner_step = 0
        self._inner_returns = np.zeros(self.episodes_per_trial, np.float32)

    def _observation(self, task_obs, ended: bool, action, reward: float) -> np.ndarray:
        parts = [np.asarray(task_obs, np.float32).ravel()]
        if self.episodes_per_trial > 1:
            parts.append(np.array([float(ended)], np.float32))
        if isinstance(self.action_space, gym.spaces.Discrete):
            one_hot = np.zeros(self.action_space.n, np.float32)
            if action is not None:
                one_hot[int(action)] = 1.0
            parts.append(one_hot)
        else:
            parts.append(np.zeros(self.layout.action_dim, np.float32) if action is None
                         else np.asarray(action, np.float32).ravel())
        parts.append(np.array([reward], np.float32))
        return np.concatenate(parts)

    def _info(self) -> dict:
        return {INFO_TASK: self.task_env.task_descriptor().astype(np.float32),
                INFO_INNER_EPISODE: self._inner_episode}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task_seed = None
        if seed is not None:  # a seeded reset reproduces the task env's noise too
            self._task_env_seeded = False
        if not self._task_env_seeded:  # the task env's own RNG (initial-state noise) follows ours
            task_seed = int(self.np_random.integers(2**31 - 1))
            self._task_env_seeded = True
        task = (options or {}).get("task")
        self.task_env.set_task(self.task_env.sample_task(self.np_random) if task is None else task)
        task_obs, _ = self.task_env.reset(seed=task_seed)
        self._inner_episode = 0
        self._inner_step = 0
        self._inner_returns = np.zeros(self.episodes_per_trial, np.float32)
        return self._observation(task_obs, False, None, 0.0), self._info()

    def step(self, action):
        task_obs, reward, terminated, truncated, _ = self.task_env.step(action)
        reward = float(reward)
        self._inner_step += 1
        self._inner_returns[self._inner_episode] += reward
        inner_done = terminated or truncated or self._inner_step >= self.max_episode_steps
        trial_done = False
        if inner_done:
            if self._inner_episode + 1 < self.episodes_per_trial:
                self._inner_episode += 1
                self._inner_step = 0
                start_obs, _ = self.task_env.reset()
                if self.boundary_obs == "reset":
                    task_obs = start_obs
            else:
                trial_done = True
        info = self._info()
        if trial_done:
            info[INFO_INNER_RETURNS] = self._inner_returns.copy()
        obs = self._observation(task_obs, inner_done, action, reward)
        return obs, reward, trial_done, False, info

    def render(self):
        return self.task_env.render()

    def close(self):
        self.task_env.close()
