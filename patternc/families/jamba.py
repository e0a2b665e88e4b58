"""The ``jamba`` family: transformers' ``JambaForCausalLM``.

Attention and MoE layers placed by period and offset; its Mamba layers are Mamba-1, which no layer
kind expresses, so the layout is read and reported (P914) but no model is built.  Input model,
layout reader and expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from patternc.canonical.archs import (
    Config,
    Expression,
    Finding,
    as_float,
    as_int,
    as_str,
    attention_fields,
    common_fields,
    ffn_activation,
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
)
from patternc.config.models import (
    Activation,
    ConfigModel,
    Eps,
    NonNegFloat,
    NonNegInt,
    PosInt,
    TokenId,
)
from patternc.config.readers import (
    Built,
    Ctx,
)
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    AttentionSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
)

KINDS = (LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds (its Mamba layers are Mamba-1, which no kind expresses)."""
MAMBA_S, ATTENTION_S, MLP_S, MOE_S = (
    symbol_of(kind) for kind in (LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
)


class JambaInput(ConfigModel):
    """``model_type: jamba`` (transformers ``JambaConfig``); its Mamba-1 mixers are not expressible."""

    vocab_size: PosInt = 65536
    tie_word_embeddings: bool = False
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 14336
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt = 8
    hidden_act: Activation = "silu"
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    max_position_embeddings: PosInt = 262144
    attention_dropout: NonNegFloat = 0.0
    num_experts_per_tok: PosInt = 2
    num_experts: PosInt = 16
    expert_layer_period: PosInt = 2
    expert_layer_offset: NonNegInt = 1
    attn_layer_period: PosInt = 8
    attn_layer_offset: NonNegInt = 4
    use_mamba_kernels: bool = True
    mamba_d_state: PosInt = 16
    mamba_d_conv: PosInt = 4
    mamba_expand: PosInt = 2
    mamba_dt_rank: PosInt | Literal["auto"] = "auto"
    mamba_conv_bias: bool = True
    mamba_proj_bias: bool = False
    use_mambapy: bool = False
    use_associative_scan: bool = True


def read(ctx: Ctx[JambaInput]) -> Built:
    """``configuration_jamba.py``: attention iff ``i % attn_layer_period == attn_layer_offset``,
    MoE iff ``i % expert_layer_period == expert_layer_offset`` (``modeling_jamba.py:735-739``)."""
    m = ctx.model
    ok = True
    for what, period, offset in (
        ("attn", "attn_layer_period", "attn_layer_offset"),
        ("expert", "expert_layer_period", "expert_layer_offset"),
    ):
        p, o = ctx.get(period), ctx.get(offset)
        if o >= p:
            ctx.add(
                "P908",
                f"{ctx.q(offset)} ({o}) must be smaller than {ctx.q(period)} ({p}), or no layer is {what}",
                offset,
                secondary=ctx.secondary(period),
            )
            ok = False
    if not ok:
        return Built()
    n = ctx.get("num_hidden_layers")
    experts = ctx.get("num_experts")
    main = "".join(
        (ATTENTION_S if i % m.attn_layer_period == m.attn_layer_offset else MAMBA_S)
        + (MOE_S if experts > 1 and i % m.expert_layer_period == m.expert_layer_offset else MLP_S)
        for i in range(n)
    )
    if MAMBA_S in main:
        ctx.add(
            "P914",
            "Jamba's Mamba layers are Mamba-1 mixers, which patternc's `M` (Mamba2) cannot express",
            "model_type",
            label="Mamba-1",
            notes=(
                "Mamba-1 has a per-channel state matrix A of shape (expand*hidden_size, mamba_d_state), a "
                "low-rank dt projection (mamba_dt_rank) and no heads, groups or gated RMSNorm; Mamba2 has one "
                "scalar A per head and shares B/C across groups, so no renaming of weights maps one onto the other",
                "the layer layout is still read (in Python: `read_config(path).pattern`, `M` standing for the "
                "Mamba-1 layers), but no model is built or counted from it",
            ),
        )
    return Built(main=main, main_key="attn_layer_period", ffn_key="expert_layer_period", specs={"expressible": False})


def _period(positions: list[bool]) -> tuple[int, int] | None:
    """(period, offset) with positions[i] == (i % period == offset) for every i, if any."""
    n = len(positions)
    for period in range(1, n + 1):
        for offset in range(period):
            if all(positions[i] == (i % period == offset) for i in range(n)):
                return period, offset
    return None


def express(spec: ModelSpec) -> Expression:
    """JambaForCausalLM: Mamba-1 or attention (no RoPE) + gated MLP or softmax MoE (unnormalized, no shared)."""
    arch = "jamba"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    why: dict[str, str] = {
        LayerKind.MAMBA2: "Jamba's Mamba layers are Mamba-1 (x_proj/dt_proj selective scan), not Mamba2"
    }
    structural = kind_findings(spec, KINDS, arch, why) + structural
    structural += mtp_findings(spec, arch)
    experts = [f is not None and flat[f] == MOE_S for _, f in pairs]
    period = _period(experts) if any(experts) else (1, 0)
    if period is None:
        structural.append(
            Finding(
                "pattern",
                None,
                "the `E` layers are not periodic: jamba places experts by expert_layer_period/expert_layer_offset",
            )
        )
        period = (1, 0)
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "attn_layer_period": 1,
            "attn_layer_offset": 0,
            "expert_layer_period": period[0],
            "expert_layer_offset": period[1],
            "num_experts": spec.moe.num_experts if spec.moe and any(experts) else 1,
            "num_experts_per_tok": spec.moe.top_k if spec.moe else 2,
            "hidden_act": ffn_activation(spec),
            "intermediate_size": (
                spec.mlp.intermediate_size
                if spec.mlp and MLP_S in flat
                else spec.moe.intermediate_size
                if spec.moe
                else 14336
            ),
        }
        | attention_fields(spec)
    )
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    act = as_str(cfg, "hidden_act")
    a = spec.attention
    attention = None
    if a is not None:
        attention = AttentionSpec(
            num_heads=as_int(cfg, "num_attention_heads"),
            num_kv_heads=as_int(cfg, "num_key_value_heads"),
            head_dim=as_int(cfg, "head_dim"),
        )
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = MoeSpec(
        num_experts=max(1, as_int(cfg, "num_experts")),
        top_k=as_int(cfg, "num_experts_per_tok"),
        intermediate_size=as_int(cfg, "intermediate_size"),
        router="softmax",
        norm_topk_prob=False,
        expert_gated=True,
        expert_activation=act,
    )
    p, o = as_int(cfg, "expert_layer_period"), as_int(cfg, "expert_layer_offset")

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if attention is not None:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # no Jamba-expressible mixer: opaque stand-in

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], MOE_S)
        if as_int(cfg, "num_experts") > 1 and j % p == o:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


FAMILY = Family(
    name="jamba",
    input_model=JambaInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=3,
    architectures=("JambaForCausalLM",),
    aliases=MappingProxyType({"num_local_experts": "num_experts"}),
    layout_keys=(("num_hidden_layers",),),
    layout_related=("attn_layer_period", "attn_layer_offset", "expert_layer_period", "expert_layer_offset"),
)
