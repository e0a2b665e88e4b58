"""The published JSON Schemas, generated from the pydantic models.

``schemas/<name>.v<N>.schema.json`` in the repository holds the committed text; a test fails
when the models drift from it (regenerate with ``python -m patternc.schemas --write``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _ir() -> dict[str, Any]:
    from patternc.ir import IR_SCHEMA_VERSION, Pattern

    schema = Pattern.model_json_schema()
    schema["$id"] = f"https://patternc.dev/schemas/ir.v{IR_SCHEMA_VERSION}.schema.json"
    return schema


def _check_output() -> dict[str, Any]:
    from patternc.report import REPORT_SCHEMA_VERSION, CheckReport

    schema = CheckReport.model_json_schema()
    schema["$id"] = f"https://patternc.dev/schemas/check-output.v{REPORT_SCHEMA_VERSION}.schema.json"
    return schema


def _model() -> dict[str, Any]:
    from patternc.model import MODEL_SCHEMA_VERSION, ModelSpec

    schema = ModelSpec.model_json_schema()
    schema["$id"] = f"https://patternc.dev/schemas/model.v{MODEL_SCHEMA_VERSION}.schema.json"
    return schema



def _stats_output() -> dict[str, Any]:
    from patternc.analysis.stats import STATS_SCHEMA_VERSION, Stats

    schema = Stats.model_json_schema()
    schema["$id"] = f"https://patternc.dev/schemas/stats-output.v{STATS_SCHEMA_VERSION}.schema.json"
    return schema

def _config(model_type: str) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        from patternc.config.models import INPUT_MODELS

        schema = INPUT_MODELS[model_type].model_json_schema()
        schema["$id"] = f"https://patternc.dev/schemas/config-{model_type}.v1.schema.json"
        return schema

    return build


_CONFIG_DIALECTS = ("nemotron_h", "bamba", "granitemoehybrid", "jamba", "mamba2", "qwen3_next", "zamba2")

SCHEMAS: dict[str, tuple[int, Callable[[], dict[str, Any]]]] = {
    "ir": (1, _ir),
    "check-output": (1, _check_output),
    "model": (1, _model),
    "stats-output": (1, _stats_output),
    **{f"config-{name}": (1, _config(name)) for name in _CONFIG_DIALECTS},
}


def file_name(name: str) -> str:
    version, _ = SCHEMAS[name]
    return f"{name}.v{version}.schema.json"


def schema_text(name: str) -> str:
    _, build = SCHEMAS[name]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **build()}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = directory / file_name(name)
        path.write_text(schema_text(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m patternc.schemas --write")
    for path in write_all(Path(__file__).resolve().parent.parent / "schemas"):
        print(path)
