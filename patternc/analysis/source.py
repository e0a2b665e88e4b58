"""The SOURCE of ``stats`` and ``split``: a config (file or directory) or a bare pattern.

A bare pattern has no hyper-parameters, so it is read as a ``nemotron_h`` config whose
``hybrid_override_pattern`` is the pattern: every size is transformers' ``NemotronHConfig``
default, and the outputs say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patternc.codes import Severity
from patternc.diagnostics import Diagnostic, diag
from patternc.dialects import Dialect
from patternc.ir import Pattern
from patternc.model import ModelSpec
from patternc.source import Source
from patternc.symbols import LayerKind

BARE_KINDS = frozenset({LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE})
"""Kinds a bare pattern can use: those NemotronHConfig's defaults define."""


@dataclass(slots=True)
class Loaded:
    spec: ModelSpec | None
    """None when there are errors."""
    pattern: Pattern | None
    """The layout as written (a bare pattern keeps its ``|`` stages; a config has one stage)."""
    source: Source
    """The text the diagnostics point into."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    defaults: bool = False
    """True for a bare pattern (NemotronHConfig's defaults)."""
    origin: str = ""
    pipes: list[int] = field(default_factory=list)
    """Text offsets of the ``|`` of a bare pattern (for pipeline diagnostics)."""


def looks_like_config(argument: str) -> bool:
    from patternc.check import looks_like_config_path

    return looks_like_config_path(argument)


def load_source(argument: str, dialect: Dialect | str = Dialect.PATTERNC) -> Loaded:
    """Read SOURCE into a ModelSpec; never raises for user errors (they are diagnostics)."""
    from patternc.config import read_config

    if looks_like_config(argument):
        reading = read_config(argument)
        shown = [d for d in reading.diagnostics if d.severity is not Severity.NOTE]
        return Loaded(
            reading.spec, reading.spec.pattern if reading.spec else None, reading.source, shown, False, argument
        )
    from patternc.api import analyze

    analysis = analyze(argument, dialect, origin="<argv>")
    if analysis.pattern is None:
        return Loaded(None, None, analysis.source, list(analysis.diagnostics), True, argument)
    pattern = analysis.pattern
    problems = []
    for index, layer in enumerate(pattern.layers):
        if layer.kind not in BARE_KINDS:
            problems.append(_no_defaults(layer.kind, layer.symbol, analysis.source_map.layer_span(index)))
    if pattern.mtp is not None:
        for index, layer in enumerate(pattern.mtp.layers):
            if layer.kind not in BARE_KINDS:
                problems.append(_no_defaults(layer.kind, layer.symbol, analysis.source_map.mtp_span(index)))
    if problems:
        return Loaded(None, pattern, analysis.source, problems, True, argument)
    config: dict[str, object] = {"model_type": "nemotron_h", "hybrid_override_pattern": pattern.flat}
    if pattern.mtp is not None:
        config["num_nextn_predict_layers"] = pattern.mtp.depths
        config["mtp_hybrid_override_pattern"] = pattern.mtp.flat
    reading = read_config(config, origin="<defaults>")
    if reading.spec is None:  # pragma: no cover - NemotronHConfig's defaults are consistent
        return Loaded(None, pattern, reading.source, list(reading.diagnostics), True, argument)
    return Loaded(reading.spec, pattern, analysis.source, [], True, argument, list(analysis.source_map.pipes))


def _no_defaults(kind: LayerKind, symbol: str, span: object) -> Diagnostic:
    from patternc.source import Span

    return diag(
        "P601",
        f"`{symbol}` ({kind.value}) has no default hyper-parameters: a bare pattern takes NemotronHConfig's "
        "defaults, which define only `M`, `*`, `-` and `E`",
        span if isinstance(span, Span) else None,
        label="no sizes for this layer",
        help="give a config.json that defines this layer kind instead of a bare pattern",
    )
