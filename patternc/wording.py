"""Phrases that several commands print, kept in one place so that ``check``, ``stats`` and ``build`` say the
same thing in the same words.

Light to import (the symbol table only): ``patternc check`` uses it.
"""

from __future__ import annotations

from patternc.symbols import BY_SYMBOL, Role


def decoder_layers(flat: str, source: str | None) -> int | None:
    """How many decoder layers ``flat`` holds when ``source`` pairs each mixer with its FFN, else None.

    None too when the layers do not alternate mixer, FFN (then "decoder layer" would not mean one thing).
    """
    from patternc import families  # here, not at import: `patternc check` of a bare pattern never needs it

    family = families.find(source)
    if "[" in flat:  # a parallel layer (`[*M]`) is one layer: its first mixer stands for it
        import re

        flat = re.sub(r"\[([^\]]*)\]", lambda found: found.group(1)[:1], flat)
    if family is None or not family.paired_layers or not flat or len(flat) % 2:
        return None
    pairs = zip(flat[::2], flat[1::2], strict=True)
    if all(BY_SYMBOL[m].role is not Role.FFN and BY_SYMBOL[f].role is Role.FFN for m, f in pairs):
        return len(flat) // 2
    return None


def layers_text(flat: str, source: str | None) -> str:
    """``64 pattern layers = 32 decoder layers × (mixer + FFN)`` for a paired family, else ``64``.

    A Bamba config says ``num_hidden_layers: 32`` and patternc shows 64 layers: without the reason
    the two numbers look like a bug.
    """
    pairs = decoder_layers(flat, source)
    if pairs is None:
        return str(len(flat))
    return f"{len(flat)} pattern layers = {pairs} decoder layers × (mixer + FFN)"
