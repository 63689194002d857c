"""Running mean / standard deviation of a feature vector, kept as module buffers.

Buffers travel with the module's state, so the learner's statistics reach the env runners with
every weight sync. Only the learner updates them (`update`), from the real (unpadded) steps.

Two options exist for inputs whose distribution keeps moving (the latent of an encoder that is
still learning, see the VariBAD methods in module.py):
    max_count  the statistics forget: the sample count saturates at `max_count`, so a new batch
               of n samples always weighs at least n / (max_count + n) and the mean and variance
               follow the current distribution instead of being fixed by the first batches.
    clip       the normalised output is clamped to [-clip, clip].
The defaults (no limit, no clip) are plain cumulative statistics.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Normalises (..., D) inputs by a running mean and variance (parallel-variance update)."""

    def __init__(self, dim: int, epsilon: float = 1e-8, max_count: float = math.inf, clip: float = math.inf):
        super().__init__()
        self.epsilon, self.max_count, self.clip = epsilon, max_count, clip
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
        self.count.copy_(total.clamp(max=self.max_count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) -> (x - mean) / sqrt(var + eps), clamped to [-clip, clip], same shape."""
        normalised = (x - self.mean) / torch.sqrt(self.var + self.epsilon)
        return normalised if math.isinf(self.clip) else normalised.clamp(-self.clip, self.clip)
