"""Outputs: atomic builds, nothing overwritten without --force, a killed build leaves no partial directory.

Policy (docs/reliability.md): SIGTERM and SIGHUP unwind the build (the staging directory is
removed before the process exits); SIGKILL cannot be caught, so its staging sibling stays until
the next build to the same directory removes it (``clean_stale``).  Either way ``OUT_DIR`` is
never half-written: it is absent, or the previous one, or the complete new one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from typer.testing import CliRunner  # noqa: E402

from patternc.cli import app  # noqa: E402
from patternc.outdir import clean_stale, staging  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _siblings(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".patternc-" in p.name)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few-MB Nemotron-H checkpoint (hidden 256, vocab 2048) written by patternc build itself."""
    root = tmp_path_factory.mktemp("ckpt")
    result = CliRunner().invoke(
        app,
        [
            "build",
            "M-M*-",
            "-o",
            str(root / "model"),
            "--target",
            "torch",
            "--set",
            "hidden_size=256",
            "--set",
            "vocab_size=2048",
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "model"


KILLED_BUILD = textwrap.dedent(
    """
    import sys, time
    flag = sys.argv[1]
    import patternc_checkpoint as c
    original = c.ShardWriter.write
    def slow(self, name, tensor):
        original(self, name, tensor)
        open(flag, "w").close()  # mid-way: a shard is half written
        time.sleep(60)
    c.ShardWriter.write = slow
    sys.argv = ["patternc", *sys.argv[2:]]
    from patternc.cli import main
    main()
    """
)


def _start_and_kill(tmp_path: Path, source: Path, out: Path, signum: int) -> subprocess.CompletedProcess[str]:
    flag = tmp_path / f"flag-{signum}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILLED_BUILD,
            str(flag),
            "build",
            "M-M*-",
            "-o",
            str(out),
            "--weights",
            str(source),
            "--set",
            "hidden_size=256",
            "--set",
            "vocab_size=2048",
            "--max-shard-size",
            "1MB",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 90
    while not flag.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the build never reached its first shard"
        time.sleep(0.05)
    assert _siblings(out.parent), "the build should be writing into a staging sibling"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_sigterm_mid_build_leaves_nothing(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    killed = _start_and_kill(tmp_path, checkpoint, out, signal.SIGTERM)
    assert killed.returncode == 128 + signal.SIGTERM and "terminated" in killed.stderr
    assert not out.exists() and _siblings(tmp_path) == []


def test_sigkill_mid_build_leaves_no_output_and_the_next_build_cleans_up(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    killed = _start_and_kill(tmp_path, checkpoint, out, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    assert len(_siblings(tmp_path)) == 1  # SIGKILL runs no clean-up: the staging sibling stays ...
    result = CliRunner().invoke(app, ["build", "M-M*-", "-o", str(out), "--target", "megatron"])
    assert result.exit_code == 0, result.output
    assert _siblings(tmp_path) == []  # ... until the next build to the same directory removes it


def test_a_set_aside_directory_of_a_killed_force_build_is_restored(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aside = tmp_path / f".out.patternc-old-{_dead_pid()}-0123456789ab"
    aside.mkdir()
    (aside / "config.json").write_text("{}")
    staged = tmp_path / f".out.patternc-build-{_dead_pid()}-xyz"
    staged.mkdir()
    (staged / "half.safetensors").write_bytes(b"\0")
    assert sorted(clean_stale(out)) == sorted([aside, staged])
    assert (out / "config.json").read_text() == "{}" and _siblings(tmp_path) == []


def test_a_live_build_and_foreign_names_are_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    live = tmp_path / f".out.patternc-build-{os.getpid()}-abc"
    live.mkdir()
    foreign = tmp_path / ".out.patternc-build-notapid"
    foreign.mkdir()
    other = tmp_path / f".other.patternc-build-{_dead_pid()}-abc"
    other.mkdir()
    assert clean_stale(out) == []
    with staging(out) as tmp:
        assert tmp.name.startswith(f".out.patternc-build-{os.getpid()}-")
    assert _siblings(tmp_path) == sorted([live.name, foreign.name, other.name])


def test_an_existing_output_is_never_replaced_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for args in (["M-M*-"], ["M-M*-", "--target", "torch"], ["M-M*-", "--target", "megatron"]):
        result = CliRunner().invoke(app, ["build", *args, "-o", str(out)])
        assert result.exit_code == 1 and "error[P502]" in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and _siblings(tmp_path) == []


def test_an_output_symlink_is_replaced_not_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    out = tmp_path / "out"
    out.symlink_to(elsewhere)
    result = CliRunner().invoke(app, ["build", "M-M*-", "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert not out.is_symlink() and (out / "config.json").is_file()
    assert [p.name for p in elsewhere.iterdir()] == ["keep.txt"]


def test_a_config_cannot_direct_writes_outside_the_output(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(
        '{"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*-", "_name_or_path": "../../escape",'
        ' "architectures": ["../../escape"], "auto_map": {"AutoConfig": "../../escape.py"}}'
    )
    out = tmp_path / "nested" / "out"
    before = {p for p in tmp_path.rglob("*")}
    result = CliRunner().invoke(app, ["build", str(source / "config.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = {p for p in tmp_path.rglob("*")} - before
    assert written and all(p == out.parent or p.is_relative_to(out) for p in written), written
