"""The golden corpus: every config fixture, one config per family, and 200 generated patterns.

The patterns are drawn by a seeded ``random.Random`` (not hypothesis) so that the corpus is the
same text on every machine; about one in eight is invalid on purpose (unknown symbols, unmatched
brackets, empty stages), so diagnostics are pinned as well as results.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class PatternCase:
    name: str
    text: str
    dialect: str


def config_files() -> dict[str, Path]:
    """Case name → config.json: the repository's hub fixtures and the stored family configs."""
    found: dict[str, Path] = {}
    for group in ("hub", "hub2", "megatron"):
        for path in sorted((ROOT / "tests" / "fixtures" / group).glob("*/config.json")):
            found[f"{group}-{path.parent.name}"] = path
    for path in sorted(CONFIGS.glob("*.json")):
        found[f"family-{path.stem}"] = path
    return found


def _run(rng: random.Random, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))


def _patternc(rng: random.Random) -> str:
    attention = rng.choice(["*", "*", "D", "+", "D+"])
    alphabet = "MM--E" + ("G" if rng.random() < 0.2 else "") + attention
    parts: list[str] = []
    for _ in range(rng.randint(1, 4)):
        piece = _run(rng, alphabet)
        roll = rng.random()
        if roll < 0.25:
            piece = f"({piece}){{{rng.randint(1, 5)}}}"
        elif roll < 0.35:
            piece = f"({piece})×{rng.randint(2, 4)}" if rng.random() < 0.5 else f"{piece} {piece}"
        parts.append(piece)
    text = ("|" if rng.random() < 0.2 else " ").join(parts)
    if rng.random() < 0.2:
        text += "/" + _run(rng, alphabet)
    return text


def _megatron(rng: random.Random) -> str:
    alphabet = "MM--E" + rng.choice(["*", "D", "+", "D+"]) + ("G" if rng.random() < 0.3 else "")
    stages = [_run(rng, alphabet) for _ in range(rng.randint(1, 3))]
    text = "|".join(stages)
    depth_block = _run(rng, alphabet)
    return text + ("/" + depth_block) * rng.randint(0, 2)


def _hf(rng: random.Random) -> str:
    return _run(rng, "MM--*E") + _run(rng, "M-*E")


def _broken(rng: random.Random) -> str:
    good = _patternc(rng)
    where = rng.randint(0, len(good))
    return good[:where] + rng.choice(["X", "(", ")", "{2}", "3", "||", "/", "é", "  q"]) + good[where:]


def patterns(count: int = 200) -> list[PatternCase]:
    """``count`` generated patterns over the three dialects, a fixed share of them invalid."""
    rng = random.Random(13)
    makers = [("patternc", _patternc)] * 4 + [("megatron", _megatron)] * 2 + [("hf", _hf), ("patternc", _broken)]
    cases: list[PatternCase] = []
    seen: set[tuple[str, str]] = set()
    while len(cases) < count:
        dialect, make = rng.choice(makers)
        text = make(rng)
        if (text, dialect) in seen:
            continue
        seen.add((text, dialect))
        cases.append(PatternCase(f"p{len(cases):03d}", text, dialect))
    return cases
