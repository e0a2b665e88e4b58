"""The `jamba` family: configs built by transformers' `JambaConfig` (attention and expert layers placed by
period and offset, Mamba-1 `S` elsewhere) read into the IR; each maps to `jamba`, `build --target jamba`
loads back into the same class with the same meta-device state_dict, and `stats` counts that state_dict
exactly; the released Jamba-1.5-Mini config; contradictions are diagnostics; defaults drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.analysis import model_stats
from patternc.analysis.costs import mamba1_cost
from patternc.canonical import canonical_map
from patternc.cli import app
from patternc.codes import Severity
from patternc.config import read_config
from patternc.convert import to_megatron
from patternc.diagnostics import PatternError
from patternc.families import get
from patternc.model import Mamba1Spec
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "Jamba-1.5-Mini"
SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def jamba_configs(draw: st.DrawFn) -> Any:
    """A small ``JambaConfig``: every period/offset placement, one or several experts, ``auto`` or a
    given ``mamba_dt_rank``, sometimes a ``head_dim`` other than ``hidden_size // heads``."""
    attn_period = draw(st.integers(1, 4))
    expert_period = draw(st.integers(1, 3))
    kv = draw(st.sampled_from([1, 2]))
    heads = kv * draw(st.integers(1, 2))
    experts = draw(st.sampled_from([1, 2, 4]))
    kwargs: dict[str, Any] = {
        "num_hidden_layers": draw(st.integers(1, 6)),
        "attn_layer_period": attn_period,
        "attn_layer_offset": draw(st.integers(0, attn_period - 1)),
        "expert_layer_period": expert_period,
        "expert_layer_offset": draw(st.integers(0, expert_period - 1)),
        "num_experts": experts,
        "num_experts_per_tok": draw(st.integers(1, experts)),
        "hidden_size": heads * draw(st.sampled_from([4, 8])),
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": draw(st.integers(4, 24)),
        "vocab_size": draw(st.integers(8, 64)),
        "hidden_act": draw(st.sampled_from(["silu", "gelu"])),
        "mamba_d_state": draw(st.integers(1, 8)),
        "mamba_d_conv": draw(st.integers(2, 4)),
        "mamba_expand": draw(st.integers(1, 2)),
        "mamba_dt_rank": draw(st.one_of(st.just("auto"), st.integers(1, 5))),
        "mamba_conv_bias": draw(st.booleans()),
        "mamba_proj_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
        "rms_norm_eps": draw(st.sampled_from([1e-5, 1e-6])),
    }
    if draw(st.booleans()):
        kwargs["head_dim"] = draw(st.integers(2, 6))
    return transformers.JambaConfig(**kwargs)


@SETTINGS
@given(jamba_configs())
def test_drawn_configs_map_build_and_count_exactly(config: Any) -> None:
    data = config.to_dict()
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "jamba"
    expected = "".join(
        ("*" if block == "attention" else "S") + ("E" if experts > 1 else "-")
        for block, experts in zip(config.layers_block_type, config.layers_num_experts, strict=True)
    )
    assert spec.pattern.flat == expected
    mapped = canonical_map(spec)
    assert "jamba" in mapped.matched, mapped.reasons.get("jamba")
    if "S" in expected:  # no other family builds Mamba-1 (attention + MLP alone is GraniteMoeHybrid's too)
        assert mapped.architecture == "jamba"
    reference = meta_model(config)
    assert model_stats(spec).params.total == reference.stored
    written = get("jamba").express(spec).config
    loaded = transformers.AutoConfig.for_model(
        "jamba", **{k: v for k, v in written.items() if k not in ("model_type", "architectures")}
    )
    assert type(loaded) is transformers.JambaConfig
    assert meta_model(loaded).shapes == reference.shapes


def test_mamba1_cost_is_the_mixer_state_dict() -> None:
    """`S`'s parameters, part by part, against one ``JambaMambaMixer`` (dt/B/C norms included)."""
    config = transformers.JambaConfig(hidden_size=24, mamba_d_state=5, mamba_d_conv=3, mamba_expand=2, mamba_dt_rank=3)
    config.mamba_proj_bias = True
    from transformers.models.jamba.modeling_jamba import JambaMambaMixer

    with torch.device("meta"):
        mixer = JambaMambaMixer(config, 0)
    spec = Mamba1Spec(expand=2, state_size=5, conv_kernel=3, dt_rank=3, proj_bias=True, inner_norms=True)
    cost = mamba1_cost(24, spec)
    assert cost.params - 24 == sum(p.numel() for p in mixer.state_dict().values())  # 24: the layer's pre-norm
    inner = 48
    assert cost.state_elems == inner * (3 - 1) + inner * 5
    plain = mamba1_cost(24, spec.model_copy(update={"inner_norms": False}))
    assert cost.params - plain.params == 3 + 2 * 5


def test_build_target_jamba_writes_a_config_autoconfig_loads(tmp_path: Path) -> None:
    config = transformers.JambaConfig(
        num_hidden_layers=6,
        attn_layer_period=3,
        attn_layer_offset=1,
        expert_layer_period=2,
        expert_layer_offset=0,
        num_experts=4,
        hidden_size=32,
        intermediate_size=24,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=50,
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["build", str(source), "--target", "jamba", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    loaded = transformers.AutoConfig.from_pretrained(tmp_path / "out")
    assert type(loaded) is transformers.JambaConfig
    assert meta_model(loaded).shapes == meta_model(config).shapes
    assert loaded.layers_block_type == config.layers_block_type
    assert loaded.layers_num_experts == config.layers_num_experts


def test_released_jamba_1_5_mini() -> None:
    """ai21labs/AI21-Jamba-1.5-Mini: 32 layers, attention at 4, 12, 20, 28, MoE on odd layers; 12B active of
    52B total (model card)."""
    reading = read_config(RELEASED)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.pattern.flat == "S-SES-SE*-SES-SE" * 4
    assert spec.mamba1 == Mamba1Spec(expand=2, state_size=16, conv_kernel=4, dt_rank=256, inner_norms=True)
    assert spec.attention is not None and spec.attention.rope is None and spec.attention.head_dim == 128
    assert spec.moe is not None and (spec.moe.num_experts, spec.moe.top_k) == (16, 2)
    assert spec.moe.router == "softmax" and not spec.moe.norm_topk_prob and spec.moe.shared_experts == 0
    assert not spec.tie_embeddings
    config = transformers.AutoConfig.from_pretrained(RELEASED)
    stats = model_stats(spec)
    assert stats.params.total == meta_model(config).stored == 51_570_323_328
    assert round(stats.params.active / 1e9) == 12
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "(S-SES-SE*-SES-SE){4}" in result.output or "S-SES-SE*-SES-SE" * 4 in result.output
    assert "canonical  jamba" in result.output


def test_other_families_refuse_jamba_with_reasons() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert list(result.matched) == ["jamba"] and result.architecture == "jamba"
    for family, reasons in result.reasons.items():
        if family != "jamba":
            assert reasons, family


def test_jamba_refuses_what_it_cannot_express() -> None:
    """Mamba2 layers, gated attention, renormalised routing and a non-periodic placement are reasons."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    spec = reading.spec
    assert spec.moe is not None and spec.mamba1 is not None
    for changed in (
        spec.model_copy(update={"moe": spec.moe.model_copy(update={"norm_topk_prob": True})}),
        spec.model_copy(update={"mamba1": spec.mamba1.model_copy(update={"inner_norms": False})}),
    ):
        assert "jamba" not in canonical_map(changed).matched
    bare = read_config({"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*"})
    assert bare.spec is not None
    assert get("jamba").express(bare.spec).structural


def test_megatron_has_no_mamba1() -> None:
    """`S` is patternc's own symbol: `convert --to megatron` refuses it (P002), and `fmt` keeps it."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    with pytest.raises(PatternError) as raised:
        to_megatron(reading.spec.pattern)
    assert [d.code for d in raised.value.diagnostics] == ["P002"]
    result = CliRunner().invoke(app, ["convert", "--to", "fmt", "S-SES-SE*-SES-SE" * 2])
    assert result.output.strip() == "(S-SES-SE*-SES-SE){2}"


def test_torch_backend_builds_mamba1(tmp_path: Path) -> None:
    """Mamba-1 runs on the torch backend (issue 15; parity in tests/backends/torch/test_jamba.py):
    `build --target torch` writes the model directory."""
    config = transformers.JambaConfig(
        num_hidden_layers=2,
        attn_layer_offset=1,
        attn_layer_period=2,
        hidden_size=16,
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=97,
    )
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["build", str(tmp_path), "--target", "torch", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("data", "code", "key"),
    [
        ({"attn_layer_period": 4, "attn_layer_offset": 4}, "P908", "attn_layer_offset"),
        ({"expert_layer_period": 2, "expert_layer_offset": 3}, "P908", "expert_layer_offset"),
        ({"num_experts": 4, "num_experts_per_tok": 5}, "P908", "num_experts_per_tok"),
        ({"num_hidden_layers": 2, "layers_block_type": ["mamba", "attention"]}, "P908", "layers_block_type"),
        ({"mamba_inner_layernorms": False}, "P916", "mamba_inner_layernorms"),
        ({"hidden_size": 16, "num_attention_heads": 32}, "P908", "num_attention_heads"),
        ({"num_experts": 1, "num_experts_per_tok": 2}, "P913", "num_experts_per_tok"),
    ],
)
def test_contradictions_are_diagnostics_with_a_caret(tmp_path: Path, data: dict[str, Any], code: str, key: str) -> None:
    text = json.dumps({"model_type": "jamba", "num_hidden_layers": 8, **data}, indent=1)
    (tmp_path / "config.json").write_text(text)
    reading = read_config(tmp_path / "config.json")
    found = [d for d in reading.diagnostics if d.code == code]
    assert found, [(d.code, d.message) for d in reading.diagnostics]
    span = found[0].span
    assert span is not None and text[span.start : span.end].strip('"') == key


def test_class_defaults_and_the_num_local_experts_alias() -> None:
    reading = read_config({"model_type": "jamba", "num_hidden_layers": 8, "num_local_experts": 4, "hidden_size": 64})
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.pattern.flat == "S-SES-SE*-SES-SE"
    assert spec.moe is not None and spec.moe.num_experts == 4
    assert spec.mamba1 is not None and spec.mamba1.dt_rank == 4  # "auto": ceil(64 / 16)
    warnings = [d for d in reading.diagnostics if d.severity is Severity.ERROR]
    assert not warnings


def test_defaults_match_transformers() -> None:
    check_defaults("jamba", transformers.JambaConfig)
