"""Look at the environments: PNG strips of frames, and the scripted MC-LS solutions.

    render_strip("MC-LS", "mcls.png")         # frames of the scripted optimal policy, upscaled
    render_strip("CheetahDir", "cheetah.png") # MuJoCo frames under random actions
    solve("MC-LS")                            # optimal and memoryless returns

MC-LS frames are the agent's own observations (R x R, R = env_config["resolution"], default 10)
upscaled with nearest neighbour to 128 x 128; `frames_dir` in env_config is honoured.
MuJoCo frames come from the sim's `render_mode="rgb_array"` (480 x 480, downscaled to 240 x 240),
one every `MUJOCO_FRAME_STRIDE` env steps under seeded uniform random actions. Off-screen
rendering needs an OpenGL backend: MUJOCO_GL=egl is tried first, then osmesa; if neither works a
RuntimeError says what failed (MuJoCo's egl and osmesa backends also need the PyOpenGL package).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from rl_hyper.envs.minecraft_scripted import scripted_action, scripted_returns
from rl_hyper.envs.registry import get_entry, make_trial_env
from rl_hyper.envs.trial import TrialWrapper

MCLS_FRAME_SIZE = 128
MUJOCO_FRAME_SIZE = 240
MUJOCO_FRAME_STRIDE = 10
GAP = 4  # pixels of black between frames


def _strip(frames: list[np.ndarray]) -> np.ndarray:
    """Frames uint8 (H, W, 3), equal sizes -> one uint8 (H, n W + (n - 1) GAP, 3) image."""
    gap = np.zeros((frames[0].shape[0], GAP, 3), np.uint8)
    parts = []
    for frame in frames:
        parts.extend([frame, gap])
    return np.concatenate(parts[:-1], axis=1)


def _mcls_frames(env_config: dict, steps: int, seed: int) -> list[np.ndarray]:
    """The first `steps` views of a trial played by the scripted optimal policy, upscaled."""
    env = make_trial_env("MC-LS", env_config)
    maze = env.task_env
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    remembered = maze.indicator  # what the optimal policy reads from the first view
    frames = []
    for _ in range(steps):
        view = maze.view_name()
        image = Image.fromarray(np.ascontiguousarray(maze.frames[view]))
        frames.append(np.asarray(image.resize((MCLS_FRAME_SIZE, MCLS_FRAME_SIZE), Image.NEAREST)))
        env.step(scripted_action(view, remembered, rng))
    return frames


def _mujoco_frames(name: str, env_config: dict, steps: int, seed: int) -> list[np.ndarray]:
    """`steps` rendered frames, one every MUJOCO_FRAME_STRIDE random-action steps; tries egl then osmesa."""
    errors = []
    for backend in ("egl", "osmesa"):
        os.environ["MUJOCO_GL"] = backend
        env = make_trial_env(name, {**env_config, "render_mode": "rgb_array"})
        try:
            return _play_and_render(env, steps, seed)
        except Exception as error:  # the backend's import or context creation failed
            errors.append(f"{backend}: {type(error).__name__}: {error}")
        finally:
            env.close()
    raise RuntimeError("MuJoCo off-screen rendering failed with every backend (" + "; ".join(errors)
                       + "). Install the PyOpenGL package and libEGL (apt libegl1) or OSMesa (apt libosmesa6).")


def _play_and_render(env: TrialWrapper, steps: int, seed: int) -> list[np.ndarray]:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    frames = []
    for _ in range(steps):
        image = Image.fromarray(env.render())
        frames.append(np.asarray(image.resize((MUJOCO_FRAME_SIZE, MUJOCO_FRAME_SIZE), Image.BILINEAR)))
        for _ in range(MUJOCO_FRAME_STRIDE):
            _, _, done, _, _ = env.step(env.action_space.sample())
            if done:
                env.reset()
    return frames


def render_strip(name: str, out_path: str, env_config: dict | None = None, steps: int = 8, seed: int = 0) -> str:
    """Write a PNG strip of `steps` frames of env `name` to `out_path`; returns out_path."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    family = get_entry(name).family
    config = dict(env_config or {})
    if family == "minecraft":
        frames = _mcls_frames(config, steps, seed)
    elif family == "mujoco":
        frames = _mujoco_frames(name, config, steps, seed)
    else:
        raise ValueError(f"render_strip supports the minecraft and mujoco envs, not {name!r} ({family})")
    Image.fromarray(_strip(frames)).save(out_path)
    return out_path


def solve(name: str, trials: int = 100, seed: int = 0) -> dict[str, dict[str, float]]:
    """Scripted MC-LS solutions: {"optimal" | "memoryless": {"episode_1", "episode_2", "trial"}} mean returns."""
    if get_entry(name).family != "minecraft":
        raise ValueError(f"solve knows scripted solutions for MC-LS only, not {name!r}")
    results = {}
    for policy in ("optimal", "memoryless"):
        returns = scripted_returns(policy, trials, seed)
        episode_means = returns["episode_returns"].mean(axis=0)
        results[policy] = {**{f"episode_{k + 1}": float(mean) for k, mean in enumerate(episode_means)},
                           "trial": float(returns["trial_returns"].mean())}
    return results
