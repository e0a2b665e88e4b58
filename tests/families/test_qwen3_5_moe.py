"""The `qwen3_5_moe` family (Qwen3.5 / Qwen3.6 MoE): configs built by transformers' `Qwen3_5MoeTextConfig`
(flat, or as the `text_config` of the multimodal `Qwen3_5MoeConfig`) read into the IR; `build --target
qwen3_5_moe` loads back into `Qwen3_5MoeForCausalLM` with the same meta-device state_dict; `stats`
counts that state_dict exactly; the released Qwen3.6-35B-A3B config; defaults drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patternc.analysis import model_stats
from patternc.canonical import candidates, canonical_map
from patternc.config import read_config
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from patternc.cli import app  # noqa: E402

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "Qwen3.6-35B-A3B-NVFP4" / "config.json"
SMALL: dict[str, Any] = {
    "vocab_size": 64,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
    "moe_intermediate_size": 16,
    "shared_expert_intermediate_size": 24,
    "num_experts": 4,
    "num_experts_per_tok": 2,
}


def _state(config: Any) -> tuple[dict[str, tuple[int, ...]], int]:
    """The meta-device model's state_dict names and shapes, and its element count (tied tensors once)."""
    reference = meta_model(config)
    assert reference.architecture == "Qwen3_5MoeForCausalLM"
    return reference.shapes, reference.stored


def test_text_config() -> None:
    data = transformers.Qwen3_5MoeTextConfig(num_hidden_layers=8, **SMALL).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.family == "qwen3_5_moe"
    spec = reading.spec
    assert spec is not None and spec.pattern.flat == "GEGEGE*EGEGEGE*E"
    assert spec.norm.unit_offset
    a = spec.attention
    assert a is not None and a.output_gate and a.qk_norm
    assert a.rope is not None and a.rope.partial_factor == 0.25
    assert a.rope.mrope_section == (11, 11, 10) and a.rope.mrope_interleaved
    g = spec.gated_deltanet
    assert g is not None and g.split_projections and g.num_v_heads == 4
    e = spec.moe
    assert e is not None and e.shared_expert_gate and e.router == "softmax" and e.norm_topk_prob
    assert spec.mlp is None


def test_multimodal_wrapper_reads_its_text_config() -> None:
    text = transformers.Qwen3_5MoeTextConfig(num_hidden_layers=4, **SMALL)
    data = transformers.Qwen3_5MoeConfig(text_config=text.to_dict()).to_dict()
    assert data["model_type"] == "qwen3_5_moe" and data["text_config"]["model_type"] == "qwen3_5_moe_text"
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.family == "qwen3_5_moe"
    assert reading.pattern is not None and reading.pattern.flat == "GEGEGE*E"
    assert any(d.code == "P915" and "text_config" in d.message for d in reading.diagnostics)


def test_full_attention_interval_spelling() -> None:
    reading = read_config({"model_type": "qwen3_5_moe_text", "num_hidden_layers": 6, "full_attention_interval": 3})
    assert reading.ok and reading.pattern is not None and reading.pattern.flat == "GEGE*EGEGE*E"
    # transformers' own list from the same keys
    built = transformers.Qwen3_5MoeTextConfig(num_hidden_layers=6, full_attention_interval=3)
    assert [t == "full_attention" for t in built.layer_types] == [s == "*" for s in reading.pattern.flat[::2]]


def test_interval_that_contradicts_layer_types_is_a_warning() -> None:
    data = {
        "model_type": "qwen3_5_moe_text",
        "num_hidden_layers": 2,
        "layer_types": ["full_attention", "linear_attention"],
        "full_attention_interval": 2,
    }
    reading = read_config(data)
    assert reading.ok and reading.pattern is not None and reading.pattern.flat == "*EGE"
    [warning] = [d for d in reading.diagnostics if d.code == "P916"]
    assert "full_attention_interval" in warning.message and warning.span is not None


def test_layer_type_the_moe_layer_cannot_build_is_refused() -> None:
    reading = read_config({"model_type": "qwen3_5_moe_text", "num_hidden_layers": 1, "layer_types": ["attention"]})
    assert not reading.ok and any(d.code == "P014" for d in reading.diagnostics)


def test_multimodal_rope_values() -> None:
    base = {"model_type": "qwen3_5_moe_text", "num_hidden_layers": 4}
    bad = read_config({**base, "rope_parameters": {"rope_theta": 1e6, "mrope_section": [11, 11]}})
    assert not bad.ok and any(d.code == "P906" and "mrope_section" in d.message for d in bad.diagnostics)
    flat = read_config({**base, "rope_parameters": {"rope_theta": 1e6, "mrope_interleaved": False}})
    assert flat.ok and any(d.code == "P916" and "interleaves" in d.message for d in flat.diagnostics)
    custom = read_config({**base, "rope_parameters": {"rope_theta": 1e6, "mrope_section": [8, 12, 12]}})
    assert custom.spec is not None and custom.spec.attention is not None
    assert custom.spec.attention.rope is not None and custom.spec.attention.rope.mrope_section == (8, 12, 12)


def test_released_qwen3_6_config() -> None:
    result = CliRunner().invoke(app, ["check", str(RELEASED), "--verbose"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "GEGEGE*E" * 10 in out.replace("\n", "")
    assert "canonical  qwen3_5_moe" in out
    reading = read_config(RELEASED)
    assert reading.spec is not None and reading.family == "qwen3_5_moe"
    assert reading.spec.pattern.counts() == {"G": 30, "*": 10, "E": 40}
    assert reading.spec.moe is not None and reading.spec.moe.num_experts == 256
    assert "quantization_config" not in {d.message for d in reading.diagnostics if d.code == "P912"}
    result = canonical_map(reading.spec)
    assert result.architecture == "qwen3_5_moe"
    assert set(result.reasons) == set(candidates()) - {"qwen3_5_moe"}
    assert all(result.reasons[name] for name in result.reasons)  # every other family refuses, with a reason


def test_qwen3_5_moe_is_not_qwen3_next() -> None:
    """Per layer: the DeltaNet input projections (split vs fused and head-grouped) and the multimodal
    RoPE differ; the MoE, attention gate, q/k norms and norms are the same."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    reasons = canonical_map(reading.spec).reasons["qwen3_next"]
    assert len(reasons) == 3
    assert any("`G`" in r and "in_proj_qkv`" in r and "in_proj_b`" in r for r in reasons)
    assert any("`G`" in r and "in_proj_qkvz`" in r and "in_proj_ba`" in r for r in reasons)
    assert any("`*`" in r and "mrope is 11,11,10 interleaved" in r for r in reasons)
    assert not any("`E`" in r for r in reasons)
    # and a Qwen3-Next config is not Qwen3.5 either (its fused projections, its 1-D RoPE)
    nxt = read_config(
        transformers.Qwen3NextConfig(
            num_hidden_layers=4, mlp_only_layers=[], num_experts=8, num_experts_per_tok=2
        ).to_dict()
    )
    assert nxt.spec is not None
    result = canonical_map(nxt.spec)
    assert result.architecture == "qwen3_next" and "qwen3_5_moe" not in result.matched
    assert any("mrope" in r for r in result.reasons["qwen3_5_moe"])


@st.composite
def text_configs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    k_heads = draw(st.sampled_from([1, 2]))
    config: dict[str, Any] = {
        **SMALL,
        "model_type": "qwen3_5_moe_text",
        "num_hidden_layers": n,
        "hidden_size": draw(st.sampled_from([16, 32])),
        "num_attention_heads": draw(st.sampled_from([2, 4])),
        "num_key_value_heads": draw(st.sampled_from([1, 2])),
        "head_dim": draw(st.sampled_from([8, 16])),
        "linear_num_key_heads": k_heads,
        "linear_num_value_heads": k_heads * draw(st.sampled_from([1, 2])),
        "linear_conv_kernel_dim": draw(st.sampled_from([2, 4])),
        "num_experts": draw(st.sampled_from([2, 4])),
        "num_experts_per_tok": draw(st.sampled_from([1, 2])),
        "shared_expert_intermediate_size": draw(st.sampled_from([8, 24])),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):
        kinds = st.sampled_from(["linear_attention", "full_attention"])
        config["layer_types"] = draw(st.lists(kinds, min_size=n, max_size=n))
    else:
        config["full_attention_interval"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        config = {"model_type": "qwen3_5_moe", "text_config": config}
    return config


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(text_configs())
def test_drawn_configs_read_build_and_count_exactly(tmp_path: Path, config: dict[str, Any]) -> None:
    reading = read_config(config)
    assert reading.ok, errors(reading)
    assert reading.family == "qwen3_5_moe"
    spec = reading.spec
    assert spec is not None
    assert canonical_map(spec).architecture == "qwen3_5_moe"
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    (source / "config.json").write_text(json.dumps(config), encoding="utf-8")
    original = transformers.AutoConfig.from_pretrained(source)
    original = getattr(original, "text_config", original)
    expected, elements = _state(original)
    assert model_stats(spec).params.total == elements
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", str(source), "--target", "qwen3_5_moe", "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    built = transformers.AutoConfig.from_pretrained(out)
    assert type(built).__name__ == "Qwen3_5MoeTextConfig"
    assert _state(built)[0] == expected
    assert json.loads((out / "config.json").read_text())["architectures"] == ["Qwen3_5MoeForCausalLM"]
    again = read_config(out)
    assert again.ok and again.spec == spec


def test_defaults_match_transformers() -> None:
    check_defaults("qwen3_5_moe", transformers.Qwen3_5MoeTextConfig)
