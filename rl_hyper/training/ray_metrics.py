"""Per-trial metrics exported to Prometheus through `ray.util.metrics`.

Every Ray node runs a metrics agent that serves the Prometheus text format on the node's metrics
export port (`ray start --metrics-export-port=...`, `ray.init(_metrics_export_port=...)`; Ray
writes the scrape targets for all nodes to `/tmp/ray/prom_metrics_service_discovery.json`).
`export_result` turns one training result into gauge updates there, so the Ray dashboard's
metrics view (Grafana) can plot every trial of a running study next to Ray's own metrics.

Gauges (Prometheus adds Ray's `ray_` prefix), one series per (study, trial, method, env):

    ray_rl_hyper_train_trial_return   mean return of a whole trial (all inner episodes), training
    ray_rl_hyper_eval_trial_return    the same on fresh evaluation tasks
    ray_rl_hyper_env_steps_per_s      environment steps sampled per second
    ray_rl_hyper_frames               environment frames (steps) done so far in the trial

Results may be flat, as Tune reports them (`result["rl_hyper/frames"]`), or nested, as RLlib
returns them (`result["rl_hyper"]["frames"]`). Keys that are absent (evaluation runs only every
few iterations) are skipped. Needs `ray[default]`: without it the node has no metrics agent and
the values are recorded but never served.

Usage, from any process attached to Ray (a trial actor, a Tune callback in the driver):

    export_result(result, {"study": "quickstart", "trial": trial_id, "method": "rnn_hn",
                           "env": "GridNavi-v0"})
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Mapping

from ray.util.metrics import Gauge

RESULT_GROUP = "rl_hyper"
TAG_KEYS = ("study", "trial", "method", "env")

# result key inside the "rl_hyper" group -> (gauge name, description)
GAUGES: dict[str, tuple[str, str]] = {
    "train_trial_return": (
        "rl_hyper_train_trial_return",
        "Mean return of a whole trial (all inner episodes) during training.",
    ),
    "eval_trial_return": (
        "rl_hyper_eval_trial_return",
        "Mean return of a whole trial on fresh evaluation tasks.",
    ),
    "env_steps_per_s": (
        "rl_hyper_env_steps_per_s",
        "Environment steps sampled per second.",
    ),
    "frames": (
        "rl_hyper_frames",
        "Environment frames (steps) done so far in the trial.",
    ),
}

# Created on first use, once per process: a Gauge registers itself with the process's core
# worker, so it must not be built at import time (before ray.init) nor once per result.
_gauges: dict[str, Gauge] = {}


def _gauge(key: str) -> Gauge:
    if key not in _gauges:
        name, description = GAUGES[key]
        _gauges[key] = Gauge(name, description=description, tag_keys=TAG_KEYS)
    return _gauges[key]


def read_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """Our metric values in `result`, by key of `GAUGES`; flat "rl_hyper/x" keys win over nested.

    Absent, None, boolean, non-numeric and non-finite values are left out.
    """
    nested = result.get(RESULT_GROUP)
    nested = nested if isinstance(nested, Mapping) else {}
    values = {}
    for key in GAUGES:
        value = result.get(f"{RESULT_GROUP}/{key}", nested.get(key))
        if isinstance(value, bool) or not isinstance(value, Real):
            continue
        value = float(value)
        if math.isfinite(value):
            values[key] = value
    return values


def export_result(result: Mapping[str, Any], tags: Mapping[str, Any]) -> dict[str, float]:
    """Set one gauge per metric found in `result`; returns what was set, by key of `GAUGES`.

    `tags` must give every key of TAG_KEYS (values are turned into strings); other keys are
    ignored. Call it in a process connected to Ray (after `ray.init`, or inside a task/actor).
    """
    missing = [key for key in TAG_KEYS if key not in tags]
    if missing:
        raise ValueError(f"export_result: missing tag(s) {missing}; need all of {TAG_KEYS}")
    series = {key: str(tags[key]) for key in TAG_KEYS}
    values = read_metrics(result)
    for key, value in values.items():
        _gauge(key).set(value, tags=series)
    return values
