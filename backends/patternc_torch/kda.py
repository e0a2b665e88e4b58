"""Kimi delta attention (``K``, kind ``kda``): Kimi Linear's and Ling's (``bailing_hybrid``) linear mixer.

The math is transformers' torch fallback (``modeling_kimi_linear.py``, ``modeling_bailing_hybrid.py``):
the input (zeroed at padded positions) is projected to q, k and v (``q_proj``, ``k_proj``, ``v_proj``,
``num_heads * head_dim`` each), which go through one causal depthwise convolution over the three (no
bias, the model's activation); q and k are L2-normalised (``x / sqrt(sum(x**2) + 1e-6)``, FLA's form)
and q scaled by ``head_dim ** -0.5``.  Each head keeps a ``head_dim x head_dim`` state

    S_t = diag(exp(g_t)) S_(t-1) + k_t (beta_t (v_t - (diag(exp(g_t)) S_(t-1))^T k_t))^T,   o_t = S_t^T q_t

where, unlike gated DeltaNet (one decay per head), the decay ``g_t`` has one value per key channel,
and ``beta = sigmoid(b_proj(x))`` one per head.  The output is RMSNorm'd per head, times
``sigmoid`` of the output gate, then ``o_proj``.  Prefill runs the chunked form
(``chunk_kda``: transformers' ``chunk_kimi_delta_attention``, chunk 64, its row-by-row forward
substitution within a chunk, one sequential pass over chunks), decoding the recurrent step.  The
inference state is constant: the convolution's last ``kernel - 1`` inputs (``state.conv``) and the
float32 recurrent state (``state.ssm``), keyed by the layer's index like a Mamba layer's.

Two gate flavours (``KdaSpec.gate_rank``):

* Kimi Linear's low-rank gates: ``forget_gate.f_a_proj`` / ``f_b_proj`` and ``g_a_proj`` / ``g_b_proj``
  through ``gate_rank`` channels; the forget gate is ``-exp(A_log) * softplus(f + dt_bias)``, with
  Kimi's own softplus (``where(x > 20, x, log(1 + exp(x)))``) and ``A_log`` stored (1, 1, heads, 1);
* Ling's full-rank gates (``gate_rank`` None): ``forget_gate.f_proj`` and ``g_proj``, ``A_log`` stored
  (heads,), ``F.softplus``; with ``gate_lower_bound`` (``kda_safe_gate``) the forget gate is the
  bounded ``lower_bound * sigmoid(exp(A_log) * (f + dt_bias))``.

Parameter names are transformers' (``self_attn.forget_gate.dt_bias`` ...), so its state dicts load
through ``patternc_torch.weights`` by the layer prefix alone.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from patternc.model import KdaSpec, ModelSpec
from patternc_torch import kernels
from patternc_torch.decode import Rope, StepFn, dense
from patternc_torch.kinds import TorchKind
from patternc_torch.layers import ACTIVATIONS, Context, _f32
from patternc_torch.ssd import causal_conv
from patternc_torch.state import InferenceState

CHUNK = 64
"""transformers' ``chunk_size`` default for the chunked rule (the result does not depend on it beyond rounding)."""


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / sqrt(sum(x**2) + eps)`` over the last dim: the KDA files' ``l2norm`` (a division, to match
    FLA's kernel; Qwen's gated DeltaNet multiplies by the ``rsqrt`` instead)."""
    return x / torch.sqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def chunk_kda(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None,
    chunk_size: int = CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The KDA rule over a sequence, chunked: (output (b, t, h, d), final state (b, h, d, d)).

    ``q``, ``k`` (b, t, h, d) already L2-normalised, ``q`` not yet scaled; ``v`` (b, t, h, d); ``g``
    (b, t, h, d) the per-channel log decay; ``beta`` (b, t, h); all float32.  transformers'
    ``chunk_kimi_delta_attention`` step for step (same products, same reductions, same order), so that
    the rounding is the same: the delta rule's solve amplifies an ulp.  The pairwise per-channel decay
    (chunk x chunk x d values per chunk) is built one chunk at a time instead of for the whole sequence
    at once, and once instead of twice (the UT system and the intra-chunk scores both take it): memory
    for one chunk's worth, half the exponentials, and no value changed.
    """
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    q, k, v, beta, g = (x.transpose(1, 2).contiguous() for x in (q, k, v, beta, g))
    scale = 1 / (dk**0.5)
    pad = (chunk_size - t % chunk_size) % chunk_size
    q = F.pad(q, (0, 0, 0, pad)) * scale
    k, v, g = (F.pad(x, (0, 0, 0, pad)) for x in (k, v, g))
    beta = F.pad(beta, (0, pad))
    v_beta = v * beta.unsqueeze(-1)
    k_beta = k * beta.unsqueeze(-1)
    q, k, v, g, k_beta, v_beta = (x.reshape(b, h, -1, chunk_size, x.shape[-1]) for x in (q, k, v, g, k_beta, v_beta))
    n = q.shape[2]
    g = g.cumsum(dim=-2)
    diagonal = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device), diagonal=0)
    strict = torch.triu(torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device), diagonal=1)

    # per chunk, the pairwise per-channel decay exp(g_r - g_c) (rows r >= c; chunk x chunk x d values)
    # feeds both the UT system and the intra-chunk scores: built once, used for both, then dropped
    ut, intra = [], []
    for i in range(n):
        g_i = g[:, :, i]
        decay = (g_i.unsqueeze(-2) - g_i.unsqueeze(-3)).masked_fill(strict[..., None], float("-inf")).exp()
        ut.append(
            -(k_beta[:, :, i].unsqueeze(-2) * k[:, :, i].unsqueeze(-3) * decay).sum(dim=-1).masked_fill(diagonal, 0)
        )
        intra.append((q[:, :, i].unsqueeze(-2) * k[:, :, i].unsqueeze(-3) * decay).sum(dim=-1).masked_fill(strict, 0))
    attn = torch.stack(ut, dim=2)
    for i in range(1, chunk_size):
        row = attn[..., i, :i].clone()
        sub = attn[..., :i, :i].clone()
        attn[..., i, :i] = row + (row.unsqueeze(-1) * sub).sum(-2)
    attn = attn + torch.eye(chunk_size, dtype=attn.dtype, device=attn.device)
    v = attn @ v_beta
    k_cumdecay = attn @ (k_beta * g.exp())
    S = torch.zeros(b, h, dk, dv, dtype=v.dtype, device=v.device) if initial_state is None else initial_state.to(v)
    out = torch.zeros_like(v)
    for i in range(n):
        q_i, k_i, v_i, g_i = q[:, :, i], k[:, :, i], v[:, :, i], g[:, :, i]
        inter = (q_i * g_i.exp()) @ S
        v_new = v_i - k_cumdecay[:, :, i] @ S
        out[:, :, i] = inter + intra[i] @ v_new
        S = S * g_i[:, :, -1].exp().unsqueeze(-1) + (k_i * (g_i[:, :, -1:] - g_i).exp()).transpose(-1, -2) @ v_new
    out = out.reshape(b, h, -1, dv)[:, :, :t]
    return out.transpose(1, 2).contiguous(), S


def recurrent_kda_step(
    S: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """One position: ``S`` (b, h, d, d) float32 updated in place; ``q``, ``k`` (b, h, d) normalised and
    ``q`` scaled, ``v`` (b, h, d), ``g`` (b, h, d) the log decay per key channel, ``beta`` (b, h); returns
    the output (b, h, d).  transformers' ``recurrent_kimi_delta_attention`` for one token, with its two
    reductions over the key channels as batched products (the same sums, in another order)."""
    b, h, dk, dv = S.shape
    S.mul_(g.exp().unsqueeze(-1))
    flat = S.view(b * h, dk, dv)
    kv_mem = torch.bmm(k.reshape(b * h, 1, dk), flat).view(b, h, dv)
    delta = (v - kv_mem).mul_(beta.unsqueeze(-1))
    S.add_(k.unsqueeze(-1) * delta.unsqueeze(-2))
    return torch.bmm(q.reshape(b * h, 1, dk), flat).view(b, h, dv)


class ForgetGate(nn.Module):
    """The per-channel log decay ``g`` (..., heads, head_dim), float32, in either flavour (module docstring)."""

    def __init__(self, spec: KdaSpec, hidden: int) -> None:
        super().__init__()
        self.heads, self.head_dim = spec.num_heads, spec.head_dim
        inner = spec.inner_size
        self.low_rank = spec.gate_rank is not None
        self.lower_bound = spec.gate_lower_bound
        self.f_proj: nn.Linear | None = None
        self.f_a_proj: nn.Linear | None = None
        self.f_b_proj: nn.Linear | None = None
        if spec.gate_rank is not None:
            self.f_a_proj = nn.Linear(hidden, spec.gate_rank, bias=False)
            self.f_b_proj = nn.Linear(spec.gate_rank, inner, bias=False)
            self.A_log = nn.Parameter(torch.zeros(1, 1, self.heads, 1))
        else:
            self.f_proj = nn.Linear(hidden, inner, bias=False)
            self.A_log = nn.Parameter(torch.zeros(self.heads))
        self.dt_bias = nn.Parameter(torch.zeros(inner))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        shape = (*lead, self.heads, self.head_dim)
        rate_shape = (*(1,) * len(lead), self.heads, 1)
        if self.f_proj is None:  # Kimi Linear's ``KimiLinearForgetGate``
            assert self.f_a_proj is not None and self.f_b_proj is not None
            f = self.f_b_proj(self.f_a_proj(x))
            gate = (f.float() + self.dt_bias.float()).view(shape)
            rate = torch.exp(self.A_log.float()).view(rate_shape)
            return -rate * torch.where(gate > 20.0, gate, torch.log(1.0 + torch.exp(gate)))
        # Ling's ``BailingHybridForgetGate``
        gate = self.f_proj(x).float().view(shape) + self.dt_bias.view(self.heads, self.head_dim)
        rate = self.A_log.exp().view(rate_shape)
        if self.lower_bound is not None:
            out = self.lower_bound * torch.sigmoid(rate * gate)
        else:
            out = -rate * F.softplus(gate)
        return out.to(x.dtype)


class SigmoidGatedRMSNorm(nn.Module):
    """The KDA output norm (``RMSNormGated`` with ``sigmoid``): ``weight * rmsnorm(y) * sigmoid(gate)``, all
    in float32 (the weight is not cast down first, unlike Qwen's ``HeadGatedRMSNorm``)."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        h = y.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        h = self.weight.to(torch.float32) * h
        return (h * torch.sigmoid(gate.to(torch.float32))).to(y.dtype)


class KimiDeltaAttention(nn.Module):
    """q/k/v projections -> causal conv -> KDA rule -> per-head gated RMSNorm -> o_proj."""

    def __init__(self, spec: KdaSpec, hidden: int, eps: float, index: int) -> None:
        super().__init__()
        if spec.activation not in ACTIVATIONS:
            raise ValueError(f"activation {spec.activation!r}")
        self.index = index
        self.heads, self.head_dim, self.kernel = spec.num_heads, spec.head_dim, spec.conv_kernel
        self.inner = spec.inner_size
        self.conv_dim = 3 * self.inner
        self.activation = spec.activation
        self.act = ACTIVATIONS[spec.activation]
        self.q_proj = nn.Linear(hidden, self.inner, bias=False)
        self.k_proj = nn.Linear(hidden, self.inner, bias=False)
        self.v_proj = nn.Linear(hidden, self.inner, bias=False)
        self.conv1d = nn.Conv1d(
            self.conv_dim, self.conv_dim, self.kernel, groups=self.conv_dim, bias=False, padding=self.kernel - 1
        )
        self.forget_gate = ForgetGate(spec, hidden)
        self.b_proj = nn.Linear(hidden, self.heads, bias=False)
        self.g_proj: nn.Linear | None = None
        self.g_a_proj: nn.Linear | None = None
        self.g_b_proj: nn.Linear | None = None
        if spec.gate_rank is not None:
            self.g_a_proj = nn.Linear(hidden, spec.gate_rank, bias=False)
            self.g_b_proj = nn.Linear(spec.gate_rank, self.inner, bias=False)
        else:
            self.g_proj = nn.Linear(hidden, self.inner, bias=False)
        self.o_norm = SigmoidGatedRMSNorm(self.head_dim, eps)
        self.o_proj = nn.Linear(self.inner, hidden, bias=False)

    def mixed(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., hidden) -> the convolution's input (..., 3 * inner): q, k, v side by side."""
        return torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)

    def output_gate(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., hidden) -> the output norm's gate (..., heads, head_dim), before the sigmoid."""
        if self.g_proj is not None:
            gate = self.g_proj(x)
        else:
            assert self.g_a_proj is not None and self.g_b_proj is not None
            gate = self.g_b_proj(self.g_a_proj(x))
        return gate.view(*x.shape[:-1], self.heads, self.head_dim)

    def heads_of(
        self, conv: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The activated convolution (..., 3 * inner) and the mixer's input -> q, k normalised, v
        (..., heads, head_dim), g (..., heads, head_dim), beta (..., heads); float32 (q not scaled)."""
        lead = conv.shape[:-1]
        q, k, v = (_f32(part).reshape(*lead, self.heads, self.head_dim) for part in conv.split(self.inner, dim=-1))
        g = _f32(self.forget_gate(x))
        beta = _f32(torch.sigmoid(self.b_proj(x)))
        return l2norm(q), l2norm(k), v, g, beta

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        if kernels.fla(x) is not None or kernels.causal_conv1d(x) is not None:
            return fused_forward(self, x, ctx)
        bsz, t, _ = x.shape
        if ctx.token_mask is not None:
            x = x * ctx.token_mask.unsqueeze(-1).to(x.dtype)
        state = ctx.state
        conv_state = state.conv.get(self.index) if state is not None else None
        S = state.ssm.get(self.index) if state is not None else None
        conv_raw, tail = causal_conv(self.mixed(x).transpose(1, 2), self.conv1d.weight, None, conv_state)
        conv = self.act(conv_raw).transpose(1, 2)
        q, k, v, g, beta = self.heads_of(conv, x)
        if S is not None and t == 1:
            S = S.clone()
            scaled = q[:, 0] * self.head_dim**-0.5
            y = recurrent_kda_step(S, scaled, k[:, 0], v[:, 0], g[:, 0], beta[:, 0]).unsqueeze(1)
        else:
            y, S = chunk_kda(q, k, v, g, beta, S)
        if state is not None:
            state.conv[self.index] = tail.contiguous().clone()
            state.ssm[self.index] = S.float().contiguous()
        out = self.o_norm(y.to(x.dtype), self.output_gate(x)).reshape(bsz, t, self.inner)
        return self.o_proj(out)


def kda_step(mixer: KimiDeltaAttention) -> StepFn:
    """``KimiDeltaAttention.forward`` for one token per row after an unpadded history: the convolution's
    window and the recurrent state updated in place."""
    index, kernel, conv_dim = mixer.index, mixer.kernel, mixer.conv_dim
    conv_w = mixer.conv1d.weight.view(conv_dim, kernel)
    q_proj, k_proj, v_proj, o_proj = dense(mixer.q_proj), dense(mixer.k_proj), dense(mixer.v_proj), dense(mixer.o_proj)
    act, inner, scale = mixer.act, mixer.inner, mixer.head_dim**-0.5

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        if kernels.fla(x) is not None or kernels.causal_conv1d(x) is not None:
            return fused_step(mixer, x, state)
        bsz = x.shape[0]
        conv_state = state.conv[index]
        mixed = torch.cat([q_proj(x), k_proj(x), v_proj(x)], dim=-1)
        window = torch.cat([conv_state, mixed.unsqueeze(-1)], dim=-1)  # (b, conv_dim, kernel)
        if kernel > 1:
            conv_state.copy_(window[:, :, 1:])
        conv = act(torch.linalg.vecdot(window, conv_w))
        q, k, v, g, beta = mixer.heads_of(conv, x)
        y = recurrent_kda_step(state.ssm[index], q.mul_(scale), k, v, g, beta)
        out = mixer.o_norm(y.to(x.dtype), mixer.output_gate(x)).reshape(bsz, inner)
        return o_proj(out)

    return step


def fla_rule(
    mixer: KimiDeltaAttention,
    rule: kernels.Fla,
    conv: torch.Tensor,
    x: torch.Tensor,
    S: torch.Tensor | None,
    recurrent: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The KDA rule through fla, called as ``KimiLinearDeltaAttention`` / ``BailingHybrid``'s KDA call it:
    the activated convolution (b, t, 3 * inner) split into q, k, v (b, t, heads, head_dim) not
    normalised (``use_qk_l2norm_in_kernel``, fla's default scale); ``g`` the forget gate's per-channel
    log decay (b, t, heads, head_dim), ``beta = sigmoid(b_proj(x))`` (b, t, heads) in the model dtype; the
    state (b, heads, head_dim, head_dim).  ``recurrent``: one token after a state (``fused_recurrent_kda``),
    else ``chunk_kda``.  Returns (y (b, t, heads, head_dim), the final state)."""
    lead = conv.shape[:-1]
    q, k, v = (part.reshape(*lead, mixer.heads, mixer.head_dim) for part in conv.split(mixer.inner, dim=-1))
    g = mixer.forget_gate(x)
    beta = torch.sigmoid(mixer.b_proj(x))
    kernel = rule.fused_recurrent_kda if recurrent else rule.chunk_kda
    y, final = kernel(q, k, v, g=g, beta=beta, initial_state=S, output_final_state=True, use_qk_l2norm_in_kernel=True)
    return y, final


def fused_forward(mixer: KimiDeltaAttention, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    """``KimiDeltaAttention.forward`` where a kernel imports (``patternc_torch.kernels``): the convolution
    through ``causal_conv1d_fn`` (``kernels.conv_prefill``), the rule through fla (``fla_rule``), each on
    the PyTorch path when its own package is missing."""
    bsz, t, _ = x.shape
    if ctx.token_mask is not None:
        x = x * ctx.token_mask.unsqueeze(-1).to(x.dtype)
    state = ctx.state
    conv_state = state.conv.get(mixer.index) if state is not None else None
    S = state.ssm.get(mixer.index) if state is not None else None
    conv, tail = kernels.conv_prefill(
        mixer.mixed(x).transpose(1, 2), mixer.conv1d.weight, None, conv_state, mixer.activation
    )
    conv = conv.transpose(1, 2)
    rule = kernels.fla(x)
    if rule is not None:
        y, S = fla_rule(mixer, rule, conv, x, S, recurrent=S is not None and t == 1)
    else:
        q, k, v, g, beta = mixer.heads_of(conv, x)
        if S is not None and t == 1:
            S = S.clone()
            scaled = q[:, 0] * mixer.head_dim**-0.5
            y = recurrent_kda_step(S, scaled, k[:, 0], v[:, 0], g[:, 0], beta[:, 0]).unsqueeze(1)
        else:
            y, S = chunk_kda(q, k, v, g, beta, S)
    if state is not None:
        state.conv[mixer.index] = tail.contiguous().clone()
        state.ssm[mixer.index] = S.float().contiguous()
    out = mixer.o_norm(y.to(x.dtype), mixer.output_gate(x)).reshape(bsz, t, mixer.inner)
    return mixer.o_proj(out)


def fused_step(mixer: KimiDeltaAttention, x: torch.Tensor, state: InferenceState) -> torch.Tensor:
    """``kda_step``'s step where a kernel imports: ``causal_conv1d_update`` on the window
    (``kernels.conv_step``), ``fused_recurrent_kda`` on the state, both in place."""
    bsz = x.shape[0]
    conv = kernels.conv_step(mixer.mixed(x), mixer.conv1d.weight, None, state.conv[mixer.index], mixer.activation)
    S = state.ssm[mixer.index]
    rule = kernels.fla(x)
    if rule is not None:
        y, final = fla_rule(mixer, rule, conv.unsqueeze(1), x.unsqueeze(1), S, recurrent=True)
        S.copy_(final)
        y = y[:, 0]
    else:
        q, k, v, g, beta = mixer.heads_of(conv, x)
        y = recurrent_kda_step(S, q.mul_(mixer.head_dim**-0.5), k, v, g, beta)
    out = mixer.o_norm(y.to(x.dtype), mixer.output_gate(x)).reshape(bsz, mixer.inner)
    return mixer.o_proj(out)


def _build(spec: ModelSpec, index: int) -> nn.Module | None:
    k = spec.kda
    return None if k is None else KimiDeltaAttention(k, spec.hidden_size, spec.norm.eps, index)


def _ready(mixer: nn.Module, state: InferenceState) -> bool:
    return cast(KimiDeltaAttention, mixer).index in state.ssm


KDA_KIND = TorchKind(_build, lambda mixer: kda_step(cast(KimiDeltaAttention, mixer)), _ready)
"""The ``TorchKind`` of ``K`` (``support.SUPPORT`` names it)."""
