"""Multi-head latent attention (``+``, kind ``mla``) and DeepSeek sparse attention (``D``, kind ``dsa``).

Prefill is transformers' ``DeepseekV3Attention`` step for step: queries through the bottleneck
(``q_a_proj`` -> RMSNorm -> ``q_b_proj``) or one ``q_proj``; one shared latent and one shared rotary
key from ``kv_a_proj_with_mqa``, the latent RMSNorm'd; RoPE on the rotary slices (DeepSeek's
interleaved layout or the half-split one, YaRN's tables and mscale'd softmax scale as the model
builds them); the latent expanded per head by ``kv_b_proj`` into keys and values; softmax attention;
``o_proj``.  Flavours other families use: no RoPE at all (Kimi Linear's "MLA with NoPE": the rotary
slice stays, unrotated) and Ling 3's head-wise output gate (``g_proj``, ``sigmoid`` per head).

The inference state caches, per position and layer, only the normed latent and the rotated key
(``kv_lora_rank + qk_rope_head_dim`` numbers, ``InferenceState.latent``), never expanded keys and
values: the decode step absorbs ``kv_b_proj`` into the query and the output instead.  Per head,
``q_nope . (W_uk c) = (W_uk^T q_nope) . c``, so the query is mapped into the latent space once and
scored against the cached latents directly, and the attention-weighted latent is mapped to the
head's value by ``W_uv`` after the softmax.  Prefill with a state (a prompt, or a continuation after
a padded history) writes the same cache and expands what it reads, as transformers does.

DeepSeek sparse attention (DeepSeek-V3.2's ``DeepseekV32Attention``) adds the lightning indexer
(``DeepseekV32Indexer``): from the query latent (``wq_b``) ``index_n_heads`` queries, from the hidden
state one key (``wk``, a LayerNorm ``k_norm``), the first ``qk_rope_head_dim`` channels of both
rotated half-split; each allowed key scores ``sum_h w_h relu(q_h . k / sqrt(d))`` with per-token
weights ``weights_proj(x) / sqrt(heads)``, and each query attends only its ``index_topk`` best keys.
The indexer's key joins the cache (``kv_lora_rank + qk_rope_head_dim + index_head_dim`` per position).
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from patternc.model import DsaSpec, MlaSpec, ModelSpec, YarnSpec
from patternc_torch.decode import Rope, StepFn, dense, norm_step
from patternc_torch.kinds import TorchKind
from patternc_torch.layers import Context, RMSNorm, _rotate, rope_frequencies
from patternc_torch.state import InferenceState


def latent_spec(spec: ModelSpec) -> MlaSpec | None:
    """The latent attention of ``spec``'s ``+`` or ``D`` layers (they share RoPE), or None."""
    if spec.mla is not None:
        return spec.mla
    return spec.dsa.mla if spec.dsa is not None else None


def yarn_frequencies(dim: int, theta: float, yarn: YarnSpec, max_positions: int | None) -> tuple[torch.Tensor, float]:
    """YaRN's inverse frequencies and cos/sin factor, as ``modeling_rope_utils._compute_yarn_parameters``
    computes them (its ``truncate`` default, on the CPU, float32)."""
    factor = yarn.factor
    original = yarn.original_max_position_embeddings or max_positions
    if original is None:
        raise ValueError("YaRN needs original_max_position_embeddings or max_position_embeddings")

    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention_factor = yarn.attention_factor
    if attention_factor is None:
        if yarn.mscale and yarn.mscale_all_dim:
            attention_factor = float(mscale(factor, yarn.mscale) / mscale(factor, yarn.mscale_all_dim))
        else:
            attention_factor = mscale(factor)
    beta_fast, beta_slow = yarn.beta_fast or 32, yarn.beta_slow or 1

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(theta))

    low: float = max(math.floor(correction_dim(beta_fast)), 0)
    high: float = min(math.ceil(correction_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001  # transformers' guard against a zero-width ramp
    pos_freqs = theta ** (torch.arange(0, dim, 2, device="cpu").to(dtype=torch.float) / dim)
    extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32, device="cpu") - low) / (high - low), 0, 1)
    keep = 1 - ramp
    inv_freq = interpolation * (1 - keep) + extrapolation * keep
    return inv_freq.to(torch.get_default_device()), float(attention_factor)


def latent_rope(spec: ModelSpec) -> tuple[torch.Tensor, float] | None:
    """The RoPE inverse frequencies of the latent attention's ``qk_rope_head_dim`` channels and the
    factor its cos/sin tables are multiplied by (YaRN's ``attention_factor``; 1 for plain RoPE), or
    None when the model has no latent attention or it rotates nothing."""
    mla = latent_spec(spec)
    if mla is None or mla.rope is None:
        return None
    dim, theta = mla.qk_rope_head_dim, mla.rope.theta
    if mla.rope_scaling is not None:
        return yarn_frequencies(dim, theta, mla.rope_scaling, spec.max_position_embeddings)
    return rope_frequencies(dim, 1.0, theta), 1.0


def rotate_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """DeepSeek's interleaved pairs ``(x0, x1), (x2, x3)…`` rotated and de-interleaved (transformers'
    ``apply_rotary_pos_emb_interleave``: the first half of the ``cat(freqs, freqs)`` tables)."""
    half = cos.shape[-1] // 2
    cos, sin = cos[..., :half].to(x.dtype), sin[..., :half].to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class LatentAttention(nn.Module):
    """Multi-head latent attention (DeepSeek-V3's, Kimi Linear's NoPE one, Ling 3's gated one)."""

    def __init__(self, spec: MlaSpec, hidden: int, index: int) -> None:
        super().__init__()
        self.index = index
        self.heads = spec.num_heads
        self.rank, self.nope, self.rope_dim, self.v_dim = (
            spec.kv_lora_rank,
            spec.qk_nope_head_dim,
            spec.qk_rope_head_dim,
            spec.v_head_dim,
        )
        self.qk_dim = spec.qk_head_dim
        self.rotates = spec.rope is not None
        self.interleaved = spec.rope_interleave
        self.scale = spec.softmax_scale
        self.q_proj: nn.Linear | None = None
        self.q_a_proj: nn.Linear | None = None
        self.q_a_layernorm: RMSNorm | None = None
        self.q_b_proj: nn.Linear | None = None
        if spec.q_lora_rank is None:
            self.q_proj = nn.Linear(hidden, self.heads * self.qk_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(hidden, spec.q_lora_rank, bias=spec.bias)
            self.q_a_layernorm = RMSNorm(spec.q_lora_rank, spec.latent_norm_eps)
            self.q_b_proj = nn.Linear(spec.q_lora_rank, self.heads * self.qk_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(hidden, self.rank + self.rope_dim, bias=spec.bias)
        self.kv_a_layernorm = RMSNorm(self.rank, spec.latent_norm_eps)
        self.kv_b_proj = nn.Linear(self.rank, self.heads * (self.nope + self.v_dim), bias=False)
        self.o_proj = nn.Linear(self.heads * self.v_dim, hidden, bias=spec.bias)
        self.g_proj = nn.Linear(hidden, self.heads, bias=False) if spec.output_gate else None

    @property
    def cache_width(self) -> int:
        """Numbers cached per position: the latent and the rotary key."""
        return self.rank + self.rope_dim

    def query_latent(self, x: torch.Tensor) -> torch.Tensor | None:
        """``q_a_layernorm(q_a_proj(x))`` (the indexer reads it too), or None without the bottleneck."""
        if self.q_a_proj is None or self.q_a_layernorm is None:
            return None
        return self.q_a_layernorm(self.q_a_proj(x))

    def queries(self, x: torch.Tensor, q_latent: torch.Tensor | None) -> torch.Tensor:
        """x (b, t, hidden) -> queries (b, t, heads, qk_head_dim), not yet rotated."""
        if q_latent is not None:
            assert self.q_b_proj is not None
            q = self.q_b_proj(q_latent)
        else:
            assert self.q_proj is not None
            q = self.q_proj(x)
        return q.view(*x.shape[:-1], self.heads, self.qk_dim)

    def compressed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (b, t, hidden) -> (normed latent (b, t, rank), rotary key (b, t, rope_dim), not yet rotated)."""
        latent, k_rot = self.kv_a_proj_with_mqa(x).split([self.rank, self.rope_dim], dim=-1)
        return self.kv_a_layernorm(latent), k_rot

    def rotate(self, x: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        """RoPE on the rotary channels ``x`` (..., heads or 1, t, rope_dim) with (b, 1, t, rope_dim) tables."""
        if rope is None or not self.rotates:
            return x
        cos, sin = rope
        return rotate_interleaved(x, cos, sin) if self.interleaved else _rotate(x, cos, sin)

    def cache(self, state: InferenceState, x: torch.Tensor) -> torch.Tensor:
        """This layer's cache (b, capacity, width) in ``state``, made on first use."""
        buffer = state.latent.get(self.index)
        if buffer is None:
            buffer = x.new_zeros(state.batch, state.capacity, self.cache_width + self.extra_width())
            state.latent[self.index] = buffer
        return buffer

    def extra_width(self) -> int:
        """Numbers a subclass caches per position after the latent and the rotary key."""
        return 0

    def allowed(
        self, ctx: Context, x: torch.Tensor, q_latent: torch.Tensor | None, keys: int, extra: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The boolean attention mask (b, 1, t, keys) narrower than ``ctx``'s (DSA: the indexer's choice,
        ``extra`` its keys), or None to use ``ctx.attn_mask`` / ``ctx.is_causal`` as they are."""
        return None

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        b, t, _ = x.shape
        q_latent = self.query_latent(x)
        q_pass, q_rot = self.queries(x, q_latent).transpose(1, 2).split([self.nope, self.rope_dim], dim=-1)
        latent, k_rot = self.compressed(x)
        latent, k_rot = latent.view(b, 1, t, self.rank), k_rot.view(b, 1, t, self.rope_dim)
        q_rot, k_rot = self.rotate(q_rot, ctx.rope), self.rotate(k_rot, ctx.rope)
        end = t
        if ctx.state is not None:
            buffer = self.cache(ctx.state, x)
            end = ctx.start + t
            buffer[:, ctx.start : end, : self.rank] = latent[:, 0]
            buffer[:, ctx.start : end, self.rank : self.cache_width] = k_rot[:, 0]
            extra = self.cache_extra(buffer, ctx.start, x, ctx.rope)
            latent = buffer[:, :end, : self.rank].unsqueeze(1)
            k_rot = buffer[:, :end, self.rank : self.cache_width].unsqueeze(1)
        else:
            extra = self.cache_extra(None, 0, x, ctx.rope)
        query = torch.cat((q_pass, q_rot), dim=-1)
        kv = self.kv_b_proj(latent).view(b, end, self.heads, self.nope + self.v_dim).transpose(1, 2)
        k_nope, value = kv.split([self.nope, self.v_dim], dim=-1)
        key = torch.cat((k_nope, k_rot.expand(-1, self.heads, -1, -1)), dim=-1)
        mask = self.allowed(ctx, x, q_latent, end, extra)
        if mask is not None:
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=self.scale)
        else:
            out = F.scaled_dot_product_attention(
                query, key, value, attn_mask=ctx.attn_mask, is_causal=ctx.is_causal, scale=self.scale
            )
        out = out.transpose(1, 2)  # (b, t, heads, v_dim)
        if self.g_proj is not None:
            out = out * torch.sigmoid(self.g_proj(x).float()).to(x.dtype).unsqueeze(-1)
        return self.o_proj(out.reshape(b, t, self.heads * self.v_dim))

    def cache_extra(
        self, buffer: torch.Tensor | None, start: int, x: torch.Tensor, rope: Rope | None
    ) -> torch.Tensor | None:
        """What a subclass caches per position after the latent and the rotary key (DSA: the indexer's
        keys), written into ``buffer`` at ``start`` when there is one; returns every position's so far."""
        return None


class Indexer(nn.Module):
    """DeepSeek-V3.2's lightning indexer (``DeepseekV32Indexer``): which keys each query attends."""

    def __init__(self, spec: DsaSpec, hidden: int) -> None:
        super().__init__()
        q_rank = spec.mla.q_lora_rank
        assert q_rank is not None  # DsaSpec requires the query bottleneck
        self.heads, self.head_dim, self.rope_dim = spec.index_n_heads, spec.index_head_dim, spec.mla.qk_rope_head_dim
        self.topk = spec.index_topk
        self.wq_b = nn.Linear(q_rank, self.heads * self.head_dim, bias=False)
        self.wk = nn.Linear(hidden, self.head_dim, bias=False)
        self.k_norm = nn.LayerNorm(self.head_dim, eps=spec.index_norm_eps)
        self.weights_proj = nn.Linear(hidden, self.heads, bias=False)
        self.softmax_scale = self.head_dim**-0.5

    def _rotate(self, x: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        """Half-split RoPE on the first ``rope_dim`` channels of x (b, t, n, head_dim); tables (b, 1, t, r)."""
        if rope is None:
            return x
        cos, sin = (table.transpose(1, 2) for table in rope)  # (b, t, 1, r)
        return _rotate(x, cos, sin)

    def keys(self, x: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        """x (b, t, hidden) -> the indexer's keys (b, t, head_dim), normed and rotated."""
        return self._rotate(self.k_norm(self.wk(x)).unsqueeze(2), rope).squeeze(2)

    def scores(self, x: torch.Tensor, q_latent: torch.Tensor, keys: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        """Index scores (b, t, keys) of every query of x (b, t, hidden) against ``keys`` (b, T, head_dim)."""
        b, t, _ = x.shape
        q = self._rotate(self.wq_b(q_latent).view(b, t, self.heads, self.head_dim), rope)
        scores = torch.matmul(q.float(), keys.transpose(-1, -2).float().unsqueeze(1)) * self.softmax_scale
        scores = F.relu(scores)
        weights = self.weights_proj(x.to(self.weights_proj.weight.dtype)).float() * (self.heads**-0.5)
        return torch.matmul(weights.unsqueeze(-2), scores).squeeze(-2)

    def select(self, scores: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """``allowed`` (b, t, keys) narrowed to each query's ``index_topk`` best-scoring allowed keys.

        The disallowed scores get the dtype's minimum added, as transformers' additive mask does, so that
        top-k sees the same row (and breaks ties among equal scores the same way)."""
        scores = scores + torch.zeros_like(scores).masked_fill_(~allowed, torch.finfo(scores.dtype).min)
        top = scores.topk(min(self.topk, scores.shape[-1]), dim=-1).indices
        chosen = torch.zeros_like(allowed).scatter_(-1, top, True)
        return allowed & chosen


def _causal(ctx: Context, b: int, t: int, keys: int, device: torch.device) -> torch.Tensor:
    """``ctx``'s mask as booleans (b or 1, t, keys), spelled out when ``ctx`` says causal or nothing."""
    if ctx.attn_mask is not None:
        return ctx.attn_mask[:, 0].expand(b, t, keys)
    if ctx.is_causal:
        return torch.ones(t, keys, dtype=torch.bool, device=device).tril(keys - t).expand(b, t, keys)
    return torch.ones(b, t, keys, dtype=torch.bool, device=device)


class SparseLatentAttention(LatentAttention):
    """DeepSeek sparse attention: the latent attention over the keys the indexer chooses per query."""

    def __init__(self, spec: DsaSpec, hidden: int, index: int) -> None:
        super().__init__(spec.mla, hidden, index)
        self.indexer = Indexer(spec, hidden)

    def extra_width(self) -> int:
        return self.indexer.head_dim

    def cache_extra(
        self, buffer: torch.Tensor | None, start: int, x: torch.Tensor, rope: Rope | None
    ) -> torch.Tensor | None:
        keys = self.indexer.keys(x, rope)
        if buffer is None:
            return keys
        end = start + x.shape[1]
        buffer[:, start:end, self.cache_width :] = keys
        return buffer[:, :end, self.cache_width :]

    def allowed(
        self, ctx: Context, x: torch.Tensor, q_latent: torch.Tensor | None, keys: int, extra: torch.Tensor | None
    ) -> torch.Tensor:
        assert q_latent is not None and extra is not None
        b, t, _ = x.shape
        scores = self.indexer.scores(x, q_latent, extra, ctx.rope)
        return self.indexer.select(scores, _causal(ctx, b, t, keys, x.device)).unsqueeze(1)


def latent_step(attn: LatentAttention) -> StepFn:
    """``LatentAttention.forward`` for one token per row after an unpadded history, with ``kv_b_proj``
    absorbed: the query mapped into the latent space (``W_uk``), scored against the cached latents and
    rotary keys in one product, the weighted latent mapped to values (``W_uv``) after the softmax.
    Nothing per head is ever expanded over the context."""
    index, heads, rank, nope, v_dim = attn.index, attn.heads, attn.rank, attn.nope, attn.v_dim
    width = attn.cache_width
    scale = attn.scale
    up = attn.kv_b_proj.weight.view(heads, nope + v_dim, rank)
    w_uk = up[:, :nope]  # (heads, nope, rank)
    w_uv_t = up[:, nope:].transpose(1, 2)  # (heads, rank, v_dim)
    kv_a = dense(attn.kv_a_proj_with_mqa)
    kv_norm = norm_step(attn.kv_a_layernorm)
    o_proj = dense(attn.o_proj)
    q_a = dense(attn.q_a_proj) if attn.q_a_proj is not None else None
    q_norm = norm_step(attn.q_a_layernorm) if attn.q_a_layernorm is not None else None
    q_b = dense(attn.q_b_proj if attn.q_b_proj is not None else cast(nn.Linear, attn.q_proj))
    g_proj = dense(attn.g_proj) if attn.g_proj is not None else None
    sparse = attn.indexer if isinstance(attn, SparseLatentAttention) else None

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        b = x.shape[0]
        q_latent = q_norm(q_a(x)) if q_a is not None and q_norm is not None else None
        q = q_b(q_latent if q_latent is not None else x).view(b, heads, 1, nope + attn.rope_dim)
        q_pass, q_rot = q.split([nope, attn.rope_dim], dim=-1)
        latent, k_rot = kv_a(x).split([rank, attn.rope_dim], dim=-1)
        k_rot = attn.rotate(k_rot.view(b, 1, 1, attn.rope_dim), rope).view(b, attn.rope_dim)
        buffer = state.latent[index]
        end = start + 1
        buffer[:, start, :rank] = kv_norm(latent)
        buffer[:, start, rank:width] = k_rot
        # the query in the latent space: (heads, b, nope) @ (heads, nope, rank)
        q_lat = torch.bmm(q_pass.view(b, heads, nope).transpose(0, 1), w_uk).transpose(0, 1)
        q_full = torch.cat([q_lat, attn.rotate(q_rot, rope).view(b, heads, attn.rope_dim)], dim=-1)
        scores = torch.bmm(q_full, buffer[:, :end, :width].transpose(1, 2)).mul_(scale)  # (b, heads, end)
        if sparse is not None:
            assert q_latent is not None
            buffer[:, start, width:] = sparse.keys(x.view(b, 1, -1), rope).view(b, -1)
            index_scores = sparse.scores(x.view(b, 1, -1), q_latent.view(b, 1, -1), buffer[:, :end, width:], rope)
            allowed = torch.ones(b, 1, end, dtype=torch.bool, device=x.device)
            scores = scores.masked_fill(~sparse.select(index_scores, allowed), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        out_latent = torch.bmm(weights, buffer[:, :end, :rank])  # (b, heads, rank)
        out = torch.bmm(out_latent.transpose(0, 1), w_uv_t).transpose(0, 1)  # (b, heads, v_dim)
        if g_proj is not None:
            out = out * torch.sigmoid(g_proj(x).float()).to(x.dtype).unsqueeze(-1)
        return o_proj(out.reshape(b, heads * v_dim))

    return step


def _build_mla(spec: ModelSpec, index: int) -> nn.Module | None:
    return None if spec.mla is None else LatentAttention(spec.mla, spec.hidden_size, index)


def _build_dsa(spec: ModelSpec, index: int) -> nn.Module | None:
    return None if spec.dsa is None else SparseLatentAttention(spec.dsa, spec.hidden_size, index)


def _ready(mixer: nn.Module, state: InferenceState) -> bool:
    return cast(LatentAttention, mixer).index in state.latent


MLA_KIND = TorchKind(_build_mla, lambda mixer: latent_step(cast(LatentAttention, mixer)), _ready)
"""The ``TorchKind`` of ``+`` (``support.SUPPORT`` names it)."""
DSA_KIND = TorchKind(_build_dsa, lambda mixer: latent_step(cast(LatentAttention, mixer)), _ready)
"""The ``TorchKind`` of ``D`` (``support.SUPPORT`` names it)."""
