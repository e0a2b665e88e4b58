"""Hostile command lines: any argv and any stdin end in exit 0, 1 or 2, never a traceback or 101."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.cli import app

COMMANDS = ["check", "fmt", "convert", "explain", "schema", "backends", "stats", "split", "gen"]
WORDS = [
    "-d",
    "hf",
    "megatron",
    "--json",
    "--max-layers",
    "--max-chars",
    "--pp",
    "--vpp",
    "-t",
    "vllm",
    "--targets",
    "--to",
    "flat",
    "--from-list",
    "--seq-len",
    "--batch",
    "--dtype",
    "--cost",
    "--layers",
    "--attention",
    "--mlp",
    "--moe",
    "0",
    "-1",
    "1e309",
    "nan",
    "99999999999999999999999",
    "-",
    "M-M*-",
    "(M-){99999999}",
    "P001",
    "ir",
    "/nonexistent.json",
    "\x7f",
    "é",
    "",
]


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(COMMANDS),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6),
    st.binary(max_size=64),
)
def test_any_argv_exits_0_1_or_2(command: str, args: list[str], stdin: bytes) -> None:
    args = [a.replace("\x00", "") for a in args]
    result = CliRunner().invoke(app, [command, *args], input=stdin)
    assert result.exit_code in (0, 1, 2), (args, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


@pytest.mark.parametrize(
    "args",
    [["check", "-", "--max-chars", "4"], ["fmt", "-"], ["convert", "--from-list", "-"]],
)
def test_stdin_that_is_not_utf8_is_a_usage_error(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, input=b"M-\xff\xfe")
    assert result.exit_code == 2 and "not UTF-8" in result.output


@pytest.mark.parametrize("pattern", ["D", "MG-", "M+-/D"])
def test_build_of_a_pattern_without_a_transformers_name_is_a_diagnostic(pattern: str, tmp_path: object) -> None:
    """Found by tests/fuzz/fuzz_cli.py: the P015 PatternError escaped as an internal error (101).  Since issue 13
    it is ``stats``' P601 (the bare-pattern defaults size no such layer), with a caret under the layer."""
    result = CliRunner().invoke(app, ["build", pattern, "-o", f"{tmp_path}/out"])
    assert result.exit_code == 1 and "error[P601]" in result.output and "^ no sizes for this layer" in result.output, (
        result.output
    )


@pytest.mark.parametrize("command", [["stats", "M-M*-"], ["split", "M-M*-", "--pp", "1"]])
def test_an_unknown_dialect_is_a_usage_error(command: list[str]) -> None:
    """Found by tests/fuzz/fuzz_cli.py: `stats`/`split` took --dialect as free text and raised ValueError (101)."""
    result = CliRunner().invoke(app, [*command, "--dialect", "0"])
    assert result.exit_code == 2 and "'0' is not one of" in result.output
