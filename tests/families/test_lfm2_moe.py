"""The `lfm2_moe` family: configs built by transformers' `Lfm2MoeConfig` read into the IR; each maps to
`lfm2_moe`, `build --target lfm2_moe` loads back into the same class with the same meta-device state_dict
(the `expert_bias` buffer included), `stats` counts that state_dict exactly; the released LFM2-8B-A1B
config; defaults drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.analysis import model_stats
from patternc.canonical import canonical_map
from patternc.cli import app
from patternc.config import read_config
from patternc.families import get
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "LFM2-8B-A1B"
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def lfm2_moe_configs(draw: st.DrawFn) -> Any:
    """A small ``Lfm2MoeConfig``: its ``layer_types``, dense prefix and router drawn."""
    n = draw(st.integers(1, 6))
    kv = draw(st.sampled_from([1, 2, 4]))
    heads = kv * draw(st.integers(1, 2))
    experts = draw(st.integers(1, 8))
    return transformers.Lfm2MoeConfig(
        num_hidden_layers=n,
        layer_types=draw(st.lists(st.sampled_from(["conv", "full_attention"]), min_size=n, max_size=n)),
        num_dense_layers=draw(st.integers(0, n)),
        hidden_size=heads * draw(st.sampled_from([4, 8])),
        num_attention_heads=heads,
        num_key_value_heads=kv,
        vocab_size=draw(st.integers(8, 64)),
        intermediate_size=draw(st.integers(1, 48)),
        moe_intermediate_size=draw(st.integers(1, 24)),
        num_experts=experts,
        num_experts_per_tok=draw(st.integers(1, experts)),
        use_expert_bias=draw(st.booleans()),
        norm_topk_prob=draw(st.booleans()),
        routed_scaling_factor=draw(st.sampled_from([1.0, 2.5])),
        conv_L_cache=draw(st.integers(2, 4)),
        conv_bias=draw(st.booleans()),
        tie_word_embeddings=draw(st.booleans()),
    )


@SETTINGS
@given(lfm2_moe_configs())
def test_drawn_configs_map_build_and_count_exactly(config: Any) -> None:
    reading = read_config(config.to_dict())
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "lfm2_moe"
    mapped = canonical_map(spec)
    assert "lfm2_moe" in mapped.matched, mapped.reasons.get("lfm2_moe")
    # every layer dense: exactly LFM2 as well, which the preference order names first
    assert mapped.architecture == ("lfm2_moe" if spec.moe is not None else "lfm2")
    assert model_stats(spec).params.total == meta_model(config).stored
    written = get("lfm2_moe").express(spec).config
    loaded = transformers.AutoConfig.for_model(
        "lfm2_moe", **{k: v for k, v in written.items() if k not in ("model_type", "architectures")}
    )
    assert type(loaded) is transformers.Lfm2MoeConfig
    assert meta_model(loaded).shapes == meta_model(config).shapes


def test_build_target_lfm2_moe_writes_a_config_autoconfig_loads(tmp_path: Path) -> None:
    config = transformers.Lfm2MoeConfig(
        num_hidden_layers=4,
        layer_types=["conv", "full_attention", "conv", "conv"],
        num_dense_layers=1,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_experts=4,
        num_experts_per_tok=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=50,
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["build", str(source), "--target", "lfm2_moe", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    loaded = transformers.AutoConfig.from_pretrained(tmp_path / "out")
    assert type(loaded) is transformers.Lfm2MoeConfig
    assert meta_model(loaded).shapes == meta_model(config).shapes
    assert any(name.endswith("feed_forward.expert_bias") for name in meta_model(loaded).shapes)


def test_released_lfm2_8b_a1b() -> None:
    """LiquidAI/LFM2-8B-A1B: 24 layers (6 attention), two dense then 22 MoE; 8.3B total, 1.5B active."""
    reading = read_config(RELEASED)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.pattern.flat == "C-C-*ECECECE*ECECECE*ECECECE*ECECECE*ECECE*ECECE"
    assert spec.moe is not None and spec.moe.router == "sigmoid" and spec.moe.score_correction_bias
    assert (spec.moe.num_experts, spec.moe.top_k, spec.moe.intermediate_size) == (32, 4, 1792)
    assert spec.moe.shared_experts == 0
    assert spec.mlp is not None and spec.mlp.intermediate_size == 7168
    assert spec.attention is not None and spec.attention.rope is not None and spec.attention.rope.theta == 1e6
    config = transformers.AutoConfig.from_pretrained(RELEASED)
    params = model_stats(spec).params
    assert params.total == meta_model(config).stored == 8_339_930_560
    assert round(params.active / 1e9, 1) == 1.6 and round(params.total / 1e9, 1) == 8.3
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert spec.pattern.flat in result.output and "canonical  lfm2_moe" in result.output


def test_other_families_refuse_lfm2_moe_with_reasons() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert list(result.matched) == ["lfm2_moe"]
    assert result.reasons.get("lfm2"), "lfm2 builds no MoE: it must say so"
    for family, reasons in result.reasons.items():
        if family != "lfm2_moe":
            assert reasons, family


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"num_hidden_layers": 3, "layer_types": ["conv", "full_attention"]}, "P908"),
        ({"num_hidden_layers": 2, "layer_types": ["conv", "linear_attention"]}, "P014"),
        (
            {"num_hidden_layers": 2, "layer_types": ["conv", "conv"], "num_dense_layers": 0, "num_experts_per_tok": 40},
            "P908",
        ),
        ({"num_hidden_layers": 2}, "P917"),
    ],
)
def test_contradictions_are_diagnostics(data: dict[str, Any], code: str) -> None:
    reading = read_config({"model_type": "lfm2_moe", **data})
    assert code in {d.code for d in reading.diagnostics}, [(d.code, d.message) for d in reading.diagnostics]


def test_defaults_match_transformers() -> None:
    check_defaults("lfm2_moe", transformers.Lfm2MoeConfig)
