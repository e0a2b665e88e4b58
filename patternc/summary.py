"""The human-readable summary ``patternc check`` prints above its diagnostics."""

from __future__ import annotations

from typing import Any

from patternc.api import Analysis
from patternc.check import CheckOutcome
from patternc.codes import Severity
from patternc.diagnostics import has_errors
from patternc.render import render_text
from patternc.report import build_report


def _canonical_text(canonical: Any) -> str:
    lines = [f"\ncanonical  {canonical.architecture or 'none (no transformers architecture is exact)'}"]
    for candidate, reasons in canonical.reasons.items():
        if not reasons:
            lines.append(f"  {candidate}: exact too (later in the preference order)")
            continue
        lines.append(f"  not {candidate}:")
        lines.extend(f"    - {reason}" for reason in reasons)
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text):,} characters)"


def render_summary(outcome: CheckOutcome | Analysis, *, color: bool = False) -> str:
    if isinstance(outcome, Analysis):
        outcome = CheckOutcome(outcome)
    analysis = outcome.analysis
    lines: list[str] = []
    report = build_report(outcome)
    if report.pattern is not None and report.counts is not None and report.stages is not None:
        attention = report.attention_layers or []
        shown = ", ".join(str(i) for i in attention[:32]) + (" …" if len(attention) > 32 else "")
        rows = [
            ("pattern", _clip(report.pattern)),
            ("layers", str(report.layers)),
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
    if analysis.diagnostics:
        body += render_text(analysis.diagnostics, analysis.source, color=color) + "\n"
    if outcome.canonical is not None:
        body += _canonical_text(outcome.canonical)
    if outcome.table:
        from patternc.targets import render_table

        body += "\n" + render_table(outcome.targets) + "\n"
    else:
        for name, target_found in outcome.targets.items():
            verdict_text = "no" if has_errors(target_found) else "ok"
            body += f"\ntarget {name}: {verdict_text}\n"
            if target_found:
                body += render_text(target_found, analysis.source, color=color) + "\n"
    counted = [*analysis.diagnostics]
    if not outcome.table:
        counted.extend(d for target_found in outcome.targets.values() for d in target_found)
    errors = sum(d.severity is Severity.ERROR for d in counted) + analysis.hidden[0]
    warnings = sum(d.severity is Severity.WARNING for d in counted) + analysis.hidden[1]
    verdict = "ok" if outcome.ok else "failed"
    body += f"{verdict}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}\n"
    return body
