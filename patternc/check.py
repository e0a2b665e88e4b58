"""``patternc check`` as a library call: the front end, then the questions asked of the result.

``run_check`` takes a pattern text (or, once read, a config's ``ModelSpec``) and answers what the
options ask: target profiles (``--target``/``--targets``) and the canonical-architecture map.
It never raises for user errors; everything is a diagnostic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from patternc.api import Analysis
from patternc.diagnostics import Diagnostic, has_errors

if TYPE_CHECKING:
    from patternc.dialects import Dialect
    from patternc.limits import Limits


@dataclass(slots=True)
class CheckOutcome:
    analysis: Analysis
    """The pattern front end's result (for a config: its pattern, with the config's diagnostics)."""
    spec: Any = None
    """The ``ModelSpec`` when the input was a config (None for a bare pattern)."""
    config: Any = None
    """The config reading (``patternc.config.ConfigReading``) when the input was a config."""
    targets: dict[str, list[Diagnostic]] = field(default_factory=dict)
    """Profile name -> its diagnostics, for the profiles asked about."""
    canonical: Any = None
    """``patternc.canonical.CanonicalResult`` when a ModelSpec is available."""
    table: bool = False
    """Whether the portability table of every profile was asked for."""

    @property
    def ok(self) -> bool:
        """No error in the input, and every explicitly named target accepts it."""
        if not self.analysis.ok:
            return False
        return self.table or not any(has_errors(found) for found in self.targets.values())


def ask(
    outcome: CheckOutcome, names: Sequence[str], all_targets: bool, pipeline: tuple[int, int | None] | None = None
) -> None:
    """Run the question passes (pipeline rules, canonical map, target profiles) over a valid IR."""
    from patternc.diagnostics import sort_diagnostics
    from patternc.passes import Context, question_passes, run_passes
    from patternc.passes.questions import ALL_TARGETS, PIPELINE, TARGET_NAMES

    pattern = outcome.analysis.pattern
    if pattern is None:
        return
    # The front end ran the default passes; their facts (the family) are the questions' inputs.
    ctx = Context(pattern, outcome.analysis.source_map, facts=dict(outcome.analysis.facts), spec=outcome.spec)
    ctx.facts.update({TARGET_NAMES: list(names), ALL_TARGETS: all_targets})
    if pipeline is not None:
        ctx.facts[PIPELINE] = pipeline
    found = run_passes(ctx, question_passes())
    if found:  # the pipeline rules: errors in the input relative to the split asked about
        analysis = outcome.analysis
        diagnostics = sort_diagnostics([*analysis.diagnostics, *found])
        keep = None if has_errors(found) else analysis.pattern
        outcome.analysis = Analysis(
            analysis.source, analysis.dialect, keep, analysis.source_map, diagnostics, analysis.facts
        )
    outcome.canonical = ctx.facts.get("canonical")
    outcome.targets = ctx.facts.get("targets", {})
    outcome.table = all_targets


PATTERN_CHARACTERS = frozenset("MGD*+-E|/(){}#0123456789 \t\n\r")
"""Every character some dialect's pattern may hold (symbols, structure, repetition, comments)."""

Reading = Literal["pattern", "config"]


def source_kind(argument: str) -> tuple[Reading, Diagnostic | None]:
    """How a PATTERN|CONFIG argument is read, and the note that says so when it could be read both ways.

    The rule (``docs/cli.md``, "Pattern or config?"), the same for every command that takes either:

    1. ``-`` is a pattern read from stdin (the caller handles it);
    2. an argument that names no file or directory is a pattern, unless it ends in ``.json`` or
       starts like a path (``/``, ``./``, ``../``, ``~``) and holds a character no pattern has
       (then it is a config that is missing: ``P901``, not one P001 per letter);
    3. an existing file or directory is a config, *unless* the argument is also a valid pattern
       (patternc dialect, which accepts every dialect's spelling): then it is the pattern, and a
       ``P016`` note says that a file of that name exists and how to name it (``./E``).  The
       pattern wins because its meaning does not depend on the working directory;
    4. when an existing path is read as a config although every character could belong to a
       pattern (``/``, ``M-/``), a ``P017`` note says why it was not read as a pattern.

    So no reading is ever chosen silently when both are possible.
    """
    import os

    from patternc.api import analyze
    from patternc.diagnostics import diag
    from patternc.source import Span

    if argument == "-":
        return "pattern", None
    exists = os.path.isdir(argument) or os.path.isfile(argument)
    if not exists:
        return ("config" if argument.endswith(".json") or _missing_path(argument) else "pattern"), None
    what = "directory" if os.path.isdir(argument) else "file"
    analysis = analyze(argument, origin="<argv>")
    shown = _escape_name(argument)
    if analysis.pattern is not None:
        return "pattern", diag(
            "P016",
            f"`{shown}` is also the name of a {what} here; it was read as a pattern",
            Span(0, len(argument)),
            label=f"a pattern, and a {what}",
            help=f"to read the {what}, name it as a path: `./{shown}`" if not os.path.isabs(argument)
            else f"to read the {what}, name it as a path other than the pattern: `{shown}/.`",
        )
    if set(argument) <= PATTERN_CHARACTERS:
        first = next(d for d in analysis.diagnostics if d.severity.value == "error")
        return "config", diag(
            "P017",
            f"`{shown}` was read as the {what} of that name: as a pattern it has an error",
            None,
            label=f"read as a {what}",
            notes=[f"as a pattern: error[{first.code}]: {first.message}"],
            help="to check it as a pattern, fix the pattern; to check a config, name its file or directory",
        )
    return "config", None


def _missing_path(argument: str) -> bool:
    """A path that does not exist: it starts like one (``/``, ``./``, ``../``, ``~``; no valid pattern
    does) and holds a character no pattern has, so reading it as a pattern could only list P001s."""
    import os

    starts = ("/", "./", "../", "~", os.sep, f".{os.sep}", f"..{os.sep}")
    return argument.startswith(starts) and not set(argument) <= PATTERN_CHARACTERS


def _escape_name(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def source_note(argument: str) -> Diagnostic | None:
    """``source_kind``'s note (P016/P017) without a span, for commands whose diagnostics point into
    another text than the argument (a bare pattern's generated config), or None."""
    import dataclasses

    note = source_kind(argument)[1]
    return None if note is None else dataclasses.replace(note, span=None)


def looks_like_config_path(argument: str) -> bool:
    """Whether a SOURCE argument is read as a config (``source_kind``'s rule)."""
    return source_kind(argument)[0] == "config"


def read_argument(argument: str, dialect: Dialect, limits: Limits, *, max_bytes: int | None = None) -> CheckOutcome:
    """A PATTERN|CONFIG argument (not ``-``) read by ``source_kind``'s rule, its note among its diagnostics."""
    import dataclasses

    from patternc.api import analyze
    from patternc.diagnostics import sort_diagnostics

    kind, note = source_kind(argument)
    if kind == "config":
        outcome = check_config(argument, max_bytes=max_bytes)
    else:
        outcome = CheckOutcome(analyze(argument, dialect, limits=limits, origin="<argv>"))
    if note is not None:
        analysis = outcome.analysis
        outcome.analysis = dataclasses.replace(analysis, diagnostics=sort_diagnostics([*analysis.diagnostics, note]))
    return outcome


def check_config(path: str, *, max_bytes: int | None = None) -> CheckOutcome:
    """Read a config file or directory: its diagnostics, its pattern, its ModelSpec and canonical map."""
    from patternc.api import Analysis
    from patternc.config import MAX_CONFIG_BYTES, read_config
    from patternc.dialects import Dialect
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
    from patternc.diagnostics import sort_diagnostics

    analysis = Analysis(reading.source, Dialect.HF, pattern, SourceMap(), sort_diagnostics(diagnostics), facts)
    return CheckOutcome(analysis, spec=reading.spec if pattern is not None else None, config=reading)
