"""The command line: exit codes, stdin, the --json shape, and the installed entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc.cli import app
from patternc.codes import CODES
from patternc.report import CheckReport

runner = CliRunner()


VENV_BIN = Path(sys.executable).parent

SUMMARY = """\
pattern    M-M*-
layers     5
counts     M 2  * 1  - 2
attention  3 (0-based)
stages     1
mtp        none
family     dense_hybrid (dense hybrid (SSM + attention + MLP))
ok: 0 errors, 0 warnings
"""


def invoke(*args: str, input: str | bytes | None = None):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# --- the done-means commands ------------------------------------------------------------------


def test_check_ok_prints_the_summary() -> None:
    result = invoke("check", "M-M*-")
    assert result.exit_code == 0
    assert result.output == SUMMARY


def test_check_error_puts_a_caret_under_x() -> None:
    result = invoke("check", "M-M*X-")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "error[P001]: `X` is not a layer symbol"
    assert lines[1] == " --> <argv>:1:5"
    source_line = lines.index("1 | M-M*X-")
    caret_line = lines[source_line + 1]
    assert caret_line == "  |     ^ unknown symbol"
    assert caret_line.index("^") == lines[source_line].index("X")
    assert lines[-1] == "failed: 1 error, 0 warnings"


def test_check_megatron_mtp_json() -> None:
    result = invoke("check", "MEME/*E/*E", "--dialect", "megatron", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["mtp"] == {"pattern": "*E", "depths": 2}
    assert report["ok"] is True
    assert report["pattern"] == "MEME"
    assert report["megatron"] == "MEME/*E/*E"
    assert report["layers"] == 4
    assert report["counts"] == {"M": 2, "E": 2}
    assert report["stages"] == ["MEME"]
    assert report["family"] == "pure_ssm"
    assert report["diagnostics"] == []


# --- check ------------------------------------------------------------------------------------

JSON_KEYS = {
    "schema_version",
    "ok",
    "dialect",
    "pattern",
    "megatron",
    "layers",
    "counts",
    "attention_layers",
    "family",
    "family_description",
    "stages",
    "mtp",
    "diagnostics",
}
DIAGNOSTIC_KEYS = {"code", "name", "severity", "message", "span", "label", "help", "labels", "notes"}


def test_check_json_shape_on_error() -> None:
    result = invoke("check", "M-\nM*X-", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert JSON_KEYS <= set(report) == set(CheckReport.model_fields)
    assert report["ok"] is False
    for key in ("pattern", "layers", "counts", "family", "stages", "mtp"):
        assert report[key] is None
    [d] = report["diagnostics"]
    assert set(d) == DIAGNOSTIC_KEYS
    assert (d["code"], d["name"], d["severity"]) == ("P001", "unknown-symbol", "error")
    assert d["message"] == "`X` is not a layer symbol"
    assert d["span"] == {"start": 5, "end": 6, "line": 2, "column": 3}
    assert d["help"].startswith("valid symbols: `M` (Mamba2 mixer)")
    assert d["labels"] == [] and d["notes"] == []


def test_check_json_warning_is_ok() -> None:
    result = invoke("check", "M-M*EM-", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert JSON_KEYS <= set(report) == set(CheckReport.model_fields)
    assert report["ok"] is True
    assert report["family"] == "mixed_hybrid"
    [d] = report["diagnostics"]
    assert (d["code"], d["severity"]) == ("P201", "warning")
    assert d["span"] == {"start": 4, "end": 5, "line": 1, "column": 5}
    assert d["labels"] == [{"span": {"start": 1, "end": 2, "line": 1, "column": 2}, "message": "first MLP layer"}]


def test_check_json_stages() -> None:
    report = json.loads(invoke("check", "(M-|){2}M*", "--json").output)
    assert report["stages"] == ["M-", "M-", "M*"]
    assert report["megatron"] == "M-|M-|M*"
    assert report["attention_layers"] == [5]


def test_check_warning_exits_zero() -> None:
    result = invoke("check", "M-M*-||M-M*-")
    assert result.exit_code == 0
    assert "warning[P102]" in result.output
    assert result.output.endswith("ok: 0 errors, 1 warning\n")


def test_check_reads_stdin() -> None:
    result = invoke("check", "-", input="M-M*-\n")
    assert result.exit_code == 0
    assert result.output == SUMMARY
    result = invoke("check", "-", input="M-\nM*X-\n")
    assert result.exit_code == 1
    assert " --> <stdin>:2:3" in result.output


def test_check_stdin_not_utf8_is_usage_error() -> None:
    result = invoke("check", "-", input=b"M-\xff")
    assert result.exit_code == 2
    assert "not UTF-8" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("check",),
        ("check", "--dialect", "bogus", "M"),
        ("check", "--max-layers", "0", "M"),
        ("check", "--nope", "M"),
        ("frobnicate",),
        ("convert", "--to", "onnx", "M"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    assert invoke(*args).exit_code == 2


def test_check_limits_options() -> None:
    result = invoke("check", "--max-layers", "3", "M{4}")
    assert result.exit_code == 1 and "error[P011]" in result.output
    result = invoke("check", "--max-chars", "4", "M-M*-")
    assert result.exit_code == 1 and "error[P012]" in result.output
    result = invoke("check", "--max-diagnostics", "1", "xyz")
    assert result.exit_code == 1 and "note[P013]" in result.output


def test_check_color() -> None:
    plain = invoke("check", "--color", "never", "M-M*X-").output
    colored = invoke("check", "--color", "always", "M-M*X-").output
    assert "\x1b[" not in plain
    assert "\x1b[1;31merror[P001]" in colored


def test_leading_dash_pattern_needs_double_dash() -> None:
    result = invoke("check", "--", "-E-E")
    assert result.exit_code == 0
    assert "warning[P202]" in result.output


# --- fmt, convert -----------------------------------------------------------------------------


def test_fmt() -> None:
    result = invoke("fmt", "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-")
    assert (result.exit_code, result.output) == (0, "M-M-M-M(*(-M){5}){4}-\n")
    assert invoke("fmt", "-", input="(M-){2}\n").output == "M-M-\n"
    result = invoke("fmt", "M-M*X-")
    assert result.exit_code == 1 and "error[P001]" in result.output
    assert invoke("fmt", "--dialect", "hf", "M-|M").exit_code == 1


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("flat", "M-M-M*-"),
        ("megatron", "M-M-|M*-/*E"),
        ("fmt", "M-M-|M*-/*E"),
        (
            "layers_block_type",
            '{"layers_block_type": ["linear_attention", "mlp", "linear_attention", "mlp", "linear_attention", '
            '"full_attention", "mlp"], '
            '"mtp_layers_block_type": ["full_attention", "moe"], "num_nextn_predict_layers": 1}',
        ),
        (
            "legacy_layers_block_type",
            '{"layers_block_type": ["mamba", "mlp", "mamba", "mlp", "mamba", "attention", "mlp"], '
            '"mtp_layers_block_type": ["attention", "moe"], "num_nextn_predict_layers": 1}',
        ),
    ],
)
def test_convert(to: str, expected: str) -> None:
    result = invoke("convert", "--to", to, "(M-){2}|M*-/*E")
    assert result.exit_code == 0, result.output
    assert result.output == expected + "\n"


def test_convert_defaults_to_megatron() -> None:
    assert invoke("convert", "(M-){2}").output == "M-M-\n"


def test_convert_from_list() -> None:
    result = invoke("convert", "--from-list", "--to", "flat", "mamba, mlp,full_attention,moe")
    assert (result.exit_code, result.output) == (0, "M-*E\n")
    result = invoke("convert", "--from-list", "mamba,mlp,mamba2")
    assert result.exit_code == 1
    assert result.output.startswith("error[P014]: layers_block_type[2] is 'mamba2'")


def test_convert_errors() -> None:
    result = invoke("convert", "--to", "layers_block_type", "MG*-")
    assert result.exit_code == 1 and result.output.startswith("error[P015]")
    result = invoke("convert", "M-M*X-")
    assert result.exit_code == 1 and "error[P001]" in result.output


# --- explain, schema, backends ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["P001", "p001", "unknown-symbol"])
def test_explain(key: str) -> None:
    result = invoke("explain", key)
    assert result.exit_code == 0
    assert result.output.startswith("P001 unknown-symbol (error): a character that is no layer symbol\n")
    assert "$ patternc check 'M-M*X-'" in result.output
    assert "error[P001]" in result.output


def test_explain_every_code() -> None:
    for code in CODES:
        result = invoke("explain", code.code)
        assert result.exit_code == 0, code.code
        assert f"[{code.code}]" in result.output, code.code


def test_explain_unknown_code() -> None:
    result = invoke("explain", "P999")
    assert result.exit_code == 2
    assert "unknown diagnostic code 'P999'" in result.output


@pytest.mark.parametrize("name", ["ir", "check-output"])
def test_schema(name: str) -> None:
    result = invoke("schema", name)
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://patternc.dev/schemas/{name}.v1.schema.json"


def test_schema_unknown() -> None:
    result = invoke("schema", "nope")
    assert result.exit_code == 2
    assert "unknown schema 'nope'" in result.output


def test_backends() -> None:
    from patternc.backends import listing

    result = invoke("backends")
    assert result.exit_code == 0
    assert result.output == "".join(f"{line}\n" for line in listing())
    assert result.output.startswith("megatron\tmegatron\t")


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert result.exit_code in (0, 2)
    assert "check" in result.output and "fmt" in result.output


# --- the installed entry points (one subprocess each) -----------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PATTERNC_DEBUG")}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def test_console_script() -> None:
    script = VENV_BIN / "patternc"
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    done = subprocess.run(
        [str(script), "check", "M-M*X-"], capture_output=True, text=True, env=_env(), timeout=60, check=False
    )
    assert done.returncode == 1
    assert "  |     ^ unknown symbol" in done.stdout
    assert done.stderr == ""


def test_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "patternc", "check", "M-M*-"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, SUMMARY, "")
