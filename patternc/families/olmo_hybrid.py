"""The ``olmo_hybrid`` family: transformers' ``OlmoHybridForCausalLM`` (AllenAI's OLMo Hybrid).

Every decoder layer is gated DeltaNet (``linear_attention``) or attention (``full_attention``), then
a gated MLP (``modeling_olmo_hybrid.py``).  The two layer types are built differently:

- a DeltaNet layer is a pre-norm Llama layer (``input_layernorm`` -> ``linear_attn``, residual;
  ``post_attention_layernorm`` -> MLP, residual);
- an attention layer is an OLMo 2/3 layer: *post*-norm (``self_attn`` -> ``post_attention_layernorm``,
  residual; MLP -> ``post_feedforward_layernorm``, residual), q/k RMSNorms over the whole projections,
  no output gate, and RoPE only when ``rope_theta`` is set (the released checkpoints have none: NoPE).

Its DeltaNet is Qwen3-Next's recurrence (the same gated delta rule, decay ``-exp(A_log) *
softplus(a + dt_bias)``, L2-normalised q/k, bias-free short convolution, per-head gated RMSNorm,
norm before the SiLU gate) with three differences the ``G`` kind's flavour records: separate
``q/k/v/g/a/b`` projections (``separate_projections``), beta doubled when
``linear_allow_neg_eigval`` (the default), and a gated-norm epsilon fixed at 1e-5 (``norm_eps``).
Input model, key names, layout reader and expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

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
    lower_gated_deltanet,
    lower_mlp,
)
from patternc.config.ffn_readers import MlpKeys, read_mlp
from patternc.config.mixer_readers import AttentionKeys, DeltaNetKeys, read_attention, read_gated_deltanet
from patternc.config.models import Activation, ConfigModel, Eps, NonNegFloat, PosFloat, PosInt, TokenId
from patternc.config.readers import Built, Ctx, list_symbols, read_rope
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import AttentionSpec, GatedDeltaNetSpec, MlpSpec, ModelSpec, NormSpec, RopeSpec

KINDS = (LayerKind.GATED_DELTANET, LayerKind.ATTENTION, LayerKind.MLP)
"""The layer kinds the family builds."""
DELTANET_S, ATTENTION_S, MLP_S = (symbol_of(kind) for kind in KINDS)

GATED_NORM_EPS = 1e-5
"""``OlmoHybridGatedDeltaNet.o_norm`` is built with ``eps=1e-5`` whatever ``rms_norm_eps`` says (FLA's
``FusedRMSNormGated`` default, which the checkpoints were trained with)."""


class OlmoHybridInput(ConfigModel):
    """``model_type: olmo_hybrid`` (transformers ``OlmoHybridConfig``): gated DeltaNet ``G`` + attention."""

    vocab_size: PosInt = 100352
    hidden_size: PosInt = 3840
    intermediate_size: PosInt = 11008
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 30
    num_key_value_heads: PosInt | None = None
    """None: ``num_attention_heads``."""
    hidden_act: Activation = "silu"
    max_position_embeddings: PosInt = 65536
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    pad_token_id: TokenId = 100277
    bos_token_id: TokenId = None
    eos_token_id: TokenId = 100257
    tie_word_embeddings: bool = False
    rope_parameters: dict[str, Any] | None = None
    """None with no ``rope_theta`` key: transformers fills in RoPE with base 10000."""
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Top-level spelling of the base; an explicit null is NoPE (OLMo-core's converter writes it)."""
    head_dim: PosInt | None = None
    """Not a field of ``OlmoHybridConfig``, but ``OlmoHybridAttention`` reads it when a config sets it;
    else ``hidden_size // num_attention_heads``."""
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    layer_types: list[str] | None = None
    linear_num_key_heads: PosInt | None = None
    """None: ``num_attention_heads``."""
    linear_num_value_heads: PosInt | None = None
    """None: ``num_attention_heads``."""
    linear_key_head_dim: PosInt | None = None
    """None: ``int(0.75 * hidden_size / linear_num_key_heads)``."""
    linear_value_head_dim: PosInt | None = None
    """None: ``2 * linear_key_head_dim``."""
    linear_a_log_min: float = 0.0
    linear_a_log_max: float = 16.0
    linear_dt_min: float = 0.001
    linear_dt_max: float = 0.1
    linear_dt_init_floor: float = 1e-4
    linear_conv_kernel_dim: PosInt = 4
    linear_allow_neg_eigval: bool = True


LAYER_TYPES = {"linear_attention": LayerKind.GATED_DELTANET, "full_attention": LayerKind.ATTENTION}
"""``layer_types`` entries and the mixer kind each builds (``OlmoHybridModel.__init__``: anything
but ``linear_attention`` builds attention; patternc refuses other names rather than guess)."""


def _rope(ctx: Ctx[OlmoHybridInput]) -> RopeSpec | None:
    """``OlmoHybridModel.__init__``: no rotary embedding (NoPE) when the standardised
    ``rope_parameters.rope_theta`` is null, i.e. the config says ``rope_theta: null`` (in
    ``rope_parameters`` or at the top level, ``modeling_rope_utils`` lines 785-826); RoPE over the
    whole head otherwise (``partial_rotary_factor`` is not read)."""
    m = ctx.model
    params = m.rope_parameters if ctx.has("rope_parameters") else m.rope_scaling
    if params and "rope_theta" in params:
        nope = params["rope_theta"] is None
    else:
        nope = ctx.has("rope_theta") and m.rope_theta is None
    if nope:
        ctx.get("rope_theta" if ctx.has("rope_theta") else "rope_parameters")
        return None
    return read_rope(ctx, 1.0, top_level_partial=False, uses_partial=False)


def _derived(ctx: Ctx[OlmoHybridInput], name: str) -> int:
    """``OlmoHybridConfig.__post_init__``'s values for the DeltaNet sizes left null."""
    m = ctx.model
    if name in ("linear_num_key_heads", "linear_num_value_heads"):
        return int(m.num_attention_heads)
    k_heads = m.linear_num_key_heads or m.num_attention_heads
    k_dim = m.linear_key_head_dim or int(0.75 * m.hidden_size / k_heads)
    return k_dim if name == "linear_key_head_dim" else 2 * k_dim


ATTENTION = AttentionKeys(rope=_rope, head_dim_derived=True, qk_norm=True, qk_norm_whole=True, post_norm=True)
DELTANET = DeltaNetKeys(
    k_heads="linear_num_key_heads",
    v_heads="linear_num_value_heads",
    k_head_dim="linear_key_head_dim",
    v_head_dim="linear_value_head_dim",
    conv_kernel="linear_conv_kernel_dim",
    derived=_derived,
    allow_neg_eigval="linear_allow_neg_eigval",
    separate_projections=True,
    norm_eps=GATED_NORM_EPS,
)
MLP = MlpKeys(intermediate_size="intermediate_size", activation="hidden_act", gated=True)


def _default_layer_types(n: int) -> list[str]:
    """``OlmoHybridConfig.__post_init__``: attention every 4th layer, and the last layer when that
    leaves none."""
    types = ["full_attention" if i % 4 == 3 else "linear_attention" for i in range(n)]
    if "full_attention" not in types:
        types[-1] = "full_attention"
    return types


def read(ctx: Ctx[OlmoHybridInput]) -> Built:
    """``configuration_olmo_hybrid.py`` (``__post_init__``, ``validate_architecture``) and
    ``modeling_olmo_hybrid.py`` (``OlmoHybridModel.__init__``): each layer is gated DeltaNet or
    attention, then a gated MLP; plain RMSNorm (``weight * x``)."""
    m = ctx.model
    n = ctx.get("num_hidden_layers")
    field = "layer_types"
    names = {name: symbol_of(kind) for name, kind in LAYER_TYPES.items()}
    if m.layer_types is None:
        mixers: str | None = "".join(names[t] for t in _default_layer_types(n))
        field = "num_hidden_layers"
    else:
        mixers = list_symbols(ctx, field, m.layer_types, names)
        if mixers is not None and len(mixers) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q(field)} has {len(mixers)} entries; "
                "transformers builds one layer per entry of the first count and fails on the rest",
                "num_hidden_layers" if ctx.has("num_hidden_layers") else field,
                secondary=ctx.secondary(field),
            )
            mixers = None
    if mixers is None:
        return Built(main_key=field)
    if DELTANET_S not in mixers or ATTENTION_S not in mixers:
        missing = "a 'linear_attention'" if DELTANET_S not in mixers else "a 'full_attention'"
        ctx.add(
            "P908",
            f"{ctx.q(field)} has no {missing.split()[1]} layer; OlmoHybridConfig.validate_architecture "
            f"rejects a config without {missing} layer",
            field,
        )
        return Built(main_key=field)
    main = "".join(s + MLP_S for s in mixers)
    built = Built(main=main, main_key=field)
    hidden = ctx.get("hidden_size")
    ctx.get("hidden_act")  # one activation for the MLPs and the DeltaNet convolution
    attention = read_attention(ctx, ATTENTION, hidden)
    if attention is not None and attention.rope is not None and attention.head_dim % 2:
        ctx.add(
            "P906",
            f"the attention head size is {attention.head_dim} (`head_dim`, else `hidden_size` // "
            f"{ctx.q('num_attention_heads')}): RoPE rotates channel pairs, so it must be even; "
            "OlmoHybridConfig rejects an odd `head_dim` (validate_rope), and RoPE fails on an odd derived one",
            "head_dim" if ctx.has("head_dim") else "hidden_size",
            label="odd",
        )
        attention = None
    built.specs["attention"] = attention
    built.specs["gated_deltanet"] = read_gated_deltanet(ctx, DELTANET)
    built.specs["mlp"] = read_mlp(ctx, MLP)
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    return built


def express(spec: ModelSpec) -> Expression:
    """OlmoHybridForCausalLM: (pre-norm gated DeltaNet with separate projections, or post-norm
    attention with whole-projection q/k norms and RoPE or none) + a SwiGLU MLP, plain RMSNorm."""
    arch = "olmo_hybrid"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = kind_findings(spec, KINDS, arch) + structural + mtp_findings(spec, arch)
    mixer_symbols = {flat[m] for m, _ in pairs}
    for symbol, name in ((DELTANET_S, "linear_attention"), (ATTENTION_S, "full_attention")):
        if symbol not in mixer_symbols:
            structural.append(
                Finding(
                    "pattern", None, f"{arch} needs at least one `{symbol}` layer ('{name}'): transformers rejects none"
                )
            )
    a, g = spec.attention, spec.gated_deltanet
    cfg: Config = common_fields(spec, "rms_norm_eps") | {
        "num_hidden_layers": len(pairs),
        "layer_types": ["full_attention" if flat[mi] == ATTENTION_S else "linear_attention" for mi, _ in pairs],
        "hidden_act": ffn_activation(spec),
        "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 11008,
    }
    if a is not None:
        cfg |= {
            "num_attention_heads": a.num_heads,
            "num_key_value_heads": a.num_kv_heads,
            "attention_bias": a.qkv_bias,
        }
        if a.head_dim != spec.hidden_size // a.num_heads:
            cfg["head_dim"] = a.head_dim
        if a.rope is None:
            cfg["rope_theta"] = None  # NoPE, as OLMo-core's converter writes it
        else:
            cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": a.rope.theta}
    if g is not None:
        cfg |= {
            "linear_num_key_heads": g.num_k_heads,
            "linear_num_value_heads": g.num_v_heads,
            "linear_key_head_dim": g.head_k_dim,
            "linear_value_head_dim": g.head_v_dim,
            "linear_conv_kernel_dim": g.conv_kernel,
            "linear_allow_neg_eigval": g.allow_neg_eigval,
        }
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    post = replace(frame, post_norm=True)
    act = as_str(cfg, "hidden_act")
    attention = None
    if a is not None:
        heads = as_int(cfg, "num_attention_heads")
        bias = bool(cfg["attention_bias"])
        rope_cfg = cfg.get("rope_parameters")
        theta = rope_cfg.get("rope_theta") if isinstance(rope_cfg, dict) else None
        attention = AttentionSpec(
            num_heads=heads,
            num_kv_heads=as_int(cfg, "num_key_value_heads"),
            head_dim=as_int(cfg, "head_dim") if "head_dim" in cfg else spec.hidden_size // heads,
            qkv_bias=bias,
            out_bias=bias,
            qk_norm=True,
            qk_norm_whole=True,
            post_norm=True,
            rope=None if theta is None else RopeSpec(theta=float(theta)),
        )
    gdn = None
    if g is not None:
        gdn = GatedDeltaNetSpec(
            num_k_heads=as_int(cfg, "linear_num_key_heads"),
            num_v_heads=as_int(cfg, "linear_num_value_heads"),
            head_k_dim=as_int(cfg, "linear_key_head_dim"),
            head_v_dim=as_int(cfg, "linear_value_head_dim"),
            conv_kernel=as_int(cfg, "linear_conv_kernel_dim"),
            separate_projections=True,
            allow_neg_eigval=bool(cfg["linear_allow_neg_eigval"]),
            norm_eps=GATED_NORM_EPS,
        )
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)

    def is_attention(j: int) -> bool:
        return flat[pairs[j][0]] == ATTENTION_S and attention is not None

    def mixer(j: int) -> BlockGraph:
        mi = pairs[j][0]
        if is_attention(j) and attention is not None:
            return lower_attention(frame, attention, layer_label(mi, ATTENTION_S))
        if gdn is not None:
            return lower_gated_deltanet(frame, gdn, layer_label(mi, DELTANET_S))
        return lower_mlp(frame, mlp, layer_label(mi, flat[mi]))  # no OLMo-Hybrid-expressible mixer: stand-in

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], MLP_S)
        return lower_mlp(post if is_attention(j) else frame, mlp, label)

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


FAMILY = Family(
    name="olmo_hybrid",
    input_model=OlmoHybridInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-5,  # specific (separate DeltaNet projections, post-norm attention); unique, before qwen3_next
    architectures=("OlmoHybridForCausalLM",),
    layout_keys=(("layer_types", "num_hidden_layers"),),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "head_dim"}),
)
