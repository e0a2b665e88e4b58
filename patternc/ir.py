"""The typed layer IR: what a pattern *means*, independent of how it was written.

The IR is frozen pydantic and position-free, so ``==`` is structural: ``(M-){2}`` and ``M-M-``
give equal IRs.  Where each layer came from lives in a side table (``patternc.lower.SourceMap``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from patternc.symbols import BY_KIND, BY_SYMBOL, SYMBOL_ORDER, LayerKind

IR_SCHEMA_VERSION: Literal[1] = 1


class _Node(BaseModel, frozen=True, extra="forbid"):
    """Base of every IR node: immutable, strict about unknown fields."""


class Layer(_Node):
    """One layer of the stack: one mixer (or FFN) with its pre-norm and residual.

    A parallel layer (``[*M]``, Falcon-H1) runs several mixers on the same normed input and adds
    their sum to the residual once: ``kind`` is its first mixer, ``parallel`` the others, in the
    order written.
    """

    index: Annotated[int, Field(ge=0)]
    """0-based position in its stack (the main decoder or one MTP depth)."""
    kind: LayerKind
    """What the layer computes (for a parallel layer: its first mixer)."""
    parallel: Annotated[tuple[LayerKind, ...], Field(exclude_if=lambda kinds: not kinds)] = ()
    """The mixers that run beside ``kind`` on the same normed input, their outputs summed with its
    output into one residual add (``[*M]``: ``kind`` attention, ``parallel`` ``(mamba2,)``).  Empty
    for an ordinary layer, and then not written out: every ``ir.v1`` document written before the
    field existed still validates, and an ordinary layer's JSON is unchanged."""

    @model_validator(mode="after")
    def _distinct_mixers(self) -> Layer:
        members = (self.kind, *self.parallel)
        if self.parallel and (len(set(members)) != len(members) or not all(_mixes(k) for k in members)):
            raise ValueError("a parallel layer holds two or more distinct token mixers")
        return self

    @property
    def symbol(self) -> str:
        """The symbol of ``kind`` (a parallel layer's first mixer): the layer's character in ``flat``."""
        return BY_KIND[self.kind].symbol

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every mixer (or FFN) of the layer: ``kind``, then the parallel ones."""
        return (self.kind, *self.parallel)

    @property
    def spelling(self) -> str:
        """The layer as the patternc dialect writes it: ``M``, or ``[*M]`` for a parallel layer."""
        if not self.parallel:
            return self.symbol
        return "[" + "".join(BY_KIND[k].symbol for k in self.kinds) + "]"


def _mixes(kind: str) -> bool:
    return BY_KIND[kind].role.mixes_tokens


class Stage(_Node):
    """A pipeline-parallel stage: the layers ``[start, stop)`` of the main stack."""

    index: Annotated[int, Field(ge=0)]
    start: Annotated[int, Field(ge=0)]
    stop: Annotated[int, Field(ge=0)]

    @property
    def size(self) -> int:
        return self.stop - self.start


class MtpBlock(_Node):
    """The multi-token-prediction block: one stack of layers, applied at each depth."""

    layers: tuple[Layer, ...]
    """The layers of one depth (every depth has the same layers)."""
    depths: Annotated[int, Field(ge=1)]
    """How many prediction depths (Megatron's ``mtp_num_layers``, HF's ``num_nextn_predict_layers``)."""

    @cached_property
    def flat(self) -> str:
        return "".join(layer.symbol for layer in self.layers)

    @property
    def spelled(self) -> tuple[str, ...]:
        """Each layer's ``spelling`` (``[*M]`` for a parallel layer)."""
        return tuple(layer.spelling for layer in self.layers)


def _check_stack(layers: tuple[Layer, ...], what: str) -> None:
    for position, layer in enumerate(layers):
        if layer.index != position:
            raise ValueError(f"{what} layer at position {position} has index {layer.index}")


def _check_pattern(pattern: Pattern) -> None:
    """Invariants every Pattern holds, however it was built: indices, and stages that tile the stack."""
    _check_stack(pattern.layers, "main")
    if pattern.mtp is not None:
        _check_stack(pattern.mtp.layers, "MTP")
    if not pattern.stages:
        raise ValueError("a pattern has at least one stage")
    expected_start = 0
    for position, stage in enumerate(pattern.stages):
        if stage.index != position or stage.start != expected_start or stage.stop < stage.start:
            raise ValueError(f"stage {position} does not continue where the previous one stopped")
        expected_start = stage.stop
    if expected_start != len(pattern.layers):
        raise ValueError("stages must cover every main layer")


class Pattern(_Node):
    """A whole hybrid stack: main layers, pipeline stages and an optional MTP block."""

    schema_version: Literal[1] = IR_SCHEMA_VERSION
    layers: tuple[Layer, ...]
    """The main decoder stack, in order."""
    stages: tuple[Stage, ...]
    """Pipeline stages; a pattern without ``|`` has a single stage holding every layer."""
    mtp: MtpBlock | None = None
    """The multi-token-prediction block, if any."""

    @model_validator(mode="after")
    def _consistent(self) -> Pattern:
        _check_pattern(self)
        return self

    @cached_property
    def flat(self) -> str:
        """The main stack as a plain one-character-per-layer string (no ``|``, no MTP).

        A parallel layer is its first mixer's symbol here: code that reads ``flat`` and cannot
        build parallel layers checks ``has_parallel`` and refuses (``spelled`` is the full form).
        """
        return "".join(layer.symbol for layer in self.layers)

    @cached_property
    def has_parallel(self) -> bool:
        """Whether any layer (main or MTP) runs mixers in parallel (``[*M]``)."""
        layers = self.layers + (self.mtp.layers if self.mtp else ())
        return any(layer.parallel for layer in layers)

    @property
    def spelled(self) -> tuple[str, ...]:
        """Each main layer's ``spelling``: ``flat`` with every parallel layer written ``[*M]``."""
        return tuple(layer.spelling for layer in self.layers)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def counts(self) -> dict[str, int]:
        """Symbol -> number of main layers of that kind, in symbol-table order (each mixer of a
        parallel layer counts once for its own kind, so the counts of ``[*M]-`` are ``M``, ``*``, ``-``)."""
        return _ordered_counts(self.flat + self._parallel_symbols(self.layers))

    def has(self, kind: str) -> bool:
        """Whether the main stack (MTP aside) has a layer of ``kind`` (parallel mixers included)."""
        symbol = BY_KIND[kind].symbol
        return symbol in self.flat or (self.has_parallel and symbol in self._parallel_symbols(self.layers))

    def kinds(self) -> frozenset[str]:
        """Every kind (its name, ``LayerKind`` for a built-in one) present in the main stack and the MTP block."""
        symbols = set(self.flat) | set(self.mtp.flat if self.mtp else "")
        if self.has_parallel:
            symbols |= set(self._parallel_symbols(self.layers + (self.mtp.layers if self.mtp else ())))
        return frozenset(BY_SYMBOL[s].kind for s in symbols)

    def _parallel_symbols(self, layers: tuple[Layer, ...]) -> str:
        if not self.has_parallel:
            return ""
        return "".join(BY_KIND[k].symbol for layer in layers for k in layer.parallel)

    def stage_strings(self) -> list[str]:
        flat = self.flat
        return [flat[stage.start : stage.stop] for stage in self.stages]

    def stage_spellings(self) -> list[tuple[str, ...]]:
        """``spelled`` cut at the stage boundaries."""
        spelled = self.spelled
        return [spelled[stage.start : stage.stop] for stage in self.stages]


def _ordered_counts(flat: str) -> dict[str, int]:
    counter = Counter(flat)
    return {symbol: counter[symbol] for symbol in sorted(counter, key=SYMBOL_ORDER.__getitem__)}


_LAYER_FIELDS = frozenset({"index", "kind"})
_PARALLEL_FIELD = frozenset({"parallel"})


def _trusted_layer(index: int, kind: str, parallel: tuple[str, ...] = ()) -> Layer:
    # What ``Layer.model_construct`` does, minus its generic bookkeeping: a 100,000-layer
    # pattern builds its layers in a fifth of a second instead of half a second.  ``kind`` is a
    # ``LayerKind`` for a built-in kind and the registered name of a kind added at runtime.
    layer = Layer.__new__(Layer)
    setattr_ = object.__setattr__
    setattr_(layer, "__dict__", {"index": index, "kind": kind, "parallel": parallel})
    setattr_(layer, "__pydantic_fields_set__", _LAYER_FIELDS | _PARALLEL_FIELD if parallel else _LAYER_FIELDS)
    setattr_(layer, "__pydantic_extra__", None)
    setattr_(layer, "__pydantic_private__", None)
    return layer


def make_layers(flat: str, parallel: Mapping[int, str] | None = None) -> tuple[Layer, ...]:
    """Layers for an already validated symbol string (skips per-object validation: it is hot).

    ``parallel`` maps a layer's index to the symbols of the mixers that run beside ``flat[index]``
    (``{0: "M"}`` with ``flat`` ``*-`` is ``[*M]-``); they are checked here, as ``Layer`` would.
    """
    kinds = {symbol: BY_SYMBOL[symbol].kind for symbol in set(flat)}
    layers = tuple(_trusted_layer(i, kinds[s]) for i, s in enumerate(flat))
    if not parallel:
        return layers
    out = list(layers)
    for index, others in parallel.items():
        out[index] = Layer(index=index, kind=kinds[flat[index]], parallel=tuple(BY_SYMBOL[s].kind for s in others))
    return tuple(out)


def make_pattern(
    flat: str,
    stage_sizes: list[int] | None = None,
    mtp: str = "",
    depths: int = 0,
    parallel: Mapping[int, str] | None = None,
    mtp_parallel: Mapping[int, str] | None = None,
) -> Pattern:
    """Build a validated Pattern from a flat main string, stage sizes and an MTP block (``parallel``
    and ``mtp_parallel``: the parallel mixers of some layers, as ``make_layers`` takes them)."""
    sizes = stage_sizes if stage_sizes is not None else [len(flat)]
    stages = []
    start = 0
    for index, size in enumerate(sizes):
        stages.append(Stage.model_construct(index=index, start=start, stop=start + size))
        start += size
    block = MtpBlock(layers=make_layers(mtp, mtp_parallel), depths=depths) if mtp and depths > 0 else None
    pattern = Pattern.model_construct(
        schema_version=IR_SCHEMA_VERSION, layers=make_layers(flat, parallel), stages=tuple(stages), mtp=block
    )
    _check_pattern(pattern)
    pattern.__dict__["flat"] = flat  # seed the cache: the caller already holds the string
    return pattern
