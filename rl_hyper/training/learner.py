"""MetaPPOLearner: the paper's PPO loss (PAPER_SPEC section 5) on RLlib's torch learner.

Loss per real (unpadded) step, averaged with `Columns.LOSS_MASK`:

    ratio   = exp(logp_new - logp_old)
    policy  = -min(A * ratio, A * clip(ratio, 1 - eps, 1 + eps))
    value   = 0.5 * max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2)   (PPO2 value clipping)
    total   = policy + vf_loss_coeff * value - entropy_coeff * entropy

Advantages A and targets R come from `RewardNormalizingGAE` (which replaces RLlib's GAE piece).
Adam uses `learner_config_dict["adam_eps"]`. No KL penalty (`use_kl_loss=False`).
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from rl_hyper.training.connectors import RewardNormalizingGAE


class MetaPPOLearner(PPOTorchLearner):
    """PPO with clipped value loss, return-std reward scaling and per-method Adam settings."""

    def build(self) -> None:
        super().build()
        extra = self.config.learner_config_dict
        self._learner_connector.remove(GeneralAdvantageEstimation)
        self._learner_connector.append(RewardNormalizingGAE(
            gamma=self.config.gamma, lambda_=self.config.lambda_,
            normalize_rewards=extra.get("normalize_rewards", True), reward_clip=extra.get("reward_clip", 10.0),
        ))

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        params = self.get_parameters(self._module[module_id])
        optimizer = torch.optim.Adam(params, eps=config.learner_config_dict.get("adam_eps", 1e-8))
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        module = self.module[module_id].unwrapped()
        mask = batch[Columns.LOSS_MASK]
        num_real = mask.sum()

        def masked_mean(x: torch.Tensor) -> torch.Tensor:
            return x[mask].sum() / num_real

        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(batch[Columns.ACTIONS])
        ratio = torch.exp(logp - batch[Columns.ACTION_LOGP])
        advantages = batch[Postprocessing.ADVANTAGES]
        clip = config.clip_param
        policy_loss = -torch.min(advantages * ratio, advantages * torch.clamp(ratio, 1 - clip, 1 + clip))

        values = module.compute_values(batch, embeddings=fwd_out[Columns.EMBEDDINGS])
        old_values, targets = batch[Columns.VF_PREDS], batch[Postprocessing.VALUE_TARGETS]
        clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
        value_loss = 0.5 * torch.max((values - targets).pow(2), (clipped_values - targets).pow(2))

        entropy = dist.entropy()
        entropy_coeff = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
        total = masked_mean(policy_loss + config.vf_loss_coeff * value_loss - entropy_coeff * entropy)
        with torch.no_grad():
            approx_kl = masked_mean(batch[Columns.ACTION_LOGP] - logp)
            clip_fraction = masked_mean(((ratio - 1).abs() > clip).float())
        self.metrics.log_dict(
            {"policy_loss": masked_mean(policy_loss), "vf_loss": masked_mean(value_loss),
             "entropy": masked_mean(entropy), "approx_kl": approx_kl, "clip_fraction": clip_fraction},
            key=module_id, window=1,
        )
        return total
