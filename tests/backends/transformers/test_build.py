"""``patternc build``: configs transformers loads, weights converted, equivalence proven by logits.

Tiny random source models are built with transformers on the CPU (every weight perturbed, so a
norm or a projection put in the wrong place changes the logits), saved with ``save_pretrained``
(hub names: ``backbone.*`` and per-expert tensors for Nemotron-H, ``input_linear`` for
GraniteMoeHybrid) or as their transformers 5.x state dict, converted with ``patternc build
--weights``, loaded back with ``AutoModelForCausalLM.from_pretrained`` (no missing, unexpected or
mis-shaped tensor) and compared on random input: max |Δlogits| ≤ 1e-5 in fp32.  Every exact pair
the canonical map claims for these specs is built; every other pair is shown refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from typer.testing import CliRunner  # noqa: E402

from patternc.canonical import canonical_map  # noqa: E402
from patternc.cli import app  # noqa: E402
from patternc.config import read_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-5
MAMBA = {"mamba_n_heads": 4, "mamba_d_head": 16, "mamba_expand": 2, "mamba_n_groups": 2, "mamba_d_state": 8}
ATTN = {"num_attention_heads": 4, "num_key_value_heads": 2}


def _nemotron_mixed() -> Any:
    return transformers.NemotronHConfig(
        vocab_size=64,
        hidden_size=32,
        layers_block_type=["mamba", "moe", "attention", "mlp", "mamba"],
        mamba_num_heads=4,
        mamba_head_dim=16,
        ssm_state_size=8,
        n_groups=2,
        conv_kernel=4,
        head_dim=8,
        intermediate_size=48,
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        moe_shared_expert_intermediate_size=24,
        n_group=1,
        topk_group=1,
        routed_scaling_factor=1.5,
        **ATTN,
    )


def _nemotron_mamba() -> Any:
    return transformers.NemotronHConfig(
        vocab_size=64,
        hidden_size=32,
        layers_block_type=["mamba", "mamba", "mamba"],
        mamba_num_heads=4,
        mamba_head_dim=16,
        ssm_state_size=8,
        n_groups=2,
        expand=2,
        time_step_min=0.01,
    )


def _mamba2() -> Any:
    return transformers.Mamba2Config(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_heads=4, head_dim=16, expand=2, n_groups=2, state_size=8
    )


def _bamba(partial: float = 0.5) -> Any:
    return transformers.BambaConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=3,
        attn_layer_indices=[1],
        intermediate_size=48,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": partial},
        **MAMBA,
        **ATTN,
    )


def _granite_moe() -> Any:
    return transformers.GraniteMoeHybridConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=3,
        layer_types=["mamba", "attention", "mamba"],
        intermediate_size=16,
        num_local_experts=4,
        num_experts_per_tok=2,
        shared_intermediate_size=24,
        embedding_multiplier=2.0,
        residual_multiplier=0.5,
        logits_scaling=3.0,
        attention_multiplier=0.3,
        **MAMBA,
        **ATTN,
    )


def _granite_dense(layer_types: list[str]) -> Callable[[], Any]:
    def make() -> Any:
        return transformers.GraniteMoeHybridConfig(
            vocab_size=64,
            hidden_size=32,
            num_hidden_layers=len(layer_types),
            layer_types=layer_types,
            num_local_experts=0,
            shared_intermediate_size=24,
            position_embedding_type="rope",
            attention_multiplier=8**-0.5,
            **MAMBA,
            **ATTN,
        )

    return make


SOURCES: dict[str, Callable[[], Any]] = {
    "nemotron_h-mixed": _nemotron_mixed,
    "nemotron_h-mamba": _nemotron_mamba,
    "mamba2": _mamba2,
    "bamba": _bamba,
    "bamba-full-rope": lambda: _bamba(1.0),
    "granitemoehybrid-moe": _granite_moe,
    "granitemoehybrid-dense": _granite_dense(["mamba", "attention", "mamba"]),
    "granitemoehybrid-mamba": _granite_dense(["mamba", "mamba"]),
}

EXACT: dict[str, list[str]] = {
    "nemotron_h-mixed": ["nemotron_h"],
    "nemotron_h-mamba": ["mamba2", "nemotron_h"],
    "mamba2": ["mamba2", "nemotron_h"],
    "bamba": ["bamba"],
    "bamba-full-rope": ["bamba", "granitemoehybrid"],
    "granitemoehybrid-moe": ["granitemoehybrid"],
    "granitemoehybrid-dense": ["bamba", "granitemoehybrid"],
    "granitemoehybrid-mamba": ["bamba", "granitemoehybrid"],
}
"""What ``canonical_map`` claims for each source (checked below), so every claimed pair is proven."""

TARGETS = ("nemotron_h", "mamba2", "bamba", "granitemoehybrid")
RESULTS: dict[tuple[str, str, str], float] = {}


def _readable(directory: Path) -> None:
    """transformers 5.x writes ``inf`` as ``{"__float__": "Infinity"}``; give the reader plain JSON ``Infinity``."""
    path = directory / "config.json"
    data = json.loads(path.read_text())
    limit = data.get("time_step_limit")
    if isinstance(limit, list) and any(isinstance(v, dict) for v in limit):
        data["time_step_limit"] = [float(v["__float__"]) if isinstance(v, dict) else v for v in limit]
        path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    """Each source saved twice: ``save_pretrained`` (hub names) and its state dict (transformers 5.x names)."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("sources")
    out: dict[str, tuple[Path, Any]] = {}
    for index, (name, make) in enumerate(SOURCES.items()):
        torch.manual_seed(index)
        model = transformers.AutoModelForCausalLM.from_config(make()).eval()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.add_(0.2 * torch.randn_like(tensor))
        hub = root / name
        model.save_pretrained(hub)
        _readable(hub)
        state = root / f"{name}-state"
        state.mkdir()
        (state / "config.json").write_text((hub / "config.json").read_text())
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(state / "model.safetensors"))
        out[name] = (hub, model)
    return out


def _build(*args: str) -> Any:
    return CliRunner().invoke(app, ["build", *args])


def _logits(model: Any, ids: Any) -> Any:
    with torch.no_grad():
        return model(ids, use_cache=False).logits


def _load(directory: Path) -> Any:
    model, info = transformers.AutoModelForCausalLM.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


@pytest.mark.parametrize("name", list(SOURCES))
def test_canonical_map_claims_these_exact_pairs(name: str, sources: dict[str, tuple[Path, Any]]) -> None:
    reading = read_config(sources[name][0])
    assert reading.spec is not None, reading.diagnostics
    assert canonical_map(reading.spec).matched == EXACT[name]


PAIRS = [(name, target, layout) for name in SOURCES for target in EXACT[name] for layout in ("hub", "state")]


@pytest.mark.parametrize(("name", "target", "layout"), PAIRS)
def test_exact_pair_has_the_same_logits(
    name: str, target: str, layout: str, sources: dict[str, tuple[Path, Any]], tmp_path: Path
) -> None:
    directory, model = sources[name]
    weights = directory if layout == "hub" else directory.parent / f"{name}-state"
    out = tmp_path / "out"
    result = _build(
        str(directory), "-o", str(out), "--target", target, "--weights", str(weights), "--max-shard-size", "20kB"
    )
    assert result.exit_code == 0, result.output
    config = transformers.AutoConfig.from_pretrained(out)
    assert config.model_type == target
    built = _load(out)
    assert type(built).__name__ == config.architectures[0]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1, "20kB shards: the tiny models span several"
    ids = torch.randint(0, 64, (2, 11), generator=torch.Generator().manual_seed(7))
    diff = (_logits(model, ids) - _logits(built, ids)).abs().max().item()
    RESULTS[(name, target, layout)] = diff
    assert diff <= TOLERANCE, f"{name} -> {target} ({layout} names): max |Δlogits| = {diff}"


REFUSED = [(name, target) for name in SOURCES for target in TARGETS if target not in EXACT[name]]


@pytest.mark.parametrize(("name", "target"), REFUSED)
def test_inexact_pair_is_refused_with_its_reasons(
    name: str, target: str, sources: dict[str, tuple[Path, Any]], tmp_path: Path
) -> None:
    directory, _ = sources[name]
    out = tmp_path / "out"
    result = _build(str(directory), "-o", str(out), "--target", target, "--weights", str(directory))
    assert result.exit_code == 1
    assert f"error[P501]: `{target}` cannot express this model exactly" in result.output
    reasons = canonical_map(read_config(directory).spec).reasons[target]  # type: ignore[arg-type]
    assert reasons and all(f"= note: {reason}" in result.output for reason in reasons[:30])
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_refusal_reasons_name_the_difference(sources: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    result = _build(str(sources["bamba"][0]), "-o", str(tmp_path / "o"), "--target", "granitemoehybrid")
    assert "layer 2 `*`: `rope` partial_factor is 0.5, granitemoehybrid's is 1" in result.output
    result = _build(str(sources["nemotron_h-mixed"][0]), "-o", str(tmp_path / "o"), "--target", "mamba2")
    assert "mamba2 has no mixture of experts layer" in result.output


# ------------------------------------------------------------------------------------------------
# Folded from test_build_audit.py:
# `patternc build` defects found by an audit of the transformers backend (2026-11-30).
# ------------------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from safetensors.torch import load_file, save_file  # noqa: E402

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
    result = runner.invoke(
        app, ["build", "MMM", "--set", "hidden_size=32", "-o", str(tmp_path / "o"), "--weights", str(tmp_path / "ck")]
    )
    assert result.exit_code == 1 and "error[P507]" in result.output
    assert "not one of F16, BF16, F32, F64" in result.output
    assert not (tmp_path / "o").exists()


def test_a_converted_mamba2_round_trips_through_check(tmp_path: Path) -> None:
    """transformers' Mamba2 clamps dt at (0, inf): as Nemotron-H that is `time_step_min` 0, which must read back."""
    source = tmp_path / "src"
    torch.manual_seed(0)
    transformers.Mamba2ForCausalLM(
        transformers.Mamba2Config(
            vocab_size=64,
            hidden_size=32,
            num_hidden_layers=2,
            num_heads=4,
            head_dim=16,
            expand=2,
            n_groups=2,
            state_size=8,
        )
    ).save_pretrained(source)
    built = runner.invoke(
        app, ["build", str(source), "-o", str(tmp_path / "o"), "--weights", str(source), "--target", "nemotron_h"]
    )
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
