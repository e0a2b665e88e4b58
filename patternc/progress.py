"""Progress for long work, on stderr, only where a person watches it.

``patternc build --weights`` converts tens of gigabytes tensor by tensor, and ``patternc run`` decodes
token by token; without a sign of life both look hung.  A bar is drawn on stderr (stdout stays the
result, or the ``--json`` object) and only when stderr is a terminal: a log file, a pipe or a CI
capture gets nothing, and ``--quiet`` turns it off too.  rich draws it, imported only when a bar is
shown (never on ``patternc check``'s path).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any


def watched(stream: IO[str] | None = None, *, quiet: bool = False) -> bool:
    """Whether progress should be drawn on ``stream`` (stderr by default): a terminal, and not ``--quiet``."""
    if quiet:
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _console(stream: IO[str] | None) -> Any:
    from rich.console import Console

    return Console(file=stream if stream is not None else sys.stderr, highlight=False)


class ConversionBar:
    """A ``patternc.backends.Progress`` that draws bytes and tensors as a rich bar.

    It counts what it was told (``tensors``, ``done_tensors``, ``done_bytes``) whatever it draws, so
    the counting is testable without a terminal.
    """

    def __init__(self, description: str = "converting", stream: IO[str] | None = None) -> None:
        self.description = description
        self.stream = stream
        self.tensors = 0
        self.total_bytes = 0
        self.done_tensors = 0
        self.done_bytes = 0
        self._bar: Any = None
        self._task: Any = None

    def start(self, tensors: int, total_bytes: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.tensors, self.total_bytes = tensors, total_bytes
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[done]}/{task.fields[of]} tensors"),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=_console(self.stream),
            transient=False,
        )
        self._task = self._bar.add_task(self.description, total=max(total_bytes, 1), done=0, of=tensors)
        self._bar.start()

    def advance(self, nbytes: int) -> None:
        self.done_tensors += 1
        self.done_bytes += nbytes
        if self._bar is not None:
            self._bar.update(self._task, advance=nbytes, done=self.done_tensors)

    def finish(self) -> None:
        if self._bar is not None and self.total_bytes == 0:
            self._bar.update(self._task, completed=1)
        self.close()

    def close(self) -> None:
        """Stop drawing (also after a failure, so that the terminal is left clean)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def conversion_bar(*, quiet: bool = False, stream: IO[str] | None = None) -> ConversionBar | None:
    """A bar for a weight conversion when stderr is watched, else None (nothing is drawn)."""
    return ConversionBar(stream=stream) if watched(stream, quiet=quiet) else None


@dataclass
class TokenClock:
    """Times ``generate``: the prompt (up to the first new token) and the decode steps after it.

    ``tick(n)`` is ``generate``'s ``on_token`` callback; ``sync`` waits for the device (a CUDA
    model's kernels run asynchronously, so without it the clock would time the launches only).
    ``show`` draws a live line on a watched stderr.
    """

    rows: int = 1
    sync: Callable[[], None] | None = None
    show: bool = False
    stream: IO[str] | None = None
    now: Callable[[], float] = time.perf_counter
    started: float = 0.0
    first: float | None = None
    last: float | None = None
    steps: int = 0
    _live: Any = field(default=None, repr=False)
    _task: Any = field(default=None, repr=False)

    def begin(self, planned: int) -> None:
        self.started = self.now()
        if self.show and planned > 0:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._live = Progress(
                TextColumn("generating"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("tokens {task.fields[rate]}"),
                console=_console(self.stream),
                transient=True,
            )
            self._task = self._live.add_task("generating", total=planned, rate="")
            self._live.start()

    def tick(self, count: int) -> None:
        if self.sync is not None:
            self.sync()
        moment = self.now()
        if self.first is None:
            self.first = moment
        self.last, self.steps = moment, count
        if self._live is not None:
            rate = self.decode_rate()
            self._live.update(self._task, completed=count, rate=f"{rate:,.1f} tokens/s" if rate else "")

    def end(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @property
    def prefill_seconds(self) -> float | None:
        return None if self.first is None else self.first - self.started

    @property
    def decode_seconds(self) -> float | None:
        return None if self.first is None or self.last is None else self.last - self.first

    def decode_rate(self) -> float | None:
        """New tokens per second of the decode steps, over every row (the first token belongs to the prompt)."""
        seconds = self.decode_seconds
        if seconds is None or self.steps < 2 or seconds <= 0:
            return None
        return (self.steps - 1) * self.rows / seconds

    def summary(self, prompt_tokens: int) -> str:
        """One line for stderr: the prompt's time and the decode speed."""
        prefill = self.prefill_seconds
        if prefill is None:
            return "generated no tokens"
        rows = f" x {self.rows} rows" if self.rows > 1 else ""
        tokens = f"{self.steps} token{'s' * (self.steps != 1)}"
        prompt = f"{prompt_tokens} token{'s' * (prompt_tokens != 1)}"
        text = f"generated {tokens}{rows}: prompt ({prompt}) {prefill:.2f} s"
        rate = self.decode_rate()
        if rate is not None:
            text += f", decoding {rate:,.1f} tokens/s"
        return text
