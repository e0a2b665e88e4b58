"""The typed layer IR: what a pattern *means*, independent of how it was written.

The IR is frozen pydantic and position-free, so ``==`` is structural: ``(M-){2}`` and ``M-M-``
give equal IRs.  Where each layer came from lives in a side table (``patternc.lower.SourceMap``).
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from patternc.symbols import BY_KIND, BY_SYMBOL, SYMBOL_ORDER, LayerKind

IR_SCHEMA_VERSION: Literal[1] = 1


class _Node(BaseModel, frozen=True, extra="forbid", use_attribute_docstrings=True):
    """Base of every IR node: immutable, strict about unknown fields."""


class Layer(_Node):
    """One layer of the stack: one mixer (or FFN) with its pre-norm and residual."""

    index: Annotated[int, Field(ge=0)]
    """0-based position in its stack (the main decoder or one MTP depth)."""
    kind: LayerKind
    """What the layer computes."""

    @property
    def symbol(self) -> str:
        return BY_KIND[self.kind].symbol


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
        """The main stack as a plain one-character-per-layer string (no ``|``, no MTP)."""
        return "".join(layer.symbol for layer in self.layers)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def counts(self) -> dict[str, int]:
        """Symbol -> number of main layers of that kind, in symbol-table order."""
        return _ordered_counts(self.flat)

    def has(self, kind: str) -> bool:
        """Whether the main stack (MTP aside) has a layer of ``kind``."""
        return BY_KIND[kind].symbol in self.flat

    def kinds(self) -> frozenset[str]:
        """Every kind (its name, ``LayerKind`` for a built-in one) present in the main stack and the MTP block."""
        symbols = set(self.flat) | set(self.mtp.flat if self.mtp else "")
        return frozenset(BY_SYMBOL[s].kind for s in symbols)

    def stage_strings(self) -> list[str]:
        flat = self.flat
        return [flat[stage.start : stage.stop] for stage in self.stages]


def _ordered_counts(flat: str) -> dict[str, int]:
    counter = Counter(flat)
    return {symbol: counter[symbol] for symbol in sorted(counter, key=SYMBOL_ORDER.__getitem__)}


_LAYER_FIELDS = frozenset({"index", "kind"})


def _trusted_layer(index: int, kind: str) -> Layer:
    # What ``Layer.model_construct`` does, minus its generic bookkeeping: a 100,000-layer
    # pattern builds its layers in a fifth of a second instead of half a second.  ``kind`` is a
    # ``LayerKind`` for a built-in kind and the registered name of a kind added at runtime.
    layer = Layer.__new__(Layer)
    setattr_ = object.__setattr__
    setattr_(layer, "__dict__", {"index": index, "kind": kind})
    setattr_(layer, "__pydantic_fields_set__", _LAYER_FIELDS)
    setattr_(layer, "__pydantic_extra__", None)
    setattr_(layer, "__pydantic_private__", None)
    return layer


def make_layers(flat: str) -> tuple[Layer, ...]:
    """Layers for an already validated symbol string (skips per-object validation: it is hot)."""
    kinds = {symbol: BY_SYMBOL[symbol].kind for symbol in set(flat)}
    return tuple(_trusted_layer(i, kinds[s]) for i, s in enumerate(flat))


def make_pattern(flat: str, stage_sizes: list[int] | None = None, mtp: str = "", depths: int = 0) -> Pattern:
    """Build a validated Pattern from a flat main string, stage sizes and an MTP block."""
    sizes = stage_sizes if stage_sizes is not None else [len(flat)]
    stages = []
    start = 0
    for index, size in enumerate(sizes):
        stages.append(Stage.model_construct(index=index, start=start, stop=start + size))
        start += size
    block = MtpBlock(layers=make_layers(mtp), depths=depths) if mtp and depths > 0 else None
    pattern = Pattern.model_construct(
        schema_version=IR_SCHEMA_VERSION, layers=make_layers(flat), stages=tuple(stages), mtp=block
    )
    _check_pattern(pattern)
    pattern.__dict__["flat"] = flat  # seed the cache: the caller already holds the string
    return pattern
