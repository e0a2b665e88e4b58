"""Lower a model to one small dataflow graph per residual block.

Each block is ``input -> rmsnorm -> ops ... -> residual add``; nodes carry an ``op`` plus exactly
the attributes that define the math *and* the parameter shapes (linear in/out sizes and bias,
activation, RoPE theta and partial factor, softmax scale, Mamba2 heads/state/groups, router
type...).  Gating is structure, not an attribute: a gated MLP has a ``gate_proj`` and an
``up_proj`` feeding a ``mul`` node.  Node *names* (``q_proj``, ``gate_mul``) only serve
messages: equivalence ignores them, which is what "the same up to renaming" means.

Attributes that change numerics but not the function (``chunk_size``, ``residual_in_fp32``, the
dtype an RMSNorm multiplies in) are deliberately absent.

Both sides of a comparison use these builders: ``lower_spec`` lowers a ``ModelSpec``; each
candidate architecture (``patternc.canonical.archs``) first interprets its own config fields as
layer specs (with the choices its modeling code hard-codes) and then lowers them here.  Graphs are
plain frozen dataclasses; networkx is only imported when two of them are compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar, cast

from patternc.kinds import SYMBOL_ORDER, LayerKind, behaviour, by_symbol, kind_def
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
    NormSpec,
    RopeSpec,
    ScaledResidualSpec,
    ShortConvSpec,
)

AttrValue = str | int | float | bool | None | tuple[float, float]


def _clean(value: AttrValue) -> AttrValue:
    """Round floats so that ``1/sqrt(128)`` computed two ways compares equal."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isinf(value) else float(f"{value:.12g}")
    low, high = value
    return (float(_clean(low)), float(_clean(high)))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    """Local name, for messages only (ignored by the equivalence)."""
    op: str
    attrs: tuple[tuple[str, AttrValue], ...]

    def attr(self, key: str) -> AttrValue:
        return dict(self.attrs)[key]

    def describe(self) -> str:
        """``linear(in=4096, out=21504, bias=False)``."""
        inner = ", ".join(f"{key}={_fmt(value)}" for key, value in self.attrs)
        return f"{self.op}({inner})" if inner else self.op


def _fmt(value: AttrValue) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    port: str = ""
    """Which input of ``dst`` (``q``/``k``/``v``, ``gate``/``up``, ``residual``...)."""


@dataclass(frozen=True, slots=True)
class BlockGraph:
    """One residual block (or the embedding / output head) as a dataflow graph."""

    label: str
    """Where it comes from, for messages: ``layer 7 `M```, ``embedding``, ``output head``."""
    kind: str
    """``embedding``, ``head`` or the layer symbol."""
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def to_networkx(self) -> object:
        """A ``networkx.DiGraph`` (nodes keyed by name, ``op``/``attrs`` data, ``port`` on edges)."""
        import networkx as nx  # type: ignore[import-untyped]  # lazily: `import patternc` must stay light

        graph = nx.DiGraph()
        for node in self.nodes:
            graph.add_node(node.name, op=node.op, attrs=node.attrs)
        for edge in self.edges:
            graph.add_edge(edge.src, edge.dst, port=edge.port)
        return graph


@dataclass
class _Builder:
    label: str
    kind: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, name: str, op: str, /, *inputs: str | tuple[str, str], **attrs: AttrValue) -> str:
        if name in self.nodes:
            raise ValueError(f"duplicate node {name!r} in {self.label}")
        self.nodes[name] = Node(name, op, tuple((key, _clean(value)) for key, value in attrs.items()))
        for item in inputs:
            src, port = (item, "") if isinstance(item, str) else item
            self.edges.append(Edge(src, name, port))
        return name

    def linear(self, name: str, src: str, size_in: int, size_out: int, bias: bool) -> str:
        return self.add(name, "linear", src, size_in=size_in, size_out=size_out, bias=bias)

    def build(self) -> BlockGraph:
        return BlockGraph(self.label, self.kind, tuple(self.nodes.values()), tuple(self.edges))


@dataclass(frozen=True, slots=True)
class Frame:
    """What every block of one model shares."""

    hidden_size: int
    norm: NormSpec
    residual_multiplier: float = 1.0
    post_norm: bool = False
    """The block normalises its output before the residual add instead of its input (the attention
    layers of OLMo 2/3 and OLMo Hybrid, and the FFN that follows each: ``AttentionSpec.post_norm``)."""
    residual_alpha: float = 1.0
    """MiniMax (``ScaledResidualSpec``): the weight of the residual stream; ``residual_multiplier`` is
    the branch's."""
    normed_residual: bool = False
    """MiniMax: the residual stream is the block's normalised input, not its input."""


_Spec = TypeVar("_Spec", contravariant=True)
_RELABEL_CACHE_SIZE = 4096
"""Distinct (frame, spec) blocks kept per lowering; a whole model has a few dozen."""


class _Lowering(Protocol[_Spec]):
    def __call__(self, frame: Frame, spec: _Spec, label: str = ..., /) -> BlockGraph: ...


def _relabelled(lower: _Lowering[_Spec]) -> _Lowering[_Spec]:
    """``lower`` computed once per (frame, spec) and relabelled per layer: the label only names the
    block in messages, and a stack repeats the same few blocks in every layer of every candidate the
    canonical map expresses (19 candidates x 52 layers of Nemotron-H-8B: 17 distinct blocks)."""
    cache: dict[tuple[Frame, object], BlockGraph] = {}

    def relabelled(frame: Frame, spec: _Spec, label: str = "", /) -> BlockGraph:
        try:
            key = (frame, spec)
            found = cache.get(key)
        except TypeError:  # a spec with an unhashable field: computed each time
            return lower(frame, spec, label)
        if found is None:
            if len(cache) >= _RELABEL_CACHE_SIZE:  # bounded: a long-lived process maps many models
                cache.clear()
            found = cache[key] = lower(frame, spec, label)
        return found if found.label == label else replace(found, label=label)

    return relabelled


def _open(frame: Frame, label: str, kind: str) -> tuple[_Builder, str]:
    b = _Builder(label, kind)
    b.add("input", "input")
    if frame.post_norm:
        return b, "input"
    norm = b.add(
        "norm", "rmsnorm", "input", size=frame.hidden_size, eps=frame.norm.eps, unit_offset=frame.norm.unit_offset
    )
    return b, norm


def _close(b: _Builder, frame: Frame, out: str) -> BlockGraph:
    if frame.post_norm:
        out = b.add(
            "post_norm", "rmsnorm", out, size=frame.hidden_size, eps=frame.norm.eps, unit_offset=frame.norm.unit_offset
        )
    if frame.normed_residual or frame.residual_alpha != 1.0:  # MiniMax: its own attributes, others' graphs unchanged
        source = "norm" if frame.normed_residual and not frame.post_norm else "input"
        b.add(
            "residual",
            "residual_add",
            (source, "residual"),
            (out, "branch"),
            scale=frame.residual_multiplier,
            residual_scale=frame.residual_alpha,
            residual_from=source,
        )
        return b.build()
    b.add("residual", "residual_add", ("input", "residual"), (out, "branch"), scale=frame.residual_multiplier)
    return b.build()


def _symbol(kind: LayerKind) -> str:
    """The block kind a lowering writes: the kind's symbol, as the expressers' blocks carry it."""
    return kind_def(kind).symbol


@_relabelled
def lower_mamba(frame: Frame, m: MambaSpec, label: str = "`M`") -> BlockGraph:
    b, x = _open(frame, label, _symbol(LayerKind.MAMBA2))
    inner = m.inner_size
    conv_channels = inner + 2 * m.n_groups * m.state_size
    proj = b.linear("in_proj", x, frame.hidden_size, inner + conv_channels + m.num_heads, m.proj_bias)
    conv = b.add(
        "conv1d",
        "causal_conv1d",
        (proj, "xBC"),
        channels=conv_channels,
        kernel=m.conv_kernel,
        bias=m.conv_bias,
        activation=m.activation,
    )
    ssm = b.add(
        "ssm",
        "mamba2_scan",
        (conv, "xBC"),
        (proj, "dt"),
        heads=m.num_heads,
        head_dim=m.head_dim,
        state=m.state_size,
        groups=m.n_groups,
        dt_limit=m.time_step_limit,
    )
    if m.gated_norm:
        normed = b.add(
            "gated_norm",
            "gated_rmsnorm",
            (ssm, "x"),
            (proj, "z"),
            size=inner,
            group_size=m.norm_group_size,
            eps=frame.norm.eps,
            gate_activation="silu",
            norm_before_gate=m.norm_before_gate,
        )
    else:  # Falcon-H1 without `mamba_rms_norm`: the scan output gated by silu(z), no norm
        normed = b.add("gate", "silu_gate", (ssm, "x"), (proj, "z"))
    out = b.linear("out_proj", normed, inner, frame.hidden_size, m.out_bias)
    return _close(b, frame, out)


@_relabelled
def lower_attention(frame: Frame, a: AttentionSpec, label: str = "`*`") -> BlockGraph:
    if a.post_norm:
        frame = replace(frame, post_norm=True)
    b, x = _open(frame, label, _symbol(LayerKind.ATTENTION))
    q_out = a.num_heads * a.head_dim * (2 if a.output_gate else 1)
    q = b.linear("q_proj", x, frame.hidden_size, q_out, a.qkv_bias)
    k = b.linear("k_proj", x, frame.hidden_size, a.num_kv_heads * a.head_dim, a.qkv_bias)
    v = b.linear("v_proj", x, frame.hidden_size, a.num_kv_heads * a.head_dim, a.qkv_bias)
    if a.qk_norm:
        # per head (Qwen), or over the whole projection (OLMo: one weight of heads * head_dim)
        q_size, k_size = (
            (a.num_heads * a.head_dim, a.num_kv_heads * a.head_dim) if a.qk_norm_whole else (a.head_dim,) * 2
        )
        q = b.add("q_norm", "rmsnorm", q, size=q_size, eps=frame.norm.eps, unit_offset=frame.norm.unit_offset)
        k = b.add("k_norm", "rmsnorm", k, size=k_size, eps=frame.norm.eps, unit_offset=frame.norm.unit_offset)
    if a.rope is not None:
        mrope: dict[str, AttrValue] = {}
        if a.rope.mrope_section is not None:  # an attribute only when set: other families' graphs unchanged
            sections = ",".join(str(n) for n in a.rope.mrope_section)
            mrope["mrope"] = f"{sections} {'interleaved' if a.rope.mrope_interleaved else 'chunked'}"
        rope = b.add(
            "rope", "rope", (q, "q"), (k, "k"), theta=a.rope.theta, partial_factor=a.rope.partial_factor, **mrope
        )
        q_in: tuple[str, str] = (rope, "q")
        k_in: tuple[str, str] = (rope, "k")
    else:
        q_in, k_in = (q, "q"), (k, "k")
    scale = a.scale if a.scale is not None else a.head_dim**-0.5
    attn = b.add(
        "sdpa",
        "causal_attention",
        q_in,
        k_in,
        (v, "v"),
        heads=a.num_heads,
        kv_heads=a.num_kv_heads,
        head_dim=a.head_dim,
        scale=scale,
        sliding_window=a.sliding_window,
    )
    if a.output_gate:
        attn = b.add("output_gate", "sigmoid_gate", (attn, "x"), (q, "gate"))
    out = b.linear("o_proj", attn, a.num_heads * a.head_dim, frame.hidden_size, a.out_bias)
    return _close(b, frame, out)


@_relabelled
def lower_mla(frame: Frame, a: MlaSpec, label: str = "`+`") -> BlockGraph:
    """``DeepseekV3Attention``: query bottleneck (or ``q_proj``), the shared latent and rotary key,
    their expansion per head, RoPE (YaRN when scaled) on the rotary channels, softmax, ``o_proj``.
    Kimi Linear's NoPE flavour (``rope`` None) has no rotation node: the rotary channels enter the
    attention as they are; Ling's output gate (``output_gate``) scales each head by ``sigmoid(g_proj(x))``."""
    b, x = _open(frame, label, _symbol(LayerKind.MLA))
    h, heads = frame.hidden_size, a.num_heads
    if a.q_lora_rank is None:
        q = b.linear("q_proj", x, h, heads * a.qk_head_dim, False)
    else:
        q_a = b.linear("q_a_proj", x, h, a.q_lora_rank, a.bias)
        q_n = b.add("q_a_layernorm", "rmsnorm", q_a, size=a.q_lora_rank, eps=a.latent_norm_eps, unit_offset=False)
        q = b.linear("q_b_proj", q_n, a.q_lora_rank, heads * a.qk_head_dim, False)
    kv_a = b.linear("kv_a_proj_with_mqa", x, h, a.kv_lora_rank + a.qk_rope_head_dim, a.bias)
    kv_n = b.add(
        "kv_a_layernorm", "rmsnorm", (kv_a, "latent"), size=a.kv_lora_rank, eps=a.latent_norm_eps, unit_offset=False
    )
    kv_b = b.linear("kv_b_proj", kv_n, a.kv_lora_rank, heads * (a.qk_nope_head_dim + a.v_head_dim), False)
    if a.rope is None:
        q_rope, k_rope = (q, "q_rope"), (kv_a, "k_rope")
    else:
        q_rope, k_rope = (_mla_rope(b, a, a.rope, q, kv_a), "q_rope"), (_MLA_ROPE, "k_rope")
    attn = b.add(
        "sdpa",
        "latent_attention",
        (q, "q_nope"),
        q_rope,
        (kv_b, "kv"),
        k_rope,
        heads=heads,
        nope_dim=a.qk_nope_head_dim,
        rope_dim=a.qk_rope_head_dim,
        v_dim=a.v_head_dim,
        scale=a.softmax_scale,
    )
    if a.output_gate:
        g = b.linear("g_proj", x, h, heads, False)
        attn = b.add("output_gate", "head_gate", (attn, "x"), (g, "gate"), heads=heads, activation="sigmoid")
    out = b.linear("o_proj", attn, heads * a.v_head_dim, h, a.bias)
    return _close(b, frame, out)


_MLA_ROPE = "rope"


def _mla_rope(b: _Builder, a: MlaSpec, r: RopeSpec, q: str, kv_a: str) -> str:
    """MLA's rotation of the query's and the shared key's rotary channels (YaRN when scaled)."""
    y = a.rope_scaling
    return b.add(
        _MLA_ROPE,
        "rope",
        (q, "q"),
        (kv_a, "k"),
        theta=r.theta,
        partial_factor=r.partial_factor,
        rotary_dim=a.qk_rope_head_dim,
        interleave=a.rope_interleave,
        yarn_factor=None if y is None else y.factor,
        yarn_original_max_positions=None if y is None else y.original_max_position_embeddings,
        yarn_beta=None if y is None else (y.beta_fast, y.beta_slow),
        yarn_mscale=None if y is None else y.mscale,
        yarn_mscale_all_dim=None if y is None else y.mscale_all_dim,
        yarn_attention_factor=None if y is None else y.attention_factor,
    )


@_relabelled
def lower_dsa(frame: Frame, d: DsaSpec, label: str = "`D`") -> BlockGraph:
    """``DeepseekV32Attention``: DeepSeek-V3's latent attention (``lower_mla``, unchanged) whose
    attention node also takes the lightning indexer's choice of ``index_topk`` keys: ``wq_b`` on the
    query latent, ``wk`` then the ``k_norm`` LayerNorm on the block's input, RoPE on the first
    ``qk_rope_head_dim`` channels of both (the model's rotary base and scaling, half-split layout),
    ``weights_proj`` for the per-token head weights, then ReLU scores summed over heads, top-k."""
    mla = lower_mla(frame, d.mla, label)
    x = "input" if frame.post_norm else "norm"
    b = _Builder(label, _symbol(LayerKind.DSA), {n.name: n for n in mla.nodes}, list(mla.edges))
    heads, dim = d.index_n_heads, d.index_head_dim
    rank = d.mla.q_lora_rank or 0  # DsaSpec requires it
    q = b.linear("indexer.wq_b", "q_a_layernorm", rank, heads * dim, False)
    k = b.linear("indexer.wk", x, frame.hidden_size, dim, False)
    k_n = b.add("indexer.k_norm", "layernorm", k, size=dim, eps=d.index_norm_eps, bias=True)
    weights = b.linear("indexer.weights_proj", x, frame.hidden_size, heads, False)
    rotary = dict(b.nodes["rope"].attrs) | {"interleave": False} if "rope" in b.nodes else None
    if rotary is not None:
        q = k_n = b.add("indexer.rope", "rope", (q, "q"), (k_n, "k"), **rotary)
    index = b.add(
        "indexer",
        "lightning_indexer",
        (q, "q"),
        (k_n, "k"),
        (weights, "weights"),
        heads=heads,
        head_dim=dim,
        scale=dim**-0.5,
        head_weight_scale=heads**-0.5,
        score_activation="relu",
        top_k=d.index_topk,
    )
    b.edges.append(Edge(index, "sdpa", "index"))
    return b.build()


def _mlp(b: _Builder, x: str, prefix: str, size_in: int, inner: int, act: str, gated: bool, bias: bool) -> str:
    """``down(act(gate(x)) * up(x))`` when gated, ``down(act(up(x)))`` otherwise."""
    up = b.linear(f"{prefix}up_proj", x, size_in, inner, bias)
    if gated:
        gate = b.linear(f"{prefix}gate_proj", x, size_in, inner, bias)
        activated = b.add(f"{prefix}act", "activation", gate, fn=act)
        h = b.add(f"{prefix}gate_mul", "mul", (activated, "gate"), (up, "up"))
    else:
        h = b.add(f"{prefix}act", "activation", up, fn=act)
    return b.linear(f"{prefix}down_proj", h, inner, size_in, bias)


@_relabelled
def lower_mlp(frame: Frame, m: MlpSpec, label: str = "`-`") -> BlockGraph:
    b, x = _open(frame, label, _symbol(LayerKind.MLP))
    out = _mlp(b, x, "", frame.hidden_size, m.intermediate_size, m.activation, m.gated, m.bias)
    return _close(b, frame, out)


@_relabelled
def lower_moe(frame: Frame, e: MoeSpec, label: str = "`E`") -> BlockGraph:
    b, x = _open(frame, label, _symbol(LayerKind.MOE))
    logits = b.linear("router", x, frame.hidden_size, e.num_experts, False)
    topk = b.add(
        "topk",
        "router_topk",
        logits,
        score=e.router,
        correction_bias=e.score_correction_bias,
        n_group=e.n_group,
        topk_group=e.topk_group,
        top_k=e.top_k,
        normalize=e.norm_topk_prob,
        scaling=e.routed_scaling_factor,
    )
    tokens = x
    width = frame.hidden_size
    if e.latent_size is not None:
        tokens = b.linear("latent_in", x, frame.hidden_size, e.latent_size, e.bias)
        width = e.latent_size
    experts = b.add(
        "experts",
        "routed_experts",
        (tokens, "x"),
        (topk, "weights"),
        count=e.num_experts,
        size_in=width,
        intermediate=e.intermediate_size,
        gated=e.expert_gated,
        activation=e.expert_activation,
        bias=False,
    )
    if e.latent_size is not None:
        experts = b.linear("latent_out", experts, e.latent_size, frame.hidden_size, e.bias)
    terms = [experts]
    for i in range(e.shared_experts):
        prefix = "shared_" if e.shared_experts == 1 else f"shared{i}_"
        shared = _mlp(
            b, x, prefix, frame.hidden_size, e.shared_intermediate_size, e.expert_activation, e.shared_gated, e.bias
        )
        if e.shared_expert_gate:
            gate = b.linear(f"{prefix}gate_logit", x, frame.hidden_size, 1, False)
            shared = b.add(f"{prefix}sigmoid_gate", "sigmoid_gate", (shared, "x"), (gate, "gate"))
        terms.append(shared)
    out = terms[0] if len(terms) == 1 else b.add("sum", "sum", *terms)
    return _close(b, frame, out)


@_relabelled
def lower_gated_deltanet(frame: Frame, g: GatedDeltaNetSpec, label: str = "`G`") -> BlockGraph:
    b, x = _open(frame, label, _symbol(LayerKind.GATED_DELTANET))
    key_dim = g.num_k_heads * g.head_k_dim
    value_dim = g.num_v_heads * g.head_v_dim
    gates: tuple[tuple[str, str], ...]
    if g.separate_projections:  # OLMo Hybrid: q, k, v, the gate g, a and b each their own projection
        streams = [
            b.linear(f"{n}_proj", x, frame.hidden_size, size, False)
            for n, size in (("q", key_dim), ("k", key_dim), ("v", value_dim))
        ]
        qkv = b.add("qkv", "concat", *((s, n) for s, n in zip(streams, "qkv", strict=True)))
        z = b.linear("g_proj", x, frame.hidden_size, value_dim, False)
        beta = b.linear("b_proj", x, frame.hidden_size, g.num_v_heads, False)
        alpha = b.linear("a_proj", x, frame.hidden_size, g.num_v_heads, False)
        gates = ((beta, "b"), (alpha, "a"))
    elif g.split_projections:  # Qwen3.5: one projection per stream, no head-grouped interleaving
        qkv = b.linear("in_proj_qkv", x, frame.hidden_size, 2 * key_dim + value_dim, False)
        z = b.linear("in_proj_z", x, frame.hidden_size, value_dim, False)
        beta = b.linear("in_proj_b", x, frame.hidden_size, g.num_v_heads, False)
        alpha = b.linear("in_proj_a", x, frame.hidden_size, g.num_v_heads, False)
        gates = ((beta, "b"), (alpha, "a"))
    else:
        qkv = z = b.linear("in_proj_qkvz", x, frame.hidden_size, 2 * key_dim + 2 * value_dim, False)
        gates = ((b.linear("in_proj_ba", x, frame.hidden_size, 2 * g.num_v_heads, False), "ba"),)
    conv = b.add(
        "conv1d",
        "causal_conv1d",
        (qkv, "qkv"),
        channels=2 * key_dim + value_dim,
        kernel=g.conv_kernel,
        bias=False,
        activation="silu",
    )
    rule = b.add(
        "delta_rule",
        "gated_delta_rule",
        (conv, "qkv"),
        *gates,
        k_heads=g.num_k_heads,
        v_heads=g.num_v_heads,
        k_dim=g.head_k_dim,
        v_dim=g.head_v_dim,
        **({"beta_scale": 2.0} if g.allow_neg_eigval else {}),  # an attribute only when set: Qwen's graphs unchanged
    )
    normed = b.add(
        "gated_norm",
        "gated_rmsnorm",
        (rule, "x"),
        (z, "z"),
        size=g.head_v_dim,
        group_size=g.head_v_dim,
        eps=frame.norm.eps if g.norm_eps is None else g.norm_eps,
        gate_activation="silu",
        norm_before_gate=True,
    )
    out = b.linear("out_proj", normed, value_dim, frame.hidden_size, False)
    return _close(b, frame, out)


@_relabelled
def lower_short_conv(frame: Frame, c: ShortConvSpec, label: str = "`C`") -> BlockGraph:
    """``Lfm2ShortConv``: ``in_proj`` to three slices (transformers' B, C, x; ports ``b``, ``c``, ``x``);
    ``B * x`` through a causal depthwise convolution (no activation); gated by ``C``; ``out_proj``."""
    b, x = _open(frame, label, _symbol(LayerKind.SHORT_CONV))
    h = frame.hidden_size
    proj = b.linear("in_proj", x, h, 3 * h, c.bias)
    bx = b.add("input_gate", "mul", (proj, "b"), (proj, "x"))
    conv = b.add("conv", "causal_conv1d", (bx, "x"), channels=h, kernel=c.conv_kernel, bias=c.bias, activation=None)
    y = b.add("output_gate", "mul", (proj, "c"), (conv, "y"))
    out = b.linear("out_proj", y, h, h, c.bias)
    return _close(b, frame, out)


@_relabelled
def lower_mamba1(frame: Frame, m: Mamba1Spec, label: str = "`S`") -> BlockGraph:
    """``MambaMixer`` / ``JambaMambaMixer``: ``in_proj`` to x and the gate z; x through the causal
    depthwise convolution and ``hidden_act``; ``x_proj`` to the time step, B and C (Jamba: each through
    its RMSNorm, the model's epsilon); ``dt_proj`` (with bias) back to every channel; the per-channel
    selective scan (softplus time step, ``A_log``, skip ``D``) gated by SiLU(z); ``out_proj``."""
    b, x = _open(frame, label, _symbol(LayerKind.MAMBA1))
    h = frame.hidden_size
    inner = m.inner_size(h)
    proj = b.linear("in_proj", x, h, 2 * inner, m.proj_bias)
    conv = b.add(
        "conv1d",
        "causal_conv1d",
        (proj, "x"),
        channels=inner,
        kernel=m.conv_kernel,
        bias=m.conv_bias,
        activation=m.activation,
    )
    xbc = b.linear("x_proj", conv, inner, m.dt_rank + 2 * m.state_size, False)
    streams = {"dt": m.dt_rank, "b": m.state_size, "c": m.state_size}
    src = {name: (xbc, name) for name in streams}  # (node, port): the slices of x_proj's output
    if m.inner_norms:
        for name, size in streams.items():
            normed = b.add(f"{name}_layernorm", "rmsnorm", src[name], size=size, eps=frame.norm.eps)
            src[name] = (normed, name)
    dt = b.add("dt_proj", "linear", src["dt"], size_in=m.dt_rank, size_out=inner, bias=True)
    ssm = b.add(
        "ssm",
        "mamba1_scan",
        (conv, "x"),
        (dt, "dt"),
        src["b"],
        src["c"],
        (proj, "z"),
        channels=inner,
        state=m.state_size,
        dt_softplus=True,
        skip=True,
        gate_activation="silu",
    )
    out = b.linear("out_proj", ssm, inner, h, m.proj_bias)
    return _close(b, frame, out)


@_relabelled
def lower_kda(frame: Frame, k: KdaSpec, label: str = "`K`") -> BlockGraph:
    """``KimiLinearDeltaAttention``: ``q_proj``, ``k_proj``, ``v_proj`` into one causal depthwise
    convolution (the model's activation); the forget gate (low-rank ``f_a_proj`` -> ``f_b_proj``, or
    Ling's ``f_proj``) with ``dt_bias`` and ``A_log`` (Kimi: ``-exp(A) * softplus``; Ling's bounded gate:
    ``lower_bound * sigmoid(exp(A) * .)``); beta from ``b_proj``; the delta rule with a decay per key
    channel on L2-normalised q and k; the per-head RMSNorm gated by ``sigmoid`` of the output gate
    (``g_a_proj`` -> ``g_b_proj``, or Ling's ``g_proj``); ``o_proj``."""
    b, x = _open(frame, label, _symbol(LayerKind.KDA))
    h, inner = frame.hidden_size, k.inner_size
    streams = [b.linear(f"{n}_proj", x, h, inner, False) for n in "qkv"]
    qkv = b.add("qkv", "concat", *((s, n) for s, n in zip(streams, "qkv", strict=True)))
    conv = b.add(
        "conv1d",
        "causal_conv1d",
        (qkv, "qkv"),
        channels=3 * inner,
        kernel=k.conv_kernel,
        bias=False,
        activation=k.activation,
    )

    def gate(name: str) -> str:
        if k.gate_rank is None:
            return b.linear(f"{name}_proj", x, h, inner, False)
        low = b.linear(f"{name}_a_proj", x, h, k.gate_rank, False)
        return b.linear(f"{name}_b_proj", low, k.gate_rank, inner, False)

    decay = b.add(
        "forget_gate",
        "kda_decay",
        (gate("f"), "f"),
        heads=k.num_heads,
        channels=inner,
        lower_bound=k.gate_lower_bound,
    )
    beta = b.linear("b_proj", x, h, k.num_heads, False)
    rule = b.add(
        "delta_rule",
        "kda_delta_rule",
        (conv, "qkv"),
        (decay, "g"),
        (beta, "b"),
        heads=k.num_heads,
        k_dim=k.head_dim,
        v_dim=k.head_dim,
    )
    normed = b.add(
        "o_norm",
        "gated_rmsnorm",
        (rule, "x"),
        (gate("g"), "z"),
        size=k.head_dim,
        group_size=k.head_dim,
        eps=frame.norm.eps,
        gate_activation="sigmoid",
        norm_before_gate=True,
    )
    out = b.linear("o_proj", normed, inner, h, False)
    return _close(b, frame, out)


def lower_opaque(frame: Frame, symbol: str, label: str) -> BlockGraph:
    """A layer kind ModelSpec has no hyper-parameters for (``D``): one opaque node."""
    b, x = _open(frame, label, symbol)
    out = b.add("mixer", str(by_symbol(symbol).kind), x)
    return _close(b, frame, out)


def lower_embedding(vocab_size: int, hidden_size: int, multiplier: float) -> BlockGraph:
    b = _Builder("embedding", "embedding")
    b.add("tokens", "input")
    e = b.add("embedding", "embedding", "tokens", vocab=vocab_size, size=hidden_size)
    b.add("embedding_scale", "scale", e, factor=multiplier)
    return b.build()


def lower_head(frame: Frame, vocab_size: int, tied: bool, logits_scaling: float) -> BlockGraph:
    b = _Builder("output head", "head")
    b.add("input", "input")
    n = b.add(
        "final_norm", "rmsnorm", "input", size=frame.hidden_size, eps=frame.norm.eps, unit_offset=frame.norm.unit_offset
    )
    h = b.add("lm_head", "lm_head", n, size_in=frame.hidden_size, vocab=vocab_size, bias=False, tied=tied)
    b.add("logits_scale", "divide", h, by=logits_scaling)
    return b.build()


def layer_label(index: int, symbol: str) -> str:
    return f"layer {index} `{symbol}`"


Lowering = Callable[[Frame, ModelSpec, str], BlockGraph | None]
"""A kind's ``KindDef.lower``: its block, or None when ``spec`` has no hyper-parameters for it."""


def lower_mamba2_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.mamba is None else lower_mamba(frame, spec.mamba, label)


def lower_attention_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.attention is None else lower_attention(frame, spec.attention, label)


def lower_mla_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.mla is None else lower_mla(frame, spec.mla, label)


def lower_dsa_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.dsa is None else lower_dsa(frame, spec.dsa, label)


def lower_mlp_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    if spec.mlp is None:
        return None
    block = lower_mlp(frame, spec.mlp, label)
    if spec.mup is not None and spec.mlp.gated:  # Falcon-H1: the gate projection and the output scaled
        block = scale_after(block, "gate_proj", "gate_multiplier", spec.mup.mlp[0])
        block = scale_after(block, "down_proj", "down_multiplier", spec.mup.mlp[1])
    return block


def scale_after(block: BlockGraph, src: str, name: str, factor: float | str) -> BlockGraph:
    """``block`` with a ``scale`` node ``name`` (times ``factor``) between node ``src`` and every node
    that read it: how a µP multiplier (Falcon-H1) enters a kind's graph without a second lowering.
    A factor of 1 (every one of a list of factors) adds nothing: the graph stays the kind's own."""
    if all(float(f) == 1.0 for f in str(factor).split(",")):
        return block
    nodes = (*block.nodes, Node(name, "scale", (("factor", _clean(factor)),)))
    edges = (*(replace(e, src=name) if e.src == src else e for e in block.edges), Edge(src, name))
    return BlockGraph(block.label, block.kind, nodes, edges)


def _branch_factors(spec: ModelSpec, kind: str) -> tuple[float, float]:
    """A parallel branch's input and output multipliers (Falcon-H1's µP; 1.0 without them)."""
    mup = spec.mup
    if mup is None:
        return 1.0, 1.0
    if kind == LayerKind.ATTENTION:
        return mup.attention_in, mup.attention_out
    if kind == LayerKind.MAMBA2:
        return mup.ssm_in, mup.ssm_out
    return 1.0, 1.0


def lower_parallel_layer(frame: Frame, spec: ModelSpec, kinds: tuple[str, ...], label: str) -> BlockGraph:
    """A parallel layer (``[*M]``): one pre-norm, each mixer's graph on it (its own norm and residual
    dropped, its nodes prefixed by its symbol), each branch scaled in and out, the branches summed,
    and one residual add: ``FalconH1DecoderLayer.forward``.  The sum is commutative, so the branches
    are laid out in table order, whatever order the pattern wrote them in."""
    b, x = _open(frame, label, "[" + "".join(kind_def(k).symbol for k in kinds) + "]")
    outs: list[str] = []
    for kind in sorted(kinds, key=lambda k: SYMBOL_ORDER[kind_def(k).symbol]):
        symbol = kind_def(kind).symbol
        ref = kind_def(kind).lower
        lowered = None if ref is None else cast(Lowering, behaviour(ref))(replace(frame, post_norm=False), spec, label)
        block = lower_opaque(frame, symbol, label) if lowered is None else lowered
        if kind == LayerKind.ATTENTION and spec.mup is not None:
            block = scale_after(block, "k_proj", "key_multiplier", spec.mup.key)
        if kind == LayerKind.MAMBA2 and spec.mup is not None:
            block = scale_after(block, "in_proj", "mup_vector", ",".join(str(f) for f in spec.mup.ssm))
        factor_in, factor_out = _branch_factors(spec, kind)
        entry = x if factor_in == 1.0 else b.add(f"{symbol}.in_scale", "scale", x, factor=factor_in)
        rename = {"norm": entry}
        branch_out = ""
        for node in block.nodes:
            if node.name not in ("input", "norm", "residual"):
                rename[node.name] = f"{symbol}.{node.name}"
                b.nodes[rename[node.name]] = replace(node, name=rename[node.name])
        for edge in block.edges:
            if edge.dst == "norm":  # the shared pre-norm stands for the branch's own
                continue
            if edge.dst == "residual":
                if edge.port == "branch":
                    branch_out = rename[edge.src]
                continue
            b.edges.append(Edge(rename[edge.src], rename[edge.dst], edge.port))
        scaled = (
            branch_out if factor_out == 1.0 else b.add(f"{symbol}.out_scale", "scale", branch_out, factor=factor_out)
        )
        outs.append(scaled)
    total = b.add("sum", "add", *((out, f"branch{i}") for i, out in enumerate(outs)))
    return _close(b, frame, total)


def lower_moe_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.moe is None else lower_moe(frame, spec.moe, label)


def lower_gated_deltanet_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.gated_deltanet is None else lower_gated_deltanet(frame, spec.gated_deltanet, label)


def lower_kda_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.kda is None else lower_kda(frame, spec.kda, label)


def lower_short_conv_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.short_conv is None else lower_short_conv(frame, spec.short_conv, label)


@_relabelled
def lower_lightning(frame: Frame, a: LightningSpec, label: str = "`L`") -> BlockGraph:
    """``MiniMaxLightningAttention``: ``qkv_proj`` through the activation, the decayed linear attention
    (fixed ALiBi-style slopes per head, scaled down with depth), the RMSNorm over all heads, the
    ``sigmoid(output_gate(x))`` gate, ``out_proj``.  ``block_size`` is an attribute: it does not change
    the function but sizes the stored decay buffers, so two sizes are two weight layouts."""
    b, x = _open(frame, label, _symbol(LayerKind.LIGHTNING))
    h, inner = frame.hidden_size, a.num_heads * a.head_dim
    qkv = b.linear("qkv_proj", x, h, 3 * inner, False)
    act = b.add("qkv_act", "activation", qkv, fn=a.activation)
    attn = b.add(
        "lightning",
        "decayed_linear_attention",
        (act, "qkv"),
        heads=a.num_heads,
        head_dim=a.head_dim,
        decay="alibi_slopes_by_depth",
        block_size=a.block_size,
    )
    normed = b.add("norm_out", "rmsnorm", attn, size=inner, eps=a.norm_eps, unit_offset=False)
    gate = b.linear("output_gate", x, h, inner, False)
    gated = b.add("gate", "sigmoid_gate", (normed, "x"), (gate, "gate"))
    out = b.linear("out_proj", gated, inner, h, False)
    return _close(b, frame, out)


def lower_lightning_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.lightning is None else lower_lightning(frame, spec.lightning, label)


def scaled_frame(frame: Frame, residual: ScaledResidualSpec, kind: str) -> Frame:
    """The frame of a ``kind`` layer under MiniMax's weighted residuals (``ScaledResidualSpec``)."""
    alpha, beta = residual.factors(kind)
    return replace(frame, residual_alpha=alpha, residual_multiplier=beta, normed_residual=residual.normed)


def lower_mamba1_layer(frame: Frame, spec: ModelSpec, label: str) -> BlockGraph | None:
    return None if spec.mamba1 is None else lower_mamba1(frame, spec.mamba1, label)


def lower_layer(frame: Frame, spec: ModelSpec, index: int, symbol: str) -> BlockGraph:
    """The block of main-stack layer ``index`` of ``spec``: its kind's ``KindDef.lower``, or one
    opaque node when the kind has no lowering or ``spec`` no hyper-parameters for it."""
    label = layer_label(index, symbol)
    parallel = spec.pattern.layers[index].parallel if index < spec.pattern.num_layers else ()
    if parallel and symbol == spec.pattern.flat[index]:
        kinds = (by_symbol(symbol).kind, *parallel)
        spelled = spec.pattern.layers[index].spelling
        return lower_parallel_layer(frame, spec, kinds, layer_label(index, spelled))
    ref = by_symbol(symbol).lower
    block = None if ref is None else cast(Lowering, behaviour(ref))(frame, spec, label)
    return lower_opaque(frame, symbol, label) if block is None else block


def spec_frame(spec: ModelSpec) -> Frame:
    return Frame(spec.hidden_size, spec.norm, spec.residual_multiplier)


def _layer_frame(frame: Frame, spec: ModelSpec, index: int) -> Frame:
    """A post-norm attention layer (``AttentionSpec.post_norm``, OLMo) post-normalises the FFN that
    follows it in the pattern too: they are one ``OlmoHybridAttentionDecoderLayer``."""
    if spec.scaled_residual is not None:
        return scaled_frame(frame, spec.scaled_residual, by_symbol(spec.pattern.flat[index]).kind)
    a, flat = spec.attention, spec.pattern.flat
    if a is None or not a.post_norm or index == 0 or by_symbol(flat[index]).role.mixes_tokens:
        return frame
    return replace(frame, post_norm=True) if by_symbol(flat[index - 1]).kind == LayerKind.ATTENTION else frame


def lower_spec(spec: ModelSpec) -> list[BlockGraph]:
    """``[embedding, layer 0, ..., layer n-1, output head]`` (the main stack; MTP is not lowered)."""
    frame = spec_frame(spec)
    blocks = [lower_embedding(spec.vocab_size, spec.hidden_size, spec.embedding_multiplier)]
    blocks.extend(
        lower_layer(_layer_frame(frame, spec, layer.index), spec, layer.index, layer.symbol)
        for layer in spec.pattern.layers
    )
    head = lower_head(frame, spec.vocab_size, spec.tie_embeddings, spec.logits_scaling)
    if spec.mup is not None:  # Falcon-H1: the logits times lm_head_multiplier
        head = scale_after(head, "lm_head", "lm_head_multiplier", spec.mup.lm_head)
    blocks.append(head)
    return blocks
