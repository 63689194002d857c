"""The encoder's auxiliary objectives (VariBAD's ELBO, TI's task losses), each in one place.

An objective builds its decoder (`build`, its parameters belong to the encoder's "aux" Adam),
computes its loss on sequences drawn from the learner's trial buffer (`loss`) and names its
metrics (`metric_names`). A method's objectives come from its row (`objectives_of`); the learner
sums their losses (training/learner.py has the schedule: VAE steps after the PPO epochs).

Each loss works on K sequences encoded from the core's initial state, with the original code's
reductions (the sum over a sequence's ELBO terms t, i.e. its observed steps):

    ELBO   1/K sum_b sum_t sum_j NLL(target j | z_t) + kl_weight * sum_b sum_t KL(q_t || q_{t-1})
           (reconstruction averaged over sequences, KL summed over them; N(0, I) for q_{-1})
    task   sum_b sum_t mean_d (decoder(z_t)_d - target_d)^2
           target: the raw task descriptor (task_raw) or the stop-gradient g(c) (task_embedding)

z_t = mu_t + exp(logvar_t / 2) * eps is one reparameterised sample per step.
"""

from __future__ import annotations

import torch
from ray.rllib.core.columns import Columns
from torch import nn

from rl_hyper.models.columns import TASK
from rl_hyper.models.decoders import build_trajectory_decoder, gaussian_kl, mlp


def sample_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Reparameterised sample z = mu + exp(logvar / 2) * eps, (B, T, L)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def usable_targets(steps: torch.Tensor, flag: torch.Tensor, boundary: str | None,
                   reads_previous_state: bool) -> torch.Tensor:
    """The steps j whose decoding target lies within one inner episode, (K, T) bool.

    steps (K, T) bool: the observed steps; flag (K, T) bool: obs j's inner-episode-ended flag;
    boundary: what obs j shows when its flag is up (envs/trial.py), "terminal" or "reset", or None
    for trials of one episode; reads_previous_state: the decoder's target j is the transition
    (s_{j-1}, a_j, r_j, s_j) (TransitionDecoder) rather than (s_j, r_j) (GridRewardDecoder).
    Left out:
      "reset": the flagged step j, whose s_j is the next episode's start but whose reward (and
               transition) belongs to the episode that ended;
      "terminal": for a transition, the step after the flag: its s_{j-1} is the terminal state
               while the agent acted from the start state (the flagged step itself is whole);
      a transition at a sequence's first step (no s_{j-1}).
    """
    targets = steps.clone()
    if boundary == "reset":
        targets &= ~flag
    if reads_previous_state:
        if boundary == "terminal":
            targets[:, 1:] &= ~flag[:, :-1]
        targets[:, 0] = False
    return targets


def elbo_reduction(steps: torch.Tensor, nll: torch.Tensor, kl: torch.Tensor, kl_weight: float) -> dict[str, torch.Tensor]:
    """steps (K, T) bool, nll / kl (K, T) per ELBO term -> aux_reconstruction_nll (sum / K),
    aux_kl (sum), aux_elbo = nll + kl_weight * kl: the ELBO's reductions (module docstring)."""
    reconstruction, kl_sum = nll[steps].sum() / steps.shape[0], kl[steps].sum()
    return {"aux_reconstruction_nll": reconstruction, "aux_kl": kl_sum, "aux_elbo": reconstruction + kl_weight * kl_sum}


def task_reduction(steps: torch.Tensor, errors: torch.Tensor) -> dict[str, torch.Tensor]:
    """steps (K, T) bool, errors (K, T) -> aux_task_loss: summed over ELBO terms and sequences."""
    return {"aux_task_loss": errors[steps].sum()}


class ELBOObjective:
    """VariBAD: reconstruct every observed target of the sequence from each z_t, plus the KL."""

    metric_names = ("aux_reconstruction_nll", "aux_kl", "aux_elbo")
    module_attribute = "decoder"

    def build(self, model_config: dict, sizes, state_dim: int, action_dim: int) -> nn.Module:
        """The decoder model_config["decoder"] names (decoders.py), on latents of sizes.latent_dim."""
        return build_trajectory_decoder(model_config, sizes.latent_dim, state_dim, action_dim)

    def terms(self, module, obs: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (K, T, S + A + 1), mu / logvar (K, T, L), steps (K, T) bool -> the reconstruction
        NLL from z_t summed over the sequence's targets, (K, T), and KL(q_t || q_{t-1}), (K, T)."""
        state, prev_action, prev_reward = module.split_obs(obs)
        flag = state[..., -1] > 0.5 if module.inner_boundary else torch.zeros_like(steps)
        targets = usable_targets(steps, flag, module.inner_boundary, module.decoder.reads_previous_state)
        nll = module.decoder.nll(sample_latent(mu, logvar), state, prev_action, prev_reward, targets)
        prior_mu = torch.cat([torch.zeros_like(mu[:, :1]), mu[:, :-1]], dim=1)
        prior_logvar = torch.cat([torch.zeros_like(logvar[:, :1]), logvar[:, :-1]], dim=1)
        return nll, gaussian_kl(mu, logvar, prior_mu, prior_logvar)

    def loss(self, module, sample: dict, mu: torch.Tensor, logvar: torch.Tensor, steps: torch.Tensor,
             kl_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = elbo_reduction(steps, *self.terms(module, sample[Columns.OBS], mu, logvar, steps), kl_weight)
        return parts["aux_elbo"], parts


class TaskObjective:
    """TI: regress the task (raw descriptor, or the warm-up embedding g(c)) from each z_t."""

    metric_names = ("aux_task_loss",)
    module_attribute = "task_decoder"

    def __init__(self, target: str):
        self.target = target  # "task_raw" | "task_embedding"

    def build(self, model_config: dict, sizes, state_dim: int, action_dim: int) -> nn.Module:
        """MLP latent -> the raw descriptor (task_dim) or g(c) (sizes.latent_embed)."""
        out = model_config["task_dim"] if self.target == "task_raw" else sizes.latent_embed
        return mlp(sizes.latent_dim, list(model_config["task_decoder_hidden"]), out)

    def errors(self, module, task: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """task (K, T, D), mu / logvar (K, T, L) -> the decoder's mean squared error per step, (K, T)."""
        prediction = module.task_decoder(sample_latent(mu, logvar))
        target = task if self.target == "task_raw" else module.task_embedding_of({TASK: task}).detach()
        return (prediction - target).pow(2).mean(-1)

    def loss(self, module, sample: dict, mu: torch.Tensor, logvar: torch.Tensor, steps: torch.Tensor,
             kl_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = task_reduction(steps, self.errors(module, sample[TASK], mu, logvar))
        return parts["aux_task_loss"], parts


def objectives_of(method) -> list:
    """The auxiliary objectives of a method row (methods.py), in the order their losses add up."""
    objectives = [ELBOObjective()] if method.elbo else []
    return objectives + ([TaskObjective(method.task_loss)] if method.task_loss != "none" else [])
