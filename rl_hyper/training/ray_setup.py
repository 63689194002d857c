"""Setting up the Ray processes: `init_ray` (one torch thread per process, a local Ray on loopback),
`quiet_ray_logs` (drops Ray's log lines that need no action, KNOWN_NOISE, unless verbose) and the
versions of everything that changes results (`versions`, `write_versions`: <experiment>/versions.json).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import sys
from pathlib import Path

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray in the driver of a Ray job
# Ray 2.60 on Linux rewrites 127.0.0.1 / localhost to the machine's network address
# (ray._private.services.resolve_ip_for_localhost) but keeps any other loopback address: a local
# Ray on 127.0.0.2 stays on loopback. Elsewhere (macOS) only 127.0.0.1 exists and is kept.
LOCAL_NODE_IP = "127.0.0.2" if sys.platform.startswith("linux") else "127.0.0.1"
# Ray log lines that ask for nothing, by the logger that writes them (dropped at verbosity < 2):
# the new API stack is our choice (DESIGN.md); token authentication stays on, as it should; Tune's
# note that it wrote the experiment state at the end, and its lines about a stop on a signal (ours
# say what happens and give the resume command; Tune's name its Python API).
KNOWN_NOISE = {
    "ray.rllib.algorithms.algorithm_config": ("You are running PPO on the new API stack!",),
    "ray._private.authentication.authentication_token_setup": ("Token authentication is enabled for this Ray cluster.",),
    "ray.tune.tune": ("Wrote the latest version of all result files and experiment state", "Stop signal received",
                      "Experiment has been interrupted", "Trials did not complete"),
}


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
    """Start (or join) Ray with one torch thread per process; a local Ray stays on loopback."""
    import ray
    import torch

    os.environ.update(THREAD_ENV)
    torch.set_num_threads(1)
    if ray.is_initialized():
        return
    # a Ray job's driver already runs in the job's runtime env (which sets THREAD_ENV, see
    # study/submit.py); Ray refuses to merge a second one that sets the same variables
    runtime_env = None if os.environ.get(JOB_CONFIG_ENV) else {"env_vars": dict(THREAD_ENV)}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, _node_ip_address=LOCAL_NODE_IP, runtime_env=runtime_env,
                 include_dashboard=include_dashboard, log_to_driver=False)


class _DropMessage(logging.Filter):
    """Drops the records of one logger whose message starts with one of `prefix`."""

    def __init__(self, prefix: tuple[str, ...]):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quiet_ray_logs(verbosity: int = 1) -> None:
    """Ray's console logging for `verbosity`: 0 = warnings and errors only, without KNOWN_NOISE;
    1 = also Ray's start-up line (the dashboard address), without KNOWN_NOISE; 2 = everything.

    The filters sit on the loggers that write those lines (a logger-level filter sees only its own
    records), so they work before the module that logs is imported.
    """
    import ray  # noqa: F401  (configures the "ray" logger and its handler)

    for name, prefix in KNOWN_NOISE.items():
        source = logging.getLogger(name)
        for existing in [f for f in source.filters if isinstance(f, _DropMessage)]:
            source.removeFilter(existing)
        if verbosity < 2:
            source.addFilter(_DropMessage(prefix))
    logging.getLogger("ray").setLevel(logging.WARNING if verbosity < 1 else logging.INFO)
