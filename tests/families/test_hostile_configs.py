"""Hostile configs through every entry point that reads one: each is a diagnostic with a code, exit 1.

Covers the issue's list: wrong types, NaN/inf, negative or zero sizes, sizes whose product would
overflow memory (P701, refused before allocating, with the bytes), deep nesting, duplicate keys, a
file above the size limit, non-UTF-8 bytes, integers beyond Python's conversion limit, a config.json
that is a directory or a dangling symlink.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.api import parse
from patternc.cli import app
from patternc.config import MAX_CONFIG_BYTES, read_config
from patternc.footprint import MAX_MODEL_BYTES, allocation_problem, model_parameters
from patternc.presets import TINY_NEMOTRON_H, preset_config

BASE = preset_config(parse("M-M*-"), TINY_NEMOTRON_H)
"""The tiny Nemotron-H config ``patternc build PATTERN`` uses (valid: ``read_config`` gives a spec)."""


def _check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", str(path)])
    return result.exit_code, result.output


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"hidden_size": "64"}, "P906"),
        ({"hidden_size": [64]}, "P906"),
        ({"hidden_size": True}, "P906"),
        ({"hidden_size": None}, "P906"),
        ({"hidden_size": 0}, "P906"),
        ({"hidden_size": -64}, "P906"),
        ({"hidden_size": 2**63}, "P906"),
        ({"hidden_size": 64.5}, "P906"),
        ({"layer_norm_epsilon": float("nan")}, "P906"),
        ({"layer_norm_epsilon": float("inf")}, "P906"),
        ({"vocab_size": float("-inf")}, "P906"),
    ],
)
def test_wrong_values(tmp_path: Path, change: dict[str, object], code: str) -> None:
    code_, output = _check(_write(tmp_path, json.dumps(BASE | change)))
    assert code_ == 1 and f"error[{code}]" in output, output


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"model_type": "nemotron_h", "hidden_size": ' + b"1" * 5000 + b"}", "P903"),  # beyond 4300 digits
        (b'{"model_type": "nemotron_h"' + b"\xff\xfe" + b"}", "P903"),
        (b"[" * 200_000 + b"]" * 200_000, "P903"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "P903"),
        (b"\xef\xbb\xbf" + b"[]", "P903"),
        (b"", "P903"),
    ],
)
def test_bad_bytes(tmp_path: Path, raw: bytes, code: str) -> None:
    code_, output = _check(_write(tmp_path, raw))
    assert code_ == 1 and f"error[{code}]" in output, output
    assert "Traceback" not in output


def test_duplicate_keys_are_named(tmp_path: Path) -> None:
    text = json.dumps(BASE)[:-1] + ', "hidden_size": 32}'
    _, output = _check(_write(tmp_path, text))
    assert "P904" in output and "`hidden_size` appears more than once" in output


def test_a_file_above_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)  # sparse
    code, output = _check(path)
    assert code == 1 and "error[P902]" in output and f"{MAX_CONFIG_BYTES:,}" in output


@pytest.mark.parametrize("kind", ["directory", "dangling", "loop", "fifo"])
def test_config_json_that_is_not_a_file(tmp_path: Path, kind: str) -> None:
    import os

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    target = checkpoint / "config.json"
    if kind == "directory":
        target.mkdir()
    elif kind == "dangling":
        target.symlink_to(tmp_path / "nowhere.json")
    elif kind == "loop":
        target.symlink_to(target)
    else:
        os.mkfifo(target)
    for where in (checkpoint, target):
        code, output = _check(where)
        assert code == 1 and "error[P901]" in output, (where, output)


HUGE = {"hidden_size": 2**31 - 1, "vocab_size": 2**31 - 1}


def test_model_product_overflow_is_refused_with_the_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps(BASE | HUGE))
    result = read_config(path)
    assert result.spec is not None  # every size alone is valid ...
    need = model_parameters(result.spec) * 4
    assert need > MAX_MODEL_BYTES  # ... their product is not
    out = tmp_path / "out"
    for extra in ([], ["--target", "torch"]):
        built = CliRunner().invoke(app, ["build", str(path), "-o", str(out), *extra])
        assert built.exit_code == 1 and "error[P701]" in built.stderr and f"{need:,} bytes" in built.stderr
        assert not out.exists()


def test_torch_model_and_run_refuse_before_allocating(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from patternc_torch import torch_model

    from patternc.diagnostics import PatternError

    path = _write(tmp_path, json.dumps(BASE | {"hidden_size": 2**31 - 1}))  # ~13 TiB of float32
    with pytest.raises(PatternError) as error:
        torch_model(path)
    assert [d.code for d in error.value.diagnostics] == ["P701"]
    assert "memory available" in error.value.diagnostics[0].message
    assert torch_model(path, device="meta").spec.hidden_size == 2**31 - 1  # meta: nothing to allocate
    result = CliRunner().invoke(app, ["run", str(path), "--ids", "1 2"])
    assert result.exit_code == 1 and "error[P701]" in result.output


def test_the_limit_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = read_config(dict(BASE)).spec
    assert spec is not None and allocation_problem(spec, device=None) is None
    monkeypatch.setenv("PATTERNC_MAX_MODEL_BYTES", "1000")
    problem = allocation_problem(spec, device=None)
    assert problem is not None and problem.code == "P701" and "limit of 1,000 bytes" in problem.message


def test_parameter_count_matches_transformers() -> None:
    transformers = pytest.importorskip("transformers")
    from patternc_transformers.build import count_parameters, make_config, meta_model

    spec = read_config(dict(BASE)).spec
    assert spec is not None
    config = make_config("nemotron_h", {k: v for k, v in BASE.items() if k != "model_type"})
    assert transformers and model_parameters(spec) == count_parameters(meta_model(config))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_any_bytes_give_a_reading_or_diagnostics(tmp_path: Path, raw: bytes) -> None:
    result = read_config(_write(tmp_path, raw))
    assert result.spec is not None or result.diagnostics
