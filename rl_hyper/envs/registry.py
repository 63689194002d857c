"""The one table of environments: short name -> task-env factory, registered with gymnasium and Ray.

gymnasium id: `rl_hyper/<Name>-v0`, registered when `rl_hyper` is imported
(e.g. `gymnasium.make("rl_hyper/MC-LS-v0", resolution=42)`, or without an import of ours
`gymnasium.make("rl_hyper:rl_hyper/GridNavi-v0")`).
Ray / RLlib name: the short name (e.g. `config.environment("GridNavi")`), registered by
`register_all()` (`rl_hyper.meta_ppo_config` and every trial call it).
Both build `TrialWrapper(task_env)`; `env_config` entries (gymnasium.make's keyword arguments) go
to the task env, except "boundary_obs" (see `make_trial_env`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym

from rl_hyper.envs.gridworld import GridNavi
from rl_hyper.envs.minecraft import MinecraftMaze
from rl_hyper.envs.mujoco import AntDir, CheetahDir, CheetahVel, WalkerRandParams
from rl_hyper.envs.trial import MetaTask, TrialWrapper


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment: `factory(**env_config)` builds its task env.

    boundary_obs: what the trial env shows at an inner-episode boundary (see envs/trial.py), as
    the original code does: the terminal obs everywhere but in its mazes (MC-LS: the reset obs).
    """

    name: str
    family: str  # "grid", "minecraft" or "mujoco": selects PPO settings and encoder sizes
    factory: Callable[..., MetaTask]
    description: str
    boundary_obs: str = "terminal"


ENVS: dict[str, EnvEntry] = {
    entry.name: entry
    for entry in (
        EnvEntry("GridNavi", "grid", lambda **kw: GridNavi("sparse", **kw), "5x5 grid, hidden goal, sparse reward"),
        EnvEntry("GridNavi-Dense", "grid", lambda **kw: GridNavi("dense", **kw), "5x5 grid, L1-distance reward"),
        EnvEntry("GridNavi-Show", "grid", lambda **kw: GridNavi("show", **kw), "5x5 grid, goal shown at the start cell"),
        EnvEntry("MC-LS", "minecraft", MinecraftMaze, "Minecraft-style maze: remember the indicator over 16 rooms",
                 boundary_obs="reset"),
        EnvEntry("CheetahDir", "mujoco", CheetahDir, "HalfCheetah, run forward or backward"),
        EnvEntry("CheetahVel", "mujoco", CheetahVel, "HalfCheetah, run at a target velocity in [0, 3]"),
        EnvEntry("AntDir", "mujoco", AntDir, "Ant, run in one of two directions"),
        EnvEntry("WalkerRandParams", "mujoco", WalkerRandParams, "Walker2d with 65 randomised physics parameters"),
    )
}


class UnknownEnvError(ValueError):
    """An environment name that is not in the registry."""


def get_entry(name: str) -> EnvEntry:
    if name not in ENVS:
        raise UnknownEnvError(f"unknown env {name!r}; choose from: {', '.join(ENVS)}")
    return ENVS[name]


def make_trial_env(name: str, env_config: dict | None = None) -> TrialWrapper:
    """Build the trial env for `name`. `env_config` entries are task-env keyword arguments, except
    "boundary_obs" ("terminal" | "reset"), which overrides the entry's trial-wrapper default."""
    entry = get_entry(name)
    task_kwargs = dict(env_config or {})
    boundary_obs = task_kwargs.pop("boundary_obs", entry.boundary_obs)
    return TrialWrapper(entry.factory(**task_kwargs), boundary_obs=boundary_obs)


def gym_id(name: str) -> str:
    return f"rl_hyper/{name}-v0"


def _make_from_gymnasium(name: str, **env_config) -> TrialWrapper:
    """gymnasium's entry point: `gymnasium.make(id, **env_config)` -> `make_trial_env(name, env_config)`."""
    return make_trial_env(name, env_config)


def register_gymnasium() -> None:
    """Register every env with gymnasium as `rl_hyper/<Name>-v0` (cheap; no Ray import)."""
    for name in ENVS:
        if gym_id(name) not in gym.registry:
            gym.register(gym_id(name), entry_point=_make_from_gymnasium, kwargs={"name": name})


def register_all() -> None:
    """Register every env with gymnasium (`rl_hyper/<Name>-v0`) and with Ray (short name)."""
    from ray.tune.registry import register_env

    register_gymnasium()
    for name in ENVS:
        register_env(name, lambda cfg, name=name: make_trial_env(name, dict(cfg or {})))
