"""Learner connector: reward normalisation + GAE + old values, for the PPO update only.

Replaces RLlib's GeneralAdvantageEstimation at the end of PPO's learner pipeline. For every module:

0. the module's input normalisers take in the batch's real steps (once per update, so the
   sampler's and the learner's policy agree within an update except for the stats step);
1. values v (one critic pass over the padded batch, incl. the bootstrap step RLlib appends);
2. rewards scaled by the running std of the discounted return (G_t = gamma * G_{t-1} + r_t,
   restarted at each episode chunk), then clipped to +-clip (PAPER_SPEC section 5). Only the PPO
   targets see scaled rewards: the encoder reads raw rewards from the observation and every
   reported return is raw;
3. GAE(gamma, lambda) value targets and advantages, advantages standardised over the batch;
4. the batch gets ADVANTAGES, VALUE_TARGETS and VF_PREDS (old values, for PPO2 value clipping),
   zero-padded to (B, T) like the rest of a stateful module's batch.

The running statistics are connector state, saved with checkpoints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.numpy import convert_to_numpy
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets
from ray.rllib.utils.postprocessing.zero_padding import split_and_zero_pad_n_episodes, unpad_data_if_necessary
import torch


def discounted_returns(rewards: np.ndarray, episode_lens: list[int], gamma: float) -> np.ndarray:
    """rewards (N,) of consecutive episode chunks -> G_t (N,), restarted at each chunk."""
    returns = np.empty_like(rewards)
    start = 0
    for length in episode_lens:
        running = 0.0
        for t in range(start, start + length):
            running = gamma * running + rewards[t]
            returns[t] = running
        start += length
    return returns


class RewardNormalizingGAE(ConnectorV2):
    """GAE on rewards normalised by the running std of the discounted return (see module doc)."""

    def __init__(self, input_observation_space=None, input_action_space=None, *, gamma: float,
                 lambda_: float, reward_clip: float = 10.0, normalize_rewards: bool = True):
        super().__init__(input_observation_space, input_action_space)
        self.gamma, self.lambda_ = gamma, lambda_
        self.reward_clip, self.normalize_rewards = reward_clip, normalize_rewards
        self.return_count, self.return_mean, self.return_var = 1e-4, 0.0, 1.0

    def _update_return_stats(self, returns: np.ndarray) -> None:
        n, mean, var = len(returns), float(returns.mean()), float(returns.var())
        delta, total = mean - self.return_mean, self.return_count + n
        self.return_mean += delta * n / total
        self.return_var = (self.return_var * self.return_count + var * n
                           + delta**2 * self.return_count * n / total) / total
        self.return_count = total

    def scale_rewards(self, rewards: np.ndarray, episode_lens: list[int]) -> np.ndarray:
        """rewards (N,) raw -> (N,) divided by the running return std and clipped."""
        if not self.normalize_rewards:
            return rewards
        self._update_return_stats(discounted_returns(rewards, episode_lens, self.gamma))
        scaled = rewards / np.sqrt(self.return_var + 1e-8)
        return np.clip(scaled, -self.reward_clip, self.reward_clip)

    def __call__(self, *, rl_module, episodes, batch: dict[str, Any], **kwargs):
        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        for module_id, module_batch in batch.items():
            module = rl_module[module_id]
            module.update_normalizers(module_batch)
            with torch.no_grad():
                values_padded = module.compute_values(module_batch)
            device = values_padded.device
            episode_lens = [len(e) for e in sa_episodes if e.module_id in (None, module_id)]

            def unpad(column):
                return unpad_data_if_necessary(episode_lens, convert_to_numpy(module_batch[column]))

            values = unpad_data_if_necessary(episode_lens, convert_to_numpy(values_padded))
            rewards = self.scale_rewards(unpad(Columns.REWARDS).astype(np.float32), episode_lens)
            targets = compute_value_targets(
                values=values, rewards=rewards, terminateds=unpad(Columns.TERMINATEDS),
                truncateds=unpad(Columns.TRUNCATEDS), gamma=self.gamma, lambda_=self.lambda_,
            )
            advantages = targets - values
            advantages = (advantages - advantages.mean()) / max(1e-4, advantages.std())
            max_seq_len = module.model_config["max_seq_len"]
            for column, data in ((Postprocessing.ADVANTAGES, advantages), (Postprocessing.VALUE_TARGETS, targets),
                                 (Columns.VF_PREDS, values)):
                padded = np.stack(split_and_zero_pad_n_episodes(data, episode_lens=episode_lens, max_seq_len=max_seq_len))
                module_batch[column] = torch.as_tensor(padded, dtype=torch.float32, device=device)
        return batch

    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict:
        return {"return_count": self.return_count, "return_mean": self.return_mean, "return_var": self.return_var}

    def set_state(self, state: dict) -> None:
        self.return_count, self.return_mean, self.return_var = (
            state["return_count"], state["return_mean"], state["return_var"])
