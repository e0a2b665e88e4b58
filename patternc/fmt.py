"""``patternc fmt``: the canonical compact spelling of a pattern, with repetition factored.

The form is deterministic and round-trips: ``parse(fmt(p)) == p``.  Up to ``EXACT_LIMIT``
characters per part it is the *shortest* spelling in the patternc dialect (dynamic programming
over substrings, ties broken towards the plain string and then the leftmost split); longer parts
use a greedy left-to-right factoring of tandem repeats, which is linear in practice.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from patternc.ir import Pattern

EXACT_LIMIT = 160
"""Parts up to this many characters get the provably shortest form (cubic time)."""
GREEDY_PERIOD = 48
"""Longest repeated unit the greedy factoring looks for in longer parts."""
LITERAL_LIMIT = 64
"""In longer parts, stretches between factored repeats up to this long get the shortest form too;
longer ones are kept as they are (the exact search is cubic: 160 characters cost ~25 ms, and a
100,000-character part has thousands of stretches)."""


def fmt(pattern: Pattern) -> str:
    if pattern.has_parallel:
        return _fmt_parallel(pattern)
    main = compact("|".join(pattern.stage_strings()))
    if pattern.mtp is None:
        return main
    return main + ("/" + compact(pattern.mtp.flat)) * pattern.mtp.depths


_PRIVATE_USE = 0xE000
"""First stand-in character for a parallel layer: Unicode's private-use area, which no layer symbol
can use (``kinds.register`` takes only printable characters, and these are not)."""


def _fmt_parallel(pattern: Pattern) -> str:
    """``fmt`` of a pattern with parallel layers: each distinct ``[*M]`` becomes one stand-in
    character, the string is factored as usual (so ``[*M]-[*M]-`` is ``([*M]-){2}`` and a run of
    them ``[*M]{4}``), and the stand-ins are spelled back.  The search weighs each stand-in as the
    characters it stands for, so the result is the shortest spelling here too."""
    stand_in: dict[str, str] = {}

    def encode(spelled: tuple[str, ...]) -> str:
        out = []
        for spelling in spelled:
            if len(spelling) > 1:
                spelling = stand_in.setdefault(spelling, chr(_PRIVATE_USE + len(stand_in)))
            out.append(spelling)
        return "".join(out)

    main_text = "|".join(encode(stage) for stage in pattern.stage_spellings())
    mtp_text = encode(pattern.mtp.spelled) if pattern.mtp is not None else ""
    extra = {char: len(spelling) - 1 for spelling, char in stand_in.items()}

    def width(text: str) -> int:
        return len(text) + sum(extra[c] * text.count(c) for c in extra)

    main = compact(main_text, width)
    text = main if pattern.mtp is None else main + ("/" + compact(mtp_text, width)) * pattern.mtp.depths
    for spelling, char in stand_in.items():
        text = text.replace(char, spelling)
    return text


def _repeat(unit: str, count: int) -> str:
    # Only a layer symbol takes `{n}` directly; `|` is no atom of the grammar, so `(|){n}`.
    return (unit if len(unit) == 1 and unit != "|" else f"({unit})") + f"{{{count}}}"


Width = Callable[[str], int]
"""How long a spelling is: ``len``, or a weighting that counts a stand-in as the text it stands for."""


def compact(text: str, width: Width = len) -> str:
    """Shortest (or, for long text, greedily factored) spelling of a flat string."""
    if len(text) <= EXACT_LIMIT:
        return _shortest(text, width)
    return _greedy(text, width)


def _shortest(text: str, width: Width = len) -> str:
    n = len(text)
    best: list[list[str]] = [[""] * n for _ in range(n)]
    for length in range(1, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            sub = text[i : j + 1]
            choice = sub
            row_i = best[i]
            for k in range(i, j):
                candidate = row_i[k] + best[k + 1][j]
                if width(candidate) < width(choice):
                    choice = candidate
            period = (sub + sub).find(sub, 1)
            if period < length:
                repeated = _repeat(best[i][i + period - 1], length // period)
                if width(repeated) < width(choice):
                    choice = repeated
            row_i[j] = choice
    return best[0][n - 1] if n else ""


@lru_cache(maxsize=4096)
def _unit_spelling(unit: str) -> str:
    """``compact`` of a repeated unit (at most ``GREEDY_PERIOD`` characters), remembered: long parts
    offer the same units at many positions."""
    return compact(unit)


def _greedy(text: str, width: Width = len) -> str:
    spell = _unit_spelling if width is len else (lambda unit: compact(unit, width))
    out: list[str] = []
    literal_start = 0
    i = 0
    n = len(text)
    while i < n:
        best_saving, best = 0, (0, 0)
        for period in range(1, min(GREEDY_PERIOD, (n - i) // 2) + 1):
            unit = text[i : i + period]
            count = 1
            while text.startswith(unit, i + count * period):
                count += 1
            if count < 2:
                continue
            # the unit's spelling is at least one character: skip factoring it when even that could
            # not beat the best saving so far (the cubic search is the expensive part)
            if width(unit) * count - len(_repeat("M", count)) <= best_saving:
                continue
            saving = width(unit) * count - width(_repeat(spell(unit), count))
            if saving > best_saving:
                best_saving, best = saving, (period, count)
        period, count = best
        if best_saving > 0:
            literal = text[literal_start:i]
            out.append(compact(literal, width) if i - literal_start <= LITERAL_LIMIT else literal)
            out.append(_repeat(spell(text[i : i + period]), count))
            i += period * count
            literal_start = i
        else:
            i += 1
    tail = text[literal_start:]
    out.append(compact(tail, width) if len(tail) <= LITERAL_LIMIT else tail)
    return "".join(out)
