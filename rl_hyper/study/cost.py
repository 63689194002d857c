"""What a study will cost before it runs: each method's trial measured for a few iterations here.

`rl-hyper sweep FILE --dry-run --calibrate` builds one trial per method exactly as the study
configures it (env, PPO and auxiliary settings, env runners, GPU learner; the study's first
learning rate and seed), runs one warm-up training iteration and then CALIBRATION_ITERATIONS
timed ones, and projects from the measured frames per second of wall time:

    hours per trial = frames / (frames/s) / 3600
    core-hours      = sum over trials of hours per trial x cpus_per_trial
    GPU-hours       = sum over trials of hours per trial x num_gpus_per_learner

Not included: the trials' start-up (about 10 s each) and their evaluation runs (every
`evaluation.interval` iterations). A trial's speed depends on the machine it runs on: a
calibration on a laptop projects a laptop's cost; run it on a node of the cluster to project the
cluster's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rl_hyper.study.spec import Study

CALIBRATION_ITERATIONS = 3


@dataclass(frozen=True)
class MethodCost:
    """One method's measured speed and its share of the study's cost."""

    method: str
    frames_per_s: float  # of one trial, wall time, as the study configures it
    trials: int  # the method's trials in the study (learning rates x seeds)
    hours_per_trial: float
    core_hours: float
    gpu_hours: float


def measure_frames_per_s(study: Study, method: str, iterations: int = CALIBRATION_ITERATIONS) -> float:
    """Frames per second of wall time of one of the study's trials of `method`, over `iterations`
    training iterations after a warm-up one (needs Ray started)."""
    from rl_hyper.study.sweep import build_arguments
    from rl_hyper.training.config import build_config

    arguments = {**build_arguments(study), "eval_interval": 0}  # evaluation is not projected (module docstring)
    config = build_config(**arguments, method=method, lr=study.lr_grid[0], seed=study.seeds[0], frames=study.frames)
    algo = config.build_algo()
    try:
        frames_before = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        start = time.perf_counter()
        for _ in range(iterations):
            result = algo.train()
        wall = time.perf_counter() - start
    finally:
        algo.stop()
    return (result["env_runners"]["num_env_steps_sampled_lifetime"] - frames_before) / wall


def project(study: Study, frames_per_s: dict[str, float]) -> list[MethodCost]:
    """The study's cost per method from each method's measured `frames_per_s`."""
    trials_per_method = len(study.lr_grid) * len(study.seeds)
    costs = []
    for method in study.methods:
        hours = study.frames / frames_per_s[method] / 3600
        costs.append(MethodCost(method, frames_per_s[method], trials_per_method, hours,
                                trials_per_method * hours * study.resources.cpus_per_trial,
                                trials_per_method * hours * study.resources.num_gpus_per_learner))
    return costs


def cost_table(study: Study, costs: list[MethodCost]) -> str:
    """The projection as printable rows, one per method, and the study's total."""
    gpus = study.resources.num_gpus_per_learner > 0
    header = f"{'method':<15} {'frames/s':>9} {'trials':>6} {'h/trial':>8} {'core-h':>9}"
    rows = [header + (f" {'GPU-h':>8}" if gpus else "")]
    for cost in costs:
        rows.append(f"{cost.method:<15} {cost.frames_per_s:>9,.0f} {cost.trials:>6} {cost.hours_per_trial:>8.2f} "
                    f"{cost.core_hours:>9,.1f}" + (f" {cost.gpu_hours:>8,.1f}" if gpus else ""))
    core_hours = sum(cost.core_hours for cost in costs)
    total = f"projected cost of {study.name}: {core_hours:,.1f} core-hours"
    if gpus:
        total += f" and {sum(cost.gpu_hours for cost in costs):,.1f} GPU-hours"
    rows.append(total + f" ({study.resources.cpus_per_trial:g} CPU(s) per trial, trial speeds measured here over "
                        f"{CALIBRATION_ITERATIONS} iterations each; start-up and evaluation not included)")
    return "\n".join(rows)
