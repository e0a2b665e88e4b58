"""The ``--json`` outputs of ``split`` and ``gen``, and the failure object of ``stats``, ``split`` and ``gen``.

Each command prints exactly one JSON object whatever happens, valid against its published schema
(``schemas/<command>-output.v1.schema.json``, generated through ``patternc.schemas``): the result
(``ok`` true, or false where a result exists but breaks a rule, such as ``split``'s as-written
segments), or a ``Failure`` holding only the diagnostics when there is no result at all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, RootModel

from patternc.analysis.stats import Stats
from patternc.diagnostics import Diagnostic
from patternc.report import DiagnosticOut
from patternc.source import Source

OUTPUT_SCHEMA_VERSION: Literal[1] = 1


class _Out(BaseModel, frozen=True, extra="forbid"):
    """Base of the output models."""


def diagnostics_out(found: list[Diagnostic], source: Source) -> list[DiagnosticOut]:
    """Diagnostics as in ``check --json``."""
    from patternc.render import diagnostic_json

    return [DiagnosticOut.model_validate(diagnostic_json(d, source)) for d in found]


class Failure(_Out):
    """What a command prints with ``--json`` when it has no result (exit 1)."""

    schema_version: Literal[1] = OUTPUT_SCHEMA_VERSION
    ok: Literal[False] = False
    source: str | None
    """What was read (a config path or the pattern text); null when there is no SOURCE (``gen``)."""
    diagnostics: list[DiagnosticOut]
    """Why there is no result; at least one error."""


class StatsOutput(RootModel[Stats | Failure]):
    """``stats --json``: the figures, or a ``Failure``."""


class Segment(_Out):
    index: int
    """0-based segment number; Megatron-Core runs segment i on rank i % pp, virtual stage i // pp."""
    rank: int
    virtual_stage: int
    start: int
    """0-based index of the segment's first main-pattern symbol (its end when the segment is empty)."""
    layers: int
    """Pattern symbols in the segment."""
    decoder_layers: int
    """Whole decoder layers in the segment (a Bamba or GraniteMoeHybrid layer is a mixer plus its FFN)."""
    pattern: str
    cost: int
    """The segment's cost, the fixed extras included."""
    extra: int
    """The fixed part of ``cost``: the embedding (first segment), the final norm, LM head and MTP (last)."""


class Plan(_Out):
    pattern: str
    """Megatron's unified pattern: ``|`` between segments, ``/`` before each MTP depth."""
    segments: list[Segment]
    largest: int
    mean: float
    imbalance: float
    """largest / mean - 1 (0.0: perfectly balanced)."""


class SplitReport(_Out):
    schema_version: Literal[1] = OUTPUT_SCHEMA_VERSION
    ok: bool
    """False when the split as written breaks Megatron-Core's rules (the diagnostics say which); exit 1."""
    source: str
    model_type: str
    """The config's model family; ``nemotron_h`` for a bare pattern without ``--like``."""
    defaults: bool
    """True when a bare pattern was sized with patternc's defaults (``build``'s)."""
    like: str | None
    overrides: dict[str, Any]
    """The ``--set`` values applied."""
    pp: int
    vpp: int
    cost: Literal["params", "flops"]
    seq_len: int | None
    """The context length of ``--cost flops``; null for ``params``."""
    layers_per_decoder_layer: int
    """2 where one decoder layer is a mixer plus its FFN (no segment boundary falls between them), else 1."""
    balanced: Plan | None
    """The optimal split; null with ``--as-written``."""
    as_written: Plan | None
    """The split the pattern's own ``|`` (or Megatron-Core's automatic even split) gives; null when not asked
    or when Megatron-Core refuses the pattern's split."""
    diagnostics: list[DiagnosticOut]
    """Warnings, and the errors of the split as written."""


class SplitOutput(RootModel[SplitReport | Failure]):
    """``split --json``: the splits, or a ``Failure``."""


class GenReport(_Out):
    schema_version: Literal[1] = OUTPUT_SCHEMA_VERSION
    ok: Literal[True] = True
    pattern: str
    """The generated pattern in Megatron's spelling (``/`` before each MTP depth)."""
    layers: int
    """Main-pattern symbols."""
    decoder_blocks: int
    """Mixers in the main pattern: the blocks, each a mixer and, where asked, its FFN."""
    counts: dict[str, int]
    """Symbol -> number of main-pattern symbols."""
    attention: int
    ffn: int
    mtp: str | None
    """The layers of one MTP depth (``--mtp``), or null."""
    megatron_compatible: bool
    diagnostics: list[DiagnosticOut]
    """Warnings (an FFN share that rounds to none, ``--moe`` without FFN layers)."""


class GenOutput(RootModel[GenReport | Failure]):
    """``gen --json``: the pattern, or a ``Failure``."""
