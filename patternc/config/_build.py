"""From a validated dialect model to the IR: the layer pattern and each kind's flavour.

Each builder follows what transformers' configuration and modeling code for that family does
(file:line references are in the docstrings), so the ``ModelSpec`` describes the model
transformers would build from the same config.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from patternc.api import analyze
from patternc.config._load import locate, string_value_offset
from patternc.config.models import (
    ROPE_KEYS,
    BambaInput,
    ConfigModel,
    GraniteMoeHybridInput,
    JambaInput,
    Mamba2Input,
    NemotronHInput,
    Qwen3NextInput,
    Zamba2Input,
)
from patternc.convert import NAME_TO_SYMBOL
from patternc.diagnostics import Diagnostic, Label, diag
from patternc.dialects import Dialect
from patternc.ir import Pattern
from patternc.model import (
    AttentionSpec,
    GatedDeltaNetSpec,
    MambaSpec,
    MlpSpec,
    MoeSpec,
    NormSpec,
    RopeSpec,
)
from patternc.source import Source, Span
from patternc.symbols import LayerKind

LEGACY_NAMES = frozenset({"mamba", "attention"})


class Ctx:
    """What a builder works with: the model, where keys sit in the text, and what it found."""

    def __init__(self, model: ConfigModel, source: Source, prefix: str, base: int, renamed: dict[str, str]) -> None:
        self.model = model
        self.source = source
        self.prefix = prefix
        self.base = base
        self.renamed = renamed
        """canonical field -> the key the config spelled it with (an alias)."""
        self.diagnostics: list[Diagnostic] = []
        self.defaults_used: dict[str, object] = {}
        self.present = set(model.model_fields_set) | set(model.model_extra or {})
        self.reported: set[str] = set()
        """Keys a P913 note already named (not listed again as unknown)."""
        self.read: set[str] = set()
        """Fields the builder read (present or defaulted): what the model is made of."""

    # -- keys ------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return self.prefix + self.renamed.get(name, name)

    def q(self, name: str) -> str:
        return f"`{self.key(name)}`"

    def span(self, name: str) -> Span | None:
        return locate(self.source.text, self.renamed.get(name, name), self.base)

    def has(self, name: str) -> bool:
        return name in self.present

    def get(self, name: str) -> Any:
        """A field's value, recording the default when the config omits the key."""
        value = getattr(self.model, name)
        self.read.add(name)
        if name not in self.present:
            self.defaults_used[self.key(name)] = _plain(value)
        return value

    def need(self, name: str, what: str) -> Any:
        """Like ``get``, but a null value is a P907 error (the layer kind needs it)."""
        value = self.get(name)
        if value is None:
            self.add("P907", f"{self.q(name)} is null, but {what} needs it", name, label="null")
        return value

    def add(self, code: str, message: str, name: str | None = None, **kwargs: Any) -> None:
        self.diagnostics.append(diag(code, message, self.span(name) if name else None, **kwargs))

    def secondary(self, *names: str) -> list[Label]:
        labels = []
        for name in names:
            span = self.span(name)
            if span is not None:
                labels.append(Label(span, self.key(name)))
        return labels

    def vestigial(self, names: Sequence[str], why: str) -> None:
        found = [n for n in names if self.has(n) and n not in self.reported]
        self.reported.update(found)
        if found:
            shown = ", ".join(self.q(n) for n in found)
            self.add("P913", f"{shown} {'has' if len(found) == 1 else 'have'} no effect: {why}", found[0])

    def divisible(self, numerator: str, denominator: str, a: int | None, b: int | None, why: str) -> bool:
        if a is None or b is None or a % b == 0:
            return True
        self.add(
            "P908",
            f"{self.q(numerator)} ({a}) is not divisible by {self.q(denominator)} ({b}): {why}",
            numerator,
            label="not divisible",
            secondary=self.secondary(denominator),
        )
        return False


def _plain(value: object) -> object:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass
class Built:
    """A builder's result: the layers (or None) and each present kind's flavour."""

    main: str | None = None
    mtp: str = ""
    depths: int = 0
    specs: dict[str, Any] = dataclasses.field(default_factory=dict)
    main_key: str | None = None
    """The key the main layout came from (diagnostic spans of the pattern point there)."""
    main_text_offset: int | None = None
    """Where the main pattern's characters start in the text, when they appear there verbatim."""
    mtp_key: str | None = None
    ffn_key: str | None = None
    """The key that places the MoE layers when another key places the mixers (Jamba's
    ``expert_layer_period``): a diagnostic about the FFN kinds (``P201``) points there."""


# -- layout helpers ----------------------------------------------------------------------------


def _list_symbols(ctx: Ctx, field: str, names: list[str], allowed: dict[str, str]) -> str | None:
    symbols = []
    bad = False
    for index, name in enumerate(names):
        symbol = allowed.get(name)
        if symbol is None:
            known = ", ".join(f"`{n}`" for n in sorted(allowed))
            ctx.add(
                "P014",
                f"{ctx.key(field)}[{index}] is {name!r}, which is not a layer type",
                field,
                help=f"known layer types: {known}",
            )
            bad = True
        else:
            symbols.append(symbol)
    legacy = sorted({n for n in names if n in LEGACY_NAMES})
    if legacy and not bad:
        ctx.add(
            "P915",
            f"{ctx.q(field)} uses the legacy layer names {', '.join(f'`{n}`' for n in legacy)}",
            field,
            help="transformers remaps them (`mamba` -> `linear_attention`, `attention` -> `full_attention`)",
        )
    return None if bad else "".join(symbols)


def _pattern_text(ctx: Ctx, field: str, text: str) -> tuple[str | None, int | None]:
    """Check a ``hybrid_override_pattern``-style string with the hf dialect; shift its spans."""
    analysis = analyze(text, Dialect.HF, origin=ctx.key(field))
    key_span = ctx.span(field)
    offset = string_value_offset(ctx.source.text, key_span, text) if key_span is not None else None
    errors = [d for d in analysis.diagnostics if d.severity.value == "error"]
    for problem in errors:
        ctx.diagnostics.append(_moved(problem, offset, key_span, len(text)))
    if errors:
        return None, offset
    return text, offset


def _moved(problem: Diagnostic, offset: int | None, fallback: Span | None, length: int) -> Diagnostic:
    def move(span: Span | None) -> Span | None:
        if span is None:
            return None
        if offset is not None and span.end <= length:
            return Span(span.start + offset, span.end + offset)
        return fallback

    return dataclasses.replace(
        problem,
        span=move(problem.span),
        secondary=tuple(
            Label(moved, label.message) for label in problem.secondary if (moved := move(label.span)) is not None
        ),
    )


def _rope(ctx: Ctx, partial_default: float, top_level_partial: bool, uses_partial: bool = True) -> RopeSpec | None:
    """transformers' rope standardisation (``rope_parameters``, else ``rope_scaling``, else top level)."""
    params_field = "rope_parameters" if ctx.has("rope_parameters") else "rope_scaling"
    params = getattr(ctx.model, params_field, None) or {}
    if params_field == "rope_parameters":
        ctx.get("rope_parameters")
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type != "default":
        ctx.add(
            "P914",
            f"{ctx.q(params_field)} asks for RoPE type {rope_type!r}, which patternc cannot express",
            params_field,
            help="patternc's RopeSpec holds the plain RoPE of a base theta and a partial factor",
        )
        return None
    theta = params.get("rope_theta")
    theta_key = f"{params_field}.rope_theta"
    if theta is None:
        theta = getattr(ctx.model, "rope_theta", None)
        theta_key = "rope_theta"
    if theta is None:
        theta = 10000.0
        ctx.defaults_used[ctx.prefix + "rope_parameters.rope_theta"] = theta
    if not (isinstance(theta, int | float) and not isinstance(theta, bool) and math.isfinite(theta) and theta > 0):
        ctx.add(
            "P906", f"`{ctx.prefix}{theta_key}` is {theta!r}: the RoPE base must be a positive number", params_field
        )
        return None
    partial = params.get("partial_rotary_factor") if uses_partial else None
    if partial is None and uses_partial:
        top = getattr(ctx.model, "partial_rotary_factor", None) if top_level_partial else None
        partial = top if top is not None else partial_default
        if top is None:
            ctx.defaults_used[ctx.prefix + "rope_parameters.partial_rotary_factor"] = partial_default
    if partial is None:
        partial = 1.0
    if not (isinstance(partial, int | float) and not isinstance(partial, bool) and 0 < partial <= 1):
        ctx.add(
            "P906",
            f"`{ctx.prefix}{params_field}.partial_rotary_factor` is {partial!r}: it must be in (0, 1]",
            params_field,
        )
        return None
    return RopeSpec(theta=float(theta), partial_factor=float(partial))


def _heads(ctx: Ctx, heads_field: str, kv_field: str) -> tuple[int, int]:
    heads: int = ctx.get(heads_field)
    kv = ctx.get(kv_field)
    if kv is None:
        kv = heads
    ctx.divisible(heads_field, kv_field, heads, kv, "every key/value head serves the same number of query heads")
    return heads, kv


def _moe_checks(ctx: Ctx, experts_field: str, top_k_field: str, experts: int, top_k: int) -> None:
    if top_k > experts:
        ctx.add(
            "P908",
            f"{ctx.q(top_k_field)} ({top_k}) is larger than {ctx.q(experts_field)} ({experts})",
            top_k_field,
            label="more experts chosen than exist",
            secondary=ctx.secondary(experts_field),
        )


def _time_step_limit(value: Sequence[float] | None) -> tuple[float, float]:
    if value is None:
        return (0.0, float("inf"))
    return (float(value[0]), float(value[1]))


def _mamba_hybrid_mixer(ctx: Ctx, hidden: int) -> MambaSpec | None:
    """Bamba / GraniteMoeHybrid Mamba2 mixer (modeling_bamba.py:596-644)."""
    n_heads = ctx.need("mamba_n_heads", "a Mamba layer")
    d_head = ctx.need("mamba_d_head", "a Mamba layer")
    groups = ctx.need("mamba_n_groups", "a Mamba layer")
    state = ctx.need("mamba_d_state", "a Mamba layer")
    conv = ctx.need("mamba_d_conv", "a Mamba layer")
    expand = ctx.need("mamba_expand", "a Mamba layer")
    chunk = ctx.need("mamba_chunk_size", "a Mamba layer")
    conv_bias = ctx.get("mamba_conv_bias")
    proj_bias = ctx.get("mamba_proj_bias")
    limit = ctx.get("time_step_limit")
    act = ctx.get("hidden_act")
    if None in (n_heads, d_head, groups, state, conv, expand, chunk):
        return None
    inner = expand * hidden
    ok = ctx.divisible(
        "mamba_expand", "mamba_n_heads", inner, n_heads, "mamba_expand * hidden_size is split into mamba_n_heads heads"
    )
    if d_head == "auto":
        d_head = inner // n_heads
    elif ok and d_head * n_heads != inner:
        ctx.add(
            "P908",
            f"{ctx.q('mamba_d_head')} x {ctx.q('mamba_n_heads')} = {d_head * n_heads}, but "
            f"mamba_expand x hidden_size = {inner}; transformers rejects this config",
            "mamba_d_head",
            label="head size mismatch",
            secondary=ctx.secondary("mamba_n_heads", "mamba_expand"),
        )
        ok = False
    ok = (
        ctx.divisible(
            "mamba_n_heads", "mamba_n_groups", n_heads, groups, "each group of B/C serves a whole number of heads"
        )
        and ok
    )
    if not ok or d_head == 0:
        return None
    return MambaSpec(
        num_heads=n_heads,
        head_dim=d_head,
        state_size=state,
        n_groups=groups,
        conv_kernel=conv,
        chunk_size=chunk,
        conv_bias=bool(conv_bias) if conv_bias is not None else True,
        proj_bias=bool(proj_bias),
        norm_group_size=inner // groups,
        activation=act,
        time_step_limit=_time_step_limit(limit),
    )


# -- nemotron_h --------------------------------------------------------------------------------

_NEMOTRON_DEFAULT_LAYERS = ["linear_attention", "moe", "full_attention", "mlp"]
_NEMOTRON_DEFAULT_MTP = ["full_attention", "moe"]


def nemotron_h(ctx: Ctx) -> Built:
    """transformers ``configuration_nemotron_h.py:153-204`` and ``modeling_nemotron_h.py``."""
    m = ctx.model
    assert isinstance(m, NemotronHInput)
    built = Built()
    names = dict(NAME_TO_SYMBOL)
    if m.layers_block_type is not None:
        built.main = _list_symbols(ctx, "layers_block_type", m.layers_block_type, names)
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
        built.main, built.main_text_offset = _pattern_text(ctx, "hybrid_override_pattern", m.hybrid_override_pattern)
        built.main_key = "hybrid_override_pattern"
    else:
        built.main = "ME*-"
        ctx.defaults_used[ctx.key("layers_block_type")] = list(_NEMOTRON_DEFAULT_LAYERS)
    # MTP (configuration_nemotron_h.py:190-198; validated only when num_nextn_predict_layers > 0, :219)
    depths = ctx.get("num_nextn_predict_layers")
    mtp: str | None = "*E"
    if depths > 0:
        mtp_key = "mtp_layers_block_type"
        is_default = True
        if m.mtp_layers_block_type is not None:
            mtp = _list_symbols(ctx, "mtp_layers_block_type", m.mtp_layers_block_type, names)
            is_default = m.mtp_layers_block_type in (_NEMOTRON_DEFAULT_MTP, ["attention", "moe"])
        if m.mtp_hybrid_override_pattern is not None:
            if is_default:
                mtp, _ = _pattern_text(ctx, "mtp_hybrid_override_pattern", m.mtp_hybrid_override_pattern)
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
        return built
    if ctx.has("num_hidden_layers") and m.num_hidden_layers != len(built.main):
        ctx.add(
            "P910",
            f"{ctx.q('num_hidden_layers')} is {m.num_hidden_layers}, "
            f"but {ctx.q(built.main_key or 'layers_block_type')} "
            f"has {len(built.main)} layers; transformers uses {len(built.main)}",
            "num_hidden_layers",
            label="stale layer count",
            secondary=ctx.secondary(built.main_key) if built.main_key else (),
        )
    symbols = set(built.main) | set(built.mtp)
    hidden = ctx.get("hidden_size")
    if "*" in symbols:
        heads, kv = _heads(ctx, "num_attention_heads", "num_key_value_heads")
        head_dim = ctx.get("head_dim")
        built.specs["attention"] = AttentionSpec(num_heads=heads, num_kv_heads=kv, head_dim=head_dim)
        if ctx.has("attention_bias") and m.attention_bias:
            ctx.add(
                "P916",
                f"{ctx.q('attention_bias')} is true, but transformers' NemotronHAttention builds q/k/v/o without bias",
                "attention_bias",
                label="ignored",
            )
        ctx.vestigial(list(ROPE_KEYS), "Nemotron-H attention has no positional embedding (no RoPE)")
    else:
        ctx.vestigial(
            ["num_attention_heads", "num_key_value_heads", "head_dim", "attention_bias", *ROPE_KEYS],
            "the model has no attention layer",
        )
    if "M" in symbols:
        n_heads = ctx.get("mamba_num_heads")
        d_head = ctx.get("mamba_head_dim")
        groups = ctx.get("n_groups")
        expand = ctx.get("expand")
        inner = n_heads * d_head
        ok = ctx.divisible(
            "mamba_num_heads", "n_groups", n_heads, groups, "each group of B/C serves a whole number of heads"
        )
        if inner != expand * hidden:
            ctx.add(
                "P909",
                f"{ctx.q('mamba_num_heads')} x {ctx.q('mamba_head_dim')} = {inner}, but "
                f"{ctx.q('expand')} x {ctx.q('hidden_size')} = {expand * hidden}; transformers uses {inner}",
                "mamba_num_heads",
                label=f"Mamba inner size {inner} used",
                secondary=ctx.secondary("expand"),
            )
        if m.mamba_proj_bias != m.use_bias and ctx.has("mamba_proj_bias"):
            ctx.add(
                "P916",
                f"{ctx.q('mamba_proj_bias')} is {str(m.mamba_proj_bias).lower()}, but transformers' Nemotron-H "
                f"Mamba projections take their bias from {ctx.q('use_bias')} ({str(m.use_bias).lower()})",
                "mamba_proj_bias",
                label="ignored",
            )
        if ok:
            built.specs["mamba"] = MambaSpec(
                num_heads=n_heads,
                head_dim=d_head,
                state_size=ctx.get("ssm_state_size"),
                n_groups=groups,
                conv_kernel=ctx.get("conv_kernel"),
                chunk_size=ctx.get("chunk_size"),
                conv_bias=ctx.get("use_conv_bias"),
                proj_bias=ctx.get("use_bias"),
                norm_group_size=inner // groups,
                activation=ctx.get("mamba_hidden_act"),
                time_step_limit=(ctx.get("time_step_min"), float("inf")),
            )
    else:
        ctx.vestigial(
            ["mamba_num_heads", "mamba_head_dim", "ssm_state_size", "n_groups", "conv_kernel", "expand", "chunk_size"],
            "the model has no Mamba layer",
        )
    if "-" in symbols:
        built.specs["mlp"] = MlpSpec(
            intermediate_size=ctx.get("intermediate_size"),
            activation=ctx.get("mlp_hidden_act"),
            gated=False,
            bias=ctx.get("mlp_bias"),
        )
    else:
        ctx.vestigial(
            ["intermediate_size"], "the model has no dense MLP `-` layer (experts use `moe_intermediate_size`)"
        )
    moe_keys = [
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
    ]
    if "E" in symbols:
        experts = ctx.get("n_routed_experts")
        top_k = ctx.get("num_experts_per_tok")
        n_group = ctx.get("n_group")
        topk_group = ctx.get("topk_group")
        _moe_checks(ctx, "n_routed_experts", "num_experts_per_tok", experts, top_k)
        ok = ctx.divisible("n_routed_experts", "n_group", experts, n_group, "experts are routed in equal groups")
        if topk_group > n_group:
            ctx.add(
                "P908",
                f"{ctx.q('topk_group')} ({topk_group}) is larger than {ctx.q('n_group')} ({n_group})",
                "topk_group",
                secondary=ctx.secondary("n_group"),
            )
            ok = False
        elif ok and top_k > topk_group * (experts // n_group):
            ctx.add(
                "P908",
                f"{ctx.q('num_experts_per_tok')} ({top_k}) is more than the {topk_group * (experts // n_group)} "
                f"experts in the {topk_group} selected group(s)",
                "num_experts_per_tok",
                secondary=ctx.secondary("topk_group", "n_group"),
            )
            ok = False
        shared = ctx.get("n_shared_experts")
        if shared != 1:
            ctx.add(
                "P916",
                f"{ctx.q('n_shared_experts')} is {shared}, but transformers' NemotronHMoE always builds one shared "
                f"expert of {ctx.q('moe_shared_expert_intermediate_size')} channels",
                "n_shared_experts",
                label="ignored",
            )
        if ok:
            built.specs["moe"] = MoeSpec(
                num_experts=experts,
                top_k=top_k,
                intermediate_size=ctx.get("moe_intermediate_size"),
                router="sigmoid",
                score_correction_bias=True,
                n_group=n_group,
                topk_group=topk_group,
                norm_topk_prob=ctx.get("norm_topk_prob"),
                routed_scaling_factor=float(ctx.get("routed_scaling_factor")),
                expert_gated=False,
                expert_activation=ctx.get("mlp_hidden_act"),
                shared_experts=1,
                shared_intermediate_size=ctx.get("moe_shared_expert_intermediate_size"),
                shared_gated=False,
                latent_size=ctx.get("moe_latent_size"),
                # modeling_nemotron_h.py:733-738: mlp_bias reaches the shared expert and latent projections
                bias=ctx.get("mlp_bias"),
            )
    else:
        ctx.vestigial(moe_keys, "the model has no mixture-of-experts `E` layer")
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


# -- bamba ---------------------------------------------------------------------------------------


def bamba(ctx: Ctx) -> Built:
    """``configuration_bamba.py:70-113``: every layer is a mixer (attention at ``attn_layer_indices``,
    else Mamba2) followed by a gated MLP (``modeling_bamba.py:805-818``)."""
    m = ctx.model
    assert isinstance(m, BambaInput)
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
    built = Built(main="".join(("*" if i in attention else "M") + "-" for i in range(n)), main_key="attn_layer_indices")
    hidden = ctx.get("hidden_size")
    if attention & set(range(n)):
        heads, kv = _heads(ctx, "num_attention_heads", "num_key_value_heads")
        head_dim = m.head_dim if m.head_dim is not None else hidden // heads
        bias = ctx.get("attention_bias")
        if head_dim > 0:
            built.specs["attention"] = AttentionSpec(
                num_heads=heads,
                num_kv_heads=kv,
                head_dim=head_dim,
                qkv_bias=bias,
                out_bias=bias,
                rope=_rope(ctx, 0.5, top_level_partial=False),
            )
    if attention != set(range(n)):
        built.specs["mamba"] = _mamba_hybrid_mixer(ctx, hidden)
    built.specs["mlp"] = MlpSpec(
        intermediate_size=ctx.get("intermediate_size"),
        activation=ctx.get("hidden_act"),
        gated=True,
        bias=ctx.get("mlp_bias"),
    )
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


# -- granitemoehybrid ---------------------------------------------------------------------------


_MIXER_NAMES = {"linear_attention": "M", "mamba": "M", "full_attention": "*", "attention": "*"}


def granitemoehybrid(ctx: Ctx) -> Built:
    """``configuration_granitemoehybrid.py:97-131``, ``modeling_granitemoehybrid.py:943-1008``: every
    layer is a mixer, then a softmax-routed MoE of gated experts plus an always-present gated shared
    MLP; with ``num_local_experts == 0`` only the shared MLP (a dense gated MLP)."""
    m = ctx.model
    assert isinstance(m, GraniteMoeHybridInput)
    n = ctx.get("num_hidden_layers")
    field = "layer_types"
    if m.layer_types is None:
        mixers: str | None = "M" * n
        ctx.defaults_used[ctx.key("layer_types")] = ["linear_attention"] * min(n, 4) + (["..."] if n > 4 else [])
    else:
        mixers = _list_symbols(ctx, field, m.layer_types, _MIXER_NAMES)
        if mixers is not None and len(mixers) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q(field)} has {len(mixers)} entries; "
                "transformers rejects this config",
                "num_hidden_layers" if ctx.has("num_hidden_layers") else field,
                label="layer count mismatch",
                secondary=ctx.secondary(field),
            )
            mixers = None
    experts = ctx.get("num_local_experts") or 0
    ffn = "E" if experts > 0 else "-"
    built = Built(main=None if mixers is None else "".join(s + ffn for s in mixers), main_key=field)
    if mixers is None:
        return built
    hidden = ctx.get("hidden_size")
    act = ctx.get("hidden_act")
    if "*" in mixers:
        heads, kv = _heads(ctx, "num_attention_heads", "num_key_value_heads")
        head_dim = m.head_dim if m.head_dim is not None else hidden // heads
        bias = ctx.get("attention_bias")
        rope = None
        if ctx.get("position_embedding_type") == "rope":
            rope = _rope(ctx, 1.0, top_level_partial=False, uses_partial=False)
        else:
            ctx.vestigial(list(ROPE_KEYS), '`position_embedding_type` is not "rope", so attention has no RoPE')
        if head_dim > 0:
            built.specs["attention"] = AttentionSpec(
                num_heads=heads,
                num_kv_heads=kv,
                head_dim=head_dim,
                qkv_bias=bias,
                out_bias=bias,
                rope=rope,
                scale=float(ctx.get("attention_multiplier") or 1.0),
            )
    if "M" in mixers:
        built.specs["mamba"] = _mamba_hybrid_mixer(ctx, hidden)
    shared_size = ctx.get("shared_intermediate_size")
    if experts > 0:
        top_k = ctx.need("num_experts_per_tok", "a mixture-of-experts layer")
        if top_k is not None:
            _moe_checks(ctx, "num_local_experts", "num_experts_per_tok", experts, top_k)
            if top_k <= experts:
                built.specs["moe"] = MoeSpec(
                    num_experts=experts,
                    top_k=top_k,
                    intermediate_size=ctx.get("intermediate_size"),
                    router="softmax",
                    norm_topk_prob=True,
                    expert_gated=True,
                    expert_activation=act,
                    shared_experts=1,
                    shared_intermediate_size=shared_size,
                    shared_gated=True,
                )
    else:
        built.specs["mlp"] = MlpSpec(intermediate_size=shared_size, activation=act, gated=True)
        ctx.vestigial(
            ["intermediate_size", "num_experts_per_tok"],
            "`num_local_experts` is 0, so every layer's FFN is the shared MLP (`shared_intermediate_size`)",
        )
    if ctx.has("partial_rotary_factor"):
        ctx.add(
            "P916",
            f"{ctx.q('partial_rotary_factor')} is ignored: GraniteMoeHybrid rotates the whole head",
            "partial_rotary_factor",
            label="ignored",
        )
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    built.specs["embedding_multiplier"] = float(ctx.get("embedding_multiplier") or 1.0)
    built.specs["residual_multiplier"] = float(ctx.get("residual_multiplier") or 1.0)
    built.specs["logits_scaling"] = float(ctx.get("logits_scaling") or 1.0)
    return built


# -- jamba ---------------------------------------------------------------------------------------


def jamba(ctx: Ctx) -> Built:
    """``configuration_jamba.py``: attention iff ``i % attn_layer_period == attn_layer_offset``,
    MoE iff ``i % expert_layer_period == expert_layer_offset`` (``modeling_jamba.py:735-739``)."""
    m = ctx.model
    assert isinstance(m, JambaInput)
    ok = True
    for what, period, offset in (
        ("attn", "attn_layer_period", "attn_layer_offset"),
        ("expert", "expert_layer_period", "expert_layer_offset"),
    ):
        p, o = ctx.get(period), ctx.get(offset)
        if o >= p:
            ctx.add(
                "P908",
                f"{ctx.q(offset)} ({o}) must be smaller than {ctx.q(period)} ({p}), or no layer is {what}",
                offset,
                secondary=ctx.secondary(period),
            )
            ok = False
    if not ok:
        return Built()
    n = ctx.get("num_hidden_layers")
    experts = ctx.get("num_experts")
    main = "".join(
        ("*" if i % m.attn_layer_period == m.attn_layer_offset else "M")
        + ("E" if experts > 1 and i % m.expert_layer_period == m.expert_layer_offset else "-")
        for i in range(n)
    )
    if "M" in main:
        ctx.add(
            "P914",
            "Jamba's Mamba layers are Mamba-1 mixers, which patternc's `M` (Mamba2) cannot express",
            "model_type",
            label="Mamba-1",
            notes=(
                "Mamba-1 has a per-channel state matrix A of shape (expand*hidden_size, mamba_d_state), a "
                "low-rank dt projection (mamba_dt_rank) and no heads, groups or gated RMSNorm; Mamba2 has one "
                "scalar A per head and shares B/C across groups, so no renaming of weights maps one onto the other",
                "the layer layout is still read (in Python: `read_config(path).pattern`, `M` standing for the "
                "Mamba-1 layers), but no model is built or counted from it",
            ),
        )
    return Built(main=main, main_key="attn_layer_period", ffn_key="expert_layer_period", specs={"expressible": False})


# -- mamba2 --------------------------------------------------------------------------------------


def mamba2(ctx: Ctx) -> Built:
    """``configuration_mamba2.py``, ``modeling_mamba2.py:383-432``: every layer a Mamba2 mixer, no FFN."""
    m = ctx.model
    assert isinstance(m, Mamba2Input)
    n = ctx.get("num_hidden_layers")
    built = Built(main="M" * n, main_key="num_hidden_layers")
    hidden, expand = ctx.get("hidden_size"), ctx.get("expand")
    heads, head_dim, groups = ctx.get("num_heads"), ctx.get("head_dim"), ctx.get("n_groups")
    inner = expand * hidden
    ok = True
    if heads * head_dim != inner:
        ctx.add(
            "P908",
            f"{ctx.q('num_heads')} x {ctx.q('head_dim')} = {heads * head_dim}, but {ctx.q('hidden_size')} x "
            f"{ctx.q('expand')} = {inner}; transformers rejects this config",
            "num_heads",
            secondary=ctx.secondary("head_dim", "expand"),
        )
        ok = False
    ok = (
        ctx.divisible("num_heads", "n_groups", heads, groups, "each group of B/C serves a whole number of heads") and ok
    )
    ok = (
        ctx.divisible(
            "expand", "n_groups", inner, groups, "the gated RMSNorm splits expand x hidden_size into n_groups groups"
        )
        and ok
    )
    if ok:
        built.specs["mamba"] = MambaSpec(
            num_heads=heads,
            head_dim=head_dim,
            state_size=ctx.get("state_size"),
            n_groups=groups,
            conv_kernel=ctx.get("conv_kernel"),
            chunk_size=ctx.get("chunk_size"),
            conv_bias=ctx.get("use_conv_bias"),
            proj_bias=ctx.get("use_bias"),
            norm_group_size=inner // groups,
            activation=ctx.get("hidden_act"),
            time_step_limit=_time_step_limit(ctx.get("time_step_limit")),
        )
    built.specs["norm"] = NormSpec(eps=ctx.get("layer_norm_epsilon"))
    return built


# -- qwen3_next ----------------------------------------------------------------------------------

_QWEN_NAMES = {"linear_attention": "G", "full_attention": "*", "attention": "*"}


def qwen3_next(ctx: Ctx) -> Built:
    """``configuration_qwen3_next.py:120-130``, ``modeling_qwen3_next.py:871-891``: gated DeltaNet or
    gated attention, then a sparse MoE (softmax router, gated experts, sigmoid-gated shared expert) or
    a dense gated MLP; zero-centred RMSNorm (``1 + weight``, line 139)."""
    m = ctx.model
    assert isinstance(m, Qwen3NextInput)
    n = ctx.get("num_hidden_layers")
    field = "layer_types"
    if m.layer_types is None:
        interval = ctx.get("full_attention_interval")
        mixers: str | None = "".join("G" if (i + 1) % interval else "*" for i in range(n))
        field = "full_attention_interval"
    else:
        ctx.vestigial(["full_attention_interval"], "`layer_types` is given, and transformers uses it instead")
        mixers = _list_symbols(ctx, field, m.layer_types, _QWEN_NAMES)
        if mixers is not None and len(mixers) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q(field)} has {len(mixers)} entries; "
                "transformers rejects this config",
                "num_hidden_layers" if ctx.has("num_hidden_layers") else field,
                secondary=ctx.secondary(field),
            )
            mixers = None
    if mixers is None:
        return Built(main_key=field)
    dense_only = set(ctx.get("mlp_only_layers") or [])
    experts, step = ctx.get("num_experts"), ctx.get("decoder_sparse_step")
    ffn = ["E" if i not in dense_only and experts > 0 and (i + 1) % step == 0 else "-" for i in range(n)]
    main = "".join(s + f for s, f in zip(mixers, ffn, strict=True))
    built = Built(main=main, main_key=field,
                  ffn_key="mlp_only_layers" if ctx.has("mlp_only_layers") else "decoder_sparse_step")
    hidden = ctx.get("hidden_size")
    act = ctx.get("hidden_act")
    if "*" in mixers:
        heads, kv = _heads(ctx, "num_attention_heads", "num_key_value_heads")
        bias = ctx.get("attention_bias")
        built.specs["attention"] = AttentionSpec(
            num_heads=heads,
            num_kv_heads=kv,
            head_dim=ctx.get("head_dim"),
            qkv_bias=bias,
            out_bias=bias,
            rope=_rope(ctx, 0.25, top_level_partial=True),
            qk_norm=True,
            output_gate=True,
        )
    if "G" in mixers:
        k_heads, v_heads = ctx.get("linear_num_key_heads"), ctx.get("linear_num_value_heads")
        if ctx.divisible(
            "linear_num_value_heads",
            "linear_num_key_heads",
            v_heads,
            k_heads,
            "each key head serves a whole number of value heads",
        ):
            built.specs["gated_deltanet"] = GatedDeltaNetSpec(
                num_k_heads=k_heads,
                num_v_heads=v_heads,
                head_k_dim=ctx.get("linear_key_head_dim"),
                head_v_dim=ctx.get("linear_value_head_dim"),
                conv_kernel=ctx.get("linear_conv_kernel_dim"),
            )
    if "E" in main:
        top_k = ctx.get("num_experts_per_tok")
        _moe_checks(ctx, "num_experts", "num_experts_per_tok", experts, top_k)
        if top_k <= experts:
            built.specs["moe"] = MoeSpec(
                num_experts=experts,
                top_k=top_k,
                intermediate_size=ctx.get("moe_intermediate_size"),
                router="softmax",
                norm_topk_prob=ctx.get("norm_topk_prob"),
                expert_gated=True,
                expert_activation=act,
                shared_experts=1,
                shared_intermediate_size=ctx.get("shared_expert_intermediate_size"),
                shared_gated=True,
                shared_expert_gate=True,
            )
    else:
        ctx.vestigial(
            ["num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "norm_topk_prob"],
            "the model has no mixture-of-experts layer",
        )
    if "-" in main:
        built.specs["mlp"] = MlpSpec(intermediate_size=ctx.get("intermediate_size"), activation=act, gated=True)
    else:
        ctx.vestigial(["intermediate_size"], "every layer is a mixture of experts, which use `moe_intermediate_size`")
    del hidden
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"), unit_offset=True)
    return built


# -- zamba2 --------------------------------------------------------------------------------------


def zamba2(ctx: Ctx) -> Built:
    """``modeling_zamba2.py:248-257, 1023-1061``: ``hybrid`` layers call shared transformer blocks."""
    assert isinstance(ctx.model, Zamba2Input)
    ctx.add(
        "P914",
        "Zamba2's `hybrid` layers call shared transformer blocks, which patternc cannot express",
        "model_type",
        label="shared blocks",
        notes=(
            "a `hybrid` layer runs one of `num_mem_blocks` transformer blocks whose weights are shared by every "
            "hybrid layer (cycled i % num_mem_blocks), on the concatenation of the hidden state and the original "
            "embeddings, then a per-layer linear and a Mamba2 layer; patternc gives each layer its own weights",
        ),
    )
    return Built(specs={"expressible": False})


BUILDERS = {
    "nemotron_h": nemotron_h,
    "bamba": bamba,
    "granitemoehybrid": granitemoehybrid,
    "jamba": jamba,
    "mamba2": mamba2,
    "qwen3_next": qwen3_next,
    "zamba2": zamba2,
}


def combine(ctx: Ctx, built: Built) -> Pattern | None:
    """Build and check the IR for the layout (all default passes), spans moved into the JSON text."""
    assert built.main is not None
    text = built.main + ("/" + built.mtp) * built.depths if built.mtp and built.depths else built.main
    analysis = analyze(text, Dialect.PATTERNC, origin=ctx.source.origin)
    main_span = ctx.span(built.main_key) if built.main_key else None
    mtp_span = ctx.span(built.mtp_key) if built.mtp_key else None
    ffn_span = ctx.span(built.ffn_key) if built.ffn_key else None
    for problem in analysis.diagnostics:
        if problem.code == "P201" and ffn_span is not None:  # the MoE layers are placed by another key
            ctx.diagnostics.append(dataclasses.replace(problem, span=ffn_span, label="places the MoE layers",
                                                      secondary=()))
        elif problem.span is not None and problem.span.start >= len(built.main):
            ctx.diagnostics.append(dataclasses.replace(problem, span=mtp_span, secondary=()))
        else:
            ctx.diagnostics.append(_moved(problem, built.main_text_offset, main_span, len(built.main)))
    return analysis.pattern


KIND_OF = {
    "attention": LayerKind.ATTENTION,
    "mamba": LayerKind.MAMBA2,
    "gated_deltanet": LayerKind.GATED_DELTANET,
    "mlp": LayerKind.MLP,
    "moe": LayerKind.MOE,
}
