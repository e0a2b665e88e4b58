"""The ``deepseek_v32`` family: transformers' ``DeepseekV32ForCausalLM`` (DeepSeek-V3.2-Exp, V3.2).

DeepSeek-V3 with one change, in the attention: every decoder layer is DeepSeek sparse attention
(``D``), DeepSeek-V3's multi-head latent attention in which a lightning indexer chooses, per query,
the ``index_topk`` keys it attends (``DeepseekV32Indexer``: ``wq_b``, ``wk``, ``k_norm``,
``weights_proj``).  The FFNs, the router, the norms, the RoPE with YaRN and the MTP depth are
DeepSeek-V3's, so this module reads them with ``patternc.families.deepseek_v3``'s readers and writes
them with its field writers; only the layout and the indexer are its own.

Layout: ``mlp_layer_types`` (``dense`` / ``sparse`` per layer, any order), else the class's default,
``first_k_dense_replace`` dense layers then MoE.  ``layer_types`` is ``indexed_attention`` for every
layer (transformers builds the sparse attention whatever it says; the legacy spelling
``deepseek_sparse_attention`` is remapped).  Differences from DeepSeek-V3's class that the reader
follows: the query bottleneck is required (the indexer reads its latent), the rotary layout of the
latent attention is always interleaved (no ``rope_interleave`` key), and there is no
``num_mtp_layers``: the depth is ``num_nextn_predict_layers`` (the released configs' key), else 0.
As in DeepSeek-V3, transformers builds no MTP module (``_keys_to_ignore_on_load_unexpected`` drops
``model.layers.61``), so ``stats`` counts the depth under ``mtp``, not in ``total``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

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
    pair_layers,
    paired_blocks,
)
from patternc.canonical.graph import BlockGraph, Frame, layer_label, lower_dsa, lower_mlp, lower_moe
from patternc.config.mixer_readers import MlaKeys, read_mla
from patternc.config.models import NonNegInt, PosInt
from patternc.config.readers import Built, Ctx, list_symbols
from patternc.families import deepseek_v3 as v3
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import DsaSpec, MlaSpec, MlpSpec, ModelSpec, NormSpec

KINDS = (LayerKind.DSA, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
DSA_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)
INDEXER_NORM_EPS = 1e-6
"""``nn.LayerNorm(index_head_dim, eps=1e-6)``: ``k_norm``'s epsilon, whatever ``rms_norm_eps`` says."""
MLP_TYPES = MappingProxyType({"dense": MLP_S, "sparse": MOE_S})
"""``mlp_layer_types`` names (transformers' ``ALLOWED_MLP_LAYER_TYPES``) and the symbols they spell."""
ATTENTION_TYPE = "indexed_attention"
LEGACY_ATTENTION_TYPE = "deepseek_sparse_attention"
"""``_LEGACY_LAYER_TYPE_REMAP`` turns it into ``indexed_attention``."""


class DeepseekV32Input(v3.DeepseekV3Input):
    """``model_type: deepseek_v32`` (transformers ``DeepseekV32Config``): DeepSeek-V3's keys and
    defaults, the indexer's, the layer-type lists, and the fields where the class differs."""

    q_lora_rank: PosInt = 1536  # required here: the indexer reads the query latent
    num_key_value_heads: PosInt = 128
    max_position_embeddings: PosInt = 163840
    head_dim: PosInt = 64
    """Overwritten by transformers with ``qk_rope_head_dim`` (the rotary slice)."""
    num_mtp_layers: NonNegInt = 0
    """Not a ``DeepseekV32Config`` field: without ``num_nextn_predict_layers`` there is no MTP depth."""
    output_router_logits: bool = False
    mlp_layer_types: list[str] | None = None
    """``dense`` or ``sparse`` per layer; None: ``first_k_dense_replace`` dense layers, then MoE."""
    layer_types: list[str] | None = None
    """``indexed_attention`` per layer (the only attention transformers builds for this class)."""
    index_topk: PosInt = 2048
    index_head_dim: PosInt = 128
    index_n_heads: PosInt = 64
    mlp_bias: bool = False
    """A ``DeepseekV32Config`` field that ``DeepseekV32MLP`` never reads (its projections have no bias)."""


MLA = MlaKeys(rope_interleave=None)
"""DeepSeek-V3's key names; the layout key is absent: ``DeepseekV32Attention`` always interleaves."""


def _ffn_layout(ctx: Ctx[DeepseekV32Input], n: int) -> tuple[list[str] | None, str, str]:
    """The FFN of each layer (from ``mlp_layer_types`` or ``first_k_dense_replace``), the key that
    placed them, and why a config without MoE layers has no use for the MoE keys."""
    m = ctx.model
    if m.mlp_layer_types is None:
        dense = ctx.get("first_k_dense_replace")
        ffn = [MLP_S if i < dense else MOE_S for i in range(n)]
        return (
            ffn,
            "first_k_dense_replace",
            f"every layer is dense ({ctx.q('first_k_dense_replace')} >= the layer count)",
        )
    symbols = list_symbols(ctx, "mlp_layer_types", m.mlp_layer_types, dict(MLP_TYPES))
    ctx.get("mlp_layer_types")
    if symbols is None:
        return None, "mlp_layer_types", ""
    if len(symbols) != n:
        ctx.add(
            "P908",
            f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q('mlp_layer_types')} has {len(symbols)} entries; "
            "transformers rejects this config",
            "num_hidden_layers" if ctx.has("num_hidden_layers") else "mlp_layer_types",
            secondary=ctx.secondary("mlp_layer_types"),
        )
        return None, "mlp_layer_types", ""
    return list(symbols), "mlp_layer_types", f"every entry of {ctx.q('mlp_layer_types')} is `dense`"


def _attention_layout(ctx: Ctx[DeepseekV32Input], n: int) -> bool:
    """``layer_types``: one ``indexed_attention`` per layer (False: transformers rejects the config)."""
    names = ctx.model.layer_types
    if names is None:
        return True
    ctx.get("layer_types")
    if len(names) != n:
        ctx.add(
            "P908",
            f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q('layer_types')} has {len(names)} entries; "
            "transformers rejects this config",
            "num_hidden_layers" if ctx.has("num_hidden_layers") else "layer_types",
            secondary=ctx.secondary("layer_types"),
        )
        return False
    if LEGACY_ATTENTION_TYPE in names:
        ctx.add(
            "P915",
            f"{ctx.q('layer_types')} uses the legacy layer name `{LEGACY_ATTENTION_TYPE}`",
            "layer_types",
            help=f"transformers remaps it (`{LEGACY_ATTENTION_TYPE}` -> `{ATTENTION_TYPE}`)",
        )
    other = sorted({name for name in names if name not in (ATTENTION_TYPE, LEGACY_ATTENTION_TYPE)})
    if other:
        shown = ", ".join(f"`{name}`" for name in other)
        ctx.add(
            "P916",
            f"{ctx.q('layer_types')} names {shown}, but transformers' DeepseekV32 builds DeepSeek sparse "
            f"attention in every layer (`{ATTENTION_TYPE}`) whatever it says",
            "layer_types",
            label="ignored",
        )
    return True


def _dsa(ctx: Ctx[DeepseekV32Input]) -> DsaSpec | None:
    """DeepSeek-V3's latent attention (its reader), always interleaved, plus the indexer's keys."""
    if ctx.has("rope_interleave") and not ctx.model.rope_interleave:
        ctx.add(
            "P916",
            f"{ctx.q('rope_interleave')} is false, but transformers' DeepseekV32 always interleaves the rotary "
            "channels of its latent attention (it reads no such key)",
            "rope_interleave",
            label="ignored",
        )
    mla = read_mla(ctx, MLA)
    heads, dim, topk = ctx.get("index_n_heads"), ctx.get("index_head_dim"), ctx.get("index_topk")
    if mla is None:
        return None
    if dim < mla.qk_rope_head_dim:
        ctx.add(
            "P908",
            f"{ctx.q('index_head_dim')} ({dim}) is smaller than {ctx.q('qk_rope_head_dim')} "
            f"({mla.qk_rope_head_dim}), the channels the indexer rotates",
            "index_head_dim",
            label="too small",
            secondary=ctx.secondary("qk_rope_head_dim"),
        )
        return None
    mla = mla.model_copy(update={"rope_interleave": True})
    return DsaSpec(mla=mla, index_n_heads=heads, index_head_dim=dim, index_topk=topk, index_norm_eps=INDEXER_NORM_EPS)


def read(ctx: Ctx[DeepseekV32Input]) -> Built:
    """``modeling_deepseek_v32.py``: every layer is ``DeepseekV32Attention`` (MLA + indexer), then
    ``DeepseekV32MoE`` where ``mlp_layer_types`` says ``sparse``, else ``DeepseekV32MLP``; the rest is
    DeepSeek-V3's (``deepseek_v3.read_stack``)."""
    n = ctx.get("num_hidden_layers")
    ffn, ffn_key, dense_why = _ffn_layout(ctx, n)
    if ffn is None or not _attention_layout(ctx, n):
        return Built(main_key=ffn_key)
    if ctx.has("mlp_layer_types") and ctx.has("first_k_dense_replace"):
        default = [MLP_S if i < ctx.model.first_k_dense_replace else MOE_S for i in range(n)]
        if ffn != default:  # transformers writes both, in agreement; the list wins
            ctx.add(
                "P916",
                f"{ctx.q('first_k_dense_replace')} ({ctx.model.first_k_dense_replace}) disagrees with "
                f"{ctx.q('mlp_layer_types')}, which transformers uses for the layers (DeepSeek's MTP layer still "
                "follows `first_k_dense_replace`)",
                "first_k_dense_replace",
                secondary=ctx.secondary("mlp_layer_types"),
            )
    ctx.vestigial(["mlp_bias"], "`DeepseekV32MLP` builds its projections without a bias")
    return v3.read_stack(ctx, DSA_S, ffn, ffn_key, dense_why, lambda: ("dsa", _dsa(ctx)), cls="DeepseekV32")


NOT_SPARSE: Mapping[str, str] = MappingProxyType(
    {
        LayerKind.MLA: "DeepSeek-V3.2's attention is sparse: a lightning indexer (`wq_b`, `wk`, `k_norm`, "
        "`weights_proj`) chooses `index_topk` keys per query; this latent attention has none and attends every key"
    }
)
"""Why DeepSeek-V3.2 cannot build a ``+`` layer: DeepSeek-V3's attention lacks the indexer."""


def _dsa_fields(spec: ModelSpec, mla: MlaSpec | None) -> tuple[Config, list[Finding]]:
    """DeepSeek-V3's latent-attention fields (``deepseek_v3.mla_fields``), less the rotary layout key
    this class lacks, plus the indexer's; why a layout or a query without bottleneck cannot be built."""
    if mla is None:
        return {}, []
    cfg, findings = v3.mla_fields(spec.model_copy(update={"mla": mla}))
    interleave = cfg.pop("rope_interleave", True)
    first = spec.pattern.flat.index(DSA_S) if DSA_S in spec.pattern.flat else None
    if not interleave:
        findings.append(
            Finding(DSA_S, first, "DeepSeek-V3.2 stores the latent attention's rotary channels interleaved")
        )
    if mla.q_lora_rank is None:
        findings.append(
            Finding(
                DSA_S, first, "DeepSeek-V3.2 always builds a query bottleneck (`q_lora_rank`): its indexer reads it"
            )
        )
        cfg["q_lora_rank"] = 1536
    d = spec.dsa
    if d is not None:
        if d.index_norm_eps != INDEXER_NORM_EPS:
            message = f"DeepSeek-V3.2's indexer key norm has eps {INDEXER_NORM_EPS:g}, this one {d.index_norm_eps:g}"
            findings.append(Finding(DSA_S, first, message))
        cfg |= {"index_n_heads": d.index_n_heads, "index_head_dim": d.index_head_dim, "index_topk": d.index_topk}
    return cfg, findings


def _mtp(spec: ModelSpec, leading: int, n: int) -> tuple[int, int, list[Finding]]:
    """The MTP depth and ``first_k_dense_replace``: the layers come from ``mlp_layer_types``, so the
    key only places the MTP layer's FFN (MoE when ``num_hidden_layers >= first_k_dense_replace``)."""
    mtp = spec.pattern.mtp
    if mtp is None:
        return 0, leading, []
    if mtp.flat == DSA_S + MLP_S:
        return mtp.depths, n + 1, []
    if mtp.flat == DSA_S + MOE_S:
        return mtp.depths, leading, []
    want = f"`{DSA_S}{MOE_S}` or `{DSA_S}{MLP_S}`"
    message = f"MTP block `{mtp.flat}`: each DeepSeek-V3.2 MTP depth is one decoder layer, {want}"
    return mtp.depths, leading, [Finding("pattern", None, message)]


def express(spec: ModelSpec) -> Expression:
    """DeepseekV32ForCausalLM: sparse attention + (a SwiGLU MLP or the sigmoid-routed MoE, per
    ``mlp_layer_types``), written out layer by layer."""
    arch = "deepseek_v32"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    ffns = [flat[f] if f is not None else MLP_S for _, f in pairs]
    leading = next((j for j, s in enumerate(ffns) if s == MOE_S), len(pairs))
    depths, dense, mtp = _mtp(spec, leading, len(pairs))
    mla = spec.dsa.mla if spec.dsa is not None else spec.mla
    dsa_cfg, dsa_found = _dsa_fields(spec, mla)
    moe_cfg, moe_found = v3.moe_fields(spec)
    structural = kind_findings(spec, KINDS, arch, NOT_SPARSE) + structural + dsa_found + moe_found + mtp
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "first_k_dense_replace": dense,
            "mlp_layer_types": ["sparse" if s == MOE_S else "dense" for s in ffns],
            "hidden_act": ffn_activation(spec),
            "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 18432,
            "num_nextn_predict_layers": depths,
            "rope_parameters": v3.rope_fields(mla),
        }
        | dsa_cfg
        | moe_cfg
    )
    if spec.max_position_embeddings is not None:
        cfg["max_position_embeddings"] = spec.max_position_embeddings
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    act = as_str(cfg, "hidden_act")
    dsa = None
    if mla is not None and "index_topk" in cfg:
        dsa = DsaSpec(
            mla=v3.mla_from_config(cfg, interleave=True),
            index_n_heads=as_int(cfg, "index_n_heads"),
            index_head_dim=as_int(cfg, "index_head_dim"),
            index_topk=as_int(cfg, "index_topk"),
            index_norm_eps=INDEXER_NORM_EPS,
        )
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = v3.moe_from_config(cfg, act) if moe_cfg else None

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if dsa is not None:
            return lower_dsa(frame, dsa, layer_label(m, DSA_S))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # no DeepSeek-V3.2-expressible mixer: stand-in

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], MLP_S)
        if ffns[j] == MOE_S and moe is not None:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


def _kwarg_only() -> frozenset[str]:
    """DeepSeek-V3's keyword-only keys, and the ``DeepseekV3Config`` fields this class lacks."""
    return v3.FAMILY.kwarg_only_fields | {"rope_interleave", "num_mtp_layers", "pretraining_tp"}


FAMILY = Family(
    name="deepseek_v32",
    input_model=DeepseekV32Input,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-11,  # the most specific: no other family builds `D`; unique, and before deepseek_v3
    architectures=("DeepseekV32ForCausalLM",),
    aliases=MappingProxyType({"num_local_experts": "n_routed_experts", "num_experts": "n_routed_experts"}),
    layout_keys=(("num_hidden_layers",),),
    layout_related=(
        "first_k_dense_replace",
        "mlp_layer_types",
        "layer_types",
        "num_nextn_predict_layers",
        "num_mtp_layers",
    ),
    kwarg_only_fields=_kwarg_only(),
)
