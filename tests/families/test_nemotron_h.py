"""The `nemotron_h` family: configs built by transformers' `NemotronHConfig`, read into the IR; defaults drift."""

from __future__ import annotations

import pytest

from patternc.config import read_config
from tests.families.drift import check_defaults, errors

transformers = pytest.importorskip("transformers")


def test_nemotron_h_from_class() -> None:
    data = transformers.NemotronHConfig(
        layers_block_type=["linear_attention", "moe", "full_attention", "mlp"],
        n_routed_experts=8,
        num_experts_per_tok=2,
    ).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.pattern is not None and reading.pattern.flat == "ME*-"


def test_defaults_match_transformers() -> None:
    check_defaults("nemotron_h", transformers.NemotronHConfig)
