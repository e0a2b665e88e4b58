"""The front end as a library: text -> IR with diagnostics (``analyze``) or raising (``parse``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from patternc.codes import Severity
from patternc.diagnostics import Diagnostic, PatternError, diag, has_errors, sort_diagnostics
from patternc.dialects import Dialect
from patternc.ir import Pattern
from patternc.limits import DEFAULT_LIMITS, Limits
from patternc.lower import SourceMap, lower, unknown_symbols
from patternc.passes import Context, default_passes, run_passes
from patternc.passes.classify import Family
from patternc.source import Source, Span
from patternc.syntax import parse as parse_syntax


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the front end learned about one input; never raised, always returned."""

    source: Source
    dialect: Dialect
    pattern: Pattern | None
    """The IR, or None when there are errors."""
    source_map: SourceMap
    diagnostics: list[Diagnostic]
    facts: dict[str, object] = field(default_factory=dict)
    hidden: tuple[int, int] = (0, 0)
    """(errors, warnings) beyond ``Limits.max_diagnostics``, summarised by the P013 note."""

    @property
    def ok(self) -> bool:
        # Every error leaves no IR; the shown diagnostics may be capped, the IR is not.
        return self.pattern is not None

    @property
    def family(self) -> Family | None:
        family = self.facts.get("family")
        return family if isinstance(family, Family) else None


def analyze(
    text: str,
    dialect: Dialect | str = Dialect.PATTERNC,
    *,
    limits: Limits = DEFAULT_LIMITS,
    origin: str = "<input>",
) -> Analysis:
    """Parse, lower and check ``text``.  User errors become diagnostics; this never raises them."""
    dialect = Dialect(dialect)
    source = Source(text, origin)
    if len(text) > limits.max_chars:
        problem = diag(
            "P012",
            f"the pattern text has more than {limits.max_chars:,} characters, the limit",
            Span(0, 0),
            label="input too large",
            help="raise the limit with `--max-chars N` (API: `Limits(max_chars=N)`) if this is intended",
        )
        return Analysis(source, dialect, None, SourceMap(), [problem])
    ast, syntax_problems = parse_syntax(source)
    if ast is None:  # the syntax error, and the unknown symbols a reader would fix at the same time
        marked = [d.span for d in syntax_problems if d.span is not None]
        symbols = [
            d
            for d in unknown_symbols(source, dialect)  # not where the syntax error already points
            if d.span is None or not any(d.span.start < s.end + 1 and s.start < d.span.end for s in marked)
        ]
        found = sort_diagnostics([*syntax_problems, *symbols])
        shown, hidden = _cap(found, limits)
        return Analysis(source, dialect, None, SourceMap(text_length=len(text)), shown, hidden=hidden)
    with _gc_paused():
        pattern, source_map, problems = lower(ast, source, dialect, limits)
    if syntax_problems:  # read despite unmatched brackets: report everything, but build nothing on it
        problems = sort_diagnostics([*syntax_problems, *problems])
        shown, hidden = _cap(problems, limits)
        return Analysis(source, dialect, None, source_map, shown, hidden=hidden)
    facts: dict[str, object] = {}
    if pattern is not None:
        ctx = Context(pattern, source_map)
        problems.extend(run_passes(ctx, default_passes()))
        facts = ctx.facts
        if has_errors(problems):
            pattern = None
    shown, hidden = _cap(problems, limits)
    return Analysis(source, dialect, pattern, source_map, shown, facts, hidden)


def check_pattern(
    pattern: Pattern, source_map: SourceMap, *, limits: Limits = DEFAULT_LIMITS
) -> tuple[Pattern | None, list[Diagnostic]]:
    """Run the default passes on a Pattern built without text (a config's layer list): the pattern,
    or None when there are errors, and the diagnostics as ``analyze`` shows them (sorted, capped).

    ``source_map`` places each layer; for a config reader that is the layout's own coordinates
    (main layer ``i`` at ``i``, the MTP block after them), which it then moves into the JSON text."""
    problems = run_passes(Context(pattern, source_map), default_passes())
    shown, _ = _cap(problems, limits)
    return (None if has_errors(problems) else pattern), shown


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Lowering allocates one object per layer and no cycles: the cyclic collector only costs time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cap(problems: list[Diagnostic], limits: Limits) -> tuple[list[Diagnostic], tuple[int, int]]:
    """The diagnostics shown (at most ``max_diagnostics``, then one P013 note), and the (errors,
    warnings) not shown, so that a verdict can still count them."""
    ordered = sort_diagnostics(problems)
    if len(ordered) <= limits.max_diagnostics:
        return ordered, (0, 0)
    kept = ordered[: limits.max_diagnostics]
    rest = ordered[limits.max_diagnostics :]
    hidden = len(rest)
    errors = sum(1 for d in rest if d.severity is Severity.ERROR)
    warnings = sum(1 for d in rest if d.severity is Severity.WARNING)
    return [
        *kept,
        diag(
            "P013",
            f"{hidden:,} more diagnostics not shown ({errors:,} of them errors)",
            None,
            help="fix the ones above first; they are usually the cause of the rest",
        ),
    ], (errors, warnings)


def parse(text: str, dialect: Dialect | str = Dialect.PATTERNC, *, limits: Limits = DEFAULT_LIMITS) -> Pattern:
    """Parse ``text`` into the IR, or raise ``PatternError`` with every diagnostic at once."""
    analysis = analyze(text, dialect, limits=limits)
    if analysis.pattern is None:
        raise PatternError(analysis.diagnostics, analysis.source)
    return analysis.pattern
