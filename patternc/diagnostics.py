"""Diagnostics: what every user-facing failure is.

A diagnostic has a stable code (severity comes from the code table), a message, the span it
points at, an optional help line, secondary labels and notes.  Passes *yield* diagnostics and
never raise for user errors; ``PatternError`` carries all of them at once for the raising API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from patternc.codes import BY_CODE, Severity
from patternc.source import Source, Span


@dataclass(frozen=True, slots=True)
class Label:
    """A secondary span with a short message (``- MLA here``)."""

    span: Span
    message: str = ""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span | None
    """None only for inputs that have no text (a Python list, a config value)."""
    label: str = ""
    """Short text printed beside the caret."""
    help: str | None = None
    secondary: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return BY_CODE[self.code].name

    def sort_key(self) -> tuple[int, int, str, str]:
        start = self.span.start if self.span is not None else -1
        end = self.span.end if self.span is not None else -1
        return (start, end, self.code, self.message)


def diag(
    code: str,
    message: str,
    span: Span | None,
    *,
    label: str = "",
    help: str | None = None,
    secondary: Iterable[Label] = (),
    notes: Iterable[str] = (),
) -> Diagnostic:
    """Build a diagnostic whose severity is the one the code table gives its code.

    An error always says what to do next: without a ``help`` of its own it points to the code's
    explanation, whose "Use instead" section is written for exactly that."""
    severity = BY_CODE[code].severity
    if help is None and severity is Severity.ERROR:
        help = f"`patternc explain {code}` says what it means and what to do instead"
    return Diagnostic(
        code=code,
        severity=severity,
        message=message,
        span=span,
        label=label,
        help=help,
        secondary=tuple(secondary),
        notes=tuple(notes),
    )


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Deterministic order: by position, then code, then message."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


class PatternError(ValueError):
    """Raised by the strict API (``parse``) with every diagnostic of the input at once."""

    def __init__(self, diagnostics: list[Diagnostic], source: Source) -> None:
        self.diagnostics = diagnostics
        self.source = source
        super().__init__()

    def __str__(self) -> str:
        from patternc.render import render_text

        return render_text(self.diagnostics, self.source)
