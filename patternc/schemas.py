"""The published JSON Schemas, generated from the pydantic models.

``schemas/<name>.v<N>.schema.json`` in the repository holds the committed text; a test fails
when the models drift from it (regenerate with ``python -m patternc.schemas --write``).

Each field's description in a schema is the docstring under the field in its class.  The models
do not ask pydantic for those (``use_attribute_docstrings``): pydantic would then read and parse
each class's source every time the class is created, in every ``patternc check`` (0.2 s of a cold
start, most of it on a bare pattern).  They are read here instead, only when a schema is written
or compared (``describe``).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import sys
import textwrap
import typing
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path

from pydantic import BaseModel

from patternc import families


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


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """The docstrings written under the annotated attributes in ``cls``'s own body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a class made at run time): no descriptions
        return {}
    body = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)).body
    docs: dict[str, str] = {}
    for field, after in itertools.pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _models_under(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """``model`` and every pydantic model its fields can hold, each after the models it holds."""
    seen: set[type[BaseModel]] = set()

    def annotations(tp: object) -> Iterator[type[BaseModel]]:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            yield tp
        for arg in typing.get_args(tp):
            yield from annotations(arg)

    def visit(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
        if cls in seen:
            return
        seen.add(cls)
        for field in cls.model_fields.values():
            for held in annotations(field.annotation):
                yield from visit(held)
        yield cls

    yield from visit(model)


_DESCRIBED: set[type[BaseModel]] = set()
"""Classes already given their descriptions: the schemas share models (the diagnostics, the IR), and
each is read and rebuilt once per process, not once per schema that holds it."""


def describe(model: type[BaseModel]) -> None:
    """Give every field of ``model`` (and of the models under it) its attribute docstring as its
    description, as pydantic's ``use_attribute_docstrings`` would, and rebuild the schemas."""
    for cls in _models_under(model):
        if cls in _DESCRIBED:
            continue
        _DESCRIBED.add(cls)
        docs: dict[str, str] = {}
        for base in reversed(cls.__mro__):
            if isinstance(base, type) and issubclass(base, BaseModel) and base is not BaseModel:
                docs |= _attribute_docstrings(base)
        for name, field in cls.model_fields.items():
            if field.description is None and name in docs:
                field.description = docs[name]
        # every class, after the classes it holds: a class's schema embeds those it holds as they were
        cls.model_rebuild(force=True)


def file_name(name: str) -> str:
    version, _ = SCHEMAS[name]
    return f"{name}.v{version}.schema.json"


def schema_text(name: str) -> str:
    _, model = SCHEMAS[name]
    describe(model())
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
