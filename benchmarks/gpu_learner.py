"""The learner on a GPU (`num_gpus_per_learner: 1`): same update as on the CPU, and how fast.

Samples fixed batches of GridNavi trials on the CPU (rnn_hn by default, the paper's grid batch of
16 envs x 60 steps), then gives the same batch and the same initial weights to a CPU learner and
to a learner on `--device` and compares one PPO update (2 epochs x 4 random-step minibatches):
the logged losses and the largest weight difference afterwards. Then times learner updates per
second on `--device` at the paper's batch and at 8x it. A few minutes on a machine with a GPU:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gpu_learner.py [--method rnn_hn] [--device cuda]

With `--device cpu` (no GPU here) it runs the same code path with two CPU learners, which
checks the script, not the GPU.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.core import DEFAULT_MODULE_ID  # noqa: E402

from rl_hyper.envs.registry import register_all  # noqa: E402
from rl_hyper.training.config import build_config  # noqa: E402
from rl_hyper.training.ray_setup import init_ray  # noqa: E402

LOSSES = ("total_loss", "policy_loss", "vf_loss", "entropy")


def build_algo(method: str, gpus: float):
    """One GridNavi trial's algorithm (no env-runner actors) with its learner on `gpus` GPUs."""
    return build_config("GridNavi", method, lr=1e-3, seed=0, eval_interval=0, num_gpus_per_learner=gpus).build_algo()


def update(learner, episodes: list, epochs: int = 2) -> dict:
    """One PPO update of `learner` on a copy of `episodes` (the learner connectors change the
    episodes they are given); the module's logged losses."""
    results = learner.update(episodes=copy.deepcopy(episodes), num_epochs=epochs)
    return {name: float(results[DEFAULT_MODULE_ID][name].peek()) for name in LOSSES}


def max_weight_difference(a, b) -> float:
    """Largest absolute difference between two modules' parameters (compared on the CPU)."""
    return max((pa.detach().cpu() - pb.detach().cpu()).abs().max().item()
               for pa, pb in zip(a.parameters(), b.parameters()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="rnn_hn")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--repeats", type=int, default=5, help="timed updates per batch size")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --device cpu to check the script")
    init_ray(num_cpus=2, include_dashboard=False)
    register_all()
    cpu = build_algo(args.method, 0)
    other = build_algo(args.method, 1 if args.device == "cuda" else 0)
    cpu_learner, other_learner = cpu.learner_group._learner, other.learner_group._learner
    other_learner.module[DEFAULT_MODULE_ID].set_state(cpu_learner.module[DEFAULT_MODULE_ID].get_state())
    batches = [cpu.env_runner.sample() for _ in range(8)]  # 8 batches of 960 frames, on the CPU

    on_cpu, on_other = update(cpu_learner, batches[0]), update(other_learner, batches[0])
    difference = max_weight_difference(cpu_learner.module[DEFAULT_MODULE_ID], other_learner.module[DEFAULT_MODULE_ID])
    print(f"{args.method}, one update on the same 960 frames, CPU vs {args.device}:")
    for name in LOSSES:
        print(f"  {name:<12} {on_cpu[name]:>12.6f} {on_other[name]:>12.6f}  diff {abs(on_cpu[name] - on_other[name]):.2e}")
    print(f"  largest weight difference after the update: {difference:.2e}")

    for label, episodes in (("paper batch (960 frames)", batches[0]),
                            ("8x batch (7,680 frames)", [e for batch in batches for e in batch])):
        update(other_learner, episodes)  # warm-up
        if args.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.repeats):
            update(other_learner, episodes)
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / args.repeats
        frames = sum(len(e) for e in episodes)
        print(f"{args.device} learner, {label}: {1 / seconds:.2f} updates/s, {frames / seconds:,.0f} frames/s learned")
    cpu.stop()
    other.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
