"""Property: any single field of a real config set to a bad value yields an error naming that field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from patternc.codes import Severity
from patternc.config import read_config
from patternc.config.models import COMMON_KEYS, NemotronHInput

HUB = Path(__file__).resolve().parent / "fixtures" / "hub"
CONFIGS = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(HUB.glob("*/config.json"))}
ALIASES = {"attention_head_dim"}
ZERO_OK = {
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "n_shared_experts",
    "num_nextn_predict_layers",
    "num_logits_to_keep",
    "attention_dropout",
    "hidden_dropout",
    "time_step_floor",
    "initializer_range",
}


def checked_keys(config: dict[str, Any]) -> list[str]:
    fields = set(NemotronHInput.model_fields) | ALIASES
    return sorted(k for k in config if k in fields and k not in COMMON_KEYS)


def bad_values(key: str, value: object) -> list[object]:
    if isinstance(value, bool):
        return ["yes", 1, None, [True]]
    if isinstance(value, int):
        bad: list[object] = ["8", -1, 2**63, 1.5, True]
        if not key.endswith("token_id"):  # token ids may be lists (several EOS tokens)
            bad.append([value])
        return bad if key in ZERO_OK else [*bad, 0]
    if isinstance(value, float):
        bad = ["x", float("nan"), float("inf"), -1.0, [value]]
        return bad if key in ZERO_OK else [*bad, 0.0]
    if isinstance(value, str):
        return [0, ["M"], {"a": 1}, 1.5]
    if isinstance(value, list):
        return ["x", 3]
    return ["x", -1]


@st.composite
def broken(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(CONFIGS)))
    config = dict(CONFIGS[name])
    key = draw(st.sampled_from(checked_keys(config)))
    config[key] = draw(st.sampled_from(bad_values(key, config[key])))
    return key, config


@settings(max_examples=300, deadline=None)
@given(broken())
def test_any_single_bad_field_is_named(case: tuple[str, dict[str, Any]]) -> None:
    key, config = case
    reading = read_config(config)
    named = [d for d in reading.diagnostics if d.severity is Severity.ERROR and f"`{key}" in d.message]
    assert named, (key, config[key], [f"{d.code}: {d.message}" for d in reading.diagnostics])
    assert reading.spec is None


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(CONFIGS)), st.data())
def test_file_round_trip_with_bad_field_never_raises(name: str, data: st.DataObject) -> None:
    config = dict(CONFIGS[name])
    key = data.draw(st.sampled_from(checked_keys(config)))
    config[key] = data.draw(st.sampled_from(bad_values(key, config[key])))
    reading = read_config(config)
    assert not reading.ok
    for diagnostic in reading.diagnostics:
        if diagnostic.span is not None:
            assert 0 <= diagnostic.span.start <= diagnostic.span.end <= len(reading.source.text)


def test_every_fixture_key_is_checked_or_known() -> None:
    for config in CONFIGS.values():
        unknown = {k for k in config if k not in NemotronHInput.model_fields and k not in COMMON_KEYS}
        assert unknown <= {"attention_head_dim", "norm_eps", "rms_norm_eps", "rope_theta", "partial_rotary_factor"}
