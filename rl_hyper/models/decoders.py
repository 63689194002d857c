"""Decoders of the auxiliary objectives: VariBAD's reward/state decoders and the TI task decoder.

Each trajectory decoder scores, from the latent sample z_t of every step t of a sequence, every
observed target j of the same sequence (B = sequences, T = steps, L = latent size):

    GridRewardDecoder   z_t -> logits (C,): one Bernoulli head per grid cell, "cell k is the
                        goal"; target j = (cell of the agent's position s_j, r_j == goal_reward)
    TransitionDecoder   reward: (z_t, s_{j-1}, a_j, s_j) -> r_j      (MSE)
                        state:  (z_t, s_{j-1}, a_j)      -> s_j      (MSE)

`nll(z, state, prev_action, prev_reward, targets)` returns the negative log-likelihood summed over
the targets j marked in `targets` (B, T), for every latent step t: (B, T). The (t, j) pairs form
a (B, T, T) grid; the transition decoder's first layer is split into a latent part and a
transition part that are added by broadcasting, so the grid never holds concatenated inputs.

The TI task decoder is a plain `mlp`: z_t -> task prediction (raw descriptor or task embedding).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear + ReLU per hidden size, then a linear output layer."""
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(in_features, size), nn.ReLU()]
        in_features = size
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


class GridRewardDecoder(nn.Module):
    """Multi-head Bernoulli reward decoder of the grid-worlds: z -> "cell k is the goal" logits.

    The agent's position is state[..., :2] = (x, y) on a grid_size x grid_size grid; head
    k = x * grid_size + y. On GridNavi-Show the observation shows the goal instead of the position
    whenever the agent stands on the start cell, so those steps label the goal cell "not the goal"
    (a known imperfection of decoding positions from observations).
    """

    reads_previous_state = False  # target j: (s_j, r_j)

    def __init__(self, latent_dim: int, hidden: Sequence[int], *, grid_size: int, goal_reward: float):
        super().__init__()
        self.grid_size, self.goal_reward = grid_size, goal_reward
        self.net = mlp(latent_dim, hidden, grid_size * grid_size)

    def nll(self, z: torch.Tensor, state: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
            targets: torch.Tensor) -> torch.Tensor:
        """z (B, T, L), state (B, T, S), prev_reward (B, T, 1), targets (B, T) bool -> (B, T)."""
        num_steps = z.shape[1]
        position = state[..., :2].round().long().clamp(0, self.grid_size - 1)
        cell = position[..., 0] * self.grid_size + position[..., 1]  # (B, T)
        logits = self.net(z).gather(-1, cell.unsqueeze(1).expand(-1, num_steps, -1))  # (B, T_t, T_j)
        is_goal = (prev_reward.squeeze(-1) - self.goal_reward).abs() < 1e-6  # (B, T)
        labels = is_goal.float().unsqueeze(1).expand_as(logits)
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        return (bce * targets.unsqueeze(1)).sum(-1)


class TransitionDecoder(nn.Module):
    """MLP on (z_t, transition j) -> reward r_j or next state s_j, with a squared-error NLL."""

    reads_previous_state = True  # target j: the transition (s_{j-1}, a_j, r_j, s_j)

    def __init__(self, latent_dim: int, hidden: Sequence[int], *, state_dim: int, action_dim: int, target: str):
        super().__init__()
        if target not in ("reward", "state"):
            raise ValueError(f"unknown decoder target {target!r}; choose 'reward' or 'state'")
        self.target = target
        transition_dim = state_dim + action_dim + (state_dim if target == "reward" else 0)
        self.latent_layer = nn.Linear(latent_dim, hidden[0])
        self.transition_layer = nn.Linear(transition_dim, hidden[0], bias=False)
        self.rest = mlp(hidden[0], hidden[1:], 1 if target == "reward" else state_dim)

    def nll(self, z: torch.Tensor, state: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor,
            targets: torch.Tensor) -> torch.Tensor:
        """z (B, T, L), state (B, T, S), prev_action (B, T, A), prev_reward (B, T, 1), targets (B, T)
        bool (step j is the end of a usable transition s_{j-1} -a_j-> s_j) -> (B, T)."""
        prev_state = torch.cat([torch.zeros_like(state[:, :1]), state[:, :-1]], dim=1)  # s_{j-1}, zeros at j=0
        if self.target == "reward":
            transition, target = torch.cat([prev_state, prev_action, state], dim=-1), prev_reward
        else:
            transition, target = torch.cat([prev_state, prev_action], dim=-1), state
        hidden = torch.relu(self.latent_layer(z).unsqueeze(2) + self.transition_layer(transition).unsqueeze(1))
        prediction = self.rest(hidden)  # (B, T_t, T_j, out)
        squared_error = (prediction - target.unsqueeze(1)).pow(2).sum(-1)  # (B, T_t, T_j)
        return (squared_error * targets.unsqueeze(1)).sum(-1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor,
                prior_logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) of diagonal Gaussians, (..., L) -> (...)."""
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1).sum(-1)


def build_trajectory_decoder(model_config: dict, latent_dim: int, state_dim: int, action_dim: int) -> nn.Module:
    """The VariBAD decoder named by model_config["decoder"]: "grid_reward", "reward" or "state"."""
    kind, hidden = model_config["decoder"], list(model_config["decoder_hidden"])
    if kind == "grid_reward":
        return GridRewardDecoder(latent_dim, hidden, grid_size=model_config["grid_size"],
                                 goal_reward=model_config["goal_reward"])
    if kind in ("reward", "state"):
        return TransitionDecoder(latent_dim, hidden, state_dim=state_dim, action_dim=action_dim, target=kind)
    raise ValueError(f"unknown decoder {kind!r}; choose 'grid_reward', 'reward' or 'state'")
