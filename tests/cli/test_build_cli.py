"""``patternc build``: sources, refusals, atomic writes, checkpoint handling, the released configs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from typer.testing import CliRunner  # noqa: E402

from patternc.cli import app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "hub").glob("*/config.json"))


def _build(*args: str) -> Any:
    return CliRunner().invoke(app, ["build", *args])


def _meta_parameters(config: Any, cls: Any = None) -> int:
    with torch.device("meta"):
        model = (cls or transformers.AutoModelForCausalLM.from_config)(config)
    return sum(p.numel() for p in model.parameters())


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".patternc-" in p.name)


@pytest.mark.parametrize("config", FIXTURES, ids=lambda p: p.parent.name)
def test_released_configs_build_with_the_same_parameter_count(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _build(str(config), "-o", str(out))
    assert result.exit_code == 0, result.output
    built = transformers.AutoConfig.from_pretrained(out)
    original = transformers.AutoConfig.from_pretrained(config.parent)
    count = _meta_parameters(built)
    assert count == _meta_parameters(original, transformers.NemotronHForCausalLM)
    assert f"parameters: {count:,}" in result.stdout


def test_pattern_builds_a_runnable_tiny_model(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    result = _build("M-M*-E", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"built nemotron_h (canonical) from a nemotron_h config into {out}\n")
    assert "error" not in result.stderr and "P909" not in result.stderr  # the defaults are consistent
    data = json.loads((out / "config.json").read_text())
    assert data["architectures"] == ["NemotronHForCausalLM"]
    # the vocabulary transformers itself writes for these layers
    written = transformers.NemotronHConfig(layers_block_type=["mamba", "mlp", "mamba", "attention", "mlp", "moe"])
    assert data["layers_block_type"] == written.to_dict()["layers_block_type"]
    config = transformers.AutoConfig.from_pretrained(out)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3]]), use_cache=False).logits
    assert logits.shape == (1, 3, 256)


def test_set_overrides_the_pattern_defaults_and_auto_is_canonical(tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = _build(
        "MMM", "-o", str(out), "--set", "hidden_size=32", "--set", "vocab_size=100", "--set", "mamba_head_dim=8"
    )
    assert result.exit_code == 0, result.output
    config = transformers.AutoConfig.from_pretrained(out)
    shown = (config.model_type, config.hidden_size, config.vocab_size, config.num_hidden_layers)
    assert shown == ("mamba2", 32, 100, 3)


def test_mtp_pattern_keeps_its_mtp_fields(tmp_path: Path) -> None:
    result = _build("M-M*-/*E", "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    config = transformers.AutoConfig.from_pretrained(tmp_path / "o")
    assert config.num_nextn_predict_layers == 1 and len(config.mtp_layers_block_type) == 2


@pytest.mark.parametrize(
    "args",
    [["--set", "hidden_size"], ["--set", "=4"], ["--max-shard-size", "lots"], ["--target", "llama"]],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = _build("M-", "-o", str(tmp_path / "o"), *args)
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_set_is_refused_for_a_config_source(tmp_path: Path) -> None:
    result = _build(str(FIXTURES[0]), "-o", str(tmp_path / "o"), "--set", "hidden_size=8")
    assert result.exit_code == 2


def test_bad_pattern_is_reported(tmp_path: Path) -> None:
    result = _build("M-X", "-o", str(tmp_path / "o"))
    assert result.exit_code == 1 and "error[P001]" in result.stderr
    assert not (tmp_path / "o").exists()


def test_existing_output_is_refused_then_replaced_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _build("M-", "-o", str(out))
    assert result.exit_code == 1
    assert f"error[P502]: `{out}` already exists" in result.stderr and result.stdout == ""
    assert (out / "keep.txt").read_text() == "mine"
    result = _build("M-", "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    assert _leftovers(tmp_path) == []
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask  # the umask, not mkdtemp's 0700


def test_output_holding_the_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text(FIXTURES[0].read_text())
    result = _build(str(source), "-o", str(tmp_path), "--force")
    assert result.exit_code == 1 and "error[P502]" in result.stderr
    assert (source / "config.json").exists()


@pytest.fixture(scope="module")
def nemotron(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A tiny Nemotron-H with MoE saved with save_pretrained (hub names, per-expert tensors)."""
    config = transformers.NemotronHConfig(
        vocab_size=64,
        hidden_size=32,
        layers_block_type=["mamba", "moe", "attention", "mlp"],
        mamba_num_heads=4,
        mamba_head_dim=16,
        ssm_state_size=8,
        n_groups=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=48,
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        moe_shared_expert_intermediate_size=24,
        n_group=1,
        topk_group=1,
    )
    model = transformers.AutoModelForCausalLM.from_config(config)
    root = tmp_path_factory.mktemp("nemotron")
    model.save_pretrained(root / "hub")
    data = json.loads((root / "hub" / "config.json").read_text())
    data["time_step_limit"] = [
        0.0,
        float("inf"),
    ]  # the reader wants plain JSON (see tests/backends/transformers/test_build.py)
    (root / "hub" / "config.json").write_text(json.dumps(data))
    return root / "hub", model


def _copy_with(
    source: Path, target: Path, drop: str | None = None, add: dict[str, Any] | None = None, dtype: Any = None
) -> Path:
    from safetensors import safe_open

    target.mkdir()
    (target / "config.json").write_text((source / "config.json").read_text())
    tensors = {}
    with safe_open(str(source / "model.safetensors"), "pt") as handle:
        for name in handle.keys():  # noqa: SIM118
            if name != drop:
                tensor = handle.get_tensor(name)
                tensors[name] = tensor.to(dtype) if dtype is not None else tensor
    tensors.update(add or {})
    safetensors_torch.save_file(tensors, str(target / "model.safetensors"))
    return target


def test_missing_and_unexpected_tensors_are_listed_and_nothing_is_written(
    nemotron: tuple[Path, Any], tmp_path: Path
) -> None:
    source, _ = nemotron
    weights = _copy_with(
        source,
        tmp_path / "w",
        drop="backbone.layers.1.mixer.experts.2.up_proj.weight",
        add={"vision.proj.weight": torch.zeros(2)},
    )
    out = tmp_path / "out"
    result = _build(str(source), "-o", str(out), "--weights", str(weights))
    assert result.exit_code == 1
    assert "error[P505]: 1 tensor the `nemotron_h` model needs is not in" in result.stderr
    assert "= note: backbone.layers.1.mixer.experts.2.up_proj.weight" in result.stderr
    assert "warning[P506]" in result.stderr and "= note: vision.proj.weight" in result.stderr
    assert not out.exists() and _leftovers(tmp_path) == []


def test_shape_mismatch_is_reported(nemotron: tuple[Path, Any], tmp_path: Path) -> None:
    source, _ = nemotron
    weights = _copy_with(
        source, tmp_path / "w", drop="backbone.norm_f.weight", add={"backbone.norm_f.weight": torch.ones(31)}
    )
    result = _build(str(source), "-o", str(tmp_path / "out"), "--weights", str(weights))
    assert result.exit_code == 1 and "error[P507]" in result.stderr
    assert "`backbone.norm_f.weight`: [31] in the checkpoint, [32] for `model.norm_f.weight`" in result.stderr


def test_dtype_is_preserved_and_sharded_input_is_read(nemotron: tuple[Path, Any], tmp_path: Path) -> None:
    source, model = nemotron
    sharded = tmp_path / "sharded"
    model.to(torch.bfloat16).save_pretrained(sharded, max_shard_size="20KB")
    model.to(torch.float32)
    assert (sharded / "model.safetensors.index.json").exists()
    out = tmp_path / "out"
    result = _build(str(source), "-o", str(out), "--weights", str(sharded))
    assert result.exit_code == 0, result.output
    from safetensors import safe_open

    index = json.loads((out / "model.safetensors.index.json").read_text())
    dtypes = set()
    for shard in set(index["weight_map"].values()):
        with safe_open(str(out / shard), "pt") as handle:
            dtypes |= {handle.get_slice(k).get_dtype() for k in handle.keys()}  # noqa: SIM118
    assert dtypes == {"BF16"}
    assert transformers.AutoConfig.from_pretrained(out).dtype == torch.bfloat16
    built = transformers.AutoModelForCausalLM.from_pretrained(out)
    stacked = built.model.layers[1].mixer.experts.up_proj
    assert stacked.dtype == torch.bfloat16 and tuple(stacked.shape) == (4, 16, 32)


def test_pickles_are_never_loaded(tmp_path: Path) -> None:
    weights = tmp_path / "ckpt"
    weights.mkdir()
    (weights / "pytorch_model.bin").write_bytes(b"\x80\x04 not opened")
    for where in (weights, weights / "pytorch_model.bin"):
        result = _build("M-", "-o", str(tmp_path / "o"), "--weights", str(where))
        assert result.exit_code == 1 and "error[P503]" in result.stderr and "safetensors" in result.stderr


def test_a_failure_while_writing_leaves_nothing(
    nemotron: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import patternc_checkpoint as checkpoint

    calls = {"n": 0}
    original = checkpoint.ShardWriter.write

    def failing(self: Any, name: str, tensor: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        original(self, name, tensor)

    monkeypatch.setattr(checkpoint.ShardWriter, "write", failing)
    source, _ = nemotron
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    result = _build(str(source), "-o", str(out), "--weights", str(source), "--force", "--max-shard-size", "10kB")
    assert result.exit_code == 1 and "error[P509]" in result.stderr and "No space left" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert _leftovers(tmp_path) == []


def test_quantized_weights_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    quantized = {"quant_method": "modelopt", "quant_algo": "NVFP4"}
    data = {"model_type": "qwen3_next", "num_hidden_layers": 4, "quantization_config": quantized}
    config.write_text(json.dumps(data))
    result = _build(str(config), "-o", str(tmp_path / "o"), "--weights", str(tmp_path))
    assert result.exit_code == 1 and "error[P508]: the weights are quantized" in result.stderr
    assert "quant_method `modelopt`, quant_algo `NVFP4`" in result.stderr
    assert not (tmp_path / "o").exists()


def test_torch_target_writes_the_torch_backend_directory(tmp_path: Path) -> None:
    pytest.importorskip("patternc_torch")
    out = tmp_path / "t"
    result = _build("M-M*-", "-o", str(out), "--target", "torch")
    assert result.exit_code == 0, result.output
    assert {"config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
