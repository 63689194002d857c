"""MetaPPOLearner: the paper's PPO loss (PAPER_SPEC section 5) on RLlib's torch learner.

Loss per real (unpadded) step, averaged with `Columns.LOSS_MASK`:

    ratio   = exp(logp_new - logp_old)
    policy  = -min(A * ratio, A * clip(ratio, 1 - eps, 1 + eps))
    value   = 0.5 * max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2)   (PPO2 value clipping)
    total   = policy + vf_loss_coeff * value - entropy_coeff * entropy

Advantages A and targets R come from `RewardNormalizingGAE` (which replaces RLlib's GAE piece).
Adam uses `learner_config_dict["adam_eps"]`. No KL penalty (`use_kl_loss=False`).

Auxiliary objectives (methods.py `aux_loss`), added to the PPO loss of the same minibatch:

    elbo            mean over observed steps t of [reconstruction NLL of every observed target of
                    the sequence from z_t + kl_weight * KL(q_t || q_{t-1})]  (VariBAD, module
                    `elbo_terms`)
    task_raw        mean over observed steps of the MSE of the task decoder on z_t vs. the raw
    task_embedding  descriptor / vs. the stop-gradient warm-up task embedding g(c); skipped during
                    a "reset" warm-up (encoder frozen)

"Observed steps" are the real steps plus the bootstrap step RLlib appends to every episode chunk
(its observation and reward are real; only the PPO loss masks it out). A sequence of the train
batch is one episode chunk as sampled: with `max_seq_len` >= trial length + 1 (the default) and a
rollout that holds whole trials (grid-worlds, Cheetah, Ant), every sequence is a whole trial and
the ELBO reconstructs the whole trial's rewards. When a rollout or `max_seq_len` cuts a trial
(Walker: 200-step rollouts of 400-step trials), the ELBO of a chunk reconstructs only that chunk's
targets, and its first KL term is taken against N(0, I) rather than the previous chunk's posterior.

Optimisers: with an auxiliary objective, the encoder and the decoders have their own Adam
("aux", lr = learner_config_dict["aux_lr"], fixed); every other parameter (policy, embeddings,
g) is in the default Adam with the PPO learning rate. The PPO gradient never reaches the encoder
for these methods (stop-gradient at the latent) and the auxiliary losses never reach the policy,
so the summed loss trains each part by its own objective. RLlib clips the gradients' global norm
per optimiser (`grad_clip`).

Warm-up (TI, TI++): the module's `warm_up_active` buffer is True for the first
learner_config_dict["warm_up_updates"] calls of `update` (one call = one PPO update of all
epochs and minibatches on one training batch); after the last one `module.end_warm_up()` leaves
it (and for "reset" re-initialises the policy, whose Adam moments are then cleared too).

Metrics per update (window 1, under the module id): aux_reconstruction_nll, aux_kl, aux_elbo,
aux_task_loss (only the ones of the method), and warm_up (1.0 during a warm-up update, else 0.0;
warm-up methods only). The README's metrics table lists them.
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from rl_hyper.training.connectors import AddTaskToTrainBatch, RewardNormalizingGAE

AUX_OPTIMIZER = "aux"


def observed_steps(loss_mask: torch.Tensor) -> torch.Tensor:
    """loss_mask (B, T) bool -> (B, T) bool: the real steps plus the bootstrap step after them."""
    shifted = torch.cat([torch.zeros_like(loss_mask[:, :1]), loss_mask[:, :-1]], dim=1)
    return loss_mask | shifted


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
        if any(module.unwrapped().method.uses_task for module in self.module.values()):
            self._learner_connector.insert_before(RewardNormalizingGAE, AddTaskToTrainBatch())
        for module_id in self.module.keys():  # a warm-up of 0 updates: none at all
            module = self.module[module_id].unwrapped()
            if module.in_warm_up() and extra["warm_up_updates"] <= int(module.warm_up_updates_done):
                self.end_warm_up(module_id)

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self._module[module_id].unwrapped()
        extra = config.learner_config_dict
        aux_params = module.aux_parameters()
        aux_ids = {id(p) for p in aux_params}
        params = [p for p in self.get_parameters(module) if id(p) not in aux_ids]
        # fused: one kernel for all tensors (8x faster than the per-tensor loop on a CPU, same maths)
        optimizer = torch.optim.Adam(params, eps=extra.get("adam_eps", 1e-8), fused=True)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)
        if aux_params:
            aux_lr = extra.get("aux_lr", 1e-3)
            self.register_optimizer(module_id=module_id, optimizer_name=AUX_OPTIMIZER, params=aux_params,
                                    optimizer=torch.optim.Adam(aux_params, fused=True), lr_or_lr_schedule=aux_lr)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        total = self.ppo_loss(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        aux = self.aux_loss(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        return total if aux is None else total + aux

    def ppo_loss(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        """The PPO loss alone (see module docstring), a scalar; logs its parts."""
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

    def aux_loss(self, *, module_id, config, batch, fwd_out) -> torch.Tensor | None:
        """The method's auxiliary loss (see module docstring), a scalar; None when there is none."""
        module = self.module[module_id].unwrapped()
        method = module.method
        if method.aux_loss == "none" or (method.warm_up == "reset" and module.in_warm_up()):
            return None
        steps = observed_steps(batch[Columns.LOSS_MASK])
        features = fwd_out[Columns.EMBEDDINGS]
        if method.aux_loss == "elbo":
            nll, kl = module.elbo_terms(batch, features, steps)
            nll, kl = nll[steps].mean(), kl[steps].mean()
            loss = nll + config.learner_config_dict.get("kl_weight", 1.0) * kl
            self.metrics.log_dict({"aux_reconstruction_nll": nll, "aux_kl": kl, "aux_elbo": loss},
                                  key=module_id, window=1)
            return loss
        loss = module.task_prediction_error(batch, features)[steps].mean()
        self.metrics.log_value((module_id, "aux_task_loss"), loss, window=1)
        return loss

    def after_gradient_based_update(self, *, timesteps) -> None:
        """Apply the staged normaliser samples; count warm-up updates and after the last one leave
        the warm-up (see module docstring)."""
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self.module.keys():
            module = self.module[module_id].unwrapped()
            module.apply_normalizer_samples()
            if module.method.warm_up == "none":
                continue
            warm_up = module.in_warm_up()
            self.metrics.log_value((module_id, "warm_up"), float(warm_up), window=1)
            if not warm_up:
                continue
            module.warm_up_updates_done += 1
            warm_up_updates = self.config.get_config_for_module(module_id).learner_config_dict["warm_up_updates"]
            if int(module.warm_up_updates_done) >= warm_up_updates:
                self.end_warm_up(module_id)

    def end_warm_up(self, module_id) -> None:
        """Leave the warm-up of one module; after a policy reset, restart its Adam moments."""
        module = self.module[module_id].unwrapped()
        module.end_warm_up()
        if module.method.warm_up == "reset":
            self.get_optimizer(module_id).state.clear()
