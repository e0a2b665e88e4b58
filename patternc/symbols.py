"""Symbols in text: the structural characters, look-alike suggestions and how a symbol is named in messages.

The layer symbols themselves are defined once, in the kind table (``patternc.kinds``); this
module re-exports its lookups for the front end.  Nothing else spells a layer character
(``tests/core/test_kinds.py`` scans the source for such literals).  Keeping one table is what
stops the drift seen in peers (Megatron's private alphabet in its checkpoint converter,
transformers' missing ``-``).
"""

from __future__ import annotations

import unicodedata

from patternc.kinds import BY_KIND, BY_SYMBOL, SYMBOL_ORDER, KindDef, LayerKind, Role

__all__ = [
    "BY_KIND",
    "BY_SYMBOL",
    "MTP_SEPARATOR",
    "PIPE",
    "SYMBOL_ORDER",
    "KindDef",
    "LayerKind",
    "Role",
    "char_name",
    "describe",
    "suggest",
]


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
