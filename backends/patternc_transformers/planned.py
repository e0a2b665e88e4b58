"""A planned output tensor: which checkpoint tensors make it, and how (one, a chunk of one, a stack).

``patternc_transformers.build`` plans every tensor of the output from the checkpoint's headers before
reading any data; the llama.cpp layout re-plans them (one tensor per expert) and makes them with its
own producer.  Both share these types, so neither module imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from patternc_checkpoint import Entry, TensorInfo, TensorReader

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, slots=True)
class Fetch:
    """How one logical weight is read from the checkpoint."""

    op: Literal["one", "chunk", "stack"]
    names: tuple[str, ...]
    dim: int = 0
    part: int = 0
    parts: int = 1
    hub: bool = False


@dataclass(frozen=True, slots=True)
class Planned:
    """One output tensor (its name, shape and dtype) and the fetches joined along ``dim`` to make it."""

    entry: Entry
    fetches: tuple[Fetch, ...]
    dim: int = 0


def produce_tensor(planned: Planned, reader: TensorReader, tensors: Mapping[str, TensorInfo]) -> torch.Tensor:
    """The planned tensor, read from the checkpoint: each fetch read (stacked, or one chunk of it), then joined."""
    import torch

    parts: list[torch.Tensor] = []
    for fetch in planned.fetches:
        if fetch.op == "one":
            parts.append(reader.read(tensors[fetch.names[0]], fetch.names[0]))
        elif fetch.op == "chunk":
            name = fetch.names[0]
            parts.append(reader.read_chunk(tensors[name], name, fetch.dim, fetch.part, fetch.parts))
        else:
            parts.append(torch.stack([reader.read(tensors[n], n) for n in fetch.names]))
    if len(parts) == 1:
        return parts[0]
    return torch.cat(parts, dim=planned.dim)


Producer = Callable[[Planned, TensorReader, Mapping[str, TensorInfo]], "torch.Tensor"]
"""Makes one planned tensor (``produce_tensor``, or the llama.cpp layout's per-expert slicing)."""
