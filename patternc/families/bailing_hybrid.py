"""The ``bailing_hybrid`` family: transformers' ``BailingHybridForCausalLM`` (inclusionAI's Ling 3 /
Ring 3 linear models; their released configs name the remote-code class ``BailingMoeV3ForCausalLM``).

Every decoder layer is Kimi delta attention in Ling's flavour (``K``, ``BailingHybridDeltaAttention``:
full-rank ``f_proj`` / ``g_proj`` gates instead of Kimi's low-rank pairs, and with ``kda_safe_gate``
the bounded forget gate ``kda_lower_bound * sigmoid(exp(A_log) * (f + dt_bias))``) or multi-head
latent attention with interleaved RoPE and a per-head sigmoid output gate (``+``,
``BailingHybridAttention``: DeepSeek's MLA plus ``g_proj``), then a dense SwiGLU MLP (``dense``) or
DeepSeek-V3's mixture of experts (``sparse``: sigmoid router with the ``e_score_correction_bias``
buffer, group-limited top-k, ``routed_scaling_factor``, one shared MLP ``n_shared_experts`` experts
wide).  The LM head is never tied (``_tied_weights_keys = {}``).

Layout, as ``BailingHybridConfig.__post_init__`` derives it: ``layer_types`` (``full_attention`` /
``linear_attention``), else ``layer_group_size`` (every group's last layer is MLA, the others KDA;
default 6); FFNs by ``mlp_layer_types`` (``dense`` / ``sparse``), else ``first_k_dense_replace``
(default 2) dense layers first.  KDA sizes: ``linear_num_heads`` / ``linear_head_dim`` /
``linear_conv_kernel_dim`` (what ``to_dict`` writes), else ``num_attention_heads`` / ``head_dim`` /
``short_conv_kernel_size`` (the released spelling).  ``to_dict`` writes ``head_dim`` overwritten
with ``qk_rope_head_dim``, so the ``linear_*`` fields carry the KDA sizes through a round trip.

MTP: ``num_mtp_layers`` (the released configs' ``num_nextn_predict_layers``, an ``attribute_map``
alias) depths.  transformers builds none and ignores the checkpoint's layers ``num_hidden_layers ..``
on load, so the depth is the pattern's MTP block, counted under ``mtp`` by ``stats`` and never in
``total``.  Each depth is read as one MLA decoder layer with the MoE (dense when
``first_k_dense_replace`` exceeds the layer count), as DeepSeek's: the released Ling 3 configs say
``mtp_use_kda: false`` (an MLA mixer), and the MTP layer is stored as decoder layer
``num_hidden_layers`` of the checkpoint beside the main layers, so it is one decoder layer of the
same kinds; the fusion projections around it (``enorm``, ``hnorm``, ``eh_proj``) are the generic MTP
block's.  That the MTP FFN is the MoE is an assumption from the layer index, stated here.

Input model, key names, layout reader and expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

from types import MappingProxyType
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
    pair_layers,
)
from patternc.canonical.graph import Frame
from patternc.config.ffn_readers import MlpKeys, MoeKeys, read_mlp, read_moe
from patternc.config.mixer_readers import MlaKeys, read_mla
from patternc.config.models import Activation, ConfigModel, Eps, NonNegFloat, NonNegInt, PosFloat, PosInt, TokenId
from patternc.config.readers import Built, Ctx, list_symbols
from patternc.families.deepseek_v3 import mla_from_config, rope_fields
from patternc.families.family import Family
from patternc.families.kimi_linear import latent_hybrid_blocks, routed_moe
from patternc.kinds import LayerKind, symbol_of
from patternc.model import KdaSpec, MlpSpec, ModelSpec, NormSpec

KINDS = (LayerKind.KDA, LayerKind.MLA, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
KDA_S, MLA_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)
LATENT_NORM_EPS = 1e-6
"""``DeepseekV3Attention``'s latent RMSNorms take the class default, not ``rms_norm_eps``."""
MIXER_TYPES = {"full_attention": LayerKind.MLA, "linear_attention": LayerKind.KDA}
"""``layer_types`` entries: the decoder layer builds MLA for ``full_attention``, KDA for anything else,
and the model masks by exactly these two names."""
FFN_TYPES = {"dense": LayerKind.MLP, "sparse": LayerKind.MOE}
"""``mlp_layer_types`` entries: ``sparse`` builds the MoE, anything else the dense MLP."""
KDA_SIZES = (
    ("linear_num_heads", "num_attention_heads"),
    ("linear_head_dim", "head_dim"),
    ("linear_conv_kernel_dim", "short_conv_kernel_size"),
)
"""The KDA sizes: the field ``to_dict`` writes, and the one ``__post_init__`` derives it from."""


class BailingHybridInput(ConfigModel):
    """``model_type: bailing_hybrid`` (transformers ``BailingHybridConfig``): Ling's KDA ``K`` + gated
    MLA ``+``, dense ``-`` then MoE ``E``."""

    vocab_size: PosInt = 157184
    hidden_size: PosInt = 2560
    intermediate_size: PosInt = 6144
    moe_intermediate_size: PosInt = 768
    num_hidden_layers: PosInt = 42
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = 32
    """Read by the eager attention's ``repeat_kv`` only: MLA expands one key and value per head."""
    n_shared_experts: NonNegInt = 1
    output_router_logits: bool = False
    routed_scaling_factor: PosFloat = 2.5
    kv_lora_rank: PosInt = 512
    q_lora_rank: PosInt | None = None
    qk_rope_head_dim: PosInt = 64
    v_head_dim: PosInt = 128
    qk_nope_head_dim: PosInt = 128
    n_group: PosInt = 8
    topk_group: PosInt = 4
    num_experts_per_tok: PosInt = 8
    first_k_dense_replace: NonNegInt = 2
    norm_topk_prob: bool = True
    hidden_act: Activation = "silu"
    """One activation for the MLPs, the experts and the KDA convolution."""
    max_position_embeddings: PosInt = 262144
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    use_cache: bool = True
    pad_token_id: TokenId | None = 156892
    bos_token_id: TokenId | None = None
    eos_token_id: TokenId | list[int] | None = 156895
    pretraining_tp: PosInt | None = 1
    tie_word_embeddings: bool = False
    rope_parameters: dict[str, Any] | None = None
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    num_mtp_layers: NonNegInt = 1
    """``num_nextn_predict_layers`` is the name ``to_dict`` writes and the released configs use."""
    num_local_experts: PosInt = 512
    """``num_experts`` is the name ``to_dict`` writes and the released configs use."""
    rope_theta: PosFloat = 6_000_000.0
    head_dim: PosInt = 128
    """The KDA head size unless ``linear_head_dim`` is given (``to_dict`` overwrites it with
    ``qk_rope_head_dim`` and writes ``linear_head_dim``)."""
    short_conv_kernel_size: PosInt = 4
    layer_group_size: PosInt = 6
    kda_safe_gate: bool = True
    kda_lower_bound: float = -5.0
    layer_types: list[str] | None = None
    mlp_layer_types: list[str] | None = None
    mtp_loss_scaling_factor: NonNegFloat = 0.0
    linear_num_heads: PosInt | None = None
    """Set by ``__post_init__`` (``num_attention_heads``), written by ``to_dict``; given, it wins."""
    linear_head_dim: PosInt | None = None
    """Set by ``__post_init__`` (``head_dim``), written by ``to_dict``; given, it wins."""
    linear_conv_kernel_dim: PosInt | None = None
    """Set by ``__post_init__`` (``short_conv_kernel_size``), written by ``to_dict``; given, it wins."""
    qk_head_dim: PosInt | None = None
    """Derived by transformers (``qk_nope_head_dim + qk_rope_head_dim``); ``to_dict`` writes it."""
    rope_scaling: dict[str, Any] | None = None
    """The released configs' (null) pre-5.0 spelling of ``rope_parameters``."""


MLA = MlaKeys(rope_interleave=None, interleaved=True, output_gate=True)
MOE = MoeKeys(
    experts="num_local_experts",
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
        "num_local_experts",
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
MLA_UNUSED = (
    "q_lora_rank",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "attention_bias",
    "rope_theta",
    "rope_parameters",
)

_REMOTE: dict[str, object] = {
    "no_kda_lora": True,
    "gated_attention_proj_granularity_type": "head_wise",
    "rope_interleave": True,
    "mtp_use_kda": False,
    "use_qkv_bias": False,
    "use_bias": False,
    "score_function": "sigmoid",
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "moe_router_enable_expert_bias": True,
}
"""Keys outside ``BailingHybridConfig`` that Ling's remote code (``BailingMoeV3``) reads, and the value
that means what transformers builds: another value is a model transformers' class does not build (P916)."""


def _remote(ctx: Ctx[BailingHybridInput]) -> None:
    """P916 for a remote-code key whose value transformers' BailingHybrid does not build."""
    m = ctx.model
    extra = m.model_extra or {}
    for key, builds in _REMOTE.items():
        if key in extra and extra[key] != builds:
            ctx.add(
                "P916",
                f"{ctx.q(key)} is {extra[key]!r}: Ling's remote code reads it, transformers' BailingHybrid "
                f"builds as if it were {builds!r}",
                key,
                label="ignored by transformers",
            )
    shared = extra.get("moe_shared_expert_intermediate_size")
    if shared is not None and shared != m.moe_intermediate_size * m.n_shared_experts:
        ctx.add(
            "P916",
            f"{ctx.q('moe_shared_expert_intermediate_size')} is {shared!r}, but transformers' BailingHybrid builds "
            f"the shared MLP `moe_intermediate_size` x `n_shared_experts` "
            f"({m.moe_intermediate_size * m.n_shared_experts}) wide",
            "moe_shared_expert_intermediate_size",
            label="ignored by transformers",
        )
    given = m.qk_head_dim
    if given is not None and given != m.qk_nope_head_dim + m.qk_rope_head_dim:
        ctx.add(
            "P916",
            f"{ctx.q('qk_head_dim')} is {given}, but transformers derives it "
            f"({m.qk_nope_head_dim + m.qk_rope_head_dim}) and overwrites it",
            "qk_head_dim",
            label="overwritten",
        )


def _mixers(ctx: Ctx[BailingHybridInput], n: int) -> tuple[str | None, str]:
    """The mixers and the key they came from: ``layer_types``, else ``layer_group_size``."""
    m = ctx.model
    if m.layer_types is not None:
        names = {name: symbol_of(kind) for name, kind in MIXER_TYPES.items()}
        mixers = list_symbols(ctx, "layer_types", m.layer_types, names)
        if mixers is not None and len(mixers) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q('layer_types')} has {len(mixers)} entries; "
                "transformers builds a layer per `num_hidden_layers` and indexes `layer_types` with it",
                "num_hidden_layers" if ctx.has("num_hidden_layers") else "layer_types",
                secondary=ctx.secondary("layer_types"),
            )
            return None, "layer_types"
        if mixers is not None and ctx.has("layer_group_size"):
            g = m.layer_group_size
            grouped = "".join(MLA_S if (i + 1) % g == 0 else KDA_S for i in range(n))
            if grouped != mixers:
                ctx.add(
                    "P913",
                    f"{ctx.q('layer_group_size')} has no effect: it places other layers than "
                    f"{ctx.q('layer_types')}, and transformers uses `layer_types`",
                    "layer_group_size",
                )
        return mixers, "layer_types"
    g = ctx.get("layer_group_size")
    if n % g and n > g:
        ctx.add(
            "P916",
            f"{ctx.q('num_hidden_layers')} ({n}) is not a multiple of {ctx.q('layer_group_size')} ({g}): "
            f"Ling's remote code makes the last {n % g} layer(s) full attention, transformers builds them KDA",
            "layer_group_size",
            label="trailing partial group",
            secondary=ctx.secondary("num_hidden_layers"),
        )
    return "".join(MLA_S if (i + 1) % g == 0 else KDA_S for i in range(n)), "layer_group_size"


def _ffns(ctx: Ctx[BailingHybridInput], n: int) -> str | None:
    m = ctx.model
    if m.mlp_layer_types is not None:
        names = {name: symbol_of(kind) for name, kind in FFN_TYPES.items()}
        ffns = list_symbols(ctx, "mlp_layer_types", m.mlp_layer_types, names)
        if ffns is not None and len(ffns) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q('mlp_layer_types')} has {len(ffns)} entries",
                "mlp_layer_types",
                secondary=ctx.secondary("num_hidden_layers"),
            )
            return None
        return ffns
    dense = ctx.get("first_k_dense_replace")
    return "".join(MLP_S if i < dense else MOE_S for i in range(n))


def _kda(ctx: Ctx[BailingHybridInput]) -> KdaSpec:
    """Ling's KDA: the ``linear_*`` sizes when given, else the ones ``__post_init__`` derives them from."""
    sizes = []
    for field, derived in KDA_SIZES:
        if ctx.has(field) and getattr(ctx.model, field) is not None:
            sizes.append(ctx.get(field))
        else:
            ctx.read.add(field)
            sizes.append(ctx.get(derived))
    heads, head_dim, kernel = sizes
    safe = ctx.get("kda_safe_gate")
    if safe:
        bound: float | None = ctx.get("kda_lower_bound")
    else:
        bound = None
        ctx.vestigial(["kda_lower_bound"], "`kda_safe_gate` is false: the forget gate is unbounded")
    return KdaSpec(
        num_heads=heads,
        head_dim=head_dim,
        conv_kernel=kernel,
        gate_rank=None,
        gate_lower_bound=bound,
        activation=ctx.get("hidden_act"),
    )


def read(ctx: Ctx[BailingHybridInput]) -> Built:
    """``modeling_bailing_hybrid.py``: per layer gated MLA or Ling's KDA, then a dense MLP or the MoE;
    plain RMSNorms (the latent ones at eps 1e-6); KDA's gated output norm at ``rms_norm_eps``.  MTP:
    see the module docstring."""
    n = ctx.get("num_hidden_layers")
    mixers, field = _mixers(ctx, n)
    ffns = _ffns(ctx, n)
    _remote(ctx)
    if mixers is None or ffns is None:
        return Built(main_key=field)
    main = "".join(a + b for a, b in zip(mixers, ffns, strict=True))
    built = Built(main=main, main_key=field, ffn_key="mlp_layer_types" if ctx.has("mlp_layer_types") else None)
    depths = ctx.get("num_mtp_layers")
    if depths:
        dense = ctx.get("first_k_dense_replace")
        built.mtp = MLA_S + (MOE_S if n >= dense else MLP_S)
        built.depths = depths
        built.mtp_key = "num_mtp_layers"
    elif ctx.has("mlp_layer_types"):
        ctx.read.add("first_k_dense_replace")  # to_dict writes it beside the list; it places nothing here
    ctx.get("hidden_act")
    every = mixers + built.mtp
    if MLA_S in every:
        built.specs["mla"] = read_mla(ctx, MLA)
    else:
        ctx.vestigial(MLA_UNUSED, "the model has no full-attention layer")
    if KDA_S in mixers:
        built.specs["kda"] = _kda(ctx)
    else:
        ctx.vestigial(["short_conv_kernel_size", "kda_safe_gate", "kda_lower_bound"], "the model has no KDA layer")
    layers = main + built.mtp
    if MOE_S in layers:
        built.specs["moe"] = read_moe(ctx, MOE)
    else:
        ctx.vestigial(MOE.unused, "every FFN is dense")
    if MLP_S in layers:
        built.specs["mlp"] = read_mlp(ctx, MLP)
    else:
        ctx.vestigial(MLP.unused, "every FFN is a mixture of experts, which use `moe_intermediate_size`")
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    if ctx.get("tie_word_embeddings"):
        ctx.add(
            "P916",
            f"{ctx.q('tie_word_embeddings')} is true, but transformers' BailingHybridForCausalLM never ties "
            "`lm_head` to the embeddings (`_tied_weights_keys = {}`)",
            "tie_word_embeddings",
            label="ignored",
        )
        built.specs["tie_embeddings"] = False
    return built


def _first(spec: ModelSpec, symbol: str) -> int | None:
    flat = spec.pattern.flat
    return flat.index(symbol) if symbol in flat else None


def _mla_fields(spec: ModelSpec) -> tuple[Config, list[Finding]]:
    a = spec.mla
    if a is None:
        return {}, []
    first = _first(spec, MLA_S)
    findings = []
    if a.rope is None:
        findings.append(
            Finding(MLA_S, first, "Ling's latent attention rotates its qk_rope_head_dim channels; this has no RoPE")
        )
    elif a.rope.partial_factor != 1.0 or not a.rope_interleave:
        findings.append(
            Finding(
                MLA_S,
                first,
                "Ling's latent attention rotates the whole qk_rope_head_dim, stored interleaved; this one "
                f"rotates a fraction {a.rope.partial_factor:g}" + ("" if a.rope_interleave else ", not interleaved"),
            )
        )
    if not a.output_gate:
        findings.append(
            Finding(MLA_S, first, "Ling's latent attention gates each head by sigmoid(g_proj(x)); this one has no gate")
        )
    if a.latent_norm_eps != LATENT_NORM_EPS:
        findings.append(
            Finding(
                MLA_S, first, f"Ling builds its latent norms with eps {LATENT_NORM_EPS:g}, not {a.latent_norm_eps:g}"
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
        "rope_parameters": rope_fields(a),
    }
    return cfg, findings


def _kda_fields(spec: ModelSpec, act: str) -> tuple[Config, list[Finding]]:
    k = spec.kda
    if k is None or KDA_S not in spec.pattern.flat:
        return {}, []
    first = _first(spec, KDA_S)
    findings = []
    if k.gate_rank is not None:
        findings.append(
            Finding(
                KDA_S,
                first,
                f"Ling's KDA gates are full-rank (f_proj, g_proj: hidden -> {k.inner_size}); this KDA's forget "
                f"and output gates go through {k.gate_rank} channels (Kimi's f_a_proj/f_b_proj, g_a_proj/g_b_proj)",
            )
        )
    if (MLP_S in spec.pattern.flat or MOE_S in spec.pattern.flat) and k.activation != act:
        findings.append(
            Finding(
                KDA_S,
                first,
                f"Ling's KDA convolution uses hidden_act, the FFNs' activation ({act}); this one uses {k.activation}",
            )
        )
    cfg: Config = {
        "linear_num_heads": k.num_heads,
        "linear_head_dim": k.head_dim,
        "linear_conv_kernel_dim": k.conv_kernel,
        "head_dim": k.head_dim,
        "short_conv_kernel_size": k.conv_kernel,
        "kda_safe_gate": k.gate_lower_bound is not None,
    }
    if k.gate_lower_bound is not None:
        cfg["kda_lower_bound"] = k.gate_lower_bound
    return cfg, findings


def _moe_fields(spec: ModelSpec) -> tuple[Config, list[Finding]]:
    e = spec.moe
    everything = spec.pattern.flat + (spec.pattern.mtp.flat if spec.pattern.mtp else "")
    if e is None or MOE_S not in everything:
        return {}, []
    where = _first(spec, MOE_S)
    findings = []
    shared = e.shared_intermediate_size if e.shared_experts else 0
    if e.shared_experts > 1 or shared % e.intermediate_size:
        findings.append(
            Finding(
                MOE_S,
                where,
                f"Ling builds one shared MLP of moe_intermediate_size x n_shared_experts channels; this "
                f"mixture has {e.shared_experts} shared expert(s) of {e.shared_intermediate_size} channels and "
                f"routed experts of {e.intermediate_size}",
            )
        )
    router = (e.router, e.score_correction_bias, e.expert_gated, e.shared_expert_gate, e.bias, e.latent_size)
    if router != ("sigmoid", True, True, False, False, None) or (shared and not e.shared_gated):
        findings.append(
            Finding(
                MOE_S,
                where,
                "Ling routes with DeepSeek-V3's sigmoid router and its score correction bias to SwiGLU experts "
                "on the hidden size, plus one SwiGLU shared MLP (no shared-expert gate, no biases); this "
                "mixture differs",
            )
        )
    cfg: Config = {
        "num_local_experts": e.num_experts,
        "num_experts_per_tok": e.top_k,
        "moe_intermediate_size": e.intermediate_size,
        "n_shared_experts": shared // e.intermediate_size,
        "n_group": e.n_group,
        "topk_group": e.topk_group,
        "routed_scaling_factor": e.routed_scaling_factor,
        "norm_topk_prob": e.norm_topk_prob,
    }
    return cfg, findings


def _mtp(spec: ModelSpec, ffns: list[str]) -> tuple[int, int, list[Finding]]:
    """The MTP depth and ``first_k_dense_replace``: the leading dense layers (as the released
    configs write it), past the last layer when the MTP layer is dense; and why another MTP block
    than one MLA + FFN decoder layer cannot be held."""
    n = len(ffns)
    lead = next((j for j, s in enumerate(ffns) if s == MOE_S), n)
    mtp = spec.pattern.mtp
    if mtp is None:
        return 0, lead, []
    if mtp.flat == MLA_S + MLP_S:
        return mtp.depths, n + 1, []
    if mtp.flat == MLA_S + MOE_S:
        return mtp.depths, min(lead, n), []
    message = f"MTP block `{mtp.flat}`: each Ling MTP depth is one MLA decoder layer with an FFN (`+E` or `+-`)"
    return mtp.depths, lead, [Finding("pattern", None, message)]


def express(spec: ModelSpec) -> Expression:
    """BailingHybridForCausalLM: (Ling's KDA or gated MLA) + (dense SwiGLU MLP or the sigmoid-routed
    MoE) per layer, placed by ``layer_types`` and ``mlp_layer_types``, one ``hidden_act``, untied head."""
    arch = "bailing_hybrid"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    act = ffn_activation(spec)
    ffns = [flat[f] if f is not None else MLP_S for _, f in pairs]
    depths, dense, mtp_found = _mtp(spec, ffns)
    mla_cfg, mla_found = _mla_fields(spec)
    kda_cfg, kda_found = _kda_fields(spec, act)
    moe_cfg, moe_found = _moe_fields(spec)
    tied = (
        [Finding("pattern", None, "BailingHybridForCausalLM never ties its LM head to the embeddings")]
        if spec.tie_embeddings
        else []
    )
    structural = kind_findings(spec, KINDS, arch) + structural + mtp_found + mla_found + kda_found + moe_found + tied
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "layer_types": ["full_attention" if flat[m] == MLA_S else "linear_attention" for m, _ in pairs],
            "mlp_layer_types": ["sparse" if s == MOE_S else "dense" for s in ffns],
            "first_k_dense_replace": dense,
            "num_nextn_predict_layers": depths,
            "hidden_act": act,
            "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 6144,
            "tie_word_embeddings": False,
        }
        | mla_cfg
        | kda_cfg
        | moe_cfg
    )
    if not mla_cfg and spec.kda is not None:
        cfg["num_attention_heads"] = spec.kda.num_heads
        cfg["num_key_value_heads"] = spec.kda.num_heads
    if spec.max_position_embeddings is not None:
        cfg["max_position_embeddings"] = spec.max_position_embeddings
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    act = as_str(cfg, "hidden_act")
    mla = mla_from_config(cfg | {"rope_interleave": True}).model_copy(update={"output_gate": True}) if mla_cfg else None
    kda = None
    if kda_cfg:
        kda = KdaSpec(
            num_heads=as_int(cfg, "linear_num_heads"),
            head_dim=as_int(cfg, "linear_head_dim"),
            conv_kernel=as_int(cfg, "linear_conv_kernel_dim"),
            gate_rank=None,
            gate_lower_bound=as_float(cfg, "kda_lower_bound") if cfg["kda_safe_gate"] else None,
            activation=act,
        )
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = routed_moe(cfg, act) if moe_cfg else None
    blocks = latent_hybrid_blocks(spec, cfg, frame, pairs, (mla, kda, mlp, moe))
    return Expression(arch, cfg, structural, blocks)


FAMILY = Family(
    name="bailing_hybrid",
    input_model=BailingHybridInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-8,  # no other family builds full-rank-gated `K` or gated `+`; unique, after kimi_linear
    architectures=("BailingHybridForCausalLM", "BailingMoeV3ForCausalLM"),
    aliases=MappingProxyType(
        {
            "num_experts": "num_local_experts",
            "num_expert_group": "n_group",
            "num_experts_per_token": "num_experts_per_tok",
            "num_shared_experts": "n_shared_experts",
            "moe_renormalize": "norm_topk_prob",
            "model_max_length": "max_position_embeddings",
            "num_nextn_predict_layers": "num_mtp_layers",
        }
    ),
    ties_embeddings=False,
    layout_keys=(("layer_types", "layer_group_size"),),
    layout_related=("num_hidden_layers", "mlp_layer_types", "first_k_dense_replace", "num_mtp_layers"),
    kwarg_only_fields=frozenset(
        {"linear_num_heads", "linear_head_dim", "linear_conv_kernel_dim", "qk_head_dim", "rope_scaling"}
    ),
)
