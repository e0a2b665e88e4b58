"""Mamba2's state-space duality (SSD) in plain PyTorch: the chunked scan and the one-token step.

Shapes: ``b`` batch, ``l`` positions, ``h`` heads, ``p`` head_dim, ``g`` groups (B and C are shared
by ``h // g`` consecutive heads, as ``repeat_interleave`` in transformers), ``n`` state size.
Everything here runs in float32 whatever the model dtype: the state is a running product of decays.

On CUDA, when ``mamba_ssm`` and ``causal_conv1d`` import, ``patternc_torch.layers`` uses their fused
kernels instead (``fused_kernels()``); these functions are the reference and the CPU path.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
import torch.nn.functional as F

SCAN_CHUNK = 32
"""The block length ``Mamba2Mixer`` scans with on the PyTorch path, whatever the model's ``chunk_size``.

Any block length gives the same result (up to rounding); short blocks keep the per-head (l, s) decay
matrices small and in cache, and the state crosses blocks in a short loop of matrix products."""


def ssd_chunk_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    initial_state: torch.Tensor | None = None,
    D: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """y (b, l, h, p) and the final state (b, h, p, n); with ``D`` (h,), y includes the ``D * x`` skip.

    x (b, l, h, p); dt (b, l, h), already softplus'ed, biased and clamped; A (h,) negative;
    B, C (b, l, g, n); initial_state (b, h, p, n) or None.  Positions with dt = 0 and x = 0
    (padding) leave the state unchanged.
    """
    b, seqlen, h, p = x.shape
    g, n = B.shape[-2], B.shape[-1]
    r = h // g
    rp = r * p
    q = max(1, min(chunk_size, seqlen))
    pad = (-seqlen) % q
    f32 = torch.float32
    # in-place updates of intermediates, except when autograd records this call
    inplace = not torch.is_grad_enabled() or not any(
        t is not None and t.requires_grad for t in (x, dt, A, B, C, initial_state, D)
    )
    x, dt, B, C = x.to(f32), dt.to(f32), B.to(f32), C.to(f32)
    xdt = x * dt.unsqueeze(-1)  # (b, l, h, p)
    dA = dt * A.to(f32)  # (b, l, h)
    if pad:
        xdt = F.pad(xdt, (0, 0, 0, 0, 0, pad))
        dA = F.pad(dA, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    c = (seqlen + pad) // q
    a_cum = torch.cumsum(dA.view(b, c, q, h), dim=2)  # (b, c, q, h)
    Bc = B.reshape(b, c, q, g, n).transpose(2, 3)  # (b, c, g, q, n)
    Cc = C.reshape(b, c, q, g, n).transpose(2, 3)  # (b, c, g, q, n)

    # 1. within each chunk, per head: y[l] = sum_{s <= l} (C_l . B_s) exp(a_cum[l] - a_cum[s]) x_s dt_s
    a_h = a_cum.transpose(2, 3).contiguous()  # (b, c, h, q)
    segment = a_h.unsqueeze(-1) - a_h.unsqueeze(-2)  # (b, c, h, l, s)
    scores = torch.matmul(Cc, Bc.transpose(-1, -2)).unsqueeze(3)  # (b, c, g, 1, l, s)
    if inplace:  # above the diagonal exp() may overflow to inf; tril_ replaces those entries by 0
        weights = torch.exp_(segment).tril_()
        weights.view(b, c, g, r, q, q).mul_(scores)
    else:  # autograd: mask before exp (an inf would turn the masked gradient into NaN)
        causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril_()
        weights = torch.exp(segment.masked_fill(~causal, float("-inf")))
        weights = (weights.view(b, c, g, r, q, q) * scores).view(b, c, h, q, q)
    y_diag = torch.matmul(weights, xdt.view(b, c, q, h, p).transpose(2, 3))  # (b, c, h, l, p)
    del weights, segment

    # 2. chunk by chunk: the entering state's contribution C_l . state, then the state update
    #    state <- state * exp(a_end) + sum_l B_l (x_l dt_l exp(a_end - a_cum[l])).  The state is kept
    #    as (b, g, n, r p) so that both are plain matrix products over the group's heads.
    a_end = a_cum[:, :, -1:, :]  # (b, c, 1, h)
    xs_end = (xdt.view(b, c, q, h, p) * torch.exp(a_end - a_cum).unsqueeze(-1)).view(b, c, q, g, rp)
    chunk_decay = torch.exp(a_end).view(b, c, g, 1, r, 1).expand(b, c, g, 1, r, p).reshape(b, c, g, 1, rp)
    if initial_state is None:
        state = torch.zeros(b, g, n, rp, dtype=f32, device=x.device)
    else:
        state = initial_state.to(f32).view(b, g, r, p, n).permute(0, 1, 4, 2, 3).reshape(b, g, n, rp)
    if inplace:
        y = torch.empty(c, b, g, q, rp, dtype=f32, device=x.device)
        for z in range(c):
            torch.matmul(Cc[:, z], state, out=y[z])
            update = torch.matmul(Bc[:, z].transpose(-1, -2), xs_end[:, z].transpose(1, 2))  # (b, g, n, r p)
            state = update.addcmul_(state, chunk_decay[:, z])
    else:
        parts = []
        for z in range(c):
            parts.append(torch.matmul(Cc[:, z], state))
            update = torch.matmul(Bc[:, z].transpose(-1, -2), xs_end[:, z].transpose(1, 2))
            state = torch.addcmul(update, state, chunk_decay[:, z])
        y = torch.stack(parts)
    final_state = state.view(b, g, n, r, p).permute(0, 1, 3, 4, 2).reshape(b, h, p, n)

    # 3. scale the entering state's contribution by the decay from the chunk's start, add the rest
    y6 = y.view(c, b, g, q, r, p).permute(1, 0, 3, 2, 4, 5)  # (b, c, q, g, r, p)
    from_start = torch.exp(a_cum).view(b, c, q, g, r, 1)
    y6 = y6.mul_(from_start) if inplace else y6 * from_start
    out = y6.reshape(b, c, q, h, p)
    out = out.add_(y_diag.transpose(2, 3)) if inplace else out + y_diag.transpose(2, 3)
    out = out.reshape(b, c * q, h, p)  # a copy only with several rows (chunk-major above)
    if pad:
        out = out[:, :seqlen]
    if D is not None:
        skip = D.to(f32).view(h, 1)
        out = out.addcmul_(x, skip) if inplace and not pad else torch.addcmul(out, x, skip)
    return out, final_state


def ssd_step(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
) -> torch.Tensor:
    """One position: updates ``state`` (b, h, p, n) in place and returns y (b, h, p) (+ ``D * x`` with ``D``).

    x (b, h, p); dt (b, h) ready (softplus, bias, clamp); B, C (b, g, n); all float32 but ``x``.
    """
    b, h, p, n = state.shape
    g = B.shape[1]
    r = h // g
    x = x.to(torch.float32)
    grouped = state.view(b, g, r, p, n)
    grouped.mul_(torch.exp(dt * A).view(b, g, r, 1, 1))
    grouped.addcmul_((x * dt.unsqueeze(-1)).view(b, g, r, p, 1), B.view(b, g, 1, 1, n))
    y = torch.bmm(state.view(b * g, r * p, n), C.reshape(b * g, n, 1)).view(b, h, p)
    if D is not None:
        y.addcmul_(x, D.view(h, 1))
    return y


def causal_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv_state: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise causal convolution over (b, channels, l); returns (out, the last kernel-1 inputs).

    ``conv_state`` (b, channels, kernel - 1) holds the inputs before ``x`` (zeros when None).
    """
    k = weight.shape[-1]
    full = F.pad(x, (k - 1, 0)) if conv_state is None else torch.cat([conv_state.to(x.dtype), x], dim=-1)
    out = F.conv1d(full, weight.view(weight.shape[0], 1, k), bias, groups=weight.shape[0])
    return out, full[:, :, full.shape[-1] - (k - 1) :]


def causal_conv_step(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv_state: torch.Tensor
) -> torch.Tensor:
    """One position (b, channels): updates ``conv_state`` (b, channels, kernel - 1) in place."""
    k = weight.shape[-1]
    window = torch.cat([conv_state, x.unsqueeze(-1)], dim=-1)  # (b, channels, k)
    out = torch.linalg.vecdot(window, weight.view(weight.shape[0], k))
    if bias is not None:
        out = out.add_(bias)
    if k > 1:
        conv_state.copy_(window[:, :, 1:])
    return out


def mamba2_kernels(x: torch.Tensor) -> dict[str, Any] | None:
    """``fused_kernels()`` for a computation on ``x``'s device: None on the CPU (nothing imported).
    Called through this module's attribute, so that a test can put stand-ins in its place."""
    return fused_kernels() if x.is_cuda else None


@functools.cache
def fused_kernels() -> dict[str, Any] | None:
    """The CUDA kernels of ``mamba_ssm`` and ``causal_conv1d``, or None when either does not import.

    ``PATTERNC_TORCH_NO_FUSED=1`` turns them off (to compare against the PyTorch path).
    """
    if os.environ.get("PATTERNC_TORCH_NO_FUSED"):
        return None
    try:
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update  # type: ignore[import-not-found,unused-ignore]
        from mamba_ssm.ops.triton.selective_state_update import (  # type: ignore[import-not-found,unused-ignore]
            selective_state_update,
        )
        from mamba_ssm.ops.triton.ssd_combined import (  # type: ignore[import-not-found,unused-ignore]
            mamba_chunk_scan_combined,
        )
    except Exception:  # ImportError, or a broken CUDA build raising anything at import
        return None
    return {
        "causal_conv1d_fn": causal_conv1d_fn,
        "causal_conv1d_update": causal_conv1d_update,
        "selective_state_update": selective_state_update,
        "mamba_chunk_scan_combined": mamba_chunk_scan_combined,
    }
