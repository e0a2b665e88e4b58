"""The ``qwen3_next`` family: transformers' ``Qwen3NextForCausalLM``.

Every decoder layer is gated DeltaNet or gated attention (``layer_types`` or
``full_attention_interval``), then a sparse MoE or a dense gated MLP; zero-centred RMSNorm.  Input
model, key names, layout reader and expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

from typing import Any

from patternc.canonical.archs import (
    Config,
    Expression,
    as_dict,
    as_float,
    as_int,
    as_str,
    attention_fields,
    common_fields,
    ffn_activation,
    kind_findings,
    model_blocks,
    pair_layers,
    paired_blocks,
)
from patternc.canonical.graph import (
    BlockGraph,
    Frame,
    layer_label,
    lower_attention,
    lower_gated_deltanet,
    lower_mlp,
    lower_moe,
)
from patternc.config.ffn_readers import MlpKeys, MoeKeys, read_mlp, read_moe
from patternc.config.mixer_readers import AttentionKeys, DeltaNetKeys, read_attention, read_gated_deltanet
from patternc.config.models import (
    Activation,
    ConfigModel,
    Eps,
    Factor,
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
from patternc.families.family import Family
from patternc.families.qwen3_5_moe import MTP_FIELDS, express_mtp, read_mtp
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    AttentionSpec,
    GatedDeltaNetSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
    RopeSpec,
)

KINDS = (LayerKind.GATED_DELTANET, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
DELTANET_S, ATTENTION_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)


class Qwen3NextInput(ConfigModel):
    """``model_type: qwen3_next`` (transformers ``Qwen3NextConfig``): gated DeltaNet ``G`` + gated attention."""

    vocab_size: PosInt = 151936
    hidden_size: PosInt = 2048
    intermediate_size: PosInt = 5632
    num_hidden_layers: PosInt = 48
    num_attention_heads: PosInt = 16
    num_key_value_heads: PosInt = 2
    hidden_act: Activation = "silu"
    max_position_embeddings: PosInt = 32768
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    tie_word_embeddings: bool = False
    rope_parameters: dict[str, Any] | None = None
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta``."""
    partial_rotary_factor: Factor | None = None
    """Pre-5.0 top-level spelling; transformers' default is 0.25."""
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    head_dim: PosInt = 256
    linear_conv_kernel_dim: PosInt = 4
    linear_key_head_dim: PosInt = 128
    linear_value_head_dim: PosInt = 128
    linear_num_key_heads: PosInt = 16
    linear_num_value_heads: PosInt = 32
    decoder_sparse_step: PosInt = 1
    moe_intermediate_size: PosInt = 512
    shared_expert_intermediate_size: PosInt = 512
    num_experts_per_tok: PosInt = 10
    num_experts: NonNegInt = 512
    norm_topk_prob: bool = True
    mlp_only_layers: list[int] | None = None
    layer_types: list[str] | None = None
    full_attention_interval: PosInt = 4
    """Used only when ``layer_types`` is absent: every ``full_attention_interval``-th layer is attention."""
    mtp_num_hidden_layers: NonNegInt = 0
    """Not a transformers field (``qwen3_5_moe.read_mtp``): the MTP decoder layers the checkpoint holds."""
    mtp_use_dedicated_embeddings: bool = False
    """Not a transformers field: whether the MTP block has an embedding of its own."""
    pad_token_id: TokenId = None
    bos_token_id: TokenId = None
    eos_token_id: TokenId = None


LAYER_TYPES = {
    "linear_attention": LayerKind.GATED_DELTANET,
    "full_attention": LayerKind.ATTENTION,
    "attention": LayerKind.ATTENTION,
}
"""``layer_types`` entries and the mixer kind each builds."""


def _rope(ctx: Ctx[Qwen3NextInput]) -> RopeSpec | None:
    return read_rope(ctx, 0.25, top_level_partial=True)


ATTENTION = AttentionKeys(rope=_rope, qk_norm=True, output_gate=True)
DELTANET = DeltaNetKeys(
    k_heads="linear_num_key_heads",
    v_heads="linear_num_value_heads",
    k_head_dim="linear_key_head_dim",
    v_head_dim="linear_value_head_dim",
    conv_kernel="linear_conv_kernel_dim",
)
MOE = MoeKeys(
    experts="num_experts",
    top_k="num_experts_per_tok",
    intermediate_size="moe_intermediate_size",
    activation="hidden_act",
    shared_size="shared_expert_intermediate_size",
    router="softmax",
    expert_gated=True,
    shared_gated=True,
    shared_expert_gate=True,
    norm_topk_prob="norm_topk_prob",
    unused=("num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "norm_topk_prob"),
)
MLP = MlpKeys(intermediate_size="intermediate_size", activation="hidden_act", gated=True, unused=("intermediate_size",))


def read(ctx: Ctx[Qwen3NextInput]) -> Built:
    """``configuration_qwen3_next.py:120-130``, ``modeling_qwen3_next.py:871-891``: gated DeltaNet or
    gated attention, then a sparse MoE (softmax router, gated experts, sigmoid-gated shared expert) or
    a dense gated MLP; zero-centred RMSNorm (``1 + weight``, line 139)."""
    m = ctx.model
    n = ctx.get("num_hidden_layers")
    field = "layer_types"
    names = {name: symbol_of(kind) for name, kind in LAYER_TYPES.items()}
    if m.layer_types is None:
        interval = ctx.get("full_attention_interval")
        every = [names["linear_attention"] if (i + 1) % interval else names["full_attention"] for i in range(n)]
        mixers: str | None = "".join(every)
        field = "full_attention_interval"
    else:
        ctx.vestigial(["full_attention_interval"], "`layer_types` is given, and transformers uses it instead")
        mixers = list_symbols(ctx, field, m.layer_types, names)
        if mixers is not None and len(mixers) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q(field)} has {len(mixers)} entries; "
                "transformers rejects this config",
                "num_hidden_layers" if ctx.has("num_hidden_layers") else field,
                secondary=ctx.secondary(field),
            )
            mixers = None
    if mixers is None:
        return Built(main_key=field)
    dense_only = set(ctx.get("mlp_only_layers") or [])
    experts, step = ctx.get("num_experts"), ctx.get("decoder_sparse_step")
    moe, mlp = symbol_of(LayerKind.MOE), symbol_of(LayerKind.MLP)
    ffn = [moe if i not in dense_only and experts > 0 and (i + 1) % step == 0 else mlp for i in range(n)]
    main = "".join(s + f for s, f in zip(mixers, ffn, strict=True))
    built = Built(
        main=main, main_key=field, ffn_key="mlp_only_layers" if ctx.has("mlp_only_layers") else "decoder_sparse_step"
    )
    hidden = ctx.get("hidden_size")
    ctx.get("hidden_act")  # one activation for every FFN, listed before the mixers' keys in P911
    if symbol_of(LayerKind.ATTENTION) in mixers:
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
    if symbol_of(LayerKind.GATED_DELTANET) in mixers:
        built.specs["gated_deltanet"] = read_gated_deltanet(ctx, DELTANET)
    if moe in main:
        built.specs["moe"] = read_moe(ctx, MOE)
    else:
        ctx.vestigial(MOE.unused, "the model has no mixture-of-experts layer")
    if mlp in main:
        built.specs["mlp"] = read_mlp(ctx, MLP)
    else:
        ctx.vestigial(MLP.unused, "every layer is a mixture of experts, which use `moe_intermediate_size`")
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"), unit_offset=True)
    read_mtp(ctx, built, ffn[0])  # the MTP layer's FFN follows layer 0's rule (vLLM names it layer 0)
    return built


def express(spec: ModelSpec) -> Expression:
    """Qwen3NextForCausalLM: gated DeltaNet or gated attention (qk-norm, partial RoPE) + MoE/MLP, (1+w) norms."""
    arch = "qwen3_next"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    a = spec.attention
    rope = a.rope if a is not None and a.rope is not None else RopeSpec(theta=10000.0, partial_factor=0.25)
    moe_spec = spec.moe
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "layer_types": ["full_attention" if flat[m] == ATTENTION_S else "linear_attention" for m, _ in pairs],
            "mlp_only_layers": [j for j, (_, f) in enumerate(pairs) if f is None or flat[f] != MOE_S],
            "hidden_act": ffn_activation(spec),
            "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 5632,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": rope.theta,
                "partial_rotary_factor": rope.partial_factor,
            },
        }
        | attention_fields(spec)
    )
    if moe_spec is not None:
        cfg |= {
            "num_experts": moe_spec.num_experts,
            "num_experts_per_tok": moe_spec.top_k,
            "moe_intermediate_size": moe_spec.intermediate_size,
            "norm_topk_prob": moe_spec.norm_topk_prob,
            "shared_expert_intermediate_size": moe_spec.shared_intermediate_size or 512,
        }
    first_ffn = pairs[0][1] if pairs else None
    mtp_ffn = MOE_S if first_ffn is not None and flat[first_ffn] == MOE_S else MLP_S  # as layer 0's, in read
    structural = kind_findings(spec, KINDS, arch) + structural + express_mtp(spec, arch, mtp_ffn, cfg)
    if spec.gated_deltanet is not None:
        g = spec.gated_deltanet
        cfg |= {
            "linear_num_key_heads": g.num_k_heads,
            "linear_num_value_heads": g.num_v_heads,
            "linear_key_head_dim": g.head_k_dim,
            "linear_value_head_dim": g.head_v_dim,
            "linear_conv_kernel_dim": g.conv_kernel,
        }
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps"), unit_offset=True))
    act = as_str(cfg, "hidden_act")
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
            qk_norm=True,
            output_gate=True,
            rope=RopeSpec(theta=rope_cfg["rope_theta"], partial_factor=rope_cfg["partial_rotary_factor"]),
        )
    gdn = None
    if spec.gated_deltanet is not None:
        gdn = GatedDeltaNetSpec(
            num_k_heads=as_int(cfg, "linear_num_key_heads"),
            num_v_heads=as_int(cfg, "linear_num_value_heads"),
            head_k_dim=as_int(cfg, "linear_key_head_dim"),
            head_v_dim=as_int(cfg, "linear_value_head_dim"),
            conv_kernel=as_int(cfg, "linear_conv_kernel_dim"),
        )
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = None
    if moe_spec is not None:
        moe = MoeSpec(
            num_experts=as_int(cfg, "num_experts"),
            top_k=as_int(cfg, "num_experts_per_tok"),
            intermediate_size=as_int(cfg, "moe_intermediate_size"),
            router="softmax",
            norm_topk_prob=bool(cfg["norm_topk_prob"]),
            expert_gated=True,
            expert_activation=act,
            shared_experts=1,
            shared_intermediate_size=as_int(cfg, "shared_expert_intermediate_size"),
            shared_gated=True,
            shared_expert_gate=True,
        )
    mlp_only = set(cfg["mlp_only_layers"])  # type: ignore[call-overload]

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == ATTENTION_S and attention is not None:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        if gdn is not None:
            return lower_gated_deltanet(frame, gdn, layer_label(m, DELTANET_S))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # no Qwen3-Next-expressible mixer: stand-in

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], MLP_S)
        if j not in mlp_only and moe is not None:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


FAMILY = Family(
    name="qwen3_next",
    input_model=Qwen3NextInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=4,
    architectures=("Qwen3NextForCausalLM",),
    layout_keys=(("layer_types", "num_hidden_layers"),),
    layout_related=("full_attention_interval", "mlp_only_layers", "decoder_sparse_step"),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "partial_rotary_factor", "full_attention_interval"}),
    checkpoint_fields=MTP_FIELDS,
)
