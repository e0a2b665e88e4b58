"""The `deepseek_v3` family: configs of transformers' `DeepseekV3Config` read, mapped, built and counted.

Hypothesis draws small configs of the class (query bottleneck or not, YaRN or plain RoPE, dense
prefix, groups, shared experts, MTP depth); each must read into the expected pattern, map to
`deepseek_v3` exactly, build (`build --target deepseek_v3`) into a config that `AutoConfig` loads as
`DeepseekV3Config` with the same meta-device state_dict names and shapes, and `stats` must equal that
state_dict's element count (the router's `e_score_correction_bias` buffer included).  The released
DeepSeek-V3-0324 config is checked end to end.
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
from patternc.ir import make_pattern
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "DeepSeek-V3-0324-NVFP4" / "config.json"
SETTINGS = settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def deepseek_v3(draw: st.DrawFn) -> dict[str, Any]:
    heads = draw(st.integers(1, 4))
    n_group = draw(st.sampled_from([1, 2]))
    experts = n_group * draw(st.integers(1, 4))
    topk_group = draw(st.integers(1, n_group))
    layers = draw(st.integers(1, 4))
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": draw(st.sampled_from([10000.0, 50000.0]))}
    if draw(st.booleans()):
        rope |= {
            "rope_type": "yarn",
            "factor": draw(st.sampled_from([4.0, 40.0])),
            "original_max_position_embeddings": 64,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "mscale": 1.0,
            "mscale_all_dim": draw(st.sampled_from([0.0, 1.0])),
        }
    kwargs = {
        "vocab_size": draw(st.integers(16, 64)),
        "hidden_size": 8 * draw(st.integers(2, 8)),
        "intermediate_size": draw(st.integers(8, 48)),
        "moe_intermediate_size": draw(st.integers(4, 24)),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "n_shared_experts": draw(st.integers(0, 2)),
        "n_routed_experts": experts,
        "routed_scaling_factor": draw(st.sampled_from([1.0, 2.5])),
        "kv_lora_rank": draw(st.integers(4, 24)),
        "q_lora_rank": draw(st.one_of(st.none(), st.integers(4, 24))),
        "qk_rope_head_dim": 2 * draw(st.integers(1, 4)),
        "v_head_dim": draw(st.integers(2, 12)),
        "qk_nope_head_dim": draw(st.integers(2, 12)),
        "n_group": n_group,
        "topk_group": topk_group,
        "num_experts_per_tok": draw(st.integers(1, topk_group * (experts // n_group))),
        "first_k_dense_replace": draw(st.integers(0, layers + 1)),
        "norm_topk_prob": draw(st.booleans()),
        "attention_bias": draw(st.booleans()),
        "rope_interleave": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
        "max_position_embeddings": 256,
        "num_mtp_layers": draw(st.integers(0, 2)),
        "rope_parameters": rope,
    }
    data: dict[str, Any] = transformers.DeepseekV3Config(**kwargs).to_dict()
    return data


def _expected_pattern(data: dict[str, Any]) -> tuple[str, str]:
    n, dense = data["num_hidden_layers"], data["first_k_dense_replace"]
    main = "".join("+" + ("-" if i < dense else "E") for i in range(n))
    depth = data["num_nextn_predict_layers"]
    mtp = ("/+" + ("E" if n >= dense else "-")) * depth
    return main, mtp


@given(deepseek_v3())
@SETTINGS
def test_drawn_configs_read_map_build_and_count_exactly(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    main, mtp = _expected_pattern(data)
    assert spec.source == "deepseek_v3" and spec.pattern.flat == main
    shown_mtp = f"/{spec.pattern.mtp.flat}" * spec.pattern.mtp.depths if spec.pattern.mtp else ""
    assert shown_mtp == mtp
    assert spec.mla is not None and spec.mla.q_lora_rank == data["q_lora_rank"]
    assert (spec.mla.rope_scaling is not None) == (data["rope_parameters"]["rope_type"] == "yarn")

    result = canonical_map(spec)
    assert result.architecture == "deepseek_v3", result.reasons.get("deepseek_v3")

    source = transformers.DeepseekV3Config(**{k: v for k, v in data.items() if k != "model_type"})
    original = meta_model(source).shapes
    assert model_stats(spec).params.total == meta_model(source).stored

    work = tmp_path_factory.mktemp("ds")
    (work / "src").mkdir()
    (work / "src" / "config.json").write_text(json.dumps(data))
    built = CliRunner().invoke(app, ["build", str(work / "src"), "--target", "deepseek_v3", "-o", str(work / "out")])
    assert built.exit_code == 0, built.output
    loaded = transformers.AutoConfig.from_pretrained(work / "out")
    assert type(loaded) is transformers.DeepseekV3Config
    assert loaded.num_nextn_predict_layers == data["num_nextn_predict_layers"]
    assert loaded.rope_parameters["rope_type"] == data["rope_parameters"]["rope_type"]
    assert meta_model(loaded).shapes == original


def test_released_config_checks_with_pattern_family_and_architecture() -> None:
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "pattern    +-+-+-+E+E" in result.output
    assert "mtp        +E × 1 depth" in result.output
    assert "canonical  deepseek_v3" in result.output
    assert "error" not in result.output.lower().replace("0 errors", "")


def test_released_config_flavours_and_counts() -> None:
    """DeepSeek reports 671B parameters with 37B activated, plus 14B of MTP module (its embedding and
    head copies included); transformers builds the 671B and patternc counts them exactly."""
    reading = read_config(RELEASED)
    assert reading.spec is not None and reading.spec.mla is not None and reading.spec.moe is not None
    a, e = reading.spec.mla, reading.spec.moe
    assert (a.q_lora_rank, a.kv_lora_rank, a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim) == (
        1536,
        512,
        128,
        64,
        128,
    )
    assert a.rope_scaling is not None and a.rope_scaling.factor == 40 and a.rope_scaling.mscale_all_dim == 1.0
    assert a.softmax_scale == pytest.approx(192**-0.5 * (0.1 * 1.0 * __import__("math").log(40) + 1) ** 2)
    assert e.router == "sigmoid" and e.score_correction_bias and (e.n_group, e.topk_group) == (8, 4)
    assert e.routed_scaling_factor == 2.5 and e.shared_intermediate_size == 2048
    stats = model_stats(reading.spec)
    assert stats.params.total == 671_026_419_200
    assert round(stats.params.active / 1e9) == 38 and round(stats.params.active_without_embedding / 1e9) == 37
    assert stats.params.mtp + 2 * 926_679_040 == pytest.approx(14e9, rel=0.05)
    latent = stats.layers[0]
    assert latent.kind == "mla"
    config = transformers.DeepseekV3Config.from_json_file(RELEASED)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    assert stats.params.total == sum(t.numel() for t in model.state_dict().values())


def test_released_config_is_refused_by_every_other_family() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert result.matched == ["deepseek_v3"]
    for family, reasons in result.reasons.items():
        if family != "deepseek_v3":
            assert reasons, family


def test_kv_cache_is_the_latent() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    from patternc.analysis.costs import layer_cost

    assert layer_cost(reading.spec, "mla").kv_elems_per_token == 512 + 64


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [("moe_layer_freq", 2, "P916"), ("scoring_func", "softmax", "P916"), ("qk_rope_head_dim", 3, "P906")],
)
def test_values_transformers_ignores_or_cannot_build(key: str, value: object, code: str) -> None:
    data = json.loads(RELEASED.read_text()) | {key: value}
    reading = read_config(data)
    assert any(d.code == code and key in d.message for d in reading.diagnostics), reading.diagnostics


def test_other_rope_scaling_is_refused_with_a_reason() -> None:
    data = json.loads(RELEASED.read_text())
    data["rope_scaling"] = {"type": "dynamic", "factor": 2.0}
    reading = read_config(data)
    assert reading.spec is None
    assert any(d.code == "P914" and "'dynamic'" in d.message for d in reading.diagnostics)


def test_defaults_match_transformers() -> None:
    check_defaults("deepseek_v3", transformers.DeepseekV3Config)


def _reasons(main: str, mtp: str = "", depths: int = 0) -> list[str]:
    """The canonical map's deepseek_v3 reasons for the released spec with its layers replaced."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    spec = reading.spec.model_copy(update={"pattern": make_pattern(main, mtp=mtp, depths=depths)})
    result = canonical_map(spec)
    assert result.architecture != "deepseek_v3"
    return list(result.reasons["deepseek_v3"])


def test_a_dense_layer_after_a_moe_layer_is_not_deepseek() -> None:
    assert any("dense MLP after a mixture of experts" in r for r in _reasons("+-+E+-"))


def test_an_mtp_block_other_than_one_decoder_layer_is_not_deepseek() -> None:
    assert any("MTP block `+E+E`" in r for r in _reasons("+-+E", "+E+E", 1))


def test_standard_attention_is_not_latent_attention() -> None:
    assert any("self-attention" in r for r in _reasons("*-+E"))
