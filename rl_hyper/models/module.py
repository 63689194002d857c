"""MetaRLModule: the stateful RLlib module every method uses (new API stack).

Data path per step (B = sequences, T = time steps, N = B * T):

    obs (B, T, S + A + 1) = [state s_t (S), prev action a_{t-1} (A), prev reward r_t (1)]
      -> TrajectoryEncoder (GRU, state h)          -> mu, logvar (B, T, L)
      -> latent = [mu, logvar] (detached when the method stops RL gradients at the latent)
      -> latent embedding  e = tanh(Linear(2L -> E))                        (B, T, E)
      -> state embedding   x = tanh(Linear(S -> 256)) of running-normalised s_t   (methods that read s_t)
      -> policy by method.policy_input:
           latent:       actor(e),      critic(e)
           state_latent: actor([x, e]), critic([x, e])
           hyper:        actor(x; weights from e), critic(x; weights from e)
      -> action-distribution inputs (B, T, n) or (B, T, 2A) = [mean, log_std]; values (B, T)

`model_config` keys: method (id), state_dim, action_dim, reward_dim (from the env's ObsLayout),
max_seq_len, and any field of `ModelSizes` (paper grid-world sizes by default).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from rl_hyper.models.encoder import TrajectoryEncoder
from rl_hyper.models.methods import get_method
from rl_hyper.models.normalize import RunningMeanStd
from rl_hyper.models.policy import HyperTrunk, Trunk


@dataclass(frozen=True)
class ModelSizes:
    """Network sizes (PAPER_SPEC sections 2-3); defaults are the grid-world values."""

    state_embed: int = 32  # encoder's state embedding
    action_embed: int = 0  # encoder's action embedding (0 = unused)
    reward_embed: int = 8  # encoder's reward embedding
    gru_hidden: int = 256
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
    """Encoder GRU -> latent -> method-specific actor/critic (see module docstring)."""

    def setup(self):
        cfg = self.model_config
        self.method = get_method(cfg["method"])
        self.sizes = sizes = ModelSizes.from_config(cfg)
        self.state_dim, self.action_dim, self.reward_dim = cfg["state_dim"], cfg["action_dim"], cfg["reward_dim"]
        self.encoder = TrajectoryEncoder(
            self.state_dim, self.action_dim, self.reward_dim, state_embed=sizes.state_embed,
            action_embed=sizes.action_embed, reward_embed=sizes.reward_embed, hidden=sizes.gru_hidden,
            latent_dim=sizes.latent_dim,
        )
        self.latent_embedding = nn.Linear(2 * sizes.latent_dim, sizes.latent_embed)

        discrete = isinstance(self.action_space, gym.spaces.Discrete)
        actor_out = int(self.action_space.n) if discrete else int(np.prod(self.action_space.shape))
        actor_head = "discrete_head" if discrete else "gaussian_head"
        self.log_std = None if discrete else nn.Parameter(torch.zeros(actor_out))

        policy_input = self.method.policy_input
        if policy_input != "latent":
            self.state_norm = RunningMeanStd(self.state_dim)
            self.state_embedding = nn.Linear(self.state_dim, sizes.policy_state_embed)
        if policy_input == "hyper":
            hyper = dict(cond_dim=sizes.latent_embed, init=self.method.hyper_init)
            self.actor = HyperTrunk(sizes.policy_state_embed, sizes.policy_hidden, actor_out, actor_head, **hyper)
            self.critic = HyperTrunk(sizes.policy_state_embed, sizes.policy_hidden, 1, "critic_head", **hyper)
        else:
            in_features = sizes.latent_embed + (sizes.policy_state_embed if policy_input == "state_latent" else 0)
            self.actor = Trunk(in_features, sizes.policy_hidden, actor_out, actor_head)
            self.critic = Trunk(in_features, sizes.policy_hidden, 1, "critic_head")

    def get_initial_state(self) -> dict:
        return {"h": np.zeros(self.sizes.gru_hidden, np.float32)}

    def split_obs(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """obs (B, T, S + A + 1) -> state (B, T, S), prev action (B, T, A), prev reward (B, T, 1)."""
        return obs.split([self.state_dim, self.action_dim, self.reward_dim], dim=-1)

    def encode(self, batch: dict) -> dict[str, torch.Tensor]:
        """Run the encoder and build the policy's inputs.

        Returns mu, logvar (B, T, L), h (B, H), latent_emb (B, T, E) and, for methods that read
        the state, state_emb (B, T, 256).
        """
        state, prev_action, prev_reward = self.split_obs(batch[Columns.OBS])
        mu, logvar, h = self.encoder(state, prev_action, prev_reward, batch[Columns.STATE_IN]["h"])
        latent = torch.cat([mu, logvar], dim=-1)
        if not self.method.rl_grad_to_encoder:
            latent = latent.detach()
        out = {"mu": mu, "logvar": logvar, "h": h, "latent_emb": torch.tanh(self.latent_embedding(latent))}
        if self.method.policy_input != "latent":
            out["state_emb"] = torch.tanh(self.state_embedding(self.state_norm(state)))
        return out

    def _trunk(self, trunk: nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply an actor or critic trunk to (B, T, ...) features -> (B, T, out)."""
        latent_emb = features["latent_emb"]
        lead = latent_emb.shape[:-1]
        policy_input = self.method.policy_input
        if policy_input == "latent":
            out = trunk(latent_emb.reshape(-1, latent_emb.shape[-1]))
        elif policy_input == "state_latent":
            joint = torch.cat([features["state_emb"], latent_emb], dim=-1)
            out = trunk(joint.reshape(-1, joint.shape[-1]))
        else:
            state_emb = features["state_emb"]
            out = trunk(state_emb.reshape(-1, state_emb.shape[-1]), latent_emb.reshape(-1, latent_emb.shape[-1]))
        return out.reshape(*lead, -1)

    def action_dist_inputs(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """features -> logits (B, T, n) or [mean, log_std] (B, T, 2A)."""
        actor_out = self._trunk(self.actor, features)
        if self.log_std is None:
            return actor_out
        return torch.cat([actor_out, self.log_std.expand_as(actor_out)], dim=-1)

    def _forward(self, batch: dict, **kwargs) -> dict[str, Any]:
        features = self.encode(batch)
        return {Columns.ACTION_DIST_INPUTS: self.action_dist_inputs(features), Columns.STATE_OUT: {"h": features["h"]}}

    def update_normalizers(self, batch: dict) -> None:
        """Learner side, once per training batch: add its real steps to the state statistics."""
        if self.method.policy_input != "latent":
            state, _, _ = self.split_obs(batch[Columns.OBS])
            self.state_norm.update(state[batch[Columns.LOSS_MASK]])

    def _forward_train(self, batch: dict, **kwargs) -> dict[str, Any]:
        features = self.encode(batch)
        return {
            Columns.ACTION_DIST_INPUTS: self.action_dist_inputs(features),
            Columns.STATE_OUT: {"h": features["h"]},
            Columns.EMBEDDINGS: features,
        }

    def compute_values(self, batch: dict, embeddings: Any = None) -> torch.Tensor:
        """Critic values (B, T); `embeddings` are the features of `_forward_train` when given."""
        features = embeddings if embeddings is not None else self.encode(batch)
        return self._trunk(self.critic, features).squeeze(-1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
