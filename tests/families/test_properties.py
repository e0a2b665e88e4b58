"""Property: any single field of a real config set to a bad value yields an error naming that field.

The cases are enumerated, not sampled: every checked key of every fixture with every bad value
(about a thousand readings, two seconds), so the test is deterministic.  It used to draw them
with hypothesis from a hand-written list of fields where 0 is allowed, which drifted when
``time_step_min`` started accepting 0 and failed only on the runs that drew that case.  Whether 0
is a bad value is now read from each field's own annotation in ``patternc.config.models``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from patternc.codes import Severity
from patternc.config import read_config
from patternc.config.models import COMMON_KEYS
from patternc.families.nemotron_h import NemotronHInput

HUB = Path(__file__).resolve().parents[1] / "fixtures" / "hub"
CONFIGS = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(HUB.glob("*/config.json"))}
ALIASES = {"attention_head_dim": "head_dim"}


@cache
def zero_ok(key: str, zero: int | float) -> bool:
    """Whether the field behind ``key`` accepts ``zero`` (its declared range says, not a list kept by hand)."""
    field = NemotronHInput.model_fields[ALIASES.get(key, key)]
    adapter: TypeAdapter[Any] = TypeAdapter(field.rebuild_annotation(), config=ConfigDict(strict=True))
    try:
        adapter.validate_python(zero)
    except ValidationError:
        return False
    return True


def checked_keys(config: dict[str, Any]) -> list[str]:
    fields = set(NemotronHInput.model_fields) | set(ALIASES)
    return sorted(k for k in config if k in fields and k not in COMMON_KEYS)


def bad_values(key: str, value: object) -> list[object]:
    if isinstance(value, bool):
        return ["yes", 1, None, [True]]
    if isinstance(value, int):
        bad: list[object] = ["8", -1, 2**63, 1.5, True]
        if not key.endswith("token_id"):  # token ids may be lists (several EOS tokens)
            bad.append([value])
        return bad if zero_ok(key, 0) else [*bad, 0]
    if isinstance(value, float):
        bad = ["x", float("nan"), float("inf"), -1.0, [value]]
        return bad if zero_ok(key, 0.0) else [*bad, 0.0]
    if isinstance(value, str):
        return [0, ["M"], {"a": 1}, 1.5]
    if isinstance(value, list):
        return ["x", 3]
    return ["x", -1]


def cases() -> list[tuple[str, str, object, dict[str, Any]]]:
    out = []
    for name, original in CONFIGS.items():
        for key in checked_keys(original):
            for bad in bad_values(key, original[key]):
                out.append((name, key, bad, {**original, key: bad}))
    return out


def test_any_single_bad_field_is_named() -> None:
    every = cases()
    assert len(every) > 500  # every fixture, every checked key, every bad value
    for name, key, bad, config in every:
        reading = read_config(config)
        named = [d for d in reading.diagnostics if d.severity is Severity.ERROR and f"`{key}" in d.message]
        assert named, (name, key, bad, [f"{d.code}: {d.message}" for d in reading.diagnostics])
        assert reading.spec is None and not reading.ok
        for diagnostic in reading.diagnostics:
            if diagnostic.span is not None:
                assert 0 <= diagnostic.span.start <= diagnostic.span.end <= len(reading.source.text)


def test_zero_is_bad_exactly_where_the_field_says() -> None:
    """The regression behind the old flake: 0 where the field allows it reads cleanly, else it is named."""
    base = CONFIGS["NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"]
    assert zero_ok("time_step_min", 0.0) and zero_ok("time_step_floor", 0.0)
    assert not zero_ok("time_step_max", 0.0) and not zero_ok("hidden_size", 0)
    allowed = read_config({**base, "time_step_min": 0.0})
    assert allowed.ok and allowed.spec is not None and allowed.spec.mamba is not None
    assert allowed.spec.mamba.time_step_limit[0] == 0.0
    refused = read_config({**base, "time_step_max": 0.0})
    assert not refused.ok and any("`time_step_max`" in d.message for d in refused.diagnostics)


def test_every_fixture_key_is_checked_or_known() -> None:
    for config in CONFIGS.values():
        unknown = {k for k in config if k not in NemotronHInput.model_fields and k not in COMMON_KEYS}
        assert unknown <= {"attention_head_dim", "norm_eps", "rms_norm_eps", "rope_theta", "partial_rotary_factor"}
