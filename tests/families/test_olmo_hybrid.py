"""The `olmo_hybrid` family: configs of transformers' `OlmoHybridConfig` read, mapped, built and counted.

Hypothesis draws small configs of the class (an explicit `layer_types` list or the class's default
stack, null DeltaNet sizes the class derives, `head_dim` set or derived, RoPE or NoPE, negative
eigenvalues or not); each must read into the expected pattern and flavours, map to `olmo_hybrid`
exactly (and not to `qwen3_next`), build (`build --target olmo_hybrid`) into a config that
`AutoConfig` loads as `OlmoHybridConfig` with the same meta-device state_dict names and shapes, and
`stats` must equal that state_dict's element count.  The released Olmo-Hybrid-7B config is checked
end to end.
"""

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
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "Olmo-Hybrid-7B" / "config.json"
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
KIND = {"linear_attention": "G", "full_attention": "*"}


@st.composite
def olmo_hybrid(draw: st.DrawFn) -> dict[str, Any]:
    layers = draw(st.integers(2, 6))
    heads = draw(st.integers(1, 4))
    kwargs: dict[str, Any] = {
        "vocab_size": draw(st.integers(16, 64)),
        "hidden_size": 2 * heads * draw(st.integers(2, 6)),  # an even head size: RoPE rotates pairs
        "intermediate_size": draw(st.integers(8, 48)),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": draw(st.sampled_from([d for d in range(1, heads + 1) if heads % d == 0])),
        "attention_bias": draw(st.booleans()),
        "rms_norm_eps": draw(st.sampled_from([1e-6, 1e-5])),
        "tie_word_embeddings": draw(st.booleans()),
        "linear_conv_kernel_dim": draw(st.integers(2, 4)),
        "linear_allow_neg_eigval": draw(st.booleans()),
        "max_position_embeddings": 256,
        "pad_token_id": 0,
        "eos_token_id": 1,
    }
    if draw(st.booleans()):  # an explicit list with at least one layer of each kind
        types = draw(
            st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=layers, max_size=layers)
        )
        types[draw(st.integers(0, layers - 1))] = "linear_attention"
        if "full_attention" not in types:
            types[types.index("linear_attention") - 1] = "full_attention"
        kwargs["layer_types"] = types
    if draw(st.booleans()):  # else the class derives them from the attention's sizes
        k_heads = draw(st.integers(1, 3))
        kwargs |= {
            "linear_num_key_heads": k_heads,
            "linear_num_value_heads": k_heads,
            "linear_key_head_dim": draw(st.integers(2, 12)),
            "linear_value_head_dim": draw(st.integers(2, 12)),
        }
    if draw(st.booleans()):
        kwargs["head_dim"] = 2 * draw(st.integers(1, 6))
    rope = draw(st.sampled_from(["default", "theta", "nope"]))
    if rope == "theta":
        kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": draw(st.sampled_from([1e4, 5e5]))}
    elif rope == "nope":
        kwargs["rope_theta"] = None
    data: dict[str, Any] = transformers.OlmoHybridConfig(**kwargs).to_dict()
    return data


def _rotary(config: Any) -> bool:
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(config).model.rotary_emb is not None


@given(olmo_hybrid())
@SETTINGS
def test_drawn_configs_read_map_build_and_count_exactly(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "olmo_hybrid"
    assert spec.pattern.flat == "".join(KIND[t] + "-" for t in data["layer_types"])
    source = transformers.OlmoHybridConfig(**{k: v for k, v in data.items() if k != "model_type"})
    g, a = spec.gated_deltanet, spec.attention
    assert g is not None and a is not None
    assert (g.num_k_heads, g.num_v_heads, g.head_k_dim, g.head_v_dim) == (
        source.linear_num_key_heads,
        source.linear_num_value_heads,
        source.linear_key_head_dim,
        source.linear_value_head_dim,
    )
    assert g.allow_neg_eigval == data["linear_allow_neg_eigval"] and g.separate_projections and g.norm_eps == 1e-5
    assert a.qk_norm and a.qk_norm_whole and a.post_norm and not a.output_gate
    assert (a.rope is not None) == _rotary(source)

    result = canonical_map(spec)
    assert result.architecture == "olmo_hybrid", result.reasons.get("olmo_hybrid")
    assert result.reasons.get("qwen3_next"), "OLMo Hybrid is never Qwen3-Next"

    original = meta_model(source).shapes
    assert model_stats(spec).params.total == meta_model(source).stored

    work = tmp_path_factory.mktemp("olmo")
    (work / "src").mkdir()
    (work / "src" / "config.json").write_text(json.dumps(data))
    built = CliRunner().invoke(app, ["build", str(work / "src"), "--target", "olmo_hybrid", "-o", str(work / "out")])
    assert built.exit_code == 0, built.output
    loaded = transformers.AutoConfig.from_pretrained(work / "out")
    assert type(loaded) is transformers.OlmoHybridConfig
    assert loaded.layer_types == source.layer_types
    assert loaded.linear_allow_neg_eigval == source.linear_allow_neg_eigval
    assert _rotary(loaded) == _rotary(source)
    assert meta_model(loaded).shapes == original


def test_released_config_checks_with_pattern_family_and_architecture() -> None:
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "G-G-G-*-" * 8 in result.output
    assert "canonical  olmo_hybrid" in result.output


def test_released_config_flavours_and_counts() -> None:
    reading = read_config(RELEASED)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    a, g = spec.attention, spec.gated_deltanet
    assert a is not None and a.rope is None and a.num_heads == a.num_kv_heads == 30 and a.head_dim == 128
    assert g is not None and (g.num_k_heads, g.head_k_dim, g.head_v_dim) == (30, 96, 192) and g.allow_neg_eigval
    config = transformers.AutoConfig.from_pretrained(RELEASED.parent)
    assert not _rotary(config)
    assert model_stats(spec).params.total == meta_model(config).stored == 7_430_870_688


def test_released_config_is_refused_by_every_other_family() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert result.matched == ["olmo_hybrid"]
    for family, reasons in result.reasons.items():
        if family != "olmo_hybrid":
            assert reasons, family


def test_qwen3_next_is_told_why_per_field() -> None:
    """The DeltaNet of OLMo Hybrid is Qwen3-Next's recurrence with another weight layout, beta doubled
    and a fixed gated-norm epsilon; its attention is post-norm with whole-projection q/k norms."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    reasons = "\n".join(canonical_map(reading.spec).reasons["qwen3_next"])
    for fact in (
        "in_proj_qkvz",
        "g_proj",
        "beta_scale",
        "`gated_norm` eps is 1e-05",
        "post_norm",
        "`q_norm` size is 3840",
    ):
        assert fact in reasons, fact


def test_qwen3_next_config_is_not_olmo_hybrid() -> None:
    """OLMo Hybrid can say beta is ``sigmoid(b)`` (``linear_allow_neg_eigval: false``), but not Qwen's
    fused projections, its gated-norm epsilon, its zero-centred norms or its gated, pre-norm attention."""
    data = transformers.Qwen3NextConfig(num_hidden_layers=4, num_experts=0).to_dict()
    reading = read_config(data)
    assert reading.spec is not None
    reasons = "\n".join(canonical_map(reading.spec).reasons["olmo_hybrid"])
    assert "beta_scale" not in reasons
    for fact in ("in_proj_qkvz", "`gated_norm` eps is 1e-06", "unit_offset is True", "output_gate"):
        assert fact in reasons, fact


@pytest.mark.parametrize(
    ("types", "fragment"),
    [(["linear_attention"] * 2, "'full_attention'"), (["full_attention"] * 2, "'linear_attention'")],
)
def test_a_stack_of_one_kind_is_rejected_as_transformers_does(types: list[str], fragment: str) -> None:
    reading = read_config({"model_type": "olmo_hybrid", "num_hidden_layers": 2, "layer_types": types})
    assert not reading.ok
    assert any(d.code == "P908" and fragment in d.message for d in reading.diagnostics), reading.diagnostics


def test_odd_rotary_head_size_is_rejected_as_transformers_does() -> None:
    data = {"model_type": "olmo_hybrid", "num_hidden_layers": 4, "hidden_size": 20, "num_attention_heads": 4}
    reading = read_config(data)
    assert any(d.code == "P906" and "even" in d.message for d in reading.diagnostics), reading.diagnostics
    with pytest.raises(Exception, match="even"):  # huggingface_hub wraps the ValueError
        transformers.OlmoHybridConfig(num_hidden_layers=4, hidden_size=20, num_attention_heads=4, head_dim=5)
    assert any(d.code == "P906" for d in read_config(data | {"hidden_size": 64, "head_dim": 5}).diagnostics)
    assert read_config(data | {"rope_theta": None}).ok  # NoPE: nothing rotates


def test_layer_count_mismatch_is_an_error() -> None:
    data = {"model_type": "olmo_hybrid", "num_hidden_layers": 3, "layer_types": ["linear_attention", "full_attention"]}
    reading = read_config(data)
    assert any(d.code == "P908" for d in reading.diagnostics)


def test_default_stack_forces_one_attention_layer() -> None:
    """``__post_init__``: attention every 4th layer, the last one when that leaves none."""
    for n, flat in ((3, "G-G-*-"), (8, "G-G-G-*-G-G-G-*-")):
        reading = read_config({"model_type": "olmo_hybrid", "num_hidden_layers": n})
        assert reading.spec is not None and reading.spec.pattern.flat == flat


def test_torch_backend_builds_it(tmp_path: Path) -> None:
    """The torch backend builds OLMo's DeltaNet and attention flavours (tests/backends/torch/test_olmo_hybrid.py
    checks them against transformers): `build --target torch` writes the model, `run` generates with it."""
    data = transformers.OlmoHybridConfig(
        num_hidden_layers=4,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=48,
        vocab_size=64,
        pad_token_id=0,
        eos_token_id=1,
        linear_num_key_heads=2,
        linear_num_value_heads=2,
        linear_key_head_dim=8,
        linear_value_head_dim=16,
    ).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", str(tmp_path), "--target", "torch", "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["run", str(out), "--ids", "1 2 3", "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 4  # the new ids


def test_defaults_match_transformers() -> None:
    check_defaults("olmo_hybrid", transformers.OlmoHybridConfig)
