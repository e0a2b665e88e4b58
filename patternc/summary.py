"""The human-readable summary ``patternc check`` prints above its diagnostics."""

from __future__ import annotations

from patternc.api import Analysis
from patternc.codes import Severity
from patternc.render import render_text
from patternc.report import build_report


def _clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text):,} characters)"


def render_summary(analysis: Analysis, *, color: bool = False) -> str:
    lines: list[str] = []
    report = build_report(analysis)
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
    errors = sum(d.severity is Severity.ERROR for d in analysis.diagnostics)
    warnings = sum(d.severity is Severity.WARNING for d in analysis.diagnostics)
    verdict = "ok" if errors == 0 else "failed"
    body += f"{verdict}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}\n"
    return body
