"""docs/targets.md is generated from the target profiles and committed as generated (issue 13)."""

from __future__ import annotations

import re

from patternc.targets import PROFILES
from tests.docgen import TARGETS_DOC
from tests.docgen_targets import generate


def test_generated_doc_is_committed() -> None:
    assert TARGETS_DOC.read_text(encoding="utf-8") == generate(), (
        "docs/targets.md is out of date; run: python tests/docgen.py --write"
    )


def test_every_profile_has_a_row_and_a_rule_table() -> None:
    text = generate()
    for name, profile in PROFILES.items():
        assert f"| `{name}` | " in text
        section = text.split(f"\n### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        rows = re.findall(r"^\| (P\d{3}) ", section, flags=re.MULTILINE)
        assert rows == [rule.code for rule in profile.rules], name


def test_every_rule_summary_and_source_is_shown() -> None:
    text = generate()
    for profile in PROFILES.values():
        for rule in profile.rules:
            assert rule.summary.replace("|", "\\|") in text or rule.summary in text, rule
            assert rule.source in text, rule
