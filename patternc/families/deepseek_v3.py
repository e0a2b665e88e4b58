"""The ``deepseek_v3`` family: transformers' ``DeepseekV3ForCausalLM`` (DeepSeek-V3, V3.1, R1).

Every decoder layer is multi-head latent attention (``+``) then a dense gated MLP for the first
``first_k_dense_replace`` layers and a mixture of experts after them: a sigmoid router whose
``e_score_correction_bias`` buffer steers selection only, group-limited top-k (``n_group``,
``topk_group``), ``routed_scaling_factor``, ``norm_topk_prob``, and one shared gated MLP
``n_shared_experts`` experts wide.  RoPE with YaRN scaling as the released configs give it.

MTP: ``num_nextn_predict_layers`` (transformers' ``num_mtp_layers``) depths, each one MLA + MoE
decoder layer (DeepSeek's checkpoint layer ``num_hidden_layers``: ``enorm``, ``hnorm``, ``eh_proj``,
the layer, ``shared_head.norm``).  transformers builds no MTP module and drops those weights on load,
so the depth is the pattern's MTP block and ``stats`` counts it under ``mtp``, never in ``total``
(which equals the state_dict transformers builds).  The released checkpoints also store a copy of the
embedding and of the LM head per depth (``embed_tokens``, ``shared_head.head``): shared tensors,
not counted.

Input model, key names, layout reader and expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from patternc.canonical.archs import (
    Config,
    Expression,
    Finding,
    as_dict,
    as_float,
    as_int,
    as_str,
    common_fields,
    ffn_activation,
    kind_findings,
    model_blocks,
    pair_layers,
    paired_blocks,
)
from patternc.canonical.graph import BlockGraph, Frame, layer_label, lower_mla, lower_mlp, lower_moe
from patternc.config.ffn_readers import MlpKeys, MoeKeys, read_mlp, read_moe
from patternc.config.mixer_readers import YARN_FIELDS, MlaKeys, read_mla
from patternc.config.models import Activation, ConfigModel, Eps, NonNegFloat, NonNegInt, PosFloat, PosInt, TokenId
from patternc.config.readers import Built, Ctx
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import MlaSpec, MlpSpec, ModelSpec, MoeSpec, NormSpec, RopeSpec, YarnSpec

KINDS = (LayerKind.MLA, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
MLA_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)
LATENT_NORM_EPS = 1e-6
"""``DeepseekV3RMSNorm(q_lora_rank)`` and ``(kv_lora_rank)`` take the class default, not ``rms_norm_eps``."""


class DeepseekV3Input(ConfigModel):
    """``model_type: deepseek_v3`` (transformers ``DeepseekV3Config``): MLA ``+`` with dense ``-`` then MoE ``E``."""

    vocab_size: PosInt = 129280
    hidden_size: PosInt = 7168
    intermediate_size: PosInt = 18432
    moe_intermediate_size: PosInt = 2048
    num_hidden_layers: PosInt = 61
    num_attention_heads: PosInt = 128
    num_key_value_heads: PosInt | None = 128
    """Read by the eager attention's ``repeat_kv`` only: MLA expands one key and value per head."""
    n_shared_experts: NonNegInt = 1
    n_routed_experts: PosInt = 256
    routed_scaling_factor: PosFloat = 2.5
    kv_lora_rank: PosInt = 512
    q_lora_rank: PosInt | None = 1536
    qk_rope_head_dim: PosInt = 64
    v_head_dim: PosInt | None = 128
    qk_nope_head_dim: PosInt = 128
    n_group: PosInt = 8
    topk_group: PosInt = 4
    num_experts_per_tok: PosInt = 8
    first_k_dense_replace: NonNegInt = 3
    norm_topk_prob: bool = True
    hidden_act: Activation = "silu"
    max_position_embeddings: PosInt = 4096
    rms_norm_eps: Eps = 1e-6
    bos_token_id: TokenId = 0
    eos_token_id: TokenId = 1
    pretraining_tp: PosInt | None = 1
    rope_parameters: dict[str, Any] | None = None
    rope_interleave: bool = True
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    num_mtp_layers: NonNegInt = 1
    num_nextn_predict_layers: NonNegInt | None = None
    """The name ``to_dict`` writes and the released configs use (``attribute_map``: ``num_mtp_layers``)."""
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters`` (the released configs' YaRN block)."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta``."""
    head_dim: PosInt | None = None
    """Derived by transformers (``qk_rope_head_dim``); ``to_dict`` writes it."""
    qk_head_dim: PosInt | None = None
    """Derived by transformers (``qk_nope_head_dim + qk_rope_head_dim``); ``to_dict`` writes it."""
    moe_layer_freq: PosInt | None = None
    """DeepSeek's remote code: MoE only every ``moe_layer_freq``-th layer; transformers ignores it."""
    scoring_func: str | None = None
    """DeepSeek's remote code: ``sigmoid``; transformers always routes with a sigmoid."""
    topk_method: str | None = None
    """DeepSeek's remote code: ``noaux_tc``; transformers always selects with the correction bias."""


Input = TypeVar("Input", bound=DeepseekV3Input)
"""The input model of a DeepSeek family (``DeepseekV3Input`` or its DeepSeek-V3.2 extension)."""
MLA = MlaKeys()
MOE = MoeKeys(
    experts="n_routed_experts",
    top_k="num_experts_per_tok",
    intermediate_size="moe_intermediate_size",
    activation="hidden_act",
    shared_size="moe_intermediate_size",
    router="sigmoid",
    expert_gated=True,
    shared_gated=True,
    score_correction_bias=True,
    groups=("n_group", "topk_group"),
    norm_topk_prob="norm_topk_prob",
    scaling="routed_scaling_factor",
    shared_multiplier="n_shared_experts",
    unused=(
        "n_routed_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "n_shared_experts",
        "n_group",
        "topk_group",
        "routed_scaling_factor",
        "norm_topk_prob",
    ),
)
MLP = MlpKeys(intermediate_size="intermediate_size", activation="hidden_act", gated=True, unused=("intermediate_size",))
NOT_SPARSE: Mapping[str, str] = MappingProxyType(
    {
        LayerKind.DSA: "DeepSeek-V3's latent attention attends every key: it has no lightning indexer (DeepSeek-V3.2's "
        "`wq_b`, `wk`, `k_norm`, `weights_proj`) choosing `index_topk` keys per query, as this sparse attention has"
    }
)
"""Why DeepSeek-V3 cannot build a ``D`` layer: the one thing DeepSeek-V3.2 adds to its attention."""
_REMOTE_ONLY = {"scoring_func": "sigmoid", "topk_method": "noaux_tc", "moe_layer_freq": 1}
"""Keys only DeepSeek's remote code reads, and the value that means what transformers builds."""


def remote_only(ctx: Ctx[Input], cls: str = "DeepseekV3") -> None:
    """P916 for a remote-code key whose value would build another model than transformers' ``cls`` does."""
    for key, builds in _REMOTE_ONLY.items():
        value = getattr(ctx.model, key)
        if value is not None and value != builds:
            ctx.add(
                "P916",
                f"{ctx.q(key)} is {value!r}, but transformers' {cls} ignores it and builds as if it were {builds!r}",
                key,
                label="ignored by transformers",
            )
    m = ctx.model
    derived = {"head_dim": m.qk_rope_head_dim, "qk_head_dim": m.qk_nope_head_dim + m.qk_rope_head_dim}
    for key, value in derived.items():
        given = getattr(m, key)
        if ctx.has(key) and given is not None and given != value:
            ctx.add(
                "P916",
                f"{ctx.q(key)} is {given}, but transformers derives it ({value}) and overwrites it",
                key,
                label="overwritten",
            )


def mtp_depth(ctx: Ctx[Input]) -> tuple[int, str]:
    """The MTP depth and the key it came from (``num_nextn_predict_layers`` over ``num_mtp_layers``)."""
    m = ctx.model
    if m.num_nextn_predict_layers is None:
        return ctx.get("num_mtp_layers"), "num_mtp_layers"
    if ctx.has("num_mtp_layers") and m.num_mtp_layers != m.num_nextn_predict_layers:
        ctx.add(
            "P916",
            f"{ctx.q('num_mtp_layers')} ({m.num_mtp_layers}) and {ctx.q('num_nextn_predict_layers')} "
            f"({m.num_nextn_predict_layers}) disagree; transformers stores one value for both",
            "num_mtp_layers",
            secondary=ctx.secondary("num_nextn_predict_layers"),
        )
    return ctx.get("num_nextn_predict_layers"), "num_nextn_predict_layers"


def read(ctx: Ctx[DeepseekV3Input]) -> Built:
    """``modeling_deepseek_v3.py:486-499``: every layer is ``DeepseekV3Attention`` (MLA) then
    ``DeepseekV3MLP`` while ``layer_idx < first_k_dense_replace``, ``DeepseekV3MoE`` after; plain
    RMSNorms (``weight * x``, line 44).  MTP: see the module docstring."""
    n = ctx.get("num_hidden_layers")
    dense = ctx.get("first_k_dense_replace")
    ffn = [MLP_S if i < dense else MOE_S for i in range(n)]
    dense_why = f"every layer is dense ({ctx.q('first_k_dense_replace')} >= the layer count)"
    return read_stack(ctx, MLA_S, ffn, "first_k_dense_replace", dense_why, lambda: ("mla", read_mla(ctx, MLA)))


def read_stack(
    ctx: Ctx[Input],
    mixer: str,
    ffn: list[str],
    ffn_key: str,
    dense_why: str,
    attention: Callable[[], tuple[str, object]],
    cls: str = "DeepseekV3",
) -> Built:
    """The decoder stack of the DeepSeek families: ``mixer`` then ``ffn[i]`` per layer, the MTP
    depths (one ``mixer`` + FFN layer each, MoE when ``num_hidden_layers >= first_k_dense_replace`` as
    in DeepSeek's remote code), the remote-only keys, the attention's spec (``attention()`` gives its
    ``ModelSpec`` field and value), the MoE, the dense MLP and the norm."""
    n = len(ffn)
    dense = ctx.get("first_k_dense_replace")
    main = "".join(mixer + f for f in ffn)
    depths, mtp_key = mtp_depth(ctx)
    mtp = mixer + (MOE_S if n >= dense else MLP_S)  # remote code: layer n is MoE when n >= first_k_dense_replace
    built = Built(main=main, main_key="num_hidden_layers", ffn_key=ffn_key)
    if depths:
        built.mtp, built.depths, built.mtp_key = mtp, depths, mtp_key
    remote_only(ctx, cls)
    ctx.get("hidden_act")  # one activation for every FFN, listed before the attention's keys in P911
    field, value = attention()
    built.specs[field] = value
    if MOE_S in main + built.mtp:
        built.specs["moe"] = read_moe(ctx, MOE)
    else:
        ctx.vestigial(MOE.unused, dense_why)
    if MLP_S in main + built.mtp:
        built.specs["mlp"] = read_mlp(ctx, MLP)
    else:
        ctx.vestigial(MLP.unused, "every layer is a mixture of experts, which use `moe_intermediate_size`")
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    return built


def rope_fields(a: MlaSpec | None) -> dict[str, Any]:
    """``rope_parameters`` as transformers 5 writes it (YaRN's parameters beside the base)."""
    rope = a.rope if a is not None and a.rope is not None else RopeSpec(theta=10000.0)
    y = a.rope_scaling if a is not None else None
    if y is None:
        return {"rope_type": "default", "rope_theta": rope.theta}
    extra = {name: getattr(y, name) for name in YARN_FIELDS if getattr(y, name) is not None}
    return {"rope_type": "yarn", "rope_theta": rope.theta, "factor": y.factor} | extra


def mla_fields(spec: ModelSpec) -> tuple[Config, list[Finding]]:
    a = spec.mla
    if a is None:
        return {}, []
    findings = []
    first = spec.pattern.flat.index(MLA_S) if MLA_S in spec.pattern.flat else None
    if a.rope is None:
        findings.append(Finding(MLA_S, first, "DeepSeek-V3 rotates its qk_rope_head_dim channels; this has no RoPE"))
    if a.output_gate:
        findings.append(
            Finding(MLA_S, first, "DeepSeek-V3's attention has no output gate; this one gates each head by a sigmoid")
        )
    if a.rope is not None and (a.rope.partial_factor != 1.0 or a.latent_norm_eps != LATENT_NORM_EPS):
        findings.append(
            Finding(
                MLA_S,
                first,
                f"DeepSeek-V3 rotates the whole qk_rope_head_dim and builds its latent norms with eps "
                f"{LATENT_NORM_EPS:g}; this attention has partial factor {a.rope.partial_factor:g} and eps "
                f"{a.latent_norm_eps:g}",
            )
        )
    cfg: Config = {
        "num_attention_heads": a.num_heads,
        "num_key_value_heads": a.num_heads,
        "q_lora_rank": a.q_lora_rank,
        "kv_lora_rank": a.kv_lora_rank,
        "qk_nope_head_dim": a.qk_nope_head_dim,
        "qk_rope_head_dim": a.qk_rope_head_dim,
        "v_head_dim": a.v_head_dim,
        "attention_bias": a.bias,
        "rope_interleave": a.rope_interleave,
    }
    return cfg, findings


def moe_fields(spec: ModelSpec) -> tuple[Config, list[Finding]]:
    e = spec.moe
    if e is None or MOE_S not in spec.pattern.flat + (spec.pattern.mtp.flat if spec.pattern.mtp else ""):
        return {}, []
    findings = []
    shared = e.shared_intermediate_size if e.shared_experts else 0
    if e.shared_experts > 1 or shared % e.intermediate_size:
        where = spec.pattern.flat.index(MOE_S) if MOE_S in spec.pattern.flat else None
        findings.append(
            Finding(
                MOE_S,
                where,
                f"DeepSeek-V3 builds one shared MLP of moe_intermediate_size x n_shared_experts channels; this "
                f"mixture has {e.shared_experts} shared expert(s) of {e.shared_intermediate_size} channels and "
                f"routed experts of {e.intermediate_size}",
            )
        )
    cfg: Config = {
        "n_routed_experts": e.num_experts,
        "num_experts_per_tok": e.top_k,
        "moe_intermediate_size": e.intermediate_size,
        "n_shared_experts": shared // e.intermediate_size,
        "n_group": e.n_group,
        "topk_group": e.topk_group,
        "routed_scaling_factor": e.routed_scaling_factor,
        "norm_topk_prob": e.norm_topk_prob,
    }
    return cfg, findings


def _layout(spec: ModelSpec, pairs: list[tuple[int, int | None]]) -> tuple[int, list[Finding]]:
    """``first_k_dense_replace``: the dense layers come first; a ``-`` after an ``E`` cannot be placed."""
    flat = spec.pattern.flat
    ffns = [flat[f] if f is not None else None for _, f in pairs]
    dense = next((j for j, s in enumerate(ffns) if s == MOE_S), len(pairs))
    findings = [
        Finding(
            MLP_S,
            f,
            "is a dense MLP after a mixture of experts: DeepSeek-V3 builds the dense MLPs first "
            "(`first_k_dense_replace`), then only mixtures of experts",
        )
        for (_, f), s in zip(pairs[dense:], ffns[dense:], strict=True)
        if s == MLP_S and f is not None
    ]
    return dense, findings


def _mtp(spec: ModelSpec, dense: int, n: int) -> tuple[int, int, list[Finding]]:
    """The MTP depth, ``first_k_dense_replace`` (past the last layer when every layer and the MTP
    layer are dense), and why a block other than the one MLA + FFN layer DeepSeek builds cannot be held."""
    mtp = spec.pattern.mtp
    if mtp is None:
        return 0, dense, []
    if dense == n and mtp.flat == MLA_S + MLP_S:
        return mtp.depths, n + 1, []
    want = MLA_S + (MOE_S if n >= dense else MLP_S)
    if mtp.flat == want:
        return mtp.depths, dense, []
    message = f"MTP block `{mtp.flat}`: each DeepSeek-V3 MTP depth is one decoder layer, `{want}` here"
    return mtp.depths, dense, [Finding("pattern", None, message)]


def express(spec: ModelSpec) -> Expression:
    """DeepseekV3ForCausalLM: MLA + (dense SwiGLU MLP for the first layers, then the sigmoid-routed MoE)."""
    arch = "deepseek_v3"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    dense, layout = _layout(spec, pairs)
    depths, dense, mtp = _mtp(spec, dense, len(pairs))
    mla_cfg, mla_found = mla_fields(spec)
    moe_cfg, moe_found = moe_fields(spec)
    structural = kind_findings(spec, KINDS, arch, NOT_SPARSE) + structural + layout + mla_found + moe_found + mtp
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "first_k_dense_replace": dense,
            "hidden_act": ffn_activation(spec),
            "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 18432,
            "num_nextn_predict_layers": depths,
            "rope_parameters": rope_fields(spec.mla),
        }
        | mla_cfg
        | moe_cfg
    )
    if spec.max_position_embeddings is not None:
        cfg["max_position_embeddings"] = spec.max_position_embeddings
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    act = as_str(cfg, "hidden_act")
    mla = mla_from_config(cfg) if spec.mla is not None else None
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = moe_from_config(cfg, act) if moe_cfg else None

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if mla is not None:
            return lower_mla(frame, mla, layer_label(m, MLA_S))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # no DeepSeek-expressible mixer: stand-in

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], MLP_S)
        if j >= dense and moe is not None:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


def mla_from_config(cfg: Config, interleave: bool | None = None) -> MlaSpec:
    """The latent attention DeepSeek's modeling code builds from ``cfg`` (``interleave``: the rotary
    layout when the class fixes it instead of reading ``rope_interleave``)."""
    rope_cfg = as_dict(cfg, "rope_parameters")
    yarn = None
    if rope_cfg["rope_type"] == "yarn":
        yarn = YarnSpec(**{k: v for k, v in rope_cfg.items() if k not in ("rope_type", "rope_theta")})
    return MlaSpec(
        num_heads=as_int(cfg, "num_attention_heads"),
        q_lora_rank=None if cfg["q_lora_rank"] is None else as_int(cfg, "q_lora_rank"),
        kv_lora_rank=as_int(cfg, "kv_lora_rank"),
        qk_nope_head_dim=as_int(cfg, "qk_nope_head_dim"),
        qk_rope_head_dim=as_int(cfg, "qk_rope_head_dim"),
        v_head_dim=as_int(cfg, "v_head_dim"),
        bias=bool(cfg["attention_bias"]),
        latent_norm_eps=LATENT_NORM_EPS,
        rope=RopeSpec(theta=rope_cfg["rope_theta"]),
        rope_scaling=yarn,
        rope_interleave=bool(cfg["rope_interleave"]) if interleave is None else interleave,
    )


def moe_from_config(cfg: Config, act: str) -> MoeSpec:
    """``DeepseekV3MoE`` / ``DeepseekV32MoE`` from ``cfg``: the sigmoid, bias-corrected, group-limited
    router, gated experts and one shared MLP ``n_shared_experts`` experts wide."""
    inter = as_int(cfg, "moe_intermediate_size")
    return MoeSpec(
        num_experts=as_int(cfg, "n_routed_experts"),
        top_k=as_int(cfg, "num_experts_per_tok"),
        intermediate_size=inter,
        router="sigmoid",
        score_correction_bias=True,
        n_group=as_int(cfg, "n_group"),
        topk_group=as_int(cfg, "topk_group"),
        norm_topk_prob=bool(cfg["norm_topk_prob"]),
        routed_scaling_factor=as_float(cfg, "routed_scaling_factor"),
        expert_gated=True,
        expert_activation=act,
        shared_experts=1,
        shared_intermediate_size=inter * as_int(cfg, "n_shared_experts"),
        shared_gated=True,
    )


FAMILY = Family(
    name="deepseek_v3",
    input_model=DeepseekV3Input,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-10,  # the most specific: no other family builds `+`; unique, and before nemotron_h
    architectures=("DeepseekV3ForCausalLM",),
    aliases=MappingProxyType({"num_local_experts": "n_routed_experts"}),
    layout_keys=(("num_hidden_layers",),),
    layout_related=("first_k_dense_replace", "num_nextn_predict_layers", "num_mtp_layers"),
    kwarg_only_fields=frozenset(
        {
            "num_nextn_predict_layers",
            "rope_scaling",
            "rope_theta",
            "head_dim",
            "qk_head_dim",
            "moe_layer_freq",
            "scoring_func",
            "topk_method",
        }
    ),
)
