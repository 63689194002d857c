"""Connectors: reward-normalising GAE (learner) and task descriptors from infos (learner, env runner).

`AddTaskToTrainBatch` (learner, before `RewardNormalizingGAE`, only for methods that use the
task): info["task"] of every step -> batch["task"] (B, T, D), zero-padded like OBS.
`AddCurrentTaskToBatch` (env runner, only for methods with a TI warm-up): info["task"] of each
episode's latest step -> batch["task"] (B, 1, D), so the policy can act on g(c) during warm-up.

`RewardNormalizingGAE`: reward normalisation + GAE + old values, for the PPO update only.

Replaces RLlib's GeneralAdvantageEstimation at the end of PPO's learner pipeline. For every module:

0. the module stages the batch's real steps for its input normalisers (applied after the
   update, so the learner normalises as the sampler did);
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

from rl_hyper.envs.trial import INFO_TASK
from rl_hyper.models.columns import TASK
from rl_hyper.models.normalize import RunningMeanStd


def pad_like_obs(data: np.ndarray, episode_lens: list[int], max_seq_len: int) -> np.ndarray:
    """Per-step data (N, ...) of consecutive episode chunks -> (B, T, ...): each chunk cut into
    sequences of `max_seq_len` steps and zero-padded, the layout RLlib gives OBS of a stateful
    module (both learner connectors add their columns this way)."""
    return np.stack(split_and_zero_pad_n_episodes(data, episode_lens=episode_lens, max_seq_len=max_seq_len))


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
        self.return_stats = RunningMeanStd(1)  # of the discounted return G_t

    def scale_rewards(self, rewards: np.ndarray, episode_lens: list[int]) -> np.ndarray:
        """rewards (N,) raw -> (N,) divided by the running return std and clipped."""
        if not self.normalize_rewards:
            return rewards
        returns = discounted_returns(rewards, episode_lens, self.gamma)
        self.return_stats.update(torch.as_tensor(returns, dtype=torch.float32).unsqueeze(-1))
        scaled = rewards / float(torch.sqrt(self.return_stats.var + 1e-8))
        return np.clip(scaled, -self.reward_clip, self.reward_clip)

    def __call__(self, *, rl_module, episodes, batch: dict[str, Any], **kwargs):
        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        for module_id, module_batch in batch.items():
            module = rl_module[module_id]
            module.stage_normalizer_samples(module_batch)
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
                module_batch[column] = torch.as_tensor(pad_like_obs(data, episode_lens, max_seq_len),
                                                       dtype=torch.float32, device=device)
        return batch

    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict:
        return {name: value.numpy().copy() for name, value in self.return_stats.state_dict().items()}

    def set_state(self, state: dict) -> None:
        self.return_stats.load_state_dict({name: torch.as_tensor(value) for name, value in state.items()})


def episode_tasks(episode) -> np.ndarray:
    """The task descriptor of each of the episode's steps (incl. a bootstrap step), (len, D)."""
    return np.stack([info[INFO_TASK] for info in episode.get_infos(slice(0, len(episode)))]).astype(np.float32)


class AddTaskToTrainBatch(ConnectorV2):
    """Learner: infos["task"] of every step -> batch["task"] (B, T, D), in the (B, T) layout of OBS.

    Runs after the default pipeline (the batch is already padded and a tensor), so it pads the
    episodes' descriptors itself exactly as `RewardNormalizingGAE` pads its columns.
    """

    def __call__(self, *, rl_module, episodes, batch: dict[str, Any], **kwargs):
        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        for module_id, module_batch in batch.items():
            module_episodes = [e for e in sa_episodes if e.module_id in (None, module_id)]
            tasks = np.concatenate([episode_tasks(e) for e in module_episodes])
            padded = pad_like_obs(tasks, [len(e) for e in module_episodes], rl_module[module_id].model_config["max_seq_len"])
            module_batch[TASK] = torch.as_tensor(padded, device=module_batch[Columns.OBS].device)
        return batch


class AddCurrentTaskToBatch(ConnectorV2):
    """Env runner: info["task"] of each episode's latest step -> batch["task"]; the default
    pipeline after it adds the time axis and stacks the episodes: (B, 1, D)."""

    def __call__(self, *, rl_module, episodes, batch: dict[str, Any], **kwargs):
        for sa_episode in self.single_agent_episode_iterator(episodes):
            self.add_batch_item(batch, TASK, item_to_add=np.asarray(sa_episode.get_infos(-1)[INFO_TASK], np.float32),
                                single_agent_episode=sa_episode)
        return batch
