"""RLlib callbacks: per-trial metrics with fixed names (the contract with study/analysis.py).

On every env runner (training and evaluation) each finished trial logs its raw return and the
raw return of each inner episode (from the TrialWrapper's info). After every iteration the
algorithm's result gets a flat section `rl_hyper` (progress.csv columns `rl_hyper/<name>`):

    env, method, lr, seed        constants of the trial
    frames                       env steps sampled so far (warm-up frames included)
    train_trial_return           mean raw trial return of recent training trials
    train_inner_return_<k>       the same for inner episode k = 1..K
    eval_trial_return            mean raw trial return of this iteration's evaluation (see
                                 training/evaluation.py: every task of a finite task set, else
                                 sampled tasks); NaN on iterations without evaluation
    eval_inner_return_<k>        the same for inner episode k
    eval_trials                  trials of that evaluation (21 on the grid-worlds); NaN without
    env_steps_per_s              frames of this iteration / its wall time
    sampler_time_s, learner_time_s   seconds spent sampling / updating, summed since the trial's
                                 process started (a resumed trial counts from its restart); sums of
                                 RLlib's smoothed per-iteration timers, so approximate
    num_params                   parameters of the RLModule
    <learner metric>             total_loss, policy_loss, vf_loss, entropy, approx_kl, clip_fraction,
                                 and aux_* / warm_up* of the auxiliary objectives

    env_runner_restarts          env runners RLlib has restarted after a failure, since the trial's
                                 process started

A non-finite loss stops the trial with an error naming the metric, except in an iteration that
sampled no env step (its env runners failed): its losses are left NaN.
"""

from __future__ import annotations

import math

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core import DEFAULT_MODULE_ID

from rl_hyper.envs.registry import make_trial_env
from rl_hyper.envs.trial import INFO_INNER_RETURNS
from rl_hyper.models.methods import Method, get_method
from rl_hyper.models.objectives import objectives_of
from rl_hyper.training.evaluation import EvaluationSettings, evaluation_tasks, play_trials

TRIAL_RETURN = "trial_return"
LEARNER_METRICS = ("total_loss", "policy_loss", "vf_loss", "entropy", "approx_kl", "clip_fraction", "latent_norm")
AUX_PREFIXES = ("aux_", "warm_up")  # auxiliary objectives of the TI / VariBAD methods


def inner_return_key(k: int) -> str:
    """Metric name of inner episode k (1-based)."""
    return f"inner_return_{k}"


def initial_lr(lr) -> float:
    """The study's learning rate: `lr` itself, or the first value of a [[step, lr], ...] schedule."""
    return float(lr[0][1]) if isinstance(lr, (list, tuple)) else float(lr)


def _count(value) -> int:
    """A count from RLlib's result; NaN (nothing reported this iteration) counts 0."""
    value = float(value)
    return 0 if math.isnan(value) else int(value)


def aux_metric_names(method: Method) -> tuple[str, ...]:
    """The auxiliary learner metrics of `method`: declared (NaN) from the first iteration on, since
    Tune fixes progress.csv's columns at the first result (TI logs no task loss during warm-up)."""
    names = tuple(name for objective in objectives_of(method) for name in objective.metric_names)
    return names + (("warm_up",) if method.warm_up != "none" else ())


class MetaMetricsCallbacks(RLlibCallback):
    """Logs trial and inner-episode returns, evaluates every `evaluation.interval` iterations and
    assembles the `rl_hyper` result section. Configure as
    `config.callbacks(functools.partial(MetaMetricsCallbacks, evaluation=EvaluationSettings(...)))`."""

    def __init__(self, evaluation: EvaluationSettings | None = None):
        super().__init__()
        self.evaluation = evaluation or EvaluationSettings(interval=0)
        self._eval_envs: list = []
        self._eval_tasks: list = []
        self._num_params = None
        self._episodes_per_trial = 0
        self._sampler_time = 0.0
        self._learner_time = 0.0

    def on_episode_end(self, *, episode, env_runner=None, metrics_logger=None, **kwargs) -> None:
        info = episode.get_infos(-1)
        if INFO_INNER_RETURNS not in info:  # a trial cut off by the sampler, not a finished one
            return
        window = env_runner.config.metrics_num_episodes_for_smoothing
        inner = np.asarray(info[INFO_INNER_RETURNS], np.float64)
        metrics_logger.log_value(TRIAL_RETURN, float(inner.sum()), window=window)
        for k, value in enumerate(inner, start=1):
            metrics_logger.log_value(inner_return_key(k), float(value), window=window)

    def _evaluate(self, algorithm) -> dict:
        """One evaluation of the current policy: {trial_return, inner_return_<k>, trials}."""
        config = algorithm.config
        if not self._eval_envs:
            probe = make_trial_env(config.env, config.env_config)
            self._eval_tasks = evaluation_tasks(probe, self.evaluation)
            self._eval_envs = [probe] + [make_trial_env(config.env, config.env_config)
                                         for _ in self._eval_tasks[1:]]
        inner = play_trials(algorithm.get_module(), self._eval_envs, self._eval_tasks,
                            deterministic=self.evaluation.deterministic, seed=self.evaluation.seed)
        section = {TRIAL_RETURN: float(inner.sum(axis=1).mean()), "trials": len(self._eval_tasks)}
        section.update({inner_return_key(k): float(value) for k, value in enumerate(inner.mean(axis=0), start=1)})
        return section

    @staticmethod
    def _returns(section: dict, prefix: str, episodes_per_trial: int) -> dict:
        """Every return column, NaN where `section` has no value (Tune fixes the CSV header at
        the first result, so a column must be there from iteration 1)."""
        keys = [TRIAL_RETURN] + [inner_return_key(k) for k in range(1, episodes_per_trial + 1)]
        return {f"{prefix}_{key}": float(section.get(key, math.nan)) for key in keys}

    def on_train_result(self, *, algorithm, metrics_logger=None, result: dict, **kwargs) -> None:
        config = algorithm.config
        if self._num_params is None:
            self._num_params = algorithm.get_module().num_params()
            probe = make_trial_env(config.env, config.env_config)
            self._episodes_per_trial = probe.episodes_per_trial
            probe.close()
        frames = int(result["env_runners"].get("num_env_steps_sampled_lifetime", 0))
        timers = result.get("timers", {})
        self._sampler_time += float(timers.get("env_runner_sampling_timer", 0.0))
        self._learner_time += float(timers.get("learner_update_timer", 0.0))
        iteration_time = max(float(result.get("time_this_iter_s", 0.0)), 1e-9)
        section = {
            "env": config.env, "method": config.model_config["method"], "lr": initial_lr(config.lr),
            "seed": int(config.seed), "frames": frames,
            "env_steps_per_s": float(result["env_runners"].get("num_env_steps_sampled", 0)) / iteration_time,
            "sampler_time_s": self._sampler_time, "learner_time_s": self._learner_time,
            "num_params": self._num_params,
        }
        section.update(self._returns(result["env_runners"], "train", self._episodes_per_trial))
        section.update({name: math.nan for name in aux_metric_names(get_method(config.model_config["method"]))})
        section["env_runner_restarts"] = _count(result.get("fault_tolerance", {}).get("num_remote_worker_restarts", 0))
        sampled = _count(result["env_runners"].get("num_env_steps_sampled", 0))
        # no env step sampled: every env runner failed this iteration (RLlib restarts them) and the
        # learner saw an empty batch; its NaN losses are no divergence and are not recorded
        learner = result.get("learners", {}).get(DEFAULT_MODULE_ID, {}) if sampled else {}
        for name, value in learner.items():  # checked before evaluating a policy the update may have broken
            if name in LEARNER_METRICS or name.startswith(AUX_PREFIXES):
                if name.endswith("loss") and not math.isfinite(float(value)):
                    raise FloatingPointError(f"non-finite {name} ({value}) at {frames} frames")
                section[name] = float(value)
        interval = self.evaluation.interval
        evaluation = self._evaluate(algorithm) if interval and result["training_iteration"] % interval == 0 else {}
        section.update(self._returns(evaluation, "eval", self._episodes_per_trial))
        section["eval_trials"] = float(evaluation.get("trials", math.nan))
        result["rl_hyper"] = section
