"""Running mean / standard deviation of a feature vector, kept as module buffers.

Buffers travel with the module's state, so the learner's statistics reach the env runners with
every weight sync. Only the learner updates them (`update`), from the real (unpadded) steps.
"""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Normalises (..., D) inputs by a running mean and variance (parallel-variance update)."""

    def __init__(self, dim: int, epsilon: float = 1e-8):
        super().__init__()
        self.epsilon = epsilon
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.tensor(1e-4))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """x (N, D): a batch of real samples."""
        if x.shape[0] == 0:
            return
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total) / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) -> (x - mean) / sqrt(var + eps), same shape."""
        return (x - self.mean) / torch.sqrt(self.var + self.epsilon)
