"""The ``kimi_linear`` family: transformers' ``KimiLinearForCausalLM`` (Moonshot's Kimi Linear, and the
language model of the ``kimi_k3`` multimodal wrapper, nested as its ``text_config``).

Every decoder layer is Kimi delta attention (``K``, ``KimiLinearDeltaAttention``) or multi-head latent
attention without rotary embedding (``+``, ``KimiLinearAttention``: DeepSeek's MLA, but nothing rotates
and the model has no rotary module at all), then a dense SwiGLU MLP (``dense``) or DeepSeek-V3's mixture
of experts (``sparse``: sigmoid router with the ``e_score_correction_bias`` buffer, group-limited top-k,
``routed_scaling_factor``, one shared MLP ``n_shared_experts`` experts wide).  The LM head is never
tied (``_tied_weights_keys = {}``).

Layout, in transformers' order of precedence (``KimiLinearConfig.__post_init__``): ``layer_types``
(``full_attention`` / ``linear_attention``); else the 1-based ``linear_attn_config.full_attn_layers``
and ``kda_layers`` (both needed); else every fourth layer from index 4 is MLA.  FFNs: ``mlp_layer_types``
(``dense`` / ``sparse``); else the keyword ``first_k_dense_replace`` (default 1) dense layers first.
``linear_attn_config`` also carries the KDA sizes (``num_heads``, ``head_dim``,
``short_conv_kernel_size``), which win over the top-level ``linear_*`` fields.

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
    model_blocks,
    mtp_findings,
    pair_layers,
    paired_blocks,
)
from patternc.canonical.graph import BlockGraph, Frame, layer_label, lower_kda, lower_mla, lower_mlp, lower_moe
from patternc.config.ffn_readers import MlpKeys, MoeKeys, read_mlp, read_moe
from patternc.config.mixer_readers import MlaKeys, read_mla
from patternc.config.models import Activation, ConfigModel, Eps, NonNegFloat, NonNegInt, PosFloat, PosInt, TokenId
from patternc.config.readers import Built, Ctx, list_symbols
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import KdaSpec, MlaSpec, MlpSpec, ModelSpec, MoeSpec, NormSpec

KINDS = (LayerKind.KDA, LayerKind.MLA, LayerKind.MLP, LayerKind.MOE)
"""The layer kinds the family builds."""
KDA_S, MLA_S, MLP_S, MOE_S = (symbol_of(kind) for kind in KINDS)
LATENT_NORM_EPS = 1e-6
"""``KimiLinearRMSNorm(q_lora_rank)`` and ``(kv_lora_rank)`` take the class default, not ``rms_norm_eps``."""
MIXER_TYPES = {"full_attention": LayerKind.MLA, "linear_attention": LayerKind.KDA}
"""``layer_types`` entries: ``KimiLinearDecoderLayer`` builds MLA for ``full_attention`` and KDA for
anything else, but ``KimiLinearModel.forward`` masks by exactly these two names."""
FFN_TYPES = {"dense": LayerKind.MLP, "sparse": LayerKind.MOE}
"""``mlp_layer_types`` entries: ``sparse`` builds the MoE, anything else the dense MLP."""
DEFAULT_DENSE = 1
"""``first_k_dense_replace`` when absent (``kwargs.get("first_k_dense_replace", 1)``)."""
LINEAR_KEYS = (
    ("num_heads", "linear_num_heads"),
    ("head_dim", "linear_head_dim"),
    ("short_conv_kernel_size", "linear_conv_kernel_dim"),
)
"""``linear_attn_config`` entries transformers reads for the KDA sizes, and the top-level field each overrides."""


class KimiLinearInput(ConfigModel):
    """``model_type: kimi_linear`` (transformers ``KimiLinearConfig``): KDA ``K`` + NoPE MLA ``+``, dense
    ``-`` then MoE ``E``."""

    vocab_size: PosInt = 163840
    hidden_size: PosInt = 2304
    intermediate_size: PosInt = 9216
    moe_intermediate_size: PosInt = 1024
    num_hidden_layers: PosInt = 27
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = 32
    """Read by the eager attention's ``repeat_kv`` only: MLA expands one key and value per head."""
    n_shared_experts: NonNegInt = 1
    """``num_shared_experts`` is the name ``to_dict`` writes (``attribute_map``), an alias here."""
    output_router_logits: bool = False
    routed_scaling_factor: PosFloat = 2.446
    kv_lora_rank: PosInt = 512
    q_lora_rank: PosInt | None = None
    qk_rope_head_dim: PosInt = 64
    """The shared key slice that DeepSeek rotates; here it carries no position (NoPE) but is still stored."""
    v_head_dim: PosInt | None = 128
    qk_nope_head_dim: PosInt = 128
    n_group: PosInt = 1
    topk_group: PosInt | None = 1
    num_experts_per_tok: PosInt | None = 8
    norm_topk_prob: bool = True
    hidden_act: Activation = "silu"
    """One activation for the MLPs, the experts and the KDA convolution."""
    max_position_embeddings: PosInt = 1048576
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-5
    use_cache: bool = True
    pad_token_id: TokenId | None = 163839
    bos_token_id: TokenId | None = 163584
    eos_token_id: TokenId | list[int] | None = 163586
    pretraining_tp: PosInt | None = 1
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    num_local_experts: PosInt = 256
    mlp_layer_types: list[str] | None = None
    layer_types: list[str] | None = None
    linear_head_dim: PosInt = 128
    linear_num_heads: PosInt = 32
    linear_conv_kernel_dim: PosInt = 4
    linear_attn_config: dict[str, Any] | None = None
    """The released configs' block: 1-based ``full_attn_layers`` / ``kda_layers`` and the KDA sizes."""
    first_k_dense_replace: NonNegInt | None = None
    """A keyword of ``__post_init__`` (default 1), used only when ``mlp_layer_types`` is absent."""
    head_dim: PosInt | None = None
    """Derived by transformers (``qk_rope_head_dim``); ``to_dict`` writes it."""
    qk_head_dim: PosInt | None = None
    """Derived by transformers (``qk_nope_head_dim + qk_rope_head_dim``); ``to_dict`` writes it."""
    moe_layer_freq: PosInt | None = None
    """Kimi's remote code: MoE only every ``moe_layer_freq``-th layer; transformers ignores it."""
    num_nextn_predict_layers: NonNegInt | None = None
    """Kimi's remote code: MTP depths; transformers' Kimi Linear builds none and drops nothing for them."""


MLA = MlaKeys(rope_interleave=None, rotary=False)
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
    top_k_nullable=True,
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
MLA_UNUSED = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "attention_bias")
KDA_UNUSED = ("linear_head_dim", "linear_num_heads", "linear_conv_kernel_dim")

_REMOTE_ONLY: dict[str, object] = {"moe_layer_freq": 1, "num_nextn_predict_layers": 0}
"""Keys only Kimi's remote code reads, and the value that means what transformers builds."""
_REMOTE_EXTRA: dict[str, object] = {
    "mla_use_nope": True,
    "mla_use_output_gate": False,
    "moe_router_activation_func": "sigmoid",
    "use_grouped_topk": True,
    "topk_method": "noaux_tc",
    "latent_moe_use_norm": False,
}
"""Keys outside ``KimiLinearConfig`` that Kimi's remote code (Kimi-K3) reads, and the value that means
what transformers builds: another value is a model transformers' class does not build (P916)."""
_LINEAR_REMOTE: dict[str, object] = {"use_full_rank_gate": False, "gate_lower_bound": None}
"""``linear_attn_config`` entries only the remote code reads: a full-rank gate, or a bounded forget gate
(Ling's), is not what ``KimiLinearDeltaAttention`` builds."""


def _remote_only(ctx: Ctx[KimiLinearInput]) -> None:
    """P916 for a key transformers' Kimi Linear ignores whose value would build another model."""
    m = ctx.model
    for key, builds in _REMOTE_ONLY.items():
        value = getattr(m, key)
        if value is not None and value != builds:
            ctx.add(
                "P916",
                f"{ctx.q(key)} is {value!r}, but transformers' KimiLinear ignores it and builds as if it "
                f"were {builds!r}",
                key,
                label="ignored by transformers",
            )
    extra = m.model_extra or {}
    for key, builds in _REMOTE_EXTRA.items():
        if key in extra and extra[key] != builds:
            ctx.add(
                "P916",
                f"{ctx.q(key)} is {extra[key]!r}: Kimi's remote code reads it, transformers' KimiLinear "
                f"builds as if it were {builds!r}",
                key,
                label="ignored by transformers",
            )
    latent = extra.get("routed_expert_hidden_size")
    if latent is not None and latent != m.hidden_size:
        ctx.add(
            "P916",
            f"{ctx.q('routed_expert_hidden_size')} is {latent!r}: Kimi's remote code routes experts in a smaller "
            f"latent, transformers' KimiLinear builds them on `hidden_size` ({m.hidden_size})",
            "routed_expert_hidden_size",
            label="ignored by transformers",
        )
    linear = m.linear_attn_config or {}
    for key, builds in _LINEAR_REMOTE.items():
        if key in linear and linear[key] != builds and linear[key] is not False:
            ctx.add(
                "P916",
                f"`{ctx.key('linear_attn_config')}.{key}` is {linear[key]!r}: Kimi's remote code reads it, "
                "transformers' KimiLinearDeltaAttention builds a low-rank, unbounded forget gate",
                "linear_attn_config",
                label="ignored by transformers",
            )
    derived = {"head_dim": m.qk_rope_head_dim, "qk_head_dim": m.qk_nope_head_dim + m.qk_rope_head_dim}
    for key, value in derived.items():
        given = getattr(m, key)
        if given is not None and given != value:
            ctx.add(
                "P916",
                f"{ctx.q(key)} is {given}, but transformers derives it ({value}) and overwrites it",
                key,
                label="overwritten",
            )


def _index_layout(ctx: Ctx[KimiLinearInput], n: int, linear: dict[str, Any]) -> str | None:
    """``full_attn_layers`` and ``kda_layers``: 1-based layer numbers; the KDA list is applied last, so
    a layer in both is KDA.  A layer in neither is a null ``layer_types`` entry, which transformers
    rejects; a number outside 1..n is an IndexError or (0, negative) silently places another layer."""
    where = "linear_attn_config"
    slots: list[str | None] = [None] * n
    for name, symbol in (("full_attn_layers", MLA_S), ("kda_layers", KDA_S)):
        numbers = linear[name]
        if not isinstance(numbers, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in numbers):
            ctx.add("P906", f"`{ctx.key(where)}.{name}` must be a list of layer numbers", where, label="not a list")
            return None
        outside = sorted({i for i in numbers if not 1 <= i <= n})
        if outside:
            ctx.add(
                "P908",
                f"`{ctx.key(where)}.{name}` holds {', '.join(map(str, outside))}, outside 1..{n}: the lists are "
                "1-based layer numbers",
                where,
                label="no such layer",
                secondary=ctx.secondary("num_hidden_layers"),
            )
            return None
        for i in numbers:
            if symbol == KDA_S and slots[i - 1] == MLA_S:
                ctx.add(
                    "P916",
                    f"layer {i} is in both `{ctx.key(where)}.full_attn_layers` and `kda_layers`; transformers "
                    "applies `kda_layers` last, so it is KDA",
                    where,
                    label="listed twice",
                )
            slots[i - 1] = symbol
    missing = [str(i + 1) for i, s in enumerate(slots) if s is None]
    if missing:
        ctx.add(
            "P908",
            f"layer(s) {', '.join(missing)} are in neither `{ctx.key(where)}.full_attn_layers` nor `kda_layers`; "
            "transformers rejects the null `layer_types` entries",
            where,
            label="unplaced layers",
            secondary=ctx.secondary("num_hidden_layers"),
        )
        return None
    return "".join(s for s in slots if s is not None)


def _mixers(ctx: Ctx[KimiLinearInput], n: int) -> tuple[str | None, str]:
    """The mixers and the key they came from (see the module docstring for the precedence)."""
    m = ctx.model
    linear = m.linear_attn_config or {}
    lists = "full_attn_layers" in linear and "kda_layers" in linear
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
        if lists and mixers is not None and _index_layout(ctx, n, linear) not in (None, mixers):
            ctx.add(
                "P913",
                f"`{ctx.key('linear_attn_config')}`'s layer lists have no effect: they disagree with "
                f"{ctx.q('layer_types')}, and transformers uses `layer_types`",
                "linear_attn_config",
            )
        return mixers, "layer_types"
    if lists:
        return _index_layout(ctx, n, linear), "linear_attn_config"
    if "full_attn_layers" in linear or "kda_layers" in linear:
        ctx.add(
            "P916",
            f"`{ctx.key('linear_attn_config')}` has only one of `full_attn_layers` and `kda_layers`; "
            "transformers reads them only together and builds its default layout",
            "linear_attn_config",
            label="ignored",
        )
    ctx.defaults_used[ctx.key("layer_types")] = "every 4th layer from index 4 is full attention"
    return "".join(MLA_S if i and i % 4 == 0 else KDA_S for i in range(n)), "num_hidden_layers"


def _ffns(ctx: Ctx[KimiLinearInput], n: int) -> str | None:
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
        if ffns is not None:
            ctx.vestigial(["first_k_dense_replace"], "`mlp_layer_types` places the FFNs")
        return ffns
    dense = m.first_k_dense_replace
    if dense is None:
        dense = DEFAULT_DENSE
        ctx.defaults_used[ctx.key("first_k_dense_replace")] = DEFAULT_DENSE
    else:
        ctx.get("first_k_dense_replace")
    return "".join(MLP_S if i < dense else MOE_S for i in range(n))


def _sizes(ctx: Ctx[KimiLinearInput]) -> tuple[int, int, int]:
    """KDA heads, head size and convolution kernel: ``linear_attn_config`` wins over the top-level fields."""
    linear = ctx.model.linear_attn_config or {}
    values = []
    for nested, top in LINEAR_KEYS:
        if nested in linear:
            value = linear[nested]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                ctx.add(
                    "P906",
                    f"`{ctx.key('linear_attn_config')}.{nested}` is {value!r}, not a positive integer",
                    "linear_attn_config",
                )
                value = ctx.get(top)
            elif ctx.has(top) and getattr(ctx.model, top) != value:
                ctx.add(
                    "P916",
                    f"{ctx.q(top)} ({getattr(ctx.model, top)}) differs from `{ctx.key('linear_attn_config')}."
                    f"{nested}` ({value}); transformers uses the latter",
                    top,
                    label="overridden",
                )
            ctx.read.add(top)
        else:
            value = ctx.get(top)
        values.append(value)
    heads, head_dim, kernel = values
    return heads, head_dim, kernel


def read(ctx: Ctx[KimiLinearInput]) -> Built:
    """``modeling_kimi_linear.py``: per layer MLA (NoPE) or KDA, then a dense MLP or the MoE; plain
    RMSNorms (the latent ones at eps 1e-6); KDA's output norm at ``rms_norm_eps``."""
    n = ctx.get("num_hidden_layers")
    mixers, field = _mixers(ctx, n)
    ffns = _ffns(ctx, n)
    _remote_only(ctx)
    if mixers is None or ffns is None:
        return Built(main_key=field)
    main = "".join(a + b for a, b in zip(mixers, ffns, strict=True))
    built = Built(main=main, main_key=field, ffn_key="mlp_layer_types" if ctx.has("mlp_layer_types") else None)
    act = ctx.get("hidden_act")
    if MLA_S in mixers:
        built.specs["mla"] = read_mla(ctx, MLA)
    else:
        ctx.vestigial(MLA_UNUSED, "the model has no full-attention layer")
    if KDA_S in mixers:
        heads, head_dim, kernel = _sizes(ctx)
        built.specs["kda"] = KdaSpec(
            num_heads=heads, head_dim=head_dim, conv_kernel=kernel, gate_rank=head_dim, activation=act
        )
    else:
        ctx.vestigial(KDA_UNUSED, "the model has no KDA layer")
    if MOE_S in ffns:
        if ctx.need("topk_group", "the group-limited router") is not None:
            built.specs["moe"] = read_moe(ctx, MOE)
    else:
        ctx.vestigial(MOE.unused, "every FFN is dense")
    if MLP_S in ffns:
        built.specs["mlp"] = read_mlp(ctx, MLP)
    else:
        ctx.vestigial(MLP.unused, "every FFN is a mixture of experts, which use `moe_intermediate_size`")
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    if ctx.get("tie_word_embeddings"):
        ctx.add(
            "P916",
            f"{ctx.q('tie_word_embeddings')} is true, but transformers' KimiLinearForCausalLM never ties "
            "`lm_head` to the embeddings (`_tied_weights_keys = {}`)",
            "tie_word_embeddings",
            label="ignored",
        )
        built.specs["tie_embeddings"] = False
    return built


def _mla_fields(spec: ModelSpec) -> tuple[Config, list[Finding]]:
    a = spec.mla
    if a is None:
        return {}, []
    first = spec.pattern.flat.index(MLA_S) if MLA_S in spec.pattern.flat else None
    findings = []
    if a.rope is not None:
        findings.append(
            Finding(MLA_S, first, "Kimi Linear's latent attention rotates nothing (NoPE); this one applies RoPE")
        )
    if a.output_gate:
        findings.append(Finding(MLA_S, first, "Kimi Linear's latent attention has no output gate; this one has"))
    if a.latent_norm_eps != LATENT_NORM_EPS:
        findings.append(
            Finding(
                MLA_S,
                first,
                f"Kimi Linear builds its latent norms with eps {LATENT_NORM_EPS:g}, not {a.latent_norm_eps:g}",
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
    }
    return cfg, findings


def _kda_fields(spec: ModelSpec, act: str) -> tuple[Config, list[Finding]]:
    k = spec.kda
    if k is None:
        return {}, []
    first = spec.pattern.flat.index(KDA_S) if KDA_S in spec.pattern.flat else None
    findings = []
    if k.gate_rank != k.head_dim:
        findings.append(
            Finding(
                KDA_S,
                first,
                f"Kimi Linear's forget and output gates go through head_dim ({k.head_dim}) channels "
                f"(f_a_proj/f_b_proj, g_a_proj/g_b_proj); this KDA's gates are "
                + ("full-rank (Ling's f_proj, g_proj)" if k.gate_rank is None else f"of rank {k.gate_rank}"),
            )
        )
    if k.gate_lower_bound is not None:
        findings.append(
            Finding(
                KDA_S,
                first,
                f"Kimi Linear's forget gate is -exp(A)·softplus (unbounded); this one is bounded below by "
                f"{k.gate_lower_bound:g} (Ling's safe gate)",
            )
        )
    if (
        KDA_S in spec.pattern.flat
        and (MLP_S in spec.pattern.flat or MOE_S in spec.pattern.flat)
        and k.activation != act
    ):
        findings.append(
            Finding(
                KDA_S,
                first,
                f"Kimi Linear's KDA convolution uses hidden_act, the FFNs' activation ({act}); "
                f"this one uses {k.activation}",
            )
        )
    cfg: Config = {
        "linear_num_heads": k.num_heads,
        "linear_head_dim": k.head_dim,
        "linear_conv_kernel_dim": k.conv_kernel,
    }
    return cfg, findings


def _moe_fields(spec: ModelSpec) -> tuple[Config, list[Finding]]:
    e = spec.moe
    if e is None or MOE_S not in spec.pattern.flat:
        return {}, []
    where = spec.pattern.flat.index(MOE_S)
    findings = []
    shared = e.shared_intermediate_size if e.shared_experts else 0
    if e.shared_experts > 1 or shared % e.intermediate_size:
        findings.append(
            Finding(
                MOE_S,
                where,
                f"Kimi Linear builds one shared MLP of moe_intermediate_size x n_shared_experts channels; this "
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
                "Kimi Linear routes with DeepSeek-V3's sigmoid router and its score correction bias to SwiGLU "
                "experts on the hidden size, plus one SwiGLU shared MLP (no shared-expert gate, no biases); "
                "this mixture differs",
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


def express(spec: ModelSpec) -> Expression:
    """KimiLinearForCausalLM: (KDA or NoPE MLA) + (dense SwiGLU MLP or the sigmoid-routed MoE) per
    layer, placed by ``layer_types`` and ``mlp_layer_types``, one ``hidden_act`` for all, untied head."""
    arch = "kimi_linear"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    act = ffn_activation(spec)
    mla_cfg, mla_found = _mla_fields(spec)
    kda_cfg, kda_found = _kda_fields(spec, act)
    moe_cfg, moe_found = _moe_fields(spec)
    tied = (
        [Finding("pattern", None, "KimiLinearForCausalLM never ties its LM head to the embeddings")]
        if spec.tie_embeddings
        else []
    )
    structural = (
        kind_findings(spec, KINDS, arch)
        + structural
        + mtp_findings(spec, arch)
        + mla_found
        + kda_found
        + moe_found
        + tied
    )
    cfg: Config = (
        common_fields(spec, "rms_norm_eps")
        | {
            "num_hidden_layers": len(pairs),
            "layer_types": ["full_attention" if flat[m] == MLA_S else "linear_attention" for m, _ in pairs],
            "mlp_layer_types": ["sparse" if f is not None and flat[f] == MOE_S else "dense" for _, f in pairs],
            "hidden_act": act,
            "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 9216,
            "tie_word_embeddings": False,
        }
        | mla_cfg
        | kda_cfg
        | moe_cfg
    )
    if spec.max_position_embeddings is not None:
        cfg["max_position_embeddings"] = spec.max_position_embeddings
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "rms_norm_eps")))
    act = as_str(cfg, "hidden_act")
    mla = None
    if mla_cfg:
        mla = MlaSpec(
            num_heads=as_int(cfg, "num_attention_heads"),
            q_lora_rank=None if cfg["q_lora_rank"] is None else as_int(cfg, "q_lora_rank"),
            kv_lora_rank=as_int(cfg, "kv_lora_rank"),
            qk_nope_head_dim=as_int(cfg, "qk_nope_head_dim"),
            qk_rope_head_dim=as_int(cfg, "qk_rope_head_dim"),
            v_head_dim=as_int(cfg, "v_head_dim"),
            bias=bool(cfg["attention_bias"]),
            latent_norm_eps=LATENT_NORM_EPS,
            rope=None,
            rope_interleave=False,
        )
    kda = None
    if kda_cfg:
        head_dim = as_int(cfg, "linear_head_dim")
        kda = KdaSpec(
            num_heads=as_int(cfg, "linear_num_heads"),
            head_dim=head_dim,
            conv_kernel=as_int(cfg, "linear_conv_kernel_dim"),
            gate_rank=head_dim,
            activation=act,
        )
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = routed_moe(cfg, act) if moe_cfg else None
    blocks = latent_hybrid_blocks(spec, cfg, frame, pairs, (mla, kda, mlp, moe))
    return Expression(arch, cfg, structural, blocks)


def routed_moe(cfg: Config, act: str) -> MoeSpec:
    """The DeepSeek-style MoE that Kimi Linear and Ling (``bailing_hybrid``) build from their config
    fields: sigmoid router with the correction-bias buffer, group-limited top-k, routed scaling, and one
    gated shared expert ``n_shared_experts`` times ``moe_intermediate_size`` wide."""
    inter = as_int(cfg, "moe_intermediate_size")
    return MoeSpec(
        num_experts=as_int(cfg, "num_local_experts"),
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


def latent_hybrid_blocks(
    spec: ModelSpec,
    cfg: Config,
    frame: Frame,
    pairs: list[tuple[int, int | None]],
    flavours: tuple[MlaSpec | None, KdaSpec | None, MlpSpec, MoeSpec | None],
) -> list[tuple[int | None, BlockGraph]]:
    """What a KDA + MLA hybrid (Kimi Linear, Ling) computes from its fields: each decoder layer is the
    latent attention or the KDA mixer, then the dense MLP or the MoE; an untied head.  A mixer the
    family cannot express is lowered as the MLP, a stand-in the comparison then refuses."""
    mla, kda, mlp, moe = flavours
    flat = spec.pattern.flat

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == MLA_S and mla is not None:
            return lower_mla(frame, mla, layer_label(m, MLA_S))
        if kda is not None:
            return lower_kda(frame, kda, layer_label(m, KDA_S))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))

    def ffn(j: int) -> BlockGraph:
        m, f = pairs[j]
        label = layer_label(f if f is not None else m, MLP_S)
        if f is not None and flat[f] == MOE_S and moe is not None:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = model_blocks(spec, cfg, frame, tied=False)
    return [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head]


FAMILY = Family(
    name="kimi_linear",
    input_model=KimiLinearInput,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-9,  # no other family builds low-rank-gated `K` or NoPE `+`; unique, and before nemotron_h
    architectures=("KimiLinearForCausalLM",),
    aliases=MappingProxyType(
        {
            "num_experts": "num_local_experts",
            "num_expert_group": "n_group",
            "num_experts_per_token": "num_experts_per_tok",
            "num_shared_experts": "n_shared_experts",
            "moe_renormalize": "norm_topk_prob",
            "model_max_length": "max_position_embeddings",
        }
    ),
    ties_embeddings=False,
    layout_keys=(("layer_types", "linear_attn_config"),),
    layout_related=("num_hidden_layers", "mlp_layer_types", "first_k_dense_replace"),
    kwarg_only_fields=frozenset(
        {
            "linear_attn_config",
            "first_k_dense_replace",
            "head_dim",
            "qk_head_dim",
            "moe_layer_freq",
            "num_nextn_predict_layers",
        }
    ),
)
