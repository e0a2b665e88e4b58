"""The ``jamba`` family: transformers' ``JambaForCausalLM`` (AI21's Jamba, Jamba-1.5).

Every decoder layer is a Mamba-1 selective scan (``S``) or attention without positional embedding
(``*``), placed by ``attn_layer_period`` / ``attn_layer_offset``, then a SwiGLU MLP (``-``) or a
softmax top-k mixture of experts (``E``, the selected weights not renormalised, no shared expert),
placed by ``expert_layer_period`` / ``expert_layer_offset``.  Jamba's Mamba-1 adds RMSNorms over the
time step, B and C (``Mamba1Spec.inner_norms``).  One ``hidden_act`` drives the convolution and the
FFNs; one ``intermediate_size`` is the MLP's and each expert's width.  Input model, layout reader and
expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Literal

from patternc.canonical.archs import (
    Config,
    Expression,
    Finding,
    as_float,
    as_int,
    as_str,
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
    lower_mamba1,
    lower_mlp,
    lower_moe,
)
from patternc.config.mixer_readers import AttentionKeys, read_attention
from patternc.config.models import (
    Activation,
    ConfigModel,
    Eps,
    NonNegFloat,
    NonNegInt,
    PosInt,
    TokenId,
)
from patternc.config.readers import Built, Ctx, check_top_k
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    AttentionSpec,
    Mamba1Spec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
)

KINDS = (LayerKind.MAMBA1, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
MAMBA_S, ATTENTION_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)

MAMBA_KEYS = (
    "mamba_d_state",
    "mamba_d_conv",
    "mamba_expand",
    "mamba_dt_rank",
    "mamba_conv_bias",
    "mamba_proj_bias",
    "mamba_inner_layernorms",
)
ATTENTION_KEYS = ("num_attention_heads", "num_key_value_heads", "head_dim")
MOE_KEYS = ("num_experts_per_tok",)


class JambaInput(ConfigModel):
    """``model_type: jamba`` (transformers ``JambaConfig``): Mamba-1 ``S`` + attention ``*``, MLP ``-`` + MoE ``E``."""

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
    eos_token_id: TokenId | list[int] = 2
    max_position_embeddings: PosInt = 262144
    attention_dropout: NonNegFloat = 0.0
    num_experts_per_tok: PosInt = 2
    num_experts: PosInt = 16
    """``num_local_experts`` is its alias (``JambaConfig.attribute_map``); 1 builds no MoE layer."""
    expert_layer_period: PosInt = 2
    expert_layer_offset: NonNegInt = 1
    attn_layer_period: PosInt = 8
    attn_layer_offset: NonNegInt = 4
    use_mamba_kernels: bool = True
    """Deprecated in transformers and without effect on the model: left alone."""
    mamba_d_state: PosInt = 16
    mamba_d_conv: PosInt = 4
    mamba_expand: PosInt = 2
    mamba_dt_rank: PosInt | Literal["auto"] = "auto"
    """``"auto"``: ``ceil(hidden_size / 16)``."""
    mamba_conv_bias: bool = True
    mamba_proj_bias: bool = False
    use_mambapy: bool = False
    use_associative_scan: bool = True
    head_dim: PosInt | None = None
    """Not a field of ``JambaConfig``, but ``JambaAttention`` reads it when a config sets it;
    otherwise ``hidden_size // num_attention_heads``."""
    mamba_inner_layernorms: bool | None = None
    """The remote-code Jamba-v0.1's switch for the dt/B/C RMSNorms; transformers' ``JambaMambaMixer``
    always builds them (false is P916)."""
    layers_block_type: list[str] | None = None
    """A read-only property of ``JambaConfig``: a config that sets it does not load (P908)."""
    layers_num_experts: list[int] | None = None
    """A read-only property of ``JambaConfig``, like ``layers_block_type``."""


def _placed(ctx: Ctx[JambaInput], what: str, period_key: str, offset_key: str, n: int) -> list[bool] | None:
    """``i % period == offset`` for each layer (``JambaConfig.layers_block_type`` / ``layers_num_experts``);
    None, with P908, when the offset is not below the period (``validate_architecture`` raises)."""
    period, offset = ctx.get(period_key), ctx.get(offset_key)
    if offset >= period:
        ctx.add(
            "P908",
            f"{ctx.q(offset_key)} ({offset}) must be smaller than {ctx.q(period_key)} ({period}), "
            f"or no layer is {what}; transformers rejects this config",
            offset_key,
            secondary=ctx.secondary(period_key),
        )
        return None
    return [i % period == offset for i in range(n)]


def _properties(ctx: Ctx[JambaInput], attention: list[bool], experts: list[int]) -> bool:
    """``layers_block_type`` / ``layers_num_experts`` in the file: properties transformers derives from
    the periods, which it cannot set (``AttributeError``), so the config does not load; True if none."""
    ok = True
    derived = {
        "layers_block_type": ["attention" if a else "mamba" for a in attention],
        "layers_num_experts": experts,
    }
    for key, value in derived.items():
        given = getattr(ctx.model, key)
        if given is None:
            continue
        agreement = "agrees with" if given == value else f"disagrees with ({value})"
        ctx.add(
            "P908",
            f"{ctx.q(key)} is a read-only property of transformers' JambaConfig, derived from the layer "
            f"periods and offsets; a config that sets it does not load (it {agreement} them)",
            key,
            label="not a setting",
        )
        ok = False
    return ok


def _no_rope(ctx: Ctx[JambaInput]) -> None:
    """``JambaAttention`` applies no positional embedding (the Mamba layers carry position)."""
    ctx.vestigial(["rope_theta", "rope_parameters", "rope_scaling"], "Jamba's attention has no RoPE")


ATTENTION = AttentionKeys(rope=_no_rope, head_dim_derived=True, bias=None, unused=ATTENTION_KEYS)


def dt_rank(hidden: int, value: int | str) -> int:
    """``JambaConfig.__post_init__``: ``"auto"`` is ``ceil(hidden_size / 16)``."""
    return math.ceil(hidden / 16) if value == "auto" else int(value)


def _mamba1(ctx: Ctx[JambaInput], hidden: int, activation: str) -> Mamba1Spec:
    """``JambaMambaMixer.__init__``; the dt/B/C RMSNorms are always built."""
    if ctx.model.mamba_inner_layernorms is False:
        ctx.add(
            "P916",
            f"{ctx.q('mamba_inner_layernorms')} is false, but transformers' JambaMambaMixer always builds "
            "the dt/B/C RMSNorms",
            "mamba_inner_layernorms",
            label="ignored",
        )
    return Mamba1Spec(
        expand=ctx.get("mamba_expand"),
        state_size=ctx.get("mamba_d_state"),
        conv_kernel=ctx.get("mamba_d_conv"),
        dt_rank=dt_rank(hidden, ctx.get("mamba_dt_rank")),
        conv_bias=ctx.get("mamba_conv_bias"),
        proj_bias=ctx.get("mamba_proj_bias"),
        activation=activation,
        inner_norms=True,
    )


def _moe(ctx: Ctx[JambaInput], activation: str) -> MoeSpec | None:
    """``JambaSparseMoeBlock``: ``JambaTopKRouter`` (softmax over every expert, top-k, the selected
    weights left unnormalised; no bias, no shared expert), gated experts of ``intermediate_size``."""
    experts, top_k = ctx.get("num_experts"), ctx.get("num_experts_per_tok")
    check_top_k(ctx, "num_experts", "num_experts_per_tok", experts, top_k)
    if top_k > experts:
        return None
    return MoeSpec(
        num_experts=experts,
        top_k=top_k,
        intermediate_size=ctx.get("intermediate_size"),
        router="softmax",
        norm_topk_prob=False,
        expert_gated=True,
        expert_activation=activation,
    )


def read(ctx: Ctx[JambaInput]) -> Built:
    """``configuration_jamba.py`` and ``modeling_jamba.py``: layer ``i`` is attention iff
    ``i % attn_layer_period == attn_layer_offset`` (else Mamba-1), and MoE iff ``num_experts > 1``
    and ``i % expert_layer_period == expert_layer_offset`` (else the MLP)."""
    n = ctx.get("num_hidden_layers")
    attention = _placed(ctx, "attention", "attn_layer_period", "attn_layer_offset", n)
    routed = _placed(ctx, "an expert layer", "expert_layer_period", "expert_layer_offset", n)
    if attention is None or routed is None:
        return Built(main_key="attn_layer_period", ffn_key="expert_layer_period")
    experts = ctx.get("num_experts")
    moe = [experts > 1 and r for r in routed]
    if not _properties(ctx, attention, [experts if r else 1 for r in routed]):
        return Built(main_key="attn_layer_period", ffn_key="expert_layer_period")
    main = "".join(
        (ATTENTION_S if a else MAMBA_S) + (MOE_S if e else MLP_S) for a, e in zip(attention, moe, strict=True)
    )
    built = Built(main=main, main_key="attn_layer_period", ffn_key="expert_layer_period")
    hidden = ctx.get("hidden_size")
    activation = ctx.get("hidden_act")
    if any(attention):
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
        if built.specs["attention"] is None:
            ctx.add(
                "P908",
                f"{ctx.q('hidden_size')} ({hidden}) // {ctx.q('num_attention_heads')} gives attention heads of "
                "0 channels (set `head_dim`)",
                "num_attention_heads",
                label="empty heads",
                secondary=ctx.secondary("hidden_size"),
            )
    else:
        ctx.vestigial(list(ATTENTION_KEYS), "the model has no attention layer")
    if not all(attention):
        built.specs["mamba1"] = _mamba1(ctx, hidden, activation)
    else:
        ctx.vestigial(list(MAMBA_KEYS), "the model has no Mamba layer")
    if any(moe):
        built.specs["moe"] = _moe(ctx, activation)
    else:
        ctx.vestigial(list(MOE_KEYS), "the model has no MoE layer (`num_experts` is 1 or no layer is placed)")
    if not all(moe):
        built.specs["mlp"] = MlpSpec(intermediate_size=ctx.get("intermediate_size"), activation=activation, gated=True)
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    return built


def _period(positions: list[bool]) -> tuple[int, int] | None:
    """(period, offset) with positions[i] == (i % period == offset) for every i, if any; a stack with
    no such layer is (n + 1, n), which places none."""
    n = len(positions)
    if not any(positions):
        return n + 1, n
    for period in range(1, n + 1):
        for offset in range(period):
            if all(positions[i] == (i % period == offset) for i in range(n)):
                return period, offset
    return None


def _placement(flat: str, pairs: list[tuple[int, int | None]], symbol: str, key: str) -> tuple[int, int, list[Finding]]:
    """The (period, offset) that places ``symbol``'s decoder layers, or a finding when none does."""
    positions = [flat[m] == symbol or (f is not None and flat[f] == symbol) for m, f in pairs]
    found = _period(positions)
    if found is not None:
        return found[0], found[1], []
    why = f"the `{symbol}` layers are not periodic: jamba places them by {key}_period / {key}_offset"
    return 1, 0, [Finding("pattern", None, why)]


def _mamba1_spec(spec: ModelSpec, cfg: Config) -> Mamba1Spec:
    """What ``JambaMambaMixer`` builds from ``cfg`` (always the dt/B/C norms, ``hidden_act`` after the conv)."""
    return Mamba1Spec(
        expand=as_int(cfg, "mamba_expand"),
        state_size=as_int(cfg, "mamba_d_state"),
        conv_kernel=as_int(cfg, "mamba_d_conv"),
        dt_rank=dt_rank(spec.hidden_size, as_int(cfg, "mamba_dt_rank")),
        conv_bias=bool(cfg["mamba_conv_bias"]),
        proj_bias=bool(cfg["mamba_proj_bias"]),
        activation=as_str(cfg, "hidden_act"),
        inner_norms=True,
    )


def _mamba_fields(spec: ModelSpec) -> Config:
    """The Mamba-1 keys of ``spec.mamba1``, or ``JambaConfig``'s defaults when the model has none."""
    m = spec.mamba1 or Mamba1Spec(expand=2, state_size=16, conv_kernel=4, dt_rank=dt_rank(spec.hidden_size, "auto"))
    return {
        "mamba_d_state": m.state_size,
        "mamba_d_conv": m.conv_kernel,
        "mamba_expand": m.expand,
        "mamba_dt_rank": m.dt_rank,
        "mamba_conv_bias": m.conv_bias,
        "mamba_proj_bias": m.proj_bias,
    }


def express(spec: ModelSpec) -> Expression:
    """JambaForCausalLM: (Mamba-1 or attention without RoPE) + (SwiGLU MLP or softmax top-k MoE, not
    renormalised, no shared expert), each placed by a period and an offset."""
    arch = "jamba"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    why: dict[str, str] = {
        LayerKind.MAMBA2: "Jamba's Mamba layers are Mamba-1 (x_proj/dt_proj selective scan), not Mamba2"
    }
    structural = kind_findings(spec, KINDS, arch, why) + structural + mtp_findings(spec, arch)
    attn_period, attn_offset, found = _placement(flat, pairs, ATTENTION_S, "attn_layer")
    structural += found
    expert_period, expert_offset, found = _placement(flat, pairs, MOE_S, "expert_layer")
    structural += found
    routed = MOE_S in flat and spec.moe is not None
    if routed and spec.moe is not None and spec.moe.num_experts == 1:
        structural.append(Finding(MOE_S, None, "a one-expert MoE: jamba builds its MLP wherever `num_experts` is 1"))
    a = spec.attention
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "attn_layer_period": attn_period,
            "attn_layer_offset": attn_offset,
            "expert_layer_period": expert_period,
            "expert_layer_offset": expert_offset,
            "num_experts": spec.moe.num_experts if routed and spec.moe is not None else 1,
            "num_experts_per_tok": spec.moe.top_k if spec.moe is not None else 2,
            "hidden_act": ffn_activation(spec),
            "intermediate_size": (
                spec.mlp.intermediate_size
                if spec.mlp is not None and MLP_S in flat
                else spec.moe.intermediate_size
                if spec.moe is not None
                else 14336
            ),
        }
        | _mamba_fields(spec)
    )
    if a is not None:
        cfg |= {"num_attention_heads": a.num_heads, "num_key_value_heads": a.num_kv_heads, "head_dim": a.head_dim}
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    act = as_str(cfg, "hidden_act")
    attention = None
    if a is not None:
        attention = AttentionSpec(
            num_heads=as_int(cfg, "num_attention_heads"),
            num_kv_heads=as_int(cfg, "num_key_value_heads"),
            head_dim=as_int(cfg, "head_dim"),
        )
    mamba = _mamba1_spec(spec, cfg)
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = MoeSpec(
        num_experts=as_int(cfg, "num_experts"),
        top_k=as_int(cfg, "num_experts_per_tok"),
        intermediate_size=as_int(cfg, "intermediate_size"),
        router="softmax",
        norm_topk_prob=False,
        expert_gated=True,
        expert_activation=act,
    )

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if attention is not None and j % attn_period == attn_offset:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        return lower_mamba1(frame, mamba, layer_label(m, MAMBA_S))

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], MOE_S)
        if as_int(cfg, "num_experts") > 1 and j % expert_period == expert_offset:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, layer_label(pairs[j][1] or pairs[j][0], MLP_S))

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
    kwarg_only_fields=frozenset({"head_dim", "mamba_inner_layernorms", "layers_block_type", "layers_num_experts"}),
)
