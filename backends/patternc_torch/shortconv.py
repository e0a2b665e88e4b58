"""Gated short convolution (``C``, kind ``short_conv``): LFM2's mixer (``Lfm2ShortConv``).

The math is transformers' torch path (``modeling_lfm2.py``): the input (zeroed at padded positions,
``apply_mask_to_padding_states``) goes through ``in_proj`` to three ``hidden_size`` streams B, C and
x; the product ``B * x`` goes through one causal depthwise convolution over ``conv_kernel`` tokens
(no activation); the result is gated by ``C`` and projected by ``out_proj``.  ``bias`` (LFM2's
``conv_bias``) puts a bias on ``in_proj``, the convolution and ``out_proj`` alike.

There is no recurrence beyond the convolution, so the decode state is the convolution's window
only: the last ``conv_kernel - 1`` values of ``B * x`` (``state.conv``, keyed by the layer's index
like a Mamba layer's), constant whatever the length.  The parameter names are transformers'
(``in_proj``, ``conv``, ``out_proj``), so LFM2 checkpoints load without renaming the mixer's own
tensors.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from patternc.model import ModelSpec, ShortConvSpec
from patternc_torch import kernels
from patternc_torch.decode import Rope, StepFn, dense
from patternc_torch.kinds import TorchKind
from patternc_torch.layers import Context
from patternc_torch.ssd import causal_conv
from patternc_torch.state import InferenceState


class ShortConv(nn.Module):
    """``out_proj(C * conv(B * x))`` with ``B, C, x = in_proj(input)``, the convolution causal and depthwise."""

    def __init__(self, spec: ShortConvSpec, hidden: int, index: int) -> None:
        super().__init__()
        self.index = index
        self.hidden = hidden
        self.kernel = spec.conv_kernel
        self.in_proj = nn.Linear(hidden, 3 * hidden, bias=spec.bias)
        self.conv = nn.Conv1d(hidden, hidden, self.kernel, groups=hidden, bias=spec.bias, padding=self.kernel - 1)
        self.out_proj = nn.Linear(hidden, hidden, bias=spec.bias)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        if kernels.causal_conv1d(x) is not None:
            return fused_forward(self, x, ctx)
        if ctx.token_mask is not None:
            x = x * ctx.token_mask.unsqueeze(-1).to(x.dtype)
        B, C, xs = self.in_proj(x).chunk(3, dim=-1)
        state = ctx.state
        conv_state = state.conv.get(self.index) if state is not None else None
        conv_out, tail = causal_conv((B * xs).transpose(1, 2), self.conv.weight, self.conv.bias, conv_state)
        if state is not None:
            state.conv[self.index] = tail.contiguous().clone()
        return self.out_proj(C * conv_out.transpose(1, 2))


def shortconv_step(mixer: ShortConv) -> StepFn:
    """``ShortConv.forward`` for one token per row after an unpadded history: the window of ``B * x``
    shifted in place, one dot product per channel."""
    index, kernel, hidden = mixer.index, mixer.kernel, mixer.hidden
    in_proj, out_proj = dense(mixer.in_proj), dense(mixer.out_proj)
    conv_w, conv_b = mixer.conv.weight.view(hidden, kernel), mixer.conv.bias

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        if kernels.causal_conv1d(x) is not None:
            return fused_step(mixer, x, state)
        B, C, xs = in_proj(x).chunk(3, dim=-1)
        conv_state = state.conv[index]
        window = torch.cat([conv_state, (B * xs).unsqueeze(-1)], dim=-1)  # (b, hidden, kernel)
        if kernel > 1:
            conv_state.copy_(window[:, :, 1:])
        y = torch.linalg.vecdot(window, conv_w)
        if conv_b is not None:
            y = y.add_(conv_b)
        return out_proj(y.mul_(C))

    return step


def fused_forward(mixer: ShortConv, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    """``ShortConv.forward`` with ``causal_conv1d_fn`` (``kernels.conv_prefill``, no activation), as
    ``Lfm2ShortConv`` calls it where causal-conv1d imports."""
    if ctx.token_mask is not None:
        x = x * ctx.token_mask.unsqueeze(-1).to(x.dtype)
    B, C, xs = mixer.in_proj(x).chunk(3, dim=-1)
    state = ctx.state
    conv_state = state.conv.get(mixer.index) if state is not None else None
    conv_out, tail = kernels.conv_prefill(
        (B * xs).transpose(1, 2), mixer.conv.weight, mixer.conv.bias, conv_state, None
    )
    if state is not None:
        state.conv[mixer.index] = tail.contiguous().clone()
    return mixer.out_proj(C * conv_out.transpose(1, 2))


def fused_step(mixer: ShortConv, x: torch.Tensor, state: InferenceState) -> torch.Tensor:
    """``shortconv_step``'s step with ``causal_conv1d_update`` (``kernels.conv_step``) on the window."""
    B, C, xs = mixer.in_proj(x).chunk(3, dim=-1)
    y = kernels.conv_step(B * xs, mixer.conv.weight, mixer.conv.bias, state.conv[mixer.index], None)
    return mixer.out_proj(y * C)


def _build(spec: ModelSpec, index: int) -> nn.Module | None:
    c = spec.short_conv
    return None if c is None else ShortConv(c, spec.hidden_size, index)


def _ready(mixer: nn.Module, state: InferenceState) -> bool:
    return cast(ShortConv, mixer).index in state.conv


SHORT_CONV_KIND = TorchKind(_build, lambda mixer: shortconv_step(cast(ShortConv, mixer)), _ready)
"""The ``TorchKind`` of ``C`` (``support.SUPPORT`` names it)."""
