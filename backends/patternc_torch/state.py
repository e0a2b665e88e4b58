"""Inference state: a KV cache per attention layer, conv and SSM state per Mamba layer.

One ``InferenceState`` holds everything a model needs to continue a batch of sequences: the
number of positions already consumed (``offset``, shared by the batch: left padding keeps rows
aligned), which of those positions are real tokens (``key_mask``, for left-padded batches), and the
next RoPE position of each row.  KV buffers are preallocated to ``capacity`` and grow by doubling;
the Mamba state has a constant size whatever the length.
"""

from __future__ import annotations

import torch


class InferenceState:
    def __init__(self, batch: int, capacity: int = 256) -> None:
        self.batch = batch
        self.capacity = max(1, capacity)
        self.offset = 0
        """Positions consumed so far (the same for every row)."""
        self.key_mask: torch.Tensor | None = None
        """(batch, capacity) bool, True for real tokens; None while every position is real."""
        self.next_position: torch.Tensor | None = None
        """(batch,) long: the RoPE position of each row's next real token; None means ``offset``."""
        self.kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.conv: dict[int, torch.Tensor] = {}
        self.ssm: dict[int, torch.Tensor] = {}
        self.latent: dict[int, torch.Tensor] = {}
        """(batch, capacity, width) per latent-attention layer (``patternc_torch.latent``): each position's
        normed latent and rotated key (and, for sparse attention, the indexer's key), never expanded K/V."""

    def reserve(self, new_tokens: int) -> None:
        """Make room for ``new_tokens`` more positions in every KV buffer (and the key mask)."""
        need = self.offset + new_tokens
        if need <= self.capacity:
            return
        capacity = max(need, 2 * self.capacity)
        for index, (k, v) in self.kv.items():
            self.kv[index] = (_grow(k, capacity), _grow(v, capacity))
        for index, latent in self.latent.items():
            self.latent[index] = _grow(latent.unsqueeze(1), capacity).squeeze(1)
        if self.key_mask is not None:
            grown = torch.ones(self.batch, capacity, dtype=torch.bool, device=self.key_mask.device)
            grown[:, : self.capacity] = self.key_mask
            self.key_mask = grown
        self.capacity = capacity

    def kv_buffers(
        self, index: int, heads: int, head_dim: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        entry = self.kv.get(index)
        if entry is None:
            shape = (self.batch, heads, self.capacity, head_dim)
            entry = (torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))
            self.kv[index] = entry
        return entry

    def seq_len(self) -> int:
        return self.offset


def _grow(buffer: torch.Tensor, capacity: int) -> torch.Tensor:
    b, h, old, d = buffer.shape
    grown = buffer.new_zeros(b, h, capacity, d)
    grown[:, :, :old] = buffer
    return grown
