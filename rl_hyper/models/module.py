"""MetaRLModule: the stateful RLlib module every method uses (new API stack).

Data path per step (B = sequences, T = time steps, N = B * T):

    obs (B, T, S + A + 1) = [state s_t (S), prev action a_{t-1} (A), prev reward r_t (1)]
      -> TrajectoryEncoder (core by method.core: GRU, LSTM or transformer, with its state)
                                                   -> mu, logvar (B, T, L)
      -> latent = [mu, logvar] (B, T, 2L), normalised by a running mean/std when
                  method.normalize_latent (forgetting and clipped, see normalize.py). Methods
                  that stop RL gradients at the latent act in the learner on the latent recorded
                  while sampling, batch["rollout_latent"], and the learner does not run the
                  encoder for PPO at all.
      -> conditioning e = tanh(Linear(2L -> E)) of the latent                    (B, T, E)
         (during a TI warm-up instead e = g(c) = tanh(Linear(D -> E)) of the running-normalised
          task descriptor c = batch["task"] (B, T, D))
      -> state embedding   x = tanh(Linear(S -> 256)) of running-normalised s_t   (methods that read s_t)
      -> policy by method.policy_input (the conditioning classes of policy.py):
           latent:       actor(e),      critic(e)
           state_latent: actor([x, e]), critic([x, e])
           film:         actor(x; hidden layers scaled and shifted by e), critic(...)
           hyper:        actor(x; weights from e), critic(x; weights from e)
      -> action-distribution inputs (B, T, n) or (B, T, 2A) = [mean, log_std]; values (B, T)

Auxiliary parts (only for the methods that use them, see methods.py); the learner trains them
from a buffer of past trials, on whole sequences encoded from the initial state (`posterior`):
    decoder        VariBAD reward/state decoder (decoders.py)
    task_decoder   TI task decoder MLP on the latent sample
                   (both built, and their losses computed, by the method's objectives: objectives.py)
    task_embedding g (TI warm-up), with the buffers `warm_up_active` (bool) and
                   `warm_up_updates_done` (int): module state, so they reach the env runners
                   with every weight sync and are saved with checkpoints.
The policy reads batch["task"] only while `warm_up_active` is True.

`model_config` keys: method (id), state_dim, action_dim, reward_dim (from the env's ObsLayout),
max_seq_len, any field of `ModelSizes` (paper grid-world sizes by default), and for the auxiliary
objectives: decoder, decoder_hidden (+ grid_size, goal_reward for "grid_reward"),
task_decoder_hidden, task_dim, inner_boundary (trials of several episodes: the last state entry is the
inner-episode-ended flag, and this is what the obs shows then, "terminal" or "reset"; envs/trial.py),
latent_norm_max_count and latent_norm_clip (the latent normaliser's options, normalize.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from rl_hyper.models.columns import ROLLOUT_LATENT, TASK
from rl_hyper.models.cores import make_core
from rl_hyper.models.encoder import TrajectoryEncoder
from rl_hyper.models.methods import get_method
from rl_hyper.models.normalize import RunningMeanStd
from rl_hyper.models.objectives import objectives_of
from rl_hyper.models.policy import CONDITIONINGS



@dataclass(frozen=True)
class ModelSizes:
    """Network sizes (PAPER_SPEC sections 2-3); defaults are the grid-world values."""

    state_embed: int = 32  # encoder's state embedding
    action_embed: int = 0  # encoder's action embedding (0 = unused)
    reward_embed: int = 8  # encoder's reward embedding
    gru_hidden: int = 256  # hidden size of the GRU or LSTM core
    transformer_width: int = 64  # the transformer core's token width
    transformer_layers: int = 2
    transformer_heads: int = 4
    latent_dim: int = 5
    latent_embed: int = 25  # policy's latent embedding (10 on Ant-Dir)
    policy_state_embed: int = 256  # policy's state embedding
    policy_hidden: tuple[int, ...] = (256, 128)

    @classmethod
    def from_config(cls, model_config: dict) -> "ModelSizes":
        values = {f.name: model_config[f.name] for f in fields(cls) if f.name in model_config}
        if "policy_hidden" in values:
            values["policy_hidden"] = tuple(values["policy_hidden"])
        return cls(**values)


class MetaRLModule(TorchRLModule, ValueFunctionAPI):
    """Encoder (sequence core) -> latent -> conditioned actor/critic (see module docstring)."""

    def setup(self):
        cfg = self.model_config
        self.method = get_method(cfg["method"])
        self.sizes = sizes = ModelSizes.from_config(cfg)
        self.state_dim, self.action_dim, self.reward_dim = cfg["state_dim"], cfg["action_dim"], cfg["reward_dim"]
        trial_steps = cfg.get("trial_length", cfg["max_seq_len"] - 1) + 1  # a trial's steps + RLlib's bootstrap step
        self.encoder = TrajectoryEncoder(
            self.state_dim, self.action_dim, self.reward_dim, state_embed=sizes.state_embed,
            action_embed=sizes.action_embed, reward_embed=sizes.reward_embed, latent_dim=sizes.latent_dim,
            make_core=lambda input_size: make_core(
                self.method.core, input_size, hidden=sizes.gru_hidden, transformer_width=sizes.transformer_width,
                transformer_layers=sizes.transformer_layers, transformer_heads=sizes.transformer_heads,
                max_len=trial_steps),
        )
        self.reads_state = CONDITIONINGS[self.method.policy_input].reads_state
        policy = self._make_policy()
        self.latent_embedding = policy["latent_embedding"]
        discrete = isinstance(self.action_space, gym.spaces.Discrete)
        self.log_std = None if discrete else nn.Parameter(torch.zeros(self._actor_out()))
        if self.reads_state:
            self.state_norm = RunningMeanStd(self.state_dim)
            self.state_embedding = policy["state_embedding"]
        self.actor, self.critic = policy["actor"], policy["critic"]
        self._setup_auxiliary(cfg)
        self._staged_samples: list[tuple[RunningMeanStd, torch.Tensor]] = []  # see stage_normalizer_samples

    def _actor_out(self) -> int:
        if isinstance(self.action_space, gym.spaces.Discrete):
            return int(self.action_space.n)
        return int(np.prod(self.action_space.shape))

    def _make_policy(self) -> dict[str, nn.Module]:
        """Freshly initialised policy parts: latent_embedding, state_embedding (if read), actor, critic."""
        sizes, conditioning = self.sizes, CONDITIONINGS[self.method.policy_input]
        actor_head = "discrete_head" if isinstance(self.action_space, gym.spaces.Discrete) else "gaussian_head"
        policy = {"latent_embedding": nn.Linear(2 * sizes.latent_dim, sizes.latent_embed)}
        if conditioning.reads_state:
            policy["state_embedding"] = nn.Linear(self.state_dim, sizes.policy_state_embed)
        shared = dict(state_embed=sizes.policy_state_embed, latent_embed=sizes.latent_embed, hidden=sizes.policy_hidden,
                      hyper_init=self.method.hyper_init)
        policy["actor"] = conditioning(out_features=self._actor_out(), head_kind=actor_head, **shared)
        policy["critic"] = conditioning(out_features=1, head_kind="critic_head", **shared)
        return policy

    def _setup_auxiliary(self, cfg: dict) -> None:
        """Decoders, latent normaliser and TI warm-up parts, for the methods that use them."""
        method, latent_dim = self.method, self.sizes.latent_dim
        self.inner_boundary = cfg.get("inner_boundary")
        if method.normalize_latent:
            self.latent_norm = RunningMeanStd(2 * latent_dim, max_count=cfg.get("latent_norm_max_count", math.inf),
                                              clip=cfg.get("latent_norm_clip", math.inf))
        self.objectives = objectives_of(method)
        for objective in self.objectives:
            setattr(self, objective.module_attribute, objective.build(cfg, self.sizes, self.state_dim, self.action_dim))
        if method.warm_up != "none":
            self.task_norm = RunningMeanStd(cfg["task_dim"])
            self.task_embedding = nn.Linear(cfg["task_dim"], self.sizes.latent_embed)
            self.register_buffer("warm_up_active", torch.tensor(True))
            self.register_buffer("warm_up_updates_done", torch.tensor(0, dtype=torch.int64))

    def aux_parameters(self) -> list[nn.Parameter]:
        """Parameters trained only by the auxiliary objective (encoder + decoders); [] without one."""
        if not self.objectives:
            return []
        decoders = [getattr(self, objective.module_attribute) for objective in self.objectives]
        return [*self.encoder.parameters(), *(p for decoder in decoders for p in decoder.parameters())]

    def in_warm_up(self) -> bool:
        return self.method.warm_up != "none" and bool(self.warm_up_active)

    def get_initial_state(self) -> dict:
        return self.encoder.initial_state()

    def split_obs(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """obs (B, T, S + A + 1) -> state (B, T, S), prev action (B, T, A), prev reward (B, T, 1)."""
        return obs.split([self.state_dim, self.action_dim, self.reward_dim], dim=-1)

    def encode(self, batch: dict) -> dict[str, torch.Tensor]:
        """Run the encoder (unless the batch carries the rollout latent) and build the policy's inputs.

        Returns latent (B, T, 2L): the latent the policy reads (normalised if the method does);
        latent_emb (B, T, E): the policy's conditioning (g(c) during a warm-up); for methods that
        read the state, state_emb (B, T, 256); and when the encoder ran, mu, logvar (B, T, L) and
        state, the core's state after the T steps ({name: (B, ...)}).
        """
        state, prev_action, prev_reward = self.split_obs(batch[Columns.OBS])
        out = {}
        if self.method.rl_grad_to_encoder or ROLLOUT_LATENT not in batch:
            mu, logvar, core_state = self.encoder(state, prev_action, prev_reward, batch[Columns.STATE_IN])
            out.update(mu=mu, logvar=logvar, state=core_state)
            latent = torch.cat([mu, logvar], dim=-1)
        else:
            # learner side of a stop-gradient method: the policy acts on the latent it saw while
            # sampling (as the original code); the encoder, trained by its own objective, is not run
            latent = batch[ROLLOUT_LATENT]
        if not self.method.rl_grad_to_encoder:
            latent = latent.detach()
        if self.method.normalize_latent:
            latent = self.latent_norm(latent)
        out["latent"] = latent
        if self.in_warm_up():
            out["latent_emb"] = self.task_embedding_of(batch)
        else:
            out["latent_emb"] = torch.tanh(self.latent_embedding(latent))
        if self.reads_state:
            out["state_emb"] = torch.tanh(self.state_embedding(self.state_norm(state)))
        return out

    def task_embedding_of(self, batch: dict) -> torch.Tensor:
        """g(c) = tanh(Linear(task_norm(c))): batch["task"] (B, T, D) -> (B, T, E)."""
        if TASK not in batch:
            raise KeyError(f"{self.method.id} in warm-up needs batch[{TASK!r}] (the task descriptor of each step)")
        return torch.tanh(self.task_embedding(self.task_norm(batch[TASK])))

    @staticmethod
    def run_network(network: nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply an actor or critic (a conditioning of policy.py) to features with leading dims
        (B, T) or (N,) -> (..., out)."""
        lead = features["latent_emb"].shape[:-1]
        flat = {name: features[name].reshape(-1, features[name].shape[-1]) for name in ("latent_emb", "state_emb")
                if name in features}
        return network(flat).reshape(*lead, -1)

    @staticmethod
    def features_at(features: dict[str, torch.Tensor], steps: torch.Tensor) -> dict[str, torch.Tensor]:
        """The policy's inputs at some steps: features (B, T, ...) of `encode`, steps (B, T) bool
        -> latent (N, 2L), latent_emb (N, E) and (when read) state_emb (N, 256), N = steps.sum()."""
        return {name: features[name][steps] for name in ("latent", "latent_emb", "state_emb") if name in features}

    def action_dist_inputs(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """features (leading dims (B, T) or (N,)) -> logits (..., n) or [mean, log_std] (..., 2A)."""
        actor_out = self.run_network(self.actor, features)
        if self.log_std is None:
            return actor_out
        return torch.cat([actor_out, self.log_std.expand_as(actor_out)], dim=-1)

    def _forward(self, batch: dict, **kwargs) -> dict[str, Any]:
        features = self.encode(batch)
        out = {Columns.ACTION_DIST_INPUTS: self.action_dist_inputs(features), Columns.STATE_OUT: features["state"]}
        if not self.method.rl_grad_to_encoder:  # kept with the episode, read back by the learner
            out[ROLLOUT_LATENT] = torch.cat([features["mu"], features["logvar"]], dim=-1)
        return out

    def stage_normalizer_samples(self, batch: dict) -> None:
        """Learner side, before an update: keep the batch's real steps for the running statistics
        (state; the sampled latent [mu, logvar] for VariBAD; task descriptor during a TI warm-up).

        They are applied after the update (`apply_normalizer_samples`), so during the update the
        learner normalises exactly as the sampler did and PPO's ratios start at 1.
        """
        mask = batch[Columns.LOSS_MASK]
        state, _, _ = self.split_obs(batch[Columns.OBS])
        self._staged_samples = []
        if self.reads_state:
            self._staged_samples.append((self.state_norm, state[mask]))
        if self.method.normalize_latent:
            self._staged_samples.append((self.latent_norm, batch[ROLLOUT_LATENT][mask]))
        if self.in_warm_up():
            self._staged_samples.append((self.task_norm, batch[TASK][mask]))

    def apply_normalizer_samples(self) -> None:
        """Learner side, after an update: fold the staged samples into the running statistics."""
        for normalizer, samples in self._staged_samples:
            normalizer.update(samples)
        self._staged_samples = []

    def posterior(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (B, T, S + A + 1) of sequences that start a trial -> mu, logvar (B, T, L), the
        encoder run from its initial state."""
        state, prev_action, prev_reward = self.split_obs(obs)
        mu, logvar, _ = self.encoder(state, prev_action, prev_reward, self.encoder.initial_state_batch(len(obs), obs.device))
        return mu, logvar

    @torch.no_grad()
    def end_warm_up(self) -> None:
        """Leave the warm-up; "reset" re-initialises every policy parameter except g."""
        if self.method.warm_up == "reset":
            for name, fresh in self._make_policy().items():
                for param, fresh_param in zip(getattr(self, name).parameters(), fresh.parameters()):
                    param.copy_(fresh_param)
            if self.log_std is not None:
                self.log_std.zero_()
        self.warm_up_active.fill_(False)

    def _forward_train(self, batch: dict, **kwargs) -> dict[str, Any]:
        """The encoder and embeddings over the whole (B, T) batch; the learner runs the actor and
        critic only on its minibatch's steps (`features_at`, `action_dist_inputs`, `compute_values`)."""
        features = self.encode(batch)
        return {Columns.STATE_OUT: features.get("state", batch[Columns.STATE_IN]), Columns.EMBEDDINGS: features}

    def compute_values(self, batch: dict, embeddings: Any = None) -> torch.Tensor:
        """Critic values (B, T), or (N,) for `embeddings` from `features_at`; with `embeddings`
        None the batch is encoded first."""
        features = embeddings if embeddings is not None else self.encode(batch)
        return self.run_network(self.critic, features).squeeze(-1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
