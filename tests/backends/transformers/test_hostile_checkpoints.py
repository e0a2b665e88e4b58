"""Hostile checkpoints: truncated or lying safetensors, indexes and links leading out, duplicates, pickles.

Both readers are held to the same rules: ``patternc build --weights`` (``open_checkpoint``) and the
torch backend (``patternc.torch_model`` / ``patternc run``).  A bad checkpoint is a diagnostic
(P503 pickles, P504 nothing there, P510 anything malformed or leading out), never a traceback.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from patternc_checkpoint import MAX_INDEX_BYTES, CheckpointError, open_checkpoint  # noqa: E402
from patternc_torch import torch_model, write_model_dir  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from patternc.cli import app  # noqa: E402
from patternc.diagnostics import PatternError  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402
from tests.docgen import _MLP, _torch_config  # noqa: E402

SPEC = ModelSpec.model_validate(json.loads(_torch_config(_MLP))["spec"])
INDEX = "model.safetensors.index.json"


def _header_file(path: Path, header: dict[str, Any], data: bytes = b"", length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def _torch_dir(root: Path) -> Path:
    """A loadable torch-backend directory (config.json + model.safetensors) of a tiny MLP model."""
    return write_model_dir(SPEC, root)


def _shard(directory: Path, tensors: dict[str, Any]) -> None:
    """Split ``directory/model.safetensors`` into two shards and an index."""
    single = directory / "model.safetensors"
    loaded = safetensors_torch.load_file(str(single))
    single.unlink()
    names = sorted(loaded)
    half = len(names) // 2
    maps: dict[str, str] = {}
    for i, part in enumerate((names[:half], names[half:])):
        file = f"model-0000{i + 1}-of-00002.safetensors"
        safetensors_torch.save_file({n: loaded[n] for n in part}, str(directory / file))
        maps.update(dict.fromkeys(part, file))
    maps.update(tensors)
    (directory / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": maps}))


def _both_refuse(directory: Path, code: str, words: str = "") -> None:
    with pytest.raises(CheckpointError) as build_error:
        open_checkpoint(directory)
    assert build_error.value.code == code and words in build_error.value.message
    with pytest.raises(PatternError) as torch_error:
        torch_model(directory)
    assert [d.code for d in torch_error.value.diagnostics] == [code]
    assert words in torch_error.value.diagnostics[0].message


def test_a_good_directory_loads_in_both(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    assert len(open_checkpoint(directory).tensors) == len(torch_model(directory).state_dict())


def test_truncated_safetensors(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[: len(data) - 3])
    _both_refuse(directory, "P510", "not a valid safetensors file")


@pytest.mark.parametrize(
    ("header", "length"),
    [
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}}, None),  # offsets past the data
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [8, 4]}}, None),  # end before start
        ({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 16]}}, None),  # shape disagrees with bytes
        ({"a": {"dtype": "F99", "shape": [4], "data_offsets": [0, 16]}}, None),  # no such dtype
        ({"a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 16]}}, None),  # overflowing shape
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 2**63),  # header length beyond the file
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 3),  # header length inside the JSON
    ],
)
def test_a_header_that_lies(tmp_path: Path, header: dict[str, Any], length: int | None) -> None:
    directory = _torch_dir(tmp_path / "m")
    _header_file(directory / "model.safetensors", header, b"\0" * 16, length)
    _both_refuse(directory, "P510")


@pytest.mark.parametrize(
    "target",
    ["../outside.safetensors", "../../etc/passwd", "/etc/passwd", "sub/model.safetensors", "", ".."],
)
def test_an_index_naming_files_outside_is_refused(tmp_path: Path, target: str) -> None:
    outside = _torch_dir(tmp_path / "outside-model")
    (tmp_path / "outside.safetensors").write_bytes((outside / "model.safetensors").read_bytes())
    directory = _torch_dir(tmp_path / "m")
    _shard(directory, {"backbone.norm_f.weight": target})
    _both_refuse(directory, "P510", " out")


def test_an_absolute_path_to_the_checkpoint_itself_is_refused(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    _shard(directory, {})
    index = json.loads((directory / INDEX).read_text())
    index["weight_map"] = {k: str(directory / v) for k, v in index["weight_map"].items()}
    (directory / INDEX).write_text(json.dumps(index))
    _both_refuse(directory, "P510", " out")


def test_a_shard_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    outside = _torch_dir(tmp_path / "outside")
    directory = _torch_dir(tmp_path / "m")
    _shard(directory, {})
    shard = directory / "model-00002-of-00002.safetensors"
    (tmp_path / "outside" / shard.name).write_bytes(shard.read_bytes())
    shard.unlink()
    shard.symlink_to(outside / shard.name)
    _both_refuse(directory, "P510", "lead out of the checkpoint directory")


def test_a_single_file_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    outside = _torch_dir(tmp_path / "outside")
    directory = _torch_dir(tmp_path / "m")
    (directory / "model.safetensors").unlink()
    (directory / "model.safetensors").symlink_to(outside / "model.safetensors")
    _both_refuse(directory, "P510", "lead")


def test_an_index_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    _shard(directory, {})
    (tmp_path / INDEX).write_text((directory / INDEX).read_text())
    (directory / INDEX).unlink()
    (directory / INDEX).symlink_to(tmp_path / INDEX)
    _both_refuse(directory, "P510", "lead out of the checkpoint directory")


def test_links_inside_and_the_hugging_face_cache_layout_are_accepted(tmp_path: Path) -> None:
    repo = tmp_path / "models--org--tiny"
    snapshot = _torch_dir(repo / "snapshots" / "0123abcd")
    (repo / "blobs").mkdir()
    blob = repo / "blobs" / "f00d"
    (snapshot / "model.safetensors").rename(blob)
    (snapshot / "model.safetensors").symlink_to(Path("../../blobs/f00d"))
    assert torch_model(snapshot).spec == SPEC
    assert open_checkpoint(snapshot).tensors


def test_duplicate_tensor_names_across_shards(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    _shard(directory, {})
    first = directory / "model-00001-of-00002.safetensors"
    second = directory / "model-00002-of-00002.safetensors"
    tensors = safetensors_torch.load_file(str(second)) | safetensors_torch.load_file(str(first))
    safetensors_torch.save_file(tensors, str(second))
    _both_refuse(directory, "P510", "is in both")


def test_duplicate_names_without_an_index(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    (directory / "extra.safetensors").write_bytes((directory / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="is in both"):
        open_checkpoint(directory)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"weight_map": 3}',
        '{"weight_map": {"a": 1}}',
        '{"weight_map": {"a": "' + "1" * 5000 + '"}}',  # a shard name too long for the filesystem
        '{"weight_map": ' + "1" * 5000 + "}",  # an integer beyond Python's conversion limit
        "[" * 100_000,
        '{"weight_map": {"a": "x.safetensors"}}',
    ],
)
def test_a_malformed_index(tmp_path: Path, text: str) -> None:
    directory = _torch_dir(tmp_path / "m")
    (directory / INDEX).write_text(text)
    with pytest.raises(CheckpointError) as error:
        open_checkpoint(directory)
    assert error.value.code in ("P504", "P510")
    with pytest.raises(PatternError) as torch_error:
        torch_model(directory)
    assert torch_error.value.diagnostics[0].code in ("P504", "P510")


def test_an_index_above_the_size_limit(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    with (directory / INDEX).open("wb") as handle:
        handle.truncate(MAX_INDEX_BYTES + 1)  # sparse: no disk used
    _both_refuse(directory, "P510", "above the limit")


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt", ".pkl"])
def test_pickles_named_by_an_index_are_refused_unread(tmp_path: Path, suffix: str) -> None:
    directory = tmp_path / "ckpt"
    directory.mkdir()
    (directory / f"pytorch_model{suffix}").write_bytes(b"\x80\x04 never unpickled")
    (directory / INDEX).write_text(json.dumps({"weight_map": {"a": f"pytorch_model{suffix}"}}))
    result = CliRunner().invoke(app, ["build", "M-", "-o", str(tmp_path / "o"), "--weights", str(directory)])
    assert result.exit_code == 1 and "error[P503]" in result.stderr and "convert them to safetensors" in result.stderr
    assert not (tmp_path / "o").exists()


def test_build_weights_refuses_an_index_leading_out(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    _shard(directory, {"backbone.norm_f.weight": "../outside.safetensors"})
    result = CliRunner().invoke(app, ["build", "M-", "-o", str(tmp_path / "o"), "--weights", str(directory)])
    assert result.exit_code == 1 and "error[P510]" in result.stderr and "outside its directory" in result.stderr
    assert not (tmp_path / "o").exists()


def test_run_reports_a_bad_checkpoint_as_a_diagnostic(tmp_path: Path) -> None:
    directory = _torch_dir(tmp_path / "m")
    (directory / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    result = CliRunner().invoke(app, ["run", str(directory), "--ids", "1 2", "-n", "1"])
    assert result.exit_code == 1 and "error[P510]" in result.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), length=st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_any_bytes_as_a_safetensors_file(tmp_path: Path, data: bytes, length: int | None) -> None:
    directory = tmp_path / "any"
    directory.mkdir(exist_ok=True)
    prefix = b"" if length is None else struct.pack("<Q", length)
    (directory / "model.safetensors").write_bytes(prefix + data)
    try:
        open_checkpoint(directory)
    except CheckpointError as error:
        assert error.code == "P510"
