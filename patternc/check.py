"""``patternc check`` as a library call: read the input, then answer what the request asks of it.

``check(CheckRequest(...))`` reads a PATTERN|CONFIG argument (or a pattern read from stdin) with the
front end, or a config with its reader, and then answers the request's questions: Megatron-Core's
rules for a hand-placed pipeline split (``--pp``/``--vpp``; their errors are errors in the input), the
verdicts of the target profiles named (``--target``) or of every profile (``--targets``), and the
canonical-architecture map of a config's ``ModelSpec``.  The result is a frozen ``CheckOutcome``.
It never raises for user errors; everything is a diagnostic.

The questions are plain calls, not passes: they need the request (which targets, which split), and
a target refusing a model is that target's verdict, not a fact for later passes.  The pass manager
(``patternc.passes``) keeps the checks every input gets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from patternc.api import Analysis
from patternc.diagnostics import Diagnostic, has_errors, sort_diagnostics
from patternc.dialects import Dialect
from patternc.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:  # imported only when a config is read or a question asked: `check PATTERN` stays light
    from patternc.canonical import CanonicalResult
    from patternc.config import ConfigReading
    from patternc.model import ModelSpec

STDIN = "<stdin>"
"""The origin of a pattern read from standard input (``check -``): its text is never a path."""


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A hand-placed split to check against Megatron-Core's rules (``--pp K [--vpp V]``)."""

    pp: int
    """Pipeline ranks."""
    vpp: int | None = None
    """Virtual pipeline stages per rank, or None when not asked."""


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """What ``patternc check`` is asked: which input, read how, and which questions about it."""

    argument: str
    """A PATTERN|CONFIG argument (read by ``patternc.inputs.source_kind``'s rule), or, with
    ``origin=STDIN``, the text of a pattern."""
    dialect: Dialect = Dialect.PATTERNC
    limits: Limits = DEFAULT_LIMITS
    max_bytes: int | None = None
    """The largest config read (``--max-chars``); None: ``patternc.config.MAX_CONFIG_BYTES``."""
    origin: str = "<argv>"
    targets: tuple[str, ...] = ()
    """Target profile names (``--target``), each answered with its diagnostics."""
    all_targets: bool = False
    """The portability table over every profile (``--targets``)."""
    pipeline: Pipeline | None = None


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What ``check`` found: the input's reading and the answers to the request's questions."""

    analysis: Analysis
    """The pattern front end's result (for a config: its pattern, with the config's diagnostics)."""
    spec: ModelSpec | None = None
    """The ``ModelSpec`` when the input was a valid config (None for a bare pattern)."""
    config: ConfigReading | None = None
    """The config reading when the input was a config."""
    targets: Mapping[str, list[Diagnostic]] = field(default_factory=lambda: MappingProxyType({}))
    """Profile name -> its diagnostics, for the profiles asked about."""
    canonical: CanonicalResult | None = None
    """The canonical-architecture map when a ModelSpec is available."""
    table: bool = False
    """Whether the portability table of every profile was asked for."""

    @property
    def ok(self) -> bool:
        """No error in the input, and every explicitly named target accepts it."""
        if not self.analysis.ok:
            return False
        return self.table or not any(has_errors(found) for found in self.targets.values())


def check(request: CheckRequest) -> CheckOutcome:
    """Read the request's input and answer its questions."""
    return answer(read(request), request)


def read(request: CheckRequest) -> CheckOutcome:
    """The input alone, no question answered: a pattern through the front end, a config through its reader."""
    from patternc.api import analyze

    if request.origin == STDIN:
        return CheckOutcome(analyze(request.argument, request.dialect, limits=request.limits, origin=STDIN))
    return read_argument(request.argument, request.dialect, request.limits, max_bytes=request.max_bytes)


def answer(outcome: CheckOutcome, request: CheckRequest) -> CheckOutcome:
    """``outcome`` with the request's questions answered (pipeline rules, canonical map, target verdicts).

    An input with errors has no IR to ask about: it comes back unchanged.
    """
    pattern = outcome.analysis.pattern
    if pattern is None:
        return outcome
    analysis = outcome.analysis
    if request.pipeline is not None:
        from patternc.analysis.pipeline import pipeline_diagnostics

        split = request.pipeline
        found = pipeline_diagnostics(pattern, split.pp, split.vpp, pipes=analysis.source_map.pipes)
        if found:  # errors in the input relative to the split asked about
            analysis = dataclasses.replace(
                analysis,
                pattern=None if has_errors(found) else pattern,
                diagnostics=sort_diagnostics([*analysis.diagnostics, *found]),
            )
    canonical = None
    if outcome.spec is not None:
        from patternc.canonical import canonical_map

        canonical = canonical_map(outcome.spec)
    return dataclasses.replace(
        outcome,
        analysis=analysis,
        canonical=canonical,
        targets=_verdicts(outcome.analysis, outcome.spec, request),
        table=request.all_targets,
    )


def _verdicts(analysis: Analysis, spec: ModelSpec | None, request: CheckRequest) -> Mapping[str, list[Diagnostic]]:
    """Each profile asked about -> its diagnostics (every profile for ``--targets``)."""
    pattern = analysis.pattern
    if pattern is None or (not request.targets and not request.all_targets):
        return MappingProxyType({})
    from patternc import targets

    if request.all_targets:
        return MappingProxyType(targets.portability(pattern, spec, analysis.source_map))
    return MappingProxyType(
        {
            targets.resolve(name) or name: targets.check_target(name, pattern, spec, analysis.source_map)
            for name in request.targets
        }
    )


def read_argument(argument: str, dialect: Dialect, limits: Limits, *, max_bytes: int | None = None) -> CheckOutcome:
    """A PATTERN|CONFIG argument (not ``-``) read by ``source_kind``'s rule, its note among its diagnostics."""
    from patternc.api import analyze
    from patternc.inputs import source_kind

    kind, note = source_kind(argument)
    if kind == "config":
        outcome = check_config(argument, max_bytes=max_bytes)
    else:
        outcome = CheckOutcome(analyze(argument, dialect, limits=limits, origin="<argv>"))
    if note is None:
        return outcome
    analysis = outcome.analysis
    noted = dataclasses.replace(analysis, diagnostics=sort_diagnostics([*analysis.diagnostics, note]))
    return dataclasses.replace(outcome, analysis=noted)


def check_config(path: str, *, max_bytes: int | None = None) -> CheckOutcome:
    """Read a config file or directory: its diagnostics, its pattern and its ModelSpec."""
    from patternc.config import MAX_CONFIG_BYTES, read_config
    from patternc.lower import SourceMap
    from patternc.passes import Context, default_passes, run_passes

    reading = read_config(path, max_bytes=max_bytes or MAX_CONFIG_BYTES)
    facts: dict[str, object] = {}
    diagnostics = list(reading.diagnostics)
    pattern = reading.pattern if reading.ok else None
    if pattern is not None:
        ctx = Context(pattern, SourceMap())
        # the reader ran these passes on the layout already, with spans in the config's text: keep that copy
        seen = {(d.code, d.message) for d in diagnostics}
        diagnostics.extend(d for d in run_passes(ctx, default_passes()) if (d.code, d.message) not in seen)
        facts = ctx.facts
        if has_errors(diagnostics):
            pattern = None
    analysis = Analysis(reading.source, Dialect.HF, pattern, SourceMap(), sort_diagnostics(diagnostics), facts)
    return CheckOutcome(analysis, spec=reading.spec if pattern is not None else None, config=reading)
