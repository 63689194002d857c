"""Fingerprint of each method's training: did a refactor change what a method learns?

Trains each method on GridNavi for a few PPO iterations in one process (seed 0, one torch thread,
no env-runner actors: deterministic) and prints a SHA-256 of the module's parameters afterwards and
the last iteration's training return. Two commits that train a method identically print the same
line for it; run it from each commit's tree and compare:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fingerprint.py [--methods rnn rnn_hn ...] [--iterations 2]

The default methods are the paper's ten (models/methods.py, the table's first rows).
"""

from __future__ import annotations

import argparse
import hashlib
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ray  # noqa: E402
import torch  # noqa: E402

from rl_hyper.envs.registry import register_all  # noqa: E402
from rl_hyper.training.config import build_config  # noqa: E402
from rl_hyper.training.ray_setup import init_ray  # noqa: E402

PAPER_METHODS = ["rnn", "rnn_s", "rnn_hn", "rnn_hn_kaiming", "ti_naive", "ti", "ti_pp", "ti_pp_hn", "vi", "vi_hn"]


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of the module's parameters, independent of their names (a
    refactor may rename submodules): the sorted digests of each parameter's shape and bytes."""
    digests = sorted(hashlib.sha256(str(tuple(p.shape)).encode() + p.detach().cpu().contiguous().numpy().tobytes())
                     .hexdigest() for p in module.parameters())
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:16]


def fingerprint(method: str, iterations: int) -> tuple[str, float]:
    """(weights digest, last training return) of `method` after `iterations` PPO iterations."""
    torch.set_num_threads(1)
    algo = build_config("GridNavi", method, lr=1e-3, seed=0, eval_interval=0).build_algo()
    for _ in range(iterations):
        result = algo.train()
    digest = weights_digest(algo.get_module())
    algo.stop()
    return digest, result["rl_hyper"]["train_trial_return"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=PAPER_METHODS)
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args()
    init_ray(num_cpus=1, include_dashboard=False)
    register_all()
    for method in args.methods:
        digest, train_return = fingerprint(method, args.iterations)
        print(f"{method:<16} {digest}  train return {train_return:.6f}", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
