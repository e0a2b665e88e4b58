"""Which keys of a source config an output that holds only the model can carry (``P512``).

Some outputs hold the model's layers and sizes and nothing else: the torch backend's directory
(the ``ModelSpec`` itself), Megatron-Core's arguments.  A ``--set`` key that is not one the model is
made of (``use_cache``, ``initializer_range``) cannot reach them; the user asked for it explicitly,
so saying nothing would be wrong, and each such key is an error naming the output.  The
transformers backend's config carries more (``patternc_transformers.carry``) and shares the
identity keys and the reading of a config's key roles from here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from patternc.diagnostics import Diagnostic, diag
from patternc.model import ModelSpec

IDENTITY_KEYS = frozenset({"model_type", "architectures", "transformers_version"})
"""Written by every build from what it builds, never copied."""


def roles(dialect: str, source: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(keys the reader made the model of, keys without effect on it), from reading ``source`` again."""
    if not source:
        return frozenset(), frozenset()
    from patternc.config import read_config

    reading = read_config({**source, "model_type": dialect})
    return reading.model_keys, reading.inert_keys


def model_only(spec: ModelSpec, source: Mapping[str, Any], set_keys: Collection[str], output: str) -> list[Diagnostic]:
    """P512 for each ``--set`` that an output holding only the model (the torch backend's directory,
    Megatron-Core arguments) cannot carry: a key the model is not made of (``use_cache``, …)."""
    model_keys, _ = roles(spec.source, source)
    return [
        diag(
            "P512",
            f"`--set {key}` cannot be written: the output ({output}) holds only the model's layers and "
            f"sizes, and `{key}` is not one of them",
            None,
            help="drop this `--set`, or build a transformers target (`--target nemotron_h`), whose config "
            "holds every key",
        )
        for key in sorted(set_keys)
        if key not in model_keys and key not in IDENTITY_KEYS
    ]
