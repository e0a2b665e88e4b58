"""CLI defects found by a black-box audit (2026-11-30), each pinned by a test that fails without its fix."""

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
        ("P001", 1), ("P001", 4), ("P008", 6), ("P008", 7), ("P008", 8)
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
    monkeypatch.setattr(fmt_module, "_shortest", lambda text: lengths.append(len(text)) or real(text))
    fmt_module._unit_spelling.cache_clear()
    rng = random.Random(1)
    text = "".join(rng.choice("M-*") for _ in range(3000)) + "".join("M" * i + "-" for i in range(1, 60))
    pattern = patternc.parse(text)
    assert patternc.parse(patternc.fmt(pattern)) == pattern
    assert max(lengths) <= max(fmt_module.LITERAL_LIMIT, fmt_module.GREEDY_PERIOD)
    assert len(lengths) < 2000  # one search per distinct unit or stretch, not one per position and period


@pytest.mark.parametrize("args", [["convert", "--to", "flat", "MX"], ["fmt", "MX"], ["stats", "MX"],
                                  ["gen", "--layers", "3", "--attention", "0.5", "--mlp", "0.5"]])
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
    done = subprocess.run([sys.executable, "-m", "patternc", "check", os.fsdecode(b"M\xff-")],
                          capture_output=True, text=True)
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
