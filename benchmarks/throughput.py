"""Throughput of the meta-RL agent on GridNavi: env, end-to-end training, learner, FLOPs.

Run (about 1 minute on 2 cores):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/throughput.py [--methods rnn rnn_s rnn_hn] [--iterations 8] [--threads 1]

Each sequence core with and without the hypernetwork (issue 13):

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/throughput.py \
        --methods rnn rnn_hn lstm lstm_hn transformer transformer_hn --threads 1

Prints, per method, with the paper's architecture (GRU 256, state embedding 256, base net
256-128, every actor and critic tensor generated for rnn_hn) and the paper's grid batch (16 envs x
60 steps, 2 epochs x 4 minibatches):
  - end-to-end env-steps/s of PPO training (sampling + learning in one process), with one torch
    thread (a sweep runs one trial per core) and with one per core (a lone `rl-hyper train`);
  - sampler and learner seconds per iteration (RLlib timers) and the learner time relative to rnn_s;
  - model FLOPs per frame (counted by torch's FlopCounterMode over real sampling and updates)
    and the achieved FLOP/s as a fraction of the single-core float32 GEMM peak measured here;
and, once: raw env steps/s of the GridNavi trial env and its ratio to the training speed; and the
hypernetwork layer computed per sample with bmm vs as one GEMM over the outer product.
All numbers of one run come from the same machine state; compare ratios across machines.
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.core import DEFAULT_MODULE_ID  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from rl_hyper.envs.registry import make_trial_env, register_all  # noqa: E402
from rl_hyper.models.methods import get_method  # noqa: E402
from rl_hyper.models.hypernet import GeneratedLinear  # noqa: E402
from rl_hyper.training.config import build_config  # noqa: E402
from rl_hyper.training.ray_setup import init_ray  # noqa: E402


def gemm_peak_gflops(size: int = 1024, repeats: int = 20) -> float:
    """Single-thread float32 matrix-multiply peak (GFLOP/s) of this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def env_steps_per_s(steps: int = 30_000) -> float:
    env = make_trial_env("GridNavi")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(5, size=steps)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, _, _ = env.step(int(action))
        if terminated:
            env.reset()
    return steps / (time.perf_counter() - start)


def hypernet_forms(samples: int = 976, width: int = 256, cond: int = 25, repeats: int = 10) -> dict:
    """GFLOP/s of one generated 256x256 layer: per-sample weights + bmm vs the outer-product GEMM."""
    layer = GeneratedLinear(width, width, cond, init="kaiming", base_kind="hidden")
    x, e = torch.randn(samples, width), torch.randn(samples, cond)
    flops = 2 * samples * (cond + 1) * width * width  # generating W(e) or the GEMM: same count
    out = {}
    with torch.no_grad():
        for name, fn in (("bmm", lambda: torch.bmm(layer.generated_weight(e), x.unsqueeze(-1))),
                         ("outer_gemm", lambda: layer(x, e))):
            fn()
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            out[name] = flops * repeats / (time.perf_counter() - start) / 1e9
    return out


def count_flops_per_frame(algo, config, iterations: int) -> float:
    """Model FLOPs per env step of sampling + learning, counted by FlopCounterMode (slow: not timed)."""
    runner, learner = algo.env_runner, algo.learner_group._learner
    frames, flops = 0, 0
    for _ in range(iterations):
        with FlopCounterMode(display=False) as counter:
            episodes = runner.sample()
            learner.update(episodes=episodes, num_epochs=config.num_epochs, minibatch_size=config.minibatch_size)
        runner.module.set_state(learner.module[DEFAULT_MODULE_ID].get_state())  # weight sync, as PPO does
        frames += sum(len(e) for e in episodes)
        flops += counter.get_total_flops()
    return flops / frames


def measure_method(method: str, iterations: int, threads: int) -> dict:
    """Time `iterations` PPO iterations (after one warm-up) in this process with `threads` torch
    threads, then count the FLOPs of a few more."""
    torch.set_num_threads(threads)
    config = build_config("GridNavi", method, lr=1e-3, seed=0, eval_interval=0)
    algo = config.build_algo()
    first = algo.train()  # warm-up: first-call allocations, connector set-up
    sample_s = learn_s = 0.0
    start = time.perf_counter()
    for _ in range(iterations):
        result = algo.train()
        sample_s += result["timers"]["env_runner_sampling_timer"]
        learn_s += result["timers"]["learner_update_timer"]
    wall = time.perf_counter() - start
    frames = result["env_runners"]["num_env_steps_sampled_lifetime"] - first["env_runners"]["num_env_steps_sampled_lifetime"]
    flops_per_frame = count_flops_per_frame(algo, config, iterations=2)
    params = algo.get_module().num_params()
    algo.stop()
    spec = get_method(method)
    return {"method": method, "core": spec.core, "policy": spec.policy_input, "threads": threads, "params": params, "end_to_end_sps": frames / wall,
            "sample_s_per_iter": sample_s / iterations, "learn_s_per_iter": learn_s / iterations,
            "flops_per_frame": flops_per_frame, "achieved_gflops": flops_per_frame * frames / wall / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["rnn", "rnn_s", "rnn_hn"])
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}),
                        help="torch thread counts to measure each method with (default: 1 and one per CPU)")
    args = parser.parse_args()
    init_ray(num_cpus=2, include_dashboard=False)
    register_all()
    peak = gemm_peak_gflops()
    raw_env = env_steps_per_s()
    forms = hypernet_forms()
    rows = [measure_method(m, args.iterations, threads) for threads in args.threads for m in args.methods]
    ray.shutdown()
    reference = {r["threads"]: r["learn_s_per_iter"] for r in rows if r["method"] == "rnn_s"}
    print(f"\nsingle-core float32 GEMM peak: {peak:.1f} GFLOP/s;  GridNavi trial env: {raw_env:,.0f} steps/s (1 core)")
    print(f"hypernet 256x256 layer, 976 samples: per-sample bmm {forms['bmm']:.1f} GFLOP/s, "
          f"outer-product GEMM {forms['outer_gemm']:.1f} GFLOP/s ({forms['outer_gemm'] / forms['bmm']:.1f}x)")
    print(f"\n{'method':<15} {'core':<12} {'policy':<7} {'threads':>7} {'params':>10} {'env-steps/s':>12} {'env/train':>10} {'sample s':>9} {'learn s':>8} "
          f"{'learn/rnn_s':>11} {'MFLOP/frame':>12} {'GFLOP/s':>8} {'of 1-core peak':>15}")
    for r in rows:
        print(f"{r['method']:<15} {r['core']:<12} {r['policy']:<7} {r['threads']:>7} {r['params']:>10,} {r['end_to_end_sps']:>12,.0f} {raw_env / r['end_to_end_sps']:>10.0f} "
              f"{r['sample_s_per_iter']:>9.3f} {r['learn_s_per_iter']:>8.3f} {r['learn_s_per_iter'] / reference.get(r['threads'], math.nan):>11.2f} "
              f"{r['flops_per_frame'] / 1e6:>12.1f} {r['achieved_gflops']:>8.1f} {r['achieved_gflops'] / peak:>15.0%}")
    print(f"\n(one iteration = 960 env steps: 16 envs x 60; {args.iterations} iterations per method; torch "
          f"{torch.__version__}, {os.cpu_count()} CPUs visible, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")


if __name__ == "__main__":
    main()
