"""Input bounds: every entry point refuses oversized input with a diagnostic, before allocating."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Configurable bounds (CLI: ``--max-layers``; API: ``Limits(...)``)."""

    max_layers: int = 100_000
    """Most layers a pattern may expand to (main and every MTP depth together)."""
    max_chars: int = 1_000_000
    """Longest pattern text accepted, in characters."""
    max_diagnostics: int = 200
    """Diagnostics beyond this many are summarised by one P013 note."""


DEFAULT_LIMITS = Limits()
