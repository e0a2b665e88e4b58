"""The ``nemotron_h`` family: transformers' ``NemotronHForCausalLM`` (NVIDIA Nemotron-H).

One kind per layer (``layers_block_type`` or the ``hybrid_override_pattern`` string, plus an MTP
block), each kind's keys named here as data for the per-kind readers.  Input model (with the
Megatron-style aliases NVIDIA's configs use), layout reader, expresser and the
``transformers-nemotron_h`` profile.
"""

from __future__ import annotations

from types import MappingProxyType

from patternc.canonical.archs import (
    Config,
    Expression,
    as_float,
    as_int,
    as_str,
    common_fields,
    ffn_activation,
    kind_findings,
    mamba_from,
    model_blocks,
)
from patternc.canonical.graph import (
    BlockGraph,
    Frame,
    layer_label,
    lower_attention,
    lower_mamba,
    lower_mlp,
    lower_moe,
)
from patternc.config.ffn_readers import MlpKeys, MoeKeys, read_mlp, read_moe
from patternc.config.mixer_readers import AttentionKeys, MambaKeys, read_attention, read_mamba
from patternc.config.models import (
    ROPE_KEYS,
    Activation,
    ConfigModel,
    Eps,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    TimeStepLimit,
    TokenId,
)
from patternc.config.readers import (
    Built,
    Ctx,
    list_symbols,
    pattern_text,
)
from patternc.convert import NAME_TO_SYMBOL
from patternc.families.family import Family
from patternc.families.transformers_facts import NO_SEQ_LENGTH
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    AttentionSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
)
from patternc.symbols import BY_SYMBOL
from patternc.targets.rules import (
    Profile,
    Rule,
    main_alphabet,
    mtp_alphabet,
    mtp_dropped,
    needs_attention_for_cache,
    requires_version,
)

KINDS = (LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
MAMBA_S, ATTENTION_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)


class NemotronHInput(ConfigModel):
    """``model_type: nemotron_h`` (transformers ``NemotronHConfig``, NVIDIA's remote code)."""

    vocab_size: PosInt = 131072
    hidden_size: PosInt = 4096
    layers_block_type: list[str] | None = None
    """The layer list, in the current (``linear_attention``…) or legacy (``mamba``…) vocabulary."""
    hybrid_override_pattern: str | None = None
    """The older one-character-per-layer spelling (``M-M*-``); used only when no list is given."""
    num_hidden_layers: PosInt | None = None
    """Deprecated in transformers: the layer count comes from the pattern."""
    tie_word_embeddings: bool = False
    num_logits_to_keep: NonNegInt | None = 1
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = 8
    head_dim: PosInt = 128
    max_position_embeddings: PosInt = 4096
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    sliding_window: PosInt | None = None
    intermediate_size: PosInt = 21504
    mlp_hidden_act: Activation = "relu2"
    mlp_bias: bool = False
    use_mamba_kernels: bool = True
    ssm_state_size: PosInt = 128
    mamba_num_heads: PosInt = 128
    mamba_head_dim: PosInt = 64
    mamba_hidden_act: Activation = "silu"
    n_groups: PosInt = 8
    conv_kernel: PosInt = 4
    expand: PosInt = 2
    time_step_min: NonNegFloat = 0.001  # the clamp's lower bound for dt: 0 (a converted Mamba2's) is no clamp
    time_step_max: PosFloat = 0.1
    time_step_limit: TimeStepLimit = [0.0, float("inf")]  # noqa: RUF012 (a pydantic field: copied per instance)
    time_step_floor: NonNegFloat = 1e-4
    use_conv_bias: bool = True
    chunk_size: PosInt = 128
    mamba_proj_bias: bool = False
    mamba_ssm_cache_dtype: str = "float32"
    n_routed_experts: PosInt = 8
    n_shared_experts: NonNegInt = 1
    moe_intermediate_size: PosInt = 7688
    moe_shared_expert_intermediate_size: PosInt = 7688
    moe_latent_size: PosInt | None = None
    moe_shared_expert_overlap: bool = True
    num_experts_per_tok: PosInt = 2
    routed_scaling_factor: PosFloat = 1.0
    n_group: PosInt = 1
    topk_group: PosInt = 1
    norm_topk_prob: bool = True
    num_nextn_predict_layers: NonNegInt = 0
    mtp_layers_block_type: list[str] | None = None
    mtp_hybrid_override_pattern: str | None = None
    use_bias: bool = False
    initializer_range: NonNegFloat = 0.02
    layer_norm_epsilon: Eps = 1e-5
    residual_in_fp32: bool = False
    hidden_dropout: NonNegFloat = 0.0
    rescale_prenorm_residual: bool = True


_NEMOTRON_DEFAULT_LAYERS = ["linear_attention", "moe", "full_attention", "mlp"]


_NEMOTRON_DEFAULT_MTP = ["full_attention", "moe"]


def _layout(ctx: Ctx[NemotronHInput]) -> Built:
    """The main and MTP layer lists (``configuration_nemotron_h.py:153-204``); ``main`` None on an error."""
    m = ctx.model
    built = Built()
    names = dict(NAME_TO_SYMBOL)
    if m.layers_block_type is not None:
        built.main = list_symbols(ctx, "layers_block_type", m.layers_block_type, names)
        built.main_key = "layers_block_type"
        if m.hybrid_override_pattern is not None and built.main not in (None, m.hybrid_override_pattern):
            ctx.add(
                "P916",
                f"{ctx.q('hybrid_override_pattern')} ({m.hybrid_override_pattern!r}) differs from "
                f"{ctx.q('layers_block_type')}; transformers uses the list",
                "hybrid_override_pattern",
                label="ignored",
            )
    elif m.hybrid_override_pattern is not None:
        built.main, built.main_text_offset = pattern_text(ctx, "hybrid_override_pattern", m.hybrid_override_pattern)
        built.main_key = "hybrid_override_pattern"
    else:
        built.main = "".join(names[name] for name in _NEMOTRON_DEFAULT_LAYERS)
        ctx.defaults_used[ctx.key("layers_block_type")] = list(_NEMOTRON_DEFAULT_LAYERS)
    # MTP (configuration_nemotron_h.py:190-198; validated only when num_nextn_predict_layers > 0, :219)
    depths = ctx.get("num_nextn_predict_layers")
    mtp: str | None = "".join(names[name] for name in _NEMOTRON_DEFAULT_MTP)
    if depths > 0:
        mtp_key = "mtp_layers_block_type"
        is_default = True
        if m.mtp_layers_block_type is not None:
            mtp = list_symbols(ctx, "mtp_layers_block_type", m.mtp_layers_block_type, names)
            is_default = m.mtp_layers_block_type in (_NEMOTRON_DEFAULT_MTP, ["attention", "moe"])
        if m.mtp_hybrid_override_pattern is not None:
            if is_default:
                mtp, _ = pattern_text(ctx, "mtp_hybrid_override_pattern", m.mtp_hybrid_override_pattern)
                mtp_key = "mtp_hybrid_override_pattern"
            elif mtp is not None and m.mtp_hybrid_override_pattern != mtp:
                ctx.add(
                    "P916",
                    f"{ctx.q('mtp_hybrid_override_pattern')} is ignored: transformers uses it only while "
                    f"{ctx.q('mtp_layers_block_type')} is the default",
                    "mtp_hybrid_override_pattern",
                    label="ignored",
                )
        if not ctx.has("mtp_layers_block_type") and not ctx.has("mtp_hybrid_override_pattern"):
            ctx.defaults_used[ctx.key("mtp_layers_block_type")] = list(_NEMOTRON_DEFAULT_MTP)
        if mtp == "":
            ctx.add("P907", f"{ctx.q(mtp_key)} is empty, but {ctx.q('num_nextn_predict_layers')} is {depths}", mtp_key)
            mtp = None
        built.mtp, built.depths, built.mtp_key = mtp or "", depths, mtp_key
    else:
        ctx.vestigial(
            ["mtp_layers_block_type", "mtp_hybrid_override_pattern"],
            "`num_nextn_predict_layers` is 0, so the model has no multi-token-prediction block",
        )
    if built.main is None or mtp is None:
        built.main = None
    elif ctx.has("num_hidden_layers") and m.num_hidden_layers != len(built.main):
        ctx.add(
            "P910",
            f"{ctx.q('num_hidden_layers')} is {m.num_hidden_layers}, "
            f"but {ctx.q(built.main_key or 'layers_block_type')} "
            f"has {len(built.main)} layers; transformers uses {len(built.main)}",
            "num_hidden_layers",
            label="stale layer count",
            secondary=ctx.secondary(built.main_key) if built.main_key else (),
        )
    return built


def _no_rope(ctx: Ctx[NemotronHInput]) -> None:
    ctx.vestigial(list(ROPE_KEYS), "Nemotron-H attention has no positional embedding (no RoPE)")


ATTENTION = AttentionKeys(
    rope=_no_rope,
    bias=None,
    unused=("num_attention_heads", "num_key_value_heads", "head_dim", "attention_bias", *ROPE_KEYS),
)
MAMBA = MambaKeys(
    num_heads="mamba_num_heads",
    head_dim="mamba_head_dim",
    n_groups="n_groups",
    state_size="ssm_state_size",
    conv_kernel="conv_kernel",
    expand="expand",
    chunk_size="chunk_size",
    conv_bias="use_conv_bias",
    proj_bias="use_bias",
    activation="mamba_hidden_act",
    time_step="time_step_min",  # NemotronHMamba2Mixer clamps dt to (time_step_min, inf)
    inner_from="heads",
    unused=("mamba_num_heads", "mamba_head_dim", "ssm_state_size", "n_groups", "conv_kernel", "expand", "chunk_size"),
)
MLP = MlpKeys(
    intermediate_size="intermediate_size",
    activation="mlp_hidden_act",
    gated=False,
    bias="mlp_bias",
    unused=("intermediate_size",),
)
MOE = MoeKeys(
    experts="n_routed_experts",
    top_k="num_experts_per_tok",
    intermediate_size="moe_intermediate_size",
    activation="mlp_hidden_act",
    shared_size="moe_shared_expert_intermediate_size",
    router="sigmoid",
    score_correction_bias=True,
    expert_gated=False,
    shared_gated=False,
    groups=("n_group", "topk_group"),
    norm_topk_prob="norm_topk_prob",
    scaling="routed_scaling_factor",
    latent_size="moe_latent_size",
    bias="mlp_bias",  # modeling_nemotron_h.py:733-738: mlp_bias reaches the shared expert and latent projections
    shared_count=("n_shared_experts", "NemotronHMoE"),
    unused=(
        "n_routed_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
        "moe_shared_expert_intermediate_size",
        "n_shared_experts",
        "moe_latent_size",
        "routed_scaling_factor",
        "n_group",
        "topk_group",
        "norm_topk_prob",
    ),
)
"""The key names of Nemotron-H's layer kinds: the per-kind readers read the config through them."""


def read(ctx: Ctx[NemotronHInput]) -> Built:
    """transformers ``configuration_nemotron_h.py:153-204`` and ``modeling_nemotron_h.py``: the layer
    lists, then each present kind through its reader; a kind's keys are inert when it is absent."""
    m = ctx.model
    built = _layout(ctx)
    if built.main is None:
        return built
    symbols = set(built.main) | set(built.mtp)
    hidden = ctx.get("hidden_size")
    if ATTENTION_S in symbols:
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
        if ctx.has("attention_bias") and getattr(m, "attention_bias", False):
            ctx.add(
                "P916",
                f"{ctx.q('attention_bias')} is true, but transformers' NemotronHAttention builds q/k/v/o without bias",
                "attention_bias",
                label="ignored",
            )
    else:
        ctx.vestigial(ATTENTION.unused, "the model has no attention layer")
    if MAMBA_S in symbols:
        if ctx.has("mamba_proj_bias") and getattr(m, "mamba_proj_bias", False) != getattr(m, "use_bias", False):
            ctx.add(
                "P916",
                f"{ctx.q('mamba_proj_bias')} is {str(m.mamba_proj_bias).lower()}, but transformers' Nemotron-H "
                f"Mamba projections take their bias from {ctx.q('use_bias')} ({str(m.use_bias).lower()})",
                "mamba_proj_bias",
                label="ignored",
            )
        built.specs["mamba"] = read_mamba(ctx, MAMBA, hidden)
    else:
        ctx.vestigial(MAMBA.unused, "the model has no Mamba layer")
    if MLP_S in symbols:
        built.specs["mlp"] = read_mlp(ctx, MLP)
    else:
        ctx.vestigial(MLP.unused, "the model has no dense MLP `-` layer (experts use `moe_intermediate_size`)")
    if MOE_S in symbols:
        built.specs["moe"] = read_moe(ctx, MOE)
    else:
        ctx.vestigial(MOE.unused, "the model has no mixture-of-experts `E` layer")
    built.specs["norm"] = NormSpec(eps=ctx.get("layer_norm_epsilon"))
    if ctx.get("tie_word_embeddings"):
        # modeling_nemotron_h.py:1159: `_tied_weights_keys = {}`, so lm_head stays its own matrix.
        ctx.add(
            "P916",
            f"{ctx.q('tie_word_embeddings')} is true, but transformers' NemotronHForCausalLM never ties "
            "`lm_head` to the embeddings",
            "tie_word_embeddings",
            label="ignored",
        )
        built.specs["tie_embeddings"] = False
    return built


def express(spec: ModelSpec) -> Expression:
    """NemotronHForCausalLM: one mixer per block (M, *, -, E), no RoPE, relu2 MLPs, untied head."""
    arch = "nemotron_h"
    structural = kind_findings(spec, KINDS, arch)
    m, a, mlp_spec, moe_spec = spec.mamba, spec.attention, spec.mlp, spec.moe
    cfg: Config = common_fields(spec, "layer_norm_epsilon") | {
        "layers_block_type": [BY_SYMBOL[s].hf_name for s in spec.pattern.flat],
        "mlp_hidden_act": ffn_activation(spec),
    }
    cfg.pop("tie_word_embeddings")  # _tied_weights_keys = {}: a nemotron_h lm_head is never tied
    if spec.pattern.mtp is not None:
        cfg["mtp_layers_block_type"] = [BY_SYMBOL[s].hf_name for s in spec.pattern.mtp.flat]
        cfg["num_nextn_predict_layers"] = spec.pattern.mtp.depths
    if m is not None:
        cfg |= {
            "mamba_num_heads": m.num_heads,
            "mamba_head_dim": m.head_dim,
            "ssm_state_size": m.state_size,
            "n_groups": m.n_groups,
            "conv_kernel": m.conv_kernel,
            "use_conv_bias": m.conv_bias,
            "use_bias": m.proj_bias,
            "mamba_hidden_act": m.activation,
            # NemotronHMamba2Mixer clamps dt to (time_step_min, inf): only the lower bound is a field
            "time_step_min": m.time_step_limit[0],
        }
    if a is not None:
        cfg |= {"num_attention_heads": a.num_heads, "num_key_value_heads": a.num_kv_heads, "head_dim": a.head_dim}
    if mlp_spec is not None:
        cfg |= {"intermediate_size": mlp_spec.intermediate_size, "mlp_bias": mlp_spec.bias}
    if moe_spec is not None:
        cfg |= {
            "n_routed_experts": moe_spec.num_experts,
            "num_experts_per_tok": moe_spec.top_k,
            "moe_intermediate_size": moe_spec.intermediate_size,
            "n_group": moe_spec.n_group,
            "topk_group": moe_spec.topk_group,
            "norm_topk_prob": moe_spec.norm_topk_prob,
            "routed_scaling_factor": moe_spec.routed_scaling_factor,
            "moe_shared_expert_intermediate_size": moe_spec.shared_intermediate_size,
            "moe_latent_size": moe_spec.latent_size,
        }
        cfg.setdefault("mlp_bias", moe_spec.bias)
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "layer_norm_epsilon")))
    act = as_str(cfg, "mlp_hidden_act")
    bias = bool(cfg.get("mlp_bias", False))
    blocks: list[tuple[int | None, BlockGraph]] = []
    embed, head = model_blocks(spec, cfg, frame, tied=False)
    blocks.append(embed)
    mamba = attention = mlp = moe = None
    if m is not None:
        mamba = mamba_from(cfg, MAMBA, as_str(cfg, "mamba_hidden_act"), (as_float(cfg, "time_step_min"), float("inf")))
    if a is not None:  # q/k/v/o bias=False whatever attention_bias says; no rotary embedding at all
        attention = AttentionSpec(
            num_heads=as_int(cfg, "num_attention_heads"),
            num_kv_heads=as_int(cfg, "num_key_value_heads"),
            head_dim=as_int(cfg, "head_dim"),
        )
    if mlp_spec is not None:
        mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=False, bias=bias)
    if moe_spec is not None:  # always exactly one non-gated shared expert
        moe = MoeSpec(
            num_experts=as_int(cfg, "n_routed_experts"),
            top_k=as_int(cfg, "num_experts_per_tok"),
            intermediate_size=as_int(cfg, "moe_intermediate_size"),
            router="sigmoid",
            score_correction_bias=True,
            n_group=as_int(cfg, "n_group"),
            topk_group=as_int(cfg, "topk_group"),
            norm_topk_prob=bool(cfg["norm_topk_prob"]),
            routed_scaling_factor=as_float(cfg, "routed_scaling_factor"),
            expert_gated=False,
            expert_activation=act,
            shared_experts=1,
            shared_intermediate_size=as_int(cfg, "moe_shared_expert_intermediate_size"),
            shared_gated=False,
            latent_size=cfg["moe_latent_size"],
            bias=bias,
        )
    for layer in spec.pattern.layers:
        label = layer_label(layer.index, layer.symbol)
        built: BlockGraph | None = None
        if layer.symbol == MAMBA_S and mamba is not None:
            built = lower_mamba(frame, mamba, label)
        elif layer.symbol == ATTENTION_S and attention is not None:
            built = lower_attention(frame, attention, label)
        elif layer.symbol == MLP_S and mlp is not None:
            built = lower_mlp(frame, mlp, label)
        elif layer.symbol == MOE_S and moe is not None:
            built = lower_moe(frame, moe, label)
        if built is not None:
            blocks.append((layer.index + 1, built))
    blocks.append(head)
    return Expression(arch, cfg, structural, blocks)


_HF_IGNORES_MTP = "NemotronHForCausalLM has no MTP module and ignores `mtp.*` weights on load"


def profile() -> Profile:
    t = "transformers nemotron_h"
    return Profile(
        name="transformers-nemotron_h",
        consumer="transformers NemotronHForCausalLM (native, model_type nemotron_h)",
        description="loads `M * - E` stacks from `layers_block_type` (or the legacy string); no MTP module",
        versions=(
            "native nemotron_h since 5.3.0 (absent in 5.2.0): `M`, `*`, `E` [wheels]",
            "`-` since 5.6.0 (5.3.0-5.5.0 raise KeyError: '-') [wheels; the survey's TRT-LLM comment says 5.9.0]",
            "no `*` layer: forward raises with the cache on, in 5.23.0 and 5.24.0 [verified]",
        ),
        rules=(
            Rule(
                "P301",
                "main alphabet `M * - E`: `_pattern_to_list` raises KeyError on anything else",
                "§5.1(5); verified 5.24: KeyError: 'G'",
                main_alphabet(t, KINDS, "transformers raises: KeyError: '{symbol}' (NemotronHConfig._pattern_to_list)"),
            ),
            Rule(
                "P302",
                "MTP alphabet `M * - E` (`mtp_layers_block_type` validation)",
                "§5.1(5); verified 5.24: KeyError: 'G'",
                mtp_alphabet(t, KINDS, "transformers raises: KeyError: '{symbol}' (NemotronHConfig._pattern_to_list)"),
            ),
            Rule(
                "P306",
                "no `*` layer: forward raises whenever the cache is on (default `use_cache=True`, `generate`)",
                "verified 5.23.0 and 5.24.0",
                needs_attention_for_cache(t, NO_SEQ_LENGTH),
            ),
            Rule(
                "P305",
                "MTP is never built: `_keys_to_ignore_on_load_unexpected = ['mtp.*']`",
                "verified 5.24",
                mtp_dropped(t, _HF_IGNORES_MTP),
            ),
            Rule(
                "P307",
                "`-` needs transformers >= 5.6.0",
                "wheels 5.5.0 vs 5.6.0; §5.1(2), §3.3 (TRT-LLM: 5.9.0)",
                requires_version("transformers", {LayerKind.MLP: ">= 5.6.0 (earlier versions raise KeyError: '-')"}),
            ),
        ),
    )


FAMILY = Family(
    name="nemotron_h",
    input_model=NemotronHInput,
    read=read,
    express=express,
    ties_embeddings=False,
    canonical_rank=6,
    architectures=("NemotronHForCausalLM", "NemotronHModel"),
    aliases=MappingProxyType(
        {
            # NemotronHConfig.__post_init__ (configuration_nemotron_h.py:156-166): Megatron-style names
            "mamba_n_groups": "n_groups",
            "mamba_d_conv": "conv_kernel",
            "mamba_expand": "expand",
            "mamba_dt_min": "time_step_min",
            "mamba_dt_max": "time_step_max",
            "mamba_dt_limit": "time_step_limit",
            "mamba_dt_init_floor": "time_step_floor",
            "mamba_conv_bias": "use_conv_bias",
            "mamba_chunk_size": "chunk_size",
            # attribute_map (configuration_nemotron_h.py:84)
            "layer_types": "layers_block_type",
            "num_local_experts": "n_routed_experts",
            # NVIDIA's remote code (Nemotron-H-8B/56B): transformers 5 ignores it
            "attention_head_dim": "head_dim",
        }
    ),
    remote_aliases=frozenset({"attention_head_dim"}),
    layout_keys=(("layers_block_type", "hybrid_override_pattern"),),
    layout_related=("mtp_layers_block_type", "mtp_hybrid_override_pattern", "num_nextn_predict_layers"),
    kwarg_only_fields=frozenset({"hybrid_override_pattern", "mtp_hybrid_override_pattern", "num_hidden_layers"}),
    profile=profile,
)
