"""``build --json`` / ``run --json`` (valid against their published schemas in every outcome), ``--quiet``, and
the progress shown for long work: a conversion's bytes and tensors, a generation's tokens per second."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
jsonschema = pytest.importorskip("jsonschema")

from typer.testing import CliRunner  # noqa: E402

import patternc.progress  # noqa: E402
from patternc.cli import app  # noqa: E402
from patternc.progress import ConversionBar, TokenClock  # noqa: E402
from patternc.schemas import schema_text  # noqa: E402

runner = CliRunner()
BUILD_SCHEMA = json.loads(schema_text("build-output"))
RUN_SCHEMA = json.loads(schema_text("run-output"))


class Terminal(io.StringIO):
    """A stream that says it is a terminal (rich then draws as it would for a person)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch-backend directory with weights for ``M-M*-`` (hidden 32): a checkpoint ``build --weights`` reads."""
    out = tmp_path_factory.mktemp("ck") / "ck"
    result = runner.invoke(app, ["build", "M-M*-", "--set", "hidden_size=32", "--target", "torch", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _json(result: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """stdout is exactly one JSON object, valid against ``schema``."""
    data: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(data, schema)
    assert data["schema_version"] == 1
    return data


# -- build --json ---------------------------------------------------------------------------------


def test_build_json_success_with_weights(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = runner.invoke(
        app, ["build", "M-M*-", "--set", "hidden_size=32", "-o", str(out), "--weights", str(checkpoint), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = _json(result, BUILD_SCHEMA)
    assert data["ok"] is True and data["out_dir"] == str(out) and data["architecture"] == "nemotron_h"
    assert data["files"][0] == "config.json" and "model.safetensors.index.json" in data["files"]
    shards = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    assert data["weights"]["tensors"] > 0 and 0 < data["weights"]["bytes"] < shards  # shards add headers
    assert data["parameters"] == data["stored_elements"] and data["layers"] == 5 and data["decoder_layers"] is None
    assert result.stderr == ""


def test_build_json_carries_warnings_and_buffers(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "M-M*E", "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    data = _json(result, BUILD_SCHEMA)
    assert data["weights"] is None and data["files"] == ["config.json"]
    assert data["parameters"] < data["stored_elements"]  # the router's score-correction bias is a buffer
    assert [d["code"] for d in data["diagnostics"]] == ["P201"]  # the warning is in the JSON, not on stderr
    assert "P201" not in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["M-MX"], "P001"),  # the pattern does not parse
        (["M-MG"], "P601"),  # a layer kind the bare-pattern defaults do not size
        (["nowhere.json"], "P901"),  # the config cannot be read
        (["G-G*-", "--target", "vllm"], None),  # vLLM's loader cannot take it
    ],
)
def test_build_json_failures_are_schema_valid(args: list[str], code: str | None, tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", *args, "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 1, result.output
    data = _json(result, BUILD_SCHEMA)
    assert data["ok"] is False and data["out_dir"] is None and data["files"] == []
    errors = [d["code"] for d in data["diagnostics"] if d["severity"] == "error"]
    assert errors and (code is None or code in errors)
    assert not (tmp_path / "o").exists()


def test_build_json_when_the_output_exists(tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    result = runner.invoke(app, ["build", "M-M*-", "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 1
    data = _json(result, BUILD_SCHEMA)
    assert data["ok"] is False and [d["code"] for d in data["diagnostics"]] == ["P502"]


def test_build_json_megatron(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "M-M*-", "-o", str(tmp_path / "o"), "--target", "megatron", "--json"])
    assert result.exit_code == 0, result.output
    data = _json(result, BUILD_SCHEMA)
    assert data["ok"] is True and data["architecture"] == "megatron" and data["files"] == ["megatron_args.json"]
    assert data["hybrid_layer_pattern"] and (tmp_path / "o" / "megatron_args.json").is_file()


def test_build_quiet_keeps_errors_only(tmp_path: Path) -> None:
    loud = runner.invoke(app, ["build", "M-M*E", "-o", str(tmp_path / "a")])
    quiet = runner.invoke(app, ["build", "M-M*E", "-o", str(tmp_path / "b"), "--quiet"])
    assert loud.exit_code == quiet.exit_code == 0
    assert "warning[P201]" in loud.stderr and quiet.stderr == ""
    failed = runner.invoke(app, ["build", "M-MX", "-o", str(tmp_path / "c"), "-q"])
    assert failed.exit_code == 1 and "error[P001]" in failed.stderr


# -- run --json -----------------------------------------------------------------------------------


def test_run_json_success(checkpoint: Path) -> None:
    result = runner.invoke(app, ["run", str(checkpoint), "--ids", "1 2 3", "--ids", "4", "-n", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = _json(result, RUN_SCHEMA)
    text = runner.invoke(app, ["run", str(checkpoint), "--ids", "1 2 3", "--ids", "4", "-n", "3"])
    assert [" ".join(map(str, row["ids"])) for row in data["rows"]] == text.stdout.splitlines()
    assert data["ok"] is True and data["device"] == "cpu" and data["dtype"] == "float32"
    assert data["weights"] == str(checkpoint) and [r["prompt_ids"] for r in data["rows"]] == [[1, 2, 3], [4]]
    timing = data["timing"]
    assert (timing["prompt_tokens"], timing["new_tokens"], timing["rows"]) == (3, 3, 2)
    assert timing["prefill_seconds"] >= 0 and timing["decode_tokens_per_second"] > 0


def test_run_json_failure_and_random_weights(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["run", str(tmp_path / "nothing"), "--ids", "1", "--json"])
    assert missing.exit_code == 1
    data = _json(missing, RUN_SCHEMA)
    assert data["ok"] is False and data["rows"] == [] and data["timing"] is None
    assert [d["code"] for d in data["diagnostics"]] == ["P402"]
    bare = runner.invoke(app, ["run", "tests/fixtures/torch/P407", "--ids", "1 2", "-n", "1", "--json"])
    assert bare.exit_code == 0
    data = _json(bare, RUN_SCHEMA)
    assert data["weights"] is None and bare.stderr == ""  # the JSON says it: weights null, and a P408 note
    assert [(d["code"], d["severity"]) for d in data["diagnostics"]] == [("P408", "note")]


def test_run_quiet_drops_the_note() -> None:
    result = runner.invoke(app, ["run", "tests/fixtures/torch/P407", "--ids", "1 2", "-n", "1", "--quiet"])
    assert result.exit_code == 0 and result.stderr == "" and result.stdout.strip()


# -- progress -------------------------------------------------------------------------------------


def test_the_conversion_reports_every_tensor_and_byte(checkpoint: Path, tmp_path: Path) -> None:
    """The progress callback is told the work ahead, then each tensor: its counts match what was written."""
    from patternc_checkpoint import Tally, open_checkpoint
    from patternc_torch.io import read_spec
    from patternc_transformers.build import build_model_dir

    spec, _ = read_spec(checkpoint)
    tally = Tally()
    result = build_model_dir(spec, tmp_path / "o", target="nemotron_h", weights=checkpoint, progress=tally)
    assert result.ok, result.diagnostics
    written = open_checkpoint(tmp_path / "o").tensors
    assert tally.tensors == tally.done_tensors == result.tensors == len(written)
    assert tally.total_bytes == tally.done_bytes == result.total_bytes == sum(t.nbytes for t in written.values())
    assert tally.finished


def test_the_bar_counts_and_draws_bytes_and_tensors() -> None:
    stream = Terminal()
    bar = ConversionBar(stream=stream)
    bar.start(3, 3_000_000)
    for size in (1_000_000, 1_500_000, 500_000):
        bar.advance(size)
    bar.finish()
    assert (bar.done_tensors, bar.done_bytes) == (3, 3_000_000)
    drawn = stream.getvalue()
    assert "3/3 tensors" in drawn and "3.0/3.0 MB" in drawn


def test_no_progress_when_stderr_is_not_a_terminal(checkpoint: Path, tmp_path: Path) -> None:
    built = runner.invoke(
        app, ["build", "M-M*-", "--set", "hidden_size=32", "-o", str(tmp_path / "o"), "--weights", str(checkpoint)]
    )
    ran = runner.invoke(app, ["run", str(checkpoint), "--ids", "1 2", "-n", "4"])
    assert built.exit_code == ran.exit_code == 0
    assert "converting" not in built.stderr and "/32 tensors" not in built.stderr  # a warning is there, no bar
    assert ran.stderr == ""


def test_progress_when_stderr_is_a_terminal(checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same commands with stderr taken for a terminal draw the bar and the speed (and --quiet does not)."""
    monkeypatch.setattr(patternc.progress, "watched", lambda stream=None, *, quiet=False: not quiet)
    built = runner.invoke(
        app,
        ["build", "M-M*-", "--set", "hidden_size=32", "-o", str(tmp_path / "o"), "--weights", str(checkpoint), "-q"],
    )
    assert built.exit_code == 0 and built.stderr == ""
    built = runner.invoke(
        app, ["build", "M-M*-", "--set", "hidden_size=32", "-o", str(tmp_path / "p"), "--weights", str(checkpoint)]
    )
    assert built.exit_code == 0 and "32/32 tensors" in built.stderr and "32/32 tensors" not in built.stdout
    ran = runner.invoke(app, ["run", str(checkpoint), "--ids", "1 2", "-n", "4"])
    assert ran.exit_code == 0 and "tokens/s" in ran.stderr and "tokens/s" not in ran.stdout


def test_the_token_clock_times_prompt_and_decode_apart() -> None:
    times = iter([10.0, 10.5, 10.75, 11.0, 11.25])
    clock = TokenClock(rows=2, now=lambda: next(times))
    clock.begin(4)
    for n in range(1, 5):
        clock.tick(n)
    assert clock.prefill_seconds == 0.5 and clock.decode_seconds == 0.75
    assert clock.decode_rate() == 8.0  # 3 steps after the first token, 2 rows, 0.75 s
    assert clock.summary(5) == "generated 4 tokens x 2 rows: prompt (5 tokens) 0.50 s, decoding 8.0 tokens/s"
    one = TokenClock(now=iter([0.0, 0.25]).__next__)
    one.begin(1)
    one.tick(1)
    assert one.summary(1) == "generated 1 token: prompt (1 token) 0.25 s"  # no decode rate from one token


def test_generate_calls_back_once_per_new_token() -> None:
    from patternc_torch import torch_model

    lm = torch_model("tests/fixtures/torch/P407")
    seen: list[int] = []
    lm.generate(torch.tensor([[1, 2]]), 5, on_token=seen.append)
    assert seen == [1, 2, 3, 4, 5]


def test_a_real_terminal_sees_the_bar_and_the_speed(checkpoint: Path, tmp_path: Path) -> None:
    """End to end, the installed command with stderr on a pseudo-terminal: the bar and the speed are drawn
    there, and stdout (a pipe) holds the result alone."""
    import os
    import pty
    import subprocess
    import sys

    def under_a_terminal(*args: str) -> tuple[str, str]:
        leader, follower = pty.openpty()
        with subprocess.Popen(
            [sys.executable, "-m", "patternc", *args], stdout=subprocess.PIPE, stderr=follower, text=True
        ) as process:
            os.close(follower)
            drawn = b""
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closes when the process ends
                    break
                if not chunk:
                    break
                drawn += chunk
            stdout = process.stdout.read() if process.stdout else ""
        os.close(leader)
        assert process.returncode == 0, drawn
        return stdout, drawn.decode("utf-8", "replace")

    stdout, drawn = under_a_terminal(
        "build", "M-M*-", "--set", "hidden_size=32", "-o", str(tmp_path / "o"), "--weights", str(checkpoint)
    )
    assert "32/32 tensors" in drawn and stdout.startswith("built nemotron_h") and "32/32" not in stdout
    stdout, drawn = under_a_terminal("run", str(checkpoint), "--ids", "1 2", "-n", "4")
    assert "tokens/s" in drawn and "generated 4 tokens" in drawn and len(stdout.split()) == 4


@pytest.mark.parametrize("model", ["modle-dir", "./M-M*-", "out.d"])
def test_a_missing_model_path_is_p402_not_a_bad_pattern(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run`` also takes a bare pattern; a model path with a typo is still "no model there", not a list of
    unknown layer symbols (a lowercase letter, a dot: no pattern holds them)."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", model, "--ids", "1"])
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error")] == [
        f"error[P402]: no model at `{model.removeprefix('./')}`: no such file or directory"
    ]


def test_a_bare_pattern_still_runs_and_a_bad_one_is_p001() -> None:
    assert runner.invoke(app, ["run", "M-M*-", "--ids", "1", "-n", "1", "-q"]).exit_code == 0
    bad = runner.invoke(app, ["run", "M-MX", "--ids", "1"])
    assert bad.exit_code == 1 and "error[P001]" in bad.stderr
