"""Reward scaling of the PPO targets: rewards / running std of the discounted return, clipped."""

from __future__ import annotations

import numpy as np
import pytest

from rl_hyper.training.connectors import RewardNormalizingGAE, discounted_returns


def test_discounted_returns_restart_at_each_chunk():
    returns = discounted_returns(np.array([1.0, 1.0, 2.0, 0.0, 3.0]), [3, 2], gamma=0.5)
    np.testing.assert_allclose(returns, [1.0, 1.5, 2.75, 0.0, 3.0])


def test_rewards_divided_by_running_return_std_over_batches_and_clipped():
    rng = np.random.default_rng(0)
    gae = RewardNormalizingGAE(gamma=0.9, lambda_=0.95, reward_clip=10.0)
    batches = [(rng.normal(size=60), [30, 30]), (rng.normal(loc=2.0, size=45), [45])]
    seen = []
    for rewards, lens in batches:
        seen.append(discounted_returns(rewards, lens, 0.9))
        expected_std = np.concatenate(seen).std()  # the 1e-4 prior count is negligible
        np.testing.assert_allclose(gae.scale_rewards(rewards, lens), rewards / expected_std, rtol=1e-4)
    spike = np.zeros(400)
    spike[0] = 1e6  # one-step chunks: returns = rewards, std about 1e6 / sqrt(505) -> scaled about 22
    scaled = gae.scale_rewards(spike, [1] * 400)
    assert scaled[0] == pytest.approx(10.0) and np.all(scaled[1:] == 0.0)


def test_return_statistics_survive_get_and_set_state():
    rewards = np.linspace(-1.0, 2.0, 40)
    first = RewardNormalizingGAE(gamma=0.95, lambda_=0.95)
    first.scale_rewards(rewards, [40])
    second = RewardNormalizingGAE(gamma=0.95, lambda_=0.95)
    second.set_state(first.get_state())
    np.testing.assert_allclose(second.scale_rewards(rewards, [40]), first.scale_rewards(rewards, [40]))
