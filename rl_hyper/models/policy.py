"""The policy's networks: how an actor or critic combines the state and the latent conditioning.

Each conditioning is one class with one interface: built from the embedding sizes, the hidden
layers and its head, `forward(features)` maps features {"latent_emb": (N, E), "state_emb": (N, S)}
to (N, out). `reads_state` says whether it needs the state embedding.

    latent        Trunk(e)                    RNN: the latent embedding alone
    state_latent  Trunk([x, e])               RNN+S: state and latent embeddings concatenated
    film          FiLMTrunk(x; e)             every hidden layer of an MLP on x is scaled and shifted
                                              by the latent: tanh((1 + g(e)) * (W x + b) + s(e)), with
                                              g and s zero at init (a latent-independent start, as
                                              Bias-HyperInit)
    hyper         HyperTrunk(x; e)            RNN+HN: every weight and bias generated from e
                                              (hypernet.py; Bias-HyperInit or Kaiming)

Layers are tanh MLPs with the paper's init (init.py); the actor and the critic each get their own.
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
        """x (N, in) -> (N, out)."""
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
        """x (N, in), cond (N, C) -> (N, out)."""
        for index, layer in enumerate(self.layers):
            x = layer(x, cond)
            if index < len(self.layers) - 1:
                x = torch.tanh(x)
        return x


class FiLMTrunk(nn.Module):
    """MLP on x whose hidden pre-activations are scaled by (1 + g(e)) and shifted by s(e)."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, head_kind: str, *, cond_dim: int):
        super().__init__()
        self.hidden_layers = nn.ModuleList()
        self.modulations = nn.ModuleList()  # Linear(C -> 2 * size): [g, s], zero at init
        for size in hidden:
            self.hidden_layers.append(make_linear(in_features, size, "hidden"))
            modulation = nn.Linear(cond_dim, 2 * size)
            nn.init.zeros_(modulation.weight)
            nn.init.zeros_(modulation.bias)
            self.modulations.append(modulation)
            in_features = size
        self.head = make_linear(in_features, out_features, head_kind)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (N, in), cond (N, C) -> (N, out)."""
        for layer, modulation in zip(self.hidden_layers, self.modulations):
            scale, shift = modulation(cond).chunk(2, dim=-1)
            x = torch.tanh((1 + scale) * layer(x) + shift)
        return self.head(x)


class LatentConditioning(nn.Module):
    """RNN: an MLP on the latent embedding alone."""

    reads_state = False

    def __init__(self, *, state_embed: int, latent_embed: int, hidden: Sequence[int], out_features: int,
                 head_kind: str, hyper_init: str):
        super().__init__()
        self.trunk = Trunk(latent_embed, hidden, out_features, head_kind)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.trunk(features["latent_emb"])


class StateLatentConditioning(nn.Module):
    """RNN+S: an MLP on [state embedding, latent embedding]."""

    reads_state = True

    def __init__(self, *, state_embed: int, latent_embed: int, hidden: Sequence[int], out_features: int,
                 head_kind: str, hyper_init: str):
        super().__init__()
        self.trunk = Trunk(state_embed + latent_embed, hidden, out_features, head_kind)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.trunk(torch.cat([features["state_emb"], features["latent_emb"]], dim=-1))


class FiLMConditioning(nn.Module):
    """FiLM: an MLP on the state embedding, modulated by the latent embedding."""

    reads_state = True

    def __init__(self, *, state_embed: int, latent_embed: int, hidden: Sequence[int], out_features: int,
                 head_kind: str, hyper_init: str):
        super().__init__()
        self.trunk = FiLMTrunk(state_embed, hidden, out_features, head_kind, cond_dim=latent_embed)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.trunk(features["state_emb"], features["latent_emb"])


class HyperConditioning(nn.Module):
    """RNN+HN: an MLP on the state embedding whose weights the latent embedding generates."""

    reads_state = True

    def __init__(self, *, state_embed: int, latent_embed: int, hidden: Sequence[int], out_features: int,
                 head_kind: str, hyper_init: str):
        super().__init__()
        self.trunk = HyperTrunk(state_embed, hidden, out_features, head_kind, cond_dim=latent_embed, init=hyper_init)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.trunk(features["state_emb"], features["latent_emb"])


CONDITIONINGS: dict[str, type[nn.Module]] = {
    "latent": LatentConditioning,
    "state_latent": StateLatentConditioning,
    "film": FiLMConditioning,
    "hyper": HyperConditioning,
}
