"""The ``lfm2_moe`` family: transformers' ``Lfm2MoeForCausalLM`` (Liquid AI's LFM2-MoE, LFM2-8B-A1B).

LFM2's mixers (gated short convolution ``C`` or attention ``*`` with q/k norms, ``layer_types``),
then a SwiGLU MLP in the first ``num_dense_layers`` layers (``intermediate_size`` as written: no
``block_auto_adjust_ff_dim`` here) and a mixture of experts in the others: sigmoid router, an
``expert_bias`` buffer added for selection only (``use_expert_bias``), top-k renormalised when
``norm_topk_prob``, times ``routed_scaling_factor``; no shared expert.  Input model, key names,
layout reader and expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

from typing import Any

from patternc.canonical.archs import (
    Config,
    Expression,
    Finding,
    as_float,
    as_int,
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
    lower_mlp,
    lower_moe,
    lower_short_conv,
)
from patternc.config.mixer_readers import read_attention
from patternc.config.models import ConfigModel, Eps, NonNegFloat, PosFloat, PosInt, TokenId
from patternc.config.readers import Built, Ctx, check_top_k, list_symbols
from patternc.families.family import Family
from patternc.families.lfm2 import ATTENTION, DEFAULT_THETA, LAYER_TYPES
from patternc.kinds import LayerKind, symbol_of
from patternc.model import AttentionSpec, MlpSpec, ModelSpec, MoeSpec, NormSpec, RopeSpec, ShortConvSpec

KINDS = (LayerKind.SHORT_CONV, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
CONV_S, ATTENTION_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)


class Lfm2MoeInput(ConfigModel):
    """``model_type: lfm2_moe`` (transformers ``Lfm2MoeConfig``): LFM2's mixers, dense MLPs first, then MoE."""

    vocab_size: PosInt = 65536
    hidden_size: PosInt = 2048
    intermediate_size: PosInt = 7168
    """The dense MLPs' width, used as written (``Lfm2MoeMLP``)."""
    moe_intermediate_size: PosInt = 1792
    num_hidden_layers: PosInt = 32
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId | list[int] = 2
    tie_word_embeddings: bool = True
    """``tie_embedding`` is its older spelling (an alias)."""
    rope_parameters: dict[str, Any] | None = None
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta`` (the released configs use it)."""
    head_dim: PosInt | None = None
    """Not a field of ``Lfm2MoeConfig``; ``Lfm2MoeAttention`` reads it when a config sets it."""
    max_position_embeddings: PosInt = 128_000
    initializer_range: NonNegFloat = 0.02
    use_cache: bool = True
    norm_eps: Eps = 0.00001
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt = 8
    conv_bias: bool = False
    conv_L_cache: PosInt = 3
    num_dense_layers: int = 2
    """Layers ``0 .. num_dense_layers - 1`` have a dense MLP, the rest an MoE (a negative value: none)."""
    num_experts_per_tok: PosInt = 4
    output_router_logits: bool = False
    num_experts: PosInt = 32
    use_expert_bias: bool = True
    routed_scaling_factor: PosFloat = 1.0
    norm_topk_prob: bool = True
    layer_types: list[str] | None = None
    """Required: ``Lfm2MoeConfig`` derives no default stack (the model indexes ``layer_types``)."""


MOE_KEYS = ("num_experts", "num_experts_per_tok", "moe_intermediate_size", "use_expert_bias", "norm_topk_prob")


def _moe(ctx: Ctx[Lfm2MoeInput]) -> MoeSpec | None:
    """``Lfm2MoeSparseMoeBlock``: ``Lfm2MoeTopKRouter`` (sigmoid; ``expert_bias`` for selection only),
    experts stored as ``gate_up_proj`` / ``down_proj`` 3-D tensors, SiLU; no shared expert."""
    experts, top_k = ctx.get("num_experts"), ctx.get("num_experts_per_tok")
    check_top_k(ctx, "num_experts", "num_experts_per_tok", experts, top_k)
    if top_k > experts:
        return None
    return MoeSpec(
        num_experts=experts,
        top_k=top_k,
        intermediate_size=ctx.get("moe_intermediate_size"),
        router="sigmoid",
        score_correction_bias=ctx.get("use_expert_bias"),
        norm_topk_prob=ctx.get("norm_topk_prob"),
        routed_scaling_factor=float(ctx.get("routed_scaling_factor")),
        expert_gated=True,
        expert_activation="silu",
    )


def read(ctx: Ctx[Lfm2MoeInput]) -> Built:
    """``configuration_lfm2_moe.py`` and ``modeling_lfm2_moe.py`` (``Lfm2MoeDecoderLayer``): the mixer from
    ``layer_types`` (``conv`` or ``full_attention``), then ``Lfm2MoeMLP`` for ``layer_idx <
    num_dense_layers``, else ``Lfm2MoeSparseMoeBlock``; plain RMSNorm, the final one ``embedding_norm``."""
    n = ctx.get("num_hidden_layers")
    names = {name: symbol_of(kind) for name, kind in LAYER_TYPES.items()}
    mixers = list_symbols(ctx, "layer_types", ctx.get("layer_types") or [], names)
    if mixers is not None and len(mixers) != n:
        ctx.add(
            "P908",
            f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q('layer_types')} has {len(mixers)} entries; "
            "transformers rejects this config",
            "num_hidden_layers" if ctx.has("num_hidden_layers") else "layer_types",
            secondary=ctx.secondary("layer_types"),
        )
        mixers = None
    if mixers is None:
        return Built(main_key="layer_types")
    dense = ctx.get("num_dense_layers")
    ffn = [MLP_S if i < dense else MOE_S for i in range(n)]
    main = "".join(s + f for s, f in zip(mixers, ffn, strict=True))
    built = Built(main=main, main_key="layer_types", ffn_key="num_dense_layers")
    hidden = ctx.get("hidden_size")
    if ATTENTION_S in mixers:
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
    else:
        ctx.vestigial(["head_dim"], "the model has no attention layer")
    if CONV_S in mixers:
        built.specs["short_conv"] = ShortConvSpec(conv_kernel=ctx.get("conv_L_cache"), bias=ctx.get("conv_bias"))
    else:
        ctx.vestigial(["conv_L_cache", "conv_bias"], "the model has no convolution layer")
    if MLP_S in main:
        built.specs["mlp"] = MlpSpec(intermediate_size=ctx.get("intermediate_size"), activation="silu", gated=True)
    else:
        ctx.vestigial(["intermediate_size"], "`num_dense_layers` is 0: every layer is a mixture of experts")
    if MOE_S in main:
        built.specs["moe"] = _moe(ctx)
    else:
        ctx.vestigial(
            [*MOE_KEYS, "routed_scaling_factor"], "every layer is dense (`num_dense_layers` covers the stack)"
        )
    built.specs["norm"] = NormSpec(eps=ctx.get("norm_eps"))
    return built


def express(spec: ModelSpec) -> Expression:
    """Lfm2MoeForCausalLM: (short convolution or attention) + (SwiGLU MLP for the first
    ``num_dense_layers`` layers, else the sigmoid-routed MoE without a shared expert)."""
    arch = "lfm2_moe"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = kind_findings(spec, KINDS, arch) + structural + mtp_findings(spec, arch)
    ffns = [flat[f] if f is not None else None for _, f in pairs]
    dense = next((j for j, f in enumerate(ffns) if f != MLP_S), len(ffns))
    for j in range(dense, len(ffns)):
        if ffns[j] == MLP_S and pairs[j][1] is not None:
            structural.append(
                Finding(MLP_S, pairs[j][1], f"comes after an MoE layer: {arch} builds dense MLPs only first")
            )
    a, c, mlp_spec, moe_spec = spec.attention, spec.short_conv, spec.mlp, spec.moe
    cfg: Config = common_fields(spec, "norm_eps") | {
        "num_hidden_layers": len(pairs),
        "layer_types": ["full_attention" if flat[m] == ATTENTION_S else "conv" for m, _ in pairs],
        "num_dense_layers": dense,
        "intermediate_size": mlp_spec.intermediate_size if mlp_spec is not None else 7168,
        "conv_L_cache": c.conv_kernel if c is not None else 3,
        "conv_bias": c.bias if c is not None else False,
    }
    if a is not None:
        cfg |= {
            "num_attention_heads": a.num_heads,
            "num_key_value_heads": a.num_kv_heads,
            "head_dim": a.head_dim,
            "rope_parameters": {"rope_type": "default", "rope_theta": a.rope.theta if a.rope else DEFAULT_THETA},
        }
    if moe_spec is not None:
        cfg |= {
            "num_experts": moe_spec.num_experts,
            "num_experts_per_tok": moe_spec.top_k,
            "moe_intermediate_size": moe_spec.intermediate_size,
            "use_expert_bias": moe_spec.score_correction_bias,
            "norm_topk_prob": moe_spec.norm_topk_prob,
            "routed_scaling_factor": moe_spec.routed_scaling_factor,
        }
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "norm_eps")))
    attention = None
    if a is not None:
        attention = AttentionSpec(
            num_heads=as_int(cfg, "num_attention_heads"),
            num_kv_heads=as_int(cfg, "num_key_value_heads"),
            head_dim=as_int(cfg, "head_dim"),
            qk_norm=True,
            rope=RopeSpec(theta=float(cfg["rope_parameters"]["rope_theta"])),  # type: ignore[index]
        )
    conv = ShortConvSpec(conv_kernel=as_int(cfg, "conv_L_cache"), bias=bool(cfg["conv_bias"]))
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation="silu", gated=True)
    moe = None
    if moe_spec is not None:
        moe = MoeSpec(
            num_experts=as_int(cfg, "num_experts"),
            top_k=as_int(cfg, "num_experts_per_tok"),
            intermediate_size=as_int(cfg, "moe_intermediate_size"),
            router="sigmoid",
            score_correction_bias=bool(cfg["use_expert_bias"]),
            norm_topk_prob=bool(cfg["norm_topk_prob"]),
            routed_scaling_factor=as_float(cfg, "routed_scaling_factor"),
            expert_gated=True,
            expert_activation="silu",
        )

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == ATTENTION_S and attention is not None:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        return lower_short_conv(frame, conv, layer_label(m, CONV_S))

    def ffn(j: int) -> BlockGraph:
        f = pairs[j][1]
        label = layer_label(f if f is not None else pairs[j][0], MLP_S)
        if j >= dense and moe is not None:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


FAMILY = Family(
    name="lfm2_moe",
    input_model=Lfm2MoeInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-3,  # after lfm2 (an all-dense stack is exactly lfm2 too), before nemotron_h
    architectures=("Lfm2MoeForCausalLM",),
    aliases={"tie_embedding": "tie_word_embeddings"},
    layout_keys=(("layer_types",),),
    layout_related=("num_hidden_layers", "num_dense_layers"),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "head_dim"}),
)
