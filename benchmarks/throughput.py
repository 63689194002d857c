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

With `--profile` it prints instead where a frame's time goes, per method (one torch thread):
env step, env-to-module connectors, module inference, module-to-env connectors, episode
bookkeeping (the rest of sampling), learner connectors (GAE, padding), the encoder's forward over
the trials, the policy and value heads with the PPO loss, backward,
gradient clipping, optimiser step, the auxiliary (VAE) steps, the rest of the learner update and
the weight sync, each timed around the RLlib call that does it (`profile_method`).
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


STOCK = "stock_lstm"  # RLlib's own PPO + LSTM, the comparison of issue 14 (`stock_lstm_config`)


def stock_lstm_config():
    """RLlib's stock PPO with its default LSTM model (256 cells over an MLP 256-128, separate value
    branch) on the same GridNavi trial env, with the same batch (16 envs x 60 steps, 2 epochs x 4
    minibatches of whole trials) and the paper's PPO coefficients: what a user gets from RLlib
    without this project."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from rl_hyper.training.config import padded_minibatch_size

    trial_length = 60
    return (
        PPOConfig()
        .environment("GridNavi")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=16, rollout_fragment_length=60)
        .rl_module(model_config=DefaultModelConfig(use_lstm=True, lstm_cell_size=256, fcnet_hiddens=[256, 128],
                                                   max_seq_len=trial_length + 1))
        .training(lr=1e-3, gamma=0.95, lambda_=0.95, clip_param=0.05, entropy_coeff=0.1, vf_loss_coeff=0.5,
                  num_epochs=2, train_batch_size_per_learner=960, grad_clip=0.5, grad_clip_by="global_norm",
                  minibatch_size=padded_minibatch_size(16, 60, trial_length + 1, 4), use_kl_loss=False)
        .debugging(seed=0)
    )


def trial_config(method: str):
    """The PPOConfig of one GridNavi trial of `method` (a method id or STOCK), without evaluation."""
    if method == STOCK:
        return stock_lstm_config()
    return build_config("GridNavi", method, lr=1e-3, seed=0, eval_interval=0)


def measure_method(method: str, iterations: int, threads: int) -> dict:
    """Time `iterations` PPO iterations (after one warm-up) in this process with `threads` torch
    threads, then count the FLOPs of a few more. `method`: a method id or STOCK."""
    torch.set_num_threads(threads)
    config = trial_config(method)
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
    params = sum(parameter.numel() for parameter in algo.get_module().parameters())
    algo.stop()
    spec = None if method == STOCK else get_method(method)
    core, policy = ("lstm (RLlib)", "obs") if spec is None else (spec.core, spec.policy_input)
    return {"method": method, "core": core, "policy": policy, "threads": threads, "params": params,
            "end_to_end_sps": frames / wall,
            "sample_s_per_iter": sample_s / iterations, "learn_s_per_iter": learn_s / iterations,
            "flops_per_frame": flops_per_frame, "achieved_gflops": flops_per_frame * frames / wall / 1e9}


class _Timed:
    """Stands in for a callable attribute (a method, a connector pipeline) and adds the seconds of
    each call to `totals[key]`; every other attribute is the target's."""

    def __init__(self, target, totals: dict, key: str):
        self._target, self._totals, self._key = target, totals, key

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._target(*args, **kwargs)
        finally:
            self._totals[self._key] += time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self._target, name)


PROFILE_SECTIONS = {  # section -> (owner in the algorithm, attribute timed); the rest are remainders
    "env step": ("runner", "_try_env_step"),
    "env-to-module": ("runner", "_env_to_module"),
    "inference": ("runner.module", "forward_exploration"),
    "module-to-env": ("runner", "_module_to_env"),
    "learner connectors": ("learner", "_learner_connector"),
    "encoder forward": ("learner.module", "forward_train"),
    "heads + PPO loss": ("learner", "compute_losses"),
    "backward": ("learner", "compute_gradients"),
    "grad clip": ("learner", "postprocess_gradients"),
    "optimiser": ("learner", "apply_gradients"),
    "aux (VAE)": ("learner", "train_vae"),
}


WHOLE_STEPS = {  # the three steps of a PPO iteration, timed whole: the remainders above come from them
    "sampling": ("algo.env_runner", "sample"),
    "update": ("algo.learner_group", "update"),
    "weight sync": ("algo.env_runner_group", "sync_weights"),
}


def profile_method(method: str, iterations: int) -> dict:
    """Seconds per 1,000 frames of each PROFILE_SECTIONS call and of the remainders: "episode
    bookkeeping" (sampling minus its timed calls), "learner other" (the update minus its timed
    calls: minibatching, metrics) and "other" (the iteration minus WHOLE_STEPS: RLlib's metrics
    and bookkeeping), over `iterations` iterations after a warm-up one, one torch thread."""
    torch.set_num_threads(1)
    algo = trial_config(method).build_algo()
    algo.train()
    owners = {"runner": algo.env_runner, "runner.module": algo.env_runner.module,
              "learner": algo.learner_group._learner, "learner.module": algo.learner_group._learner.module}
    owners.update({"algo.env_runner": algo.env_runner, "algo.learner_group": algo.learner_group,
                   "algo.env_runner_group": algo.env_runner_group})
    totals = dict.fromkeys([*PROFILE_SECTIONS, *WHOLE_STEPS], 0.0)
    for key, (owner, name) in {**PROFILE_SECTIONS, **WHOLE_STEPS}.items():
        if hasattr(owners[owner], name):
            setattr(owners[owner], name, _Timed(getattr(owners[owner], name), totals, key))
    frames = 0
    start = time.perf_counter()
    for _ in range(iterations):
        frames += algo.train()["env_runners"]["num_env_steps_sampled"]
    wall = time.perf_counter() - start
    algo.stop()
    sampling = ("env step", "env-to-module", "inference", "module-to-env")
    learning = ("learner connectors", "encoder forward", "heads + PPO loss", "backward", "grad clip", "optimiser",
                "aux (VAE)")
    seconds = {key: totals[key] for key in PROFILE_SECTIONS}
    seconds["episode bookkeeping"] = totals["sampling"] - sum(totals[key] for key in sampling)
    seconds["learner other"] = totals["update"] - sum(totals[key] for key in learning)
    seconds["weight sync"] = totals["weight sync"]
    seconds["other"] = wall - totals["sampling"] - totals["update"] - totals["weight sync"]
    return {"method": method, "frames_per_s": frames / wall,
            "ms_per_1000_frames": {key: 1000 * value / frames * 1000 for key, value in seconds.items()}}


def print_profile(methods: list[str], iterations: int) -> None:
    rows = [profile_method(method, iterations) for method in methods]
    sections = list(rows[0]["ms_per_1000_frames"])
    print("\nms per 1,000 frames (share of the total), one torch thread, GridNavi, paper batch")
    print(f"{'section':<20}" + "".join(f"{row['method']:>22}" for row in rows))
    for section in sections:
        cells = []
        for row in rows:
            value, total = row["ms_per_1000_frames"][section], sum(row["ms_per_1000_frames"].values())
            cells.append(f"{value:>14.1f} ({value / total:>4.0%})")
        print(f"{section:<20}" + "".join(cells))
    print(f"{'total':<20}" + "".join(f"{sum(row['ms_per_1000_frames'].values()):>22.1f}" for row in rows))
    print(f"{'frames/s':<20}" + "".join(f"{row['frames_per_s']:>22,.0f}" for row in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["rnn", "rnn_s", "rnn_hn", STOCK],
                        help=f"method ids, and {STOCK} for RLlib's stock PPO + LSTM-256 (the comparison)")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}),
                        help="torch thread counts to measure each method with (default: 1 and one per CPU)")
    parser.add_argument("--profile", action="store_true", help="print where a frame's time goes, per method")
    args = parser.parse_args()
    init_ray(num_cpus=2, include_dashboard=False)
    register_all()
    if args.profile:
        print_profile(args.methods, args.iterations)
        ray.shutdown()
        return
    peak = gemm_peak_gflops()
    raw_env = env_steps_per_s()
    forms = hypernet_forms()
    rows = [measure_method(m, args.iterations, threads) for threads in args.threads for m in args.methods]
    ray.shutdown()
    reference = {r["threads"]: r["learn_s_per_iter"] for r in rows if r["method"] == "rnn_s"}
    stock = {r["threads"]: r["end_to_end_sps"] for r in rows if r["method"] == STOCK}
    print(f"\nsingle-core float32 GEMM peak: {peak:.1f} GFLOP/s;  GridNavi trial env: {raw_env:,.0f} steps/s (1 core)")
    print(f"hypernet 256x256 layer, 976 samples: per-sample bmm {forms['bmm']:.1f} GFLOP/s, "
          f"outer-product GEMM {forms['outer_gemm']:.1f} GFLOP/s ({forms['outer_gemm'] / forms['bmm']:.1f}x)")
    print(f"\n{'method':<15} {'core':<12} {'policy':<7} {'threads':>7} {'params':>10} {'env-steps/s':>12} "
          f"{'vs stock':>8} {'env/train':>10} {'sample s':>9} {'learn s':>8} {'learn/rnn_s':>11} {'MFLOP/frame':>12} "
          f"{'GFLOP/s':>8} {'of 1-core peak':>15}")
    for r in rows:
        print(f"{r['method']:<15} {r['core']:<12} {r['policy']:<7} {r['threads']:>7} {r['params']:>10,} "
              f"{r['end_to_end_sps']:>12,.0f} {r['end_to_end_sps'] / stock.get(r['threads'], math.nan):>8.2f} "
              f"{raw_env / r['end_to_end_sps']:>10.0f} {r['sample_s_per_iter']:>9.3f} {r['learn_s_per_iter']:>8.3f} "
              f"{r['learn_s_per_iter'] / reference.get(r['threads'], math.nan):>11.2f} {r['flops_per_frame'] / 1e6:>12.1f} "
              f"{r['achieved_gflops']:>8.1f} {r['achieved_gflops'] / peak:>15.0%}")
    print(f"\n(one iteration = 960 env steps: 16 envs x 60; {args.iterations} iterations per method; torch "
          f"{torch.__version__}, {os.cpu_count()} CPUs visible, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")


if __name__ == "__main__":
    main()
