"""Dialect profiles: which parts of the one grammar each surface syntax may use.

All dialects share ``grammar/pattern.lark``; a profile only says which features are allowed.
That keeps one parser and one set of spans, and makes ``--dialect hf`` answer precisely
"would transformers' ``hybrid_override_pattern`` accept this string?".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from patternc.kinds import alphabet


class Dialect(StrEnum):
    """The surface syntaxes patternc reads."""

    HF = "hf"
    """transformers' ``hybrid_override_pattern``: the kinds whose ``KindDef.hf`` is set."""
    MEGATRON = "megatron"
    """Megatron-Core's unified ``hybrid_layer_pattern`` (kinds whose ``KindDef.megatron`` is set), ``|``, ``/``."""
    PATTERNC = "patternc"
    """Every registered kind, plus whitespace, ``#`` comments, nestable repetition ``(M-){4}`` and
    parallel layers ``[*M]``."""


@dataclass(frozen=True, slots=True)
class Profile:
    """The features one dialect admits."""

    dialect: Dialect
    pipes: bool
    mtp: bool
    trivia: bool
    """Whitespace and ``#`` comments."""
    repetition: bool
    parallel: bool = False
    """Parallel layers ``[*M]``: only patternc spells them (neither Megatron-Core's pattern nor a
    transformers layer list can say that two mixers share one layer)."""

    @property
    def alphabet(self) -> str:
        """The layer symbols this dialect admits, in table order (each kind's ``KindDef`` says)."""
        return alphabet(self.dialect.value)


PROFILES: dict[Dialect, Profile] = {
    Dialect.HF: Profile(Dialect.HF, pipes=False, mtp=False, trivia=False, repetition=False),
    Dialect.MEGATRON: Profile(Dialect.MEGATRON, pipes=True, mtp=True, trivia=False, repetition=False),
    Dialect.PATTERNC: Profile(Dialect.PATTERNC, pipes=True, mtp=True, trivia=True, repetition=True, parallel=True),
}
