"""The ``qwen3_5`` family: transformers' ``Qwen3_5ForCausalLM`` (the dense Qwen3.5 / Qwen3.6 models).

Released configs are the multimodal wrapper (``model_type: qwen3_5``,
``Qwen3_5ForConditionalGeneration``) whose language model is ``text_config`` (``model_type:
qwen3_5_text``, the config ``Qwen3_5ForCausalLM`` takes and ``build`` writes).

The mixers are those of ``qwen3_5_moe`` (gated DeltaNet with separate input projections, gated
attention with q/k norms and interleaved multimodal RoPE, zero-centred RMSNorm; the shared helpers
live in ``patternc.families.qwen3_5_moe``); every feed-forward is the dense gated MLP of
``intermediate_size`` (``Qwen3_5DecoderLayer``), and every ``layer_types`` entry other than
``linear_attention`` builds attention.  Against ``qwen3_next``: the DeltaNet projections and the RoPE
differ as for the MoE flavour; the MLP is the same (Qwen3-Next builds it with every layer in
``mlp_only_layers``).
"""

from __future__ import annotations

from typing import Any

from patternc.canonical.archs import (
    Expression,
    as_int,
    as_str,
    kind_findings,
    model_blocks,
    pair_layers,
    paired_blocks,
)
from patternc.canonical.graph import BlockGraph, layer_label, lower_mlp
from patternc.config.ffn_readers import MlpKeys, read_mlp
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
from patternc.config.readers import Built, Ctx
from patternc.families.family import Family
from patternc.families.qwen3_5_moe import (
    MTP_FIELDS,
    express_mtp,
    mixer_block,
    read_mixer_specs,
    read_mixers,
    read_mtp,
    text_fields,
    text_mixers,
)
from patternc.kinds import LayerKind, symbol_of
from patternc.model import MlpSpec, ModelSpec

KINDS = (LayerKind.GATED_DELTANET, LayerKind.ATTENTION, LayerKind.MLP)
"""The layer kinds the family builds."""
MLP_S = symbol_of(LayerKind.MLP)


class Qwen3_5Input(ConfigModel):
    """``model_type: qwen3_5_text`` (transformers ``Qwen3_5TextConfig``), also read from the
    ``text_config`` of a ``qwen3_5`` wrapper."""

    vocab_size: PosInt = 248320
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 12288
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 16
    num_key_value_heads: PosInt = 4
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
    """Top-level spelling (released configs carry it); transformers' default is 0.25."""
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    head_dim: PosInt = 256
    linear_conv_kernel_dim: PosInt = 4
    linear_key_head_dim: PosInt = 128
    linear_value_head_dim: PosInt = 128
    linear_num_key_heads: PosInt = 16
    linear_num_value_heads: PosInt = 32
    layer_types: list[str] | None = None
    full_attention_interval: PosInt = 4
    """Keyword-only: used only when ``layer_types`` is absent (every ``full_attention_interval``-th
    layer is attention); released configs carry both."""
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
"""``layer_types`` entries and the mixer kind each builds (``Qwen3_5DecoderLayer``: anything but
``linear_attention`` is attention; the two names transformers' layer vocabulary has for it)."""

MLP = MlpKeys(intermediate_size="intermediate_size", activation="hidden_act", gated=True)


def read(ctx: Ctx[Qwen3_5Input]) -> Built:
    """``modular_qwen3_5.py``: gated DeltaNet or gated attention, then the dense gated MLP in every
    layer (``Qwen3_5DecoderLayer``); zero-centred RMSNorm."""
    mixers, field = read_mixers(ctx, LAYER_TYPES)
    if mixers is None:
        return Built(main_key=field)
    built = Built(main="".join(s + MLP_S for s in mixers), main_key=field, ffn_key=field)
    ctx.get("hidden_act")
    read_mixer_specs(ctx, built, mixers)
    built.specs["mlp"] = read_mlp(ctx, MLP)
    read_mtp(ctx, built, MLP_S)
    return built


def express(spec: ModelSpec) -> Expression:
    """Qwen3_5ForCausalLM: gated DeltaNet (split projections) or gated attention (q/k norms, partial
    interleaved multimodal RoPE), then the dense gated MLP, (1+w) norms."""
    arch = "qwen3_5"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    cfg = text_fields(spec, pairs)
    structural = kind_findings(spec, KINDS, arch) + structural + express_mtp(spec, arch, MLP_S, cfg)
    cfg["intermediate_size"] = spec.mlp.intermediate_size if spec.mlp else 12288
    frame, attention, gdn = text_mixers(spec, cfg)
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=as_str(cfg, "hidden_act"), gated=True)
    mixer_of = mixer_block(flat, frame, attention, gdn, mlp)

    def ffn(j: int) -> BlockGraph:
        return lower_mlp(frame, mlp, layer_label(pairs[j][1] or pairs[j][0], MLP_S))

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    blocks = paired_blocks(pairs, lambda j: mixer_of(pairs[j][0]), ffn, flat, KINDS)
    return Expression(arch, cfg, structural, [embed, *blocks, head])


FAMILY = Family(
    name="qwen3_5",
    input_model=Qwen3_5Input,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-1,  # the most specific (mrope, split DeltaNet projections); unique, and before nemotron_h
    architectures=("Qwen3_5ForCausalLM",),
    layout_keys=(("layer_types", "num_hidden_layers"),),
    layout_related=("full_attention_interval",),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "partial_rotary_factor", "full_attention_interval"}),
    checkpoint_fields=MTP_FIELDS,
    config_model_type="qwen3_5_text",
)
