"""``build --target F --weights`` of a checkpoint of family F: every family, no per-family table.

For every registered family whose transformers class exists, a tiny random model is built with
transformers on the CPU (every weight perturbed, so a tensor read into the wrong place changes
the logits), saved with ``save_pretrained`` (the older, hub names: per-expert tensors, ``backbone.``,
``block_sparse_moe``…, from transformers' conversion mapping) and as its plain transformers 5.x
state dict, converted by ``patternc build <dir> --target F --weights <dir>``, and loaded back with
``AutoModelForCausalLM``: the same state dict (names, shapes, values) and the same logits.

The families come from ``families.names()``, so a new family is tested the day it is registered;
``test_every_family_is_covered`` names any family that is not, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from typer.testing import CliRunner  # noqa: E402

from patternc import families  # noqa: E402
from patternc.cli import app  # noqa: E402

SHRINK: dict[str, Any] = {
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 48,
    "moe_intermediate_size": 16,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "num_experts": 4,
    "n_routed_experts": 4,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "num_experts_per_token": 2,
    "num_expert_group": 2,
    "n_shared_experts": 1,
    "shared_expert_intermediate_size": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
    "linear_num_heads": 4,
    "linear_head_dim": 8,
    "q_lora_rank": 16,
    "kv_lora_rank": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 8,
    "n_group": 2,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "mamba_n_heads": 4,
    "mamba_d_head": 16,
    "mamba_n_groups": 2,
    "mamba_d_state": 8,
    "num_heads": 4,
    "n_groups": 2,
    "state_size": 8,
    "expand": 2,
    "block_ff_dim": 48,
    "num_dense_layers": 1,
    "max_position_embeddings": 256,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
"""Sizes small enough for a CPU test, applied to the keys a family's config class has."""

OVERRIDES: dict[str, dict[str, Any]] = {
    "bamba": {"attn_layer_indices": [1, 3]},
    "mamba2": {"head_dim": 16},  # Mamba2's head_dim is the SSM head (hidden_size * expand = heads * head_dim)
    "deepseek_v3": {"num_key_value_heads": 4},  # latent attention: one key/value head per query head
    "deepseek_v32": {"num_key_value_heads": 4},
    "kimi_linear": {  # latent attention on layers 1 and 3, experts from layer 1
        "num_key_value_heads": 4,
        "layer_types": ["linear_attention", "full_attention", "linear_attention", "full_attention"],
        "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"],
    },
    "bailing_hybrid": {"num_key_value_heads": 4, "layer_group_size": 2},  # attention every second layer
    "falcon_h1": {"mamba_d_ssm": 64},  # mamba_n_heads * mamba_d_head
    "lfm2_moe": {"layer_types": ["conv", "full_attention", "conv", "full_attention"]},  # no default list
}
"""What a family needs besides ``SHRINK`` (its config class validates more than sizes)."""

NOT_COVERED: dict[str, str] = {
    "zamba2": "the canonical map refuses zamba2 for every config, its own included (its hybrid layers share "
    "one set of transformer-block weights), so `build --target zamba2` never runs",
}
"""Families with a transformers class that this test cannot build, each with the reason."""

TOLERANCE = 1e-5


def _model_type(name: str) -> str:
    family = families.get(name)
    return family.config_model_type or name


def _has_class(name: str) -> bool:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        AutoConfig.for_model(_model_type(name))
    except ValueError:
        return False
    return _model_type(name) in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


WITH_CLASS = [name for name in families.names() if _has_class(name)]
COVERED = [name for name in WITH_CLASS if name not in NOT_COVERED]


def tiny_config(name: str) -> Any:
    """The family's transformers config, shrunk: its defaults with ``SHRINK`` and ``OVERRIDES`` applied."""
    model_type = _model_type(name)
    defaults = transformers.AutoConfig.for_model(model_type).to_dict()
    fields = {key: value for key, value in SHRINK.items() if key in defaults}
    fields.update(OVERRIDES.get(name, {}))
    return transformers.AutoConfig.for_model(model_type, **fields)


def _readable(directory: Path) -> None:
    """transformers 5.x writes ``inf`` as ``{"__float__": "Infinity"}``; give the reader plain JSON."""
    path = directory / "config.json"
    text = path.read_text()
    data = json.loads(text)

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return float(value["__float__"]) if set(value) == {"__float__"} else {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    path.write_text(json.dumps(plain(data)))


@pytest.fixture(scope="module", params=COVERED)
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Any]:
    """(family, its ``save_pretrained`` directory, the model): random weights, every one perturbed."""
    from safetensors.torch import save_file

    name: str = request.param
    torch.manual_seed(sorted(families.names()).index(name))
    model = transformers.AutoModelForCausalLM.from_config(tiny_config(name)).eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.2 * torch.randn_like(tensor))
    root = tmp_path_factory.mktemp(name)
    hub = root / "hub"
    model.save_pretrained(hub)
    _readable(hub)
    state = root / "state"
    state.mkdir()
    (state / "config.json").write_text((hub / "config.json").read_text())
    tied = set(dict(model.named_parameters(remove_duplicate=False))) - set(dict(model.named_parameters()))
    plain = {k: v.contiguous() for k, v in model.state_dict().items() if k not in tied}
    save_file(plain, str(state / "model.safetensors"))
    return name, hub, model


def _build(*args: str) -> Any:
    return CliRunner().invoke(app, ["build", *args])


def _logits(model: Any, ids: Any) -> Any:
    with torch.no_grad():
        return model(ids, use_cache=False).logits


@pytest.mark.parametrize("layout", ["hub", "state"])
def test_a_family_converts_into_itself(source: tuple[str, Path, Any], layout: str, tmp_path: Path) -> None:
    name, hub, model = source
    weights = hub if layout == "hub" else hub.parent / "state"
    out = tmp_path / "out"
    result = _build(str(hub), "-o", str(out), "--target", name, "--weights", str(weights), "--max-shard-size", "20kB")
    assert result.exit_code == 0, result.output
    assert "warning[P506]" not in result.output, result.output
    built, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert type(built) is type(model)
    expected, got = model.state_dict(), built.eval().state_dict()
    assert list(got) == list(expected)
    unequal = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not unequal, f"{name}: tensors differ after the conversion: {unequal[:5]}"
    ids = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(3))
    diff = (_logits(model, ids) - _logits(built, ids)).abs().max().item()
    assert diff <= TOLERANCE, f"{name} ({layout} names): max |Δlogits| = {diff}"


def test_every_family_is_covered() -> None:
    """Every family is converted into itself above, or named here with the reason it is not."""
    without_class = [name for name in families.names() if name not in WITH_CLASS]
    assert not without_class, f"families without a transformers causal-LM class: {without_class}"
    assert set(NOT_COVERED) <= set(WITH_CLASS), "NOT_COVERED names a family that no longer exists"
    assert sorted(COVERED + list(NOT_COVERED)) == sorted(families.names())


@pytest.mark.parametrize("name", sorted(NOT_COVERED))
def test_a_family_not_covered_is_refused_before_any_weight(name: str, tmp_path: Path) -> None:
    """Its own class's default config, with weights asked for: refused, nothing written."""
    config = tmp_path / "config.json"
    config.write_text(transformers.AutoConfig.for_model(_model_type(name)).to_json_string())
    out = tmp_path / "out"
    result = _build(str(config), "-o", str(out), "--target", name, "--weights", str(tmp_path))
    assert result.exit_code == 1 and "error[" in result.output, result.output
    assert not out.exists()


def _tiny_saved(name: str, directory: Path) -> Any:
    torch.manual_seed(11)
    model = transformers.AutoModelForCausalLM.from_config(tiny_config(name)).eval()
    model.save_pretrained(directory)
    _readable(directory)
    return model


@pytest.mark.parametrize("where", ["config", "text_config", "hf_quant_config"])
def test_quantized_weights_are_refused_before_any_read(where: str, tmp_path: Path) -> None:
    """NVFP4 weights (ModelOpt): a `quantization_config` beside them, nested or not, or hf_quant_config.json."""
    weights = tmp_path / "weights"
    _tiny_saved("lfm2", weights)
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text((weights / "config.json").read_text())
    block = {"quant_method": "modelopt", "quant_algo": "NVFP4"}
    config = json.loads((weights / "config.json").read_text())
    if where == "hf_quant_config":
        (weights / "hf_quant_config.json").write_text(json.dumps({"quantization": {"quant_algo": "NVFP4"}}))
    else:
        config.update(
            {"quantization_config": block} if where == "config" else {"text_config": {"quantization_config": block}}
        )
    (weights / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    result = _build(str(source), "-o", str(out), "--target", "lfm2", "--weights", str(weights))
    assert result.exit_code == 1
    assert "error[P508]: the weights are quantized" in result.output
    assert "quant_algo `NVFP4`" in result.output and not out.exists()


def test_dequantized_weights_beside_their_own_config_convert(tmp_path: Path) -> None:
    """The source config is the quantized release's; the weights' own config says they are plain floats."""
    weights = tmp_path / "weights"
    model = _tiny_saved("lfm2", weights)
    source = tmp_path / "source"
    source.mkdir()
    config = json.loads((weights / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3"}
    (source / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    result = _build(str(source), "-o", str(out), "--target", "lfm2", "--weights", str(weights))
    assert result.exit_code == 0, result.output
    built = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.randint(0, 64, (1, 5), generator=torch.Generator().manual_seed(2))
    assert torch.equal(_logits(model, ids), _logits(built, ids))
    (weights / "config.json").unlink()  # no config beside the weights: the source config says quantized
    result = _build(str(source), "-o", str(tmp_path / "out2"), "--target", "lfm2", "--weights", str(weights))
    assert result.exit_code == 1 and "the source config's `quantization_config`: quant_method `fp8`" in result.output


@pytest.mark.skipif("qwen3_5" not in COVERED, reason="qwen3_5 is not registered")
def test_a_multimodal_checkpoint_of_qwen3_5_converts_its_language_model(tmp_path: Path) -> None:
    """Qwen3.5's released checkpoints keep the text model under `model.language_model.` beside `model.visual.`."""
    from safetensors.torch import save_file

    hub = tmp_path / "hub"
    model = _tiny_saved("qwen3_5", hub)
    wrapped = tmp_path / "wrapped"
    wrapped.mkdir()
    state = {
        ("model.language_model." + k[len("model.") :] if k.startswith("model.") else k): v.contiguous()
        for k, v in model.state_dict().items()
    }
    state["model.visual.patch_embed.proj.weight"] = torch.zeros(4, 3)
    save_file(state, str(wrapped / "model.safetensors"))
    out = tmp_path / "out"
    result = _build(str(hub), "-o", str(out), "--target", "qwen3_5", "--weights", str(wrapped))
    assert result.exit_code == 0, result.output
    assert "warning[P506]: 1 tensor" in result.output and "model.visual.patch_embed.proj.weight" in result.output
    built = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.randint(0, 64, (1, 7), generator=torch.Generator().manual_seed(1))
    assert torch.equal(_logits(model, ids), _logits(built, ids))


def test_a_conversion_transformers_does_with_another_operation_is_refused() -> None:
    """hubnames refuses what a read, a stack or a join cannot undo (here a transpose) instead of guessing."""
    from patternc_transformers.hubnames import HubError, _form
    from transformers.core_model_loading import Transpose, WeightConverter

    forward = WeightConverter("mlp.w.weight", "mlp.proj.weight", operations=[Transpose(0, 1)])
    reverse = forward.reverse_transform()
    with pytest.raises(HubError, match="Transpose"):
        _form("model.layers.0.mlp.proj.weight", (4, 8), forward, reverse, [], lambda key, _: key)
