"""Sequence cores of the trajectory encoder: GRU (the paper's), LSTM and a small causal transformer.

Every core has one interface (B = sequences, T = steps, D = input size, H = `output_size`):

    initial_state()                        {name: np.ndarray}, one trial's start state (no batch dim)
    forward(x (B, T, D), state {name: (B, ...)}) -> out (B, T, H), state after the T steps

RLlib keeps the state with each episode and resets it to `initial_state()` at every new episode,
i.e. every trial: every core remembers across the inner episodes of a trial and forgets between
trials. Padded steps after a sequence's real ones never influence its real outputs (each core is
causal), so the learner can run whole padded sequences.

    gru          one-layer GRU, orthogonal weights, zero biases; state h (H,)
    lstm         one-layer LSTM, the same init; state h, c (H,) each
    transformer  pre-norm causal transformer over the trial so far. Its state holds the trial's
                 past inputs, `memory` (M, D) with M = the trial length + 1, and their number,
                 `length` (1,); each forward attends over the remembered inputs and the new ones
                 (so a sampling step costs O(M) token passes, bounded by the trial length).
                 Learned position embeddings over the M positions; no dropout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CORES = ("gru", "lstm", "transformer")


def _orthogonal_init_(rnn: nn.RNNBase) -> None:
    for name, param in rnn.named_parameters():
        if name.startswith("weight"):
            nn.init.orthogonal_(param)
        else:
            nn.init.zeros_(param)


class GRUCore(nn.Module):
    """x (B, T, D), {"h": (B, H)} -> (B, T, H), {"h": (B, H)}."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.output_size = hidden
        self.gru = nn.GRU(input_size, hidden, batch_first=True)
        _orthogonal_init_(self.gru)

    def initial_state(self) -> dict[str, np.ndarray]:
        return {"h": np.zeros(self.output_size, np.float32)}

    def forward(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out, h = self.gru(x, state["h"].unsqueeze(0))
        return out, {"h": h.squeeze(0)}


class LSTMCore(nn.Module):
    """x (B, T, D), {"h": (B, H), "c": (B, H)} -> (B, T, H), the same state keys."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.output_size = hidden
        self.lstm = nn.LSTM(input_size, hidden, batch_first=True)
        _orthogonal_init_(self.lstm)

    def initial_state(self) -> dict[str, np.ndarray]:
        return {"h": np.zeros(self.output_size, np.float32), "c": np.zeros(self.output_size, np.float32)}

    def forward(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out, (h, c) = self.lstm(x, (state["h"].unsqueeze(0), state["c"].unsqueeze(0)))
        return out, {"h": h.squeeze(0), "c": c.squeeze(0)}


class TransformerCore(nn.Module):
    """x (B, T, D), {"memory": (B, M, D), "length": (B, 1)} -> (B, T, width), the same state keys."""

    def __init__(self, input_size: int, *, width: int, layers: int, heads: int, max_len: int):
        super().__init__()
        self.input_size, self.max_len, self.output_size = input_size, max_len, width
        self.token = nn.Linear(input_size, width)
        self.position = nn.Embedding(max_len, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def initial_state(self) -> dict[str, np.ndarray]:
        return {"memory": np.zeros((self.max_len, self.input_size), np.float32), "length": np.zeros(1, np.float32)}

    def forward(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        memory, length = state["memory"], state["length"].squeeze(-1).long()  # (B, M, D), (B,)
        num_memory, num_new = memory.shape[1], x.shape[1]
        inputs = torch.cat([memory, x], dim=1)  # (B, M + T, D)
        index = torch.arange(num_memory + num_new, device=x.device)
        is_new = index >= num_memory  # (M + T,)
        # a remembered input sits at its own position; the new ones follow the trial's `length`
        position = torch.where(is_new, length.unsqueeze(1) + index - num_memory, index.expand(len(length), -1))
        valid = is_new | (index < length.unsqueeze(1))  # (B, M + T)
        causal = index.unsqueeze(0) <= index.unsqueeze(1)  # (queries, keys): key at or before query
        allowed = causal.unsqueeze(0) & valid.unsqueeze(1) | torch.eye(len(index), dtype=torch.bool, device=x.device)
        tokens = self.token(inputs) + self.position(position.clamp(max=self.max_len - 1))
        heads = self.blocks.layers[0].self_attn.num_heads
        mask = (~allowed).repeat_interleave(heads, dim=0)  # (B * heads, M + T, M + T), True = blocked
        out = self.norm(self.blocks(tokens, mask=mask))[:, num_memory:]
        # the new memory: the valid remembered inputs, then the new ones, the oldest dropped past M
        slot = torch.arange(num_memory, device=x.device)
        total = length + num_new
        start = (total - num_memory).clamp(min=0)  # (B,) inputs dropped from the front
        source = start.unsqueeze(1) + slot  # index into [remembered valid inputs..., new inputs]
        source = torch.where(source < length.unsqueeze(1), source, source - length.unsqueeze(1) + num_memory)
        gathered = inputs.gather(1, source.clamp(max=num_memory + num_new - 1).unsqueeze(-1).expand(-1, -1, inputs.shape[-1]))
        kept = (slot.unsqueeze(0) < total.clamp(max=num_memory).unsqueeze(1)).unsqueeze(-1)
        new_state = {"memory": gathered * kept, "length": total.clamp(max=num_memory).unsqueeze(-1).to(state["length"].dtype)}
        return out, new_state


def make_core(kind: str, input_size: int, *, hidden: int, transformer_width: int, transformer_layers: int,
              transformer_heads: int, max_len: int) -> nn.Module:
    """The sequence core `kind` ("gru", "lstm", "transformer") reading inputs of `input_size`."""
    if kind == "gru":
        return GRUCore(input_size, hidden)
    if kind == "lstm":
        return LSTMCore(input_size, hidden)
    if kind == "transformer":
        return TransformerCore(input_size, width=transformer_width, layers=transformer_layers,
                               heads=transformer_heads, max_len=max_len)
    raise ValueError(f"unknown sequence core {kind!r}; choose from {', '.join(CORES)}")
