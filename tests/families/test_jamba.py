"""The `jamba` family: configs built by transformers' `JambaConfig`, read into the IR; defaults drift."""

from __future__ import annotations

import pytest

from patternc.codes import Severity
from patternc.config import read_config
from tests.families.drift import check_defaults

transformers = pytest.importorskip("transformers")


def test_jamba_layout_but_not_expressible() -> None:
    data = transformers.JambaConfig(num_hidden_layers=8).to_dict()
    reading = read_config(data)
    assert reading.spec is None and reading.pattern is not None
    assert reading.pattern.flat == "M-MEM-ME*-MEM-ME"
    assert [d.code for d in reading.diagnostics if d.severity is Severity.ERROR] == ["P914"]


def test_defaults_match_transformers() -> None:
    check_defaults("jamba", transformers.JambaConfig)
