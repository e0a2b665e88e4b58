"""The family × family table of docs/canonical.md is generated from the canonical map (issue 14).

Every registered family needs a reference config (``tests/docgen_canonical.REFERENCES``), every
reference must map to its own family, every refused pair must show at least one reason, and the
committed document must equal the generated one.
"""

from __future__ import annotations

import pytest

from patternc import families
from tests.docgen_canonical import CANONICAL_DOC, REFERENCES, generate, rows

UNREADABLE = {"zamba2": "P914"}
"""Families whose architecture patternc cannot express (the row says why): family -> the error code."""


@pytest.fixture(scope="module")
def table() -> list:  # type: ignore[type-arg]
    return rows()


def test_every_family_has_a_reference_config() -> None:
    missing = [name for name in families.names() if name not in REFERENCES]
    assert not missing, f"tests/docgen_canonical.py REFERENCES has no reference config for: {missing}"
    stale = [name for name in REFERENCES if name not in families.names()]
    assert not stale, f"REFERENCES names families that are not registered: {stale}"


def test_every_reference_maps_to_its_own_family(table: list) -> None:  # type: ignore[type-arg]
    wrong = {}
    for row in table:
        if row.family in UNREADABLE:
            assert row.problem is not None and UNREADABLE[row.family] in row.problem, row
            continue
        if row.architecture != row.family:
            wrong[row.family] = row.architecture or row.problem
    assert not wrong, f"references that do not map to their own family: {wrong}"


def test_no_refused_cell_without_a_reason(table: list) -> None:  # type: ignore[type-arg]
    for row in table:
        if row.problem is not None:
            continue
        for name in families.names():
            if name not in row.matched:
                assert row.reasons.get(name), f"{row.family} vs {name}: refused without a reason"


def test_generated_table_is_committed() -> None:
    assert CANONICAL_DOC.read_text(encoding="utf-8") == generate(), (
        "docs/canonical.md's family table is out of date; run: python tests/docgen.py --write"
    )
