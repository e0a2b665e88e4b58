"""The layer kinds ``M * - E`` as nn.Modules, one per flavour the IR carries.

Parameter names follow the Nemotron-H hub checkpoints (``mixer.in_proj``, ``mixer.experts.up_proj``,
``mixer.gate.e_score_correction_bias``…), so those load without renaming; other layouts are
converted in ``patternc_torch.weights``.  Numerics follow transformers' modules (norms in float32,
router in float32, SSM state in float32); docs/backends/torch.md lists the deliberate differences.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from patternc.model import AttentionSpec, MambaSpec, MoeSpec, NormSpec
from patternc_torch import ssd
from patternc_torch.ssd import SCAN_CHUNK, causal_conv, causal_conv_step, ssd_chunk_scan, ssd_step
from patternc_torch.state import InferenceState


def _relu2(x: torch.Tensor) -> torch.Tensor:
    return torch.square(F.relu(x))


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": F.silu,
    "swish": F.silu,
    "relu": F.relu,
    "relu2": _relu2,
    "relu6": F.relu6,
    "gelu": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": _identity,
}
"""transformers' ``ACT2FN`` names this backend computes (same formulas)."""


@dataclass
class Context:
    """What every layer of one forward call shares."""

    state: InferenceState | None
    token_mask: torch.Tensor | None
    """(b, t) bool, True for real tokens; None when every token is real."""
    attn_mask: torch.Tensor | None
    """(b, 1, t, keys) bool for scaled_dot_product_attention; None with ``is_causal`` or one query."""
    is_causal: bool
    rope: tuple[torch.Tensor, torch.Tensor] | None
    """cos, sin (b, 1, t, rotary_dim), float32."""
    start: int
    """Cache position of the first new token."""


def _f32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float32 else x.float()


@functools.cache
def _scalar(value: float, device: torch.device) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32, device=device)


@functools.cache
def _sections(sizes: tuple[int, ...], factors: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """A float32 vector of ``factors[i]`` repeated ``sizes[i]`` times (Falcon-H1's ``mup_vector``),
    computed once: it is a constant of the config, not a weight (never in a checkpoint)."""
    parts = [torch.full((n,), f, dtype=torch.float32, device="cpu") for n, f in zip(sizes, factors, strict=True)]
    return torch.cat(parts).to(device)


def _inv_rms(h: torch.Tensor, eps: float) -> torch.Tensor:
    """``rsqrt(mean(h**2, -1) + eps)`` (keepdim) for float32 ``h``, in three kernels (this runs per layer per token)."""
    norm = torch.linalg.vector_norm(h, dim=-1, keepdim=True)
    return torch.addcmul(_scalar(eps, h.device), norm, norm, value=1.0 / h.shape[-1]).rsqrt_()


class RMSNorm(nn.Module):
    """``w * x / rms(x)`` in float32; zero-centred (``unit_offset``, Qwen3-Next's and Qwen3.5's norms)
    the stored weight is ``w - 1``, so the scale is ``1 + weight`` (and a fresh norm stores zeros).
    ``exact``: transformers' arithmetic (``rsqrt(mean(x**2) + eps)``) as zero-centred norms use it (OLMo
    Hybrid's norms, upstream of its gated delta rule)."""

    def __init__(self, size: int, eps: float, unit_offset: bool = False, exact: bool = False) -> None:
        super().__init__()
        self.unit_offset = unit_offset
        self.exact = exact
        self.weight = nn.Parameter(torch.zeros(size) if unit_offset else torch.ones(size))
        self.eps = eps

    def scale(self) -> torch.Tensor:
        """The float32 factor the normalised input is multiplied by."""
        weight = _f32(self.weight)
        return weight + 1.0 if self.unit_offset else weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _f32(x)
        if self.unit_offset or self.exact:
            # Qwen's own arithmetic (``Qwen3NextRMSNorm``): the gated delta rule's chunked solve amplifies
            # an ulp of difference in its input, so the zero-centred norm rounds exactly as transformers'
            out = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps) * self.scale()
        else:
            out = self.scale() * (h * _inv_rms(h, self.eps))
        return out if out.dtype == x.dtype else out.to(x.dtype)


class GatedRMSNorm(nn.Module):
    """Mamba2's output norm: ``rmsnorm_per_group(y * silu(z)) * weight`` (norm after the gate), or with
    ``before_gate`` (Falcon-H1's ``mamba_norm_before_gate``) ``rmsnorm_per_group(y) * weight * silu(z)``."""

    def __init__(self, size: int, group_size: int, eps: float, before_gate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.group_size = group_size
        self.eps = eps
        self.before_gate = before_gate

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = _f32(y) if self.before_gate else _f32(y) * F.silu(_f32(z))
        shape = h.shape
        if self.group_size == shape[-1]:
            out = _f32(self.weight) * (h * _inv_rms(h, self.eps))
        else:
            grouped = h.view(*shape[:-1], shape[-1] // self.group_size, self.group_size)
            grouped = grouped * _inv_rms(grouped, self.eps)
            out = _f32(self.weight) * grouped.view(shape)
        return out * F.silu(_f32(z)) if self.before_gate else out


# -- attention -----------------------------------------------------------------------------------


def rope_frequencies(head_dim: int, partial_factor: float, theta: float) -> torch.Tensor:
    """The inverse frequencies, computed on the CPU and moved to the default device: ``arange`` under
    the meta device goes through torch's Python references, whose first call imports sympy (seconds of
    a cold ``build --target torch`` of any model with RoPE)."""
    rotary = int(head_dim * partial_factor)
    inv_freq = 1.0 / (theta ** (torch.arange(0, rotary, 2, dtype=torch.float32, device="cpu") / rotary))
    return inv_freq.to(torch.get_default_device())


def rope_tables(positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (b, 1, t, rotary_dim) for positions (b, t)."""
    freqs = positions.unsqueeze(-1).float() * inv_freq.to(positions.device)
    emb = torch.cat([freqs, freqs], dim=-1).unsqueeze(1)
    return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    rotary = cos.shape[-1]
    rot, rest = x[..., :rotary], x[..., rotary:]
    half = rotary // 2
    rotated = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)
    out = rot * cos.to(x.dtype) + rotated * sin.to(x.dtype)
    return torch.cat([out, rest], dim=-1) if rest.shape[-1] else out


class Attention(nn.Module):
    """Grouped-query attention through scaled_dot_product_attention, optional (partial) RoPE.

    Qwen3-Next's flavours: ``qk_norm`` RMSNorms each query and key head (the model's norm, zero-centred
    when it is) before RoPE; ``output_gate`` doubles ``q_proj`` (per head: its query, then its gate,
    transformers' layout) and multiplies the attention output by ``sigmoid(gate)`` before ``o_proj``.
    """

    def __init__(self, spec: AttentionSpec, hidden: int, index: int, norm: NormSpec | None = None) -> None:
        super().__init__()
        self.index = index
        self.heads, self.kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, spec.head_dim
        self.output_gate = spec.output_gate
        width = 2 if spec.output_gate else 1
        self.q_proj = nn.Linear(hidden, width * self.heads * self.head_dim, bias=spec.qkv_bias)
        self.k_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=spec.qkv_bias)
        self.v_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=spec.qkv_bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, hidden, bias=spec.out_bias)
        self.scale = spec.scale if spec.scale is not None else self.head_dim**-0.5
        self.sliding_window = spec.sliding_window
        """Each query sees the last ``sliding_window`` positions, its own included (``HybridLM._context``
        masks them; the decode step reads only those keys); None: every earlier position."""
        self.key_multiplier = 1.0
        """Falcon-H1's µP ``key_multiplier`` (the keys times it before RoPE), set by ``patternc_torch.parallel``."""
        self.q_norm: RMSNorm | None = None
        self.k_norm: RMSNorm | None = None
        self.qk_norm_whole = spec.qk_norm_whole
        if spec.qk_norm:
            eps, offset = (norm.eps, norm.unit_offset) if norm is not None else (1e-6, False)
            # per head (Qwen), or over the whole projection (OLMo: one weight of heads * head_dim)
            q_size, k_size = (self.heads, self.kv_heads) if spec.qk_norm_whole else (1, 1)
            self.q_norm = RMSNorm(q_size * self.head_dim, eps, offset, exact=spec.qk_norm_whole)
            self.k_norm = RMSNorm(k_size * self.head_dim, eps, offset, exact=spec.qk_norm_whole)

    def queries(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (..., hidden) -> (queries (..., heads, head_dim) normed, output gate (..., heads * head_dim) or None)."""
        lead = x.shape[:-1]
        gate = None
        if self.output_gate:
            q, gate = self.q_proj(x).view(*lead, self.heads, 2 * self.head_dim).chunk(2, dim=-1)
            gate = gate.reshape(*lead, self.heads * self.head_dim)
        elif self.qk_norm_whole and self.q_norm is not None:  # OLMo: the norm before the split into heads
            return self.q_norm(self.q_proj(x)).view(*lead, self.heads, self.head_dim), None
        else:
            q = self.q_proj(x).view(*lead, self.heads, self.head_dim)
        return (q if self.q_norm is None else self.q_norm(q)), gate

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., hidden) -> keys (..., kv_heads, head_dim), normed."""
        if self.qk_norm_whole and self.k_norm is not None:  # OLMo: the norm before the split into heads
            return self.k_norm(self.k_proj(x)).view(*x.shape[:-1], self.kv_heads, self.head_dim)
        k = self.k_proj(x).view(*x.shape[:-1], self.kv_heads, self.head_dim)
        if self.key_multiplier != 1.0:
            k = k * self.key_multiplier
        return k if self.k_norm is None else self.k_norm(k)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        b, t, _ = x.shape
        q, gate = self.queries(x)
        q = q.transpose(1, 2)
        k = self.keys(x).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if ctx.rope is not None:
            cos, sin = ctx.rope
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        if ctx.state is not None:
            k_buf, v_buf = ctx.state.kv_buffers(self.index, self.kv_heads, self.head_dim, k.dtype, k.device)
            end = ctx.start + t
            k_buf[:, :, ctx.start : end] = k
            v_buf[:, :, ctx.start : end] = v
            k, v = k_buf[:, :, :end], v_buf[:, :, :end]
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=ctx.attn_mask,
            is_causal=ctx.is_causal,
            scale=self.scale,
            enable_gqa=self.kv_heads != self.heads,
        )
        out = out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim)
        if gate is not None:
            out = out * torch.sigmoid(gate)
        return self.o_proj(out)


# -- Mamba2 --------------------------------------------------------------------------------------


class Mamba2Mixer(nn.Module):
    """in_proj -> causal depthwise conv -> SSD scan -> gated RMSNorm -> out_proj.

    Falcon-H1's flavours: no norm (``gated_norm`` off: ``y * silu(z)``), the norm before the gate,
    an ``out_proj`` bias of its own; in a parallel layer its µP ``mup_vector`` (``in_scales``, one
    factor per section z, x, B, C, dt of ``in_proj``'s output, set by ``patternc_torch.parallel``).
    """

    def __init__(self, spec: MambaSpec, hidden: int, eps: float, index: int) -> None:
        super().__init__()
        if spec.activation not in ACTIVATIONS:
            raise ValueError(f"activation {spec.activation!r}")
        self.index = index
        self.heads, self.head_dim, self.state_size = spec.num_heads, spec.head_dim, spec.state_size
        self.groups, self.chunk_size, self.kernel = spec.n_groups, spec.chunk_size, spec.conv_kernel
        self.inner = spec.inner_size
        self.conv_dim = self.inner + 2 * self.groups * self.state_size
        self.activation = spec.activation
        self.act = ACTIVATIONS[spec.activation]
        self.dt_limit = (float(spec.time_step_limit[0]), float(spec.time_step_limit[1]))
        self.in_proj = nn.Linear(hidden, self.inner + self.conv_dim + self.heads, bias=spec.proj_bias)
        self.conv1d = nn.Conv1d(
            self.conv_dim,
            self.conv_dim,
            spec.conv_kernel,
            groups=self.conv_dim,
            bias=spec.conv_bias,
            padding=spec.conv_kernel - 1,
        )
        self.dt_bias = nn.Parameter(torch.ones(self.heads))
        self.A_log = nn.Parameter(torch.zeros(self.heads))
        self.D = nn.Parameter(torch.ones(self.heads))
        self.norm: GatedRMSNorm | None = (
            GatedRMSNorm(self.inner, spec.norm_group_size, eps, spec.norm_before_gate) if spec.gated_norm else None
        )
        self.out_proj = nn.Linear(self.inner, hidden, bias=spec.out_bias)
        self.in_scales: tuple[float, float, float, float, float] | None = None
        """Factors of ``in_proj``'s output sections (z, x, B, C, dt); None: all 1."""

    def scale_projection(self, projected: torch.Tensor) -> torch.Tensor:
        """``in_proj``'s output times the µP vector (``FalconH1Mixer.mup_vector``), when there is one."""
        if self.in_scales is None:
            return projected
        sizes = (self.inner, self.inner, self.groups * self.state_size, self.groups * self.state_size, self.heads)
        return projected * _sections(sizes, self.in_scales, projected.device)

    def gate(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The scan output gated by ``z``: the gated RMSNorm, or ``y * silu(z)`` without a norm."""
        return y * F.silu(z) if self.norm is None else self.norm(y, z)

    def _dt(self, dt: torch.Tensor) -> torch.Tensor:
        dt = F.softplus(dt.to(torch.float32) + self.dt_bias.to(torch.float32))
        low, high = self.dt_limit
        if high != math.inf:
            dt = dt.clamp_(min=low, max=high)
        elif low > 0.0:
            dt = dt.clamp_(min=low)
        return dt

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        b, t, _ = x.shape
        A = -torch.exp(self.A_log.float())
        mask = ctx.token_mask
        state = ctx.state
        if state is not None and t == 1 and mask is None and self.index in state.ssm:
            return self.step(x.view(b, -1), state.conv[self.index], state.ssm[self.index], A).view(b, 1, -1)
        z, xbc, dt = self.scale_projection(self.in_proj(x)).split([self.inner, self.conv_dim, self.heads], dim=-1)
        y = self._prefill(xbc, dt, A, mask, state, b, t)
        out = self.gate(y, z)
        return self.out_proj(out.to(x.dtype))

    def step(self, x: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """One position of every row, x (b, hidden) -> (b, hidden); updates both states in place."""
        if (kernels := ssd.mamba2_kernels(x)) is not None:
            return self.fused_step(kernels, x, conv_state, ssm_state, A)
        b = x.shape[0]
        h, p, g, n = self.heads, self.head_dim, self.groups, self.state_size
        z, xbc, dt = self.scale_projection(F.linear(x, self.in_proj.weight, self.in_proj.bias)).split(
            [self.inner, self.conv_dim, self.heads], dim=-1
        )
        xbc = self.act(causal_conv_step(xbc, self.conv1d.weight, self.conv1d.bias, conv_state))
        xs, B, C = xbc.split([self.inner, g * n, g * n], dim=-1)
        if B.dtype != torch.float32:
            B, C = B.float(), C.float()
        y = ssd_step(ssm_state, xs.view(b, h, p), self._dt(dt), A, B.view(b, g, n), C.view(b, g, n), self.D)
        out = self.gate(y.view(b, self.inner), z)
        return F.linear(out.to(x.dtype), self.out_proj.weight, self.out_proj.bias)

    def fused_step(
        self,
        kernels: dict[str, Any],
        x: torch.Tensor,
        conv_state: torch.Tensor,
        ssm_state: torch.Tensor,
        A: torch.Tensor,
    ) -> torch.Tensor:
        """``step`` through ``causal_conv1d_update`` and mamba_ssm's ``selective_state_update``, with the
        arguments ``NemotronHMamba2Mixer`` passes (the heads layout: x (b, h, p), dt before its bias
        expanded over ``head_dim``, A (h, p, n), B, C (b, g, n), D and ``dt_bias`` (h, p), softplus in the
        kernel, no ``z``: the gate stays the module's).  With a ``time_step_limit`` that clamps (the kernel
        has no clamp) dt goes in ready, biased, softplus'ed and clamped here.  A conv of another
        activation or width than the kernel takes stays PyTorch."""
        b = x.shape[0]
        h, p, g, n = self.heads, self.head_dim, self.groups, self.state_size
        z, xbc, dt = self.scale_projection(F.linear(x, self.in_proj.weight, self.in_proj.bias)).split(
            [self.inner, self.conv_dim, self.heads], dim=-1
        )
        if self.activation in ("silu", "swish") and 2 <= self.kernel <= 4:
            weight = self.conv1d.weight.view(self.conv_dim, self.kernel)
            xbc = kernels["causal_conv1d_update"](xbc, conv_state, weight, self.conv1d.bias, activation="silu")
        else:
            xbc = self.act(causal_conv_step(xbc, self.conv1d.weight, self.conv1d.bias, conv_state))
        xs, B, C = xbc.split([self.inner, g * n, g * n], dim=-1)
        low, high = self.dt_limit
        clamped = high != math.inf or low > 0.0
        y = kernels["selective_state_update"](
            ssm_state,
            xs.reshape(b, h, p),
            (self._dt(dt) if clamped else dt).view(b, h, 1).expand(b, h, p),
            A.view(h, 1, 1).expand(h, p, n),
            B.reshape(b, g, n),
            C.reshape(b, g, n),
            self.D.view(h, 1).expand(h, p),
            z=None,
            dt_bias=None if clamped else self.dt_bias.view(h, 1).expand(h, p),
            dt_softplus=not clamped,
        )
        out = self.gate(y.reshape(b, self.inner), z)
        return F.linear(out.to(x.dtype), self.out_proj.weight, self.out_proj.bias)

    def _prefill(
        self,
        xbc: torch.Tensor,
        dt: torch.Tensor,
        A: torch.Tensor,
        mask: torch.Tensor | None,
        state: InferenceState | None,
        b: int,
        t: int,
    ) -> torch.Tensor:
        h, p, g, n = self.heads, self.head_dim, self.groups, self.state_size
        weight = self.conv1d.weight
        conv_state = state.conv.get(self.index) if state is not None else None
        ssm_state = state.ssm.get(self.index) if state is not None else None
        kernels = ssd.mamba2_kernels(xbc) if mask is None else None
        if mask is not None:
            xbc = xbc * mask.unsqueeze(-1).to(xbc.dtype)
        xbc_t = xbc.transpose(1, 2)
        if kernels is not None and conv_state is None and self.activation in ("silu", "swish"):
            conv_out = kernels["causal_conv1d_fn"](
                xbc_t.contiguous(), weight.view(self.conv_dim, self.kernel), self.conv1d.bias, activation="silu"
            )
            tail = (
                F.pad(xbc_t, (self.kernel - 1, 0))[:, :, -(self.kernel - 1) :] if self.kernel > 1 else xbc_t[:, :, :0]
            )
        else:
            conv_raw, tail = causal_conv(xbc_t, weight, self.conv1d.bias, conv_state)
            conv_out = self.act(conv_raw)
        xbc = conv_out.transpose(1, 2)
        if mask is not None:
            xbc = xbc * mask.unsqueeze(-1).to(xbc.dtype)
        xs, B, C = xbc.split([self.inner, g * n, g * n], dim=-1)
        xs4 = xs.reshape(b, t, h, p)
        if kernels is not None:
            y, final = kernels["mamba_chunk_scan_combined"](
                xs4.contiguous(),
                dt.contiguous(),
                A,
                B.reshape(b, t, g, n).contiguous(),
                C.reshape(b, t, g, n).contiguous(),
                self.chunk_size,
                D=self.D.float(),
                z=None,
                dt_bias=self.dt_bias.float(),
                initial_states=ssm_state,
                dt_softplus=True,
                dt_limit=self.dt_limit,
                return_final_states=True,
            )
            y = y.float()
        else:
            dt_ready = self._dt(dt)
            if mask is not None:
                dt_ready = dt_ready * mask.unsqueeze(-1)
            y, final = ssd_chunk_scan(
                xs4,
                dt_ready,
                A,
                B.reshape(b, t, g, n),
                C.reshape(b, t, g, n),
                min(self.chunk_size, SCAN_CHUNK),
                ssm_state,
                D=self.D,
            )
        if state is not None:
            if self.index in state.conv:
                state.conv[self.index].copy_(tail)
                state.ssm[self.index].copy_(final)
            else:
                state.conv[self.index] = tail.contiguous().clone()
                state.ssm[self.index] = final.float().contiguous().clone()
        return y.reshape(b, t, self.inner)


# -- MLP and MoE ---------------------------------------------------------------------------------


class MLP(nn.Module):
    """``down(act(up(x)))`` or, gated, ``down(act(gate(x)) * up(x))``; Falcon-H1's µP ``multipliers``
    scale the gate projection's output and the MLP's output (``down(act(gate(x) * m0) * up(x)) * m1``)."""

    def __init__(
        self,
        hidden: int,
        intermediate: int,
        activation: str,
        gated: bool,
        bias: bool,
        multipliers: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        self.gated = gated
        self.multipliers = multipliers
        if gated:
            self.gate_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.up_proj = nn.Linear(hidden, intermediate, bias=bias)
        self.down_proj = nn.Linear(intermediate, hidden, bias=bias)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        if self.gated and self.multipliers != (1.0, 1.0):  # FalconH1MLP's order of operations
            gate, out = self.multipliers
            return self.down_proj(self.up_proj(x) * self.act(self.gate_proj(x) * gate)) * out
        if self.gated:
            return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(self.act(self.up_proj(x)))


class Router(nn.Module):
    """Sigmoid (grouped top-k, score-correction bias) or softmax top-k routing, in float32."""

    def __init__(self, spec: MoeSpec, hidden: int) -> None:
        super().__init__()
        self.spec = spec
        self.weight = nn.Parameter(torch.zeros(spec.num_experts, hidden))
        if spec.score_correction_bias:
            self.register_buffer("e_score_correction_bias", torch.zeros(spec.num_experts))
        else:
            self.e_score_correction_bias = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights, indices), each (tokens, top_k)."""
        spec = self.spec
        logits = F.linear(x.float(), self.weight.float())
        if spec.router == "sigmoid":
            scores = logits.sigmoid()
            choice = scores if self.e_score_correction_bias is None else scores + self.e_score_correction_bias.float()
            if spec.n_group > 1:
                per_group = spec.num_experts // spec.n_group
                grouped = choice.view(-1, spec.n_group, per_group)
                group_scores = grouped.topk(min(2, per_group), dim=-1)[0].sum(dim=-1)
                keep = torch.topk(group_scores, k=spec.topk_group, dim=-1, sorted=False)[1]
                group_mask = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, keep, True)
                choice = choice.masked_fill(~group_mask.repeat_interleave(per_group, dim=1), float("-inf"))
            indices = torch.topk(choice, k=spec.top_k, dim=-1, sorted=False)[1]
            weights = scores.gather(1, indices)
            if spec.norm_topk_prob:
                weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        else:
            top_logits, indices = logits.topk(spec.top_k, dim=-1)
            if spec.norm_topk_prob:
                weights = torch.softmax(top_logits, dim=-1)
            else:
                weights = torch.softmax(logits, dim=-1).gather(1, indices)
        return weights * spec.routed_scaling_factor, indices


class Experts(nn.Module):
    """Routed experts as stacked (experts, out, in) weights, tokens grouped per expert."""

    def __init__(self, spec: MoeSpec, size_in: int) -> None:
        super().__init__()
        e, i = spec.num_experts, spec.intermediate_size
        self.gated = spec.expert_gated
        self.intermediate = i
        if self.gated:
            self.gate_up_proj = nn.Parameter(torch.zeros(e, 2 * i, size_in))
        else:
            self.up_proj = nn.Parameter(torch.zeros(e, i, size_in))
        self.down_proj = nn.Parameter(torch.zeros(e, size_in, i))
        self.act = ACTIVATIONS[spec.expert_activation]

    def _up(self) -> torch.Tensor:
        return self.gate_up_proj if self.gated else self.up_proj

    def _hidden(self, h: torch.Tensor) -> torch.Tensor:
        if self.gated:
            gate, up = h.split(self.intermediate, dim=-1)
            return self.act(gate) * up
        return self.act(h)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        tokens, top_k = indices.shape
        flat = indices.reshape(-1)
        up = self._up()
        if tokens * top_k <= 2 * up.shape[0] and tokens <= 8:
            # few tokens (decoding): one product per chosen expert on its weights in place (gathering
            # the chosen experts' weights first would copy them: twice the memory traffic)
            outs = [
                F.linear(self._hidden(F.linear(x[j // top_k], up[e])), self.down_proj[e])
                for j, e in enumerate(flat.tolist())
            ]
            out = torch.stack(outs) * weights.reshape(-1, 1).to(x.dtype)
            return out.view(tokens, top_k, -1).sum(dim=1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=up.shape[0]).tolist()
        token_of = order // top_k
        xs = x[token_of]
        outs = []
        start = 0
        for expert, count in enumerate(counts):
            if count == 0:
                continue
            chunk = xs[start : start + count]
            h = self._hidden(F.linear(chunk, up[expert]))
            outs.append(F.linear(h, self.down_proj[expert]))
            start += count
        out = torch.cat(outs) * weights.reshape(-1)[order].unsqueeze(-1).to(x.dtype)
        result = torch.zeros_like(x)
        result.index_add_(0, token_of, out)
        return result


class MoE(nn.Module):
    """Router + routed experts (optionally in a latent space) + shared experts."""

    def __init__(self, spec: MoeSpec, hidden: int) -> None:
        super().__init__()
        self.gate = Router(spec, hidden)
        size_in = spec.latent_size or hidden
        self.experts = Experts(spec, size_in)
        self.shared_experts = (
            MLP(hidden, spec.shared_intermediate_size, spec.expert_activation, spec.shared_gated, spec.bias)
            if spec.shared_experts > 0 and spec.shared_intermediate_size > 0
            else None
        )
        self.shared_expert_gate: nn.Linear | None
        self.fc1_latent_proj: nn.Linear | None
        self.fc2_latent_proj: nn.Linear | None
        if spec.shared_expert_gate:
            self.shared_expert_gate = nn.Linear(hidden, 1, bias=False)
        else:
            self.shared_expert_gate = None
        if spec.latent_size is not None:
            self.fc1_latent_proj = nn.Linear(hidden, spec.latent_size, bias=spec.bias)
            self.fc2_latent_proj = nn.Linear(spec.latent_size, hidden, bias=spec.bias)
        else:
            self.fc1_latent_proj = None
            self.fc2_latent_proj = None

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        weights, indices = self.gate(flat)
        routed = flat if self.fc1_latent_proj is None else self.fc1_latent_proj(flat)
        routed = self.experts(routed, weights, indices)
        if self.fc2_latent_proj is not None:
            routed = self.fc2_latent_proj(routed)
        out = routed.view(shape)
        if self.shared_experts is not None:
            shared = self.shared_experts(x)
            if self.shared_expert_gate is not None:
                shared = torch.sigmoid(self.shared_expert_gate(x)) * shared
            out = out + shared
        return out


class Block(nn.Module):
    """One layer of the stack: ``x + mixer(norm(x)) * residual_multiplier``."""

    def __init__(
        self,
        symbol: str,
        mixer: nn.Module,
        hidden: int,
        eps: float,
        residual_multiplier: float,
        unit_offset: bool = False,
    ) -> None:
        super().__init__()
        self.symbol = symbol
        self.symbols: tuple[str, ...] = (symbol,)
        """Every mixer's symbol (a parallel layer has several: ``patternc_torch.parallel``)."""
        self.norm = RMSNorm(hidden, eps, unit_offset)
        self.mixer = mixer
        self.residual_multiplier = residual_multiplier

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        out = self.mixer(self.norm(x), ctx)
        if self.residual_multiplier != 1.0:
            out = out * self.residual_multiplier
        return x + out
