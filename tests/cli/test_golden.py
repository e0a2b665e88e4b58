"""Every command's output on the golden corpus is byte-identical to the stored one (issue 13).

The outputs were stored before the one-home redesign began (``tests/golden/``); a difference
here is a behaviour change, which must be deliberate and re-recorded with
``python -m tests.golden.record --write``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.golden.corpus import config_files, patterns
from tests.golden.record import STORE, config_record, pattern_record


@cache
def _stored(store: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((STORE / f"{store}.json").read_text(encoding="utf-8"))
    return data


def _same(old: dict[str, Any], new: dict[str, Any]) -> None:
    for command in sorted(set(old) | set(new)):
        assert new.get(command) == old.get(command), f"`{command}` changed"


def test_corpus_is_the_stored_one() -> None:
    assert sorted(_stored("configs")) == sorted(config_files())
    assert sorted(_stored("patterns")) == [case.name for case in patterns()]
    assert len(patterns()) >= 200


@pytest.mark.parametrize("name", sorted(config_files()))
def test_config_outputs(name: str, scratch: Path) -> None:
    path = config_files()[name]
    old = dict(_stored("configs")[name])
    old.pop("source")
    _same(old, config_record(path, scratch))


@pytest.mark.parametrize("case", patterns(), ids=lambda case: case.name)
def test_pattern_outputs(case: Any, scratch: Path) -> None:
    old = dict(_stored("patterns")[case.name])
    assert (old.pop("text"), old.pop("dialect")) == (case.text, case.dialect)
    _same(old, pattern_record(case.text, case.dialect, scratch))
