"""The ``bamba`` family: transformers' ``BambaForCausalLM`` (IBM Bamba).

Every decoder layer is one mixer (attention at ``attn_layer_indices``, else Mamba2 with ``mamba_*``
keys) and a gated MLP.  This module holds its input model, the key names its kinds are read with,
its layout reader, its expresser for the canonical map and its ``transformers-bamba`` profile.
"""

from __future__ import annotations

from patternc.canonical.archs import (
    Config,
    Expression,
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
)
from patternc.config.ffn_readers import MlpKeys, read_mlp
from patternc.config.mixer_readers import AttentionKeys, MambaKeys, read_attention, read_mamba
from patternc.config.models import (
    Activation,
    Eps,
    Factor,
    MambaHybridInput,
    NonNegFloat,
    NonNegInt,
    PosInt,
    TokenId,
)
from patternc.config.readers import (
    Built,
    Ctx,
    read_rope,
)
from patternc.families.family import Family
from patternc.families.transformers_facts import EXPAND_FAILURE, NO_SEQ_LENGTH
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    AttentionSpec,
    MlpSpec,
    ModelSpec,
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
)

KINDS = (LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP)
"""The layer kinds the family builds."""
MAMBA_S, ATTENTION_S, MLP_S = (symbol_of(kind) for kind in KINDS)


class BambaInput(MambaHybridInput):
    """``model_type: bamba`` (transformers ``BambaConfig``)."""

    vocab_size: PosInt = 128000
    tie_word_embeddings: bool = False
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 14336
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = 8
    hidden_act: Activation = "silu"
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-5
    num_logits_to_keep: NonNegInt | None = 1
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    max_position_embeddings: PosInt = 262144
    attn_layer_indices: list[int] | None = None
    z_loss_coefficient: NonNegFloat | None = 0.0
    mlp_bias: bool = False
    partial_rotary_factor: Factor | None = None
    """Ignored by transformers: ``BambaConfig`` forces 0.5 unless ``rope_parameters`` names one."""


def _rope(ctx: Ctx[BambaInput]) -> RopeSpec | None:
    return read_rope(ctx, 0.5, top_level_partial=False)


ATTENTION = AttentionKeys(rope=_rope, head_dim_derived=True)
MAMBA = MambaKeys(
    num_heads="mamba_n_heads",
    head_dim="mamba_d_head",
    n_groups="mamba_n_groups",
    state_size="mamba_d_state",
    conv_kernel="mamba_d_conv",
    expand="mamba_expand",
    chunk_size="mamba_chunk_size",
    conv_bias="mamba_conv_bias",
    proj_bias="mamba_proj_bias",
    activation="hidden_act",
    time_step="time_step_limit",
    inner_from="expand_nullable",
)
"""Bamba's Mamba2 keys (GraniteMoeHybrid's too: both read ``MambaHybridInput``)."""
MLP = MlpKeys(intermediate_size="intermediate_size", activation="hidden_act", gated=True, bias="mlp_bias")


def read(ctx: Ctx[BambaInput]) -> Built:
    """``configuration_bamba.py:70-113``: every layer is a mixer (attention at ``attn_layer_indices``,
    else Mamba2) followed by a gated MLP (``modeling_bamba.py:805-818``)."""
    n = ctx.get("num_hidden_layers")
    indices = ctx.get("attn_layer_indices") or []
    ignored = sorted({i for i in indices if not 0 <= i < n})
    if ignored:
        ctx.add(
            "P916",
            f"{ctx.q('attn_layer_indices')} holds {', '.join(map(str, ignored))}, outside 0..{n - 1}; "
            "transformers ignores them",
            "attn_layer_indices",
            label="ignored",
        )
    if len(indices) != len(set(indices)):
        ctx.add(
            "P916",
            f"{ctx.q('attn_layer_indices')} repeats an index; transformers ignores the repeat",
            "attn_layer_indices",
        )
    attention = set(indices)
    mixers = [symbol_of(LayerKind.ATTENTION) if i in attention else symbol_of(LayerKind.MAMBA2) for i in range(n)]
    built = Built(main="".join(s + symbol_of(LayerKind.MLP) for s in mixers), main_key="attn_layer_indices")
    hidden = ctx.get("hidden_size")
    if attention & set(range(n)):
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
    if attention != set(range(n)):
        built.specs["mamba"] = read_mamba(ctx, MAMBA, hidden)
    built.specs["mlp"] = read_mlp(ctx, MLP)
    if ctx.has("partial_rotary_factor"):
        ctx.add(
            "P916",
            f"{ctx.q('partial_rotary_factor')} is ignored: "
            "BambaConfig sets 0.5 unless `rope_parameters` names a factor",
            "partial_rotary_factor",
            label="ignored",
        )
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    return built


def express(spec: ModelSpec) -> Expression:
    """BambaForCausalLM: every layer is (Mamba2 or attention) + a SwiGLU MLP; attention always has RoPE."""
    arch = "bamba"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = kind_findings(spec, KINDS, arch) + structural
    expand, expand_findings = integer_expand(spec, arch, "mamba_expand")
    structural += expand_findings + mtp_findings(spec, arch)
    a = spec.attention
    rope = a.rope if a is not None and a.rope is not None else RopeSpec(theta=10000.0, partial_factor=0.5)
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "attn_layer_indices": [j for j, (m, _) in enumerate(pairs) if flat[m] == ATTENTION_S],
            "hidden_act": shared_activation(spec),
            "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 14336,
            "mlp_bias": spec.mlp.bias if spec.mlp else False,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": rope.theta,
                "partial_rotary_factor": rope.partial_factor,
            },
        }
        | attention_fields(spec)
        | mamba_fields(spec, MAMBA, expand)
    )
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    act = as_str(cfg, "hidden_act")
    rope_cfg = as_dict(cfg, "rope_parameters")
    mlp = MlpSpec(
        intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True, bias=bool(cfg["mlp_bias"])
    )
    mamba = mamba_from(cfg, MAMBA, act, dt_limit(cfg)) if spec.mamba is not None else None
    attention = None
    if a is not None:
        bias = bool(cfg["attention_bias"])
        attention = AttentionSpec(
            num_heads=as_int(cfg, "num_attention_heads"),
            num_kv_heads=as_int(cfg, "num_key_value_heads"),
            head_dim=as_int(cfg, "head_dim"),
            qkv_bias=bias,
            out_bias=bias,
            rope=RopeSpec(theta=rope_cfg["rope_theta"], partial_factor=rope_cfg["partial_rotary_factor"]),
        )
    attn_layers = set(cfg["attn_layer_indices"])  # type: ignore[call-overload]

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if j in attn_layers and attention is not None:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        if mamba is not None:
            return lower_mamba(frame, mamba, layer_label(m, MAMBA_S))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # unreachable for valid specs

    def ffn(j: int) -> BlockGraph:
        f = pairs[j][1]
        return lower_mlp(frame, mlp, layer_label(f if f is not None else pairs[j][0], MLP_S))

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    blocks = [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head]
    return Expression(arch, cfg, structural, blocks)


def profile() -> Profile:
    t = "transformers bamba"
    return Profile(
        name="transformers-bamba",
        consumer="transformers BambaForCausalLM (model_type bamba)",
        description="every layer is one mixer (`attn_layer_indices` → `*`, else `M`) plus one gated MLP",
        versions=("checked against 5.24.0 [verified]",),
        rules=(
            Rule(
                "P301",
                "alphabet `M * -`: no MoE, no other mixer",
                "§6 (Bamba row); modeling_bamba BambaDecoderLayer",
                main_alphabet(t, KINDS, "Bamba has no layer kind for {symbol}"),
            ),
            Rule(
                "P308",
                "every mixer followed by exactly one `-` (the layer's own MLP)",
                "§6 (Bamba row); product.md §1",
                mixer_ffn_pairs(t, (LayerKind.MLP,), "a Bamba decoder layer is mixer + MLP"),
            ),
            Rule(
                "P306",
                "no attention index: forward raises with the cache on",
                "verified 5.24.0",
                needs_attention_for_cache(t, NO_SEQ_LENGTH),
            ),
            Rule("P305", "no MTP in the config", "§6 (Bamba row)", mtp_dropped(t, "BambaConfig has no MTP fields")),
            Rule(
                "P311",
                "Mamba heads × head_dim = integer expand × hidden_size",
                "verified 5.24.0 (validate_architecture)",
                mamba_inner_size(t, EXPAND_FAILURE),
            ),
        ),
    )


FAMILY = Family(
    name="bamba",
    input_model=BambaInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=1,
    architectures=("BambaForCausalLM",),
    layout_keys=(("num_hidden_layers",), ("attn_layer_indices",)),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "head_dim", "partial_rotary_factor"}),
    profile=profile,
)
