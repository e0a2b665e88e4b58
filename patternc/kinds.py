"""The kind table: one ``KindDef`` per layer kind, and everything per kind derives from it.

A layer kind (Mamba2, attention, MLP, …) is defined once, here: its symbol, role, names, the
``ModelSpec`` field and spec class that hold its hyper-parameters, its cost function, its
dataflow-graph lowering, its Megatron-Core support and its drawing colours.  Every other per-kind
table in the core is derived from this one (dialect alphabets, ``SYMBOL_ORDER``, ``ModelSpec.flavour``,
the target profiles' kind sets, the stats order); each backend keeps its own table keyed by the
kind name, and ``tests/core/test_kinds.py`` fails naming every table that misses a kind.

Public API (stable)::

    from patternc.kinds import KindDef, LayerKind, Role, kinds, kind_def, by_symbol, registered_kind

- ``LayerKind``: the built-in kinds' names (a ``StrEnum``; the published IR schema lists them).
- ``KindDef``: one kind's definition (frozen).  ``kind`` is the kind's name, a ``str``; a built-in
  kind's name is its ``LayerKind`` member, which compares and hashes equal to that string.
- ``kinds()``: every registered kind, in table order (``BUILTIN`` first, then registrations).
- ``Role`` (``SSM``, ``ATTENTION``, ``FFN``; ``role.mixes_tokens``): what code compares instead of symbols.
- ``kind_def(kind)`` / ``by_symbol(symbol)``: one kind by name or by symbol (``KeyError`` if none).
- ``alphabet(dialect=None)`` / ``admitted(defn, dialect)``: the symbols, in table order, of every kind
  (``dialect``: that it admits); whether a dialect admits one kind.
- ``symbol_of(kind)`` / ``alphabet_of(kinds)``: the symbol of one kind, the symbols of a kind set.
- ``BY_KIND`` / ``BY_SYMBOL`` / ``SYMBOL_ORDER``: the same lookups as live dicts (updated in place).
- ``behaviour(ref)``: a behaviour field (``spec_class``, ``cost``, ``lower``, or a backend's own
  reference) as the object itself.
- ``register(defn)`` / ``unregister(kind)`` / ``registered_kind(defn)`` (a context manager): add a
  kind at runtime, for a test or a plugin.  ``LayerKind`` cannot grow (an enum is closed), so the
  table is keyed by name; a registered kind parses, costs, lowers and is refused by every consumer
  that lacks it, but it is not part of the published ``ir.v1`` schema.

Behaviour fields are either the object or a ``"module:attribute"`` reference imported on first
use, the way entry points and sqlglot's dialect list defer imports: the built-ins' cost functions,
lowerings and spec classes live with the code they belong to (``patternc.analysis.costs``,
``patternc.canonical.graph``, ``patternc.model``), and ``patternc check`` on a bare pattern, which
needs only symbols and roles, never imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


# The built-in kinds: the published IR schema lists these (its description is this docstring, unchanged).
class LayerKind(StrEnum):
    """What one layer of the stack computes (patternc's own vocabulary)."""

    MAMBA2 = "mamba2"
    GATED_DELTANET = "gated_deltanet"
    ATTENTION = "attention"
    DSA = "dsa"
    MLA = "mla"
    MLP = "mlp"
    MOE = "moe"
    SHORT_CONV = "short_conv"
    KDA = "kda"
    LIGHTNING = "lightning"
    MAMBA1 = "mamba1"


class Role(StrEnum):
    """The part a layer kind plays in a block: token mixing or channel mixing."""

    SSM = "ssm"
    """Linear-time sequence mixer with constant-size state (Mamba2, gated DeltaNet)."""
    ATTENTION = "attention"
    """Sequence mixer with a KV cache that grows with the context."""
    FFN = "ffn"
    """Per-token channel mixer (MLP or mixture of experts)."""

    @property
    def mixes_tokens(self) -> bool:
        """True for sequence mixers (SSM and attention), False for FFNs."""
        return self is not Role.FFN


@dataclass(frozen=True, slots=True)
class KindDef:
    """Everything patternc knows about one layer kind.

    Behaviour fields (``spec_class``, ``cost``, ``lower``) hold the object or a
    ``"module:attribute"`` reference (see the module docstring); read them with ``behaviour``.
    """

    kind: str
    """The kind's name (``mamba2``): the IR's ``Layer.kind`` and every per-kind table's key."""
    symbol: str
    """The one character that spells the kind, the same in every dialect that admits it."""
    role: Role
    description: str
    """Words for messages: "Mamba2 mixer"."""
    hf_name: str | None = None
    """Name in transformers' current ``layers_block_type`` vocabulary (None: no such name)."""
    hf_legacy_name: str | None = None
    """Name in the legacy vocabulary (``mamba``/``attention``) that older checkpoints carry."""
    hf: bool = False
    """transformers' ``hybrid_override_pattern`` (the ``hf`` dialect) admits the symbol."""
    megatron: bool = False
    """Megatron-Core's ``hybrid_layer_pattern`` (the ``megatron`` dialect) admits the symbol."""
    megatron_arguments: bool = False
    """patternc writes Megatron-Core arguments for this kind's layers (``build --target megatron``)."""
    mla_family: bool = False
    """Megatron refuses to mix standard attention with these (DSA, MLA)."""
    spec_field: str | None = None
    """The ``ModelSpec`` field holding the kind's hyper-parameters (None: the IR has none)."""
    spec_class: object = None
    """The pydantic class of that field (or its reference)."""
    cost: object = None
    """``cost(spec) -> LayerCost | None``: one layer's parameters, FLOPs and state (None: no
    hyper-parameters in ``spec``); ``patternc.analysis.costs.layer_cost`` calls it."""
    lower: object = None
    """``lower(frame, spec, label) -> BlockGraph | None``: the layer's dataflow graph for the
    canonical map (None: lowered as one opaque node); ``patternc.canonical.graph`` calls it."""
    colours: tuple[str, str] = ("#999999", "#000000")
    """Fill and text colour of the kind's cells in ``patternc draw``: Okabe-Ito fills (distinguishable
    with the common colour-vision deficiencies), text in black or white, whichever contrasts."""


_NOT_SYMBOLS = frozenset("|/(){}[]#0123456789")
"""Characters the grammar gives a structural meaning (``grammar/pattern.lark``): never a layer symbol."""

_TABLE: dict[str, KindDef] = {}
BY_KIND: dict[str, KindDef] = _TABLE
"""Kind name -> definition (live: registrations update it in place)."""
BY_SYMBOL: dict[str, KindDef] = {}
"""Symbol -> definition (live)."""
SYMBOL_ORDER: dict[str, int] = {}
"""Deterministic order for counts and messages: the table order, never a set's order (live)."""


def kinds() -> tuple[KindDef, ...]:
    """Every registered kind, in table order."""
    return tuple(_TABLE.values())


def kind_def(kind: str) -> KindDef:
    """The definition of ``kind`` (``KeyError`` when no such kind is registered)."""
    return _TABLE[kind]


def by_symbol(symbol: str) -> KindDef:
    """The kind spelled ``symbol`` (``KeyError`` when none is)."""
    return BY_SYMBOL[symbol]


def symbol_of(kind: str) -> str:
    """The symbol that spells ``kind`` (``KeyError`` when no such kind is registered)."""
    return _TABLE[kind].symbol


def alphabet_of(chosen: Iterable[str]) -> str:
    """The symbols of the ``chosen`` kinds, in table order (unregistered names are skipped)."""
    wanted = frozenset(chosen)
    return "".join(d.symbol for d in _TABLE.values() if d.kind in wanted)


def alphabet(dialect: str | None = None) -> str:
    """The symbols of every kind, in table order; with ``dialect``, only those that dialect admits."""
    return "".join(d.symbol for d in _TABLE.values() if dialect is None or admitted(d, dialect))


def admitted(defn: KindDef, dialect: str) -> bool:
    """Whether ``dialect`` (``hf``, ``megatron``, ``patternc``) admits ``defn``'s symbol.

    ``patternc`` admits every registered kind: it is the dialect new kinds are written in first.
    """
    if dialect == "hf":
        return defn.hf
    if dialect == "megatron":
        return defn.megatron
    return True


_RESOLVED: dict[str, Any] = {}


def behaviour(ref: object) -> Any:
    """The object a behaviour field names: itself, or the import of a ``"module:attribute"`` string."""
    if not isinstance(ref, str):
        return ref
    found = _RESOLVED.get(ref)
    if found is None:
        module, _, attribute = ref.partition(":")
        found = _RESOLVED[ref] = getattr(importlib.import_module(module), attribute)
    return found


def register(defn: KindDef) -> None:
    """Add ``defn`` to the table (``ValueError`` when its name or symbol is taken or not usable)."""
    symbol = defn.symbol
    if len(symbol) != 1 or symbol.isspace() or symbol in _NOT_SYMBOLS or not symbol.isprintable():
        raise ValueError(f"a layer symbol is one printable, non-structural character, not {symbol!r}")
    if defn.kind in _TABLE:
        raise ValueError(f"layer kind {defn.kind!r} is already registered")
    if symbol in BY_SYMBOL:
        raise ValueError(f"symbol {symbol!r} already spells {BY_SYMBOL[symbol].kind!r}")
    _TABLE[defn.kind] = defn
    BY_SYMBOL[symbol] = defn
    SYMBOL_ORDER[symbol] = len(SYMBOL_ORDER)


def unregister(kind: str) -> None:
    """Remove a kind added by ``register`` (a built-in kind cannot be removed)."""
    if kind in _BUILTIN_NAMES:
        raise ValueError(f"built-in layer kind {kind!r} cannot be unregistered")
    defn = _TABLE.pop(kind)
    del BY_SYMBOL[defn.symbol]
    SYMBOL_ORDER.clear()
    SYMBOL_ORDER.update({d.symbol: i for i, d in enumerate(_TABLE.values())})


@contextmanager
def registered_kind(defn: KindDef) -> Iterator[KindDef]:
    """``defn`` registered for the duration of the ``with`` block, then removed."""
    register(defn)
    try:
        yield defn
    finally:
        unregister(defn.kind)


_COSTS = "patternc.analysis.costs"
_GRAPH = "patternc.canonical.graph"
_MODEL = "patternc.model"

BUILTIN: tuple[KindDef, ...] = (
    KindDef(
        LayerKind.MAMBA2,
        "M",
        Role.SSM,
        "Mamba2 mixer",
        "linear_attention",
        "mamba",
        hf=True,
        megatron=True,
        megatron_arguments=True,
        spec_field="mamba",
        spec_class=f"{_MODEL}:MambaSpec",
        cost=f"{_COSTS}:mamba2_layer",
        lower=f"{_GRAPH}:lower_mamba2_layer",
        colours=("#0072B2", "#ffffff"),
    ),
    KindDef(
        LayerKind.GATED_DELTANET,
        "G",
        Role.SSM,
        "gated DeltaNet mixer",
        megatron=True,
        spec_field="gated_deltanet",
        spec_class=f"{_MODEL}:GatedDeltaNetSpec",
        cost=f"{_COSTS}:gated_deltanet_layer",
        lower=f"{_GRAPH}:lower_gated_deltanet_layer",
        colours=("#56B4E9", "#000000"),
    ),
    KindDef(
        LayerKind.ATTENTION,
        "*",
        Role.ATTENTION,
        "self-attention",
        "full_attention",
        "attention",
        hf=True,
        megatron=True,
        megatron_arguments=True,
        spec_field="attention",
        spec_class=f"{_MODEL}:AttentionSpec",
        cost=f"{_COSTS}:attention_layer",
        lower=f"{_GRAPH}:lower_attention_layer",
        colours=("#D55E00", "#ffffff"),
    ),
    KindDef(
        LayerKind.DSA,
        "D",
        Role.ATTENTION,
        "DeepSeek sparse attention",
        megatron=True,
        mla_family=True,
        spec_field="dsa",
        spec_class=f"{_MODEL}:DsaSpec",
        cost=f"{_COSTS}:dsa_layer",
        lower=f"{_GRAPH}:lower_dsa_layer",
        colours=("#CC79A7", "#000000"),
    ),
    KindDef(
        LayerKind.MLA,
        "+",
        Role.ATTENTION,
        "multi-head latent attention",
        megatron=True,
        mla_family=True,
        spec_field="mla",
        spec_class=f"{_MODEL}:MlaSpec",
        cost=f"{_COSTS}:mla_layer",
        lower=f"{_GRAPH}:lower_mla_layer",
        colours=("#E69F00", "#000000"),
    ),
    KindDef(
        LayerKind.MLP,
        "-",
        Role.FFN,
        "MLP",
        "mlp",
        "mlp",
        hf=True,
        megatron=True,
        megatron_arguments=True,
        spec_field="mlp",
        spec_class=f"{_MODEL}:MlpSpec",
        cost=f"{_COSTS}:mlp_layer",
        lower=f"{_GRAPH}:lower_mlp_layer",
        colours=("#009E73", "#ffffff"),
    ),
    KindDef(
        LayerKind.MOE,
        "E",
        Role.FFN,
        "mixture of experts",
        "moe",
        "moe",
        hf=True,
        megatron=True,
        megatron_arguments=True,
        spec_field="moe",
        spec_class=f"{_MODEL}:MoeSpec",
        cost=f"{_COSTS}:moe_layer",
        lower=f"{_GRAPH}:lower_moe_layer",
        colours=("#F0E442", "#000000"),
    ),
    KindDef(
        LayerKind.SHORT_CONV,
        "C",
        Role.SSM,
        "gated short convolution",
        spec_field="short_conv",
        spec_class=f"{_MODEL}:ShortConvSpec",
        cost=f"{_COSTS}:short_conv_layer",
        lower=f"{_GRAPH}:lower_short_conv_layer",
        colours=("#000000", "#ffffff"),
    ),
    KindDef(
        LayerKind.LIGHTNING,
        "L",
        Role.SSM,
        "lightning attention",
        spec_field="lightning",
        spec_class=f"{_MODEL}:LightningSpec",
        cost=f"{_COSTS}:lightning_layer",
        lower=f"{_GRAPH}:lower_lightning_layer",
        colours=("#ffffff", "#D55E00"),  # Okabe-Ito's eight fills are taken: attention's vermilion, inverted
    ),
    KindDef(
        LayerKind.MAMBA1,
        "S",
        Role.SSM,
        "Mamba-1 selective scan",
        spec_field="mamba1",
        spec_class=f"{_MODEL}:Mamba1Spec",
        cost=f"{_COSTS}:mamba1_layer",
        lower=f"{_GRAPH}:lower_mamba1_layer",
        colours=("#ffffff", "#0072B2"),  # Okabe-Ito's eight fills are taken: Mamba2's blue, inverted
    ),
    KindDef(
        LayerKind.KDA,
        "K",
        Role.SSM,
        "Kimi delta attention",
        spec_field="kda",
        spec_class=f"{_MODEL}:KdaSpec",
        cost=f"{_COSTS}:kda_layer",
        lower=f"{_GRAPH}:lower_kda_layer",
        colours=("#ffffff", "#56B4E9"),  # Okabe-Ito's eight fills are taken: gated DeltaNet's sky blue, inverted
    ),
)
"""The built-in kinds, in table order (the order of counts, alphabets and messages)."""

_BUILTIN_NAMES = frozenset(d.kind for d in BUILTIN)

for _defn in BUILTIN:
    register(_defn)
