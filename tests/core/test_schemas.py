"""The published JSON Schemas in schemas/ match the pydantic models (regenerate: python -m patternc.schemas --write)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import patternc
from patternc.report import CheckReport, build_report
from patternc.schemas import SCHEMAS, file_name, schema_text

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_matches_models(name: str) -> None:
    committed = (SCHEMA_DIR / file_name(name)).read_text(encoding="utf-8")
    assert committed == schema_text(name), f"schemas/{file_name(name)} drifted: run python -m patternc.schemas --write"


def test_schema_files_are_exactly_the_published_ones() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(file_name(n) for n in SCHEMAS)


def test_file_names_are_versioned() -> None:
    for name in SCHEMAS:
        assert file_name(name).endswith(".v1.schema.json")


def test_ir_json_round_trips_and_validates_against_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pattern = patternc.parse("(M-){2}M*-|M-/*E/*E")
    data = json.loads(pattern.model_dump_json())
    jsonschema.validate(data, json.loads(schema_text("ir")))
    assert patternc.Pattern.model_validate(data) == pattern


def test_check_output_validates_against_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_text("check-output"))
    for text in ["M-M*-", "M-M*X-", "|M-||", "MEME/*E/*E"]:
        report = build_report(patternc.analyze(text))
        jsonschema.validate(report.model_dump(mode="json"), schema)
        assert CheckReport.model_validate(report.model_dump(mode="json")) == report


def test_ir_validation_rejects_inconsistent_stages() -> None:
    pattern = patternc.parse("M-|M*")
    data = json.loads(pattern.model_dump_json())
    data["stages"][1]["start"] = 3
    with pytest.raises(ValueError, match="stage 1"):
        patternc.Pattern.model_validate(data)
