"""Parallel layers (``[*M]``, Falcon-H1's decoder layer): several mixers on one normed input, one residual add.

``FalconH1DecoderLayer.forward``: the layer's input is normed once; each branch takes that input
times its µP input multiplier, its output is times its output multiplier, the branches are summed
and the sum is added to the residual once::

    h = norm(x);  x + mamba(h * ssm_in) * ssm_out + attention(h * attention_in) * attention_out

Inside the branches Falcon-H1's µP goes on: the attention's keys times ``key_multiplier`` (before
RoPE), Mamba2's ``in_proj`` output times the five ``ssm_multipliers`` (z, x, B, C, dt; transformers'
``mup_vector``).  The canonical graph (``patternc.canonical.graph.lower_parallel_layer``) places
them exactly there, and only in parallel layers; the MLP's and the head's multipliers are the
model's (``patternc_torch.kinds`` and ``HybridLM._head``).

Each branch is its kind's own module (``TorchKind.build``), keyed in the inference state by the
layer's index like any layer (an attention layer's KV cache, a Mamba2 layer's conv and SSM state:
different tables, no clash), and decodes with its kind's own step: the block's decode step runs
each branch's step on the normed token and sums, as ``forward`` does.  Checkpoint names: the first
mixer of the layer is ``mixer``, the others ``parallel.J`` in the order written (transformers'
``model.layers.N.self_attn`` / ``mamba`` are mapped by ``patternc_torch.weights``).
"""

from __future__ import annotations

import torch
from torch import nn

from patternc.kinds import LayerKind, by_symbol, kind_def
from patternc.model import ModelSpec
from patternc_torch.decode import Rope, StepFn, norm_step
from patternc_torch.kinds import build_mixer, torch_kind
from patternc_torch.layers import Attention, Block, Context, Mamba2Mixer
from patternc_torch.state import InferenceState


def branch_factors(spec: ModelSpec, symbol: str) -> tuple[float, float]:
    """A branch's input and output multipliers (Falcon-H1's µP; 1.0 without them), as the canonical
    graph's ``_branch_factors``."""
    mup = spec.mup
    kind = by_symbol(symbol).kind
    if mup is None:
        return 1.0, 1.0
    if kind == LayerKind.ATTENTION:
        return mup.attention_in, mup.attention_out
    if kind == LayerKind.MAMBA2:
        return mup.ssm_in, mup.ssm_out
    return 1.0, 1.0


class ParallelBlock(Block):
    """``x + sum_j out_j * mixer_j(norm(x) * in_j)``: the first mixer is ``mixer``, the others ``parallel``."""

    def __init__(self, spec: ModelSpec, symbol: str, parallel: tuple[str, ...], index: int) -> None:
        """Layer ``index`` of ``spec``: ``symbol`` its first mixer, ``parallel`` the kinds of the others."""
        first = build_mixer(spec, symbol, index)
        super().__init__(
            symbol, first, spec.hidden_size, spec.norm.eps, spec.residual_multiplier, spec.norm.unit_offset
        )
        others = tuple(kind_def(kind).symbol for kind in parallel)
        self.symbols = (symbol, *others)
        self.parallel = nn.ModuleList(build_mixer(spec, s, index) for s in others)
        self.factors = tuple(branch_factors(spec, s) for s in self.symbols)
        if spec.mup is not None:
            for mixer in self.branches():
                if isinstance(mixer, Attention):
                    mixer.key_multiplier = spec.mup.key
                elif isinstance(mixer, Mamba2Mixer):
                    mixer.in_scales = spec.mup.ssm

    def branches(self) -> list[nn.Module]:
        """The mixers, in the order written: ``mixer``, then ``parallel``."""
        return [self.mixer, *self.parallel]

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        h = self.norm(x)
        total: torch.Tensor | None = None
        for mixer, (factor_in, factor_out) in zip(self.branches(), self.factors, strict=True):
            out = mixer(h if factor_in == 1.0 else h * factor_in, ctx)
            if factor_out != 1.0:
                out = out * factor_out
            total = out if total is None else total + out
        assert total is not None
        if self.residual_multiplier != 1.0:
            total = total * self.residual_multiplier
        return x + total

    def decode_step(self) -> StepFn:
        """``forward`` for one token per row: each branch's own decode step on the normed token, summed."""
        norm = norm_step(self.norm)
        steps = [torch_kind(s).step(m) for s, m in zip(self.symbols, self.branches(), strict=True)]
        factors = self.factors
        multiplier = self.residual_multiplier

        def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
            h = norm(x)
            total: torch.Tensor | None = None
            for inner, (factor_in, factor_out) in zip(steps, factors, strict=True):
                out = inner(h if factor_in == 1.0 else h * factor_in, state, start, rope)
                if factor_out != 1.0:
                    out = out * factor_out
                total = out if total is None else total + out
            assert total is not None
            return x + total if multiplier == 1.0 else torch.add(x, total, alpha=multiplier)

        return step

    def decode_ready(self, state: InferenceState) -> bool:
        """Whether ``state`` holds what every branch's step reads (a Mamba2 branch's state after a first forward)."""
        return all(torch_kind(s).ready(m, state) for s, m in zip(self.symbols, self.branches(), strict=True))
