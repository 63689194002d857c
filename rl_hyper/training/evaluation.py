"""Evaluation: the current policy plays one full trial on each of a set of tasks.

Task sets (`EvaluationSettings.task_set`):
    "all":     every task of a finite task distribution (GridNavi and its variants: the 21 goals;
               MC-LS: both indicators; CheetahDir, AntDir: both directions), each repeated
               ceil(num_tasks / number of tasks) times, so at least `num_tasks` trials run. With
               deterministic actions on a deterministic env (the grid-worlds) the mean trial
               return is the exact expected return over the task distribution: no sampling noise.
               Envs whose task distribution is continuous (CheetahVel, WalkerRandParams) evaluate
               on sampled tasks instead.
    "sampled": `num_tasks` tasks drawn from a generator seeded with `seed`.
Every evaluation of a trial uses the same tasks and the same env seeds, so successive evaluation
points differ only by the policy.

All trials are stepped together: one module forward per step over the (n, 1, obs) batch of the
trials still running, the recurrent state carried per trial from the module's initial state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from rl_hyper.envs.trial import INFO_INNER_RETURNS, INFO_TASK, TrialWrapper
from rl_hyper.models.columns import TASK

TASK_SETS = ("all", "sampled")


@dataclass(frozen=True)
class EvaluationSettings:
    """interval: training iterations between evaluations (0 = none); num_tasks: trials (at least,
    with "all"); deterministic: greedy / mean actions; seed: of sampled tasks and env noise."""

    interval: int = 10
    num_tasks: int = 16
    task_set: str = "all"
    deterministic: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.task_set not in TASK_SETS:
            raise ValueError(f"unknown evaluation task_set {self.task_set!r}; choose from {TASK_SETS}")


def evaluation_tasks(env: TrialWrapper, settings: EvaluationSettings) -> list[Any]:
    """The tasks of one evaluation, one entry per trial (see module docstring)."""
    tasks = env.task_env.all_tasks() if settings.task_set == "all" else None
    if tasks:
        repeats = math.ceil(settings.num_tasks / len(tasks))
        return [task for task in tasks for _ in range(repeats)]
    rng = np.random.default_rng(settings.seed)
    return [env.task_env.sample_task(rng) for _ in range(settings.num_tasks)]


@torch.no_grad()
def play_trials(module, envs: list[TrialWrapper], tasks: list[Any], *, deterministic: bool, seed: int) -> np.ndarray:
    """envs[i] plays one trial of tasks[i] with `module` (an RLModule of rl_hyper's MetaRLModule
    kind); returns the raw return of every inner episode, (n, K)."""
    observations, infos = zip(*(env.reset(seed=seed + i, options={"task": task})
                                for i, (env, task) in enumerate(zip(envs, tasks))))
    observations, infos = list(observations), list(infos)
    core_state = {name: torch.as_tensor(np.stack([value] * len(envs))) for name, value in module.get_initial_state().items()}
    inner_returns = np.zeros((len(envs), envs[0].episodes_per_trial))
    running = list(range(len(envs)))
    dist_cls = module.get_inference_action_dist_cls()
    while running:
        batch = {Columns.OBS: torch.as_tensor(np.stack([observations[i] for i in running]))[:, None],
                 Columns.STATE_IN: {name: value[running] for name, value in core_state.items()}}
        if module.in_warm_up():  # TI warm-up: the policy acts on the task embedding
            batch[TASK] = torch.as_tensor(np.stack([infos[i][INFO_TASK] for i in running]))[:, None]
        out = module.forward_inference(batch)
        dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS][:, 0])
        actions = (dist.to_deterministic() if deterministic else dist).sample().numpy()
        for name, value in out[Columns.STATE_OUT].items():
            core_state[name][running] = value
        still_running = []
        for i, action in zip(running, actions):
            observations[i], _, terminated, truncated, infos[i] = envs[i].step(action)
            if terminated or truncated:
                inner_returns[i] = infos[i][INFO_INNER_RETURNS]
            else:
                still_running.append(i)
        running = still_running
    return inner_returns
