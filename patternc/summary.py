"""The human-readable summary ``patternc check`` prints above its diagnostics."""

from __future__ import annotations

from typing import Any

from patternc.api import Analysis
from patternc.check import CheckOutcome
from patternc.codes import Severity
from patternc.diagnostics import has_errors
from patternc.render import render_text
from patternc.report import build_report


def _canonical_text(canonical: Any, verbose: bool) -> str:
    """The canonical verdict: one line by default; with ``verbose`` every candidate's reasons.

    The reasons run to dozens of lines per candidate for a real checkpoint, so by default they are
    counted, not printed (``--verbose`` prints them; ``--json`` always carries them)."""
    lines = [f"\ncanonical  {canonical.architecture or 'none (no transformers architecture is exact)'}"]
    if not verbose:
        others = [
            f"{name} ({len(reasons)} reason{'s' * (len(reasons) != 1)})"
            for name, reasons in canonical.reasons.items()
            if reasons
        ]
        also = [name for name, reasons in canonical.reasons.items() if not reasons]
        if also:
            lines.append(f"  exact too: {', '.join(also)} (later in the preference order)")
        if others:
            lines.append(f"  not exact: {', '.join(others)}; `--verbose` says why")
        return "\n".join(lines) + "\n"
    for candidate, reasons in canonical.reasons.items():
        if not reasons:
            lines.append(f"  {candidate}: exact too (later in the preference order)")
            continue
        lines.append(f"  not {candidate}:")
        lines.extend(f"    - {reason}" for reason in reasons)
    return "\n".join(lines) + "\n"


def _layers_row(outcome: CheckOutcome, layers: int | None) -> str:
    """``64``, or for a family whose decoder layer is a mixer and its FFN, how 64 relates to its 32."""
    from patternc.wording import layers_text

    pattern = outcome.analysis.pattern
    if pattern is None or outcome.spec is None:
        return str(layers)
    return layers_text(pattern.flat, outcome.spec.source)


def _clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text):,} characters)"


def render_summary(
    outcome: CheckOutcome | Analysis,
    *,
    color: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    filtered: int = 0,
) -> str:
    """The text ``check`` prints: summary rows, diagnostics, canonical verdict, targets, verdict line.

    ``quiet`` keeps only the errors and the verdict (the verdict still counts every warning, so it
    never says less than the full output would); ``filtered`` is how many warnings and notes
    ``--select``/``--ignore`` removed, which the verdict line mentions.
    """
    if isinstance(outcome, Analysis):
        outcome = CheckOutcome(outcome)
    analysis = outcome.analysis
    lines: list[str] = []
    report = build_report(outcome)
    if not quiet and report.pattern is not None and report.counts is not None and report.stages is not None:
        attention = report.attention_layers or []
        shown = ", ".join(str(i) for i in attention[:32]) + (" …" if len(attention) > 32 else "")
        rows = [
            ("pattern", _clip(report.pattern)),
            ("layers", _layers_row(outcome, report.layers)),
            ("counts", "  ".join(f"{symbol} {count}" for symbol, count in report.counts.items())),
            ("attention", f"{shown} (0-based)" if attention else "none"),
            (
                "stages",
                f"{len(report.stages)}: " + _clip(" | ".join(f"{len(s)}" for s in report.stages))
                if len(report.stages) > 1
                else "1",
            ),
            (
                "mtp",
                f"{report.mtp.pattern} × {report.mtp.depths} depth{'s' if report.mtp.depths > 1 else ''}"
                if report.mtp
                else "none",
            ),
            ("family", f"{report.family} ({report.family_description})"),
        ]
        width = max(len(key) for key, _ in rows)
        lines.extend(f"{key:<{width}}  {value}" for key, value in rows)
        lines.append("")
    body = "\n".join(lines)
    printed = [d for d in analysis.diagnostics if not quiet or d.severity is Severity.ERROR]
    if printed:
        body += render_text(printed, analysis.source, color=color) + "\n"
    if outcome.canonical is not None and not quiet:
        body += _canonical_text(outcome.canonical, verbose)
    if outcome.table and not quiet:
        from patternc.targets import render_table

        body += "\n" + render_table(dict(outcome.targets)) + "\n"
    else:
        for name, target_found in outcome.targets.items():
            verdict_text = "no" if has_errors(target_found) else "ok"
            if quiet and verdict_text == "ok":
                continue
            body += f"\ntarget {name}: {verdict_text}\n"
            target_shown = [d for d in target_found if not quiet or d.severity is Severity.ERROR]
            if target_shown:
                body += render_text(target_shown, analysis.source, color=color) + "\n"
    counted = [*analysis.diagnostics]
    if not outcome.table:
        counted.extend(d for target_found in outcome.targets.values() for d in target_found)
    errors = sum(d.severity is Severity.ERROR for d in counted) + analysis.hidden[0]
    warnings = sum(d.severity is Severity.WARNING for d in counted) + analysis.hidden[1]
    verdict = "ok" if outcome.ok else "failed"
    suffix = f" ({filtered} hidden by --select/--ignore)" if filtered else ""
    body += f"{verdict}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}{suffix}\n"
    return body
