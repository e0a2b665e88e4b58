"""The fused CUDA kernels of the linear mixers, found once, used only on CUDA tensors.

transformers 5.24 calls the same three packages from the same places
(``use_kernel_func_from_hub_with_fallback`` in ``modeling_qwen3_next.py``, ``modeling_qwen3_5.py``,
``modeling_olmo_hybrid.py``, ``modeling_kimi_linear.py``, ``modeling_bailing_hybrid.py``,
``modeling_jamba.py``, ``modeling_lfm2.py``), and the mixers here pass them the arguments it passes:

* flash-linear-attention (``fla``): ``chunk_gated_delta_rule`` / ``fused_recurrent_gated_delta_rule``
  (gated DeltaNet ``G``) and ``chunk_kda`` / ``fused_recurrent_kda`` (Kimi delta attention ``K``):
  q and k as they leave the convolution (the kernel L2-normalises them: ``use_qk_l2norm_in_kernel``;
  its default scale ``head_k_dim ** -0.5``), the key heads not repeated (grouped value attention in
  the kernel, which fla has since 0.5.0: an older fla is not used), ``[B, T, H, K]`` layouts, the
  state ``[B, HV, K, V]`` (the layout of ``state.ssm``);
* causal-conv1d: ``causal_conv1d_fn`` (prefill; a cached window is put before the new inputs and the
  outputs for it dropped, as transformers does) and ``causal_conv1d_update`` (one token, the window
  updated in place; since 1.4.0 it accepts the ``kernel - 1`` columns ``state.conv`` keeps, so an
  older causal-conv1d is not used) for the convolution of ``G``, ``K``, ``S`` and ``C``, widths 2 to
  4 and no activation or SiLU only (what the kernel takes; other convolutions stay on PyTorch);
* mamba_ssm: ``selective_scan_fn`` (Mamba-1 ``S`` prefill from an empty state: the kernel takes no
  initial state) and ``selective_state_update`` (one token; the state updated in place).

Mamba2 ``M``'s kernels are found by ``patternc_torch.ssd.mamba2_kernels`` and used by
``patternc_torch.layers.Mamba2Mixer`` for prefill and its one-token step.  Each finder here imports
its package once, the first time a CUDA tensor asks (an import that fails, or raises anything else,
means no kernel); on the CPU nothing is imported.  ``PATTERNC_TORCH_NO_FUSED=1`` forces the PyTorch
path, the reference the kernels are compared against (read at every call here, so that a test can
flip it; ``ssd.fused_kernels`` reads it once, until its ``cache_clear()``).  Tests put PyTorch
stand-ins with the kernels' signatures in place of the finders (``monkeypatch.setattr(kernels,
"fla", ...)``, ``ssd.mamba2_kernels``): the mixers call them through the modules' attributes for that
reason.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from patternc_torch.layers import ACTIVATIONS
from patternc_torch.ssd import causal_conv, causal_conv_step

NO_FUSED = "PATTERNC_TORCH_NO_FUSED"
"""The environment switch that turns every fused kernel off (the Mamba2 ones too)."""

FLA_MIN_VERSION = (0, 5, 0)
"""The first fla whose gated DeltaNet kernels take fewer key than value heads (``HV % H == 0``), as
transformers 5.24 passes them."""

CAUSAL_CONV1D_MIN_VERSION = (1, 4, 0)
"""The first causal-conv1d whose ``causal_conv1d_update`` takes a window of ``kernel - 1`` columns
(``state_len >= width - 1``; before it, exactly ``kernel``)."""

CONV_WIDTHS = (2, 3, 4)
"""The convolution widths ``causal_conv1d`` compiles (its ``TORCH_CHECK(width >= 2 && width <= 4)``)."""

CONV_ACTIVATIONS = (None, "silu", "swish")
"""The activations ``causal_conv1d`` applies itself."""

Kernel = Callable[..., Any]


@dataclass(frozen=True)
class Fla:
    """flash-linear-attention's delta-rule kernels (``fla.ops.gated_delta_rule``, ``fla.ops.kda``)."""

    chunk_gated_delta_rule: Kernel
    fused_recurrent_gated_delta_rule: Kernel
    chunk_kda: Kernel
    fused_recurrent_kda: Kernel


@dataclass(frozen=True)
class CausalConv1d:
    """causal-conv1d's depthwise causal convolution, over a sequence and for one token."""

    causal_conv1d_fn: Kernel
    causal_conv1d_update: Kernel


@dataclass(frozen=True)
class MambaSsm:
    """mamba_ssm's Mamba-1 selective scan and its one-token step."""

    selective_scan_fn: Kernel
    selective_state_update: Kernel


def _version(text: str) -> tuple[int, ...]:
    """``"0.5.2"`` -> (0, 5, 2); the leading digits of each dotted part (``"1rc1"`` -> 1)."""
    parts = []
    for part in text.split(".")[:3]:
        digits = re.match(r"\d+", part)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


@functools.cache
def find_fla() -> Fla | None:
    """fla's kernels, or None when fla does not import or is older than ``FLA_MIN_VERSION``."""
    try:
        import fla as package  # type: ignore[import-not-found,unused-ignore]
        from fla.ops.gated_delta_rule import (  # type: ignore[import-not-found,unused-ignore]
            chunk_gated_delta_rule,
            fused_recurrent_gated_delta_rule,
        )
        from fla.ops.kda import chunk_kda, fused_recurrent_kda  # type: ignore[import-not-found,unused-ignore]
    except Exception:  # ImportError, or a Triton/CUDA setup raising anything at import
        return None
    if _version(str(getattr(package, "__version__", "0"))) < FLA_MIN_VERSION:
        return None
    return Fla(chunk_gated_delta_rule, fused_recurrent_gated_delta_rule, chunk_kda, fused_recurrent_kda)


@functools.cache
def find_causal_conv1d() -> CausalConv1d | None:
    """causal-conv1d's kernels, or None when it does not import or is older than ``CAUSAL_CONV1D_MIN_VERSION``."""
    try:
        import causal_conv1d as package  # type: ignore[import-not-found,unused-ignore]
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update  # type: ignore[import-not-found,unused-ignore]
    except Exception:
        return None
    if _version(str(getattr(package, "__version__", "0"))) < CAUSAL_CONV1D_MIN_VERSION:
        return None
    return CausalConv1d(causal_conv1d_fn, causal_conv1d_update)


@functools.cache
def find_mamba_ssm() -> MambaSsm | None:
    """mamba_ssm's Mamba-1 kernels, or None when they do not import."""
    try:
        from mamba_ssm.ops.selective_scan_interface import (  # type: ignore[import-not-found,unused-ignore]
            selective_scan_fn,
        )
        from mamba_ssm.ops.triton.selective_state_update import (  # type: ignore[import-not-found,unused-ignore]
            selective_state_update,
        )
    except Exception:
        return None
    return MambaSsm(selective_scan_fn, selective_state_update)


def disabled() -> bool:
    """Whether ``PATTERNC_TORCH_NO_FUSED`` forces the PyTorch path."""
    return bool(os.environ.get(NO_FUSED))


def fla(x: torch.Tensor) -> Fla | None:
    """fla's kernels for a computation on ``x``'s device: None on the CPU, when switched off, or missing.
    (``x.is_cuda`` first: on the CPU nothing else is looked at, which keeps the compiled step's trace plain.)"""
    if not x.is_cuda or disabled():
        return None
    return find_fla()


def causal_conv1d(x: torch.Tensor) -> CausalConv1d | None:
    """causal-conv1d's kernels for a computation on ``x``'s device (None as for ``fla``)."""
    if not x.is_cuda or disabled():
        return None
    return find_causal_conv1d()


def mamba_ssm(x: torch.Tensor) -> MambaSsm | None:
    """mamba_ssm's Mamba-1 kernels for a computation on ``x``'s device (None as for ``fla``)."""
    if not x.is_cuda or disabled():
        return None
    return find_mamba_ssm()


def _activate(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    return x if activation is None else ACTIVATIONS[activation](x)


def _conv_kernel(x: torch.Tensor, width: int, activation: str | None) -> CausalConv1d | None:
    if width not in CONV_WIDTHS or activation not in CONV_ACTIVATIONS:
        return None
    return causal_conv1d(x)


def conv_prefill(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    conv_state: torch.Tensor | None,
    activation: str | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The causal depthwise convolution of ``x`` (b, channels, t) and its activation, with the last
    ``kernel - 1`` inputs (the new window): ``ssd.causal_conv`` then the activation, through
    ``causal_conv1d_fn`` where it serves.  ``weight`` (channels, 1, kernel) or (channels, kernel);
    ``conv_state`` (b, channels, kernel - 1) the inputs before ``x`` or None (zeros)."""
    width = weight.shape[-1]
    kernel = _conv_kernel(x, width, activation)
    if kernel is None:
        out, tail = causal_conv(x, weight, bias, conv_state)
        return _activate(out, activation), tail
    t = x.shape[-1]
    full = x if conv_state is None else torch.cat([conv_state.to(x.dtype), x], dim=-1)
    # channel-first and contiguous: the kernel's channel-last layout would need channels % 8 == 0
    out = kernel.causal_conv1d_fn(
        full.contiguous(), weight.reshape(weight.shape[0], width), bias, activation=activation
    )
    window = F.pad(x, (width - 1, 0)) if conv_state is None else full
    return out[:, :, out.shape[-1] - t :], window[:, :, window.shape[-1] - (width - 1) :]


def conv_step(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    conv_state: torch.Tensor,
    activation: str | None,
) -> torch.Tensor:
    """One position of the convolution, x (b, channels) -> (b, channels) activated; ``conv_state``
    (b, channels, kernel - 1) shifted in place: ``ssd.causal_conv_step``, or ``causal_conv1d_update``."""
    width = weight.shape[-1]
    kernel = _conv_kernel(x, width, activation)
    if kernel is None:
        return _activate(causal_conv_step(x, weight, bias, conv_state), activation)
    return kernel.causal_conv1d_update(
        x, conv_state, weight.reshape(weight.shape[0], width), bias, activation=activation
    )
