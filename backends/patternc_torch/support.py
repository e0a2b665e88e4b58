"""What the torch backend can build: every refusal is a P401 diagnostic, all reported at once."""

from __future__ import annotations

from patternc.diagnostics import Diagnostic, diag
from patternc.model import ModelSpec
from patternc.symbols import BY_SYMBOL

BUILDABLE = "M*-E"

_ACTIVATIONS = frozenset(
    {"silu", "swish", "relu", "relu2", "relu6", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "tanh",
     "sigmoid", "linear"}
)
"""Mirrors ``patternc_torch.layers.ACTIVATIONS`` (kept here so that checking never imports torch)."""


def _refuse(what: str, why: str, help: str | None = None) -> Diagnostic:
    return diag("P401", f"the torch backend cannot build {what}: {why}", None, help=help)


def unsupported(spec: ModelSpec) -> list[Diagnostic]:
    """Why ``spec`` cannot be built (empty when it can)."""
    out: list[Diagnostic] = []
    symbols = set(spec.pattern.flat) | set(spec.pattern.mtp.flat if spec.pattern.mtp else "")
    for symbol in sorted(symbols - set(BUILDABLE)):
        out.append(_refuse(f"`{symbol}` ({BY_SYMBOL[symbol].description}) layers", "no module for this kind",
                           help=f"the torch backend builds `{'`, `'.join(BUILDABLE)}`"))
    flavours = {"M": spec.mamba, "*": spec.attention, "-": spec.mlp, "E": spec.moe}
    for symbol in sorted(symbols & set(BUILDABLE)):
        if flavours[symbol] is None:
            out.append(_refuse(f"`{symbol}` layers", "the model has no hyper-parameters for this kind"))
    if spec.norm.unit_offset:
        out.append(_refuse("zero-centred RMSNorm (unit_offset)", "only `w * x / rms(x)` norms are implemented"))
    a = spec.attention
    if a is not None and "*" in symbols:
        for flag, name in ((a.qk_norm, "q/k norm"), (a.output_gate, "a gated attention output"),
                           (a.sliding_window is not None, "sliding-window attention")):
            if flag:
                out.append(_refuse(f"attention with {name}", "not implemented"))
        if a.num_heads % a.num_kv_heads:
            out.append(_refuse("attention", f"{a.num_heads} heads are not a multiple of {a.num_kv_heads} KV heads"))
        if a.rope is not None and int(a.head_dim * a.rope.partial_factor) % 2:
            out.append(_refuse("RoPE", "the rotary dimension is odd"))
    m = spec.mamba
    if m is not None and "M" in symbols:
        if m.activation not in _ACTIVATIONS:
            out.append(_refuse("the Mamba2 mixer", f"unknown activation {m.activation!r}"))
        if m.num_heads % m.n_groups:
            out.append(_refuse("the Mamba2 mixer", f"{m.num_heads} heads are not a multiple of {m.n_groups} groups"))
        if m.inner_size % m.norm_group_size:
            out.append(_refuse("the Mamba2 mixer", f"inner size {m.inner_size} is not a multiple of the norm group "
                                                   f"size {m.norm_group_size}"))
    if spec.mlp is not None and "-" in symbols and spec.mlp.activation not in _ACTIVATIONS:
        out.append(_refuse("the MLP", f"unknown activation {spec.mlp.activation!r}"))
    e = spec.moe
    if e is not None and "E" in symbols:
        if e.expert_activation not in _ACTIVATIONS:
            out.append(_refuse("the experts", f"unknown activation {e.expert_activation!r}"))
        if e.top_k > e.num_experts:
            out.append(_refuse("the router", f"top_k {e.top_k} is more than the {e.num_experts} experts"))
        if e.num_experts % e.n_group or e.topk_group > e.n_group:
            out.append(_refuse("the router", f"{e.num_experts} experts in {e.n_group} groups, top {e.topk_group}"))
    return out
