"""The `zamba2` family: configs built by transformers' `Zamba2Config`, read into the IR; defaults drift."""

from __future__ import annotations

import pytest

from patternc.config import read_config
from tests.families.drift import check_defaults

transformers = pytest.importorskip("transformers")


def test_zamba2_not_expressible() -> None:
    reading = read_config(transformers.Zamba2Config().to_dict())
    assert reading.spec is None
    assert any(d.code == "P914" and "shared" in d.message for d in reading.diagnostics)


def test_defaults_match_transformers() -> None:
    check_defaults("zamba2", transformers.Zamba2Config)
