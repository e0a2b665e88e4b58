"""Exit codes live in ``patternc.exit_codes``; the commands take them from there, never from ``patternc.cli``."""

from __future__ import annotations

import ast
from pathlib import Path

from typer.testing import CliRunner

from patternc.cli import app
from patternc.exit_codes import EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2] / "patternc"


def test_the_documented_values() -> None:
    assert (EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL) == (0, 1, 2, 101)


def test_no_module_below_the_cli_imports_it() -> None:
    below = [ROOT / "cli_common.py", ROOT / "explain" / "__init__.py", *sorted((ROOT / "commands").glob("*.py"))]
    for path in below:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else ([a.name for a in node.names] if isinstance(node, ast.Import) else [])
            )
            assert "patternc.cli" not in names, path


def test_each_code_is_what_the_cli_returns() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["check", "M-M*-"]).exit_code == EXIT_OK
    assert runner.invoke(app, ["check", "M-X"]).exit_code == EXIT_ERRORS
    assert runner.invoke(app, ["explain", "P999"]).exit_code == EXIT_USAGE
