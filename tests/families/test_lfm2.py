"""The `lfm2` family: configs built by transformers' `Lfm2Config` (layer lists and index lists), read into
the IR; each maps to `lfm2`, `build --target lfm2` loads back into the same class with the same meta-device
state_dict, and `stats` counts that state_dict exactly; the released LFM2-1.2B config; defaults drift."""

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
from patternc.convert import to_megatron
from patternc.diagnostics import PatternError
from patternc.families import get
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "LFM2-1.2B"
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def lfm2_configs(draw: st.DrawFn) -> Any:
    """A small ``Lfm2Config``: its layout as ``layer_types`` or as ``full_attn_idxs``."""
    n = draw(st.integers(1, 6))
    attention = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    kv = draw(st.sampled_from([1, 2, 4]))
    heads = kv * draw(st.integers(1, 2))
    kwargs: dict[str, Any] = {
        "num_hidden_layers": n,
        "hidden_size": heads * draw(st.sampled_from([4, 8])),
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "vocab_size": draw(st.integers(8, 64)),
        "intermediate_size": draw(st.integers(8, 96)),
        "block_auto_adjust_ff_dim": draw(st.booleans()),
        "block_multiple_of": draw(st.sampled_from([8, 16, 256])),
        "block_ffn_dim_multiplier": draw(st.sampled_from([1.0, 1.5, 2])),
        "conv_L_cache": draw(st.integers(2, 4)),
        "conv_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
        "norm_eps": draw(st.sampled_from([1e-5, 1e-6])),
    }
    if draw(st.booleans()):
        kwargs["layer_types"] = ["full_attention" if a else "conv" for a in attention]
    else:
        kwargs["full_attn_idxs"] = [i for i, a in enumerate(attention) if a]
    return transformers.Lfm2Config(**kwargs)


@SETTINGS
@given(lfm2_configs())
def test_drawn_configs_map_build_and_count_exactly(config: Any) -> None:
    data = config.to_dict()
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "lfm2"
    assert canonical_map(spec).architecture == "lfm2"
    assert model_stats(spec).params.total == meta_model(config).stored
    written = get("lfm2").express(spec).config
    loaded = transformers.AutoConfig.for_model(
        "lfm2", **{k: v for k, v in written.items() if k not in ("model_type", "architectures")}
    )
    assert type(loaded) is transformers.Lfm2Config
    assert meta_model(loaded).shapes == meta_model(config).shapes


def test_build_target_lfm2_writes_a_config_autoconfig_loads(tmp_path: Path) -> None:
    config = transformers.Lfm2Config(
        num_hidden_layers=4,
        full_attn_idxs=[1, 3],
        hidden_size=32,
        intermediate_size=48,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=50,
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["build", str(source), "--target", "lfm2", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    loaded = transformers.AutoConfig.from_pretrained(tmp_path / "out")
    assert type(loaded) is transformers.Lfm2Config
    assert meta_model(loaded).shapes == meta_model(config).shapes
    assert loaded.layer_types == ["conv", "full_attention", "conv", "full_attention"]


def test_released_lfm2_1_2b() -> None:
    """LiquidAI/LFM2-1.2B: 16 layers, attention at 2, 5, 8, 10, 12, 14; 1.17B parameters (model card)."""
    reading = read_config(RELEASED)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.pattern.flat == "C-C-*-C-C-*-C-C-*-C-*-C-*-C-*-C-"
    assert spec.short_conv is not None and spec.short_conv.conv_kernel == 3 and not spec.short_conv.bias
    assert spec.mlp is not None and spec.mlp.intermediate_size == 8192
    assert spec.attention is not None and spec.attention.qk_norm and spec.attention.head_dim == 64
    assert spec.attention.rope is not None and spec.attention.rope.theta == 1e6
    assert spec.tie_embeddings
    config = transformers.AutoConfig.from_pretrained(RELEASED)
    assert model_stats(spec).params.total == meta_model(config).stored == 1_170_340_608
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "C-C-*-C-C-*-C-C-*-C-*-C-*-C-*-C-" in result.output
    assert "canonical  lfm2" in result.output


def test_other_families_refuse_lfm2_with_reasons() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    # an LFM2-MoE whose every layer is dense (`num_dense_layers` = 16) is the same model: exact too
    assert list(result.matched) == ["lfm2", "lfm2_moe"] and result.architecture == "lfm2"
    for family, reasons in result.reasons.items():
        if family not in result.matched:
            assert reasons, family


def test_megatron_has_no_short_convolution() -> None:
    """`convert --to megatron` refuses (P002) rather than print a symbol Megatron lacks; `check --json`
    says null for the Megatron spelling."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    with pytest.raises(PatternError) as raised:
        to_megatron(reading.spec.pattern)
    assert [d.code for d in raised.value.diagnostics] == ["P002"]
    result = CliRunner().invoke(app, ["convert", "--to", "megatron", "C-*-"])
    assert result.exit_code == 1 and "P002" in result.output
    result = CliRunner().invoke(app, ["check", "--json", "C-*-"])
    assert json.loads(result.output)["megatron"] is None
    result = CliRunner().invoke(app, ["convert", "--to", "fmt", "C-C-*-C-C-*-"])
    assert result.output.strip() == "(C-C-*-){2}"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"num_hidden_layers": 3, "layer_types": ["conv", "full_attention"]}, "P908"),
        ({"num_hidden_layers": 2, "layer_types": ["conv", "sliding_attention"]}, "P014"),
        ({"num_hidden_layers": 2, "full_attn_idxs": [1, 7]}, "P916"),
    ],
)
def test_contradictions_are_diagnostics(data: dict[str, Any], code: str) -> None:
    reading = read_config({"model_type": "lfm2", **data})
    assert code in {d.code for d in reading.diagnostics}


def test_full_attn_idxs_and_the_class_defaults() -> None:
    reading = read_config({"model_type": "lfm2", "num_hidden_layers": 4, "full_attn_idxs": [3]})
    assert reading.ok and reading.spec is not None, errors(reading)
    assert reading.spec.pattern.flat == "C-C-C-*-"
    assert reading.spec.attention is not None and reading.spec.attention.rope is not None
    assert reading.spec.attention.rope.theta == 1e6  # Lfm2Config.default_theta
    assert reading.spec.mlp is not None and reading.spec.mlp.intermediate_size == 8192  # 2/3 of 12288


def test_defaults_match_transformers() -> None:
    check_defaults("lfm2", transformers.Lfm2Config)


def test_split_places_short_convolutions() -> None:
    """`split` re-checks its proposal with Megatron's pipeline rules; a `C` layer is read in patternc's
    dialect for that (Megatron's alphabet lacks it), not refused as a bug."""
    result = CliRunner().invoke(app, ["split", str(RELEASED), "--pp", "2"])
    assert result.exit_code == 0, result.output
    pattern = next(line for line in result.output.splitlines() if line.startswith("pattern"))
    assert pattern.split()[1].replace("|", "") == "C-C-*-C-C-*-C-C-*-C-*-C-*-C-*-C-"
