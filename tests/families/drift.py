"""Shared by the family tests: a family's input model against transformers' own config class.

Each ``tests/families/test_<model_type>.py`` calls ``check_defaults`` with the name of the class
its family mirrors, so a transformers release that adds, drops or changes a default fails there.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from patternc.codes import Severity
from patternc.config.models import COMMON_KEYS
from patternc.families import get

COMMON = frozenset(
    {
        "model_type",
        "torch_dtype",
        "dtype",
        "transformers_version",
        "architectures",
        "use_cache",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "initializer_range",
        "tie_word_embeddings",
    }
)
"""Fields our base model declares for every family, whether or not the transformers class has them."""


def errors(reading: Any) -> list[str]:
    return [f"{d.code}: {d.message}" for d in reading.diagnostics if d.severity is Severity.ERROR]


def _same(ours: object, theirs: object) -> bool:
    if isinstance(theirs, tuple):
        theirs = list(theirs)
    if isinstance(ours, float) and isinstance(theirs, float) and math.isinf(theirs):
        return math.isinf(ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs, strict=True))
    return bool(ours == theirs and (type(ours) is type(theirs) or isinstance(ours, int | float)))


def check_defaults(family: str, cls: Any) -> None:
    """Every field of transformers' ``cls`` is in the family's input model with the same default, and
    the model has no field transformers lacks (but the keyword-only ones the family names)."""
    import transformers

    base = {f.name for f in dataclasses.fields(transformers.PreTrainedConfig)}
    found = get(family)
    model = found.input_model
    theirs = {f.name: f.default for f in dataclasses.fields(cls) if f.name not in base}
    for name, default in theirs.items():
        if default is dataclasses.MISSING or name in COMMON_KEYS:
            continue
        assert name in model.model_fields, f"{family}: transformers field {name} is missing from {model.__name__}"
        ours = model.model_fields[name].default
        assert _same(ours, default), f"{family}.{name}: ours {ours!r}, transformers {default!r}"
    ours_only = set(model.model_fields) - set(theirs) - base - found.kwarg_only_fields - found.checkpoint_fields
    assert ours_only <= COMMON, f"{family}: fields transformers does not have: {sorted(ours_only - COMMON)}"
