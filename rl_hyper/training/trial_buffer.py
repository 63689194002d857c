"""TrialBuffer: the learner's memory of past trials, from which the VAE objective is trained.

VariBAD (and every TI method built on it) trains its encoder and decoders on trials drawn from a
buffer of everything seen so far, not on the current PPO batch alone: the original code keeps the
last `size_vae_buffer` trajectories (100,000 on the grid-worlds, 10,000 on MuJoCo and MC-LS) and
draws `vae_batch_num_trajs` of them, without replacement, for each VAE update.

Each entry is one sequence of the train batch (a whole trial wherever a rollout holds whole
trials) stored as its columns padded to T steps plus its number of observed steps. Memory: the
buffer grows by doubling up to `capacity` entries of T * (sum of the columns' widths) float32
values each (T = max_seq_len; the observation's width, plus the task's for TI methods). At the
default sizes a full buffer holds: GridNavi 61 x 9 values per entry, 16,667 entries after 1e6
frames = 37 MB; CheetahDir 201 x 27 x 10,000 = 217 MB; WalkerRandParams 401 x 25 x 10,000 =
401 MB; MC-LS 401 x 305 x 10,000 = 4.9 GB (the original's size; lower `vae_buffer_trajectories`
in the study's `aux:` section where several MC-LS trials share a machine's memory).
The buffer is not saved with checkpoints: a resumed trial starts with an empty one.
"""

from __future__ import annotations

import numpy as np
import torch

STEPS = "steps"  # (n, T) bool column of `sample`: the observed steps of each sequence (a prefix)


class TrialBuffer:
    """Ring buffer of the last `capacity` sequences (oldest overwritten first)."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"a trial buffer needs a capacity of at least 1, got {capacity}")
        self.capacity = capacity
        self.columns: dict[str, torch.Tensor] = {}  # name -> (allocated, T, ...)
        self.lengths = torch.zeros(0, dtype=torch.int64)  # (allocated,) observed steps per entry
        self.size = 0  # entries filled
        self.next_index = 0  # where the next entry goes

    def __len__(self) -> int:
        return self.size

    def _grow(self, needed: int, like: dict[str, torch.Tensor]) -> None:
        """Allocate room for `needed` entries (doubling, at most `capacity`), keeping the filled ones."""
        allocated = self.lengths.shape[0]
        if needed <= allocated:
            return
        new_size = min(self.capacity, max(needed, 2 * allocated))
        for name, column in like.items():
            grown = torch.zeros((new_size, *column.shape[1:]), dtype=column.dtype)
            if name in self.columns:
                grown[:allocated] = self.columns[name]
            self.columns[name] = grown
        grown_lengths = torch.zeros(new_size, dtype=torch.int64)
        grown_lengths[:allocated] = self.lengths
        self.lengths = grown_lengths

    @torch.no_grad()
    def add(self, columns: dict[str, torch.Tensor], lengths: torch.Tensor) -> None:
        """Store B sequences: columns name -> (B, T, ...) tensors (every call the same names and T),
        lengths (B,) their observed steps. Sequences with no observed step are skipped."""
        keep = lengths > 0
        columns = {name: column[keep].detach().cpu() for name, column in columns.items()}
        lengths = lengths[keep].cpu()
        for row in range(lengths.shape[0]):
            self._grow(self.next_index + 1, columns)
            for name, column in columns.items():
                self.columns[name][self.next_index] = column[row]
            self.lengths[self.next_index] = lengths[row]
            self.next_index = (self.next_index + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """min(n, len) distinct entries drawn uniformly: the stored columns (n, T, ...) and
        STEPS (n, T) bool, on `device`."""
        if self.size == 0:
            raise ValueError("the trial buffer is empty")
        rows = torch.as_tensor(rng.choice(self.size, size=min(n, self.size), replace=False))
        out = {name: column[rows].to(device) for name, column in self.columns.items()}
        num_steps = next(iter(self.columns.values())).shape[1]
        out[STEPS] = (torch.arange(num_steps).unsqueeze(0) < self.lengths[rows].unsqueeze(1)).to(device)
        return out
