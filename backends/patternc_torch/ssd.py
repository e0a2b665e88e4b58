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


def ssd_chunk_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """y (b, l, h, p) and the final state (b, h, p, n), without the ``D`` skip.

    x (b, l, h, p); dt (b, l, h), already softplus'ed, biased and clamped; A (h,) negative;
    B, C (b, l, g, n); initial_state (b, h, p, n) or None.  Positions with dt = 0 and x = 0
    (padding) leave the state unchanged.
    """
    b, seqlen, h, p = x.shape
    g, n = B.shape[-2], B.shape[-1]
    r = h // g
    q = min(chunk_size, seqlen)
    pad = (-seqlen) % q
    x, dt, B, C = x.float(), dt.float(), B.float(), C.float()
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    c = (seqlen + pad) // q
    x = x.view(b, c, q, g, r, p)
    dt = dt.view(b, c, q, h)
    B = B.view(b, c, q, g, n)
    C = C.view(b, c, q, g, n)

    dA = dt * A.float()  # (b, c, q, h)
    a_cum = torch.cumsum(dA, dim=2)  # (b, c, q, h)
    xdt = x * dt.view(b, c, q, g, r, 1)

    # 1. within each chunk: y[l] = sum_{s <= l} (C_l . B_s) exp(a_cum[l] - a_cum[s]) x_s dt_s
    segment = a_cum.unsqueeze(3) - a_cum.unsqueeze(2)  # (b, c, l, s, h)
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril_()
    decay = torch.exp(segment.masked_fill(~causal.view(1, 1, q, q, 1), float("-inf")))
    scores = torch.einsum("bclgn,bcsgn->bcgls", C, B)  # (b, c, g, l, s)
    weights = scores.unsqueeze(3) * decay.permute(0, 1, 4, 2, 3).reshape(b, c, g, r, q, q)  # (b, c, g, r, l, s)
    y = torch.einsum("bcgrls,bcsgrp->bclgrp", weights, xdt)

    # 2. the state each chunk adds, decayed to the chunk's end
    to_end = torch.exp(a_cum[:, :, -1:, :] - a_cum).view(b, c, q, g, r, 1)  # (b, c, q, g, r, 1)
    chunk_states = torch.einsum("bclgn,bclgrp->bcgrpn", B, xdt * to_end).reshape(b, c, h, p, n)

    # 3. across chunks: the state entering each chunk (a tiny causal matrix over chunks)
    if initial_state is None:
        start = torch.zeros(b, 1, h, p, n, dtype=torch.float32, device=x.device)
    else:
        start = initial_state.float().unsqueeze(1)
    states = torch.cat([start, chunk_states], dim=1)  # (b, c + 1, h, p, n)
    chunk_decay = F.pad(a_cum[:, :, -1, :], (0, 0, 1, 0))  # (b, c + 1, h)
    chunk_cum = torch.cumsum(chunk_decay, dim=1)
    across = chunk_cum.unsqueeze(2) - chunk_cum.unsqueeze(1)  # (b, z_to, z_from, h)
    causal_c = torch.ones(c + 1, c + 1, dtype=torch.bool, device=x.device).tril_()
    across = torch.exp(across.masked_fill(~causal_c.view(1, c + 1, c + 1, 1), float("-inf")))
    entering = torch.einsum("bzyh,byhpn->bzhpn", across, states)  # (b, c + 1, h, p, n)
    final_state = entering[:, -1]
    entering = entering[:, :-1].reshape(b, c, g, r, p, n)

    # 4. the entering state's contribution within each chunk
    from_start = torch.exp(a_cum).view(b, c, q, g, r, 1)
    y = y + torch.einsum("bclgn,bcgrpn->bclgrp", C, entering) * from_start
    y = y.reshape(b, c * q, h, p)[:, :seqlen]
    return y, final_state


def ssd_step(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
) -> torch.Tensor:
    """One position: updates ``state`` (b, h, p, n) in place and returns y (b, h, p), without ``D``.

    x (b, h, p); dt (b, h) ready (softplus, bias, clamp); B, C (b, g, n).
    """
    b, h, p, n = state.shape
    g = B.shape[1]
    r = h // g
    dA = torch.exp(dt.float() * A.float())  # (b, h)
    grouped = state.view(b, g, r, p, n)
    xdt = (x.float() * dt.float().unsqueeze(-1)).view(b, g, r, p, 1)
    grouped.mul_(dA.view(b, g, r, 1, 1)).add_(xdt * B.float().view(b, g, 1, 1, n))
    y = torch.matmul(grouped, C.float().view(b, g, 1, n, 1))  # (b, g, r, p, 1)
    return y.view(b, h, p)


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
    out = (window * weight.view(weight.shape[0], k)).sum(-1)
    if bias is not None:
        out = out + bias
    if k > 1:
        conv_state.copy_(window[:, :, 1:])
    return out


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
