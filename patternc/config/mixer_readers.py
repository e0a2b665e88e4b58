"""The sequence-mixer readers: one per layer kind (Mamba2, attention, gated DeltaNet, latent attention),
driven by key names.

A family spells the same hyper-parameter differently (Nemotron-H's ``mamba_num_heads`` is Bamba's
``mamba_n_heads`` and Mamba2's ``num_heads``), so each reader takes the family's key names as data
(``MambaKeys``, ``AttentionKeys``, ``DeltaNetKeys``) and reads, checks and reports through them; a
diagnostic names the key the config spelled.  What differs in meaning, not only in spelling, is a
field of the key set too (where a Mamba mixer's inner size comes from, whether attention has a
bias), so that a family module holds only data and the facts that are its own.

Every reader reads its keys in one fixed order: the order of the ``P911`` note that lists the
defaults used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from patternc.config.readers import Ctx, read_heads, time_step_limit
from patternc.model import AttentionSpec, GatedDeltaNetSpec, MambaSpec, MlaSpec, RopeSpec, YarnSpec

HEADS_PER_GROUP = "each group of B/C serves a whole number of heads"


@dataclass(frozen=True, slots=True)
class MambaKeys:
    """A family's names for the Mamba2 mixer's hyper-parameters, and how it sizes the mixer."""

    num_heads: str
    head_dim: str
    n_groups: str
    state_size: str
    conv_kernel: str
    expand: str
    chunk_size: str
    conv_bias: str
    proj_bias: str
    activation: str
    time_step: str
    """``time_step_limit`` (a ``[low, high]`` clamp), or the key of the lower bound alone."""
    inner_from: Literal["heads", "expand", "expand_nullable"]
    """``heads``: the inner size is heads x head_dim, and ``expand`` x hidden_size that disagrees is
    a warning (Nemotron-H); ``expand``: the inner size is ``expand`` x hidden_size and heads x
    head_dim must equal it (Mamba2); ``expand_nullable``: the same, but every size may be null
    (an error where a Mamba layer needs it) and the head size may be ``"auto"`` (Bamba, Granite)."""
    unused: tuple[str, ...] = ()
    """The keys named by a P913 note when the model has no Mamba layer."""

    @property
    def floor_only(self) -> bool:
        return self.time_step != "time_step_limit"


def read_mamba(ctx: Ctx[Any], keys: MambaKeys, hidden: int) -> MambaSpec | None:
    """The Mamba2 mixer, or None when its sizes are inconsistent (each problem is a diagnostic)."""
    if keys.inner_from == "heads":
        return _by_heads(ctx, keys, hidden)
    if keys.inner_from == "expand":
        return _by_expand(ctx, keys, hidden)
    return _by_expand_nullable(ctx, keys, hidden)


def _spec(ctx: Ctx[Any], keys: MambaKeys, heads: int, head_dim: int, groups: int, inner: int) -> MambaSpec:
    """The mixer once its sizes are consistent: the remaining keys, in reading order."""
    return MambaSpec(
        num_heads=heads,
        head_dim=head_dim,
        state_size=ctx.get(keys.state_size),
        n_groups=groups,
        conv_kernel=ctx.get(keys.conv_kernel),
        chunk_size=ctx.get(keys.chunk_size),
        conv_bias=ctx.get(keys.conv_bias),
        proj_bias=ctx.get(keys.proj_bias),
        norm_group_size=inner // groups,
        activation=ctx.get(keys.activation),
        time_step_limit=(
            (ctx.get(keys.time_step), float("inf")) if keys.floor_only else time_step_limit(ctx.get(keys.time_step))
        ),
    )


def _by_heads(ctx: Ctx[Any], keys: MambaKeys, hidden: int) -> MambaSpec | None:
    heads, head_dim = ctx.get(keys.num_heads), ctx.get(keys.head_dim)
    groups, expand = ctx.get(keys.n_groups), ctx.get(keys.expand)
    inner = heads * head_dim
    ok = ctx.divisible(keys.num_heads, keys.n_groups, heads, groups, HEADS_PER_GROUP)
    if inner != expand * hidden:
        ctx.add(
            "P909",
            f"{ctx.q(keys.num_heads)} x {ctx.q(keys.head_dim)} = {inner}, but "
            f"{ctx.q(keys.expand)} x {ctx.q('hidden_size')} = {expand * hidden}; transformers uses {inner}",
            keys.num_heads,
            label=f"Mamba inner size {inner} used",
            secondary=ctx.secondary(keys.expand),
        )
    return _spec(ctx, keys, heads, head_dim, groups, inner) if ok else None


def _by_expand(ctx: Ctx[Any], keys: MambaKeys, hidden: int) -> MambaSpec | None:
    expand = ctx.get(keys.expand)
    heads, head_dim, groups = ctx.get(keys.num_heads), ctx.get(keys.head_dim), ctx.get(keys.n_groups)
    inner = expand * hidden
    ok = True
    if heads * head_dim != inner:
        ctx.add(
            "P908",
            f"{ctx.q(keys.num_heads)} x {ctx.q(keys.head_dim)} = {heads * head_dim}, but {ctx.q('hidden_size')} x "
            f"{ctx.q(keys.expand)} = {inner}; transformers rejects this config",
            keys.num_heads,
            secondary=ctx.secondary(keys.head_dim, keys.expand),
        )
        ok = False
    ok = ctx.divisible(keys.num_heads, keys.n_groups, heads, groups, HEADS_PER_GROUP) and ok
    why = f"the gated RMSNorm splits {keys.expand} x hidden_size into {keys.n_groups} groups"
    ok = ctx.divisible(keys.expand, keys.n_groups, inner, groups, why) and ok
    return _spec(ctx, keys, heads, head_dim, groups, inner) if ok else None


def _by_expand_nullable(ctx: Ctx[Any], keys: MambaKeys, hidden: int) -> MambaSpec | None:
    """Bamba / GraniteMoeHybrid (``modeling_bamba.py:596-644``)."""
    what = "a Mamba layer"
    heads, head_dim = ctx.need(keys.num_heads, what), ctx.need(keys.head_dim, what)
    groups, state = ctx.need(keys.n_groups, what), ctx.need(keys.state_size, what)
    conv, expand = ctx.need(keys.conv_kernel, what), ctx.need(keys.expand, what)
    chunk = ctx.need(keys.chunk_size, what)
    conv_bias, proj_bias = ctx.get(keys.conv_bias), ctx.get(keys.proj_bias)
    limit, activation = ctx.get(keys.time_step), ctx.get(keys.activation)
    if None in (heads, head_dim, groups, state, conv, expand, chunk):
        return None
    inner = expand * hidden
    ok = ctx.divisible(
        keys.expand, keys.num_heads, inner, heads, f"{keys.expand} * hidden_size is split into {keys.num_heads} heads"
    )
    if head_dim == "auto":
        head_dim = inner // heads
    elif ok and head_dim * heads != inner:
        ctx.add(
            "P908",
            f"{ctx.q(keys.head_dim)} x {ctx.q(keys.num_heads)} = {head_dim * heads}, but "
            f"{keys.expand} x hidden_size = {inner}; transformers rejects this config",
            keys.head_dim,
            label="head size mismatch",
            secondary=ctx.secondary(keys.num_heads, keys.expand),
        )
        ok = False
    ok = ctx.divisible(keys.num_heads, keys.n_groups, heads, groups, HEADS_PER_GROUP) and ok
    if not ok or head_dim == 0:
        return None
    return MambaSpec(
        num_heads=heads,
        head_dim=head_dim,
        state_size=state,
        n_groups=groups,
        conv_kernel=conv,
        chunk_size=chunk,
        conv_bias=bool(conv_bias) if conv_bias is not None else True,
        proj_bias=bool(proj_bias),
        norm_group_size=inner // groups,
        activation=activation,
        time_step_limit=time_step_limit(limit),
    )


RopeReader = Callable[[Ctx[Any]], RopeSpec | None]
"""A family's RoPE rule: the keys it reads (``read_rope`` with its defaults), or a P913 note and None."""


@dataclass(frozen=True, slots=True)
class AttentionKeys:
    """A family's names for the attention layer's hyper-parameters, and what its attention builds."""

    rope: RopeReader
    heads: str = "num_attention_heads"
    kv_heads: str = "num_key_value_heads"
    head_dim: str = "head_dim"
    head_dim_derived: bool = False
    """True when ``head_dim`` is not a field of the transformers class: hidden_size // heads unless
    the config sets it (Bamba, Granite); the layer is left out when that comes to 0."""
    bias: str | None = "attention_bias"
    """The key that gives q/k/v/o their bias, or None when the family builds them without one."""
    scale: str | None = None
    """The key of the attention multiplier (Granite), or None for 1/sqrt(head_dim)."""
    rope_first: bool = False
    """Whether the RoPE keys are read before the head size is known to be non-zero (Granite)."""
    qk_norm: bool = False
    qk_norm_whole: bool = False
    """Whether the q/k norms run over the whole projections, not per head (OLMo)."""
    post_norm: bool = False
    """Whether the attention layer normalises outputs instead of inputs (OLMo: ``AttentionSpec.post_norm``)."""
    output_gate: bool = False
    unused: tuple[str, ...] = ()
    """The keys named by a P913 note when the model has no attention layer."""


def read_attention(ctx: Ctx[Any], keys: AttentionKeys, hidden: int) -> AttentionSpec | None:
    """The attention layer, or None when its head size comes to 0."""
    heads, kv = read_heads(ctx, keys.heads, keys.kv_heads)
    bias = ctx.get(keys.bias) if keys.bias is not None else False
    if keys.head_dim_derived:
        given = getattr(ctx.model, keys.head_dim)
        head_dim = given if given is not None else hidden // heads
    else:
        head_dim = ctx.get(keys.head_dim)
    rope = keys.rope(ctx) if keys.rope_first else None
    if head_dim <= 0:
        return None
    if not keys.rope_first:
        rope = keys.rope(ctx)
    return AttentionSpec(
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        qkv_bias=bias,
        out_bias=bias,
        rope=rope,
        scale=float(ctx.get(keys.scale) or 1.0) if keys.scale is not None else None,
        qk_norm=keys.qk_norm,
        output_gate=keys.output_gate,
        qk_norm_whole=keys.qk_norm_whole,
        post_norm=keys.post_norm,
    )


@dataclass(frozen=True, slots=True)
class DeltaNetKeys:
    """A family's names for the gated DeltaNet mixer's hyper-parameters."""

    k_heads: str
    v_heads: str
    k_head_dim: str
    v_head_dim: str
    conv_kernel: str
    derived: Callable[[Ctx[Any], str], int] | None = None
    """The family's value for a size key the config leaves null (OLMo Hybrid derives the heads and
    head sizes from the attention's, in ``OlmoHybridConfig.__post_init__``); None: no key is nullable."""
    allow_neg_eigval: str | None = None
    """The key that doubles beta (``linear_allow_neg_eigval``), or None when beta is ``sigmoid(b)``."""
    separate_projections: bool = False
    """Whether q, k, v, the gate, a and b are separate projections (OLMo Hybrid)."""
    norm_eps: float | None = None
    """The gated output norm's fixed epsilon, or None when it is the model's ``rms_norm_eps``."""


def read_gated_deltanet(ctx: Ctx[Any], keys: DeltaNetKeys) -> GatedDeltaNetSpec | None:
    """The gated DeltaNet mixer, or None when the value heads do not divide among the key heads."""

    def size(name: str) -> int:
        value = ctx.get(name)
        return keys.derived(ctx, name) if value is None and keys.derived is not None else value

    k_heads, v_heads = size(keys.k_heads), size(keys.v_heads)
    why = "each key head serves a whole number of value heads"
    if not ctx.divisible(keys.v_heads, keys.k_heads, v_heads, k_heads, why):
        return None
    return GatedDeltaNetSpec(
        num_k_heads=k_heads,
        num_v_heads=v_heads,
        head_k_dim=size(keys.k_head_dim),
        head_v_dim=size(keys.v_head_dim),
        conv_kernel=ctx.get(keys.conv_kernel),
        separate_projections=keys.separate_projections,
        allow_neg_eigval=bool(ctx.get(keys.allow_neg_eigval)) if keys.allow_neg_eigval is not None else False,
        norm_eps=keys.norm_eps,
    )


@dataclass(frozen=True, slots=True)
class MlaKeys:
    """A family's names for multi-head latent attention's hyper-parameters (DeepSeek's by default)."""

    heads: str = "num_attention_heads"
    q_lora_rank: str = "q_lora_rank"
    """Nullable: null builds one full-rank ``q_proj``."""
    kv_lora_rank: str = "kv_lora_rank"
    qk_nope_head_dim: str = "qk_nope_head_dim"
    qk_rope_head_dim: str = "qk_rope_head_dim"
    v_head_dim: str = "v_head_dim"
    bias: str | None = "attention_bias"
    rope_interleave: str | None = "rope_interleave"
    """The key of the interleaved rotary layout, or None when the family fixes it (``interleaved``)."""
    interleaved: bool = False
    """The rotary layout when ``rope_interleave`` is None: Ling's ``BailingHybridAttention`` always
    de-interleaves (``apply_rotary_pos_emb_interleave``), DeepSeek's follows its key."""
    rotary: bool = True
    """False: the family rotates nothing (Kimi Linear's NoPE MLA), so no RoPE key is read."""
    output_gate: bool = False
    """Ling's head-wise sigmoid output gate (``g_proj``)."""


YARN_FIELDS = (
    "original_max_position_embeddings",
    "beta_fast",
    "beta_slow",
    "mscale",
    "mscale_all_dim",
    "attention_factor",
)
"""The YaRN parameters transformers reads besides ``factor`` (``modeling_rope_utils._compute_yarn_parameters``)."""


def read_scaled_rope(ctx: Ctx[Any]) -> tuple[RopeSpec, YarnSpec | None] | None:
    """transformers' rope standardisation with YaRN allowed (DeepSeek-V3's released configs use it):
    the base and, for ``rope_type: yarn`` (or the legacy ``type``), its factor and parameters.  Any
    other scaling is P914: the model would rotate differently from what patternc can say."""
    field = "rope_parameters" if ctx.has("rope_parameters") else "rope_scaling"
    params = dict(getattr(ctx.model, field, None) or {})
    if field == "rope_parameters":
        ctx.get("rope_parameters")
    rope_type = params.get("rope_type", params.get("type", "default"))
    params["rope_type"] = "default"  # the base alone, through the shared reader
    yarn = None
    if rope_type == "yarn":
        factor = params.get("factor")
        values = {name: params.get(name) for name in YARN_FIELDS if params.get(name) is not None}
        try:
            yarn = YarnSpec(factor=factor, **values)
        except ValueError:
            ctx.add(
                "P906",
                f"{ctx.q(field)} asks for YaRN with factor {factor!r} and {values!r}: the factor must be a positive "
                "number, the betas positive and the original context a positive integer",
                field,
            )
            return None
    elif rope_type != "default":
        ctx.add(
            "P914",
            f"{ctx.q(field)} asks for RoPE type {rope_type!r}, which patternc cannot express",
            field,
            help="patternc holds plain RoPE and YaRN for multi-head latent attention",
        )
        return None
    theta = params.get("rope_theta", getattr(ctx.model, "rope_theta", None))
    if theta is None:
        theta = 10000.0
        ctx.defaults_used[ctx.prefix + "rope_parameters.rope_theta"] = theta
    if not (isinstance(theta, int | float) and not isinstance(theta, bool) and math.isfinite(theta) and theta > 0):
        ctx.add("P906", f"`{ctx.prefix}rope_theta` is {theta!r}: the RoPE base must be a positive number", field)
        return None
    return RopeSpec(theta=float(theta)), yarn


def read_mla(ctx: Ctx[Any], keys: MlaKeys) -> MlaSpec | None:
    """Multi-head latent attention (``DeepseekV3Attention``), or None when a size is null or its RoPE
    is one patternc cannot express (each problem is a diagnostic)."""
    heads = ctx.get(keys.heads)
    q_rank = ctx.get(keys.q_lora_rank)
    kv_rank = ctx.get(keys.kv_lora_rank)
    nope = ctx.get(keys.qk_nope_head_dim)
    rope_dim = ctx.get(keys.qk_rope_head_dim)
    v_dim = ctx.need(keys.v_head_dim, "multi-head latent attention")
    bias = ctx.get(keys.bias) if keys.bias is not None else False
    interleave = ctx.get(keys.rope_interleave) if keys.rope_interleave is not None else keys.interleaved
    if not keys.rotary:
        if v_dim is None:
            return None
        return MlaSpec(
            num_heads=heads,
            q_lora_rank=q_rank,
            kv_lora_rank=kv_rank,
            qk_nope_head_dim=nope,
            qk_rope_head_dim=rope_dim,
            v_head_dim=v_dim,
            bias=bias,
            rope=None,
            rope_interleave=False,
            output_gate=keys.output_gate,
        )
    if rope_dim % 2:
        ctx.add(
            "P906",
            f"{ctx.q(keys.qk_rope_head_dim)} is {rope_dim}: RoPE rotates channel pairs, so it must be even",
            keys.qk_rope_head_dim,
            label="odd",
        )
        return None
    rope = read_scaled_rope(ctx)
    if v_dim is None or rope is None:
        return None
    return MlaSpec(
        num_heads=heads,
        q_lora_rank=q_rank,
        kv_lora_rank=kv_rank,
        qk_nope_head_dim=nope,
        qk_rope_head_dim=rope_dim,
        v_head_dim=v_dim,
        bias=bias,
        rope=rope[0],
        rope_scaling=rope[1],
        rope_interleave=bool(interleave),
        output_gate=keys.output_gate,
    )
