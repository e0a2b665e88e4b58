"""Rendering diagnostics: rustc/ruff-style text with carets, and plain data for ``--json``.

Text is deterministic and colour-free unless the caller asks for colour (the CLI does on a
terminal).  Long lines are windowed around the span so a 100,000-layer pattern prints a readable
excerpt, not the whole line.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from patternc.codes import Severity
from patternc.diagnostics import Diagnostic, Label
from patternc.source import Source, Span

WINDOW = 40
"""Characters of context kept on each side of a span on long lines."""

_COLORS = {Severity.ERROR: "\x1b[1;31m", Severity.WARNING: "\x1b[1;33m", Severity.NOTE: "\x1b[1;36m"}
_BOLD, _BLUE, _RESET = "\x1b[1m", "\x1b[1;34m", "\x1b[0m"


def span_json(span: Span | None, source: Source) -> dict[str, int] | None:
    if span is None:
        return None
    line, column = source.line_col(span.start)
    return {"start": span.start, "end": span.end, "line": line, "column": column}


def diagnostic_json(d: Diagnostic, source: Source) -> dict[str, object]:
    return {
        "code": d.code,
        "name": d.name,
        "severity": d.severity.value,
        "message": d.message,
        "span": span_json(d.span, source),
        "label": d.label,
        "help": d.help,
        "labels": [{"span": span_json(label.span, source), "message": label.message} for label in d.secondary],
        "notes": list(d.notes),
    }


_OUTPUT_FILTER: ContextVar[Callable[[Diagnostic], bool] | None] = ContextVar("patternc_output_filter", default=None)


@contextmanager
def output_filter(keep: Callable[[Diagnostic], bool] | None) -> Iterator[None]:
    """Within the block, ``render_text`` prints only the diagnostics ``keep`` accepts.

    The CLI sets it for the length of one command from ``--select``/``--ignore``/``--quiet``
    (``patternc.cli_common.PatternCommand``), so that every command, however it prints, gets the
    same noise control; library callers never set it and get every diagnostic.
    """
    token = _OUTPUT_FILTER.set(keep)
    try:
        yield
    finally:
        _OUTPUT_FILTER.reset(token)


def render_text(diagnostics: Iterable[Diagnostic], source: Source, *, color: bool = False) -> str:
    keep = _OUTPUT_FILTER.get()
    return "\n".join(render_one(d, source, color=color) for d in diagnostics if keep is None or keep(d))


def render_one(d: Diagnostic, source: Source, *, color: bool = False) -> str:
    def paint(text: str, style: str) -> str:
        return f"{style}{text}{_RESET}" if color else text

    head = paint(f"{d.severity.value}[{d.code}]", _COLORS[d.severity]) + paint(f": {visible(d.message)}", _BOLD)
    lines = [head]
    if d.span is not None:
        line_no, column = source.line_col(d.span.start)
        gutter = " " * len(str(line_no))
        lines.append(f"{gutter}{paint('-->', _BLUE)} {source.origin}:{line_no}:{column}")
        lines.append(f"{gutter} {paint('|', _BLUE)}")
        labels = _merged([Label(d.span, d.label), *d.secondary])
        for number, snippet in _snippets(labels, source, primary=d.span):
            lines.append(f"{number:>{len(gutter)}} {paint('|', _BLUE)} {snippet[0]}")
            for marker in snippet[1:]:
                style = _COLORS[d.severity] if marker.lstrip().startswith("^") else _BLUE
                lines.append(f"{gutter} {paint('|', _BLUE)} {paint(marker, style)}")
        lines.append(f"{gutter} {paint('|', _BLUE)}")
        prefix = f"{gutter} "
    else:
        prefix = " "
    for note in d.notes:
        lines.append(f"{prefix}= note: {visible(note)}")
    if d.help:
        lines.append(f"{prefix}= {paint('help', _BOLD)}: {visible(d.help)}")
    return "\n".join(lines) + "\n"


def _escape(c: str) -> str:
    """A control or format character (ESC, NUL, BEL, U+202E right-to-left override, zero-width
    space…) as the escape that names it; any other character as itself."""
    if unicodedata.category(c) not in ("Cc", "Cf") or c == "\t":
        return c
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def visible(text: str) -> str:
    """``text`` with its control and format characters escaped: a terminal shows what the input holds
    instead of obeying it (colours, a bell, text reversed), and carets stay under their characters."""
    if text.isprintable():
        return text
    return "".join(_escape(c) for c in text)


def _display_width(text: str) -> int:
    """Terminal columns ``text`` occupies once made ``visible``: wide (CJK, full-width) characters take
    two, an escaped control character its escape's length."""
    if text.isascii() and text.isprintable():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else len(_escape(c))
        for c in text
    )


def _merged(labels: list[Label]) -> list[Label]:
    """One label per span: labels that point at the same text (a config key standing for several
    layers) are printed as one line, their messages joined, instead of two identical carets."""
    by_span: dict[Span, list[str]] = {}
    for label in labels:
        by_span.setdefault(label.span, []).append(label.message)
    return [Label(span, "; ".join(m for m in messages if m)) for span, messages in by_span.items()]


def _snippets(labels: list[Label], source: Source, primary: Span) -> list[tuple[str, list[str]]]:
    """One excerpt per source line touched by a label: the (windowed) text and marker lines."""
    by_line: dict[int, list[Label]] = {}
    for label in labels:
        line, _ = source.line_col(label.span.start)
        by_line.setdefault(line, []).append(label)
    out: list[tuple[str, list[str]]] = []
    for line in sorted(by_line):
        text = source.line_text(line).expandtabs(1)
        line_start = source.line_starts()[line - 1]
        items = by_line[line]
        first = min(label.span.start for label in items) - line_start
        last = max(label.span.end for label in items) - line_start
        begin = max(0, first - WINDOW)
        end = min(len(text), max(last, first + 1) + WINDOW)
        shown = text[begin:end]
        shift = begin
        if begin > 0:
            shown = "…" + shown
            shift -= 1
        if end < len(text):
            shown += "…"
        markers: list[str] = []
        for label in sorted(items, key=lambda item: item.span != primary):
            column = label.span.start - line_start - shift
            covered = text[label.span.start - line_start : label.span.end - line_start]
            width = max(1, _display_width(covered))
            glyph = "^" if label.span == primary else "-"
            marker = " " * _display_width(shown[:column]) + glyph * width
            markers.append(f"{marker} {visible(label.message)}".rstrip())
        out.append((str(line), [visible(shown.rstrip("\n")), *markers]))
    return out
