"""The trajectory encoder shared by every method (PAPER_SPEC section 2).

Per step t it reads (s_t, a_{t-1}, r_t) from the trial observation: each part has its own
Linear+ReLU embedding (an embedding size of 0 drops that part), the concatenation feeds a sequence
core (cores.py: the paper's one-layer GRU by default, or an LSTM or a causal transformer), and
Linear(core output -> 2 * latent_dim) gives [mu, logvar]. The recurrent state is the core's
state; RLlib resets it to `initial_state()` at every new trial.

Deviation from the original code, kept deliberately: there the latent at t=0 comes from a GRU step
on an all-zero input; here the first step reads (s_0, a=0, r=0) from the initial state, so the
start state is part of the first input (it is the same for every task on the grid-worlds and MC-LS).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _embedding(in_features: int, out_features: int) -> nn.Module | None:
    if out_features == 0:
        return None
    return nn.Sequential(nn.Linear(in_features, out_features), nn.ReLU())


class TrajectoryEncoder(nn.Module):
    """(state, prev action, prev reward) sequences -> sequence core -> latent posterior parameters.

    `make_core(input_size)` builds the core (cores.py) for the embeddings' total size.
    """

    def __init__(self, state_dim: int, action_dim: int, reward_dim: int, *, state_embed: int,
                 action_embed: int, reward_embed: int, latent_dim: int, make_core):
        super().__init__()
        self.state_embedding = _embedding(state_dim, state_embed)
        self.action_embedding = _embedding(action_dim, action_embed)
        self.reward_embedding = _embedding(reward_dim, reward_embed)
        core_input = state_embed + action_embed + reward_embed
        if core_input == 0:
            raise ValueError("the encoder needs at least one non-zero embedding size")
        self.core = make_core(core_input)
        self.latent_head = nn.Linear(self.core.output_size, 2 * latent_dim)
        self.latent_dim = latent_dim

    def initial_state(self) -> dict[str, np.ndarray]:
        """One trial's start state of the core, {name: array} without a batch dimension."""
        return self.core.initial_state()

    def initial_state_batch(self, batch_size: int, device: torch.device | str) -> dict[str, torch.Tensor]:
        """`initial_state()` for `batch_size` sequences, {name: (B, ...)} tensors on `device`."""
        return {name: torch.as_tensor(value, device=device).expand(batch_size, *value.shape).clone()
                for name, value in self.initial_state().items()}

    def forward(self, state: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
                core_state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """state (B, T, S), prev_action (B, T, A), prev_reward (B, T, 1), core_state {name: (B, ...)}
        -> mu (B, T, L), logvar (B, T, L), the core's state after the T steps."""
        parts = [emb(x) for emb, x in ((self.state_embedding, state), (self.action_embedding, prev_action),
                                       (self.reward_embedding, prev_reward)) if emb is not None]
        hidden_seq, core_state = self.core(torch.cat(parts, dim=-1), core_state)
        mu, logvar = self.latent_head(hidden_seq).chunk(2, dim=-1)
        return mu, logvar, core_state
