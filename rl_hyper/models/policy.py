"""Actor and critic trunks: plain MLPs (RNN, RNN+S) and hypernetwork-generated MLPs (RNN+HN).

A trunk maps its input through hidden layers (tanh) to a head:
    plain: Trunk(x)                     x (N, in) -> (N, out)
    hyper: HyperTrunk(x, e)             x (N, in), e (N, C) -> (N, out); every layer's weight and
                                        bias generated from e (see hypernet.py)
The actor and the critic each get their own trunk; both read the same embeddings.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from rl_hyper.models.hypernet import GeneratedLinear
from rl_hyper.models.init import make_linear


class Trunk(nn.Module):
    """MLP in -> hidden... (tanh) -> out, with the paper's init (`head_kind` for the last layer)."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, head_kind: str):
        super().__init__()
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [make_linear(in_features, size, "hidden"), nn.Tanh()]
            in_features = size
        layers.append(make_linear(in_features, out_features, head_kind))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HyperTrunk(nn.Module):
    """The same MLP with every weight and bias generated from a condition vector e (N, C)."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, head_kind: str,
                 *, cond_dim: int, init: str):
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        kinds = ["hidden"] * len(hidden) + [head_kind]
        self.layers = nn.ModuleList(
            GeneratedLinear(i, o, cond_dim, init=init, base_kind=k) for i, o, k in zip(sizes[:-1], sizes[1:], kinds)
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x, cond)
            if index < len(self.layers) - 1:
                x = torch.tanh(x)
        return x
