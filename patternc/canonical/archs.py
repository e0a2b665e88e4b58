"""Candidate architectures: express a ModelSpec in each one's own config terms, then lower that.

Each ``express_<model_type>`` does two things, and never looks at the spec's graphs:

1. derive the architecture's config fields from the spec (``attn_layer_indices``, ``hidden_act``,
   ``rope_parameters``...), recording *structural* findings where the architecture has no way to
   say something (a mixer without its own FFN, a layer kind it lacks, MTP, a non-integer
   ``mamba_expand``);
2. lower what the architecture computes *from those fields alone*, with the choices its modeling
   code hard-codes, into the same block-graph vocabulary (``patternc.canonical.graph``), each block
   aligned to the spec block it stands for.

The facts each function encodes were read from transformers 5.x ``models/<name>/modeling_*.py``
and ``configuration_*.py``; docs/canonical.md cites them line by line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from patternc.canonical.graph import (
    BlockGraph,
    Frame,
    layer_label,
    lower_attention,
    lower_embedding,
    lower_gated_deltanet,
    lower_head,
    lower_mamba,
    lower_mlp,
    lower_moe,
)
from patternc.model import (
    AttentionSpec,
    GatedDeltaNetSpec,
    MambaSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
    RopeSpec,
)
from patternc.symbols import BY_SYMBOL, Role

Config = dict[str, object]


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason, before grouping: where (a layer, or a model-level topic) and what."""

    topic: str
    """The layer symbol, or ``embedding`` / ``output head`` / ``pattern``."""
    layer: int | None
    message: str


@dataclass
class Expression:
    """A spec as one architecture would hold it."""

    arch: str
    config: Config = field(default_factory=dict)
    structural: list[Finding] = field(default_factory=list)
    blocks: list[tuple[int | None, BlockGraph]] = field(default_factory=list)
    """What the architecture computes, block by block; the int is the spec block it stands for
    (0 = embedding, i + 1 = main layer i, n + 1 = output head), None when it has no counterpart."""


# -- helpers -----------------------------------------------------------------------------------------


def _is_mixer(symbol: str) -> bool:
    return BY_SYMBOL[symbol].role is not Role.FFN


def pair_layers(flat: str, arch: str) -> tuple[list[tuple[int, int | None]], list[Finding]]:
    """Group a flat stack into (mixer, ffn) decoder layers, as Bamba/Granite/Jamba/Qwen3-Next need."""
    pairs: list[tuple[int, int | None]] = []
    findings: list[Finding] = []
    i = 0
    while i < len(flat):
        symbol = flat[i]
        if _is_mixer(symbol):
            if i + 1 < len(flat) and not _is_mixer(flat[i + 1]):
                pairs.append((i, i + 1))
                i += 2
                continue
            pairs.append((i, None))
            findings.append(Finding(symbol, i, f"has no FFN of its own: {arch} pairs every mixer with an FFN"))
        else:
            findings.append(
                Finding(symbol, i, f"is an FFN without a mixer before it: every {arch} layer is one mixer + one FFN")
            )
        i += 1
    return pairs, findings


def _mtp(spec: ModelSpec, arch: str) -> list[Finding]:
    if spec.pattern.mtp is None:
        return []
    mtp = spec.pattern.mtp
    return [Finding("pattern", None, f"MTP block `{mtp.flat}` x{mtp.depths}: {arch} has no multi-token prediction")]


def _kinds(spec: ModelSpec, allowed: str, arch: str, why: dict[str, str] | None = None) -> list[Finding]:
    out = []
    for layer in spec.pattern.layers:
        if layer.symbol not in allowed:
            extra = (why or {}).get(layer.symbol, f"{arch} has no {BY_SYMBOL[layer.symbol].description} layer")
            out.append(Finding(layer.symbol, layer.index, extra))
    return out


def _expand(spec: ModelSpec, arch: str, field_name: str) -> tuple[int | None, list[Finding]]:
    """Mamba2 in Mamba2/Bamba/Granite: inner size = integer ``expand`` x hidden_size."""
    if spec.mamba is None or "M" not in spec.pattern.flat:
        return 2, []
    inner = spec.mamba.inner_size
    if inner % spec.hidden_size == 0:
        return inner // spec.hidden_size, []
    message = (
        f"Mamba inner size {inner} ({spec.mamba.num_heads} heads x {spec.mamba.head_dim}) is not an integer multiple "
        f"of hidden_size {spec.hidden_size}: {arch} derives it as {field_name} x hidden_size with an integer "
        f"{field_name}"
    )
    return None, [Finding("M", i, message) for i, s in enumerate(spec.pattern.flat) if s == "M"][:1]


def _mamba_fields(spec: ModelSpec, prefix: str, expand: int | None) -> Config:
    m = spec.mamba
    if m is None:
        return {}
    names = {
        "mamba_": ("mamba_n_heads", "mamba_d_head", "mamba_n_groups", "mamba_d_state", "mamba_d_conv",
                   "mamba_expand", "mamba_conv_bias", "mamba_proj_bias"),
        "": ("num_heads", "head_dim", "n_groups", "state_size", "conv_kernel", "expand", "use_conv_bias", "use_bias"),
    }[prefix]
    values = (m.num_heads, m.head_dim, m.n_groups, m.state_size, m.conv_kernel, expand, m.conv_bias, m.proj_bias)
    return dict(zip(names, values, strict=True)) | {"time_step_limit": m.time_step_limit}


def _mamba_from(cfg: Config, prefix: str, act: str, dt_limit: tuple[float, float]) -> MambaSpec:
    """What Mamba2/Bamba/Granite/Nemotron-H build: group size = inner // n_groups, gate silu, no norm first."""
    keys = {
        "mamba_": ("mamba_n_heads", "mamba_d_head", "mamba_n_groups", "mamba_d_state", "mamba_d_conv",
                   "mamba_conv_bias", "mamba_proj_bias"),
        "": ("num_heads", "head_dim", "n_groups", "state_size", "conv_kernel", "use_conv_bias", "use_bias"),
        "nemotron": ("mamba_num_heads", "mamba_head_dim", "n_groups", "ssm_state_size", "conv_kernel",
                     "use_conv_bias", "use_bias"),
    }[prefix]
    heads, head_dim, groups, state, kernel, conv_bias, proj_bias = (cfg[k] for k in keys)
    assert isinstance(heads, int) and isinstance(head_dim, int) and isinstance(groups, int)
    assert isinstance(state, int) and isinstance(kernel, int)
    inner = heads * head_dim
    return MambaSpec(
        num_heads=heads, head_dim=head_dim, state_size=state, n_groups=groups, conv_kernel=kernel,
        conv_bias=bool(conv_bias), proj_bias=bool(proj_bias), norm_group_size=max(1, inner // groups),
        activation=act, time_step_limit=dt_limit,
    )


def _int(cfg: Config, key: str) -> int:
    value = cfg[key]
    assert isinstance(value, int)
    return value


def _float(cfg: Config, key: str) -> float:
    value = cfg[key]
    assert isinstance(value, int | float)
    return float(value)


def _str(cfg: Config, key: str) -> str:
    return str(cfg[key])


def _limit(cfg: Config) -> tuple[float, float]:
    value = cfg.get("time_step_limit", (0.0, float("inf")))
    assert isinstance(value, tuple)
    return (float(value[0]), float(value[1]))


def _ffn_act(spec: ModelSpec) -> str:
    if spec.mlp is not None and "-" in spec.pattern.flat:
        return spec.mlp.activation
    if spec.moe is not None:
        return spec.moe.expert_activation
    return "silu"


def _shared_act(spec: ModelSpec) -> str:
    """One ``hidden_act`` drives the Mamba conv and the FFNs in Bamba and Granite: take the mixer's."""
    if spec.mamba is not None and "M" in spec.pattern.flat:
        return spec.mamba.activation
    return _ffn_act(spec)


def _attention_fields(spec: ModelSpec) -> Config:
    a = spec.attention
    if a is None:
        return {}
    return {"num_attention_heads": a.num_heads, "num_key_value_heads": a.num_kv_heads, "head_dim": a.head_dim,
            "attention_bias": a.qkv_bias}


def _model_blocks(
    spec: ModelSpec, cfg: Config, frame: Frame, *, multiplier: float = 1.0, tied: bool, logits: float = 1.0
) -> tuple[tuple[int, BlockGraph], tuple[int, BlockGraph]]:
    n = spec.pattern.num_layers
    embed = (0, lower_embedding(_int(cfg, "vocab_size"), _int(cfg, "hidden_size"), multiplier))
    head = (n + 1, lower_head(frame, _int(cfg, "vocab_size"), tied, logits))
    return embed, head


def _common(spec: ModelSpec, eps_key: str) -> Config:
    return {"hidden_size": spec.hidden_size, "vocab_size": spec.vocab_size,
            "tie_word_embeddings": spec.tie_embeddings, eps_key: spec.norm.eps}


def _paired_blocks(
    pairs: list[tuple[int, int | None]],
    mixer: Callable[[int], BlockGraph],
    ffn: Callable[[int], BlockGraph],
    flat: str,
    allowed: str,
) -> list[tuple[int | None, BlockGraph]]:
    """Decoder layer j = (its mixer block, its FFN block), aligned to spec layers (+1 for the embedding).

    A block whose spec layer is of a kind the architecture lacks (already a structural finding)
    is aligned to nothing rather than compared with a stand-in.
    """
    out: list[tuple[int | None, BlockGraph]] = []
    for j, (m, f) in enumerate(pairs):
        out.append((m + 1 if flat[m] in allowed else None, mixer(j)))
        out.append((f + 1 if f is not None and flat[f] in allowed else None, ffn(j)))
    return out


# -- mamba2 --------------------------------------------------------------------------------------------


def express_mamba2(spec: ModelSpec) -> Expression:
    """Mamba2ForCausalLM: every layer is norm -> Mamba2 mixer -> residual; nothing else."""
    arch = "mamba2"
    expand, expand_findings = _expand(spec, arch, "expand")
    structural = _kinds(spec, "M", arch) + expand_findings + _mtp(spec, arch)
    act = spec.mamba.activation if spec.mamba else "silu"
    cfg: Config = _common(spec, "layer_norm_epsilon") | {"num_hidden_layers": spec.pattern.num_layers,
                                                         "hidden_act": act} | _mamba_fields(spec, "", expand)
    frame = Frame(spec.hidden_size, NormSpec(eps=_float(cfg, "layer_norm_epsilon")))
    blocks: list[tuple[int | None, BlockGraph]] = []
    embed, head = _model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    blocks.append(embed)
    if spec.mamba is not None:
        mamba = _mamba_from(cfg, "", _str(cfg, "hidden_act"), _limit(cfg))
        for layer in spec.pattern.layers:
            if layer.symbol == "M":
                blocks.append((layer.index + 1, lower_mamba(frame, mamba, layer_label(layer.index, "M"))))
    blocks.append(head)
    return Expression(arch, cfg, structural, blocks)


# -- bamba ---------------------------------------------------------------------------------------------


def express_bamba(spec: ModelSpec) -> Expression:
    """BambaForCausalLM: every layer is (Mamba2 or attention) + a SwiGLU MLP; attention always has RoPE."""
    arch = "bamba"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = _kinds(spec, "M*-", arch) + structural
    expand, expand_findings = _expand(spec, arch, "mamba_expand")
    structural += expand_findings + _mtp(spec, arch)
    a = spec.attention
    rope = a.rope if a is not None and a.rope is not None else RopeSpec(theta=10000.0, partial_factor=0.5)
    cfg: Config = _common(spec, "rms_norm_eps") | {
        "num_hidden_layers": len(pairs),
        "attn_layer_indices": [j for j, (m, _) in enumerate(pairs) if flat[m] == "*"],
        "hidden_act": _shared_act(spec),
        "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 14336,
        "mlp_bias": spec.mlp.bias if spec.mlp else False,
        "rope_parameters": {"rope_type": "default", "rope_theta": rope.theta,
                            "partial_rotary_factor": rope.partial_factor},
    } | _attention_fields(spec) | _mamba_fields(spec, "mamba_", expand)
    frame = Frame(spec.hidden_size, NormSpec(eps=_float(cfg, "rms_norm_eps")))
    act = _str(cfg, "hidden_act")
    rope_cfg = cfg["rope_parameters"]
    assert isinstance(rope_cfg, dict)
    mlp = MlpSpec(intermediate_size=_int(cfg, "intermediate_size"), activation=act, gated=True,
                  bias=bool(cfg["mlp_bias"]))
    mamba = _mamba_from(cfg, "mamba_", act, _limit(cfg)) if spec.mamba is not None else None
    attention = None
    if a is not None:
        bias = bool(cfg["attention_bias"])
        attention = AttentionSpec(
            num_heads=_int(cfg, "num_attention_heads"), num_kv_heads=_int(cfg, "num_key_value_heads"),
            head_dim=_int(cfg, "head_dim"), qkv_bias=bias, out_bias=bias,
            rope=RopeSpec(theta=rope_cfg["rope_theta"], partial_factor=rope_cfg["partial_rotary_factor"]),
        )
    attn_layers = set(cfg["attn_layer_indices"])  # type: ignore[call-overload]

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if j in attn_layers and attention is not None:
            return lower_attention(frame, attention, layer_label(m, "*"))
        if mamba is not None:
            return lower_mamba(frame, mamba, layer_label(m, "M"))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # unreachable for valid specs

    def ffn(j: int) -> BlockGraph:
        f = pairs[j][1]
        return lower_mlp(frame, mlp, layer_label(f if f is not None else pairs[j][0], "-"))

    embed, head = _model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    blocks = [embed, *_paired_blocks(pairs, mixer, ffn, flat, "M*-"), head]
    return Expression(arch, cfg, structural, blocks)


# -- granitemoehybrid ----------------------------------------------------------------------------------


def express_granitemoehybrid(spec: ModelSpec) -> Expression:
    """GraniteMoeHybridForCausalLM: every layer is a mixer + (softmax-routed gated MoE +) a gated shared MLP."""
    arch = "granitemoehybrid"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = _kinds(spec, "M*-E", arch) + structural
    if "-" in flat and "E" in flat:
        structural.append(Finding("pattern", None, "has both `-` and `E` layers: granitemoehybrid's FFN is the same "
                                                   "in every layer (num_local_experts > 0 or not)"))
    expand, expand_findings = _expand(spec, arch, "mamba_expand")
    structural += expand_findings + _mtp(spec, arch)
    a = spec.attention
    moe = spec.moe if "E" in flat else None
    cfg: Config = _common(spec, "rms_norm_eps") | {
        "num_hidden_layers": len(pairs),
        "layer_types": ["full_attention" if flat[m] == "*" else "linear_attention" for m, _ in pairs],
        "hidden_act": _shared_act(spec),
        "embedding_multiplier": spec.embedding_multiplier,
        "residual_multiplier": spec.residual_multiplier,
        "logits_scaling": spec.logits_scaling,
        "position_embedding_type": "rope" if a is not None and a.rope is not None else None,
    } | _attention_fields(spec) | _mamba_fields(spec, "mamba_", expand)
    if a is not None:
        cfg["attention_multiplier"] = a.scale if a.scale is not None else a.head_dim**-0.5
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": a.rope.theta if a.rope else 10000.0}
    if moe is not None:
        cfg |= {"num_local_experts": moe.num_experts, "num_experts_per_tok": moe.top_k,
                "intermediate_size": moe.intermediate_size, "shared_intermediate_size": moe.shared_intermediate_size}
    else:
        cfg |= {"num_local_experts": 0,
                "shared_intermediate_size": spec.mlp.intermediate_size if spec.mlp else 1024}
    frame = Frame(spec.hidden_size, NormSpec(eps=_float(cfg, "rms_norm_eps")), _float(cfg, "residual_multiplier"))
    act = _str(cfg, "hidden_act")
    mamba = _mamba_from(cfg, "mamba_", act, _limit(cfg)) if spec.mamba is not None else None
    attention = None
    if a is not None:
        bias = bool(cfg["attention_bias"])
        rope_cfg = cfg["rope_parameters"]
        assert isinstance(rope_cfg, dict)
        attention = AttentionSpec(
            num_heads=_int(cfg, "num_attention_heads"), num_kv_heads=_int(cfg, "num_key_value_heads"),
            head_dim=_int(cfg, "head_dim"), qkv_bias=bias, out_bias=bias, scale=_float(cfg, "attention_multiplier"),
            # the default RoPE of GraniteMoeHybrid rotates the whole head (no partial_rotary_factor)
            rope=RopeSpec(theta=rope_cfg["rope_theta"]) if cfg["position_embedding_type"] == "rope" else None,
        )
    shared = _int(cfg, "shared_intermediate_size")
    if _int(cfg, "num_local_experts") > 0:
        ffn_spec: MlpSpec | MoeSpec = MoeSpec(
            num_experts=_int(cfg, "num_local_experts"), top_k=_int(cfg, "num_experts_per_tok"),
            intermediate_size=_int(cfg, "intermediate_size"), router="softmax", norm_topk_prob=True,
            expert_gated=True, expert_activation=act, shared_experts=1, shared_intermediate_size=shared,
            shared_gated=True,
        )
    else:
        ffn_spec = MlpSpec(intermediate_size=shared, activation=act, gated=True, bias=False)

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == "*" and attention is not None:
            return lower_attention(frame, attention, layer_label(m, "*"))
        assert mamba is not None or flat[m] != "M"
        if mamba is not None:
            return lower_mamba(frame, mamba, layer_label(m, "M"))
        return lower_mlp(frame, MlpSpec(intermediate_size=1, activation=act, gated=True), layer_label(m, flat[m]))

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], "E" if isinstance(ffn_spec, MoeSpec) else "-")
        if isinstance(ffn_spec, MoeSpec):
            return lower_moe(frame, ffn_spec, label)
        return lower_mlp(frame, ffn_spec, label)

    embed, head = _model_blocks(spec, cfg, frame, multiplier=_float(cfg, "embedding_multiplier"),
                                tied=bool(cfg["tie_word_embeddings"]), logits=_float(cfg, "logits_scaling"))
    return Expression(arch, cfg, structural, [embed, *_paired_blocks(pairs, mixer, ffn, flat, "M*-E"), head])


# -- jamba ---------------------------------------------------------------------------------------------


def _period(positions: list[bool]) -> tuple[int, int] | None:
    """(period, offset) with positions[i] == (i % period == offset) for every i, if any."""
    n = len(positions)
    for period in range(1, n + 1):
        for offset in range(period):
            if all(positions[i] == (i % period == offset) for i in range(n)):
                return period, offset
    return None


def express_jamba(spec: ModelSpec) -> Expression:
    """JambaForCausalLM: Mamba-1 or attention (no RoPE) + gated MLP or softmax MoE (unnormalized, no shared)."""
    arch = "jamba"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    why = {"M": "Jamba's Mamba layers are Mamba-1 (x_proj/dt_proj selective scan), not Mamba2"}
    structural = _kinds(spec, "*-E", arch, why) + structural
    structural += _mtp(spec, arch)
    experts = [f is not None and flat[f] == "E" for _, f in pairs]
    period = _period(experts) if any(experts) else (1, 0)
    if period is None:
        structural.append(Finding("pattern", None, "the `E` layers are not periodic: jamba places experts by "
                                                   "expert_layer_period/expert_layer_offset"))
        period = (1, 0)
    cfg: Config = _common(spec, "rms_norm_eps") | {
        "num_hidden_layers": len(pairs), "attn_layer_period": 1, "attn_layer_offset": 0,
        "expert_layer_period": period[0], "expert_layer_offset": period[1],
        "num_experts": spec.moe.num_experts if spec.moe and any(experts) else 1,
        "num_experts_per_tok": spec.moe.top_k if spec.moe else 2,
        "hidden_act": _ffn_act(spec),
        "intermediate_size": (spec.mlp.intermediate_size if spec.mlp and "-" in flat
                              else spec.moe.intermediate_size if spec.moe else 14336),
    } | _attention_fields(spec)
    frame = Frame(spec.hidden_size, NormSpec(eps=_float(cfg, "rms_norm_eps")))
    act = _str(cfg, "hidden_act")
    a = spec.attention
    attention = None
    if a is not None:
        attention = AttentionSpec(num_heads=_int(cfg, "num_attention_heads"),
                                  num_kv_heads=_int(cfg, "num_key_value_heads"), head_dim=_int(cfg, "head_dim"))
    mlp = MlpSpec(intermediate_size=_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = MoeSpec(num_experts=max(1, _int(cfg, "num_experts")), top_k=_int(cfg, "num_experts_per_tok"),
                  intermediate_size=_int(cfg, "intermediate_size"), router="softmax", norm_topk_prob=False,
                  expert_gated=True, expert_activation=act)
    p, o = _int(cfg, "expert_layer_period"), _int(cfg, "expert_layer_offset")

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if attention is not None:
            return lower_attention(frame, attention, layer_label(m, "*"))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # no Jamba-expressible mixer: opaque stand-in

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], "E")
        if _int(cfg, "num_experts") > 1 and j % p == o:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = _model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *_paired_blocks(pairs, mixer, ffn, flat, "*-E"), head])


# -- qwen3_next ----------------------------------------------------------------------------------------


def express_qwen3_next(spec: ModelSpec) -> Expression:
    """Qwen3NextForCausalLM: gated DeltaNet or gated attention (qk-norm, partial RoPE) + MoE/MLP, (1+w) norms."""
    arch = "qwen3_next"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = _kinds(spec, "G*-E", arch) + structural + _mtp(spec, arch)
    a = spec.attention
    rope = a.rope if a is not None and a.rope is not None else RopeSpec(theta=10000.0, partial_factor=0.25)
    moe_spec = spec.moe
    cfg: Config = _common(spec, "rms_norm_eps") | {
        "num_hidden_layers": len(pairs),
        "layer_types": ["full_attention" if flat[m] == "*" else "linear_attention" for m, _ in pairs],
        "mlp_only_layers": [j for j, (_, f) in enumerate(pairs) if f is None or flat[f] != "E"],
        "hidden_act": _ffn_act(spec),
        "intermediate_size": spec.mlp.intermediate_size if spec.mlp else 5632,
        "rope_parameters": {"rope_type": "default", "rope_theta": rope.theta,
                            "partial_rotary_factor": rope.partial_factor},
    } | _attention_fields(spec)
    if moe_spec is not None:
        cfg |= {"num_experts": moe_spec.num_experts, "num_experts_per_tok": moe_spec.top_k,
                "moe_intermediate_size": moe_spec.intermediate_size, "norm_topk_prob": moe_spec.norm_topk_prob,
                "shared_expert_intermediate_size": moe_spec.shared_intermediate_size or 512}
    if spec.gated_deltanet is not None:
        g = spec.gated_deltanet
        cfg |= {"linear_num_key_heads": g.num_k_heads, "linear_num_value_heads": g.num_v_heads,
                "linear_key_head_dim": g.head_k_dim, "linear_value_head_dim": g.head_v_dim,
                "linear_conv_kernel_dim": g.conv_kernel}
    frame = Frame(spec.hidden_size, NormSpec(eps=_float(cfg, "rms_norm_eps"), unit_offset=True))
    act = _str(cfg, "hidden_act")
    attention = None
    if a is not None:
        bias = bool(cfg["attention_bias"])
        rope_cfg = cfg["rope_parameters"]
        assert isinstance(rope_cfg, dict)
        attention = AttentionSpec(
            num_heads=_int(cfg, "num_attention_heads"), num_kv_heads=_int(cfg, "num_key_value_heads"),
            head_dim=_int(cfg, "head_dim"), qkv_bias=bias, out_bias=bias, qk_norm=True, output_gate=True,
            rope=RopeSpec(theta=rope_cfg["rope_theta"], partial_factor=rope_cfg["partial_rotary_factor"]),
        )
    gdn = None
    if spec.gated_deltanet is not None:
        gdn = GatedDeltaNetSpec(
            num_k_heads=_int(cfg, "linear_num_key_heads"), num_v_heads=_int(cfg, "linear_num_value_heads"),
            head_k_dim=_int(cfg, "linear_key_head_dim"), head_v_dim=_int(cfg, "linear_value_head_dim"),
            conv_kernel=_int(cfg, "linear_conv_kernel_dim"),
        )
    mlp = MlpSpec(intermediate_size=_int(cfg, "intermediate_size"), activation=act, gated=True)
    moe = None
    if moe_spec is not None:
        moe = MoeSpec(num_experts=_int(cfg, "num_experts"), top_k=_int(cfg, "num_experts_per_tok"),
                      intermediate_size=_int(cfg, "moe_intermediate_size"), router="softmax",
                      norm_topk_prob=bool(cfg["norm_topk_prob"]), expert_gated=True, expert_activation=act,
                      shared_experts=1, shared_intermediate_size=_int(cfg, "shared_expert_intermediate_size"),
                      shared_gated=True, shared_expert_gate=True)
    mlp_only = set(cfg["mlp_only_layers"])  # type: ignore[call-overload]

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == "*" and attention is not None:
            return lower_attention(frame, attention, layer_label(m, "*"))
        if gdn is not None:
            return lower_gated_deltanet(frame, gdn, layer_label(m, "G"))
        return lower_mlp(frame, mlp, layer_label(m, flat[m]))  # no Qwen3-Next-expressible mixer: stand-in

    def ffn(j: int) -> BlockGraph:
        label = layer_label(pairs[j][1] or pairs[j][0], "-")
        if j not in mlp_only and moe is not None:
            return lower_moe(frame, moe, label)
        return lower_mlp(frame, mlp, label)

    embed, head = _model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *_paired_blocks(pairs, mixer, ffn, flat, "G*-E"), head])


# -- zamba2 --------------------------------------------------------------------------------------------


def express_zamba2(spec: ModelSpec) -> Expression:
    """Zamba2 shares one set of transformer-block weights across its "hybrid" layers: never exact."""
    message = (
        "zamba2 reuses shared transformer blocks (attention + MLP weights shared across its \"hybrid\" layers, "
        "fed the concatenation of the hidden state and the original embeddings, plus a per-layer linear and "
        "LoRA adapters): a pattern of independent layers has no such weight sharing"
    )
    return Expression("zamba2", {}, [Finding("pattern", None, message)], [])


# -- nemotron_h ----------------------------------------------------------------------------------------


def express_nemotron_h(spec: ModelSpec) -> Expression:
    """NemotronHForCausalLM: one mixer per block (M, *, -, E), no RoPE, relu2 MLPs, untied head."""
    arch = "nemotron_h"
    structural = _kinds(spec, "M*-E", arch)
    m, a, mlp_spec, moe_spec = spec.mamba, spec.attention, spec.mlp, spec.moe
    cfg: Config = _common(spec, "layer_norm_epsilon") | {
        "layers_block_type": [BY_SYMBOL[s].hf_name for s in spec.pattern.flat],
        "mlp_hidden_act": _ffn_act(spec),
    }
    cfg.pop("tie_word_embeddings")  # _tied_weights_keys = {}: a nemotron_h lm_head is never tied
    if spec.pattern.mtp is not None:
        cfg["mtp_layers_block_type"] = [BY_SYMBOL[s].hf_name for s in spec.pattern.mtp.flat]
        cfg["num_nextn_predict_layers"] = spec.pattern.mtp.depths
    if m is not None:
        cfg |= {"mamba_num_heads": m.num_heads, "mamba_head_dim": m.head_dim, "ssm_state_size": m.state_size,
                "n_groups": m.n_groups, "conv_kernel": m.conv_kernel, "use_conv_bias": m.conv_bias,
                "use_bias": m.proj_bias, "mamba_hidden_act": m.activation,
                # NemotronHMamba2Mixer clamps dt to (time_step_min, inf): only the lower bound is a field
                "time_step_min": m.time_step_limit[0]}
    if a is not None:
        cfg |= {"num_attention_heads": a.num_heads, "num_key_value_heads": a.num_kv_heads, "head_dim": a.head_dim}
    if mlp_spec is not None:
        cfg |= {"intermediate_size": mlp_spec.intermediate_size, "mlp_bias": mlp_spec.bias}
    if moe_spec is not None:
        cfg |= {"n_routed_experts": moe_spec.num_experts, "num_experts_per_tok": moe_spec.top_k,
                "moe_intermediate_size": moe_spec.intermediate_size, "n_group": moe_spec.n_group,
                "topk_group": moe_spec.topk_group, "norm_topk_prob": moe_spec.norm_topk_prob,
                "routed_scaling_factor": moe_spec.routed_scaling_factor,
                "moe_shared_expert_intermediate_size": moe_spec.shared_intermediate_size,
                "moe_latent_size": moe_spec.latent_size}
        cfg.setdefault("mlp_bias", moe_spec.bias)
    frame = Frame(spec.hidden_size, NormSpec(eps=_float(cfg, "layer_norm_epsilon")))
    act = _str(cfg, "mlp_hidden_act")
    bias = bool(cfg.get("mlp_bias", False))
    blocks: list[tuple[int | None, BlockGraph]] = []
    embed, head = _model_blocks(spec, cfg, frame, tied=False)
    blocks.append(embed)
    mamba = attention = mlp = moe = None
    if m is not None:
        mamba = _mamba_from(cfg, "nemotron", _str(cfg, "mamba_hidden_act"), (_float(cfg, "time_step_min"),
                                                                            float("inf")))
    if a is not None:  # q/k/v/o bias=False whatever attention_bias says; no rotary embedding at all
        attention = AttentionSpec(num_heads=_int(cfg, "num_attention_heads"),
                                  num_kv_heads=_int(cfg, "num_key_value_heads"), head_dim=_int(cfg, "head_dim"))
    if mlp_spec is not None:
        mlp = MlpSpec(intermediate_size=_int(cfg, "intermediate_size"), activation=act, gated=False, bias=bias)
    if moe_spec is not None:  # always exactly one non-gated shared expert
        moe = MoeSpec(
            num_experts=_int(cfg, "n_routed_experts"), top_k=_int(cfg, "num_experts_per_tok"),
            intermediate_size=_int(cfg, "moe_intermediate_size"), router="sigmoid", score_correction_bias=True,
            n_group=_int(cfg, "n_group"), topk_group=_int(cfg, "topk_group"),
            norm_topk_prob=bool(cfg["norm_topk_prob"]),
            routed_scaling_factor=_float(cfg, "routed_scaling_factor"), expert_gated=False, expert_activation=act,
            shared_experts=1, shared_intermediate_size=_int(cfg, "moe_shared_expert_intermediate_size"),
            shared_gated=False, latent_size=cfg["moe_latent_size"], bias=bias,
        )
    for layer in spec.pattern.layers:
        label = layer_label(layer.index, layer.symbol)
        built: BlockGraph | None = None
        if layer.symbol == "M" and mamba is not None:
            built = lower_mamba(frame, mamba, label)
        elif layer.symbol == "*" and attention is not None:
            built = lower_attention(frame, attention, label)
        elif layer.symbol == "-" and mlp is not None:
            built = lower_mlp(frame, mlp, label)
        elif layer.symbol == "E" and moe is not None:
            built = lower_moe(frame, moe, label)
        if built is not None:
            blocks.append((layer.index + 1, built))
    blocks.append(head)
    return Expression(arch, cfg, structural, blocks)


EXPRESSERS: dict[str, Callable[[ModelSpec], Expression]] = {
    "mamba2": express_mamba2,
    "bamba": express_bamba,
    "granitemoehybrid": express_granitemoehybrid,
    "jamba": express_jamba,
    "qwen3_next": express_qwen3_next,
    "zamba2": express_zamba2,
    "nemotron_h": express_nemotron_h,
}
"""Every candidate, in the deterministic order reasons are reported."""
