"""Running trials on Ray Tune: Ray start-up, the progress line, versions, the one-trial `train`.

Every run (one `train` or a whole study) is a Tune experiment, so results always have Tune's
layout: <storage>/<experiment>/<trial>/{progress.csv, result.json, params.json, checkpoint_*}
plus <storage>/<experiment>/versions.json (python, ray, torch, gymnasium, numpy, mujoco).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import sys
from pathlib import Path

STOP_KEY = "env_runners/num_env_steps_sampled_lifetime"
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def versions() -> dict:
    """Resolved versions of everything that changes results."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("rl_hyper", "ray", "torch", "gymnasium", "numpy", "mujoco"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def write_versions(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "versions.json"
    path.write_text(json.dumps(versions(), indent=2) + "\n")
    return path


def init_ray(address: str | None = None, num_cpus: int | None = None, include_dashboard: bool | None = None) -> None:
    """Start (or join) Ray with one torch thread per process, on loopback when local."""
    import ray
    import torch

    os.environ.update(THREAD_ENV)
    torch.set_num_threads(1)
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": dict(THREAD_ENV)}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", runtime_env=runtime_env,
                 include_dashboard=include_dashboard, log_to_driver=False)


def _fmt(value) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.2f}"


def progress_line(result: dict) -> str:
    """One line per training iteration from a result's `rl_hyper` section."""
    section = result["rl_hyper"]

    def inner(prefix):
        values = [section[key] for key in sorted(section) if key.startswith(f"{prefix}_inner_return_")]
        return "/".join(_fmt(v).strip() for v in values)

    line = (f"{section['method']:>14} lr={section['lr']:.0e} seed={section['seed']:<3} "
            f"it {result.get('training_iteration', 0):4d}  frames {section['frames']:>10,}  "
            f"train {_fmt(section.get('train_trial_return'))} [{inner('train')}]  "
            f"{section['env_steps_per_s']:6.0f} steps/s")
    if not math.isnan(section.get("eval_trial_return", math.nan)):
        line += f"  eval {_fmt(section['eval_trial_return'])} [{inner('eval')}]"
    return line


def progress_callback():
    """A Tune callback printing `progress_line` for every trial result."""
    from ray import tune

    class ProgressPrinter(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if "rl_hyper" in result:
                print(progress_line(result), flush=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            print(f"trial {trial.trial_id} failed: {trial.error_file}", file=sys.stderr, flush=True)

    return ProgressPrinter()


def train(config, *, frames: int, output: str, name: str) -> Path:
    """Train one PPO trial with `config` to `frames` env steps under Tune; returns the trial dir."""
    from ray import tune
    from ray.rllib.algorithms.ppo import PPO

    storage = Path(output).resolve()
    write_versions(storage / name)
    tuner = tune.Tuner(
        PPO, param_space=config,
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), stop={STOP_KEY: frames}, verbose=0,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True, num_to_keep=1),
            callbacks=[progress_callback()],
        ),
    )
    result = tuner.fit()[0]
    if result.error:
        raise RuntimeError(f"training failed: {result.error}")
    return Path(result.path)
