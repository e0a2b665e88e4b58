"""The conventions every command shares (issue 12, defects 7 and 8 and "what users expect").

Patterns that start with ``-``, the pattern-or-path rule, the exit-code rule (2: the command line is
wrong; 1: the input has errors), ``-h``/``--version``/completion, examples and metavars in every
``--help``, case-insensitive choices with did-you-mean, one target vocabulary, and noise control
(``--quiet``, ``--select``/``--ignore``, ``--verbose``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc.cli import app

FIXTURES = Path(__file__).parents[1] / "fixtures"
NEMOTRON_H = FIXTURES / "hub" / "Nemotron-H-8B-Base-8K" / "config.json"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# -- defect 7: a pattern that starts with '-' ---------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["check", "-M*-"],
        ["check", "--", "-M*-"],
        ["check", "-M*-", "--json"],
        ["check", "--json", "-M*-"],
        ["check", "-t", "vllm", "-M*-"],
        ["check", "-d", "megatron", "-M*-"],
        ["check", "--max-layers", "8", "-M*-"],
    ],
)
def test_a_pattern_that_starts_with_a_dash_is_the_pattern(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code == 0, out + err
    if "--json" in args:
        assert json.loads(out)["pattern"] == "-M*-"
    else:
        assert out.startswith("pattern    -M*-\n")


def test_double_dash_patterns_and_other_commands() -> None:
    code, out, _ = run("check", "--json", "--M-M*-")
    assert code == 0 and json.loads(out)["pattern"] == "--M-M*-"
    assert run("fmt", "-M-M-M-M") == (0, "(-M){4}\n", "")
    code, out, _ = run("convert", "--to", "flat", "-M*-/*E")
    assert (code, out) == (0, "-M*-\n")


def test_an_unknown_lowercase_option_is_still_an_option_error_and_says_how() -> None:
    code, out, err = run("check", "-m*-")
    assert code == 2 and out == ""
    assert "No such option: -m" in err
    assert "goes after '--': patternc check -- PATTERN" in err


def test_an_option_value_that_starts_with_a_dash_stays_the_value() -> None:
    # --max-layers takes the next token, whatever it looks like: it is not moved to PATTERN
    code, _, err = run("check", "--max-layers", "-5", "M-")
    assert code == 2 and "--max-layers" in err


# -- defect 7: pattern or path -------------------------------------------------------------------------


def test_a_valid_pattern_that_names_a_file_is_the_pattern_with_a_note(scratch: Path) -> None:
    (scratch / "E").write_text("{}", encoding="utf-8")
    code, out, _ = run("check", "E", "--color", "never")
    assert code == 0
    assert out.startswith("pattern    E\n")
    assert "note[P016]: `E` is also the name of a file here; it was read as a pattern" in out
    assert "= help: to read the file, name it as a path: `./E`" in out
    code, out, _ = run("check", "./E", "--color", "never")  # the file, as a path
    assert code == 1 and "error[P905]" in out and "P016" not in out


def test_without_such_a_file_there_is_no_note(scratch: Path) -> None:
    code, out, _ = run("check", "E")
    assert code == 0 and "P016" not in out


def test_a_path_made_of_pattern_characters_says_why_it_was_read_as_a_path(scratch: Path) -> None:
    (scratch / "M-").mkdir()
    code, out, _ = run("check", "M-/", "--color", "never")
    assert code == 1
    assert "note[P017]: `M-/` was read as the directory of that name" in out
    assert "as a pattern: error[P104]" in out and "error[P901]" in out


def test_build_and_stats_follow_the_same_rule(scratch: Path) -> None:
    (scratch / "M-M*-").mkdir()  # a directory named like a valid pattern: the pattern wins, and says so
    code, out, err = run("stats", "M-M*-")
    assert code == 0, err
    assert "P901" not in out + err
    assert "note[P016]: `M-M*-` is also the name of a directory here; it was read as a pattern" in err
    code, out, err = run("build", "M-M*-", "-o", "out")
    assert code == 0, err
    assert out.startswith("built nemotron_h") and "note[P016]" in err


# -- defect 8: one rule for exit codes ---------------------------------------------------------------


def test_an_unknown_check_target_is_a_usage_error_with_did_you_mean() -> None:
    for extra in ([], ["--json"]):
        code, out, err = run("check", "M-M*-", "--target", "vlm", *extra)
        assert code == 2
        assert out == ""  # no verdict row, no half JSON document
        assert "error[P313]: unknown target `vlm`" in err and "did you mean `vllm`?" in err


def test_a_build_only_target_is_refused_by_check_and_a_check_only_one_by_build(tmp_path: Path) -> None:
    code, out, err = run("check", "M-M*-", "-t", "torch")
    assert code == 2 and out == ""
    assert "`torch` is a `build --target` name only" in err
    code, out, err = run("build", "M-M*-", "-o", str(tmp_path / "out"), "-t", "sglang")
    assert code == 2 and "`sglang` is a `check --target` name only" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_dialect_is_a_usage_error_with_did_you_mean() -> None:
    code, out, err = run("check", "-d", "Megatorn", "M-")
    assert code == 2 and out == ""
    assert "'Megatorn' is not one of hf, megatron, patternc; did you mean `megatron`?" in err


def test_choices_are_case_insensitive_everywhere() -> None:
    assert run("check", "-d", "MEGATRON", "--color", "Never", "--json", "M-M*-")[0] == 0
    assert run("convert", "--to", "FLAT", "M-M*-")[:2] == (0, "M-M*-\n")
    code, _, err = run("stats", "M-M*-", "--dtype", "fp33")
    assert code == 2 and "did you mean `fp32`?" in err


def test_a_set_value_of_the_wrong_type_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("build", "M-M*-", "-o", str(tmp_path / "out"), "--set", "hidden_size=abc")
    assert code == 2 and "`hidden_size='abc'`: input should be a valid integer" in err
    assert not (tmp_path / "out").exists()
    code, _, err = run("stats", "M-M*-", "--set", "hidden_size=-3")
    assert code == 2 and "greater than 0" in err


def test_input_errors_are_exit_1_and_usage_errors_exit_2() -> None:
    assert run("check", "M-X")[0] == 1  # read, has an error
    assert run("check", "M-M*-", "--target", "vllm", "--pp", "2")[0] in (0, 1)
    assert run("check", "--vpp", "2", "M-")[0] == 2  # the command line is wrong
    assert run("check", "--pp", "abc", "M-")[0] == 2
    assert run("check", "--ignore", "P99", "M-")[0] == 2
    # a single value outside its range is the command line's fault (gen's options are typed 0..1, N >= 1);
    # values that cannot be satisfied together are the input's (P607, exit 1)
    for args in (
        ["--layers", "8", "--attention", "1.5"],
        ["--layers", "0", "--attention", "0.5"],
        ["--layers", "8", "--attention", "0.25", "--mlp", "-0.1"],
        ["--layers", "8", "--attention", "0", "--mtp", "-1"],
    ):
        code, out, _ = run("gen", "--json", *args)
        assert (code, out) == (2, ""), args
    assert run("gen", "--layers", "3", "--attention", "0.5", "--mlp", "0.5")[0] == 1


# -- what users expect: -h, --version, completion, examples, metavars -----------------------------------


def _commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_short_help_examples_and_named_metavars(command: str) -> None:
    code, out, _ = run(command, "-h")
    assert code == 0 and out.startswith(f"Usage: patternc {command} ")
    assert "Examples:" in out, f"`{command}` has no examples: add them to patternc/cli_common.py EXAMPLES"
    assert "  patternc " + command in out.split("Examples:")[1]
    # values are named for what they are, not for their Python type
    assert not re.search(r"<(int|str|float|bool|list\[|int range|float range)", out), out
    assert run(command, "--help")[1] == out


def test_version_and_root_help() -> None:
    from patternc._version import __version__

    assert run("--version") == (0, f"patternc {__version__}\n", "")
    assert run("-V")[1] == f"patternc {__version__}\n"
    code, out, _ = run("-h")
    assert code == 0 and "--version" in out and "completion" in out
    assert "Examples:" in out and "2 the command line is wrong" in out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_prints_a_script(shell: str) -> None:
    code, out, _ = run("completion", shell)
    assert code == 0 and "_PATTERNC_COMPLETE" in out


def test_bash_completion_completes_options_and_choices(tmp_path: Path) -> None:
    """The printed script, sourced by a real bash, completes through the installed command."""
    exe = shutil.which("patternc")
    bash = shutil.which("bash")
    if exe is None or bash is None:
        pytest.skip("needs bash and the installed patternc")
    script = (
        'eval "$(patternc completion bash)"\n'
        'COMP_WORDS=(patternc check --dia); COMP_CWORD=2; _patternc_completion patternc; echo "${COMPREPLY[*]}"\n'
        "COMP_WORDS=(patternc check --dialect me); COMP_CWORD=3; _patternc_completion patternc; "
        'echo "${COMPREPLY[*]}"\n'
    )
    env = {**os.environ, "PATH": f"{Path(exe).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([bash, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.stdout.splitlines() == ["--dialect", "megatron"], done.stdout + done.stderr


def test_completion_of_an_unknown_shell_suggests() -> None:
    code, _, err = run("completion", "bsh")
    assert code == 2 and "did you mean `bash`?" in err


# -- one target vocabulary ------------------------------------------------------------------------------


def test_build_targets_are_what_the_registered_backends_write() -> None:
    from patternc.backends import build_targets
    from patternc.target_names import names_for

    assert sorted(names_for("build")) == sorted(build_targets())


def test_every_profile_has_one_vocabulary_entry_and_aliases_are_unique() -> None:
    from patternc.target_names import VOCABULARY, lookup
    from patternc.targets import PROFILES, resolve

    assert sorted(e.profile for e in VOCABULARY if e.profile) == sorted(PROFILES)
    spellings = [s.lower() for e in VOCABULARY for s in (e.name, *e.aliases)]
    assert len(spellings) == len(set(spellings))
    for entry in VOCABULARY:
        for spelling in (entry.name, *entry.aliases, entry.name.upper()):
            assert lookup(spelling) is entry
            if entry.profile:
                assert resolve(spelling) == entry.profile  # check_target's API speaks the same vocabulary


def test_check_and_build_accept_each_other_s_spellings(tmp_path: Path) -> None:
    names = ["-t", "Megatron", "-t", "transformers-nemotron_h", "-t", "NEMOTRON_H"]
    code, out, _ = run("check", "M-M*-", "--json", *names)
    assert code == 0
    assert list(json.loads(out)["targets"]) == ["megatron-core", "transformers-nemotron_h"]
    code, out, err = run("build", "M-M*-", "-o", str(tmp_path / "a"), "-t", "Transformers-Nemotron_H")
    assert code == 0, err
    assert out.startswith("built nemotron_h")


# -- noise control --------------------------------------------------------------------------------------


def test_quiet_prints_only_errors_and_the_verdict() -> None:
    code, out, _ = run("check", "E", "-q")
    assert (code, out) == (0, "ok: 0 errors, 1 warning\n")  # the warning is counted, not printed
    code, out, _ = run("check", "MX-", "--quiet", "--color", "never")
    assert code == 1 and out.startswith("error[P001]") and out.endswith("failed: 1 error, 0 warnings\n")


def test_ignore_and_select_filter_warnings_and_notes_but_never_errors() -> None:
    code, out, _ = run("check", "E", "--ignore", "P202")
    assert code == 0 and "P202" not in out
    assert out.endswith("ok: 0 errors, 0 warnings (1 hidden by --select/--ignore)\n")
    assert "P202" not in run("check", "E", "--select", "P9")[1]
    assert "P202" in run("check", "E", "--select", "P2")[1]
    assert "P202" in run("check", "E", "--select", "P202", "--ignore", "P2")[1]  # the longer prefix wins
    assert "P202" not in run("check", "E", "--ignore", "no-sequence-mixer")[1]  # a code's name
    code, out, _ = run("check", "MX-", "--ignore", "P0")
    assert code == 1 and "P001" in out  # errors are never hidden
    code, out, _ = run("check", "E", "--json", "--ignore", "P2")
    assert json.loads(out)["diagnostics"] == []


def test_every_command_that_prints_diagnostics_takes_the_same_noise_control() -> None:
    sized = ["stats", "M-M*-", "--set", "hidden_size=128"]  # P909: Mamba's inner size disagrees with expand
    code, out, err = run(*sized)
    assert code == 0 and "warning[P909]" in err
    for extra in (["--ignore", "P909"], ["--ignore", "P9"], ["--select", "P2"], ["-q"], ["--quiet"]):
        code, out2, err2 = run(*sized, *extra)
        assert code == 0 and "P909" not in err2 and out2 == out, extra
    assert "warning[P909]" in run(*sized, "--select", "P909")[2]
    code, _, err = run(*sized, "--ignore", "P99")
    assert code == 2 and "error[P930]" in err
    code, _, err = run("fmt", "-q", "MX")  # errors are never hidden
    assert code == 1 and "error[P001]" in err
    code, out, _ = run(*sized, "--json", "--ignore", "P909")  # the filter is for text; the document is whole
    assert code == 0 and json.loads(out) == json.loads(run(*sized, "--json")[1])
    assert "--select" not in run("explain", "-h")[1]


def test_an_unknown_code_in_ignore_is_p930() -> None:
    code, out, err = run("check", "E", "--ignore", "P99")
    assert code == 2 and out == ""
    assert "error[P930]: `--ignore P99` names no diagnostic code" in err and "did you mean `P909`?" in err


def test_canonical_verdict_is_short_unless_verbose() -> None:
    _, short, _ = run("check", str(NEMOTRON_H))
    _, long, _ = run("check", str(NEMOTRON_H), "--verbose")
    assert "canonical  nemotron_h\n  not exact: " in short and "mamba2 (2 reasons)" in short
    assert "`--verbose` says why" in short
    assert "  not mamba2:\n    - layers" in long and "--verbose" not in long
    assert len(long.splitlines()) > len(short.splitlines()) + 10


# -- the installed command ------------------------------------------------------------------------------


def test_installed_command_smoke(tmp_path: Path) -> None:
    exe = shutil.which("patternc") or str(Path(sys.executable).with_name("patternc"))
    if not Path(exe).exists():
        pytest.skip("the patternc console script is not installed")

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)

    done = call("check", "-M*-")
    assert done.returncode == 0 and done.stdout.startswith("pattern    -M*-"), done.stderr
    assert call("--version").stdout.startswith("patternc ")
    assert "Examples:" in call("check", "-h").stdout
    done = call("check", "M-", "-t", "vlm", "--json")
    assert done.returncode == 2 and done.stdout == "" and "P313" in done.stderr
    (tmp_path / "E").write_text("{}", encoding="utf-8")
    done = call("check", "E")
    assert done.returncode == 0 and "note[P016]" in done.stdout
