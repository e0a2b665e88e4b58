"""What the torch backend can build: every refusal is a P401 diagnostic, all reported at once.

``SUPPORT`` is the backend's kind table, keyed by layer kind: a kind either names its
``TorchKind`` (module builder, decode step, state readiness; ``patternc_torch.kinds``) and a check
of the hyper-parameters that module cannot take, or has a refusal saying why the backend has no
module for it.  A kind missing from the table (one registered after this backend was written) is
refused too, with a reason: nothing is built as something it is not.  The ``TorchKind`` is named
as ``"module:attribute"`` and imported only when a model is built, so this module never imports
torch and checking stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from patternc.diagnostics import Diagnostic, diag
from patternc.kinds import LayerKind, alphabet_of, kind_def
from patternc.model import ModelSpec

_ACTIVATIONS = frozenset(
    {
        "silu",
        "swish",
        "relu",
        "relu2",
        "relu6",
        "gelu",
        "gelu_new",
        "gelu_pytorch_tanh",
        "gelu_fast",
        "tanh",
        "sigmoid",
        "linear",
    }
)
"""Mirrors ``patternc_torch.layers.ACTIVATIONS`` (kept here so that checking never imports torch)."""

_NOT_IN_TABLE = "no module for this kind (it is not in the torch backend's kind table)"


def _refuse(what: str, why: str, help: str | None = None) -> Diagnostic:
    return diag("P401", f"the torch backend cannot build {what}: {why}", None, help=help)


def _attention(spec: ModelSpec) -> Iterator[Diagnostic]:
    a = spec.attention
    if a is None:
        return
    # multimodal RoPE (Qwen3.5's mrope_section, interleaved or not) is built: this backend takes text
    # only, whose temporal, height and width positions are one and the same, and then every frequency
    # pair rotates by that one position, which is plain (partial) RoPE
    mtp = spec.pattern.mtp
    if a.post_norm and mtp is not None and any(layer.kind == LayerKind.ATTENTION for layer in mtp.layers):
        yield _refuse(
            "post-norm attention (OLMo's) in the MTP block",
            "the MTP block's layers are pre-norm (the main stack's post-norm layers are built)",
        )
    if a.num_heads % a.num_kv_heads:
        yield _refuse("attention", f"{a.num_heads} heads are not a multiple of {a.num_kv_heads} KV heads")
    if a.rope is not None and int(a.head_dim * a.rope.partial_factor) % 2:
        yield _refuse("RoPE", "the rotary dimension is odd")


def _mamba(spec: ModelSpec) -> Iterator[Diagnostic]:
    m = spec.mamba
    if m is None:
        return
    if m.activation not in _ACTIVATIONS:
        yield _refuse("the Mamba2 mixer", f"unknown activation {m.activation!r}")
    if m.num_heads % m.n_groups:
        yield _refuse("the Mamba2 mixer", f"{m.num_heads} heads are not a multiple of {m.n_groups} groups")
    if m.inner_size % m.norm_group_size:
        yield _refuse(
            "the Mamba2 mixer",
            f"inner size {m.inner_size} is not a multiple of the norm group size {m.norm_group_size}",
        )


def _gated_deltanet(spec: ModelSpec) -> Iterator[Diagnostic]:
    g = spec.gated_deltanet
    if g is None:
        return
    if g.num_v_heads % g.num_k_heads:
        yield _refuse("gated DeltaNet", f"{g.num_v_heads} value heads are not a multiple of {g.num_k_heads} key heads")


def _kda(spec: ModelSpec) -> Iterator[Diagnostic]:
    k = spec.kda
    if k is not None and k.activation not in _ACTIVATIONS:
        yield _refuse("Kimi delta attention", f"unknown convolution activation {k.activation!r}")


def _lightning(spec: ModelSpec) -> Iterator[Diagnostic]:
    lightning = spec.lightning
    if lightning is None:
        return
    if lightning.activation not in _ACTIVATIONS:
        yield _refuse("lightning attention", f"unknown activation {lightning.activation!r}")
    mtp = spec.pattern.mtp
    if mtp is not None and kind_def(LayerKind.LIGHTNING).symbol in mtp.flat:
        yield _refuse(
            "lightning attention in an MTP block",
            "its decay follows from the layer's place among the main stack's decoder layers; an MTP layer has none",
        )


def _scaled_residual(spec: ModelSpec) -> Iterator[Diagnostic]:
    """MiniMax's weighted residuals (``ScaledResidualSpec``) are built for the main stack's layers."""
    if spec.scaled_residual is None:
        return
    if spec.pattern.mtp is not None:
        yield _refuse("MTP blocks with weighted residuals (scaled_residual)", "not implemented")
    if spec.residual_multiplier != 1.0:
        yield _refuse(
            "weighted residuals (scaled_residual) with a residual_multiplier",
            "the two scale the same branch; no family has both",
        )
    if spec.pattern.has_parallel:
        yield _refuse("parallel layers with weighted residuals (scaled_residual)", "not implemented")


def _latent(spec: ModelSpec) -> Iterator[Diagnostic]:
    """Latent attention (``+`` and ``D``) shares one RoPE table with attention (``*``) in a model: they
    must rotate the same channels at the same frequencies (``patternc_torch.model`` builds one table)."""
    mla = spec.mla if spec.mla is not None else spec.dsa.mla if spec.dsa is not None else None
    if mla is None:
        return
    if spec.mla is not None and spec.dsa is not None and spec.mla != spec.dsa.mla:
        yield _refuse(
            "`+` and `D` layers in one model", "their latent attentions differ (one RoPE table and cache layout)"
        )
    if mla.qk_rope_head_dim % 2 and mla.rope is not None:
        yield _refuse("latent attention", f"the rotary dimension {mla.qk_rope_head_dim} is odd")
    a = spec.attention
    if a is None or a.rope is None or mla.rope is None or LayerKind.ATTENTION not in spec.pattern.kinds():
        return
    same = (
        int(a.head_dim * a.rope.partial_factor) == mla.qk_rope_head_dim
        and a.rope.theta == mla.rope.theta
        and mla.rope_scaling is None
    )
    if not same:
        yield _refuse(
            "attention and latent attention with different RoPE in one model",
            "the model builds one rotary table (same rotary dimension and base, no YaRN, for both)",
        )


def _sparse(spec: ModelSpec) -> Iterator[Diagnostic]:
    """``D``'s check: the latent attention's (once, when ``+`` layers run it too)."""
    if LayerKind.MLA not in spec.pattern.kinds():
        yield from _latent(spec)


def _mamba1(spec: ModelSpec) -> Iterator[Diagnostic]:
    m = spec.mamba1
    if m is not None and m.activation not in _ACTIVATIONS:
        yield _refuse("the Mamba-1 mixer", f"unknown activation {m.activation!r}")


def _mlp(spec: ModelSpec) -> Iterator[Diagnostic]:
    if spec.mlp is not None and spec.mlp.activation not in _ACTIVATIONS:
        yield _refuse("the MLP", f"unknown activation {spec.mlp.activation!r}")


def _moe(spec: ModelSpec) -> Iterator[Diagnostic]:
    e = spec.moe
    if e is None:
        return
    if e.expert_activation not in _ACTIVATIONS:
        yield _refuse("the experts", f"unknown activation {e.expert_activation!r}")
    if e.top_k > e.num_experts:
        yield _refuse("the router", f"top_k {e.top_k} is more than the {e.num_experts} experts")
    if e.num_experts % e.n_group or e.topk_group > e.n_group:
        yield _refuse("the router", f"{e.num_experts} experts in {e.n_group} groups, top {e.topk_group}")


@dataclass(frozen=True, slots=True)
class KindSupport:
    """How the torch backend treats one layer kind."""

    module: str | None = None
    """``"module:attribute"`` of the kind's ``patternc_torch.kinds.TorchKind``; None: no module for the kind."""
    check: Callable[[ModelSpec], Iterator[Diagnostic]] | None = None
    """What of ``spec``'s hyper-parameters for the kind the module cannot take (run when the kind is used)."""
    refusal: str = "no module for this kind"
    """Why the kind cannot be built, when it has no module."""
    state: tuple[str, ...] = ()
    """The ``InferenceState`` tables (``kv``, ``latent``, ``conv``, ``ssm``) in which the kind's
    layers keep their decode state, keyed by the layer's index: two mixers of one parallel layer
    may not share a table (they would overwrite each other's state)."""


_KINDS = "patternc_torch.kinds"

SUPPORT: dict[str, KindSupport] = {
    LayerKind.ATTENTION: KindSupport(f"{_KINDS}:ATTENTION_KIND", _attention, state=("kv",)),
    LayerKind.MAMBA2: KindSupport(f"{_KINDS}:MAMBA2_KIND", _mamba, state=("conv", "ssm")),
    LayerKind.MLP: KindSupport(f"{_KINDS}:MLP_KIND", _mlp),
    LayerKind.MOE: KindSupport(f"{_KINDS}:MOE_KIND", _moe),
    LayerKind.GATED_DELTANET: KindSupport(
        "patternc_torch.deltanet:GATED_DELTANET_KIND", _gated_deltanet, state=("conv", "ssm")
    ),
    LayerKind.DSA: KindSupport("patternc_torch.latent:DSA_KIND", _sparse, state=("latent",)),
    LayerKind.MLA: KindSupport("patternc_torch.latent:MLA_KIND", _latent, state=("latent",)),
    LayerKind.SHORT_CONV: KindSupport("patternc_torch.shortconv:SHORT_CONV_KIND", state=("conv",)),
    LayerKind.MAMBA1: KindSupport("patternc_torch.mamba1:MAMBA1_KIND", _mamba1, state=("conv", "ssm")),
    LayerKind.LIGHTNING: KindSupport("patternc_torch.lightning:LIGHTNING_KIND", _lightning, state=("ssm",)),
    LayerKind.KDA: KindSupport("patternc_torch.kda:KDA_KIND", _kda, state=("conv", "ssm")),
}
"""Every layer kind -> what the backend does with it; the checks run in this order."""

BUILDABLE = alphabet_of(kind for kind, support in SUPPORT.items() if support.module is not None)
"""The symbols of the kinds the backend builds, in table order."""


def refusal(kind: str) -> str | None:
    """Why the backend cannot build ``kind`` layers at all (None when it can)."""
    support = SUPPORT.get(kind)
    if support is None:
        return _NOT_IN_TABLE
    return None if support.module is not None else support.refusal


def unsupported(spec: ModelSpec) -> list[Diagnostic]:
    """Why ``spec`` cannot be built (empty when it can)."""
    out: list[Diagnostic] = []
    used = spec.pattern.kinds()
    refused = {kind: why for kind in used if (why := refusal(kind)) is not None}
    for kind in sorted(refused, key=lambda k: kind_def(k).symbol):
        defn = kind_def(kind)
        out.append(
            _refuse(
                f"`{defn.symbol}` ({defn.description}) layers",
                refused[kind],
                help=f"the torch backend builds `{'`, `'.join(BUILDABLE)}`",
            )
        )
    for kind in sorted(used - refused.keys(), key=lambda k: kind_def(k).symbol):
        if spec.flavour(kind) is None:
            out.append(_refuse(f"`{kind_def(kind).symbol}` layers", "the model has no hyper-parameters for this kind"))
    out.extend(_scaled_residual(spec))
    for kind, support in SUPPORT.items():
        if kind in used and support.check is not None:
            out.extend(support.check(spec))
    out.extend(_falcon_h1(spec))
    out.extend(_parallel_state(spec))
    return out


def _parallel_state(spec: ModelSpec) -> Iterator[Diagnostic]:
    """A parallel layer whose mixers keep their decode state in the same table (``KindSupport.state``,
    keyed by the layer's index): ``[GK]`` would have both write ``conv[i]`` and ``ssm[i]``."""
    seen: set[str] = set()
    for layer in spec.pattern.layers:
        if not layer.parallel or layer.spelling in seen:
            continue
        seen.add(layer.spelling)
        owner: dict[str, str] = {}
        for kind in (layer.kind, *layer.parallel):
            support = SUPPORT.get(kind)
            for table in support.state if support is not None else ():
                if table in owner:
                    yield _refuse(
                        f"the parallel layer `{layer.spelling}`",
                        f"its `{kind_def(owner[table]).symbol}` and `{kind_def(kind).symbol}` mixers would both keep "
                        f"their decode state in the layer's `{table}` slot of the inference state",
                        help="put at most one mixer of each state shape in a parallel layer (attention or latent "
                        "attention beside one linear-time mixer, as Falcon-H1's `[*M]`)",
                    )
                    break
                owner[table] = kind
            else:
                continue
            break


def _falcon_h1(spec: ModelSpec) -> Iterator[Diagnostic]:
    """Falcon-H1's parallel layers are built in the main stack (``patternc_torch.parallel``), its µP
    multipliers and Mamba2 flavours everywhere; an MTP block's layers are built one mixer each."""
    mtp = spec.pattern.mtp
    first = next((layer for layer in mtp.layers if layer.parallel), None) if mtp is not None else None
    if first is not None:
        yield _refuse(
            f"parallel layers in the MTP block (`{first.spelling}`)",
            "the MTP block's layers run one mixer each (the main stack's parallel layers are built)",
        )
