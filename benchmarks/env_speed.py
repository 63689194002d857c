"""Raw environment speed: steps/s of each task env alone and inside TrialWrapper, on one core.

Run (from the repository root, virtualenv active):

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/env_speed.py [--steps 4000] [--envs MC-LS AntDir]

(`taskset` pins the process to one core; leave it out where it is missing.) Prints one row per env:
steps/s of the bare task env (reset whenever its episode ends or reaches its step limit), steps/s
of `TrialWrapper(task env)` (one trial = K inner episodes), and the wrapper's overhead
1 - wrapped / raw. Actions are pre-drawn uniformly at random, so policy cost is excluded.
Target: overhead at most 15% on the MuJoCo envs (their physics dominates); MC-LS steps are so
cheap that the wrapper's observation assembly is a visible fraction.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from rl_hyper.envs.registry import ENVS, get_entry, make_trial_env  # noqa: E402


def random_actions(space, count: int, seed: int) -> list:
    space.seed(seed)
    return [space.sample() for _ in range(count)]


def raw_steps_per_second(name: str, steps: int, seed: int) -> float:
    env = get_entry(name).factory()
    actions = random_actions(env.action_space, steps, seed)
    env.set_task(env.sample_task(np.random.default_rng(seed)))
    env.reset(seed=seed)
    episode_step = 0
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        episode_step += 1
        if terminated or truncated or episode_step >= env.max_episode_steps:
            env.reset()
            episode_step = 0
    return steps / (time.perf_counter() - start)


def wrapped_steps_per_second(name: str, steps: int, seed: int) -> float:
    env = make_trial_env(name)
    actions = random_actions(env.action_space, steps, seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many measurements")
    parser.add_argument("--envs", nargs="+", default=[name for name, entry in ENVS.items() if entry.family != "grid"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"{'env':<18}{'raw steps/s':>14}{'wrapped steps/s':>18}{'overhead':>10}")
    for name in args.envs:
        raw_steps_per_second(name, 200, args.seed)  # warm up caches (MC-LS frames, MuJoCo model)
        raw = max(raw_steps_per_second(name, args.steps, args.seed) for _ in range(args.repeats))
        wrapped = max(wrapped_steps_per_second(name, args.steps, args.seed) for _ in range(args.repeats))
        print(f"{name:<18}{raw:>14,.0f}{wrapped:>18,.0f}{1 - wrapped / raw:>10.1%}")


if __name__ == "__main__":
    main()
