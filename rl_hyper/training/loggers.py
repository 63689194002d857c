"""Where results go besides Tune's progress.csv / result.json: TensorBoard always, MLflow and
Weights & Biases when a study asks for them (`logging:` in its YAML).

TensorBoard: every trial folder holds an `events.out.tfevents.*` file (Tune's TensorBoardX
logger). `MetricsToTensorBoard` writes this platform's metrics there under the tags of README's
metrics table, `rl_hyper/<name>` (e.g. `rl_hyper/eval_trial_return`, `rl_hyper/policy_loss`),
with environment frames as the step, so curves of methods with different iteration sizes line up;
NaN values (between evaluations) and the trial's identity (env, method, lr, seed: the run's folder
name says them) are left out. RLlib's and Tune's own numbers stay under
`ray/tune/...`, stepped by training iteration, as Tune writes them. Watch a study with
`tensorboard --logdir results/<study>`: one run per trial folder.

MLflow and W&B: Tune's own `MLflowLoggerCallback` / `WandbLoggerCallback` (ray.air.integrations),
one MLflow run / W&B run per trial with every number of the result. Neither package is a
dependency: `pip install "rl_hyper[tracking]"` (or the package alone); `tracking_callbacks` raises
ValueError naming the package when it is missing.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import numpy as np
from ray.tune.logger import TBXLoggerCallback

METRICS_PREFIX = "rl_hyper"
TRIAL_IDENTITY = ("env", "method", "lr", "seed")  # constant per trial: the run's name, not curves


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class MetricsToTensorBoard(TBXLoggerCallback):
    """Tune's TensorBoard logger with the `rl_hyper` section of each result as `rl_hyper/<name>`
    scalars stepped by frames (module docstring). Replaces Tune's default TensorBoard logger."""

    def log_trial_result(self, iteration: int, trial, result: dict):
        ours = result.get(METRICS_PREFIX) or {}
        super().log_trial_result(iteration, trial, {key: value for key, value in result.items() if key != METRICS_PREFIX})
        writer = self._trial_writer[trial]
        step = int(ours.get("frames", result.get("training_iteration", 0)))
        for name, value in ours.items():
            if name not in TRIAL_IDENTITY and _is_number(value) and math.isfinite(value):
                writer.add_scalar(f"{METRICS_PREFIX}/{name}", float(value), global_step=step)
        writer.flush()


def check_tracking(tracking: dict) -> None:
    """ValueError naming the package when a logger of `tracking` ({"mlflow": ..., "wandb": ...})
    is switched on but its package is not installed."""
    for package in tracking:
        if importlib.util.find_spec(package) is None:
            raise ValueError(f"logging.{package} needs the {package} package, which is not installed: "
                             f"pip install {package}  (or: pip install 'rl_hyper[tracking]')")


def tracking_callbacks(mlflow: dict | None = None, wandb: dict | None = None, *, experiment: str) -> list:
    """Tune's MLflow / W&B logger callbacks for the given settings (None = off).

    mlflow: tracking_uri (default: Tune's default, ./mlruns), experiment_name (default:
    `experiment`), tags. wandb: project (default: `experiment`), group, and any `wandb.init`
    argument, e.g. mode ("offline" writes ./wandb/offline-run-* for `wandb sync`), dir, entity.
    """
    check_tracking({name: settings for name, settings in (("mlflow", mlflow), ("wandb", wandb)) if settings is not None})
    callbacks = []
    if mlflow is not None:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        settings = {"experiment_name": experiment, **mlflow}
        callbacks.append(MLflowLoggerCallback(**settings))
    if wandb is not None:
        from ray.air.integrations.wandb import WandbLoggerCallback

        settings = {"project": experiment, **wandb}
        if settings.get("mode") in ("offline", "disabled"):
            # Tune's callback asks for an API key unless WANDB_MODE says offline (its `mode` argument
            # reaches only wandb.init in the logging actors)
            os.environ["WANDB_MODE"] = settings["mode"]
        callbacks.append(WandbLoggerCallback(**settings))
    return callbacks
