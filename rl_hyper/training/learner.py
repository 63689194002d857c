"""MetaPPOLearner: the paper's PPO loss (PAPER_SPEC section 5) on RLlib's torch learner.

Loss per step of the minibatch, averaged over its steps:

    ratio   = exp(logp_new - logp_old)
    policy  = -min(A * ratio, A * clip(ratio, 1 - eps, 1 + eps))
    value   = 0.5 * max(L(v, R), L(v_old + clip(v - v_old, -eps, eps), R))   (PPO2 value clipping)
              with L the Huber loss (smooth L1, beta 1; the original code's) or the squared error
              (learner_config_dict["value_loss"]: "huber" | "squared")
    total   = policy + vf_loss_coeff * value - entropy_coeff * entropy

Advantages A and targets R come from `RewardNormalizingGAE` (which replaces RLlib's GAE piece).
No KL penalty (`use_kl_loss=False`).

Minibatches (learner_config_dict["minibatch_mode"]):
    "random_steps" (the original code's): every epoch permutes the batch's real steps and cuts
        them into `minibatches` equal parts (the remainder is dropped). Each minibatch runs the
        encoder GRU over every whole sequence of the batch (so each step's latent comes from the
        current encoder and its full history) and the actor and critic on its own steps only;
        `MINIBATCH_MASK` (B, T) marks them.
    "sequences": RLlib's own minibatches of whole padded sequences (episode chunks), loss on
        their real steps (`Columns.LOSS_MASK`).

Optimisers: the policy (and embeddings, g) in the default Adam with the PPO learning rate and
`adam_eps`. The encoder GRU and its embeddings of the methods without an auxiliary objective (RNN,
RNN+S, RNN+HN) have their own Adam ("encoder", same learning rate and schedule,
`encoder_adam_eps`, default 1e-8) when learner_config_dict["encoder_optimizer"] is "separate" (the
original code's), or share the default one when "joint". RLlib clips the gradients' global norm
per optimiser (`grad_clip`), so a separate encoder optimiser has its own clip, as in the original.

Auxiliary objectives (models/objectives.py: VariBAD's ELBO and the TI task losses, which also
give their losses' exact reductions), as the original code trains them: after the PPO epochs of
an update, `vae_updates` steps of the "aux" Adam (lr = `aux_lr`, fixed; no gradient clipping),
each on `vae_batch_trajectories` sequences drawn without replacement from a `TrialBuffer` of the
last `vae_buffer_trajectories` sequences of past train batches (the current batch included), each
encoded from the core's initial state. The reconstruction is averaged over the drawn sequences
and the KL and task loss summed over them, so the KL weighs kl_weight * K against the
reconstruction. During a "reset" warm-up (TI) the encoder is frozen and nothing is trained.

"Observed steps" are the real steps plus the bootstrap step RLlib appends to every episode chunk
(its observation and reward are real; only the PPO loss masks it out). A sequence of the train
batch is one episode chunk as sampled: with `max_seq_len` >= trial length + 1 (the default) and a
rollout that holds whole trials (grid-worlds, Cheetah, Ant), every sequence is a whole trial and
the ELBO reconstructs the whole trial's rewards. When a rollout or `max_seq_len` cuts a trial
(Walker: 200-step rollouts of 400-step trials), a later chunk is encoded from the initial state
too and its ELBO reconstructs only that chunk's targets.

The PPO gradient never reaches the encoder of these methods (the policy reads the latent
recorded while sampling) and the auxiliary loss never reaches the policy. The "aux" optimiser is
registered with RLlib (so its state is checkpointed); its parameters get no PPO gradient, so
RLlib's per-minibatch step leaves them alone.

Warm-up (TI, TI++): the module's `warm_up_active` buffer is True for the first
learner_config_dict["warm_up_updates"] calls of `update` (one call = one PPO update of all
epochs and minibatches on one training batch); after the last one `module.end_warm_up()` leaves
it (and for "reset" re-initialises the policy, whose Adam moments are then cleared too).

Metrics per update (under the module id): policy_loss, vf_loss, entropy, approx_kl, clip_fraction
and latent_norm (mean L2 norm of the latent the policy reads, after normalisation) as means over
the update's minibatches; aux_reconstruction_nll, aux_kl, aux_elbo (= nll + kl_weight * kl),
aux_task_loss (only the ones of the method) as means over the update's VAE steps; and warm_up
(1.0 during a warm-up update, else 0.0; warm-up methods only). The README's metrics table lists
them.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from rl_hyper.models.columns import TASK
from rl_hyper.training.connectors import AddTaskToTrainBatch, RewardNormalizingGAE
from rl_hyper.training.trial_buffer import STEPS, TrialBuffer

AUX_OPTIMIZER = "aux"
ENCODER_OPTIMIZER = "encoder"
MINIBATCH_MASK = "minibatch_mask"  # (B, T) bool: the steps of one random-step minibatch
VALUE_LOSSES = ("huber", "squared")


def random_step_masks(loss_mask: torch.Tensor, minibatches: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """One epoch of random-step minibatches: loss_mask (B, T) bool -> `minibatches` disjoint (B, T)
    bool masks of len(real steps) // minibatches randomly chosen real steps each."""
    real = np.flatnonzero(loss_mask.reshape(-1).cpu().numpy())
    order = rng.permutation(real)
    size = len(real) // minibatches
    masks = []
    for k in range(minibatches):
        mask = torch.zeros(loss_mask.numel(), dtype=torch.bool, device=loss_mask.device)
        mask[torch.as_tensor(order[k * size:(k + 1) * size], device=loss_mask.device)] = True
        masks.append(mask.reshape(loss_mask.shape))
    return masks


def observed_steps(loss_mask: torch.Tensor) -> torch.Tensor:
    """loss_mask (B, T) bool -> (B, T) bool: the real steps plus the bootstrap step after them."""
    shifted = torch.cat([torch.zeros_like(loss_mask[:, :1]), loss_mask[:, :-1]], dim=1)
    return loss_mask | shifted


def value_error_fn(kind: str):
    """The per-step value error L(v, R) -> (N,): "huber" (smooth L1, beta 1) or "squared"."""
    if kind == "huber":
        return lambda values, targets: F.smooth_l1_loss(values, targets, reduction="none")
    if kind == "squared":
        return lambda values, targets: (values - targets).pow(2)
    raise ValueError(f"unknown value_loss {kind!r}; choose from {VALUE_LOSSES}")


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

        self._minibatch_rng = np.random.default_rng(self.config.seed)
        self._trial_buffers = {
            module_id: TrialBuffer(self.config.get_config_for_module(module_id).learner_config_dict["vae_buffer_trajectories"])
            for module_id in self.module.keys() if self.module[module_id].unwrapped().method.has_aux_objective
        }

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self._module[module_id].unwrapped()
        extra = config.learner_config_dict
        own_optimizers = []  # (name, params, lr or schedule, Adam eps): parts with an Adam of their own
        if module.aux_parameters():
            own_optimizers.append((AUX_OPTIMIZER, module.aux_parameters(), extra.get("aux_lr", 1e-3), 1e-8))
        elif extra.get("encoder_optimizer", "separate") == "separate":
            own_optimizers.append((ENCODER_OPTIMIZER, list(module.encoder.parameters()), config.lr,
                                   extra.get("encoder_adam_eps", 1e-8)))
        owned = {id(p) for _, params, _, _ in own_optimizers for p in params}
        params = [p for p in self.get_parameters(module) if id(p) not in owned]
        # fused: one kernel for all tensors (8x faster than the per-tensor loop on a CPU, same maths)
        optimizer = torch.optim.Adam(params, eps=extra.get("adam_eps", 1e-8), fused=True)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)
        for name, own_params, lr, eps in own_optimizers:
            self.register_optimizer(module_id=module_id, optimizer_name=name, params=own_params,
                                    optimizer=torch.optim.Adam(own_params, eps=eps, fused=True), lr_or_lr_schedule=lr)

    def _make_batch_if_necessary(self, training_data):
        """RLlib's train batch (after the learner connector); its sequences also go into the
        trial buffers of the modules with an auxiliary objective."""
        batch = super()._make_batch_if_necessary(training_data)
        for module_id, buffer in self._trial_buffers.items():
            if module_id not in batch.policy_batches:
                continue
            module_batch = batch.policy_batches[module_id]
            columns = {Columns.OBS: module_batch[Columns.OBS]}
            if TASK in module_batch:
                columns[TASK] = module_batch[TASK]
            buffer.add(columns, observed_steps(torch.as_tensor(module_batch[Columns.LOSS_MASK])).sum(1))
        return batch

    def _create_iterator_if_necessary(self, *, training_data, num_epochs: int = 1, **kwargs):
        """RLlib's minibatch iterator ("sequences"), or the random-step minibatches (see module
        docstring): the whole batch `num_epochs * minibatches` times, each with its MINIBATCH_MASK."""
        extra = self.config.learner_config_dict
        if extra.get("minibatch_mode", "random_steps") == "sequences":
            return super()._create_iterator_if_necessary(training_data=training_data, num_epochs=num_epochs, **kwargs)
        whole = super()._create_iterator_if_necessary(training_data=training_data, num_epochs=1, minibatch_size=None)
        return self._random_step_minibatches(whole, num_epochs, extra["minibatches"])

    def _random_step_minibatches(self, whole, num_epochs: int, minibatches: int) -> Iterator:
        (batch,) = list(whole)
        for _ in range(num_epochs):
            masks = {module_id: random_step_masks(torch.as_tensor(module_batch[Columns.LOSS_MASK]), minibatches,
                                                  self._minibatch_rng)
                     for module_id, module_batch in batch.policy_batches.items()}
            for k in range(minibatches):
                for module_id, module_batch in batch.policy_batches.items():
                    module_batch[MINIBATCH_MASK] = masks[module_id][k]
                yield batch

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        """The PPO loss (see module docstring), a scalar; logs its parts."""
        module = self.module[module_id].unwrapped()
        extra = config.learner_config_dict
        steps = batch[MINIBATCH_MASK] if MINIBATCH_MASK in batch else batch[Columns.LOSS_MASK]  # (B, T) bool
        features = module.features_at(fwd_out[Columns.EMBEDDINGS], steps)  # (N, ...)

        dist = module.get_train_action_dist_cls().from_logits(module.action_dist_inputs(features))
        logp = dist.logp(batch[Columns.ACTIONS][steps])
        old_logp = batch[Columns.ACTION_LOGP][steps]
        ratio = torch.exp(logp - old_logp)
        advantages = batch[Postprocessing.ADVANTAGES][steps]
        clip = config.clip_param
        policy_loss = -torch.min(advantages * ratio, advantages * torch.clamp(ratio, 1 - clip, 1 + clip))

        values = module.compute_values(batch, embeddings=features)
        old_values, targets = batch[Columns.VF_PREDS][steps], batch[Postprocessing.VALUE_TARGETS][steps]
        clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
        value_error = value_error_fn(extra.get("value_loss", "huber"))
        value_loss = 0.5 * torch.max(value_error(values, targets), value_error(clipped_values, targets))

        entropy = dist.entropy()
        entropy_coeff = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
        total = (policy_loss + config.vf_loss_coeff * value_loss - entropy_coeff * entropy).mean()
        with torch.no_grad():
            approx_kl = (old_logp - logp).mean()
            clip_fraction = ((ratio - 1).abs() > clip).float().mean()
            latent_norm = features["latent"].norm(dim=-1).mean()
        self.metrics.log_dict(
            {"policy_loss": policy_loss.mean(), "vf_loss": value_loss.mean(), "entropy": entropy.mean(),
             "approx_kl": approx_kl, "clip_fraction": clip_fraction, "latent_norm": latent_norm},
            key=module_id, window=extra.get("minibatch_updates", 1),
        )
        return total

    def vae_loss(self, module, sample: dict[str, torch.Tensor], kl_weight: float) -> tuple[torch.Tensor, dict]:
        """The auxiliary loss (see module docstring) of a `TrialBuffer.sample`, a scalar, and its
        parts by metric name."""
        mu, logvar = module.posterior(sample[Columns.OBS])
        total, parts = 0.0, {}
        for objective in module.objectives:
            loss, objective_parts = objective.loss(module, sample, mu, logvar, sample[STEPS], kl_weight)
            total, parts = total + loss, {**parts, **objective_parts}
        return total, parts

    def train_vae(self, module_id) -> None:
        """`vae_updates` steps of the auxiliary objective on buffer samples (see module docstring)."""
        module = self.module[module_id].unwrapped()
        if module.method.warm_up == "reset" and module.in_warm_up():
            return
        extra = self.config.get_config_for_module(module_id).learner_config_dict
        optimizer = self.get_optimizer(module_id, AUX_OPTIMIZER)
        for _ in range(extra["vae_updates"]):
            sample = self._trial_buffers[module_id].sample(extra["vae_batch_trajectories"], self._minibatch_rng,
                                                          device=self._device)
            with torch.enable_grad():
                loss, parts = self.vae_loss(module, sample, extra["kl_weight"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            optimizer.step()
            self.metrics.log_dict({name: value.detach() for name, value in parts.items()}, key=module_id,
                                  window=extra["vae_updates"])

    def after_gradient_based_update(self, *, timesteps) -> None:
        """Train the auxiliary objective; apply the staged normaliser samples; count warm-up
        updates and after the last one leave the warm-up (see module docstring)."""
        super().after_gradient_based_update(timesteps=timesteps)
        for module_id in self._trial_buffers:
            self.train_vae(module_id)
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
