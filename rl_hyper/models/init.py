"""Weight initialisers of the paper's networks (PAPER_SPEC section 3, "Policy details").

normc: every row of a weight matrix (out, in) is drawn from N(0, I) and rescaled to norm `gain`.
Hidden layers use gain 5/3 (tanh), the Gaussian mean head gain 1, a categorical head orthogonal
init with gain 0.01; their biases start at 0. The critic head keeps torch's default `nn.Linear`
init, as in the original code: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
"""

from __future__ import annotations

import math

import torch
from torch import nn

TANH_GAIN = 5.0 / 3.0
DISCRETE_HEAD_GAIN = 0.01


def normc_(weight: torch.Tensor, gain: float) -> torch.Tensor:
    """In place: rows of `weight` (out, in) ~ N(0, I), each rescaled to L2 norm `gain`."""
    with torch.no_grad():
        weight.normal_(0.0, 1.0)
        weight.mul_(gain / weight.pow(2).sum(dim=1, keepdim=True).sqrt())
    return weight


def init_weight_(weight: torch.Tensor, kind: str) -> torch.Tensor:
    """Initialise a base-net weight (out, in) as its layer kind says.

    kind: "hidden" (normc 5/3), "gaussian_head" (normc 1), "discrete_head" (orthogonal 0.01),
    "critic_head" (torch's default: U(-1/sqrt(in), 1/sqrt(in))).
    """
    if kind == "hidden":
        return normc_(weight, TANH_GAIN)
    if kind == "gaussian_head":
        return normc_(weight, 1.0)
    if kind == "critic_head":
        return nn.init.uniform_(weight, -1.0 / math.sqrt(weight.shape[1]), 1.0 / math.sqrt(weight.shape[1]))
    if kind == "discrete_head":
        return nn.init.orthogonal_(weight, gain=DISCRETE_HEAD_GAIN)
    raise ValueError(f"unknown layer kind {kind!r}")


def init_bias_(bias: torch.Tensor, kind: str, in_features: int) -> torch.Tensor:
    """Initialise a base-net bias (out,): U(-1/sqrt(in), 1/sqrt(in)) for "critic_head", else 0."""
    if kind == "critic_head":
        return nn.init.uniform_(bias, -1.0 / math.sqrt(in_features), 1.0 / math.sqrt(in_features))
    return nn.init.zeros_(bias)


def make_linear(in_features: int, out_features: int, kind: str) -> nn.Linear:
    """nn.Linear with the paper's init for `kind` (weight and bias)."""
    layer = nn.Linear(in_features, out_features)
    init_weight_(layer.weight, kind)
    init_bias_(layer.bias, kind, in_features)
    return layer
