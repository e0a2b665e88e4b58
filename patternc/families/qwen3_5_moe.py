"""The ``qwen3_5_moe`` family: transformers' ``Qwen3_5MoeForCausalLM`` (Qwen3.5 and Qwen3.6 MoE).

Released configs are the multimodal wrapper (``model_type: qwen3_5_moe``,
``Qwen3_5MoeForConditionalGeneration``) whose language model is ``text_config`` (``model_type:
qwen3_5_moe_text``, the config ``Qwen3_5MoeForCausalLM`` takes and ``build`` writes); the reader
reads the text config and leaves the vision tower and ``quantization_config`` alone.

How it differs from ``qwen3_next`` (``modular_qwen3_5_moe.py`` and ``modular_qwen3_5.py`` against
``modeling_qwen3_next.py``, transformers 5.24), which is what the canonical map reports:

- gated DeltaNet: separate ``in_proj_qkv``, ``in_proj_z``, ``in_proj_b``, ``in_proj_a``
  (``Qwen3_5GatedDeltaNet.__init__``) where Qwen3-Next fuses ``in_proj_qkvz`` and ``in_proj_ba``
  with its per-key-head grouping (``fix_query_key_value_ordering``): the same function up to a
  fixed permutation of weight rows, not the same weights (``GatedDeltaNetSpec.split_projections``);
- attention RoPE: multimodal, interleaved (``Qwen3_5TextRotaryEmbedding``: three position streams,
  ``mrope_section`` default ``[11, 11, 10]``, always interleaved, ``mrope_interleaved`` is not read);
  on text alone the three streams are equal and it computes plain RoPE, but the model takes
  three-stream positions, so it is a different function (``RopeSpec.mrope_section``);
- feed-forward: every layer is the sparse MoE (no ``mlp_only_layers``, ``decoder_sparse_step`` or
  dense ``intermediate_size``: the config class deletes them), and the router always renormalises
  its top-k weights (``Qwen3VLMoeTextTopKRouter``; no ``norm_topk_prob``);
- the same: gated attention with q/k norms (``Qwen3_5MoeAttention(Qwen3NextAttention)``),
  zero-centred RMSNorm, the experts, the sigmoid-gated shared expert, the decoder layer.

Helpers shared with the dense ``qwen3_5`` family (layout, multimodal RoPE, the pieces of the
expression) live here, since both text configs are ``Qwen3NextConfig`` subclasses with the same
mixer keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from patternc.config.ffn_readers import MoeKeys, read_moe
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
from patternc.config.readers import Built, Ctx, list_symbols, read_rope
from patternc.families.family import Family
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

KINDS = (LayerKind.GATED_DELTANET, LayerKind.ATTENTION, LayerKind.MOE)
"""The layer kinds the family builds."""
DELTANET_S, ATTENTION_S, MOE_S = (symbol_of(kind) for kind in KINDS)

MROPE_SECTION = (11, 11, 10)
"""``Qwen3_5TextRotaryEmbedding``'s ``mrope_section`` when ``rope_parameters`` has none."""


class Qwen3_5MoeInput(ConfigModel):
    """``model_type: qwen3_5_moe_text`` (transformers ``Qwen3_5MoeTextConfig``), also read from the
    ``text_config`` of a ``qwen3_5_moe`` wrapper."""

    vocab_size: PosInt = 248320
    hidden_size: PosInt = 2048
    num_hidden_layers: PosInt = 40
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
    """Top-level spelling (released configs carry it); transformers' default is 0.25."""
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    head_dim: PosInt = 256
    linear_conv_kernel_dim: PosInt = 4
    linear_key_head_dim: PosInt = 128
    linear_value_head_dim: PosInt = 128
    linear_num_key_heads: PosInt = 16
    linear_num_value_heads: PosInt = 32
    moe_intermediate_size: PosInt = 512
    shared_expert_intermediate_size: PosInt = 512
    num_experts_per_tok: PosInt = 8
    num_experts: PosInt = 256
    layer_types: list[str] | None = None
    full_attention_interval: PosInt = 4
    """Keyword-only: used only when ``layer_types`` is absent (every ``full_attention_interval``-th
    layer is attention); released configs carry both."""
    mtp_num_hidden_layers: NonNegInt = 0
    """Not a transformers field (see ``read_mtp``): the MTP decoder layers the checkpoint holds."""
    mtp_use_dedicated_embeddings: bool = False
    """Not a transformers field: whether the MTP block has an embedding of its own."""
    pad_token_id: TokenId = None
    bos_token_id: TokenId = None
    eos_token_id: TokenId = None


MTP_FIELDS = frozenset({"mtp_num_hidden_layers", "mtp_use_dedicated_embeddings"})
"""The MTP keys of Qwen3-Next and Qwen3.5 configs, which transformers' classes do not define."""

LAYER_TYPES = {"linear_attention": LayerKind.GATED_DELTANET, "full_attention": LayerKind.ATTENTION}
"""``layer_types`` entries and the mixer kind each builds (``Qwen3_5MoeDecoderLayer``: any other
entry builds no mixer at all, so it is refused)."""


def read_mixers(ctx: Ctx[Any], layer_types: dict[str, LayerKind]) -> tuple[str | None, str]:
    """The mixer of each decoder layer (``layer_types``, else ``full_attention_interval``), and the
    key that placed them.  A ``full_attention_interval`` that disagrees with ``layer_types`` is a
    P916 warning: transformers pops it and builds the list."""
    n = ctx.get("num_hidden_layers")
    names = {name: symbol_of(kind) for name, kind in layer_types.items()}
    interval_of = [(i + 1) % ctx.model.full_attention_interval == 0 for i in range(n)]
    if ctx.model.layer_types is None:
        ctx.get("full_attention_interval")
        every = [names["full_attention"] if attn else names["linear_attention"] for attn in interval_of]
        return "".join(every), "full_attention_interval"
    field = "layer_types"
    mixers = list_symbols(ctx, field, ctx.model.layer_types, names)
    if mixers is not None and len(mixers) != n:
        ctx.add(
            "P908",
            f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q(field)} has {len(mixers)} entries; "
            "transformers rejects this config",
            "num_hidden_layers" if ctx.has("num_hidden_layers") else field,
            secondary=ctx.secondary(field),
        )
        return None, field
    if mixers is not None and ctx.has("full_attention_interval"):
        attention = names["full_attention"]
        if [s == attention for s in mixers] == interval_of:
            ctx.vestigial(["full_attention_interval"], "`layer_types` is given (and says the same)")
        else:
            ctx.add(
                "P916",
                f"{ctx.q('full_attention_interval')} is {ctx.model.full_attention_interval}, which would place "
                f"attention elsewhere than {ctx.q(field)}; transformers ignores it when {ctx.q(field)} is given",
                "full_attention_interval",
                secondary=ctx.secondary(field),
            )
            ctx.reported.add("full_attention_interval")
    return mixers, field


def read_mrope(ctx: Ctx[Any], rope: RopeSpec | None) -> RopeSpec | None:
    """``rope`` with Qwen3.5's multimodal sections (``rope_parameters.mrope_section``, default
    ``[11, 11, 10]``); always interleaved, whatever ``mrope_interleaved`` says (a P916 warning when
    it says false)."""
    if rope is None:
        return None
    params_field = "rope_parameters" if ctx.has("rope_parameters") else "rope_scaling"
    params = getattr(ctx.model, params_field, None) or {}
    section = params.get("mrope_section")
    if section is None:
        section = list(MROPE_SECTION)
        ctx.defaults_used[ctx.prefix + "rope_parameters.mrope_section"] = section
    if not (
        isinstance(section, list)
        and len(section) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in section)
    ):
        ctx.add(
            "P906",
            f"`{ctx.prefix}{params_field}.mrope_section` is {section!r}: it must be three positive integers "
            "(the temporal, height and width frequency pairs)",
            params_field,
        )
        return None
    if params.get("mrope_interleaved") is False:
        ctx.add(
            "P916",
            f"`{ctx.prefix}{params_field}.mrope_interleaved` is false, but Qwen3.5's rotary embedding always "
            "interleaves the three position streams",
            params_field,
        )
    return rope.model_copy(update={"mrope_section": tuple(section), "mrope_interleaved": True})


def _rope(ctx: Ctx[Any]) -> RopeSpec | None:
    return read_mrope(ctx, read_rope(ctx, 0.25, top_level_partial=True))


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
)


def read_mixer_specs(ctx: Ctx[Any], built: Built, mixers: str) -> None:
    """The attention and gated DeltaNet flavours of a Qwen3.5 text config, and its norm."""
    hidden = ctx.get("hidden_size")
    if ATTENTION_S in mixers:
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
    if DELTANET_S in mixers:
        gdn = read_gated_deltanet(ctx, DELTANET)
        built.specs["gated_deltanet"] = None if gdn is None else gdn.model_copy(update={"split_projections": True})
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"), unit_offset=True)


def read_mtp(ctx: Ctx[Any], built: Built, ffn: str) -> None:
    """Qwen's multi-token prediction block, which transformers never builds (``Qwen3_5ForCausalLM``
    drops ``mtp.*`` on load) and the serving engines do (vLLM ``qwen3_5_mtp.py`` / ``qwen3_next_mtp.py``,
    SGLang ``qwen3_5_mtp.py``): ``mtp.pre_fc_norm_embedding``, ``mtp.pre_fc_norm_hidden``, ``mtp.fc``
    (2h -> h, no bias), ``mtp_num_hidden_layers`` decoder layers of full attention then the family's
    FFN (``ffn``), and ``mtp.norm``.  One such layer is one MTP depth of the IR (fc, three norms and the
    layer: ``stats`` counts it under ``mtp``, never in ``total``).  With several layers the engines share
    one fc and its norms among them, which the IR's MTP block (one set per depth) cannot say: P914.  An
    absent key is no MTP, and is not a transformers default (none exists), so it is never listed by P911."""
    n = ctx.get("mtp_num_hidden_layers") if ctx.has("mtp_num_hidden_layers") else 0
    dedicated = ctx.get("mtp_use_dedicated_embeddings") if ctx.has("mtp_use_dedicated_embeddings") else False
    if n == 0:
        if dedicated:
            ctx.vestigial(["mtp_use_dedicated_embeddings"], "the config has no MTP layer")
        return
    if dedicated:
        ctx.add(
            "P914",
            f"{ctx.q('mtp_use_dedicated_embeddings')} is true: an MTP block with an embedding of its own, "
            "which patternc's MTP block (it shares the model's embedding) cannot express",
            "mtp_use_dedicated_embeddings",
            label="not expressible",
        )
    if n > 1:
        ctx.add(
            "P914",
            f"{ctx.q('mtp_num_hidden_layers')} is {n}: Qwen's {n} MTP layers share one `fc` and its norms, "
            "which patternc's MTP block (one set per depth) cannot express",
            "mtp_num_hidden_layers",
            label="not expressible",
            help="released Qwen3-Next and Qwen3.5 checkpoints have 1",
        )
    built.mtp, built.depths, built.mtp_key = ATTENTION_S + ffn, 1, "mtp_num_hidden_layers"


def express_mtp(spec: ModelSpec, arch: str, ffn: str, cfg: Config) -> list[Finding]:
    """The MTP block in Qwen's terms (``read_mtp``): one depth of full attention then ``ffn`` is
    ``mtp_num_hidden_layers: 1``; any other block is a finding (and none is 0)."""
    mtp = spec.pattern.mtp
    if mtp is None:
        return []
    want = ATTENTION_S + ffn
    if mtp.flat == want and mtp.depths == 1:
        cfg["mtp_num_hidden_layers"] = 1
        return []
    return [
        Finding(
            "pattern",
            None,
            f"MTP block `{mtp.flat}` x{mtp.depths}: {arch}'s checkpoints hold one MTP layer `{want}` "
            "(`mtp_num_hidden_layers: 1`)",
        )
    ]


def read(ctx: Ctx[Qwen3_5MoeInput]) -> Built:
    """``modular_qwen3_5_moe.py``: gated DeltaNet or gated attention (``Qwen3_5MoeDecoderLayer``), then
    the sparse MoE in every layer (softmax router that always renormalises, gated experts,
    sigmoid-gated shared expert); zero-centred RMSNorm (``Qwen3NextRMSNorm``: ``1 + weight``)."""
    mixers, field = read_mixers(ctx, LAYER_TYPES)
    if mixers is None:
        return Built(main_key=field)
    built = Built(main="".join(s + MOE_S for s in mixers), main_key=field, ffn_key=field)
    ctx.get("hidden_act")  # one activation for every FFN, listed before the mixers' keys in P911
    read_mixer_specs(ctx, built, mixers)
    built.specs["moe"] = read_moe(ctx, MOE)
    read_mtp(ctx, built, MOE_S)
    return built


def text_fields(spec: ModelSpec, pairs: list[tuple[int, int | None]]) -> Config:
    """The config fields a Qwen3.5 text config shares, dense or MoE: layers, norm, attention, RoPE
    (with its multimodal sections), gated DeltaNet."""
    flat = spec.pattern.flat
    a = spec.attention
    rope = a.rope if a is not None and a.rope is not None else RopeSpec(theta=10000.0, partial_factor=0.25)
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "layer_types": ["full_attention" if flat[m] == ATTENTION_S else "linear_attention" for m, _ in pairs],
            "hidden_act": ffn_activation(spec),
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": rope.theta,
                "partial_rotary_factor": rope.partial_factor,
                "mrope_section": list(rope.mrope_section or MROPE_SECTION),
                "mrope_interleaved": True,
            },
        }
        | attention_fields(spec)
    )
    if spec.gated_deltanet is not None:
        g = spec.gated_deltanet
        cfg |= {
            "linear_num_key_heads": g.num_k_heads,
            "linear_num_value_heads": g.num_v_heads,
            "linear_key_head_dim": g.head_k_dim,
            "linear_value_head_dim": g.head_v_dim,
            "linear_conv_kernel_dim": g.conv_kernel,
        }
    return cfg


def text_mixers(spec: ModelSpec, cfg: Config) -> tuple[Frame, AttentionSpec | None, GatedDeltaNetSpec | None]:
    """What a Qwen3.5 text config's mixers compute: the frame, the gated attention with q/k norms and
    interleaved multimodal RoPE, and the gated DeltaNet with separate input projections."""
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps"), unit_offset=True))
    attention = None
    if spec.attention is not None:
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
            rope=RopeSpec(
                theta=rope_cfg["rope_theta"],
                partial_factor=rope_cfg["partial_rotary_factor"],
                mrope_section=tuple(rope_cfg["mrope_section"]),
                mrope_interleaved=True,
            ),
        )
    gdn = None
    if spec.gated_deltanet is not None:
        gdn = GatedDeltaNetSpec(
            num_k_heads=as_int(cfg, "linear_num_key_heads"),
            num_v_heads=as_int(cfg, "linear_num_value_heads"),
            head_k_dim=as_int(cfg, "linear_key_head_dim"),
            head_v_dim=as_int(cfg, "linear_value_head_dim"),
            conv_kernel=as_int(cfg, "linear_conv_kernel_dim"),
            split_projections=True,
        )
    return frame, attention, gdn


def mixer_block(
    flat: str, frame: Frame, attention: AttentionSpec | None, gdn: GatedDeltaNetSpec | None, stand_in: MlpSpec
) -> Callable[[int], BlockGraph]:
    """The mixer block of the spec layer at index ``m`` of ``flat``, as a Qwen3.5 text model builds it."""

    def mixer(m: int) -> BlockGraph:
        if flat[m] == ATTENTION_S and attention is not None:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        if gdn is not None:
            return lower_gated_deltanet(frame, gdn, layer_label(m, DELTANET_S))
        return lower_mlp(frame, stand_in, layer_label(m, flat[m]))  # no Qwen3.5-expressible mixer: stand-in

    return mixer


def express(spec: ModelSpec) -> Expression:
    """Qwen3_5MoeForCausalLM: gated DeltaNet (split projections) or gated attention (q/k norms,
    partial interleaved multimodal RoPE), then the MoE with a gated shared expert, (1+w) norms."""
    arch = "qwen3_5_moe"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    cfg = text_fields(spec, pairs)
    structural = kind_findings(spec, KINDS, arch) + structural + express_mtp(spec, arch, MOE_S, cfg)
    m = spec.moe
    cfg |= {
        "num_experts": m.num_experts if m else 256,
        "num_experts_per_tok": m.top_k if m else 8,
        "moe_intermediate_size": m.intermediate_size if m else 512,
        "shared_expert_intermediate_size": (m.shared_intermediate_size if m else None) or 512,
    }
    frame, attention, gdn = text_mixers(spec, cfg)
    act = as_str(cfg, "hidden_act")
    moe = MoeSpec(
        num_experts=as_int(cfg, "num_experts"),
        top_k=as_int(cfg, "num_experts_per_tok"),
        intermediate_size=as_int(cfg, "moe_intermediate_size"),
        router="softmax",
        norm_topk_prob=True,
        expert_gated=True,
        expert_activation=act,
        shared_experts=1,
        shared_intermediate_size=as_int(cfg, "shared_expert_intermediate_size"),
        shared_gated=True,
        shared_expert_gate=True,
    )
    stand_in = MlpSpec(intermediate_size=as_int(cfg, "moe_intermediate_size"), activation=act, gated=True)
    mixer_of = mixer_block(flat, frame, attention, gdn, stand_in)

    def ffn(j: int) -> BlockGraph:
        return lower_moe(frame, moe, layer_label(pairs[j][1] or pairs[j][0], MOE_S))

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    blocks = paired_blocks(pairs, lambda j: mixer_of(pairs[j][0]), ffn, flat, KINDS)
    return Expression(arch, cfg, structural, [embed, *blocks, head])


FAMILY = Family(
    name="qwen3_5_moe",
    input_model=Qwen3_5MoeInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-2,  # the most specific (mrope, split DeltaNet projections); unique, and before nemotron_h
    architectures=("Qwen3_5MoeForCausalLM",),
    layout_keys=(("layer_types", "num_hidden_layers"),),
    layout_related=("full_attention_interval",),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "partial_rotary_factor", "full_attention_interval"}),
    checkpoint_fields=MTP_FIELDS,
    config_model_type="qwen3_5_moe_text",
)
