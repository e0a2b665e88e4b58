"""Where each architecture keeps each weight: transformers' tensor names <-> *logical* weights.

A logical weight names one piece of the math independently of any architecture: ``embed``,
``final_norm``, ``lm_head``, and per spec layer ``L{i}.prenorm`` (the block's RMSNorm) plus the
mixer's or FFN's own weights (``L3.in_proj.weight``, ``L5.gate.weight``, ``L7.experts.up``…).
The tensor names themselves are never guessed: the caller instantiates the architecture on the
meta device and passes its ``state_dict`` names, and ``logical_layout`` maps each one to a
``Piece`` (the name is one logical weight, or several concatenated along a dimension, as
GraniteMoeHybrid's ``shared_mlp.input_linear`` holds gate and up).

Checkpoints on the hub may use older names; ``hub_name`` gives, for a transformers 5.x name,
the name (or the per-expert names, stacked on dimension 0) that ``save_pretrained`` writes and
the hub checkpoints use, read from transformers' ``conversion_mapping.py``:

* ``nemotron_h``: ``backbone.`` instead of ``model.``; experts stored one by one as
  ``…mixer.experts.{e}.up_proj.weight`` / ``down_proj.weight``, stacked by transformers into
  ``…mixer.experts.up_proj`` / ``down_proj`` ([experts, out, in]).
* ``granitemoehybrid`` (the ``granitemoe`` mapping): ``block_sparse_moe.input_linear.weight``,
  ``output_linear.weight`` and ``router.layer.weight`` for ``experts.gate_up_proj``,
  ``experts.down_proj`` and ``router.weight``.

LFM2 and LFM2-MoE share one layout (``_lfm2``); it serves between the two only (an LFM2-MoE whose
layers are all dense is LFM2), with ``within=False``: each into itself is read under transformers'
names and the older ones derived from its conversion mapping (``hubnames.py``), like every family
without a layout here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from patternc.canonical.archs import pair_layers
from patternc.kinds import LayerKind, by_symbol
from patternc.model import ModelSpec


@dataclass(frozen=True, slots=True)
class Piece:
    """A stored tensor as a function of logical weights: one of them, or several concatenated."""

    logical: tuple[str, ...]
    dim: int = 0
    """The dimension of the concatenation (when there are several)."""


class LayoutError(Exception):
    """A tensor name the layout does not know: a bug in patternc or a transformers it does not track."""


def _same(rest: str) -> str:
    return rest


def _mlp_names(rest: str) -> str:
    return re.sub(r"^(up|down)_proj\.", r"\1.", rest)


_MOE_NAMES = {
    "gate.weight": "router.weight",
    "gate.e_score_correction_bias": "router.correction_bias",
    "experts.up_proj": "experts.up",
    "experts.down_proj": "experts.down",
}


def _moe_names(rest: str) -> str:
    if rest in _MOE_NAMES:
        return _MOE_NAMES[rest]
    rest = re.sub(r"^shared_experts\.(up|down)_proj\.", r"shared.\1.", rest)
    return re.sub(r"^fc([12])_latent_proj\.", r"latent.fc\1.", rest)


@dataclass(frozen=True, slots=True)
class KindLayout:
    """How transformers names one layer kind's weights, as logical weights of the layer."""

    mixer: Callable[[str], str]
    """A name under the layer's ``mixer.`` (Nemotron-H's layout, which the logical names follow) -> its
    logical name within the layer."""
    shared_mlp: str | None = None
    """Where a paired family's ``shared_mlp`` of a layer of this kind lives, after ``L{i}``: the
    layer's own MLP (``""``) or its shared expert (``".shared"``); None for a mixer kind."""


KIND_LAYOUTS: dict[str, KindLayout] = {
    LayerKind.MAMBA2: KindLayout(_same),
    LayerKind.ATTENTION: KindLayout(_same),
    LayerKind.MLP: KindLayout(_mlp_names, shared_mlp=""),
    LayerKind.MOE: KindLayout(_moe_names, shared_mlp=".shared"),
}
"""Every kind transformers' layer vocabulary names (``KindDef.hf``) -> its weight names."""


def kind_layout(symbol: str) -> KindLayout:
    """The layout of the kind ``symbol`` spells (``LayoutError`` when transformers holds no such layer)."""
    defn = by_symbol(symbol)
    layout = KIND_LAYOUTS.get(defn.kind)
    if layout is None:
        raise LayoutError(f"no transformers weight layout for `{symbol}` ({defn.description}) layers")
    return layout


def _nemotron(key: str, spec: ModelSpec) -> Piece | None:
    fixed = {"model.embeddings.weight": "embed", "model.norm_f.weight": "final_norm", "lm_head.weight": "lm_head"}
    if key in fixed:
        return Piece((fixed[key],))
    match = re.fullmatch(r"model\.layers\.(\d+)\.(?:norm\.weight|mixer\.(.+))", key)
    if match is None:
        return None
    i = int(match[1])
    if match[2] is None:
        return Piece((f"L{i}.prenorm",))
    return Piece((f"L{i}." + kind_layout(spec.pattern.flat[i]).mixer(match[2]),))


def _mamba2(key: str, spec: ModelSpec) -> Piece | None:
    fixed = {"backbone.embeddings.weight": "embed", "backbone.norm_f.weight": "final_norm", "lm_head.weight": "lm_head"}
    if key in fixed:
        return Piece((fixed[key],))
    match = re.fullmatch(r"backbone\.layers\.(\d+)\.(?:norm\.weight|mixer\.(.+))", key)
    if match is None:
        return None
    i = int(match[1])
    return Piece((f"L{i}.prenorm",)) if match[2] is None else Piece((f"L{i}.{match[2]}",))


def _paired(key: str, spec: ModelSpec, final_norm: str, ffn_norm: str) -> Piece | None:
    """Bamba / GraniteMoeHybrid: decoder layer J holds a mixer and its FFN; the two name their norms apart."""
    fixed = {"model.embed_tokens.weight": "embed", "lm_head.weight": "lm_head", final_norm: "final_norm"}
    if key in fixed:
        return Piece((fixed[key],))
    match = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", key)
    if match is None:
        return None
    flat = spec.pattern.flat
    pairs, _ = pair_layers(flat, "paired")
    j, rest = int(match[1]), match[2]
    if j >= len(pairs):
        return None
    m, f = pairs[j]
    if rest == "input_layernorm.weight":
        return Piece((f"L{m}.prenorm",))
    mixer = re.fullmatch(r"(?:mamba|self_attn)\.(.+)", rest)
    if mixer is not None:
        return Piece((f"L{m}.{mixer[1]}",))
    if f is None:
        return None
    if rest == ffn_norm:
        return Piece((f"L{f}.prenorm",))
    ffn = re.fullmatch(r"feed_forward\.(gate|up|down)_proj\.(.+)", rest)
    if ffn is not None:
        return Piece((f"L{f}.{ffn[1]}.{ffn[2]}",))
    shared = f"L{f}{kind_layout(flat[f]).shared_mlp or ''}"
    if rest == "shared_mlp.input_linear.weight":  # chunk(2, dim=-1) of the output: gate first, then up
        return Piece((f"{shared}.gate.weight", f"{shared}.up.weight"), dim=0)
    if rest == "shared_mlp.output_linear.weight":
        return Piece((f"{shared}.down.weight",))
    moe = {
        "block_sparse_moe.router.weight": "router.weight",
        "block_sparse_moe.experts.gate_up_proj": "experts.gate_up",
        "block_sparse_moe.experts.down_proj": "experts.down",
    }
    if rest in moe:
        return Piece((f"L{f}.{moe[rest]}",))
    return None


def _lfm2(key: str, spec: ModelSpec) -> Piece | None:
    """LFM2 / LFM2-MoE: decoder layer J holds a mixer (``conv`` or ``self_attn``) and its feed-forward.

    ``operator_norm`` is the mixer's pre-norm, ``ffn_norm`` the FFN's; ``embedding_norm`` is the
    final norm (applied after the last layer, whatever its name says).  The dense FFN is
    ``w1``/``w3``/``w2`` (gate/up/down); LFM2-MoE's routed layers keep ``gate`` (the router),
    ``expert_bias`` (its correction bias) and the stacked experts.
    """
    fixed = {
        "model.embed_tokens.weight": "embed",
        "model.embedding_norm.weight": "final_norm",
        "lm_head.weight": "lm_head",
    }
    if key in fixed:
        return Piece((fixed[key],))
    match = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", key)
    if match is None:
        return None
    pairs, _ = pair_layers(spec.pattern.flat, "paired")
    j, rest = int(match[1]), match[2]
    if j >= len(pairs):
        return None
    m, f = pairs[j]
    if rest == "operator_norm.weight":
        return Piece((f"L{m}.prenorm",))
    mixer = re.fullmatch(r"(?:conv|self_attn)\.(.+)", rest)
    if mixer is not None:
        return Piece((f"L{m}.{mixer[1]}",))
    if f is None:
        return None
    if rest == "ffn_norm.weight":
        return Piece((f"L{f}.prenorm",))
    dense = {"w1": "gate", "w3": "up", "w2": "down"}
    ffn = re.fullmatch(r"feed_forward\.(w[123])\.(.+)", rest)
    if ffn is not None:
        return Piece((f"L{f}.{dense[ffn[1]]}.{ffn[2]}",))
    moe = {
        "feed_forward.gate.weight": "router.weight",
        "feed_forward.expert_bias": "router.correction_bias",
        "feed_forward.experts.gate_up_proj": "experts.gate_up",
        "feed_forward.experts.down_proj": "experts.down",
    }
    return Piece((f"L{f}.{moe[rest]}",)) if rest in moe else None


def _nemotron_hub(name: str, shape: tuple[int, ...]) -> str | list[str] | None:
    if not name.startswith("model."):
        return None
    hub = "backbone." + name[len("model.") :]
    match = re.fullmatch(r"(.+\.mixer\.experts)\.(up|down)_proj", hub)
    if match is not None and shape:
        return [f"{match[1]}.{e}.{match[2]}_proj.weight" for e in range(shape[0])]
    return hub


_GRANITE_HUB = {
    "block_sparse_moe.experts.gate_up_proj": "block_sparse_moe.input_linear.weight",
    "block_sparse_moe.experts.down_proj": "block_sparse_moe.output_linear.weight",
    "block_sparse_moe.router.weight": "block_sparse_moe.router.layer.weight",
}


def _granite_hub(name: str, shape: tuple[int, ...]) -> str | list[str] | None:
    del shape  # no per-expert names
    for new, old in _GRANITE_HUB.items():
        if name.endswith("." + new):
            return name[: -len(new)] + old
    return None


@dataclass(frozen=True, slots=True)
class FamilyLayout:
    """How one family keeps its weights: its tensor names -> logical weights, and the hub's names."""

    logical: Callable[[str, ModelSpec], Piece | None]
    hub: Callable[[str, tuple[int, ...]], str | list[str] | None] | None = None
    """The older name ``save_pretrained`` writes for a 5.x name, when the family renamed some."""
    within: bool = True
    """Whether this layout also converts the family into itself.  False: the family into itself is
    read tensor by tensor under transformers' own names (``build.plan_same_family``, which knows
    every older name from transformers' conversion mapping); the layout serves across families."""


LAYOUTS: dict[str, FamilyLayout] = {
    "nemotron_h": FamilyLayout(_nemotron, _nemotron_hub),
    "mamba2": FamilyLayout(_mamba2),
    "bamba": FamilyLayout(
        partial(_paired, final_norm="model.final_layernorm.weight", ffn_norm="pre_ff_layernorm.weight")
    ),
    "granitemoehybrid": FamilyLayout(
        partial(_paired, final_norm="model.norm.weight", ffn_norm="post_attention_layernorm.weight"), _granite_hub
    ),
    "lfm2": FamilyLayout(_lfm2, within=False),
    "lfm2_moe": FamilyLayout(_lfm2, within=False),
}
"""The weight layout of each family (``patternc.families`` name) whose weights ``patternc build
--weights`` converts to or from *another* family (the canonical map finding the pair exact); every
family converts into itself without one (``build.plan_same_family``)."""

WEIGHT_ARCHS: tuple[str, ...] = tuple(LAYOUTS)
"""Architectures whose weights ``patternc build --weights`` converts across families."""


def logical_layout(arch: str, spec: ModelSpec, names: list[str]) -> dict[str, Piece]:
    """Each transformers tensor name of ``arch`` (for this spec) -> the logical weights it holds."""
    layout = LAYOUTS.get(arch)
    if layout is None:
        raise LayoutError(f"no weight layout for `{arch}`")
    out: dict[str, Piece] = {}
    for name in names:
        piece = layout.logical(name, spec)
        if piece is None:
            raise LayoutError(f"`{arch}` tensor `{name}` has no known logical weight")
        out[name] = piece
    return out


def hub_name(arch: str, name: str, shape: tuple[int, ...]) -> str | list[str] | None:
    """The older (hub, ``save_pretrained``) name of a transformers 5.x tensor, if it differs.

    A list means one tensor per expert, stacked on dimension 0 by transformers when it loads.
    """
    layout = LAYOUTS.get(arch)
    return layout.hub(name, shape) if layout is not None and layout.hub is not None else None
