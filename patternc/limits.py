"""Input bounds: every entry point refuses oversized input with a diagnostic, before allocating."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Configurable bounds (CLI: ``--max-layers``; API: ``Limits(...)``)."""

    max_layers: int = 100_000
    """Most layers a pattern may expand to (main and every MTP depth together)."""
    max_chars: int = 100_000
    """Longest pattern text accepted, in characters: the layer limit's worth of one-character layers.
    Parsing is linear but not free: the slowest shape, ``M/M/…``, takes 1.7 s at this limit
    (``tests/benchmarks/long_patterns.py``); a million characters took 17-51 s in a one-off
    measurement, and released patterns are under 200 characters."""
    max_diagnostics: int = 200
    """Diagnostics beyond this many are summarised by one P013 note."""

    def __post_init__(self) -> None:
        for name in ("max_layers", "max_chars", "max_diagnostics"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, not {value!r}")


DEFAULT_LIMITS = Limits()
