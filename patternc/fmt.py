"""``patternc fmt``: the canonical compact spelling of a pattern, with repetition factored.

The form is deterministic and round-trips: ``parse(fmt(p)) == p``.  Up to ``EXACT_LIMIT``
characters per part it is the *shortest* spelling in the patternc dialect (dynamic programming
over substrings, ties broken towards the plain string and then the leftmost split); longer parts
use a greedy left-to-right factoring of tandem repeats, which is linear in practice.
"""

from __future__ import annotations

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
    main = compact("|".join(pattern.stage_strings()))
    if pattern.mtp is None:
        return main
    return main + ("/" + compact(pattern.mtp.flat)) * pattern.mtp.depths


def _repeat(unit: str, count: int) -> str:
    # Only a layer symbol takes `{n}` directly; `|` is no atom of the grammar, so `(|){n}`.
    return (unit if len(unit) == 1 and unit != "|" else f"({unit})") + f"{{{count}}}"


def compact(text: str) -> str:
    """Shortest (or, for long text, greedily factored) spelling of a flat string."""
    if len(text) <= EXACT_LIMIT:
        return _shortest(text)
    return _greedy(text)


def _shortest(text: str) -> str:
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
                if len(candidate) < len(choice):
                    choice = candidate
            period = (sub + sub).find(sub, 1)
            if period < length:
                repeated = _repeat(best[i][i + period - 1], length // period)
                if len(repeated) < len(choice):
                    choice = repeated
            row_i[j] = choice
    return best[0][n - 1] if n else ""


@lru_cache(maxsize=4096)
def _unit_spelling(unit: str) -> str:
    """``compact`` of a repeated unit (at most ``GREEDY_PERIOD`` characters), remembered: long parts
    offer the same units at many positions."""
    return compact(unit)


def _greedy(text: str) -> str:
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
            if period * count - len(_repeat("M", count)) <= best_saving:
                continue
            saving = period * count - len(_repeat(_unit_spelling(unit), count))
            if saving > best_saving:
                best_saving, best = saving, (period, count)
        period, count = best
        if best_saving > 0:
            out.append(compact(text[literal_start:i]) if i - literal_start <= LITERAL_LIMIT else text[literal_start:i])
            out.append(_repeat(_unit_spelling(text[i : i + period]), count))
            i += period * count
            literal_start = i
        else:
            i += 1
    tail = text[literal_start:]
    out.append(compact(tail) if len(tail) <= LITERAL_LIMIT else tail)
    return "".join(out)
