"""The command line: exit codes, stdin, the --json shape, and the installed entry points."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc.cli import app, run_example
from patternc.codes import CODES
from patternc.config._load import load
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


# ------------------------------------------------------------------------------------------------
# Folded from test_cli_audit.py:
# CLI defects found by a black-box audit (2026-11-30), each pinned by a test that fails without its fix.
# ------------------------------------------------------------------------------------------------
runner = CliRunner()


def test_a_directory_this_user_cannot_search_is_p901(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`chmod 000 dir` as a non-root user: stat of dir/config.json raises PermissionError (CI runs as root,
    for whom chmod changes nothing, so the OS error is simulated)."""
    (tmp_path / "config.json").write_text("{}")
    real = Path.is_file

    def denied(self: Path) -> bool:
        if self.name == "config.json":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "is_file", denied)
    _, data, problems = load(tmp_path, None, 2**20)
    assert data is None and [p.code for p in problems] == ["P901"] and "Permission denied" in problems[0].message


def test_every_error_of_every_example_says_what_to_do() -> None:
    missing = []
    for code in CODES:
        _, output, _ = run_example(code)
        for block in re.split(r"(?m)^(?=(?:error|warning|note)\[P\d{3}\])", output):
            if block.startswith("error[") and " = help:" not in block:
                missing.append(block.splitlines()[0])
    assert missing == []


def test_control_characters_are_shown_escaped_and_carets_stay_under_them() -> None:
    result = runner.invoke(app, ["check", "--color", "never", "M-\x1b[31mMX"])
    assert "\x1b" not in result.output
    lines = result.output.splitlines()
    source_line = next(line for line in lines if line.startswith("1 | "))
    assert source_line == "1 | M-\\x1b[31mMX"
    carets = lines[lines.index(source_line) + 1]
    assert carets.index("^") == source_line.index("\\x1b") and carets.count("^") == len("\\x1b")
    rtl = runner.invoke(app, ["check", "--color", "never", "M\u202eX"])
    assert "\u202e" not in rtl.output and "\\u202e" in rtl.output


def test_stdin_cut_inside_a_character_is_p012_not_a_usage_error() -> None:
    result = runner.invoke(app, ["check", "--max-chars", "5", "-"], input="é" * 10)
    assert result.exit_code == 1 and "error[P012]" in result.output
    assert "more than 5 characters" in result.output
    broken = runner.invoke(app, ["check", "-"], input=b"M-\xff")
    assert broken.exit_code == 2 and "not UTF-8" in broken.output


def test_stats_json_stays_json_on_failure() -> None:
    result = runner.invoke(app, ["stats", "--json", "MX"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and [d["code"] for d in payload["diagnostics"]] == ["P001"]


def test_gen_is_bounded_like_check() -> None:
    result = runner.invoke(app, ["gen", "--layers", "100000000", "--attention", "0.1"])
    assert result.exit_code == 1 and "error[P011]" in result.output and len(result.output) < 1000


def test_unknown_set_keys_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "M-M*-", "-o", str(tmp_path / "o"), "--set", "hiden_size=128"])
    assert result.exit_code == 2 and "did you mean `hidden_size`" in result.output
    assert not (tmp_path / "o").exists()


def test_run_on_the_meta_device_is_p407() -> None:
    pytest.importorskip("torch")
    result = runner.invoke(app, ["run", "tests/fixtures/torch/P407", "--ids", "1", "--device", "meta"])
    assert result.exit_code == 1 and "error[P407]" in result.output


def test_published_files_follow_the_umask(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    result = runner.invoke(app, ["build", "M-M*-", "--target", "torch", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((tmp_path / "o" / name).stat().st_mode) == 0o666 & ~mask


def test_a_rust_panic_is_an_internal_error_not_exit_1() -> None:
    """pyo3's PanicException derives from BaseException: main() maps it to 101 like any internal error."""
    code = (
        "import sys, patternc.cli as c\n"
        "class PanicException(BaseException): pass\n"
        "def boom(**kw): raise PanicException('rust panicked')\n"
        "c.app = boom\n"
        "sys.argv = ['patternc', 'check', 'M']\n"
        "c.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 101 and "internal error: PanicException" in done.stderr
    assert "Traceback" not in done.stderr


def test_unmatched_brackets_do_not_hide_the_other_problems() -> None:
    import patternc

    found = patternc.analyze("MXM-Y-)((").diagnostics
    assert sorted((d.code, d.span.start if d.span else -1) for d in found) == [
        ("P001", 1),
        ("P001", 4),
        ("P008", 6),
        ("P008", 7),
        ("P008", 8),
    ]
    assert patternc.analyze("MX)").pattern is None
    assert [d.code for d in patternc.analyze("M-)").diagnostics] == ["P008"]


def test_fmt_of_a_long_part_bounds_its_cubic_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 100,000-character part took 28 s: every repeated unit and every stretch between repeats went
    through the cubic shortest-form search.  Now units are remembered and pruned, stretches capped."""
    import importlib
    import random

    import patternc

    fmt_module = importlib.import_module("patternc.fmt")  # the module: `patternc.fmt` is also the function

    lengths: list[int] = []
    real = fmt_module._shortest
    monkeypatch.setattr(fmt_module, "_shortest", lambda text, *rest: lengths.append(len(text)) or real(text, *rest))
    fmt_module._unit_spelling.cache_clear()
    rng = random.Random(1)
    text = "".join(rng.choice("M-*") for _ in range(3000)) + "".join("M" * i + "-" for i in range(1, 60))
    pattern = patternc.parse(text)
    assert patternc.parse(patternc.fmt(pattern)) == pattern
    assert max(lengths) <= max(fmt_module.LITERAL_LIMIT, fmt_module.GREEDY_PERIOD)
    assert len(lengths) < 2000  # one search per distinct unit or stretch, not one per position and period


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "--to", "flat", "MX"],
        ["fmt", "MX"],
        ["stats", "MX"],
        ["gen", "--layers", "3", "--attention", "0.5", "--mlp", "0.5"],
    ],
)
def test_data_commands_keep_diagnostics_off_stdout(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and result.stdout == "" and "error[P" in result.stderr


def test_small_usage_gaps() -> None:
    assert runner.invoke(app, ["check", "--vpp", "2", "M-M*-|M-"]).exit_code == 2
    assert runner.invoke(app, ["build", "M", "-o", ""]).exit_code == 2


def test_run_says_when_it_runs_random_weights(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    bare = runner.invoke(app, ["run", "tests/fixtures/torch/P407", "--ids", "1 2", "-n", "1"])
    assert bare.exit_code == 0 and "holds no weights" in bare.stderr and "holds no weights" not in bare.stdout
    built = runner.invoke(app, ["build", "M-M*-", "--target", "torch", "-o", str(tmp_path / "o")])
    assert built.exit_code == 0
    loaded = runner.invoke(app, ["run", str(tmp_path / "o"), "--ids", "1 2", "-n", "1"])
    assert loaded.exit_code == 0 and "holds no weights" not in loaded.stderr


def test_undecodable_argv_is_the_same_usage_error_as_undecodable_stdin() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "patternc", "check", os.fsdecode(b"M\xff-")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "not UTF-8" in done.stderr


def test_a_syntax_error_does_not_hide_unknown_symbols() -> None:
    import patternc

    assert [d.code for d in patternc.analyze("MX{").diagnostics] == ["P001", "P009"]
    assert [d.code for d in patternc.analyze("M{a}").diagnostics] == ["P009"]  # the P009 already points there


def test_the_verdict_counts_the_diagnostics_the_cap_hides() -> None:
    result = runner.invoke(app, ["check", "--color", "never", "--max-diagnostics", "2", "MXYZ-WQ"])
    assert result.output.rstrip().endswith("failed: 5 errors, 0 warnings")


def test_labels_on_one_span_are_printed_once() -> None:
    from patternc.diagnostics import Label, diag
    from patternc.render import render_text
    from patternc.source import Source, Span

    d = diag("P201", "both", Span(0, 2), label="first MoE layer", secondary=[Label(Span(0, 2), "first MLP layer")])
    text = render_text([d], Source("M-E", "<t>"))
    assert text.count("^^") == 1 and "first MoE layer; first MLP layer" in text
