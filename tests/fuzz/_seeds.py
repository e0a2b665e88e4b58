"""Seed inputs shared by the fuzz harnesses (docs/reliability.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "tests" / "fixtures" / "hub"

PATTERN_ALPHABET = "MG*D+-E|/(){}0123456789 #\n,xX"
"""Characters the byte-mapped pattern mode draws from: every dialect's syntax plus a few wrong ones."""

SEED_PATTERNS = [
    "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
    "(M-){4} M*- # comment\n|(M-){2}/*E/*E",
    "MEM*E/*E/*E",
    "M-M-|M*-M-|M-",
    "((((M){9}){9}){9}){9}",
]


def seed_configs() -> list[dict[str, Any]]:
    """The hub fixtures plus one config of each other dialect, as transformers writes them."""
    configs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(HUB.glob("*/config.json"))]
    try:
        import transformers
    except ImportError:
        return configs
    for name in (
        "BambaConfig",
        "GraniteMoeHybridConfig",
        "Mamba2Config",
        "Qwen3NextConfig",
        "JambaConfig",
        "Zamba2Config",
    ):
        cls = getattr(transformers, name, None)
        if cls is not None:
            try:
                configs.append(json.loads(cls(num_hidden_layers=4).to_json_string()))
            except Exception:  # a class whose defaults need more layers: its own defaults then
                configs.append(json.loads(cls().to_json_string()))
    return configs


def tally(name: str, counts: dict[str, int], key: str, every: int = 5000) -> None:
    """Count one input under ``key``; print the per-mode counts every ``every`` inputs.

    libFuzzer ends the process without running ``atexit`` handlers, so the counts are printed as
    they go (the last line before ``Done N runs`` is the breakdown of the run).
    """
    counts[key] = counts.get(key, 0) + 1
    counts["total"] = counts.get("total", 0) + 1
    if counts["total"] % every == 0:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(f"[{name}] {shown}", flush=True)
