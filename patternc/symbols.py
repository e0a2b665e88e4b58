"""The symbol table: the single source of truth for layer symbols, kinds and their names.

Every other module (grammar checks, IR, conversions, docs) derives from ``SYMBOLS``; nothing
else spells a layer character.  Keeping it in one table is what stops the drift seen in peers
(Megatron's private alphabet in its checkpoint converter, transformers' missing ``-``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class LayerKind(StrEnum):
    """What one layer of the stack computes (patternc's own vocabulary)."""

    MAMBA2 = "mamba2"
    GATED_DELTANET = "gated_deltanet"
    ATTENTION = "attention"
    DSA = "dsa"
    MLA = "mla"
    MLP = "mlp"
    MOE = "moe"


class Role(StrEnum):
    """The part a layer kind plays in a block: token mixing or channel mixing."""

    SSM = "ssm"
    """Linear-time sequence mixer with constant-size state (Mamba2, gated DeltaNet)."""
    ATTENTION = "attention"
    """Sequence mixer with a KV cache that grows with the context."""
    FFN = "ffn"
    """Per-token channel mixer (MLP or mixture of experts)."""


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """Everything patternc knows about one layer symbol."""

    symbol: str
    kind: LayerKind
    role: Role
    description: str
    hf_name: str | None
    """Name in transformers' current ``layers_block_type`` vocabulary (None: no such name)."""
    hf_legacy_name: str | None
    """Name in the legacy vocabulary (``mamba``/``attention``) that older checkpoints carry."""
    mla_family: bool = False
    """Megatron refuses to mix standard attention ``*`` with these (DSA, MLA)."""


SYMBOLS: tuple[SymbolInfo, ...] = (
    SymbolInfo("M", LayerKind.MAMBA2, Role.SSM, "Mamba2 mixer", "linear_attention", "mamba"),
    SymbolInfo("G", LayerKind.GATED_DELTANET, Role.SSM, "gated DeltaNet mixer", None, None),
    SymbolInfo("*", LayerKind.ATTENTION, Role.ATTENTION, "self-attention", "full_attention", "attention"),
    SymbolInfo("D", LayerKind.DSA, Role.ATTENTION, "DeepSeek sparse attention", None, None, mla_family=True),
    SymbolInfo(
        "+", LayerKind.MLA, Role.ATTENTION, "multi-head latent attention", None, None, mla_family=True
    ),
    SymbolInfo("-", LayerKind.MLP, Role.FFN, "MLP", "mlp", "mlp"),
    SymbolInfo("E", LayerKind.MOE, Role.FFN, "mixture of experts", "moe", "moe"),
)

BY_SYMBOL: dict[str, SymbolInfo] = {info.symbol: info for info in SYMBOLS}
BY_KIND: dict[LayerKind, SymbolInfo] = {info.kind: info for info in SYMBOLS}
SYMBOL_ORDER: dict[str, int] = {info.symbol: i for i, info in enumerate(SYMBOLS)}
"""Deterministic order for counts and messages: the table order, never a set's order."""

PIPE = "|"
MTP_SEPARATOR = "/"

# Characters users paste by mistake, mapped to the symbol they meant.  NFKC folding (below)
# already handles full-width forms such as U+FF2D; this table covers what NFKC does not.
_LOOKALIKES: dict[str, str] = {
    "\u2217": "*",  # ∗ asterisk operator
    "\u00d7": "*",  # × multiplication sign
    "\u2715": "*",  # ✕
    "\u2716": "*",  # ✖
    "\u204e": "*",  # ⁎ low asterisk
    "\u066d": "*",  # ٭ arabic five-pointed star
    "\u2731": "*",  # ✱
    "\u22c6": "*",  # ⋆ star operator
    "x": "*",
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    "\u2043": "-",  # ⁃ hyphen bullet
    "_": "-",
    "~": "-",
    "\u039c": "M",  # Greek capital mu
    "\u041c": "M",  # Cyrillic capital em
    "\u0395": "E",  # Greek capital epsilon
    "\u0415": "E",  # Cyrillic capital ie
    "\u0417": "E",
    "\u2223": "|",  # ∣ divides
    "\u01c0": "|",  # ǀ dental click
    "\u2215": "/",  # ∕ division slash
    "\u2044": "/",  # ⁄ fraction slash
}


def suggest(char: str, alphabet: str) -> str | None:
    """The symbol of ``alphabet`` (or a separator in it) a mistyped ``char`` most likely meant.

    Tries, in order: an explicit look-alike, Unicode compatibility folding (full-width and
    other presentation forms), and upper-casing (``m`` -> ``M``).
    """
    candidates = [_LOOKALIKES.get(char), unicodedata.normalize("NFKC", char), char.upper()]
    for candidate in candidates:
        if candidate is not None and len(candidate) == 1 and candidate != char and candidate in alphabet:
            return candidate
        if candidate is not None and candidate in _LOOKALIKES and _LOOKALIKES[candidate] in alphabet:
            return _LOOKALIKES[candidate]
    return None


def describe(symbol: str) -> str:
    """``M`` -> "`M` (Mamba2 mixer)", for messages."""
    info = BY_SYMBOL.get(symbol)
    if info is None:
        return f"`{symbol}`"
    return f"`{symbol}` ({info.description})"


def char_name(char: str) -> str:
    """A printable, unambiguous rendering of any character for messages (U+2217 ASTERISK OPERATOR)."""
    if char.isascii() and char.isprintable() and not char.isspace():
        return f"`{char}`"
    name = unicodedata.name(char, "")
    shown = f"`{char}` " if char.isprintable() and not char.isspace() else ""
    return f"{shown}(U+{ord(char):04X}{' ' + name if name else ''})"
