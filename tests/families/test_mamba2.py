"""The `mamba2` family: configs built by transformers' `Mamba2Config`, read into the IR; defaults drift."""

from __future__ import annotations

import pytest

from patternc.config import read_config
from tests.families.drift import check_defaults, errors

transformers = pytest.importorskip("transformers")


def test_mamba2_pure() -> None:
    data = transformers.Mamba2Config(
        num_hidden_layers=3, hidden_size=256, num_heads=8, head_dim=64, n_groups=2
    ).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    spec = reading.spec
    assert spec is not None and spec.pattern.flat == "MMM" and spec.mlp is None and spec.moe is None
    assert spec.mamba is not None and spec.mamba.norm_group_size == 256


def test_defaults_match_transformers() -> None:
    check_defaults("mamba2", transformers.Mamba2Config)
