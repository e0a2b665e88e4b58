"""``patternc.explain`` assembles text only: the example is run by the command line (issue 13)."""

from __future__ import annotations

import ast
from pathlib import Path

from patternc.codes import BY_CODE
from patternc.explain import example_files, explanation, write_example_files


def test_the_explanation_ends_with_the_example_command() -> None:
    found = explanation("unknown-symbol")
    assert found is not None and found.code is BY_CODE["P001"]
    assert found.command == "patternc check 'M-M*X-'"
    assert found.text.startswith("P001 unknown-symbol (error): ")
    assert found.text.endswith("Example:\n\n    $ patternc check 'M-M*X-'\n")
    assert explanation("P999") is None


def test_explain_imports_nothing_of_the_command_line() -> None:
    source = Path(__file__).resolve().parents[2] / "patternc" / "explain" / "__init__.py"
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name and (name.startswith(("patternc.cli", "typer", "click")))}


def test_example_files_are_package_data_written_where_the_example_runs(tmp_path: Path) -> None:
    code = BY_CODE["P403"]
    assert example_files(code) == [
        "tests/fixtures/torch/P403/config.json",
        "tests/fixtures/torch/P403/model.safetensors",
    ]
    write_example_files(code, tmp_path)
    assert (tmp_path / "tests/fixtures/torch/P403/config.json").read_text(encoding="utf-8").startswith("{")
    assert example_files(BY_CODE["P001"]) == []
