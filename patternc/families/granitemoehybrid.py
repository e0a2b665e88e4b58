"""The ``granitemoehybrid`` family: transformers' ``GraniteMoeHybridForCausalLM`` (IBM Granite 4.0).

Every decoder layer is one mixer (``layer_types``; Bamba's Mamba2 keys) and an FFN: a softmax MoE of
gated experts plus an always-present gated shared MLP, or the shared MLP alone.  Input model, key
names, layout reader, expresser and the ``transformers-granitemoehybrid`` profile.
"""

from __future__ import annotations

from types import MappingProxyType

from patternc.canonical.archs import (
    Config,
    Expression,
    Finding,
    as_dict,
    as_float,
    as_int,
    as_str,
    attention_fields,
    common_fields,
    dt_limit,
    integer_expand,
    kind_findings,
    mamba_fields,
    mamba_from,
    model_blocks,
    mtp_findings,
    pair_layers,
    paired_blocks,
    shared_activation,
)
from patternc.canonical.graph import (
    BlockGraph,
    Frame,
    layer_label,
    lower_attention,
    lower_mamba,
    lower_mlp,
    lower_moe,
)
from patternc.config.ffn_readers import MlpKeys, MoeKeys, read_mlp, read_moe
from patternc.config.mixer_readers import AttentionKeys, read_attention, read_mamba
from patternc.config.models import (
    ROPE_KEYS,
    Activation,
    Eps,
    Factor,
    MambaHybridInput,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    TokenId,
)
from patternc.config.readers import (
    Built,
    Ctx,
    list_symbols,
    read_rope,
)
from patternc.families.bamba import MAMBA
from patternc.families.family import Family
from patternc.families.transformers_facts import EXPAND_FAILURE, NO_SEQ_LENGTH
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    AttentionSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
    RopeSpec,
)
from patternc.targets.rules import (
    Profile,
    Rule,
    main_alphabet,
    mamba_inner_size,
    mixer_ffn_pairs,
    mtp_dropped,
    needs_attention_for_cache,
    single_ffn_kind,
)

KINDS = (LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
MAMBA_S, ATTENTION_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)


class GraniteMoeHybridInput(MambaHybridInput):
    """``model_type: granitemoehybrid`` (transformers ``GraniteMoeHybridConfig``, IBM Granite 4.0)."""

    vocab_size: PosInt = 32000
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 11008
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = None
    hidden_act: Activation = "silu"
    max_position_embeddings: PosInt = 2048
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    pad_token_id: TokenId = None
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    tie_word_embeddings: bool = False
    embedding_multiplier: PosFloat | None = 1.0
    logits_scaling: PosFloat | None = 1.0
    residual_multiplier: PosFloat | None = 1.0
    attention_multiplier: PosFloat | None = 1.0
    num_local_experts: NonNegInt | None = 8
    num_experts_per_tok: PosInt | None = 2
    shared_intermediate_size: PosInt = 1024
    position_embedding_type: str | None = None
    layer_types: list[str] | None = None
    partial_rotary_factor: Factor | None = None
    """Ignored: GraniteMoeHybrid's rotary embedding always rotates the whole head."""


LAYER_TYPES = {
    "linear_attention": LayerKind.MAMBA2,
    "mamba": LayerKind.MAMBA2,
    "full_attention": LayerKind.ATTENTION,
    "attention": LayerKind.ATTENTION,
}
"""``layer_types`` entries (current and legacy names) and the mixer kind each builds."""


def _rope(ctx: Ctx[GraniteMoeHybridInput]) -> RopeSpec | None:
    if ctx.get("position_embedding_type") == "rope":
        return read_rope(ctx, 1.0, top_level_partial=False, uses_partial=False)
    ctx.vestigial(list(ROPE_KEYS), '`position_embedding_type` is not "rope", so attention has no RoPE')
    return None


ATTENTION = AttentionKeys(rope=_rope, head_dim_derived=True, scale="attention_multiplier", rope_first=True)
MOE = MoeKeys(
    experts="num_local_experts",
    top_k="num_experts_per_tok",
    intermediate_size="intermediate_size",
    activation="hidden_act",
    shared_size="shared_intermediate_size",
    router="softmax",
    expert_gated=True,
    shared_gated=True,
    top_k_nullable=True,
)
MLP = MlpKeys(intermediate_size="shared_intermediate_size", activation="hidden_act", gated=True)
"""Without experts a layer's FFN is the shared MLP alone: a dense gated MLP."""


def read(ctx: Ctx[GraniteMoeHybridInput]) -> Built:
    """``configuration_granitemoehybrid.py:97-131``, ``modeling_granitemoehybrid.py:943-1008``: every
    layer is a mixer, then a softmax-routed MoE of gated experts plus an always-present gated shared
    MLP; with ``num_local_experts == 0`` only the shared MLP (a dense gated MLP)."""
    m = ctx.model
    n = ctx.get("num_hidden_layers")
    field = "layer_types"
    names = {name: symbol_of(kind) for name, kind in LAYER_TYPES.items()}
    if m.layer_types is None:
        mixers: str | None = names["linear_attention"] * n
        ctx.defaults_used[ctx.key("layer_types")] = ["linear_attention"] * min(n, 4) + (["..."] if n > 4 else [])
    else:
        mixers = list_symbols(ctx, field, m.layer_types, names)
        if mixers is not None and len(mixers) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q(field)} has {len(mixers)} entries; "
                "transformers rejects this config",
                "num_hidden_layers" if ctx.has("num_hidden_layers") else field,
                label="layer count mismatch",
                secondary=ctx.secondary(field),
            )
            mixers = None
    experts = ctx.get("num_local_experts") or 0
    ffn = symbol_of(LayerKind.MOE if experts > 0 else LayerKind.MLP)
    built = Built(main=None if mixers is None else "".join(s + ffn for s in mixers), main_key=field)
    if mixers is None:
        return built
    hidden = ctx.get("hidden_size")
    ctx.get("hidden_act")  # one activation for the Mamba conv and every FFN, listed before theirs in P911
    if symbol_of(LayerKind.ATTENTION) in mixers:
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
    if symbol_of(LayerKind.MAMBA2) in mixers:
        built.specs["mamba"] = read_mamba(ctx, MAMBA, hidden)
    ctx.get("shared_intermediate_size")  # the shared MLP is in every layer, with or without experts
    if experts > 0:
        built.specs["moe"] = read_moe(ctx, MOE)
    else:
        built.specs["mlp"] = read_mlp(ctx, MLP)
        ctx.vestigial(
            ["intermediate_size", "num_experts_per_tok"],
            "`num_local_experts` is 0, so every layer's FFN is the shared MLP (`shared_intermediate_size`)",
        )
    if ctx.has("partial_rotary_factor"):
        ctx.add(
            "P916",
            f"{ctx.q('partial_rotary_factor')} is ignored: GraniteMoeHybrid rotates the whole head",
            "partial_rotary_factor",
            label="ignored",
        )
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    built.specs["embedding_multiplier"] = float(ctx.get("embedding_multiplier") or 1.0)
    built.specs["residual_multiplier"] = float(ctx.get("residual_multiplier") or 1.0)
    built.specs["logits_scaling"] = float(ctx.get("logits_scaling") or 1.0)
    return built


def express(spec: ModelSpec) -> Expression:
    """GraniteMoeHybridForCausalLM: every layer is a mixer + (softmax-routed gated MoE +) a gated shared MLP."""
    arch = "granitemoehybrid"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = kind_findings(spec, KINDS, arch) + structural
    if MLP_S in flat and MOE_S in flat:
        structural.append(
            Finding(
                "pattern",
                None,
                "has both `-` and `E` layers: granitemoehybrid's FFN is the same "
                "in every layer (num_local_experts > 0 or not)",
            )
        )
    expand, expand_findings = integer_expand(spec, arch, "mamba_expand")
    structural += expand_findings + mtp_findings(spec, arch)
    a = spec.attention
    moe = spec.moe if MOE_S in flat else None
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "layer_types": ["full_attention" if flat[m] == ATTENTION_S else "linear_attention" for m, _ in pairs],
            "hidden_act": shared_activation(spec),
            "embedding_multiplier": spec.embedding_multiplier,
            "residual_multiplier": spec.residual_multiplier,
            "logits_scaling": spec.logits_scaling,
            "position_embedding_type": "rope" if a is not None and a.rope is not None else None,
        }
        | attention_fields(spec)
        | mamba_fields(spec, MAMBA, expand)
    )
    if a is not None:
        cfg["attention_multiplier"] = a.scale if a.scale is not None else a.head_dim**-0.5
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": a.rope.theta if a.rope else 10000.0}
    if moe is not None:
        cfg |= {
            "num_local_experts": moe.num_experts,
            "num_experts_per_tok": moe.top_k,
            "intermediate_size": moe.intermediate_size,
            "shared_intermediate_size": moe.shared_intermediate_size,
        }
    else:
        cfg |= {"num_local_experts": 0, "shared_intermediate_size": spec.mlp.intermediate_size if spec.mlp else 1024}
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")), as_float(cfg, "residual_multiplier"))
    act = as_str(cfg, "hidden_act")
    mamba = mamba_from(cfg, MAMBA, act, dt_limit(cfg)) if spec.mamba is not None else None
    attention = None
    if a is not None:
        bias = bool(cfg["attention_bias"])
        rope_cfg = as_dict(cfg, "rope_parameters")
        attention = AttentionSpec(
            num_heads=as_int(cfg, "num_attention_heads"),
            num_kv_heads=as_int(cfg, "num_key_value_heads"),
            head_dim=as_int(cfg, "head_dim"),
            qkv_bias=bias,
            out_bias=bias,
            scale=as_float(cfg, "attention_multiplier"),
            # the default RoPE of GraniteMoeHybrid rotates the whole head (no partial_rotary_factor)
            rope=RopeSpec(theta=rope_cfg["rope_theta"]) if cfg["position_embedding_type"] == "rope" else None,
        )
    shared = as_int(cfg, "shared_intermediate_size")
    if as_int(cfg, "num_local_experts") > 0:
        ffn_spec: MlpSpec | MoeSpec = MoeSpec(
            num_experts=as_int(cfg, "num_local_experts"),
            top_k=as_int(cfg, "num_experts_per_tok"),
            intermediate_size=as_int(cfg, "intermediate_size"),
            router="softmax",
            norm_topk_prob=True,
            expert_gated=True,
            expert_activation=act,
            shared_experts=1,
            shared_intermediate_size=shared,
            shared_gated=True,
        )
    else:
        ffn_spec = MlpSpec(intermediate_size=shared, activation=act, gated=True, bias=False)

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == ATTENTION_S and attention is not None:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        if mamba is not None:
            return lower_mamba(frame, mamba, layer_label(m, MAMBA_S))
        return lower_mlp(frame, MlpSpec(intermediate_size=1, activation=act, gated=True), layer_label(m, flat[m]))

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], MOE_S if isinstance(ffn_spec, MoeSpec) else MLP_S)
        if isinstance(ffn_spec, MoeSpec):
            return lower_moe(frame, ffn_spec, label)
        return lower_mlp(frame, ffn_spec, label)

    embed, head = model_blocks(
        spec,
        cfg,
        frame,
        multiplier=as_float(cfg, "embedding_multiplier"),
        tied=bool(cfg["tie_word_embeddings"]),
        logits=as_float(cfg, "logits_scaling"),
    )
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


def profile() -> Profile:
    t = "transformers granitemoehybrid"
    return Profile(
        name="transformers-granitemoehybrid",
        consumer="transformers GraniteMoeHybridForCausalLM (model_type granitemoehybrid)",
        description="every layer is one mixer (`layer_types`) plus a shared MLP and, if num_local_experts > 0, an MoE",
        versions=("checked against 5.24.0 [verified]",),
        rules=(
            Rule(
                "P301",
                "alphabet `M * - E`",
                "§6 (GraniteMoeHybrid row)",
                main_alphabet(t, KINDS, "GraniteMoeHybrid has no layer kind for {symbol}"),
            ),
            Rule(
                "P308",
                "every mixer followed by exactly one FFN (`-` or `E`)",
                "§6 (GraniteMoeHybrid row); product.md §1",
                mixer_ffn_pairs(t, (LayerKind.MLP, LayerKind.MOE), "a GraniteMoeHybrid layer is mixer + FFN"),
            ),
            Rule(
                "P309",
                "one FFN kind per model: `num_local_experts` is global",
                "modeling_granitemoehybrid (5.24.0)",
                single_ffn_kind(t, "num_local_experts > 0 gives every layer an MoE; 0 gives every layer only the MLP"),
            ),
            Rule(
                "P306",
                "no attention layer: forward raises with the cache on",
                "verified 5.24.0",
                needs_attention_for_cache(t, NO_SEQ_LENGTH),
            ),
            Rule("P305", "no MTP in the config", "§6", mtp_dropped(t, "GraniteMoeHybridConfig has no MTP fields")),
            Rule(
                "P311",
                "Mamba heads × head_dim = integer expand × hidden_size",
                "verified 5.24.0 (validate_architecture)",
                mamba_inner_size(t, EXPAND_FAILURE),
            ),
        ),
    )


FAMILY = Family(
    name="granitemoehybrid",
    input_model=GraniteMoeHybridInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=2,
    architectures=("GraniteMoeHybridForCausalLM",),
    aliases=MappingProxyType({"layers_block_type": "layer_types"}),
    layout_keys=(("layer_types",),),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "head_dim", "partial_rotary_factor"}),
    profile=profile,
)
