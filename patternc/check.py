"""``patternc check`` as a library call: the front end, then the questions asked of the result.

``run_check`` takes a pattern text (or, once read, a config's ``ModelSpec``) and answers what the
options ask: target profiles (``--target``/``--targets``) and the canonical-architecture map.
It never raises for user errors; everything is a diagnostic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from patternc.api import Analysis
from patternc.diagnostics import Diagnostic, has_errors


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


def looks_like_config_path(argument: str) -> bool:
    """A ``check`` argument names a config when it is an existing file or directory, or ends in ``.json``.

    Pattern text never contains a path separator that is also a layer symbol, so a name such as
    ``config.json`` or ``ckpt/`` cannot be mistaken for a pattern that parses.
    """
    import os

    if argument == "-":
        return False
    return argument.endswith(".json") or os.path.isdir(argument) or os.path.isfile(argument)


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
        diagnostics.extend(run_passes(ctx, default_passes()))
        facts = ctx.facts
        if has_errors(diagnostics):
            pattern = None
    from patternc.diagnostics import sort_diagnostics

    analysis = Analysis(reading.source, Dialect.HF, pattern, SourceMap(), sort_diagnostics(diagnostics), facts)
    return CheckOutcome(analysis, spec=reading.spec if pattern is not None else None, config=reading)
