"""docs/diagnostics.md and patternc/explain/*.md stay true to the code table and the program."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from patternc.cli import run_example
from patternc.codes import CODES, Code
from tests.docgen import DOC, EXAMPLES, GENERATED, generate, generated_files

EXPLAIN = Path(__file__).resolve().parents[2] / "patternc" / "explain"
HEADINGS = ("## What it means", "## Why", "## Use instead")


def test_generated_doc_is_committed() -> None:
    assert DOC.is_file(), "docs/diagnostics.md is missing; run: python tests/docgen.py --write"
    assert DOC.read_text(encoding="utf-8") == generate(), (
        "docs/diagnostics.md is out of date; run: python tests/docgen.py --write"
    )


def test_one_explanation_per_code() -> None:
    on_disk = {path.stem for path in EXPLAIN.glob("*.md")}
    assert on_disk == {code.code for code in CODES}


def test_explanations_ship_as_package_data() -> None:
    for code in CODES:
        assert files("patternc.explain").joinpath(f"{code.code}.md").is_file(), code.code


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.code)
def test_explanation_has_the_ruff_headings(code: Code) -> None:
    text = (EXPLAIN / f"{code.code}.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == list(HEADINGS), code.code
    for heading, body in zip(HEADINGS, re.split(r"^## .*$", text, flags=re.MULTILINE)[1:], strict=True):
        assert body.strip(), f"{code.code}: {heading} is empty"


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.code)
def test_example_emits_its_code(code: Code) -> None:
    assert code.example, f"{code.code} has no example"
    _, output, _ = run_example(code)
    assert re.search(rf"\b(error|warning|note)\[{code.code}\]", output), (code.code, output)


def test_generated_example_files_are_committed() -> None:
    """The safetensors files and torch directories examples read are what tests/docgen.py builds (in the
    package for ``explain``, and the P4xx directories under tests/fixtures/torch/ too)."""
    for path, data in generated_files().items():
        assert path.is_file() and path.read_bytes() == data, f"{path}: run python tests/docgen.py --write"


def test_example_files_belong_to_codes() -> None:
    codes = {code.code for code in CODES}
    assert {path.name for path in EXAMPLES.iterdir()} <= codes
    assert set(GENERATED) <= codes


def test_every_code_has_a_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = re.findall(r"^## (P\d{3}) (\S+)$", text, flags=re.MULTILINE)
    assert sections == [(code.code, code.name) for code in CODES]
