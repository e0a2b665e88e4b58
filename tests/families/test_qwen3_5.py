"""The dense `qwen3_5` family (Qwen3.5 / Qwen3.6): configs built by transformers' `Qwen3_5TextConfig` (flat, or
as the `text_config` of the multimodal `Qwen3_5Config`) read into the IR; `build --target qwen3_5` loads back
into `Qwen3_5ForCausalLM` with the same meta-device state_dict; `stats` counts that state_dict exactly; a
released Qwen3.5-27B config; defaults drift."""

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

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "Qwen3.5-27B" / "config.json"
SMALL: dict[str, Any] = {
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
}


def _state(config: Any) -> tuple[dict[str, tuple[int, ...]], int]:
    """The meta-device model's state_dict names and shapes, and its element count (tied tensors once)."""
    reference = meta_model(config)
    assert reference.architecture == "Qwen3_5ForCausalLM"
    return reference.shapes, reference.stored


def test_text_config() -> None:
    reading = read_config(transformers.Qwen3_5TextConfig(num_hidden_layers=8, **SMALL).to_dict())
    assert reading.ok, errors(reading)
    assert reading.family == "qwen3_5"
    spec = reading.spec
    assert spec is not None and spec.pattern.flat == "G-G-G-*-G-G-G-*-"
    assert spec.norm.unit_offset and spec.moe is None
    assert spec.mlp is not None and spec.mlp.gated and spec.mlp.intermediate_size == 48
    a = spec.attention
    assert a is not None and a.output_gate and a.qk_norm and a.rope is not None
    assert a.rope.mrope_section == (11, 11, 10) and a.rope.mrope_interleaved and a.rope.partial_factor == 0.25
    assert spec.gated_deltanet is not None and spec.gated_deltanet.split_projections


def test_wrapper_and_interval_spelling() -> None:
    text = transformers.Qwen3_5TextConfig(num_hidden_layers=4, full_attention_interval=2, **SMALL).to_dict()
    del text["layer_types"]
    text["full_attention_interval"] = 2
    data = transformers.Qwen3_5Config().to_dict() | {"text_config": text}
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.family == "qwen3_5" and reading.pattern is not None and reading.pattern.flat == "G-*-G-*-"


def test_any_layer_type_but_linear_attention_is_attention() -> None:
    """`Qwen3_5DecoderLayer` builds attention for every entry that is not `linear_attention`."""
    reading = read_config(
        {"model_type": "qwen3_5_text", "num_hidden_layers": 2, "layer_types": ["attention", "linear_attention"]}
    )
    assert reading.ok and reading.pattern is not None and reading.pattern.flat == "*-G-"


def test_released_qwen3_5_27b_config() -> None:
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "canonical  qwen3_5" in result.stdout
    assert "pattern    " + "G-G-G-*-" * 12 in result.stdout and "(128 " in result.stdout
    reading = read_config(RELEASED)
    assert reading.spec is not None and reading.family == "qwen3_5"
    assert reading.spec.pattern.counts() == {"G": 48, "*": 16, "-": 64}
    verdict = canonical_map(reading.spec)
    assert verdict.architecture == "qwen3_5"
    assert set(verdict.reasons) == set(candidates()) - {"qwen3_5"}
    assert all(verdict.reasons.values())
    # Qwen3-Next builds the same MLP; only the DeltaNet projections and the multimodal RoPE differ
    nxt = verdict.reasons["qwen3_next"]
    assert len(nxt) == 3 and not any("`-`" in r for r in nxt)
    assert any("mrope" in r for r in nxt) and any("in_proj_qkvz" in r for r in nxt)


@st.composite
def text_configs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    k_heads = draw(st.sampled_from([1, 2]))
    config: dict[str, Any] = {
        **SMALL,
        "model_type": "qwen3_5_text",
        "num_hidden_layers": n,
        "hidden_size": draw(st.sampled_from([16, 32])),
        "intermediate_size": draw(st.sampled_from([8, 40])),
        "num_attention_heads": draw(st.sampled_from([2, 4])),
        "num_key_value_heads": draw(st.sampled_from([1, 2])),
        "head_dim": draw(st.sampled_from([8, 16])),
        "linear_num_key_heads": k_heads,
        "linear_num_value_heads": k_heads * draw(st.sampled_from([1, 2])),
        "linear_conv_kernel_dim": draw(st.sampled_from([2, 4])),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):
        kinds = st.sampled_from(["linear_attention", "full_attention"])
        config["layer_types"] = draw(st.lists(kinds, min_size=n, max_size=n))
    else:
        config["full_attention_interval"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        config = {"model_type": "qwen3_5", "text_config": config}
    return config


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(text_configs())
def test_drawn_configs_read_build_and_count_exactly(tmp_path: Path, config: dict[str, Any]) -> None:
    reading = read_config(config)
    assert reading.ok, errors(reading)
    assert reading.family == "qwen3_5"
    spec = reading.spec
    assert spec is not None
    assert canonical_map(spec).architecture == "qwen3_5"
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    (source / "config.json").write_text(json.dumps(config), encoding="utf-8")
    original = transformers.AutoConfig.from_pretrained(source)
    expected, elements = _state(getattr(original, "text_config", original))
    assert model_stats(spec).params.total == elements
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", str(source), "--target", "qwen3_5", "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    built = transformers.AutoConfig.from_pretrained(out)
    assert type(built).__name__ == "Qwen3_5TextConfig"
    assert _state(built)[0] == expected
    assert json.loads((out / "config.json").read_text())["architectures"] == ["Qwen3_5ForCausalLM"]
    again = read_config(out)
    assert again.ok and again.spec == spec


def test_defaults_match_transformers() -> None:
    check_defaults("qwen3_5", transformers.Qwen3_5TextConfig)
