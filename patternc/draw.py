"""A picture of a pattern: the layer stack as a coloured strip, in SVG or in an HTML page.

``picture_of(pattern)`` describes what to draw (a ``Picture``: the layers, the pipeline stages or
split segments, the MTP block, optional per-layer bar values); ``render_svg`` / ``render_html``
turn it into text; ``publish_file`` writes it atomically.  ``patternc draw`` and
``patternc split --draw`` are thin layers over these (``docs/draw.md`` describes the picture).

Why plain string building: the output must be byte-identical for the same input (a test diffs
two runs), light to import (``patternc check`` never loads this, but ``draw`` should start as
quickly), and safe for any input text: every string that comes from the user (a path, a pattern,
a label) goes through ``_text``, which escapes XML's special characters and replaces the
characters XML 1.0 cannot hold at all (control characters, lone surrogates from undecodable
argv bytes), so the file always parses.

Readability at any size: up to ``COLLAPSE_ABOVE`` layers every layer is one cell, wrapped into
rows of ``ROW_CELLS`` cells.  Above it, each stage is factored into runs of a repeated block
(``factor``), and a run is drawn once inside a bracket labelled ``×k``, so a 10,000-layer
periodic stack is a handful of cells; what does not repeat is still drawn cell by cell.  Every
cell carries ``data-layers`` (how many layers it stands for), so the layers drawn always add up
to the layers of the model (the browser test counts them).
"""

from __future__ import annotations

import html
import os
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from patternc.ir import Pattern
from patternc.kinds import BY_SYMBOL, kinds
from patternc.render import visible

COLLAPSE_ABOVE = 200
"""``--collapse auto`` draws every layer up to this many main layers, and collapses runs above it."""
MAX_PERIOD = 96
"""Longest repeated block ``factor`` looks for (a group must fit in one row of ``WIDE_CELLS``)."""
ROW_CELLS = 50
"""Cells per row; ``WIDE_CELLS`` when more than ``WIDE_ABOVE`` cells are drawn or a run's block is longer."""
WIDE_CELLS = 100
WIDE_ABOVE = 1000
MAX_TABLE_ROWS = 256
"""The stage table lists at most this many stages (then a line says how many more there are)."""

# Layout, in CSS pixels.
PITCH = 16
CELL_W = 15
CELL_H = 20
MARGIN = 16
GUTTER = 64
BOUNDARY_W = 10
GROUP_PAD = 8
STAGE_BAND = 13
BAR_BAND = 40
TICK_BAND = 13
ROW_GAP = 8
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"


class Collapse(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class Format(StrEnum):
    SVG = "svg"
    HTML = "html"


SUFFIXES: dict[str, Format] = {".svg": Format.SVG, ".html": Format.HTML, ".htm": Format.HTML}


def format_for(path: str) -> Format | None:
    """The format a file name asks for (``.svg``, ``.html``, ``.htm``; any case), or None."""
    return SUFFIXES.get(Path(path).suffix.lower())


@dataclass(frozen=True, slots=True)
class Segment:
    """A pipeline stage (``|``) or a segment of a split: the main layers ``[start, stop)``."""

    start: int
    stop: int
    label: str = ""
    """What the stage table says beside the layers (a split's rank and virtual stage)."""
    cost: int | None = None
    """The stage's cost for the table (a split's, fixed extras included), or None."""
    extra: str = ""
    """What the cost includes besides the layers (``+embedding``)."""


@dataclass(frozen=True, slots=True)
class Picture:
    """What a drawing shows; independent of the format and of the layout."""

    title: str
    main: str
    """The main layers, one symbol each."""
    segments: tuple[Segment, ...]
    """Stages that tile ``main`` in order (one segment when there is no ``|``)."""
    mtp: str = ""
    """The layers of one MTP depth (empty: no MTP)."""
    depths: int = 0
    bars: tuple[int, ...] | None = None
    """One non-negative value per main layer (bar heights), or None for no bars."""
    mtp_bars: tuple[int, ...] | None = None
    """One value per layer of an MTP depth (with ``bars``)."""
    bar_label: str = ""
    """What the bars measure (``parameters per layer``)."""
    cost_label: str = ""
    """What the stage costs measure."""
    subtitle: tuple[str, ...] = ()
    """Lines printed under the title (the sizes used, the source's family)."""
    segment_word: str = "stage"

    def __post_init__(self) -> None:
        """Refuse an inconsistent picture (an API caller's mistake) before anything is laid out."""
        unknown = sorted(set(self.main + self.mtp) - set(BY_SYMBOL))
        if unknown:
            raise ValueError(f"not layer symbols: {unknown}")
        at = 0
        for segment in self.segments:
            if segment.start != at or segment.stop < segment.start:
                raise ValueError("the segments must tile the main layers in order")
            at = segment.stop
        if at != len(self.main) or not self.segments:
            raise ValueError("the segments must cover every main layer")
        if (self.depths > 0) != bool(self.mtp) or self.depths < 0:
            raise ValueError("an MTP block has layers and at least one depth")
        for values, layers in ((self.bars, self.main), (self.mtp_bars, self.mtp)):
            if values is not None and (len(values) != len(layers) or min(values, default=0) < 0):
                raise ValueError("bars: one non-negative value per layer")


def picture_of(
    pattern: Pattern,
    title: str,
    *,
    bars: Sequence[int] | None = None,
    mtp_bars: Sequence[int] | None = None,
    bar_label: str = "",
    subtitle: Sequence[str] = (),
) -> Picture:
    """A picture of ``pattern`` with its own ``|`` stages (each stage's cost is its bars' sum)."""
    segments = tuple(
        Segment(
            stage.start,
            stage.stop,
            cost=sum(bars[stage.start : stage.stop]) if bars is not None else None,
        )
        for stage in pattern.stages
    )
    mtp = pattern.mtp
    return Picture(
        title=title,
        main=pattern.flat,
        segments=segments,
        mtp=mtp.flat if mtp is not None else "",
        depths=mtp.depths if mtp is not None else 0,
        bars=tuple(bars) if bars is not None else None,
        mtp_bars=tuple(mtp_bars) if mtp_bars is not None and mtp is not None else None,
        bar_label=bar_label,
        cost_label=bar_label.replace(" per layer", "") if bars is not None else "",
        subtitle=tuple(subtitle),
    )


# -- factoring runs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """``unit`` repeated ``repeat`` times, starting at main layer ``start`` (a run, or one layer)."""

    start: int
    unit: str
    repeat: int = 1

    @property
    def layers(self) -> int:
        return len(self.unit) * self.repeat


def factor(symbols: str, offset: int = 0) -> list[Item]:
    """Cover ``symbols`` greedily, left to right, with runs of a repeated block and single layers.

    At each position the block (up to ``MAX_PERIOD`` layers) whose repetition covers the most
    layers wins (the shortest block on ties); a run is taken when it saves at least four cells
    over drawing its layers (``len(unit) * (repeat - 1) >= 4``), else one layer is drawn.  Not the
    shortest factoring in general, but linear in practice (``MAX_PERIOD`` probes per position)
    and it collapses the periodic stacks that long models are made of.
    """
    items: list[Item] = []
    i, n = 0, len(symbols)
    pending = i  # start of the layers not yet covered by a run
    while i < n:
        best_p, best_k = 1, 1
        here = symbols[i]
        for p in range(1, min(MAX_PERIOD, (n - i) // 2) + 1):
            if symbols[i + p] != here:  # cheap rejection first: most blocks do not repeat here
                continue
            unit = symbols[i : i + p]
            j = i + p
            if not symbols.startswith(unit, j):
                continue
            k = 2
            j += p
            while symbols.startswith(unit, j):
                k += 1
                j += p
            if p * k > best_p * best_k:
                best_p, best_k = p, k
        if best_k >= 2 and best_p * (best_k - 1) >= 4:
            items.extend(Item(offset + s, symbols[s]) for s in range(pending, i))
            items.append(Item(offset + i, symbols[i : i + best_p], best_k))
            i += best_p * best_k
            pending = i
        else:
            i += 1
    items.extend(Item(offset + s, symbols[s]) for s in range(pending, n))
    return items


def _items(picture: Picture, collapse: Collapse) -> list[list[Item]]:
    """The items of each segment: every layer, or runs collapsed (``Collapse``)."""
    folded = collapse is Collapse.ALWAYS or (collapse is Collapse.AUTO and len(picture.main) > COLLAPSE_ABOVE)
    out: list[list[Item]] = []
    for segment in picture.segments:
        text = picture.main[segment.start : segment.stop]
        if folded:
            out.append(factor(text, segment.start))
        else:
            out.append([Item(segment.start + s, c) for s, c in enumerate(text)])
    return out


# -- text and numbers ----------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot carry (even escaped) shown as ``\\xNN``/``\\uNNNN``."""
    out = []
    for c in text:
        o = ord(c)
        if (o < 0x20 and c not in "\t\n\r") or 0x7F <= o < 0xA0 or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(c)
    return "".join(out)


def _text(text: str) -> str:
    """Escape ``text`` for XML/HTML character data and double-quoted attributes.

    Control and format characters are shown as escapes first (``visible``, as diagnostics show
    them), so a title cannot reverse or hide the text around it (U+202E, zero-width spaces)."""
    return html.escape(_clean(visible(text)), quote=True)


def _short(text: str, limit: int = 96) -> str:
    """One line of at most ``limit`` characters (a 10,000-layer pattern is not a title)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 1]}…"


def human(value: int) -> str:
    """``1.23 G`` style: three significant digits, decimal prefixes (exact values are in the tooltips)."""
    for unit, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return str(value)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


# -- layout ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    y: int
    first: int | None = None
    """Index of the first main layer drawn in this row."""
    parts: list[str] = field(default_factory=list)
    stage_labels: list[tuple[int, str]] = field(default_factory=list)
    ticks: list[tuple[int, str, bool]] = field(default_factory=list)
    """(x centre, text, must show): group labels must show, index ticks only where there is room."""


class _Canvas:
    """Flow layout of cells into rows; collects SVG fragments."""

    def __init__(self, picture: Picture, row_width: int, top: int) -> None:
        self.picture = picture
        self.bars = picture.bars is not None
        self.top_bar = max([*(picture.bars or ()), *(picture.mtp_bars or ()), 0])
        self.row_width = row_width
        self.rows: list[_Row] = []
        self.y = top
        self.x = 0
        self.cells = 0

    @property
    def row_height(self) -> int:
        return STAGE_BAND + (BAR_BAND if self.bars else 0) + CELL_H + TICK_BAND

    def new_row(self) -> _Row:
        if self.rows:
            self.y += self.row_height + ROW_GAP
        row = _Row(self.y)
        self.rows.append(row)
        self.x = 0
        return row

    def row(self, width: int) -> _Row:
        """The row to draw ``width`` more pixels in (a new one when they do not fit)."""
        if not self.rows or (self.x > 0 and self.x + width > self.row_width):
            return self.new_row()
        return self.rows[-1]

    @property
    def cell_y(self) -> int:
        return STAGE_BAND + (BAR_BAND if self.bars else 0)

    def cell(
        self, row: _Row, x: int, symbol: str, index: int, layers: int, part: str, value: int | None, tip: str
    ) -> None:
        """One layer cell (with its bar), standing for ``layers`` layers."""
        info = BY_SYMBOL[symbol]
        fill, ink = BY_SYMBOL[symbol].colours
        left = MARGIN + GUTTER + x
        y = row.y + self.cell_y
        if value is not None:
            tip += f"\n{self.picture.bar_label}: {value:,}"
        self.cells += 1
        parts = row.parts
        valued = f' data-value="{value}"' if value is not None else ""
        parts.append(
            f'<g class="cell" data-part="{part}" data-index="{index}" data-layers="{layers}" '
            f'data-kind="{info.kind}" data-symbol="{_text(symbol)}"{valued}>'
            f"<title>{_text(tip)}</title>"
        )
        if value is not None and self.top_bar > 0:
            height = BAR_BAND * 10 * value // self.top_bar / 10
            if value > 0 and height < 1:
                height = 1.0
            if height > 0:
                parts.append(
                    f'<rect class="bar" x="{left}" y="{y - 2 - height:g}" width="{CELL_W}" height="{height:g}" '
                    f'fill="{fill}" fill-opacity="0.55"/>'
                )
        parts.append(f'<rect x="{left}" y="{y}" width="{CELL_W}" height="{CELL_H}" rx="2" fill="{fill}"/>')
        parts.append(
            f'<text x="{left + CELL_W / 2:g}" y="{y + 14}" text-anchor="middle" fill="{ink}" '
            f'font-size="12" font-weight="bold">{_text(symbol)}</text></g>'
        )


def _stage_rows(canvas: _Canvas, items: list[list[Item]]) -> None:
    """Lay the main layers out: stages in order, a marker at each boundary, runs in brackets."""
    picture = canvas.picture
    bars = picture.bars
    many = len(picture.segments) > 1
    for number, (segment, stage_items) in enumerate(zip(picture.segments, items, strict=True)):
        if many:
            row = canvas.row(BOUNDARY_W)
            left = MARGIN + GUTTER + canvas.x
            y0 = row.y + 2
            y1 = row.y + canvas.cell_y + CELL_H + 2
            row.parts.append(
                f'<line class="boundary" data-stage="{number}" x1="{left + BOUNDARY_W // 2 - 1}" y1="{y0}" '
                f'x2="{left + BOUNDARY_W // 2 - 1}" y2="{y1}" stroke="#222" stroke-width="3"/>'
            )
            row.stage_labels.append((left + BOUNDARY_W - 1, f"{picture.segment_word[0]}{number}"))
            canvas.x += BOUNDARY_W
            if segment.start == segment.stop:
                continue
        for item in stage_items:
            unit = len(item.unit)
            grouped = item.repeat > 1
            width = unit * PITCH + (2 * GROUP_PAD if grouped else 0)
            row = canvas.row(width)
            if row.first is None:
                row.first = item.start
            x = canvas.x + (GROUP_PAD if grouped else 0)
            for offset, symbol in enumerate(item.unit):
                index = item.start + offset
                value = bars[index] if bars is not None else None
                kind = BY_SYMBOL[symbol].description
                if grouped:
                    last = item.start + (item.repeat - 1) * unit + offset
                    tip = f"layers {index}, {index + unit}, … {last}: {symbol} {kind} (×{item.repeat})"
                else:
                    tip = f"layer {index}: {symbol} {kind}"
                canvas.cell(row, x + offset * PITCH, symbol, index, item.repeat, "main", value, tip)
                if not grouped and index % 10 == 0:
                    row.ticks.append((MARGIN + GUTTER + x + offset * PITCH + CELL_W // 2, str(index), False))
            if grouped:
                left = MARGIN + GUTTER + canvas.x + 2
                top = row.y + canvas.cell_y - 3
                row.parts.append(
                    f'<rect class="group" data-repeat="{item.repeat}" x="{left}" y="{top}" '
                    f'width="{width - 4}" height="{CELL_H + 6}" rx="4" fill="none" stroke="#444" '
                    f'stroke-width="1.5"/>'
                )
                row.ticks.append((MARGIN + GUTTER + canvas.x + width // 2, f"×{item.repeat:,}", True))
            canvas.x += width


def _mtp_rows(canvas: _Canvas, collapse: Collapse) -> int:
    """The MTP block after the main stack: each depth a ``/`` part, or one part ``× depths``."""
    picture = canvas.picture
    if not picture.mtp:
        return canvas.y
    shown = _mtp_shown(picture, collapse)
    repeat = picture.depths // shown
    canvas.new_row()
    for depth in range(shown):
        width = BOUNDARY_W + len(picture.mtp) * PITCH
        row = canvas.row(width if width <= canvas.row_width else BOUNDARY_W + PITCH)  # a depth on one row if it fits
        left = MARGIN + GUTTER + canvas.x
        y = row.y + canvas.cell_y
        row.parts.append(
            f'<text class="mtp-separator" x="{left + BOUNDARY_W // 2 - 1}" y="{y + 16}" text-anchor="middle" '
            f'font-size="18" fill="#222">/</text>'
        )
        word = f"d{depth + 1}" if shown > 1 else (f"×{picture.depths} depths" if picture.depths > 1 else "d1")
        row.stage_labels.append((left, word))
        canvas.x += BOUNDARY_W
        for index, symbol in enumerate(picture.mtp):
            value = picture.mtp_bars[index] if picture.mtp_bars is not None else None
            which = f"every depth (×{repeat})" if repeat > 1 else f"depth {depth + 1}"
            tip = f"MTP {which}, layer {index}: {symbol} {BY_SYMBOL[symbol].description}"
            row = canvas.row(PITCH)
            canvas.cell(row, canvas.x, symbol, index, repeat, "mtp", value, tip)
            canvas.x += PITCH
        canvas.x += PITCH // 2
    return canvas.y


def _mtp_shown(picture: Picture, collapse: Collapse) -> int:
    """How many MTP depths are drawn: all of them, or one standing for all (collapsed)."""
    if not picture.mtp:
        return 0
    if collapse is Collapse.ALWAYS or (collapse is Collapse.AUTO and picture.depths * len(picture.mtp) > 64):
        return 1
    return picture.depths


def _row_text(canvas: _Canvas, row: _Row, heading: str | None) -> list[str]:
    """A row's labels: the gutter (first layer index), stage labels, ticks and run counts."""
    out: list[str] = []
    gutter = heading if heading is not None else (f"L{row.first}" if row.first is not None else "")
    if gutter:
        out.append(
            f'<text class="gutter" x="{MARGIN + GUTTER - 6}" y="{row.y + canvas.cell_y + 14}" text-anchor="end" '
            f'font-size="11" fill="#555">{_text(gutter)}</text>'
        )
    end = -1
    for x, label in row.stage_labels:
        if x >= end:
            out.append(
                f'<text class="stage-label" x="{x}" y="{row.y + 10}" font-size="10" fill="#222">{_text(label)}</text>'
            )
            end = x + 6 * len(label) + 4
    tick_y = row.y + canvas.cell_y + CELL_H + 11
    taken = [(x - 3 * len(t) - 2, x + 3 * len(t) + 2) for x, t, must in row.ticks if must]
    for x, label, must in row.ticks:
        lo, hi = x - 3 * len(label) - 2, x + 3 * len(label) + 2
        if not must:
            if any(lo < b and a < hi for a, b in taken):
                continue
            taken.append((lo, hi))
        cls = "repeat" if must else "tick"
        out.append(
            f'<text class="{cls}" x="{x}" y="{tick_y}" text-anchor="middle" font-size="9" '
            f'fill="{"#111" if must else "#777"}">{_text(label)}</text>'
        )
    return out


# -- the document ---------------------------------------------------------------------------------------


def _legend(picture: Picture, y: int) -> tuple[list[str], int]:
    main_counts = {s: picture.main.count(s) for s in BY_SYMBOL}
    mtp_counts = {s: picture.mtp.count(s) * picture.depths for s in BY_SYMBOL}
    out: list[str] = []
    x = MARGIN
    for info in kinds():
        symbol = info.symbol
        if not main_counts[symbol] and not mtp_counts[symbol]:
            continue
        fill, ink = BY_SYMBOL[symbol].colours
        count = f"{main_counts[symbol]:,}" + (f" + {mtp_counts[symbol]:,} MTP" if mtp_counts[symbol] else "")
        label = f"{info.description} ({count})"
        width = CELL_W + 8 + 7 * len(label) + 18
        if x + width > MARGIN + GUTTER + ROW_CELLS * PITCH and x > MARGIN:
            x = MARGIN
            y += 22
        out.append(
            f'<g class="legend" data-symbol="{_text(symbol)}"><rect x="{x}" y="{y}" width="{CELL_W}" '
            f'height="{CELL_H - 4}" rx="2" fill="{fill}"/><text x="{x + CELL_W / 2:g}" y="{y + 12}" '
            f'text-anchor="middle" fill="{ink}" font-size="11" font-weight="bold">{_text(symbol)}</text>'
            f'<text x="{x + CELL_W + 6}" y="{y + 12}" font-size="12" fill="#222">{_text(label)}</text></g>'
        )
        x += width
    return out, y + 22


def _table(picture: Picture, y: int) -> tuple[list[str], int]:
    """The stage table under the strip: layers and cost of each stage, with a cost bar."""
    out: list[str] = []
    segments = picture.segments
    if len(segments) < 2 and segments[0].cost is None:
        return out, y
    word = picture.segment_word
    head = f"{_plural(len(segments), word)}" + (f"; cost: {picture.cost_label}" if picture.cost_label else "")
    out.append(
        f'<text class="table-head" x="{MARGIN}" y="{y + 12}" font-size="12" fill="#222" '
        f'font-weight="bold">{_text(head)}</text>'
    )
    y += 20
    top = max((s.cost or 0 for s in segments), default=0)
    columns = (0, 84, 190, 290, 370, 580)
    for number, segment in enumerate(segments[:MAX_TABLE_ROWS]):
        size = segment.stop - segment.start
        layers = f"layers {segment.start}-{segment.stop - 1}" if size else "(empty)"
        cost = "" if segment.cost is None else f"{segment.cost:,}" + (f" {segment.extra}" if segment.extra else "")
        cells = (f"{word} {number}", segment.label, layers, f"({size:,})", "", cost)
        spans = "".join(
            f'<tspan x="{MARGIN + x}">{_text(cell)}</tspan>' for x, cell in zip(columns, cells, strict=True) if cell
        )
        out.append(
            f'<text class="table-row" data-stage="{number}" y="{y + 11}" font-size="11" fill="#222">{spans}</text>'
        )
        if segment.cost is not None and top > 0:
            length = 200 * 10 * segment.cost // top / 10
            out.append(f'<rect x="{MARGIN + columns[4]}" y="{y + 2}" width="{length:g}" height="10" fill="#888"/>')
        y += 16
    if len(segments) > MAX_TABLE_ROWS:
        more = len(segments) - MAX_TABLE_ROWS
        out.append(
            f'<text x="{MARGIN}" y="{y + 11}" font-size="11" fill="#555">… {_plural(more, "more " + word)}</text>'
        )
        y += 16
    return out, y


def _summary(picture: Picture, drawn: int) -> str:
    main = len(picture.main)
    words = [_plural(main, "layer")]
    if len(picture.segments) > 1:
        words.append(_plural(len(picture.segments), picture.segment_word))
    if picture.mtp:
        words.append(f"MTP {picture.depths}×{len(picture.mtp)}")
    total = main + picture.depths * len(picture.mtp)
    if drawn != total:
        words.append(f"{drawn:,} cells (runs collapsed)")
    return " · ".join(words)


@dataclass(frozen=True, slots=True)
class Drawing:
    svg: str
    """The ``<svg>`` element (no XML declaration: it is inlined as is in the HTML page)."""
    cells: int
    """Cells drawn (fewer than the layers when runs collapse)."""
    layers: int
    """Layers the cells stand for: the main layers plus each MTP depth's."""
    summary: str
    title: str


def draw(picture: Picture, collapse: Collapse = Collapse.AUTO) -> Drawing:
    """Lay ``picture`` out and build its SVG element."""
    items = _items(picture, collapse)
    drawn = sum(len(item.unit) for stage in items for item in stage)
    longest = max((len(item.unit) for stage in items for item in stage if item.repeat > 1), default=0)
    row_cells = WIDE_CELLS if drawn > WIDE_ABOVE or longest > ROW_CELLS - 2 else ROW_CELLS
    strip_width = row_cells * PITCH + 2 * GROUP_PAD
    width = MARGIN * 2 + GUTTER + strip_width
    body: list[str] = []
    y = MARGIN
    room = width - 2 * MARGIN  # monospace: 16px bold ~9.7px a character, 12px ~7.3px
    body.append(
        f'<text class="title" x="{MARGIN}" y="{y + 14}" font-size="16" font-weight="bold" fill="#111">'
        f"{_text(_short(picture.title, room // 10))}</text>"
    )
    y += 22
    drawn_layers = sum(item.layers for stage in items for item in stage)
    cells = drawn + _mtp_shown(picture, collapse) * len(picture.mtp)
    lines = [_summary(picture, cells), *picture.subtitle]
    if picture.bars is not None:
        top = max([*picture.bars, *(picture.mtp_bars or ()), 0])
        lines.append(f"bar height: {picture.bar_label} (tallest {top:,} = {human(top)})")
    for line in lines:  # wrapped to the picture's width, at most three lines each
        for part in textwrap.wrap(" ".join(line.split()), room * 10 // 75, max_lines=3, placeholder=" …"):
            body.append(
                f'<text class="subtitle" x="{MARGIN}" y="{y + 12}" font-size="12" fill="#333">{_text(part)}</text>'
            )
            y += 17
    legend, y = _legend(picture, y + 6)
    body.extend(legend)
    canvas = _Canvas(picture, strip_width, y + 6)
    _stage_rows(canvas, items)
    main_rows = len(canvas.rows)
    _mtp_rows(canvas, collapse)
    for number, row in enumerate(canvas.rows):
        body.extend(row.parts)
        body.extend(_row_text(canvas, row, "MTP" if number == main_rows else None))
    y = canvas.y + canvas.row_height + ROW_GAP
    table, y = _table(picture, y)
    body.extend(table)
    height = y + MARGIN
    mtp_layers = picture.depths * len(picture.mtp)
    layers = drawn_layers + mtp_layers
    title = _text(_short(picture.title))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}" data-layers="{layers}" '
        f'data-main-layers="{len(picture.main)}" data-mtp-layers="{mtp_layers}" data-cells="{canvas.cells}" '
        f'font-family="{FONT}">\n'
        f"<title>{title}</title>\n"
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>\n' + "\n".join(body) + "\n</svg>\n"
    )
    return Drawing(svg, canvas.cells, layers, _summary(picture, canvas.cells), picture.title)


def svg_document(drawing: Drawing) -> str:
    """A standalone SVG file."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + drawing.svg


def html_document(drawing: Drawing) -> str:
    """An HTML page holding the SVG inline (no script, no external resource)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_text(_short(drawing.title))}</title>\n"
        "<style>body{margin:0;background:#fff;color:#111;font-family:sans-serif}"
        "svg{display:block}</style>\n"
        "</head>\n<body>\n" + drawing.svg + "</body>\n</html>\n"
    )


def render(picture: Picture, fmt: Format, collapse: Collapse = Collapse.AUTO) -> tuple[str, Drawing]:
    """The file's text in ``fmt``, and the drawing it holds."""
    drawing = draw(picture, collapse)
    return (html_document(drawing) if fmt is Format.HTML else svg_document(drawing)), drawing


def render_svg(picture: Picture, collapse: Collapse = Collapse.AUTO) -> str:
    return svg_document(draw(picture, collapse))


def render_html(picture: Picture, collapse: Collapse = Collapse.AUTO) -> str:
    return html_document(draw(picture, collapse))


# -- writing ----------------------------------------------------------------------------------------------


class PublishError(OSError):
    """Why a picture was not written: ``exists`` (no ``force``), or another OS error."""

    def __init__(self, path: Path, reason: str, *, exists: bool = False) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.exists = exists


def publish_file(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, then one rename.

    Readers see the old file or the new one, never a part.  Without ``force`` the file is
    published with ``os.link`` (it fails if ``path`` exists, even when the file appeared after a
    first check), so an existing file is never replaced; with ``force`` ``os.replace`` replaces it
    (a symbolic link at ``path`` is replaced itself, not its target).  The file follows the umask,
    like any file a program creates.  ``PublishError`` says why nothing was written.
    """
    out = Path(path)
    parent = out.parent
    if (out.exists() or out.is_symlink()) and not force:
        raise PublishError(out, "exists", exists=True)
    if out.is_dir() and not out.is_symlink():
        raise PublishError(out, "is a directory")
    if not parent.is_dir():
        raise PublishError(out, f"the directory `{parent}` does not exist")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.patternc-draw-", dir=parent)
    except OSError as error:
        raise PublishError(out, error.strerror or type(error).__name__) from None
    tmp = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        if force:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)
            except FileExistsError:
                raise PublishError(out, "exists", exists=True) from None
            except OSError:  # a file system without hard links: check, then rename (a small race)
                if out.exists() or out.is_symlink():
                    raise PublishError(out, "exists", exists=True) from None
                os.replace(tmp, out)
    except PublishError:
        raise
    except OSError as error:
        raise PublishError(out, error.strerror or type(error).__name__) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
