"""The ``minimax`` family: transformers' ``MiniMaxForCausalLM`` (MiniMax-Text-01, MiniMax-M1).

Every decoder layer is lightning attention (``L``: linear attention with a fixed decay per head) or
grouped-query softmax attention with RoPE over the whole head (``*``), then a mixture of experts
(``E``: softmax router, top-k renormalised, SwiGLU experts, no shared expert).  The residuals are
MiniMax's own (``ScaledResidualSpec``): each sub-block adds ``alpha · norm(x) + beta · f(norm(x))``,
the residual taken *after* the norm, with an (alpha, beta) pair per sub-block type.

Two spellings.  transformers' (``model_type: minimax``, the ``-hf`` checkpoints): ``layer_types``
(``linear_attention`` / ``full_attention``), ``full_attn_alpha_factor``, ``linear_attn_*``,
``mlp_*``.  The released remote-code configs (``model_type: minimax_text_01`` or ``minimax_m1``,
``MiniMaxText01ForCausalLM`` / ``MiniMaxM1ForCausalLM``): ``attn_type_list`` (``0`` lightning, ``1``
softmax), ``layernorm_full_attention_alpha`` …, ``postnorm`` (true: the residual after the norm, the
only form transformers builds) and ``rotary_dim`` (RoPE over the first ``rotary_dim`` channels of a
head: transformers' port rotates the whole head, so such a model is not exactly ``minimax``, and the
canonical map says so).  A remote-only key in a ``minimax`` config is ignored by transformers: P916
when it would change the model.  Input model, key names, layout reader and expresser (no target
profile: ``build`` only).
"""

from __future__ import annotations

from typing import Any

from patternc.canonical.archs import (
    Config,
    Expression,
    Finding,
    as_float,
    as_int,
    as_str,
    common_fields,
    kind_findings,
    model_blocks,
    mtp_findings,
    pair_layers,
    paired_blocks,
)
from patternc.canonical.graph import (
    BlockGraph,
    Frame,
    layer_label,
    lower_attention,
    lower_lightning,
    lower_moe,
    scaled_frame,
)
from patternc.config.mixer_readers import AttentionKeys, read_attention
from patternc.config.models import Activation, ConfigModel, Eps, NonNegFloat, NonNegInt, PosFloat, PosInt, TokenId
from patternc.config.readers import Built, Ctx, check_top_k, list_symbols, read_rope
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    AttentionSpec,
    Finite,
    LightningSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
    RopeSpec,
    ScaledResidualSpec,
)

KINDS = (LayerKind.LIGHTNING, LayerKind.ATTENTION, LayerKind.MOE)
"""The layer kinds the family builds."""
LIGHTNING_S, ATTENTION_S, MOE_S = (symbol_of(kind) for kind in KINDS)

DEFAULT_THETA = 1_000_000.0
"""``MiniMaxConfig.default_theta``: the RoPE base when the config gives none."""
LIGHTNING_NORM_EPS = 1e-6
"""``MiniMaxLightningAttention.norm`` is ``MiniMaxRMSNorm(heads * head_dim)``: the class default epsilon."""
RELEASED_MODEL_TYPES = ("minimax_text_01", "minimax_m1")
"""The ``model_type`` of MiniMax's released remote-code configs, read with the remote code's meaning."""

FACTORS = (
    ("full_attn_alpha_factor", "layernorm_full_attention_alpha", "attention_alpha"),
    ("full_attn_beta_factor", "layernorm_full_attention_beta", "attention_beta"),
    ("linear_attn_alpha_factor", "layernorm_linear_attention_alpha", "lightning_alpha"),
    ("linear_attn_beta_factor", "layernorm_linear_attention_beta", "lightning_beta"),
    ("mlp_alpha_factor", "layernorm_mlp_alpha", "ffn_alpha"),
    ("mlp_beta_factor", "layernorm_mlp_beta", "ffn_beta"),
)
"""transformers' residual factor, the remote code's name for it, the ``ScaledResidualSpec`` field."""

REMOTE_ONLY = (
    "attn_type_list",
    "postnorm",
    "rotary_dim",
    "shared_intermediate_size",
    "shared_moe_mode",
    *(remote for _, remote, _ in FACTORS),
)
"""Keys only the remote code reads: in a ``minimax`` config transformers ignores them."""


class MiniMaxInput(ConfigModel):
    """``model_type: minimax`` (transformers ``MiniMaxConfig``), and the released ``minimax_text_01`` /
    ``minimax_m1`` configs (their remote-code keys below the transformers fields)."""

    vocab_size: PosInt = 32000
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 14336
    """One routed expert's width (``MiniMaxExperts``)."""
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = 8
    """None: as many as ``num_attention_heads`` (``MiniMaxConfig.__post_init__``)."""
    head_dim: PosInt | None = None
    """None: ``hidden_size // num_attention_heads``, for both attention kinds."""
    hidden_act: Activation = "silu"
    """The experts' activation and the lightning layers' activation of q, k and v."""
    max_position_embeddings: PosInt = 4096 * 32
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-5
    use_cache: bool = True
    pad_token_id: TokenId = None
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    tie_word_embeddings: bool = False
    sliding_window: PosInt | None = None
    """The softmax layers' window (``MiniMaxAttention`` passes it to the attention function)."""
    attention_dropout: NonNegFloat = 0.0
    num_experts_per_tok: PosInt = 2
    num_local_experts: PosInt = 8
    output_router_logits: bool = False
    router_aux_loss_coef: float = 0.001
    router_jitter_noise: NonNegFloat = 0.0
    rope_parameters: dict[str, Any] | None = None
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta`` (the released configs use it)."""
    layer_types: list[str] | None = None
    """``linear_attention`` or ``full_attention`` per layer; None: transformers alternates, softmax first."""
    block_size: PosInt = 256
    full_attn_alpha_factor: Finite = 1
    full_attn_beta_factor: Finite = 1
    linear_attn_alpha_factor: Finite = 1
    linear_attn_beta_factor: Finite = 1
    mlp_alpha_factor: Finite = 1
    mlp_beta_factor: Finite = 1
    # -- the released remote-code configs' keys (transformers' class ignores them) ----------------
    attn_type_list: list[int] | None = None
    """``0`` lightning, ``1`` softmax attention, per layer (``MiniMaxText01DecoderLayer``)."""
    postnorm: bool = False
    """The remote code's default; the released configs say true (the residual after the norm)."""
    rotary_dim: PosInt | None = None
    """RoPE channels per head in the remote code; None: the whole head."""
    shared_intermediate_size: NonNegInt | list[NonNegInt] = 0
    """A shared expert's width (0: none; the released configs have 0)."""
    shared_moe_mode: str = "softmax"
    layernorm_full_attention_alpha: Finite = 1
    layernorm_full_attention_beta: Finite = 1
    layernorm_linear_attention_alpha: Finite = 1
    layernorm_linear_attention_beta: Finite = 1
    layernorm_mlp_alpha: Finite = 1
    layernorm_mlp_beta: Finite = 1


LAYER_TYPES = {"linear_attention": LayerKind.LIGHTNING, "full_attention": LayerKind.ATTENTION}
"""``layer_types`` entries and the mixer each builds: ``MiniMaxModel.forward`` masks by exactly these
two names (another name would build softmax attention and fail at the first forward)."""
ATTN_TYPES = {0: LayerKind.LIGHTNING, 1: LayerKind.ATTENTION}
"""The remote code's ``attn_type_list`` codes."""


def _remote(ctx: Ctx[MiniMaxInput]) -> bool:
    return ctx.model.model_type in RELEASED_MODEL_TYPES


def default_layer_types(n: int) -> list[str]:
    """``MiniMaxConfig.__post_init__``: softmax attention at even indices, lightning at odd ones."""
    return ["full_attention" if (i + 1) % 2 else "linear_attention" for i in range(n)]


def _symbols_of_codes(ctx: Ctx[MiniMaxInput], codes: list[int]) -> str | None:
    bad = [i for i, code in enumerate(codes) if code not in ATTN_TYPES]
    if bad:
        ctx.add(
            "P014",
            f"`{ctx.prefix}attn_type_list[{bad[0]}]` is {codes[bad[0]]!r}, which is not an attention type",
            "attn_type_list",
            help="MiniMax's codes are 0 (lightning attention) and 1 (softmax attention)",
        )
        return None
    return "".join(symbol_of(ATTN_TYPES[code]) for code in codes)


def _length(ctx: Ctx[MiniMaxInput], field: str, mixers: str | None, n: int) -> str | None:
    if mixers is not None and len(mixers) != n:
        ctx.add(
            "P908",
            f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q(field)} has {len(mixers)} entries",
            "num_hidden_layers" if ctx.has("num_hidden_layers") else field,
            secondary=ctx.secondary(field),
        )
        return None
    return mixers


def _layout(ctx: Ctx[MiniMaxInput], n: int) -> tuple[str | None, str]:
    """The mixers: ``attn_type_list`` in a released config, ``layer_types`` in transformers' (the
    other one, when it disagrees, is ignored by that code: P916)."""
    m = ctx.model
    names = {name: symbol_of(kind) for name, kind in LAYER_TYPES.items()}
    from_types = list_symbols(ctx, "layer_types", m.layer_types, names) if m.layer_types is not None else None
    from_codes = _symbols_of_codes(ctx, m.attn_type_list) if m.attn_type_list is not None else None
    if _remote(ctx):
        used, ignored, value = "attn_type_list", "layer_types", from_codes
        other = from_types
    else:
        used, ignored, value = "layer_types", "attn_type_list", from_types
        other = from_codes
        if m.layer_types is None:  # transformers builds its default alternation
            value = "".join(names[t] for t in default_layer_types(n))
            ctx.defaults_used[ctx.key("layer_types")] = default_layer_types(n)
    if value is None and _remote(ctx) and not ctx.has(used) and ctx.has(ignored):
        ctx.add(
            "P917",
            f"the `{m.model_type}` config has no `{ctx.prefix}attn_type_list`, the only layer list its remote "
            "code reads (`layer_types` is transformers' spelling, for `model_type: minimax`)",
            ignored,
            label="not read by the remote code",
        )
    if ctx.has(ignored) and other is not None and other != value:
        ctx.add(
            "P916",
            f"{ctx.q(ignored)} disagrees with {'the default ' if not ctx.has(used) else ''}{ctx.q(used)}, "
            f"and {'the remote code' if _remote(ctx) else 'transformers'} reads only `{used}`",
            ignored,
            label="ignored",
        )
    return _length(ctx, used, value, n), used


def _factor(ctx: Ctx[MiniMaxInput], ours: str, remote: str) -> float:
    """A residual factor from the key the reading code uses; the other spelling is ignored there."""
    used, ignored = (remote, ours) if _remote(ctx) else (ours, remote)
    value = float(ctx.get(used))
    if ctx.has(ignored) and float(getattr(ctx.model, ignored)) != value:
        ctx.add(
            "P916",
            f"{ctx.q(ignored)} is {getattr(ctx.model, ignored)!r}, but "
            f"{'the remote code' if _remote(ctx) else 'transformers'} reads {ctx.q(used)} ({value!r})",
            ignored,
            label="ignored",
        )
    return value


def _residual(ctx: Ctx[MiniMaxInput]) -> ScaledResidualSpec:
    factors = {field: _factor(ctx, ours, remote) for ours, remote, field in FACTORS}
    normed = bool(ctx.get("postnorm")) if _remote(ctx) else True
    return ScaledResidualSpec(normed=normed, **factors)


def _rope(ctx: Ctx[MiniMaxInput], head_dim: int) -> RopeSpec | None:
    """Plain RoPE, base 1e6 by default; transformers rotates the whole head (its
    ``compute_default_rope_parameters`` ignores a partial factor), the remote code ``rotary_dim`` channels."""
    params = ctx.model.rope_parameters or ctx.model.rope_scaling or {}
    given = params.get("rope_theta") is not None or ctx.model.rope_theta is not None
    rope = read_rope(ctx, 1.0, top_level_partial=False, uses_partial=False)
    if rope is None:
        return None
    if not given:
        ctx.defaults_used[ctx.prefix + "rope_parameters.rope_theta"] = DEFAULT_THETA
        rope = RopeSpec(theta=DEFAULT_THETA)
    rotary = ctx.model.rotary_dim
    if rotary is None or rotary == head_dim:
        return rope
    if not _remote(ctx):
        ctx.add(
            "P916",
            f"{ctx.q('rotary_dim')} is {rotary}, but transformers' `MiniMaxAttention` rotates the whole head "
            f"({head_dim} channels) and ignores this key",
            "rotary_dim",
            label="ignored by transformers",
        )
        return rope
    if rotary > head_dim or rotary % 2:
        ctx.add(
            "P906",
            f"{ctx.q('rotary_dim')} is {rotary}: it must be even and at most the head size {head_dim}",
            "rotary_dim",
        )
        return None
    ctx.read.add("rotary_dim")
    return rope.model_copy(update={"partial_factor": rotary / head_dim})


def _remote_keys_ignored(ctx: Ctx[MiniMaxInput]) -> None:
    """A ``minimax`` config with a remote-only key that would change the model: transformers ignores it;
    ``shared_moe_mode`` without a shared expert has no effect in either spelling."""
    if _shared_size(ctx) == 0:
        ctx.vestigial(["shared_moe_mode"], "there is no shared expert (`shared_intermediate_size` is 0)")
    if _remote(ctx):
        return
    changes = {
        "postnorm": ctx.has("postnorm") and not ctx.model.postnorm,
        "shared_intermediate_size": ctx.has("shared_intermediate_size") and _shared_size(ctx) > 0,
    }
    for key, changed in changes.items():
        if changed:
            ctx.add(
                "P916",
                f"{ctx.q(key)} is {getattr(ctx.model, key)!r}, but transformers' `minimax` ignores this key "
                "(its layers take the residual after the norm and have no shared expert)",
                key,
                label="ignored by transformers",
            )


def _shared_size(ctx: Ctx[MiniMaxInput]) -> int:
    value = ctx.model.shared_intermediate_size
    return max(value, default=0) if isinstance(value, list) else value


def read(ctx: Ctx[MiniMaxInput]) -> Built:
    """``configuration_minimax.py`` and ``modeling_minimax.py`` (the remote code's keys for the released
    configs): lightning or softmax attention, then a mixture of experts, in every layer."""
    n = ctx.get("num_hidden_layers")
    mixers, field = _layout(ctx, n)
    _remote_keys_ignored(ctx)
    if mixers is None:
        return Built(main_key=field)
    built = Built(main="".join(s + MOE_S for s in mixers), main_key=field)
    hidden = ctx.get("hidden_size")
    heads = ctx.get("num_attention_heads")
    head_dim = ctx.model.head_dim if ctx.model.head_dim is not None else hidden // heads
    if head_dim <= 0:
        ctx.add("P908", f"{ctx.q('hidden_size')} ({hidden}) has no channel for each of {heads} heads", "hidden_size")
        return Built(main_key=field)
    activation = ctx.get("hidden_act")
    if ATTENTION_S in mixers:
        keys = AttentionKeys(rope=lambda c: _rope(c, head_dim), head_dim_derived=True, bias=None)
        attention = read_attention(ctx, keys, hidden)
        if attention is not None:
            window = ctx.get("sliding_window")
            built.specs["attention"] = attention.model_copy(update={"sliding_window": window})
    else:
        ctx.vestigial(
            ["num_key_value_heads", "sliding_window", "rotary_dim"], "the model has no softmax attention layer"
        )
    if LIGHTNING_S in mixers:
        built.specs["lightning"] = LightningSpec(
            num_heads=heads,
            head_dim=head_dim,
            block_size=ctx.get("block_size"),
            activation=activation,
            norm_eps=LIGHTNING_NORM_EPS,
        )
    else:
        ctx.vestigial(["block_size"], "the model has no lightning attention layer")
    if _remote(ctx) and _shared_size(ctx) > 0:
        ctx.add(
            "P914",
            f"{ctx.q('shared_intermediate_size')} is {ctx.model.shared_intermediate_size!r}: MiniMax's "
            "shared expert with its `coefficient` gate is not a layer patternc (or transformers' `minimax`) builds",
            "shared_intermediate_size",
        )
        built.specs["expressible"] = False
    experts, top_k = ctx.get("num_local_experts"), ctx.get("num_experts_per_tok")
    check_top_k(ctx, "num_local_experts", "num_experts_per_tok", experts, top_k)
    built.specs["moe"] = MoeSpec(
        num_experts=experts,
        top_k=top_k,
        intermediate_size=ctx.get("intermediate_size"),
        router="softmax",
        norm_topk_prob=True,
        expert_gated=True,
        expert_activation=activation,
    )
    built.specs["scaled_residual"] = _residual(ctx)
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    return built


# -- the canonical map --------------------------------------------------------------------------


def _heads(spec: ModelSpec) -> tuple[int, int, list[Finding]]:
    """``num_attention_heads`` and ``head_dim``: one pair for both attention kinds."""
    a, lightning, flat = spec.attention, spec.lightning, spec.pattern.flat
    found: list[Finding] = []
    both = a is not None and lightning is not None and ATTENTION_S in flat and LIGHTNING_S in flat
    if (
        both
        and a is not None
        and lightning is not None
        and (a.num_heads, a.head_dim) != (lightning.num_heads, lightning.head_dim)
    ):
        found.append(
            Finding(
                LIGHTNING_S,
                flat.index(LIGHTNING_S),
                f"has {lightning.num_heads} heads of {lightning.head_dim}, the softmax attention "
                f"{a.num_heads} of {a.head_dim}: minimax gives both `num_attention_heads` and `head_dim`",
            )
        )
    if a is not None and ATTENTION_S in flat:
        return a.num_heads, a.head_dim, found
    if lightning is not None:
        return lightning.num_heads, lightning.head_dim, found
    return 32, 4096 // 32, found


def _activation(spec: ModelSpec) -> tuple[str, list[Finding]]:
    """One ``hidden_act`` drives the experts and the lightning layers' q, k, v."""
    e, lightning, flat = spec.moe, spec.lightning, spec.pattern.flat
    if lightning is not None and LIGHTNING_S in flat:
        if e is not None and e.expert_activation != lightning.activation:
            message = (
                f"activates q, k, v with {lightning.activation}, the experts with {e.expert_activation}: "
                "minimax's one `hidden_act` drives both"
            )
            return lightning.activation, [Finding(LIGHTNING_S, flat.index(LIGHTNING_S), message)]
        return lightning.activation, []
    return e.expert_activation if e is not None else "silu", []


def express(spec: ModelSpec) -> Expression:
    """MiniMaxForCausalLM: every layer is (lightning or softmax attention) + a mixture of experts, with
    the weighted residuals after the norm; what it computes from the written fields alone."""
    arch = "minimax"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    heads, head_dim, head_findings = _heads(spec)
    activation, act_findings = _activation(spec)
    structural = (
        kind_findings(spec, KINDS, arch, {LayerKind.MLP: "has a mixture of experts in every layer, no dense MLP"})
        + structural
        + head_findings
        + act_findings
        + mtp_findings(spec, arch)
    )
    a, lightning, e, r = spec.attention, spec.lightning, spec.moe, spec.scaled_residual
    if a is not None and a.rope is not None and a.rope.partial_factor != 1.0:
        structural.append(
            Finding(
                ATTENTION_S,
                flat.index(ATTENTION_S) if ATTENTION_S in flat else None,
                f"rotates {a.rope.partial_factor:g} of each head: transformers' `MiniMaxAttention` rotates the "
                "whole head (its RoPE ignores `partial_rotary_factor`, and `rotary_dim` is not a key it reads)",
            )
        )
    r = r if r is not None else ScaledResidualSpec()
    cfg: Config = common_fields(spec, "rms_norm_eps") | {
        "num_hidden_layers": len(pairs),
        "layer_types": ["linear_attention" if flat[m] == LIGHTNING_S else "full_attention" for m, _ in pairs],
        "num_attention_heads": heads,
        "num_key_value_heads": a.num_kv_heads if a is not None else heads,
        "head_dim": head_dim,
        "hidden_act": activation,
        "intermediate_size": e.intermediate_size if e is not None else 14336,
        "num_local_experts": e.num_experts if e is not None else 8,
        "num_experts_per_tok": e.top_k if e is not None else 2,
        "block_size": lightning.block_size if lightning is not None else 256,
        "sliding_window": a.sliding_window if a is not None else None,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": a.rope.theta if a is not None and a.rope is not None else DEFAULT_THETA,
        },
    }
    cfg |= {ours: getattr(r, field) for ours, _, field in FACTORS}
    return Expression(arch, cfg, structural, _blocks(spec, cfg, pairs))


def _blocks(spec: ModelSpec, cfg: Config, pairs: list[tuple[int, int | None]]) -> list[tuple[int | None, BlockGraph]]:
    """What ``MiniMaxForCausalLM`` computes from ``cfg`` alone: q/k/v/o without biases or norms,
    whole-head RoPE, the lightning layer's fixed output-norm epsilon, the softmax router renormalised
    over its top k, SwiGLU experts, and the weighted residuals after the norm."""
    flat = spec.pattern.flat
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    heads, head_dim = as_int(cfg, "num_attention_heads"), as_int(cfg, "head_dim")
    theta = cfg["rope_parameters"]["rope_theta"]  # type: ignore[index]
    window = cfg["sliding_window"]
    attention = AttentionSpec(
        num_heads=heads,
        num_kv_heads=as_int(cfg, "num_key_value_heads"),
        head_dim=head_dim,
        rope=RopeSpec(theta=float(theta)),
        sliding_window=window if isinstance(window, int) else None,
    )
    lightning = LightningSpec(
        num_heads=heads,
        head_dim=head_dim,
        block_size=as_int(cfg, "block_size"),
        activation=as_str(cfg, "hidden_act"),
        norm_eps=LIGHTNING_NORM_EPS,
    )
    moe = MoeSpec(
        num_experts=as_int(cfg, "num_local_experts"),
        top_k=as_int(cfg, "num_experts_per_tok"),
        intermediate_size=as_int(cfg, "intermediate_size"),
        router="softmax",
        norm_topk_prob=True,
        expert_gated=True,
        expert_activation=as_str(cfg, "hidden_act"),
    )
    residual = ScaledResidualSpec(**{field: as_float(cfg, ours) for ours, _, field in FACTORS})

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == LIGHTNING_S:
            label = layer_label(m, LIGHTNING_S)
            return lower_lightning(scaled_frame(frame, residual, LayerKind.LIGHTNING), lightning, label)
        label = layer_label(m, ATTENTION_S)
        return lower_attention(scaled_frame(frame, residual, LayerKind.ATTENTION), attention, label)

    def ffn(j: int) -> BlockGraph:
        f = pairs[j][1]
        label = layer_label(f if f is not None else pairs[j][0], MOE_S)
        return lower_moe(scaled_frame(frame, residual, LayerKind.MOE), moe, label)

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head]


FAMILY = Family(
    name="minimax",
    input_model=MiniMaxInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-6,  # no other family builds `L`
    architectures=("MiniMaxForCausalLM", "MiniMaxText01ForCausalLM", "MiniMaxM1ForCausalLM"),
    layout_keys=(("layer_types", "attn_type_list"),),
    layout_related=("num_hidden_layers",),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", *REMOTE_ONLY}),
    released_model_types=RELEASED_MODEL_TYPES,
)
