"""Dialect profiles: which parts of the one grammar each surface syntax may use.

All dialects share ``grammar/pattern.lark``; a profile only says which features are allowed.
That keeps one parser and one set of spans, and makes ``--dialect hf`` answer precisely
"would transformers' ``hybrid_override_pattern`` accept this string?".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from patternc.symbols import SYMBOLS


class Dialect(StrEnum):
    """The surface syntaxes patternc reads."""

    HF = "hf"
    """transformers' ``hybrid_override_pattern``: exactly ``M * - E``."""
    MEGATRON = "megatron"
    """Megatron-Core's unified ``hybrid_layer_pattern``: ``M G * D + - E`` with ``|`` and ``/``."""
    PATTERNC = "patternc"
    """Megatron's alphabet plus whitespace, ``#`` comments and nestable repetition ``(M-){4}``."""


@dataclass(frozen=True, slots=True)
class Profile:
    """The features one dialect admits."""

    dialect: Dialect
    alphabet: str
    pipes: bool
    mtp: bool
    trivia: bool
    """Whitespace and ``#`` comments."""
    repetition: bool


MEGATRON_ALPHABET = "".join(info.symbol for info in SYMBOLS)
HF_ALPHABET = "M*-E"

PROFILES: dict[Dialect, Profile] = {
    Dialect.HF: Profile(Dialect.HF, HF_ALPHABET, pipes=False, mtp=False, trivia=False, repetition=False),
    Dialect.MEGATRON: Profile(
        Dialect.MEGATRON, MEGATRON_ALPHABET, pipes=True, mtp=True, trivia=False, repetition=False
    ),
    Dialect.PATTERNC: Profile(
        Dialect.PATTERNC, MEGATRON_ALPHABET, pipes=True, mtp=True, trivia=True, repetition=True
    ),
}
