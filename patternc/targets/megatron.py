"""What Megatron-Core's HybridModel can express of a ModelSpec, and the arguments that express it.

Megatron-Core (read from megatron-core 0.19.2: ``megatron/training/arguments.py``,
``argument_utils.core_transformer_config_from_args``, ``core/ssm/mamba_mixer.py``,
``core/transformer/moe/moe_utils.py``) configures every layer of a kind from one
``TransformerConfig``, so some models that transformers builds have no Megatron spelling:

- one activation for every MLP and expert: ``--squared-relu`` (plain ``relu(x)**2``),
  ``--swiglu`` (gated SiLU) or the default (plain exact GELU);
- one ``add_bias_linear`` for the attention output, MLP, experts *and the router*; only the
  QKV bias is separate (``--add-qkv-bias``), and ``add_bias_linear`` forces it on;
- ``MambaMixer`` asserts ``bias=False`` and ``conv_bias=True``, builds ``d_conv=4`` (the
  HybridStack passes no other), SiLU, and a gated RMSNorm with ``eps=1e-5`` over
  ``d_inner / ngroups`` channels;
- a sigmoid router always renormalises its top-k scores when ``topk > 1``; a softmax router
  renormalises unless ``--moe-router-pre-softmax``, and never adds the expert bias.

Each function returns the arguments or the reasons, never raises; ``patternc.targets.rules``
turns the reasons into diagnostics (P314 activation, P315 Mamba mixer, P316 anything else) and
``patternc.engines.megatron_arguments`` uses the arguments.  Nothing here imports torch.
"""

from __future__ import annotations

from patternc.kinds import LayerKind, kinds
from patternc.model import ModelSpec

MEGATRON_CORE_VERSION = "0.19.2"
"""The release whose argument validation ``tests/core/test_megatron_validation.py`` runs."""

MAMBA_CONV_KERNEL = 4
"""``MambaMixer(d_conv=4)``: HybridStack's Mamba layer passes no other width."""
MAMBA_NORM_EPS = 1e-5
"""``ExtendedRMSNorm(..., eps=1e-5)`` inside ``MambaMixer``: not configurable."""

_ACTIVATIONS: dict[tuple[str, bool], dict[str, bool]] = {
    ("relu2", False): {"squared-relu": True},
    ("silu", True): {"swiglu": True},
    ("gelu", False): {},
}
"""(activation, gated) -> the flags that make Megatron's one FFN activation that function."""


def used_kinds(spec: ModelSpec) -> frozenset[str]:
    """The layer kinds of the main stack and the MTP block."""
    return spec.pattern.kinds()


def _spell(activation: str, gated: bool) -> str:
    return f"{'gated ' if gated else ''}{activation}"


def _ffns(spec: ModelSpec, used: frozenset[str]) -> list[tuple[str, str, bool]]:
    """(which FFN, activation, gated) for every FFN the model builds."""
    out: list[tuple[str, str, bool]] = []
    if LayerKind.MLP in used and spec.mlp is not None:
        out.append(("the dense MLP", spec.mlp.activation, spec.mlp.gated))
    if LayerKind.MOE in used and spec.moe is not None:
        moe = spec.moe
        out.append(("the routed experts", moe.expert_activation, moe.expert_gated))
        if moe.shared_experts and moe.shared_intermediate_size:
            out.append(("the shared expert", moe.expert_activation, moe.shared_gated))
    return out


def activation_arguments(spec: ModelSpec) -> tuple[dict[str, bool] | None, str | None]:
    """The activation flags, or (None, why) when no Megatron activation is every FFN's."""
    ffns = _ffns(spec, used_kinds(spec))
    kinds = {(activation, gated) for _, activation, gated in ffns}
    if not kinds:
        return {}, None  # no FFN layer: the default activation is never used
    if len(kinds) > 1:
        spelled = "; ".join(f"{which}: {_spell(a, g)}" for which, a, g in ffns)
        return None, f"its FFNs use different activations ({spelled}), and Megatron-Core sets one for all"
    ((activation, gated),) = kinds
    flags = _ACTIVATIONS.get((activation, gated))
    if flags is None:
        return None, (
            f"its FFN activation is {_spell(activation, gated)}, and Megatron-Core's are plain relu² "
            "(--squared-relu), gated SiLU (--swiglu) and plain GELU (the default)"
        )
    return flags, None


def bias_arguments(spec: ModelSpec) -> tuple[dict[str, bool] | None, str | None]:
    """``disable-bias-linear`` / ``add-qkv-bias``, or (None, why) when no setting gives these biases."""
    used = used_kinds(spec)
    attention = spec.attention if LayerKind.ATTENTION in used else None
    linear: list[tuple[str, bool]] = []
    if attention is not None:
        linear.append(("the attention output projection", attention.out_bias))
    if LayerKind.MLP in used and spec.mlp is not None:
        linear.append(("the MLP", spec.mlp.bias))
    if LayerKind.MOE in used and spec.moe is not None:
        linear.append(("the experts", spec.moe.bias))
    qkv = attention is not None and attention.qkv_bias
    if not any(biased for _, biased in linear):
        return {"disable-bias-linear": True, "add-qkv-bias": qkv}, None
    if all(biased for _, biased in linear) and (attention is None or qkv) and LayerKind.MOE not in used:
        return {"disable-bias-linear": False, "add-qkv-bias": qkv}, None
    biased = ", ".join(which for which, b in linear if b) or "none"
    plain = ", ".join(which for which, b in linear if not b)
    reason = f"its linear biases (biased: {biased}" + (f"; unbiased: {plain}" if plain else "") + ")"
    if plain:
        reason += " differ, and Megatron-Core's one add_bias_linear covers them all"
    elif LayerKind.MOE in used:
        reason += " need add_bias_linear, which also gives the MoE router a bias that this model lacks"
    else:
        reason += " need add_bias_linear, which forces a QKV bias this model lacks"
    return None, reason


def mamba_differences(spec: ModelSpec) -> list[str]:
    """How this model's Mamba2 mixer differs from the one Megatron-Core's ``MambaMixer`` builds."""
    m = spec.mamba
    if m is None or LayerKind.MAMBA2 not in used_kinds(spec):
        return []
    out = []
    if m.conv_kernel != MAMBA_CONV_KERNEL:
        out.append(f"a {m.conv_kernel}-wide convolution (MambaMixer builds d_conv={MAMBA_CONV_KERNEL})")
    if not m.conv_bias:
        out.append("a convolution without bias (MambaMixer asserts conv_bias)")
    if m.proj_bias:
        out.append("biased input and output projections (MambaMixer asserts bias=False)")
    if m.activation != "silu":
        out.append(f"activation {m.activation} (MambaMixer's kernels apply SiLU)")
    if m.norm_group_size != m.inner_size // m.n_groups:
        out.append(
            f"gated RMSNorm groups of {m.norm_group_size} channels (MambaMixer: heads x head_dim / n_groups = "
            f"{m.inner_size // m.n_groups})"
        )
    if spec.norm.eps != MAMBA_NORM_EPS:
        out.append(f"gated RMSNorm epsilon {spec.norm.eps:g} (MambaMixer fixes {MAMBA_NORM_EPS:g})")
    return out


def other_differences(spec: ModelSpec) -> list[str]:
    """Everything else no argument of patternc's Megatron recipe reproduces (biases included)."""
    used = used_kinds(spec)
    out: list[str] = []
    _, biases = bias_arguments(spec)
    if biases is not None:
        out.append(biases)
    unsupported = sorted(defn.symbol for defn in kinds() if defn.kind in used and not defn.megatron_arguments)
    if unsupported:
        symbols = ", ".join(f"`{s}`" for s in unsupported)
        out.append(f"{symbols} layers, for which patternc writes no Megatron arguments")
    attention = spec.attention if LayerKind.ATTENTION in used else None
    if attention is not None:
        extras = [
            ("RoPE", attention.rope is not None),
            ("a query/key norm", attention.qk_norm),
            ("a gated attention output", attention.output_gate),
            ("a sliding window", attention.sliding_window is not None),
            ("a softmax scale other than 1/sqrt(head_dim)", attention.scale is not None),
        ]
        named = [what for what, present in extras if present]
        if named:
            out.append(f"attention with {', '.join(named)} (Nemotron-H attention has none)")
    moe = spec.moe if LayerKind.MOE in used else None
    if moe is not None:
        if moe.router == "sigmoid" and moe.top_k > 1 and not moe.norm_topk_prob:
            out.append("unnormalised top-k sigmoid scores (Megatron-Core's sigmoid router always renormalises them)")
        if moe.router == "softmax" and moe.score_correction_bias:
            out.append("an expert score bias with softmax scores (Megatron-Core adds it only to sigmoid scores)")
    if spec.norm.unit_offset:
        out.append("zero-centred RMSNorm weights (1 + w)")
    scales = [
        (name, value)
        for name, value in (
            ("embedding_multiplier", spec.embedding_multiplier),
            ("residual_multiplier", spec.residual_multiplier),
            ("logits_scaling", spec.logits_scaling),
        )
        if value != 1.0
    ]
    if scales:
        out.append(", ".join(f"{name} {value:g}" for name, value in scales) + " (Megatron-Core's HybridModel has none)")
    return out
