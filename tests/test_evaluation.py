"""Evaluation (training/evaluation.py): task sets, forced tasks, exact and repeatable returns."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rl_hyper.envs.gridworld import GOAL_CELLS
from rl_hyper.envs.registry import make_trial_env
from rl_hyper.training.config import build_config
from rl_hyper.training.evaluation import EvaluationSettings, evaluation_tasks, play_trials


def test_all_task_set_is_every_grid_goal_once():
    tasks = evaluation_tasks(make_trial_env("GridNavi"), EvaluationSettings(num_tasks=16))
    assert sorted(tasks) == sorted(GOAL_CELLS) and len(tasks) == 21


def test_all_task_set_repeats_small_sets_evenly():
    tasks = evaluation_tasks(make_trial_env("MC-LS"), EvaluationSettings(num_tasks=16))
    assert Counter(tasks) == {1.0: 8, -1.0: 8}


def test_continuous_task_distribution_is_sampled_reproducibly():
    env = make_trial_env("CheetahVel")
    tasks = evaluation_tasks(env, EvaluationSettings(num_tasks=5, seed=4))
    assert len(set(tasks)) == 5 and all(0.0 <= t <= 3.0 for t in tasks)
    assert tasks == evaluation_tasks(env, EvaluationSettings(num_tasks=5, seed=4))
    assert tasks != evaluation_tasks(env, EvaluationSettings(num_tasks=5, seed=5))
    sampled_grid = evaluation_tasks(make_trial_env("GridNavi"), EvaluationSettings(num_tasks=16, task_set="sampled"))
    assert len(sampled_grid) == 16 and len(set(sampled_grid)) < 16  # 16 draws from 21 goals repeat some


def test_unknown_task_set_is_an_error():
    with pytest.raises(ValueError, match="task_set"):
        EvaluationSettings(task_set="most")


def test_reset_takes_the_given_task():
    env = make_trial_env("GridNavi")
    for goal in ((4, 4), (2, 0)):
        _, info = env.reset(seed=1, options={"task": goal})
        assert tuple(info["task"]) == goal


def _module(method: str):
    config = build_config("GridNavi", method, lr=1e-3, seed=5, eval_interval=0, envs_per_runner=1)
    return SingleAgentEnvRunner(config=config).module


@pytest.mark.parametrize("method", ["rnn_hn", "ti"])  # ti starts in its warm-up: acts on g(task)
def test_exact_grid_evaluation_is_repeatable_and_seed_free(method, registered_envs):
    """GridNavi is deterministic and every goal is played once, so a deterministic policy's
    returns do not depend on the evaluation seed and repeat exactly."""
    module = _module(method)
    tasks = evaluation_tasks(make_trial_env("GridNavi"), EvaluationSettings())
    envs = [make_trial_env("GridNavi") for _ in tasks]
    first = play_trials(module, envs, tasks, deterministic=True, seed=0)
    again = play_trials(module, envs, tasks, deterministic=True, seed=999)
    assert first.shape == (21, 4)
    np.testing.assert_array_equal(first, again)
    # per-step rewards are +1 or -0.1, 15 steps an episode
    assert np.all(first >= -1.5 - 1e-6) and np.all(first <= 15 + 1e-6)


def test_stochastic_evaluation_samples_actions(registered_envs):
    """deterministic=False samples from the action distribution (torch's RNG): two draws differ."""
    module = _module("rnn")
    tasks = evaluation_tasks(make_trial_env("GridNavi"), EvaluationSettings())
    envs = [make_trial_env("GridNavi") for _ in tasks]
    torch.manual_seed(0)
    first = play_trials(module, envs, tasks, deterministic=False, seed=0)
    torch.manual_seed(1)
    second = play_trials(module, envs, tasks, deterministic=False, seed=0)
    assert not np.array_equal(first, second)
