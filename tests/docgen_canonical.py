"""Generate the family × family table of ``docs/canonical.md`` from the canonical map itself.

Each registered family has one *reference config* here (``REFERENCES``): a released config.json
vendored under ``tests/fixtures/hub*/`` where the repository has one, else the small config that
transformers' own config class writes for that family (``tests/golden/configs/``).  Each reference is
read by ``patternc.config.read_config`` and mapped by ``patternc.canonical.canonical_map``; the table
says, for every (reference, candidate) pair, "exact" or how many reasons the candidate fails on, and
the sections below it show those reasons, so no cell stands without a reason.  The table is spliced
between the ``family-table`` markers of ``docs/canonical.md`` by ``python tests/docgen.py --write``;
``tests/docs/test_docs_canonical.py`` fails when the committed text differs, when a registered
family has no reference here, or when a reference does not map to its own family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANONICAL_DOC = ROOT / "docs" / "canonical.md"
START = "<!-- family-table:start -->"
END = "<!-- family-table:end -->"
SHOWN_REASONS = 3
"""Reasons printed per refused pair; ``patternc check CONFIG --verbose`` prints them all."""

REFERENCES: dict[str, str] = {
    "nemotron_h": "tests/fixtures/hub/Nemotron-H-8B-Base-8K/config.json",
    "bamba": "tests/golden/configs/bamba.json",
    "granitemoehybrid": "tests/golden/configs/granitemoehybrid-moe.json",
    "jamba": "tests/fixtures/hub2/Jamba-1.5-Mini/config.json",
    "mamba2": "tests/golden/configs/mamba2.json",
    "qwen3_next": "tests/golden/configs/qwen3_next.json",
    "qwen3_5": "tests/fixtures/hub2/Qwen3.5-27B/config.json",
    "qwen3_5_moe": "tests/fixtures/hub2/Qwen3.6-35B-A3B-NVFP4/config.json",
    "olmo_hybrid": "tests/fixtures/hub2/Olmo-Hybrid-7B/config.json",
    "deepseek_v3": "tests/fixtures/hub2/DeepSeek-V3-0324-NVFP4/config.json",
    "deepseek_v32": "tests/fixtures/hub2/DeepSeek-V3.2-Exp/config.json",
    "kimi_linear": "tests/fixtures/hub2/Kimi-Linear-48B-A3B-Instruct/config.json",
    "bailing_hybrid": "tests/fixtures/hub2/Ling-3.0-flash/config.json",
    "falcon_h1": "tests/fixtures/hub2/Falcon-H1-0.5B-Instruct/config.json",
    "lfm2": "tests/fixtures/hub2/LFM2-1.2B/config.json",
    "lfm2_moe": "tests/fixtures/hub2/LFM2-8B-A1B/config.json",
    "minimax": "tests/golden/configs/minimax.json",
    "zamba2": "tests/golden/configs/zamba2.json",
}
"""Family -> the config its row is computed from (paths relative to the repository root)."""


@dataclass(frozen=True)
class Row:
    """One reference config read and mapped."""

    family: str
    path: str
    architecture: str | None
    """The canonical architecture, or None (not readable, or no exact candidate)."""
    matched: tuple[str, ...]
    reasons: dict[str, list[str]]
    problem: str | None
    """Why no spec was read (the error diagnostics' codes and messages), else None."""


def _row(family: str, path: str | None) -> Row:
    from patternc.canonical import canonical_map
    from patternc.config import read_config

    if path is None:
        return Row(family, "", None, (), {}, "no reference config in tests/docgen_canonical.py")
    reading = read_config(ROOT / path)
    if reading.spec is None:
        errors = [d for d in reading.diagnostics if d.severity.name == "ERROR"]
        problem = "; ".join(f"{d.code}: {d.message}" for d in errors) or "no model read"
        return Row(family, path, None, (), {}, problem)
    result = canonical_map(reading.spec)
    return Row(family, path, result.architecture, tuple(result.matched), result.reasons, None)


def rows() -> list[Row]:
    """One row per registered family, in registration order."""
    from patternc import families

    return [_row(name, REFERENCES.get(name)) for name in families.names()]


def _cell(row: Row, candidate: str) -> str:
    if row.problem is not None:
        return "·"
    if candidate == row.architecture:
        return "**exact**"
    if candidate in row.matched:
        return "exact"
    return f"✗ {len(row.reasons.get(candidate, []))}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _label(row: Row) -> str:
    where = Path(row.path).parent.name if row.path.startswith("tests/fixtures/") else "transformers class"
    return f"`{row.family}` ({where})" if row.path else f"`{row.family}`"


def _anchor(family: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", f"row-{family}".lower())


def generate_block() -> str:
    """The generated block (without its markers)."""
    from patternc import families

    table = rows()
    names = families.names()
    out = [
        "Rows: one reference config per family (a released config where the repository vendors one,",
        "else the small config transformers' config class writes), read and mapped by patternc. Columns:",
        "every candidate. **exact** = the chosen canonical architecture; exact = also exact, less preferred;",
        "✗ N = refused for N reasons, listed in the row's section below; · = the reference reads into no model.",
        "",
        "| reference ↓ · candidate → | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for row in table:
        cells = " | ".join(_cell(row, n) for n in names)
        out.append(f"| [{_label(row)}](#{_anchor(row.family)}) | {cells} |")
    for row in table:
        out += ["", f'<a id="{_anchor(row.family)}"></a>', f"### {_label(row)}", ""]
        if row.problem is not None:
            where = f"`{row.path}`: " if row.path else ""
            out.append(f"{where}not read into a model: {_escape(row.problem)}")
            continue
        out.append(f"`{row.path}` → canonical **`{row.architecture}`**.")
        out.append("")
        for name in names:
            if name == row.architecture:
                continue
            reasons = row.reasons.get(name, [])
            if not reasons:
                out.append(f"- `{name}`: exact as well (less preferred)")
                continue
            shown = "; ".join(f"✗ {r}" for r in reasons[:SHOWN_REASONS])
            more = len(reasons) - SHOWN_REASONS
            tail = f" (and {more} more)" if more > 0 else ""
            out.append(f"- `{name}` ({len(reasons)}): {_escape(shown)}{tail}")
    return "\n".join(out)


def splice(document: str, block: str) -> str:
    """``document`` with the text between the family-table markers replaced by ``block``."""
    head, sep, rest = document.partition(START)
    if not sep or END not in rest:
        raise ValueError(f"{CANONICAL_DOC} lost its {START} / {END} markers")
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{block}\n{END}{tail}"


def generate() -> str:
    """The whole of docs/canonical.md with a freshly generated family table."""
    return splice(CANONICAL_DOC.read_text(encoding="utf-8"), generate_block())
