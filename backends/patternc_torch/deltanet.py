"""Gated DeltaNet (``G``, kind ``gated_deltanet``): Qwen3-Next's and Qwen3.5's linear-attention mixer.

The math is transformers' torch fallback (``modeling_qwen3_next.py``): the input (zeroed at padded
positions) is projected to q, k, v, the output gate z, and per value head b and a; q, k, v go through
one causal depthwise convolution (no bias, SiLU); q and k are L2-normalised and q scaled by
``head_k_dim ** -0.5``; each value head keeps a ``head_k_dim x head_v_dim`` state

    S_t = exp(g_t) S_(t-1) + k_t (beta_t (v_t - S_(t-1)^T-decayed k_t))^T,   o_t = S_t^T q_t

with ``beta = sigmoid(b)`` and ``g = -exp(A_log) * softplus(a + dt_bias)``; the output is RMSNorm'd
per head (norm before the gate), times ``silu(z)``, then ``out_proj``.  Prefill runs the chunked
form (``chunk_gated_delta_rule``, transformers' ``torch_chunk_gated_delta_rule`` with its chunk of
64: a triangular solve per chunk, one sequential pass over chunks), decoding the recurrent step.
Its inference state is constant: the convolution's last ``kernel - 1`` inputs (``state.conv``) and
the float32 recurrent state (``state.ssm``), keyed by the layer's index like a Mamba layer's.

Two weight layouts: Qwen3-Next's fused, head-grouped ``in_proj_qkvz`` / ``in_proj_ba`` (per key head:
its q, its k, then the v and z of the value heads it serves; b and a likewise), and Qwen3.5's
``split_projections`` (``in_proj_qkv``, ``in_proj_z``, ``in_proj_b``, ``in_proj_a``, stream-major).
OLMo Hybrid's (``OlmoHybridGatedDeltaNet``): ``separate_projections`` (``q_proj``, ``k_proj``, ``v_proj``
concatenated for the convolution, the gate's ``g_proj``, ``a_proj``, ``b_proj``; its ``o_proj`` and
``o_norm`` load as ``out_proj`` and ``norm``), ``allow_neg_eigval`` (``beta = 2 sigmoid(b)``, so the
transition ``I - beta k k^T`` may have negative eigenvalues) and the gated norm's own epsilon.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from patternc.model import GatedDeltaNetSpec, ModelSpec
from patternc_torch import kernels
from patternc_torch.decode import Rope, StepFn, dense
from patternc_torch.kinds import TorchKind
from patternc_torch.layers import Context, _f32
from patternc_torch.ssd import causal_conv
from patternc_torch.state import InferenceState

CHUNK = 64
"""transformers' ``chunk_size`` default for the chunked rule (the result does not depend on it beyond rounding)."""


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / sqrt(sum(x**2) + eps)`` over the last dim, as transformers' (and FLA's) ``l2norm``."""
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def chunk_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None,
    chunk_size: int = CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gated delta rule over a sequence, chunked: (output (b, t, hv, dv), final state (b, hv, dk, dv)).

    ``q``, ``k`` (b, t, hv, dk) already L2-normalised, ``q`` scaled, heads already repeated to the
    value heads; ``v`` (b, t, hv, dv); ``g``, ``beta`` (b, t, hv); all float32.  Within a chunk the
    delta-rule updates are condensed by the UT transform (a unit lower-triangular solve); across
    chunks the state is carried sequentially.  transformers' ``torch_chunk_gated_delta_rule``, step
    for step, so that the rounding is the same.
    """
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    q, k, v, beta, g = (x.transpose(1, 2).contiguous() for x in (q, k, v, beta, g))
    pad = (chunk_size - t % chunk_size) % chunk_size
    q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    beta, g = (F.pad(x, (0, pad)) for x in (beta, g))
    n = (t + pad) // chunk_size
    v_beta = v * beta.unsqueeze(-1)
    k_beta = k * beta.unsqueeze(-1)
    q, k, k_beta, v_beta = (x.reshape(b, h, n, chunk_size, x.shape[-1]) for x in (q, k, k_beta, v_beta))
    g = g.reshape(b, h, n, chunk_size)
    upper = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).triu(1)
    cum = g.cumsum(dim=3)
    pairwise = (cum.unsqueeze(4) - cum.unsqueeze(3)).masked_fill(upper, float("-inf")).exp()
    ut = (k_beta @ k.transpose(-1, -2)) * pairwise
    intra = (q @ k.transpose(-1, -2)) * pairwise
    decayed_k_beta = k_beta * cum.exp().unsqueeze(-1)
    new_values = torch.linalg.solve_triangular(ut, v_beta, upper=False, unitriangular=True)
    k_cumdecay = torch.linalg.solve_triangular(ut, decayed_k_beta, upper=False, unitriangular=True)
    S = (
        torch.zeros(b, h, dk, dv, dtype=new_values.dtype, device=new_values.device)
        if initial_state is None
        else initial_state.to(new_values)
    )
    out = torch.zeros_like(new_values)
    q = q * cum.exp().unsqueeze(-1)
    k = k * (cum[..., -1:] - cum).exp().unsqueeze(-1)
    chunk_decay = cum[..., -1].exp()[..., None, None]
    for i in range(n):
        v_new = new_values[:, :, i] - k_cumdecay[:, :, i] @ S
        out[:, :, i] = q[:, :, i] @ S + intra[:, :, i] @ v_new
        S = S * chunk_decay[:, :, i] + k[:, :, i].transpose(-1, -2) @ v_new
    out = out.reshape(b, h, -1, dv)[:, :, :t]
    return out.transpose(1, 2).contiguous(), S


def recurrent_gated_delta_step(
    S: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """One position: ``S`` (b, hv, dk, dv) float32 updated in place; q, k (b, hv, dk) normalised and
    scaled, v (b, hv, dv), g, beta (b, hv); returns the output (b, hv, dv).  transformers'
    ``torch_recurrent_gated_delta_rule`` for one token, with the two reductions over ``dk`` as
    batched products (the same sums, in another order)."""
    b, h, dk, dv = S.shape
    S.mul_(g.exp().view(b, h, 1, 1))
    flat = S.view(b * h, dk, dv)
    kv_mem = torch.bmm(k.reshape(b * h, 1, dk), flat).view(b, h, dv)
    delta = (v - kv_mem).mul_(beta.unsqueeze(-1))
    S.add_(k.unsqueeze(-1) * delta.unsqueeze(-2))
    return torch.bmm(q.reshape(b * h, 1, dk), flat).view(b, h, dv)


class GatedDeltaNet(nn.Module):
    """in projections -> causal conv (SiLU) -> gated delta rule -> per-head RMSNorm * silu(z) -> out_proj."""

    def __init__(self, spec: GatedDeltaNetSpec, hidden: int, eps: float, index: int) -> None:
        super().__init__()
        self.index = index
        self.k_heads, self.v_heads = spec.num_k_heads, spec.num_v_heads
        self.dk, self.dv, self.kernel = spec.head_k_dim, spec.head_v_dim, spec.conv_kernel
        if self.v_heads % self.k_heads:
            raise ValueError(f"{self.v_heads} value heads are not a multiple of {self.k_heads} key heads")
        self.key_dim, self.value_dim = self.k_heads * self.dk, self.v_heads * self.dv
        self.conv_dim = 2 * self.key_dim + self.value_dim
        self.split = spec.split_projections
        self.separate = spec.separate_projections
        self.neg_eigval = spec.allow_neg_eigval
        self.q_proj: nn.Linear | None = None
        self.k_proj: nn.Linear | None = None
        self.v_proj: nn.Linear | None = None
        self.g_proj: nn.Linear | None = None
        self.a_proj: nn.Linear | None = None
        self.b_proj: nn.Linear | None = None
        self.in_proj_qkvz: nn.Linear | None = None
        self.in_proj_ba: nn.Linear | None = None
        self.in_proj_qkv: nn.Linear | None = None
        self.in_proj_z: nn.Linear | None = None
        self.in_proj_b: nn.Linear | None = None
        self.in_proj_a: nn.Linear | None = None
        if self.separate:  # OLMo Hybrid: one projection per stream
            self.q_proj = nn.Linear(hidden, self.key_dim, bias=False)
            self.k_proj = nn.Linear(hidden, self.key_dim, bias=False)
            self.v_proj = nn.Linear(hidden, self.value_dim, bias=False)
            self.a_proj = nn.Linear(hidden, self.v_heads, bias=False)
            self.b_proj = nn.Linear(hidden, self.v_heads, bias=False)
            self.g_proj = nn.Linear(hidden, self.value_dim, bias=False)
        elif self.split:
            self.in_proj_qkv = nn.Linear(hidden, self.conv_dim, bias=False)
            self.in_proj_z = nn.Linear(hidden, self.value_dim, bias=False)
            self.in_proj_b = nn.Linear(hidden, self.v_heads, bias=False)
            self.in_proj_a = nn.Linear(hidden, self.v_heads, bias=False)
        else:
            self.in_proj_qkvz = nn.Linear(hidden, 2 * self.key_dim + 2 * self.value_dim, bias=False)
            self.in_proj_ba = nn.Linear(hidden, 2 * self.v_heads, bias=False)
        self.conv1d = nn.Conv1d(
            self.conv_dim, self.conv_dim, self.kernel, groups=self.conv_dim, bias=False, padding=self.kernel - 1
        )
        self.dt_bias = nn.Parameter(torch.ones(self.v_heads))
        self.A_log = nn.Parameter(torch.zeros(self.v_heads))
        self.norm = HeadGatedRMSNorm(self.dv, spec.norm_eps if spec.norm_eps is not None else eps)
        self.out_proj = nn.Linear(self.value_dim, hidden, bias=False)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (..., hidden) -> (qkv (..., conv_dim) stream-major, z (..., hv, dv), b (..., hv), a (..., hv))."""
        lead = x.shape[:-1]
        if self.separate:  # transformers' order: three products concatenated, as OlmoHybridGatedDeltaNet
            assert self.q_proj and self.k_proj and self.v_proj and self.g_proj and self.a_proj and self.b_proj
            qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)
            z = self.g_proj(x).view(*lead, self.v_heads, self.dv)
            return qkv, z, self.b_proj(x), self.a_proj(x)
        if self.split:
            assert self.in_proj_qkv and self.in_proj_z and self.in_proj_b and self.in_proj_a
            z = self.in_proj_z(x).view(*lead, self.v_heads, self.dv)
            return self.in_proj_qkv(x), z, self.in_proj_b(x), self.in_proj_a(x)
        assert self.in_proj_qkvz is not None and self.in_proj_ba is not None
        r = self.v_heads // self.k_heads
        qkvz = self.in_proj_qkvz(x).view(*lead, self.k_heads, 2 * self.dk + 2 * r * self.dv)
        q, k, v, z = qkvz.split([self.dk, self.dk, r * self.dv, r * self.dv], dim=-1)
        ba = self.in_proj_ba(x).view(*lead, self.k_heads, 2 * r)
        b, a = ba.split([r, r], dim=-1)
        qkv = torch.cat([q.reshape(*lead, -1), k.reshape(*lead, -1), v.reshape(*lead, -1)], dim=-1)
        return (
            qkv,
            z.reshape(*lead, self.v_heads, self.dv),
            b.reshape(*lead, self.v_heads),
            a.reshape(*lead, self.v_heads),
        )

    def heads(
        self, qkv: torch.Tensor, b: torch.Tensor, a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Convolved ``qkv`` (..., conv_dim) -> q, k (..., hv, dk) normalised (q scaled), v (..., hv, dv),
        g, beta (..., hv), all float32."""
        lead = qkv.shape[:-1]
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.value_dim], dim=-1)
        q = _f32(q).reshape(*lead, self.k_heads, self.dk)
        k = _f32(k).reshape(*lead, self.k_heads, self.dk)
        r = self.v_heads // self.k_heads
        if r > 1:
            q, k = q.repeat_interleave(r, dim=-2), k.repeat_interleave(r, dim=-2)
        q = l2norm(q) * self.dk**-0.5
        k = l2norm(k)
        beta = _f32(b.sigmoid())
        if self.neg_eigval:  # OLMo Hybrid: beta in (0, 2)
            beta = beta * 2.0
        g = -self.A_log.float().exp() * F.softplus(a.float() + self.dt_bias)
        return q, k, _f32(v).reshape(*lead, self.v_heads, self.dv), g, beta

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        if kernels.fla(x) is not None or kernels.causal_conv1d(x) is not None:
            return fused_forward(self, x, ctx)
        bsz, t, _ = x.shape
        if ctx.token_mask is not None:
            x = x * ctx.token_mask.unsqueeze(-1).to(x.dtype)
        state = ctx.state
        conv_state = state.conv.get(self.index) if state is not None else None
        S = state.ssm.get(self.index) if state is not None else None
        qkv, z, b, a = self.project(x)
        conv_raw, tail = causal_conv(qkv.transpose(1, 2), self.conv1d.weight, None, conv_state)
        qkv = F.silu(conv_raw).transpose(1, 2)
        q, k, v, g, beta = self.heads(qkv, b, a)
        if S is not None and t == 1:
            S = S.clone()
            y = recurrent_gated_delta_step(S, q[:, 0], k[:, 0], v[:, 0], g[:, 0], beta[:, 0]).unsqueeze(1)
        else:
            y, S = chunk_gated_delta_rule(q, k, v, g, beta, S)
        if state is not None:
            state.conv[self.index] = tail.contiguous().clone()
            state.ssm[self.index] = S.float().contiguous()
        out = self.norm(y.to(x.dtype), z).reshape(bsz, t, self.value_dim)
        return self.out_proj(out)


class HeadGatedRMSNorm(nn.Module):
    """Qwen's ``RMSNormGated`` over each head: ``weight * rmsnorm(y) * silu(z)`` (norm before the gate,
    unlike Mamba2's ``GatedRMSNorm``), the weight applied in the input dtype as transformers does."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = y.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        out = self.weight * h.to(y.dtype)
        return (out * F.silu(z.float())).to(y.dtype)


def deltanet_step(mixer: GatedDeltaNet) -> StepFn:
    """``GatedDeltaNet.forward`` for one token per row after an unpadded history: the convolution's
    window and the recurrent state updated in place."""
    index, kernel, conv_dim = mixer.index, mixer.kernel, mixer.conv_dim
    conv_w = mixer.conv1d.weight.view(conv_dim, kernel)
    out_proj = dense(mixer.out_proj)
    value_dim = mixer.value_dim

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        if kernels.fla(x) is not None or kernels.causal_conv1d(x) is not None:
            return fused_step(mixer, x, state)
        bsz = x.shape[0]
        qkv, z, b, a = mixer.project(x)
        conv_state = state.conv[index]
        window = torch.cat([conv_state, qkv.unsqueeze(-1)], dim=-1)  # (b, conv_dim, kernel)
        if kernel > 1:
            conv_state.copy_(window[:, :, 1:])
        qkv = F.silu(torch.linalg.vecdot(window, conv_w))
        q, k, v, g, beta = mixer.heads(qkv, b, a)
        y = recurrent_gated_delta_step(state.ssm[index], q, k, v, g, beta)
        out = mixer.norm(y.to(x.dtype), z).reshape(bsz, value_dim)
        return out_proj(out)

    return step


def fla_rule(
    mixer: GatedDeltaNet,
    rule: kernels.Fla,
    qkv: torch.Tensor,
    b: torch.Tensor,
    a: torch.Tensor,
    S: torch.Tensor | None,
    recurrent: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gated delta rule through fla, called as ``Qwen3NextGatedDeltaNet`` / ``OlmoHybridGatedDeltaNet``
    call it: convolved ``qkv`` (b, t, conv_dim) split into q, k (b, t, key heads, dk) not normalised
    (``use_qk_l2norm_in_kernel``, fla's default scale) nor repeated to the value heads, v (b, t, hv, dv);
    ``g`` float32 and ``beta`` (times 2 with negative eigenvalues) in the model dtype, (b, t, hv); the
    state (b, hv, dk, dv).  ``recurrent``: one token after a state (``fused_recurrent_gated_delta_rule``),
    else ``chunk_gated_delta_rule``.  Returns (y (b, t, hv, dv), the final state)."""
    lead = qkv.shape[:-1]
    q, k, v = qkv.split([mixer.key_dim, mixer.key_dim, mixer.value_dim], dim=-1)
    q = q.reshape(*lead, mixer.k_heads, mixer.dk)
    k = k.reshape(*lead, mixer.k_heads, mixer.dk)
    v = v.reshape(*lead, mixer.v_heads, mixer.dv)
    beta = b.sigmoid()
    if mixer.neg_eigval:
        beta = beta * 2.0
    g = -mixer.A_log.float().exp() * F.softplus(a.float() + mixer.dt_bias)
    kernel = rule.fused_recurrent_gated_delta_rule if recurrent else rule.chunk_gated_delta_rule
    y, final = kernel(q, k, v, g=g, beta=beta, initial_state=S, output_final_state=True, use_qk_l2norm_in_kernel=True)
    return y, final


def fused_forward(mixer: GatedDeltaNet, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    """``GatedDeltaNet.forward`` where a kernel imports (``patternc_torch.kernels``): the convolution
    through ``causal_conv1d_fn`` (``kernels.conv_prefill``), the rule through fla (``fla_rule``), each on
    the PyTorch path when its own package is missing."""
    bsz, t, _ = x.shape
    if ctx.token_mask is not None:
        x = x * ctx.token_mask.unsqueeze(-1).to(x.dtype)
    state = ctx.state
    conv_state = state.conv.get(mixer.index) if state is not None else None
    S = state.ssm.get(mixer.index) if state is not None else None
    qkv, z, b, a = mixer.project(x)
    conv, tail = kernels.conv_prefill(qkv.transpose(1, 2), mixer.conv1d.weight, None, conv_state, "silu")
    qkv = conv.transpose(1, 2)
    rule = kernels.fla(x)
    if rule is not None:
        y, S = fla_rule(mixer, rule, qkv, b, a, S, recurrent=S is not None and t == 1)
    else:
        q, k, v, g, beta = mixer.heads(qkv, b, a)
        if S is not None and t == 1:
            S = S.clone()
            y = recurrent_gated_delta_step(S, q[:, 0], k[:, 0], v[:, 0], g[:, 0], beta[:, 0]).unsqueeze(1)
        else:
            y, S = chunk_gated_delta_rule(q, k, v, g, beta, S)
    if state is not None:
        state.conv[mixer.index] = tail.contiguous().clone()
        state.ssm[mixer.index] = S.float().contiguous()
    out = mixer.norm(y.to(x.dtype), z).reshape(bsz, t, mixer.value_dim)
    return mixer.out_proj(out)


def fused_step(mixer: GatedDeltaNet, x: torch.Tensor, state: InferenceState) -> torch.Tensor:
    """``deltanet_step``'s step where a kernel imports: ``causal_conv1d_update`` on the window
    (``kernels.conv_step``), ``fused_recurrent_gated_delta_rule`` on the state, both in place."""
    bsz = x.shape[0]
    qkv, z, b, a = mixer.project(x)
    qkv = kernels.conv_step(qkv, mixer.conv1d.weight, None, state.conv[mixer.index], "silu")
    S = state.ssm[mixer.index]
    rule = kernels.fla(x)
    if rule is not None:
        y, final = fla_rule(mixer, rule, qkv.unsqueeze(1), b.unsqueeze(1), a.unsqueeze(1), S, recurrent=True)
        S.copy_(final)
        y = y[:, 0]
    else:
        q, k, v, g, beta = mixer.heads(qkv, b, a)
        y = recurrent_gated_delta_step(S, q, k, v, g, beta)
    out = mixer.norm(y.to(x.dtype), z).reshape(bsz, mixer.value_dim)
    return mixer.out_proj(out)


def _build(spec: ModelSpec, index: int) -> nn.Module | None:
    g = spec.gated_deltanet
    return None if g is None else GatedDeltaNet(g, spec.hidden_size, spec.norm.eps, index)


def _ready(mixer: nn.Module, state: InferenceState) -> bool:
    return cast(GatedDeltaNet, mixer).index in state.ssm


GATED_DELTANET_KIND = TorchKind(_build, lambda mixer: deltanet_step(cast(GatedDeltaNet, mixer)), _ready)
"""The ``TorchKind`` of ``G`` (``support.SUPPORT`` names it)."""
