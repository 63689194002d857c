"""MuJoCo meta-RL task envs (PAPER_SPEC section 4): Cheetah-Dir, Cheetah-Vel, Ant-Dir, Walker rand-params.

Each class is a MetaTask task env built around one gymnasium v5 MuJoCo env (`self.sim`, created
directly, without gymnasium.make's TimeLimit/checker wrappers: `TrialWrapper` enforces the step
limit). The sim's own reward is ignored; every reward is recomputed from `info["x_velocity"]`
(and `info["y_velocity"]`), the action and, for Ant, the contact forces, as the original code did.

| class            | sim (v5)                          | obs (float32)                          | act | K | steps |
|------------------|-----------------------------------|----------------------------------------|-----|---|-------|
| CheetahDir       | HalfCheetah, ctrl_cost_weight 0.05 | (20,) qpos[1:] 8, qvel 9, torso xyz 3  | 6   | 1 | 200   |
| CheetahVel       | same                              | (20,)                                  | 6   | 1 | 200   |
| AntDir           | Ant, no cfrc_ext in obs           | (27,) qpos[2:] 13, qvel 14             | 8   | 1 | 200   |
| WalkerRandParams | Walker2d, modified (see below)    | (17,) qpos[1:] 8, clip(qvel, -10, 10) 9 | 6  | 2 | 200   |

Torso xyz is `data.body("torso").xpos` after the step; MuJoCo computes body positions at the start
of a physics substep, so it lags qpos by one substep, as the original code's `get_body_com` did.

Rewards (a = action as given, before MuJoCo clamps it to the control range):
    CheetahDir  dir * v_x - 0.05 ||a||^2,                 dir in {-1, +1} (p = 0.5)
    CheetahVel  -|v_x - v*| - 0.05 ||a||^2,               v* ~ U[0, 3]
    AntDir      (v_x, v_y) . (cos t, sin t) - 0.5 ||a||^2 - 5e-4 ||clip(cfrc_ext, -1, 1)||^2 + 1,
                t uniform over `angles` (default (-1, +1) rad as in the code; the paper text says
                (0, pi)); cfrc_ext over all bodies (the world body's row is zero).
    Walker      v_x + 1 - 1e-3 ||a||^2
The +1 survival bonus is added on every step, as in the original code. (The v5 sims' own
"reward_survive" is 0 on the step that becomes unhealthy; that difference is the only one between
these formulas and the v5 terms with the same weights.)

Termination: AntDir when torso z leaves [0.2, 1.0] (or the state is not finite); Walker when the
torso height leaves the open interval (0.8, 2.0) or |angle| >= 1 (the v5 health checks).
The Cheetahs never terminate.

Walker rand-params: gymnasium's bundled walker2d_v5.xml (both feet friction 1.9) with the right
foot's sliding friction set to 0.9 (the original's 0.9 / 1.9 asymmetry), timestep 0.004 and
frame_skip 4, so dt = 0.016. A task is 65 exponents u ~ U(-3, 3) that scale the default physics:

    body_mass     (8,)   x 1.5^u      8 bodies incl. the world body
    body_inertia  (8, 3) x 1.5^u     24
    dof_damping   (9,)   x 1.3^u      9
    geom_friction (8, 3) x 1.5^u     24 (floor + 7 body geoms; slide, torsion, roll)

(these are the bundled model's array sizes, equal to the paper's counts). The defaults are copied
once at construction and every `set_task` writes default * multiplier, so nothing leaks from one
task into the next (MuJoCo model parameters survive `reset()`).

Task descriptors (float32): CheetahDir (1,) direction; CheetahVel (1,) target velocity;
AntDir (2,) (cos t, sin t); Walker (65,) the exponents u (log-multipliers in base 1.5, or 1.3 for
damping), in the order of the table above, each array flattened row-major.

Every constructor takes `render_mode` (None or "rgb_array"), passed to the sim.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

EPISODE_STEPS = 200


class _MujocoTask(gym.Env):
    """Common plumbing: one sim, float32 observations, recomputed rewards.

    Subclasses set `observation_space` and implement `_observation(sim_obs)` and
    `_reward(action, info)`.
    """

    episodes_per_trial = 1
    max_episode_steps = EPISODE_STEPS

    def __init__(self, sim: MujocoEnv):
        self.sim = sim
        self.action_space = sim.action_space
        self.render_mode = sim.render_mode

    def all_tasks(self) -> list | None:
        """None: a continuous task distribution (CheetahDir and AntDir list theirs)."""
        return None

    def _observation(self, sim_obs: np.ndarray) -> np.ndarray:
        return sim_obs.astype(np.float32)

    def _reward(self, action: np.ndarray, info: dict) -> float:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        sim_obs, info = self.sim.reset(seed=seed)
        return self._observation(sim_obs), info

    def step(self, action):
        action = np.asarray(action, np.float64)
        sim_obs, _, terminated, _, info = self.sim.step(action)
        return self._observation(sim_obs), self._reward(action, info), bool(terminated), False, info

    def render(self):
        return self.sim.render()

    def close(self):
        self.sim.close()


class _HalfCheetahTask(_MujocoTask):
    """HalfCheetah-v5 with the torso position appended: obs (20,) = qpos[1:] 8, qvel 9, torso xyz 3."""

    ctrl_cost_weight = 0.05
    task_dim = 1

    def __init__(self, render_mode: str | None = None):
        super().__init__(HalfCheetahEnv(ctrl_cost_weight=self.ctrl_cost_weight, render_mode=render_mode))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (20,), np.float32)

    def _observation(self, sim_obs: np.ndarray) -> np.ndarray:
        return np.concatenate([sim_obs, self.sim.data.body("torso").xpos]).astype(np.float32)

    def _ctrl_cost(self, action: np.ndarray) -> float:
        return self.ctrl_cost_weight * float(action @ action)


class CheetahDir(_HalfCheetahTask):
    """Run forward (dir = +1) or backward (dir = -1): reward dir * v_x - 0.05 ||a||^2."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        self.direction = 1.0

    def sample_task(self, rng: np.random.Generator) -> float:
        return 1.0 if rng.random() < 0.5 else -1.0

    def all_tasks(self) -> list[float]:
        return [1.0, -1.0]

    def set_task(self, task) -> None:
        self.direction = float(task)

    def task_descriptor(self) -> np.ndarray:
        return np.array([self.direction], np.float32)

    def _reward(self, action: np.ndarray, info: dict) -> float:
        return self.direction * float(info["x_velocity"]) - self._ctrl_cost(action)


class CheetahVel(_HalfCheetahTask):
    """Run at target velocity v* ~ U[0, 3]: reward -|v_x - v*| - 0.05 ||a||^2."""

    max_target_velocity = 3.0

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode)
        self.target_velocity = 1.0

    def sample_task(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(0.0, self.max_target_velocity))

    def set_task(self, task) -> None:
        self.target_velocity = float(task)

    def task_descriptor(self) -> np.ndarray:
        return np.array([self.target_velocity], np.float32)

    def _reward(self, action: np.ndarray, info: dict) -> float:
        return -abs(float(info["x_velocity"]) - self.target_velocity) - self._ctrl_cost(action)


class AntDir(_MujocoTask):
    """Ant-v5 running in direction (cos t, sin t), t uniform over `angles` (radians).

    obs (27,) = qpos[2:] 13, qvel 14. Reward: v_xy . direction - 0.5 ||a||^2
    - 5e-4 ||clip(cfrc_ext, -1, 1)||^2 + 1. Terminates when torso z leaves [0.2, 1.0].
    `angles`: (-1.0, 1.0) as in the original code (default), or (0.0, math.pi) as in the paper text.
    """

    ctrl_cost_weight = 0.5
    contact_cost_weight = 5e-4
    survive_reward = 1.0
    task_dim = 2

    def __init__(self, angles: tuple[float, ...] = (-1.0, 1.0), render_mode: str | None = None):
        super().__init__(AntEnv(include_cfrc_ext_in_observation=False, render_mode=render_mode))
        if len(angles) == 0:
            raise ValueError("AntDir needs at least one angle")
        self.angles = tuple(float(angle) for angle in angles)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (27,), np.float32)
        self.angle = self.angles[0]

    def sample_task(self, rng: np.random.Generator) -> float:
        return self.angles[int(rng.integers(len(self.angles)))]

    def all_tasks(self) -> list[float]:
        return list(self.angles)

    def set_task(self, task) -> None:
        self.angle = float(task)

    def task_descriptor(self) -> np.ndarray:
        return np.array([np.cos(self.angle), np.sin(self.angle)], np.float32)

    def _reward(self, action: np.ndarray, info: dict) -> float:
        forward = float(info["x_velocity"]) * np.cos(self.angle) + float(info["y_velocity"]) * np.sin(self.angle)
        ctrl_cost = self.ctrl_cost_weight * float(action @ action)
        contact_cost = self.contact_cost_weight * float(np.sum(np.square(np.clip(self.sim.data.cfrc_ext, -1.0, 1.0))))
        return forward - ctrl_cost - contact_cost + self.survive_reward


# (model attribute, base of the multiplier): a task scales each by base ** u, u ~ U(-3, 3).
WALKER_PARAMETERS = (("body_mass", 1.5), ("body_inertia", 1.5), ("dof_damping", 1.3), ("geom_friction", 1.5))
WALKER_LOG_SCALE_LIMIT = 3.0


class WalkerRandParams(_MujocoTask):
    """Walker2d with 65 randomised physics parameters (see module docstring); 2 episodes per trial.

    obs (17,) = qpos[1:] 8, clip(qvel, -10, 10) 9. Reward v_x + 1 - 1e-3 ||a||^2. A task is a dict
    {attribute: exponents u with the attribute's shape}.
    """

    episodes_per_trial = 2
    ctrl_cost_weight = 1e-3
    survive_reward = 1.0
    timestep = 0.004
    frame_skip = 4
    right_foot_friction = 0.9

    def __init__(self, render_mode: str | None = None):
        sim = Walker2dEnv(frame_skip=self.frame_skip, render_mode=render_mode)
        sim.model.opt.timestep = self.timestep
        sim.model.geom_friction[sim.model.geom("foot_geom").id, 0] = self.right_foot_friction
        sim.metadata["render_fps"] = int(np.round(1.0 / sim.dt))
        super().__init__(sim)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (17,), np.float32)
        self.default_parameters = {name: getattr(sim.model, name).copy() for name, _ in WALKER_PARAMETERS}
        self.task_dim = sum(values.size for values in self.default_parameters.values())
        self.exponents = {name: np.zeros_like(values) for name, values in self.default_parameters.items()}

    def sample_task(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {name: rng.uniform(-WALKER_LOG_SCALE_LIMIT, WALKER_LOG_SCALE_LIMIT, values.shape)
                for name, values in self.default_parameters.items()}

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        for name, base in WALKER_PARAMETERS:
            exponents = np.asarray(task[name], np.float64)
            getattr(self.sim.model, name)[:] = self.default_parameters[name] * base ** exponents
            self.exponents[name] = exponents.copy()

    def task_descriptor(self) -> np.ndarray:
        return np.concatenate([self.exponents[name].ravel() for name, _ in WALKER_PARAMETERS]).astype(np.float32)

    def _reward(self, action: np.ndarray, info: dict) -> float:
        return float(info["x_velocity"]) + self.survive_reward - self.ctrl_cost_weight * float(action @ action)
