"""The diagnostic code table: every code patternc can emit, its name, severity and summary.

Codes are stable: never renumbered, never reused.  Ranges: ``P0xx`` lexical and syntax,
``P1xx`` structure of the parsed pattern, ``P2xx`` family and mixing rules.  Later issues add
``P3xx`` (targets and backends) and ``P9xx`` (configuration files).  The long explanation of
each code lives in ``patternc/explain/<code>.md`` (printed by ``patternc explain``), and a test
keeps that directory, this table and ``docs/diagnostics.md`` in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    severity: Severity
    summary: str
    example: tuple[str, ...] = ()
    """``patternc`` arguments that trigger this code (run by the docs test and ``explain``)."""
    files: tuple[tuple[str, str], ...] = ()
    """(relative path, text) files the example reads; written to a scratch directory it runs in."""


_E, _W, _N = Severity.ERROR, Severity.WARNING, Severity.NOTE

CODES: tuple[Code, ...] = (
    Code("P001", "unknown-symbol", _E, "a character that is no layer symbol", ("check", "M-M*X-")),
    Code(
        "P002",
        "symbol-not-in-dialect",
        _E,
        "a layer symbol that the chosen dialect does not admit",
        ("check", "--dialect", "hf", "M-G*-"),
    ),
    Code(
        "P003",
        "whitespace-not-allowed",
        _E,
        "whitespace in a strict dialect",
        ("check", "--dialect", "megatron", "M- M*-"),
    ),
    Code(
        "P004",
        "comment-not-allowed",
        _E,
        "a `#` comment in a strict dialect",
        ("check", "--dialect", "megatron", "M-M*- # attention"),
    ),
    Code(
        "P005",
        "repetition-not-allowed",
        _E,
        "a group or repetition in a strict dialect",
        ("check", "--dialect", "megatron", "(M-){2}M*-"),
    ),
    Code(
        "P006",
        "pipe-not-allowed",
        _E,
        "a `|` pipeline separator in a dialect without pipeline stages",
        ("check", "--dialect", "hf", "M-M*|M-M*"),
    ),
    Code(
        "P007",
        "mtp-not-allowed",
        _E,
        "a `/` multi-token-prediction part in a dialect without MTP",
        ("check", "--dialect", "hf", "MEME/*E"),
    ),
    Code("P008", "unbalanced-group", _E, "a `(` without its `)` or the reverse", ("check", "(M-M*-")),
    Code(
        "P009",
        "unexpected-token",
        _E,
        "a structural character where the grammar does not allow it",
        ("check", "M-{3}}"),
    ),
    Code("P010", "repetition-count-zero", _E, "a repetition count of 0", ("check", "(M-){0}M*-")),
    Code(
        "P011",
        "too-many-layers",
        _E,
        "the pattern expands to more layers than the configured limit",
        ("check", "(M-){60000}"),
    ),
    Code(
        "P012",
        "input-too-large",
        _E,
        "the input text is longer than the configured limit",
        ("check", "--max-chars", "4", "M-M*-"),
    ),
    Code(
        "P013",
        "too-many-diagnostics",
        _N,
        "further diagnostics were suppressed",
        ("check", "--max-diagnostics", "2", "Mxyz"),
    ),
    Code(
        "P014",
        "unknown-layer-type",
        _E,
        "a name in a `layers_block_type` list that is no layer type",
        ("convert", "--from-list", "mamba,mlp,mamba2"),
    ),
    Code(
        "P015",
        "no-list-name",
        _E,
        "a layer kind that transformers' `layers_block_type` cannot name",
        ("convert", "--to", "layers_block_type", "MG*-"),
    ),
    Code("P101", "empty-pattern", _E, "the main pattern has no layer", ("check", "/*E")),
    Code("P102", "empty-pipeline-stage", _W, "a pipeline stage with no layer", ("check", "M-M*-||M-M*-")),
    Code("P103", "pipe-in-mtp", _E, "a `|` inside a multi-token-prediction part", ("check", "M-M*-/*E|*E")),
    Code(
        "P104",
        "empty-mtp-part",
        _E,
        "an empty multi-token-prediction part (a trailing or doubled `/`)",
        ("check", "M-M*-/"),
    ),
    Code(
        "P105", "mtp-depth-mismatch", _E, "multi-token-prediction parts that differ", ("check", "MEME/*E/ME")
    ),
    Code(
        "P106",
        "attention-mla-mix",
        _E,
        "standard attention `*` together with DSA `D` or MLA `+`",
        ("check", "M*M*/MD"),
    ),
    Code(
        "P201", "mixed-dense-moe", _W, "dense MLP `-` and MoE `E` layers in one model", ("check", "M-M*EM-")
    ),
    Code(
        "P202",
        "no-sequence-mixer",
        _W,
        "no Mamba, DeltaNet or attention layer: tokens never interact",
        ("check", "-E-E"),
    ),
 # P3xx: target profiles (patternc/targets/) go below this line.
    # P9xx: configuration files (patternc/config/) go below this line.
)

BY_CODE: dict[str, Code] = {c.code: c for c in CODES}
BY_NAME: dict[str, Code] = {c.name: c for c in CODES}


def lookup(code_or_name: str) -> Code | None:
    """Find a code by ``P001``, ``p001`` or its name ``unknown-symbol``."""
    key = code_or_name.strip()
    return BY_CODE.get(key.upper()) or BY_NAME.get(key.lower())
