"""`patternc build` defects found by an audit of the transformers backend (2026-11-30)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from safetensors.torch import load_file, save_file  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from patternc.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ck") / "ck"
    result = runner.invoke(app, ["build", "MMM", "--set", "hidden_size=32", "--target", "torch", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64, torch.float8_e4m3fn])
def test_weights_that_are_not_floating_point_are_p507(checkpoint: Path, tmp_path: Path, dtype: torch.dtype) -> None:
    tensors = load_file(checkpoint / "model.safetensors")
    tensors["backbone.embeddings.weight"] = tensors["backbone.embeddings.weight"].to(dtype)
    (tmp_path / "ck").mkdir()
    save_file(tensors, tmp_path / "ck" / "model.safetensors")
    result = runner.invoke(app, ["build", "MMM", "--set", "hidden_size=32", "-o", str(tmp_path / "o"),
                                 "--weights", str(tmp_path / "ck")])
    assert result.exit_code == 1 and "error[P507]" in result.output
    assert "not one of F16, BF16, F32, F64" in result.output
    assert not (tmp_path / "o").exists()


def test_a_converted_mamba2_round_trips_through_check(tmp_path: Path) -> None:
    """transformers' Mamba2 clamps dt at (0, inf): as Nemotron-H that is `time_step_min` 0, which must read back."""
    source = tmp_path / "src"
    torch.manual_seed(0)
    transformers.Mamba2ForCausalLM(transformers.Mamba2Config(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_heads=4, head_dim=16, expand=2, n_groups=2,
        state_size=8)).save_pretrained(source)
    built = runner.invoke(app, ["build", str(source), "-o", str(tmp_path / "o"), "--weights", str(source),
                                "--target", "nemotron_h"])
    assert built.exit_code == 0, built.output
    checked = runner.invoke(app, ["check", str(tmp_path / "o")])
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize("setting", ['layers_block_type=["mamba"]', "model_type=bamba", "num_nextn_predict_layers=2"])
def test_set_cannot_replace_the_pattern(tmp_path: Path, setting: str) -> None:
    result = runner.invoke(app, ["build", "M*-", "-o", str(tmp_path / "o"), "--set", setting])
    assert result.exit_code == 2 and "would replace what the pattern SOURCE says" in result.output


def test_a_failed_write_leaves_no_directories_it_made(tmp_path: Path) -> None:
    from patternc.outdir import staging

    with pytest.raises(RuntimeError), staging(tmp_path / "a" / "b" / "out"):
        raise RuntimeError("the write failed")
    assert list(tmp_path.iterdir()) == []
