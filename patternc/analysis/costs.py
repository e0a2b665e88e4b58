"""Per-layer cost model: stored parameters, active parameters, FLOPs and inference state of one layer.

Every formula follows the module transformers builds for the layer (``modeling_nemotron_h.py``,
``modeling_bamba.py``, ``modeling_granitemoehybrid.py``, ``modeling_mamba2.py``,
``modeling_qwen3_next.py``, ``modeling_deepseek_v3.py``); ``docs/analysis.md`` writes each one out and
``tests/core/test_analysis_exact.py`` checks the parameter counts against the ``state_dict`` of the
model transformers builds on the meta device.  Pure integer arithmetic: no torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast

from patternc.kinds import behaviour, kind_def
from patternc.model import (
    AttentionSpec,
    DsaSpec,
    GatedDeltaNetSpec,
    KdaSpec,
    LightningSpec,
    Mamba1Spec,
    MambaSpec,
    MlaSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    ShortConvSpec,
)

SSM_FLOPS_PER_STATE = 5
"""Mamba2 recurrence per state element and token: decay multiply, ``Δx⊗B`` multiply and add, ``C·h`` multiply-add."""
MAMBA1_FLOPS_PER_STATE = 6
"""Mamba-1 recurrence per state element and token: ``Δ·A`` (its decay is per channel and state, not per
head), the decay multiply, ``(Δx)·B`` multiply and add, ``C·h`` multiply-add (the ``exp`` not counted)."""
GDN_FLOPS_PER_STATE = 7
"""Gated delta rule per state element and token: ``S·k`` (2), decay (1), rank-1 update (2), ``q·S`` (2)."""


@dataclass(frozen=True, slots=True)
class LayerCost:
    """What one layer (its pre-norm included) stores and computes, per token where it says so."""

    params: int
    """Elements the checkpoint stores: parameters and persistent buffers."""
    active: int
    """Parameters a token touches (MoE: the router, shared experts and ``top_k`` routed experts)."""
    matmul: int
    """Weights of the matrix products a token runs through (2 FLOPs each)."""
    other_flops: int = 0
    """Context-independent FLOPs per token besides the matmuls (depthwise conv, SSM recurrence)."""
    attn_flops_per_key: int = 0
    """FLOPs per token and attended key (``QKᵀ`` and ``AV``: ``4·heads·head_dim``)."""
    window: int | None = None
    """Sliding window: a token attends at most this many keys."""
    top_k_keys: int | None = None
    """Sparse attention (``D``): a token attends at most this many keys, chosen among all the cached
    ones; unlike ``window``, the cache keeps every key."""
    index_flops_per_key: int = 0
    """FLOPs per token and cached key that no window or top-k caps (the lightning indexer scores
    every key before choosing)."""
    kv_elems_per_token: int = 0
    """KV-cache elements per cached token and sequence (``2·kv_heads·head_dim``)."""
    state_elems: int = 0
    """Constant recurrent state per sequence (conv window + SSM state), independent of the context."""
    param_breakdown: tuple[tuple[str, int], ...] = ()
    """Named parts of ``params`` (for the docs and the tests)."""

    def flops_at(self, keys: int) -> int:
        """FLOPs of one token that attends ``keys`` keys (windowed)."""
        attended = min(keys, self.attended_cap) if self.attended_cap is not None else keys
        return 2 * self.matmul + self.other_flops + self.attn_flops_per_key * attended + self.index_flops_per_key * keys

    @property
    def attended_cap(self) -> int | None:
        """The most keys one token attends (``window`` or ``top_k_keys``; None: every key)."""
        caps = [cap for cap in (self.window, self.top_k_keys) if cap is not None]
        return min(caps) if caps else None


class CostError(ValueError):
    """A layer kind whose hyper-parameters the model does not give."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"the model gives no hyper-parameters for {kind} layers")


def _linear(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def attention_cost(h: int, a: AttentionSpec) -> LayerCost:
    """``q/k/v/o_proj`` (q doubled by an output gate), optional q/k norms over ``head_dim`` or over the
    whole projections (``qk_norm_whole``); a post-norm layer has its one norm at the output, same size."""
    q_out = a.num_heads * a.head_dim * (2 if a.output_gate else 1)
    kv_out = a.num_kv_heads * a.head_dim
    q = _linear(h, q_out, a.qkv_bias)
    k = _linear(h, kv_out, a.qkv_bias)
    v = _linear(h, kv_out, a.qkv_bias)
    o = _linear(a.num_heads * a.head_dim, h, a.out_bias)
    # per head (one weight of head_dim each), or over the whole q and k projections (OLMo)
    norms = ((a.num_heads * a.head_dim + kv_out) if a.qk_norm_whole else 2 * a.head_dim) if a.qk_norm else 0
    parts = (("norm", h), ("q_proj", q), ("k_proj", k), ("v_proj", v), ("o_proj", o), ("qk_norm", norms))
    total = sum(n for _, n in parts)
    matmul = h * q_out + 2 * h * kv_out + a.num_heads * a.head_dim * h
    return LayerCost(
        params=total,
        active=total,
        matmul=matmul,
        attn_flops_per_key=4 * a.num_heads * a.head_dim,
        window=a.sliding_window,
        kv_elems_per_token=2 * kv_out,
        param_breakdown=parts,
    )


def mla_cost(h: int, a: MlaSpec) -> LayerCost:
    """``DeepseekV3Attention``: the query bottleneck (``q_a_proj``, its RMSNorm, ``q_b_proj``) or one
    ``q_proj``; ``kv_a_proj_with_mqa`` to the latent and the shared rotary key, the latent's RMSNorm,
    ``kv_b_proj`` to per-head keys and values, ``o_proj``.  FLOPs are those of the module as written
    (keys and values expanded, not the absorbed form); the cache is the latent plus the rotary key."""
    qk = a.num_heads * a.qk_head_dim
    latent = a.kv_lora_rank + a.qk_rope_head_dim
    if a.q_lora_rank is None:
        q_parts: tuple[tuple[str, int], ...] = (("q_proj", h * qk),)
        q_matmul = h * qk
    else:
        r = a.q_lora_rank
        q_parts = (("q_a_proj", _linear(h, r, a.bias)), ("q_a_layernorm", r), ("q_b_proj", r * qk))
        q_matmul = h * r + r * qk
    kv_b = a.kv_lora_rank * a.num_heads * (a.qk_nope_head_dim + a.v_head_dim)
    o = a.num_heads * a.v_head_dim * h
    gate = h * a.num_heads if a.output_gate else 0  # Ling's head-wise ``g_proj``, no bias
    parts = (
        ("norm", h),
        *q_parts,
        ("kv_a_proj_with_mqa", _linear(h, latent, a.bias)),
        ("kv_a_layernorm", a.kv_lora_rank),
        ("kv_b_proj", kv_b),
        *((("g_proj", gate),) if gate else ()),
        ("o_proj", _linear(a.num_heads * a.v_head_dim, h, a.bias)),
    )
    total = sum(n for _, n in parts)
    return LayerCost(
        params=total,
        active=total,
        matmul=q_matmul + h * latent + kv_b + gate + o,
        attn_flops_per_key=2 * qk + 2 * a.num_heads * a.v_head_dim,
        kv_elems_per_token=latent,
        param_breakdown=parts,
    )


def dsa_cost(h: int, d: DsaSpec) -> LayerCost:
    """``DeepseekV32Attention``: DeepSeek-V3's latent attention (``mla_cost``) plus the lightning
    indexer, ``wq_b`` (query latent -> heads x head dim), ``wk`` (hidden -> head dim), ``k_norm`` (a
    LayerNorm: weight and bias) and ``weights_proj`` (hidden -> heads), none with a bias.  FLOPs: the
    indexer's projections per token, its scores over every cached key (``2·heads·head_dim`` for the
    dot products, ``2·heads`` for the head-weighted sum), and the latent attention over at most
    ``index_topk`` keys (the sparse kernels' work; transformers' eager path masks a dense product).
    The cache: the latent and the rotary key, plus the indexer's key."""
    base = mla_cost(h, d.mla)
    heads, dim = d.index_n_heads, d.index_head_dim
    rank = d.mla.q_lora_rank or 0  # DsaSpec requires it
    parts = (
        ("indexer.wq_b", rank * heads * dim),
        ("indexer.wk", h * dim),
        ("indexer.k_norm", 2 * dim),
        ("indexer.weights_proj", h * heads),
    )
    indexer = sum(n for _, n in parts)
    return replace(
        base,
        params=base.params + indexer,
        active=base.active + indexer,
        matmul=base.matmul + rank * heads * dim + h * dim + h * heads,
        top_k_keys=d.index_topk,
        index_flops_per_key=2 * heads * dim + 2 * heads,
        kv_elems_per_token=base.kv_elems_per_token + dim,
        param_breakdown=base.param_breakdown + parts,
    )


def mamba_cost(h: int, m: MambaSpec) -> LayerCost:
    """``in_proj`` (z, xBC, dt), depthwise ``conv1d``, ``dt_bias``/``A_log``/``D``, gated norm, ``out_proj``."""
    inner = m.inner_size
    conv_dim = inner + 2 * m.n_groups * m.state_size
    proj = inner + conv_dim + m.num_heads
    in_proj = _linear(h, proj, m.proj_bias)
    conv = conv_dim * m.conv_kernel + (conv_dim if m.conv_bias else 0)
    out_proj = _linear(inner, h, m.out_bias)
    parts = (
        ("norm", h),
        ("in_proj", in_proj),
        ("conv1d", conv),
        ("dt_bias+A_log+D", 3 * m.num_heads),
        ("gated_norm", inner if m.gated_norm else 0),
        ("out_proj", out_proj),
    )
    total = sum(n for _, n in parts)
    ssm_state = m.num_heads * m.head_dim * m.state_size
    return LayerCost(
        params=total,
        active=total,
        matmul=h * proj + inner * h,
        other_flops=2 * conv_dim * m.conv_kernel + SSM_FLOPS_PER_STATE * ssm_state,
        state_elems=conv_dim * (m.conv_kernel - 1) + ssm_state,
        param_breakdown=parts,
    )


def gated_deltanet_cost(h: int, g: GatedDeltaNetSpec) -> LayerCost:
    """Qwen3-Next: ``in_proj_qkvz``, ``in_proj_ba``, bias-free ``conv1d``, ``dt_bias``/``A_log``, norm, ``out_proj``."""
    key_dim = g.num_k_heads * g.head_k_dim
    value_dim = g.num_v_heads * g.head_v_dim
    conv_dim = 2 * key_dim + value_dim
    qkvz = h * (2 * key_dim + 2 * value_dim)
    ba = h * 2 * g.num_v_heads
    parts = (
        ("norm", h),
        ("in_proj_qkvz", qkvz),
        ("in_proj_ba", ba),
        ("conv1d", conv_dim * g.conv_kernel),
        ("dt_bias+A_log", 2 * g.num_v_heads),
        ("gated_norm", g.head_v_dim),
        ("out_proj", value_dim * h),
    )
    total = sum(n for _, n in parts)
    state = g.num_v_heads * g.head_k_dim * g.head_v_dim
    return LayerCost(
        params=total,
        active=total,
        matmul=qkvz + ba + value_dim * h,
        other_flops=2 * conv_dim * g.conv_kernel + GDN_FLOPS_PER_STATE * state,
        state_elems=conv_dim * (g.conv_kernel - 1) + state,
        param_breakdown=parts,
    )


LIGHTNING_FLOPS_PER_STATE = 5
"""Lightning attention per state element and token, in its recurrent form: the decay multiply, the
``kᵀv`` multiply and add, the ``q·S`` multiply-add."""


def lightning_cost(h: int, a: LightningSpec) -> LayerCost:
    """``MiniMaxLightningAttention``: ``qkv_proj`` (h -> 3·heads·head_dim), ``output_gate`` (h ->
    heads·head_dim), the output RMSNorm over heads·head_dim, ``out_proj``, no biases; and the four
    decay buffers the checkpoint stores (``slope_rate`` heads, ``query_decay`` and ``key_decay``
    heads·block_size each, ``diagonal_decay`` heads·block_size²), which are not parameters a token
    touches (left out of ``active``).  The state is one head_dim × head_dim matrix per head."""
    inner = a.num_heads * a.head_dim
    bs = a.block_size
    buffers = a.num_heads * (1 + 2 * bs + bs * bs)
    parts = (
        ("norm", h),
        ("qkv_proj", h * 3 * inner),
        ("output_gate", h * inner),
        ("out_norm", inner),
        ("out_proj", inner * h),
        ("decay_buffers", buffers),
    )
    total = sum(n for _, n in parts)
    state = a.num_heads * a.head_dim * a.head_dim
    return LayerCost(
        params=total,
        active=total - buffers,
        matmul=5 * h * inner,
        other_flops=LIGHTNING_FLOPS_PER_STATE * state + 5 * inner,  # + SiLU of q, k, v; the gate's sigmoid and product
        state_elems=state,
        param_breakdown=parts,
    )


def short_conv_cost(h: int, c: ShortConvSpec) -> LayerCost:
    """LFM2's ``Lfm2ShortConv``: ``in_proj`` (h -> 3h: B, C, x), depthwise ``conv`` over ``conv_kernel``
    tokens, ``out_proj``; ``conv_bias`` gives all three a bias.  Per token besides the matmuls: the
    gate ``B * x`` (h), the convolution (2·h·kernel) and the output gate ``C * y`` (h).  The state is
    the last ``kernel - 1`` inputs of the convolution, the same convention as Mamba2's conv window
    (transformers' cache keeps ``kernel`` columns, one of which the next step never reads)."""
    in_proj = _linear(h, 3 * h, c.bias)
    conv = h * c.conv_kernel + (h if c.bias else 0)
    out_proj = _linear(h, h, c.bias)
    parts = (("norm", h), ("in_proj", in_proj), ("conv", conv), ("out_proj", out_proj))
    total = sum(n for _, n in parts)
    return LayerCost(
        params=total,
        active=total,
        matmul=3 * h * h + h * h,
        other_flops=2 * h * c.conv_kernel + 2 * h,
        state_elems=h * (c.conv_kernel - 1),
        param_breakdown=parts,
    )


def mamba1_cost(h: int, m: Mamba1Spec) -> LayerCost:
    """``MambaMixer`` / ``JambaMambaMixer``: ``in_proj`` (h -> 2i: x and the gate), depthwise
    ``conv1d``, ``x_proj`` (i -> dt_rank + 2·state, no bias), ``dt_proj`` (dt_rank -> i, always a bias),
    ``A_log`` (i x state), ``D`` (i), Jamba's ``dt``/``b``/``c`` RMSNorms, ``out_proj``.  Per token
    besides the matmuls: the convolution (2·i·kernel) and the scan (``MAMBA1_FLOPS_PER_STATE`` per
    state element).  The state: ``kernel - 1`` convolution inputs of i channels plus i x state."""
    inner = m.inner_size(h)
    xbc = m.dt_rank + 2 * m.state_size
    in_proj = _linear(h, 2 * inner, m.proj_bias)
    conv = inner * m.conv_kernel + (inner if m.conv_bias else 0)
    dt_proj = _linear(m.dt_rank, inner, True)
    parts = (
        ("norm", h),
        ("in_proj", in_proj),
        ("conv1d", conv),
        ("x_proj", inner * xbc),
        ("dt_proj", dt_proj),
        ("A_log+D", inner * m.state_size + inner),
        ("dt/B/C norms", xbc if m.inner_norms else 0),
        ("out_proj", _linear(inner, h, m.proj_bias)),
    )
    total = sum(n for _, n in parts)
    ssm_state = inner * m.state_size
    return LayerCost(
        params=total,
        active=total,
        matmul=h * 2 * inner + inner * xbc + m.dt_rank * inner + inner * h,
        other_flops=2 * inner * m.conv_kernel + MAMBA1_FLOPS_PER_STATE * ssm_state,
        state_elems=inner * (m.conv_kernel - 1) + ssm_state,
        param_breakdown=parts,
    )


def _ffn(h: int, size: int, gated: bool, bias: bool) -> int:
    """A dense FFN: ``up`` (and ``gate``) ``h -> size``, ``down`` ``size -> h``."""
    ups = 2 if gated else 1
    return ups * _linear(h, size, bias) + _linear(size, h, bias)


def mlp_cost(h: int, m: MlpSpec) -> LayerCost:
    ffn = _ffn(h, m.intermediate_size, m.gated, m.bias)
    matmul = (3 if m.gated else 2) * h * m.intermediate_size
    return LayerCost(params=h + ffn, active=h + ffn, matmul=matmul, param_breakdown=(("norm", h), ("mlp", ffn)))


def moe_cost(h: int, e: MoeSpec) -> LayerCost:
    """Router (+ its score-correction bias buffer), routed experts stored as 3-D tensors, shared
    experts, the optional latent projections and the Qwen3-Next shared-expert gate."""
    d_in = e.latent_size if e.latent_size is not None else h
    per_expert = (3 if e.expert_gated else 2) * e.intermediate_size * d_in
    router = e.num_experts * h
    correction = e.num_experts if e.score_correction_bias else 0
    shared_one = _ffn(h, e.shared_intermediate_size, e.shared_gated, e.bias) if e.shared_intermediate_size else 0
    shared = e.shared_experts * shared_one
    shared_matmul = e.shared_experts * (3 if e.shared_gated else 2) * h * e.shared_intermediate_size
    gate = h if e.shared_expert_gate and e.shared_experts else 0
    latent = _linear(h, e.latent_size, e.bias) + _linear(e.latent_size, h, e.bias) if e.latent_size else 0
    parts = (
        ("norm", h),
        ("router", router),
        ("router_bias_buffer", correction),
        ("experts", e.num_experts * per_expert),
        ("shared_experts", shared),
        ("shared_expert_gate", gate),
        ("latent_proj", latent),
    )
    total = sum(n for _, n in parts)
    idle = (e.num_experts - e.top_k) * per_expert
    latent_matmul = 2 * h * e.latent_size if e.latent_size else 0
    return LayerCost(
        params=total,
        active=total - idle,
        matmul=router + e.top_k * per_expert + shared_matmul + gate + latent_matmul,
        param_breakdown=parts,
    )


CostFunction = Callable[[ModelSpec], LayerCost | None]
"""A kind's ``KindDef.cost``: one layer's cost, or None when ``spec`` has no hyper-parameters for it."""


def mamba2_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.mamba is None else mamba_cost(spec.hidden_size, spec.mamba)


def gated_deltanet_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.gated_deltanet is None else gated_deltanet_cost(spec.hidden_size, spec.gated_deltanet)


def attention_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.attention is None else attention_cost(spec.hidden_size, spec.attention)


def mla_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.mla is None else mla_cost(spec.hidden_size, spec.mla)


def dsa_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.dsa is None else dsa_cost(spec.hidden_size, spec.dsa)


def kda_cost(h: int, k: KdaSpec) -> LayerCost:
    """``KimiLinearDeltaAttention`` (Ling's ``BailingHybridDeltaAttention`` when ``gate_rank`` is None):
    ``q_proj``, ``k_proj``, ``v_proj`` (h -> inner each), a bias-free depthwise ``conv1d`` over the three,
    the forget gate (``f_a_proj`` h -> rank, ``f_b_proj`` rank -> inner; or one ``f_proj`` h -> inner),
    its ``dt_bias`` (inner) and ``A_log`` (one per head), ``b_proj`` (h -> heads), the output gate (as the
    forget gate's projections), ``o_norm`` (one head's weights), ``o_proj``; no biases.  Per token
    besides the matmuls: the convolution and the delta rule, ``GDN_FLOPS_PER_STATE`` per state element
    (the decay is per key channel instead of per head, still one multiply).  The state is the
    convolution's last ``kernel - 1`` inputs plus ``heads x head_dim x head_dim``."""
    inner, heads = k.inner_size, k.num_heads

    def gate(name: str) -> tuple[tuple[str, int], ...]:
        if k.gate_rank is None:
            return ((f"{name}_proj", h * inner),)
        return ((f"{name}_a_proj", h * k.gate_rank), (f"{name}_b_proj", k.gate_rank * inner))

    conv_dim = 3 * inner
    forget, output = gate("f"), gate("g")
    parts = (
        ("norm", h),
        ("q_proj+k_proj+v_proj", 3 * h * inner),
        ("conv1d", conv_dim * k.conv_kernel),
        *forget,
        ("dt_bias+A_log", inner + heads),
        ("b_proj", h * heads),
        *output,
        ("o_norm", k.head_dim),
        ("o_proj", inner * h),
    )
    total = sum(n for _, n in parts)
    state = heads * k.head_dim * k.head_dim
    gates = sum(n for _, n in (*forget, *output))
    return LayerCost(
        params=total,
        active=total,
        matmul=3 * h * inner + gates + h * heads + inner * h,
        other_flops=2 * conv_dim * k.conv_kernel + GDN_FLOPS_PER_STATE * state,
        state_elems=conv_dim * (k.conv_kernel - 1) + state,
        param_breakdown=parts,
    )


def kda_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.kda is None else kda_cost(spec.hidden_size, spec.kda)


def short_conv_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.short_conv is None else short_conv_cost(spec.hidden_size, spec.short_conv)


def lightning_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.lightning is None else lightning_cost(spec.hidden_size, spec.lightning)


def mamba1_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.mamba1 is None else mamba1_cost(spec.hidden_size, spec.mamba1)


def mlp_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.mlp is None else mlp_cost(spec.hidden_size, spec.mlp)


def moe_layer(spec: ModelSpec) -> LayerCost | None:
    return None if spec.moe is None else moe_cost(spec.hidden_size, spec.moe)


def layer_cost(spec: ModelSpec, kind: str) -> LayerCost:
    """The cost of one ``kind`` layer of ``spec`` (the kind's ``KindDef.cost``); ``CostError`` when the
    kind has no cost function or ``spec`` no hyper-parameters for it."""
    ref = kind_def(kind).cost
    cost = None if ref is None else cast(CostFunction, behaviour(ref))(spec)
    if cost is None:
        raise CostError(kind)
    return cost


def parallel_cost(h: int, costs: tuple[LayerCost, ...]) -> LayerCost:
    """One parallel layer (``[*M]``): its mixers side by side on one normed input, so the sum of their
    costs with a single pre-norm (each mixer's cost counts one ``h``-sized norm); their KV caches and
    states add up, and an attention mixer's window stays its own."""
    shared_norms = (len(costs) - 1) * h
    windows = [c.window for c in costs if c.attn_flops_per_key]
    return LayerCost(
        params=sum(c.params for c in costs) - shared_norms,
        active=sum(c.active for c in costs) - shared_norms,
        matmul=sum(c.matmul for c in costs),
        other_flops=sum(c.other_flops for c in costs),
        attn_flops_per_key=sum(c.attn_flops_per_key for c in costs),
        window=windows[0] if len(windows) == 1 else None,
        kv_elems_per_token=sum(c.kv_elems_per_token for c in costs),
        state_elems=sum(c.state_elems for c in costs),
        param_breakdown=(("norm", h), *((name, n) for c in costs for name, n in c.param_breakdown if name != "norm")),
    )


def mtp_overhead(h: int) -> int:
    """Per MTP depth, outside its layers: ``enorm``, ``hnorm``, ``eh_proj`` (2h -> h, no bias), final norm."""
    return 3 * h + 2 * h * h
