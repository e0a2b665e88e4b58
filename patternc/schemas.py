"""The published JSON Schemas, generated from the pydantic models.

``schemas/<name>.v<N>.schema.json`` in the repository holds the committed text; a test fails
when the models drift from it (regenerate with ``python -m patternc.schemas --write``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from patternc import families

if TYPE_CHECKING:
    from pydantic import BaseModel


def _model_class(module: str, attribute: str) -> Callable[[], type[BaseModel]]:
    """A lazy getter: the pydantic model is imported only when its schema is asked for."""

    def get() -> type[BaseModel]:
        model: type[BaseModel] = getattr(import_module(module), attribute)
        return model

    return get


def _input_model(family: str) -> Callable[[], type[BaseModel]]:
    """A lazy getter of a family's input model (its module is imported only when asked for)."""
    return lambda: families.get(family).input_model


SCHEMAS: dict[str, tuple[int, Callable[[], type[BaseModel]]]] = {
    "ir": (1, _model_class("patternc.ir", "Pattern")),
    "check-output": (1, _model_class("patternc.report", "CheckReport")),
    "model": (1, _model_class("patternc.model", "ModelSpec")),
    "stats-output": (1, _model_class("patternc.analysis.outputs", "StatsOutput")),
    "split-output": (1, _model_class("patternc.analysis.outputs", "SplitOutput")),
    "gen-output": (1, _model_class("patternc.analysis.outputs", "GenOutput")),
    "build-output": (1, _model_class("patternc.commands.outputs", "BuildOutput")),
    "run-output": (1, _model_class("patternc.commands.outputs", "RunOutput")),
    **{f"config-{name}": (1, _input_model(name)) for name in families.BUILTIN},
}
"""Published name -> (version, the pydantic model whose schema it is)."""


def file_name(name: str) -> str:
    version, _ = SCHEMAS[name]
    return f"{name}.v{version}.schema.json"


def schema_text(name: str) -> str:
    _, model = SCHEMAS[name]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **model().model_json_schema(),
        "$id": f"https://patternc.dev/schemas/{file_name(name)}",
    }
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
