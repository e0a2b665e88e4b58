"""Source text and spans.

A ``Span`` is a 0-based, half-open range of character offsets into the source text.  Lines and
columns (1-based, like lark, rustc and ruff) are computed only when a diagnostic is rendered,
so the IR and the passes never carry them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """Characters ``[start, end)`` of the source."""

    start: int
    end: int

    @staticmethod
    def at(offset: int, length: int = 1) -> Span:
        return Span(offset, offset + length)


@dataclass(frozen=True, slots=True)
class Source:
    """The text being compiled and where it came from (``<argv>``, ``<stdin>``, a path)."""

    text: str
    origin: str = "<input>"
    _line_starts: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def line_starts(self) -> tuple[int, ...]:
        if not self._line_starts:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos != -1:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            object.__setattr__(self, "_line_starts", tuple(starts))
        return self._line_starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset (the end of input is a valid offset)."""
        starts = self.line_starts()
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def line_text(self, line: int) -> str:
        starts = self.line_starts()
        begin = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[begin:end]
