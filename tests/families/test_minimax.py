"""The `minimax` family: configs built by transformers' `MiniMaxConfig` (layer lists, residual factors),
read into the IR with the lightning kind `L`; each maps to `minimax`, `build --target minimax` loads back
into the same class with the same meta-device state_dict, and `stats` counts that state_dict exactly (the
lightning layers' decay buffers included); the released MiniMax-M1 config (remote-code spelling:
`attn_type_list`, `layernorm_*`, `postnorm`, `rotary_dim`); contradictions; defaults drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.analysis import model_stats
from patternc.analysis.costs import lightning_cost
from patternc.canonical import canonical_map
from patternc.cli import app
from patternc.config import read_config
from patternc.convert import to_megatron
from patternc.diagnostics import PatternError
from patternc.families import get
from patternc.model import LightningSpec
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "MiniMax-M1"
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
FACTORS = st.sampled_from([1, 0.5, 2.0, 3.5565588200778455])


@st.composite
def minimax_configs(draw: st.DrawFn) -> Any:
    """A small ``MiniMaxConfig``: any mix of lightning and softmax layers, any residual factors."""
    n = draw(st.integers(1, 5))
    lightning = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    kv = draw(st.sampled_from([1, 2]))
    heads = kv * draw(st.integers(1, 3))
    head_dim = draw(st.sampled_from([None, 4, 8]))
    experts = draw(st.integers(1, 4))
    kwargs: dict[str, Any] = {
        "num_hidden_layers": n,
        "layer_types": ["linear_attention" if x else "full_attention" for x in lightning],
        "hidden_size": heads * draw(st.sampled_from([4, 8])),
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": head_dim,
        "vocab_size": draw(st.integers(8, 64)),
        "intermediate_size": draw(st.integers(4, 40)),
        "num_local_experts": experts,
        "num_experts_per_tok": draw(st.integers(1, experts)),
        "block_size": draw(st.sampled_from([4, 8, 16])),
        "sliding_window": draw(st.sampled_from([None, 16])),
        "tie_word_embeddings": draw(st.booleans()),
        "rms_norm_eps": draw(st.sampled_from([1e-5, 1e-6])),
        "hidden_act": draw(st.sampled_from(["silu", "gelu"])),
    }
    for key in (
        "full_attn_alpha_factor",
        "full_attn_beta_factor",
        "linear_attn_alpha_factor",
        "linear_attn_beta_factor",
        "mlp_alpha_factor",
        "mlp_beta_factor",
    ):
        kwargs[key] = draw(FACTORS)
    return transformers.MiniMaxConfig(**kwargs)


@SETTINGS
@given(minimax_configs())
def test_drawn_configs_map_build_and_count_exactly(config: Any) -> None:
    reading = read_config(config.to_dict())
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "minimax"
    assert spec.pattern.flat == "".join(("L" if t == "linear_attention" else "*") + "E" for t in config.layer_types)
    assert spec.scaled_residual is not None and spec.scaled_residual.ffn_beta == config.mlp_beta_factor
    assert canonical_map(spec).architecture == "minimax"
    reference = meta_model(config)
    assert model_stats(spec).params.total == reference.stored
    written = get("minimax").express(spec).config
    loaded = transformers.AutoConfig.for_model(
        "minimax", **{k: v for k, v in written.items() if k not in ("model_type", "architectures")}
    )
    assert type(loaded) is transformers.MiniMaxConfig
    assert meta_model(loaded).shapes == reference.shapes
    for key in ("full_attn_alpha_factor", "linear_attn_beta_factor", "mlp_alpha_factor"):
        assert getattr(loaded, key) == getattr(config, key)
    if "linear_attention" in config.layer_types:  # without a lightning layer the chunk size is inert
        assert loaded.block_size == config.block_size


def test_lightning_cost_is_the_module_state_dict() -> None:
    """`lightning_cost` part by part against one `MiniMaxLightningAttention` (plus the pre-norm)."""
    from transformers.models.minimax.modeling_minimax import MiniMaxLightningAttention

    config = transformers.MiniMaxConfig(
        num_hidden_layers=2, hidden_size=24, num_attention_heads=3, head_dim=6, block_size=5
    )
    with torch.device("meta"):
        module = MiniMaxLightningAttention(config, 1)
    stored = sum(t.numel() for t in module.state_dict().values())
    cost = lightning_cost(24, LightningSpec(num_heads=3, head_dim=6, block_size=5))
    assert cost.params == stored + 24  # + the decoder layer's input_layernorm
    assert dict(cost.param_breakdown)["decay_buffers"] == 3 * (1 + 2 * 5 + 25)
    assert cost.state_elems == 3 * 6 * 6
    assert cost.active == cost.params - dict(cost.param_breakdown)["decay_buffers"]


def test_build_target_minimax_writes_a_config_autoconfig_loads(tmp_path: Path) -> None:
    config = transformers.MiniMaxConfig(
        num_hidden_layers=4,
        layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"],
        hidden_size=32,
        intermediate_size=16,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        vocab_size=50,
        block_size=8,
        full_attn_alpha_factor=3.5,
        linear_attn_alpha_factor=3.5,
        mlp_alpha_factor=3.5,
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["build", str(source), "--target", "minimax", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    loaded = transformers.AutoConfig.from_pretrained(tmp_path / "out")
    assert type(loaded) is transformers.MiniMaxConfig
    assert meta_model(loaded).shapes == meta_model(config).shapes
    assert loaded.layer_types == config.layer_types
    assert (loaded.full_attn_alpha_factor, loaded.mlp_alpha_factor) == (3.5, 3.5)


def _released_as_transformers() -> Any:
    """The released config as transformers' port spells it: ``layer_types`` from ``attn_type_list``,
    the residual factors renamed, the RoPE base."""
    data = json.loads((RELEASED / "config.json").read_text())
    return transformers.MiniMaxConfig(
        vocab_size=data["vocab_size"],
        hidden_size=data["hidden_size"],
        intermediate_size=data["intermediate_size"],
        num_hidden_layers=data["num_hidden_layers"],
        num_attention_heads=data["num_attention_heads"],
        num_key_value_heads=data["num_key_value_heads"],
        head_dim=data["head_dim"],
        num_local_experts=data["num_local_experts"],
        num_experts_per_tok=data["num_experts_per_tok"],
        layer_types=["linear_attention" if c == 0 else "full_attention" for c in data["attn_type_list"]],
        full_attn_alpha_factor=data["layernorm_full_attention_alpha"],
        linear_attn_alpha_factor=data["layernorm_linear_attention_alpha"],
        mlp_alpha_factor=data["layernorm_mlp_alpha"],
        rope_parameters={"rope_type": "default", "rope_theta": float(data["rope_theta"])},
        max_position_embeddings=data["max_position_embeddings"],
    )


def test_released_minimax_m1() -> None:
    """MiniMaxAI/MiniMax-M1: 80 layers, a softmax layer after every seven lightning layers, 32 experts
    top-2; 456B parameters, 45.9B active (model card), here 456.09B weights + 296M decay buffers."""
    reading = read_config(RELEASED)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.pattern.flat == ("LE" * 7 + "*E") * 10
    assert spec.lightning == LightningSpec(num_heads=64, head_dim=128, block_size=256)
    assert spec.attention is not None and spec.attention.num_kv_heads == 8
    assert spec.attention.rope is not None and spec.attention.rope.partial_factor == 0.5
    assert spec.attention.rope.theta == 1e7
    assert spec.moe is not None and (spec.moe.num_experts, spec.moe.top_k, spec.moe.router) == (32, 2, "softmax")
    r = spec.scaled_residual
    assert (
        r is not None and r.normed and r.attention_alpha == r.lightning_alpha == r.ffn_alpha == pytest.approx(160**0.25)
    )
    stats = model_stats(spec)
    assert stats.params.total == meta_model(_released_as_transformers()).stored == 456_385_554_816
    embeddings = 2 * 200064 * 6144
    buffers = 70 * 64 * (1 + 2 * 256 + 256 * 256)
    assert round((stats.params.active - embeddings) / 1e9, 1) == 45.9  # the model card's active count
    assert stats.params.total - buffers == 456_089_655_296
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "minimax" in result.output


def test_released_rotary_dim_is_not_transformers_minimax() -> None:
    """The remote code rotates 64 of 128 channels; transformers' `MiniMaxAttention` rotates the whole
    head: the canonical map says so (and every other family refuses it with its reasons)."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert result.architecture is None
    assert any("rotates the whole head" in reason for reason in result.reasons["minimax"])
    for family, reasons in result.reasons.items():
        assert reasons, family
    # the same model with the whole head rotating, as transformers' port spells it, is exactly minimax
    data = json.loads((RELEASED / "config.json").read_text())
    data.pop("rotary_dim")
    whole = read_config(data)
    assert whole.spec is not None and canonical_map(whole.spec).architecture == "minimax"
    ported = read_config(_released_as_transformers().to_dict())
    assert ported.spec is not None and ported.spec == whole.spec


def test_megatron_has_no_lightning_attention() -> None:
    with pytest.raises(PatternError) as raised:
        to_megatron(read_config(RELEASED).pattern)  # type: ignore[arg-type]
    assert [d.code for d in raised.value.diagnostics] == ["P002"]
    result = CliRunner().invoke(app, ["convert", "--to", "fmt", "LELELELELELELE*E"])
    assert result.exit_code == 0 and result.output.strip() == "(LE){7}*E"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"num_hidden_layers": 3, "layer_types": ["linear_attention", "full_attention"]}, "P908"),
        ({"num_hidden_layers": 2, "layer_types": ["linear_attention", "sliding_attention"]}, "P014"),
        ({"model_type": "minimax_m1", "num_hidden_layers": 2, "attn_type_list": [0, 2]}, "P014"),
        ({"model_type": "minimax_text_01", "num_hidden_layers": 3, "attn_type_list": [0, 1]}, "P908"),
        ({"num_hidden_layers": 2, "layer_types": ["full_attention"] * 2, "attn_type_list": [0, 1]}, "P916"),
        ({"num_hidden_layers": 2, "layer_types": ["full_attention"] * 2, "layernorm_mlp_alpha": 3.5}, "P916"),
        ({"num_hidden_layers": 2, "layer_types": ["full_attention"] * 2, "rotary_dim": 4}, "P916"),
        ({"num_hidden_layers": 2, "layer_types": ["full_attention"] * 2, "postnorm": False}, "P916"),
        (
            {"model_type": "minimax_m1", "num_hidden_layers": 1, "attn_type_list": [1], "shared_intermediate_size": 8},
            "P914",
        ),
        (
            {"model_type": "minimax_m1", "num_hidden_layers": 1, "attn_type_list": [1], "head_dim": 8, "rotary_dim": 9},
            "P906",
        ),
        ({"num_hidden_layers": 2, "layer_types": ["full_attention"] * 2, "num_experts_per_tok": 9}, "P908"),
        ({"model_type": "minimax_m1", "num_hidden_layers": 1, "layer_types": ["full_attention"]}, "P917"),
        ({"num_hidden_layers": 1, "layer_types": ["full_attention"], "shared_moe_mode": "sigmoid"}, "P913"),
    ],
)
def test_contradictions_are_diagnostics(data: dict[str, Any], code: str) -> None:
    reading = read_config({"model_type": "minimax", **data})
    assert code in {d.code for d in reading.diagnostics}, [(d.code, d.message) for d in reading.diagnostics]


def test_remote_postnorm_false_is_a_plain_residual_transformers_cannot_build() -> None:
    data = json.loads((RELEASED / "config.json").read_text())
    data |= {"postnorm": False, "rotary_dim": 128}
    reading = read_config(data)
    assert reading.spec is not None and reading.spec.scaled_residual is not None
    assert not reading.spec.scaled_residual.normed
    result = canonical_map(reading.spec)
    assert result.architecture is None
    assert any("residual_from" in reason for reason in result.reasons["minimax"])


def test_defaults_match_transformers() -> None:
    check_defaults("minimax", transformers.MiniMaxConfig)


def test_torch_backend_builds_the_released_config() -> None:
    """Lightning attention and the weighted residuals run on the torch backend (issue 15; parity in
    tests/backends/torch/test_minimax.py)."""
    from backends.patternc_torch.support import unsupported

    reading = read_config(RELEASED)
    assert reading.spec is not None
    assert [d.message for d in unsupported(reading.spec)] == []
