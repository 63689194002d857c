"""The trajectory encoder shared by every method (PAPER_SPEC section 2).

Per step t it reads (s_t, a_{t-1}, r_t) from the trial observation: each part has its own
Linear+ReLU embedding (an embedding size of 0 drops that part), the concatenation feeds a one-layer
GRU (orthogonal weights, zero biases), and Linear(hidden -> 2 * latent_dim) gives [mu, logvar].
The recurrent state is the GRU hidden state; RLlib resets it to zeros at every new trial.

Deviation from the original code, kept deliberately: there the latent at t=0 comes from a GRU step
on an all-zero input; here the first step reads (s_0, a=0, r=0) from h=0, so the start state is
part of the first input (it is the same for every task on the grid-worlds and MC-LS).
"""

from __future__ import annotations

import torch
from torch import nn


def _embedding(in_features: int, out_features: int) -> nn.Module | None:
    if out_features == 0:
        return None
    return nn.Sequential(nn.Linear(in_features, out_features), nn.ReLU())


class TrajectoryEncoder(nn.Module):
    """(state, prev action, prev reward) sequences -> GRU -> latent posterior parameters."""

    def __init__(self, state_dim: int, action_dim: int, reward_dim: int, *, state_embed: int,
                 action_embed: int, reward_embed: int, hidden: int, latent_dim: int):
        super().__init__()
        self.state_embedding = _embedding(state_dim, state_embed)
        self.action_embedding = _embedding(action_dim, action_embed)
        self.reward_embedding = _embedding(reward_dim, reward_embed)
        gru_input = state_embed + action_embed + reward_embed
        if gru_input == 0:
            raise ValueError("the encoder needs at least one non-zero embedding size")
        self.gru = nn.GRU(gru_input, hidden, batch_first=True)
        for name, param in self.gru.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)
        self.latent_head = nn.Linear(hidden, 2 * latent_dim)
        self.hidden = hidden
        self.latent_dim = latent_dim

    def forward(self, state: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
                h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """state (B, T, S), prev_action (B, T, A), prev_reward (B, T, 1), h0 (B, H)
        -> mu (B, T, L), logvar (B, T, L), h_T (B, H)."""
        parts = [emb(x) for emb, x in ((self.state_embedding, state), (self.action_embedding, prev_action),
                                       (self.reward_embedding, prev_reward)) if emb is not None]
        hidden_seq, h_last = self.gru(torch.cat(parts, dim=-1), h0.unsqueeze(0))
        mu, logvar = self.latent_head(hidden_seq).chunk(2, dim=-1)
        return mu, logvar, h_last.squeeze(0)
