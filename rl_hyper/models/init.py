"""Weight initialisers of the paper's networks (PAPER_SPEC section 3, "Policy details").

normc: every row of a weight matrix (out, in) is drawn from N(0, I) and rescaled to norm `gain`.
Hidden layers use gain 5/3 (tanh), the Gaussian mean head and the critic head gain 1, a
categorical head orthogonal init with gain 0.01. Biases start at 0.
"""

from __future__ import annotations

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

    kind: "hidden" (normc 5/3), "gaussian_head" / "critic_head" (normc 1), "discrete_head"
    (orthogonal 0.01).
    """
    if kind == "hidden":
        return normc_(weight, TANH_GAIN)
    if kind in ("gaussian_head", "critic_head"):
        return normc_(weight, 1.0)
    if kind == "discrete_head":
        return nn.init.orthogonal_(weight, gain=DISCRETE_HEAD_GAIN)
    raise ValueError(f"unknown layer kind {kind!r}")


def make_linear(in_features: int, out_features: int, kind: str) -> nn.Linear:
    """nn.Linear with the paper's init for `kind` and a zero bias."""
    layer = nn.Linear(in_features, out_features)
    init_weight_(layer.weight, kind)
    nn.init.zeros_(layer.bias)
    return layer
