"""The `deepseek_v32` family: configs of transformers' `DeepseekV32Config` read, mapped, built and counted.

Hypothesis draws small configs of the class (dense/sparse layer lists in any order or the
`first_k_dense_replace` default, YaRN or plain RoPE, groups, shared experts, indexer sizes, MTP
depth); each must read into the expected pattern of `D` layers, map to `deepseek_v32` exactly, build
(`build --target deepseek_v32`) into a config that `AutoConfig` loads as `DeepseekV32Config` with the
same meta-device state_dict names and shapes, and `stats` must equal that state_dict's element count
(the indexer's `k_norm` bias and the router's `e_score_correction_bias` buffer included).  The
released DeepSeek-V3.2-Exp config is checked end to end, and the canonical map says, per layer, why
DeepSeek-V3 and DeepSeek-V3.2 differ (the lightning indexer).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.analysis import model_stats
from patternc.analysis.costs import layer_cost
from patternc.canonical import canonical_map
from patternc.cli import app
from patternc.config import read_config
from patternc.ir import make_pattern
from patternc.model import DsaSpec
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

HUB2 = Path(__file__).resolve().parents[1] / "fixtures" / "hub2"
RELEASED = HUB2 / "DeepSeek-V3.2-Exp" / "config.json"
V3_RELEASED = HUB2 / "DeepSeek-V3-0324-NVFP4" / "config.json"
SETTINGS = settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def deepseek_v32(draw: st.DrawFn) -> dict[str, Any]:
    heads = draw(st.integers(1, 4))
    n_group = draw(st.sampled_from([1, 2]))
    experts = n_group * draw(st.integers(1, 4))
    topk_group = draw(st.integers(1, n_group))
    layers = draw(st.integers(1, 4))
    rope_dim = 2 * draw(st.integers(1, 4))
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
    kwargs: dict[str, Any] = {
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
        "q_lora_rank": draw(st.integers(4, 24)),
        "qk_rope_head_dim": rope_dim,
        "v_head_dim": draw(st.integers(2, 12)),
        "qk_nope_head_dim": draw(st.integers(2, 12)),
        "n_group": n_group,
        "topk_group": topk_group,
        "num_experts_per_tok": draw(st.integers(1, topk_group * (experts // n_group))),
        "first_k_dense_replace": draw(st.integers(0, layers + 1)),
        "norm_topk_prob": draw(st.booleans()),
        "attention_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
        "max_position_embeddings": 256,
        "index_n_heads": draw(st.integers(1, 4)),
        "index_head_dim": rope_dim + draw(st.integers(0, 6)),
        "index_topk": draw(st.integers(1, 64)),
        "rope_parameters": rope,
    }
    if draw(st.booleans()):  # any order of dense and sparse layers, not only a dense prefix
        kwargs["mlp_layer_types"] = draw(
            st.lists(st.sampled_from(["dense", "sparse"]), min_size=layers, max_size=layers)
        )
    depth = draw(st.integers(0, 2))
    if depth:
        kwargs["num_nextn_predict_layers"] = depth  # not a class field: kept as is, as in the released configs
    data: dict[str, Any] = transformers.DeepseekV32Config(**kwargs).to_dict()
    return data


def _expected_pattern(data: dict[str, Any]) -> tuple[str, str]:
    n, dense = data["num_hidden_layers"], data["first_k_dense_replace"]
    main = "".join("D" + ("E" if kind == "sparse" else "-") for kind in data["mlp_layer_types"])
    depth = data.get("num_nextn_predict_layers", 0)
    mtp = ("/D" + ("E" if n >= dense else "-")) * depth
    return main, mtp


@given(deepseek_v32())
@SETTINGS
def test_drawn_configs_read_map_build_and_count_exactly(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    main, mtp = _expected_pattern(data)
    assert spec.source == "deepseek_v32" and spec.pattern.flat == main
    shown_mtp = f"/{spec.pattern.mtp.flat}" * spec.pattern.mtp.depths if spec.pattern.mtp else ""
    assert shown_mtp == mtp
    d = spec.dsa
    assert d is not None and spec.mla is None
    assert (d.index_n_heads, d.index_head_dim, d.index_topk) == (
        data["index_n_heads"],
        data["index_head_dim"],
        data["index_topk"],
    )
    assert d.mla.q_lora_rank == data["q_lora_rank"] and d.mla.rope_interleave
    assert (d.mla.rope_scaling is not None) == (data["rope_parameters"]["rope_type"] == "yarn")

    result = canonical_map(spec)
    assert result.architecture == "deepseek_v32", result.reasons.get("deepseek_v32")
    assert result.reasons["deepseek_v3"], "DeepSeek-V3 has no indexer: never exact for a `D` model"

    source = transformers.DeepseekV32Config(**{k: v for k, v in data.items() if k != "model_type"})
    reference = meta_model(source)
    assert reference.architecture == "DeepseekV32ForCausalLM"
    assert model_stats(spec).params.total == reference.stored

    work = tmp_path_factory.mktemp("ds32")
    (work / "src").mkdir()
    (work / "src" / "config.json").write_text(json.dumps(data))
    built = CliRunner().invoke(app, ["build", str(work / "src"), "--target", "deepseek_v32", "-o", str(work / "out")])
    assert built.exit_code == 0, built.output
    loaded = transformers.AutoConfig.from_pretrained(work / "out")
    assert type(loaded) is transformers.DeepseekV32Config
    assert getattr(loaded, "num_nextn_predict_layers", 0) == data.get("num_nextn_predict_layers", 0)
    assert loaded.mlp_layer_types == data["mlp_layer_types"]
    assert loaded.rope_parameters["rope_type"] == data["rope_parameters"]["rope_type"]
    assert meta_model(loaded).shapes == reference.shapes
    again = read_config(json.loads((work / "out" / "config.json").read_text()))
    assert again.spec is not None and again.spec.pattern == spec.pattern and again.spec.dsa == spec.dsa


def test_released_config_checks_with_pattern_family_and_architecture() -> None:
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "pattern    D-D-D-DEDE" in result.output
    assert "mtp        DE × 1 depth" in result.output
    assert "canonical  deepseek_v32" in result.output
    assert "error" not in result.output.lower().replace("0 errors", "")


def test_released_config_flavours_and_counts() -> None:
    """DeepSeek-V3 (671,026,419,200 stored elements in transformers) plus one indexer per layer:
    ``wq_b`` 1536 x 64·128, ``wk`` 7168 x 128, ``k_norm`` 2·128, ``weights_proj`` 7168 x 64."""
    reading = read_config(RELEASED)
    assert reading.spec is not None and reading.spec.dsa is not None and reading.spec.moe is not None
    d, e = reading.spec.dsa, reading.spec.moe
    a = d.mla
    assert (a.q_lora_rank, a.kv_lora_rank, a.qk_nope_head_dim, a.qk_rope_head_dim, a.v_head_dim) == (
        1536,
        512,
        128,
        64,
        128,
    )
    assert (d.index_n_heads, d.index_head_dim, d.index_topk, d.index_norm_eps) == (64, 128, 2048, 1e-6)
    assert a.rope_scaling is not None and a.rope_scaling.factor == 40 and a.rope_interleave
    assert a.softmax_scale == pytest.approx(192**-0.5 * (0.1 * 1.0 * math.log(40) + 1) ** 2)
    assert e.router == "sigmoid" and e.score_correction_bias and (e.n_group, e.topk_group) == (8, 4)
    indexer = 1536 * 64 * 128 + 7168 * 128 + 2 * 128 + 7168 * 64
    stats = model_stats(reading.spec)
    assert stats.params.total == 671_026_419_200 + 61 * indexer == 671_877_944_064
    config = transformers.DeepseekV32Config.from_json_file(RELEASED)
    assert stats.params.total == meta_model(config).stored
    assert stats.params.mtp == 11_624_027_648  # one DE decoder layer + enorm, hnorm, eh_proj, shared_head.norm


def test_released_config_is_refused_by_every_other_family() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert result.matched == ["deepseek_v32"]
    for family, reasons in result.reasons.items():
        if family != "deepseek_v32":
            assert reasons, family


def test_v3_and_v32_differ_by_the_indexer_in_every_layer() -> None:
    """Each family's reasons against the other's released model name the lightning indexer, for
    every one of the 61 attention layers (merged into one line), and nothing else but the MTP block."""
    v32 = read_config(RELEASED).spec
    v3 = read_config(V3_RELEASED).spec
    assert v32 is not None and v3 is not None
    against_v3 = canonical_map(v32).reasons["deepseek_v3"]
    against_v32 = canonical_map(v3).reasons["deepseek_v32"]
    layers = ", ".join(str(2 * i) for i in range(4))
    assert any(r.startswith(f"layers {layers}") and "(61 layers)" in r and "lightning indexer" in r for r in against_v3)
    assert any("(61 layers)" in r and "lightning indexer" in r for r in against_v32)
    assert all("lightning indexer" in r or "MTP block" in r for r in against_v3 + against_v32)


def test_kv_cache_is_the_latent_and_the_indexer_key() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    cost = layer_cost(reading.spec, "dsa")
    assert cost.kv_elems_per_token == 512 + 64 + 128
    assert cost.top_k_keys == 2048 and cost.index_flops_per_key == 2 * 64 * 128 + 2 * 64
    # attention beyond 2048 keys costs only the indexer's scores
    step = cost.flops_at(8192) - cost.flops_at(8191)
    assert step == cost.index_flops_per_key
    assert cost.flops_at(100) - cost.flops_at(99) == cost.index_flops_per_key + cost.attn_flops_per_key


@pytest.mark.parametrize(
    ("change", "code", "key"),
    [
        ({"moe_layer_freq": 2}, "P916", "moe_layer_freq"),
        ({"scoring_func": "softmax"}, "P916", "scoring_func"),
        ({"rope_interleave": False}, "P916", "rope_interleave"),
        ({"layer_types": ["full_attention"] * 61}, "P916", "layer_types"),
        ({"layer_types": ["deepseek_sparse_attention"] * 61}, "P915", "layer_types"),
        ({"mlp_layer_types": ["dense"] * 60}, "P908", "mlp_layer_types"),
        ({"mlp_layer_types": ["dense"] * 60 + ["moe"]}, "P014", "mlp_layer_types"),
        ({"mlp_layer_types": ["sparse"] * 61}, "P916", "first_k_dense_replace"),
        ({"index_head_dim": 32}, "P908", "index_head_dim"),
        ({"mlp_bias": True}, "P913", "mlp_bias"),
        ({"qk_rope_head_dim": 3}, "P906", "qk_rope_head_dim"),
    ],
)
def test_fields_transformers_ignores_rejects_or_cannot_build(
    tmp_path: Path, change: dict[str, Any], code: str, key: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(json.loads(RELEASED.read_text()) | change, indent=2))
    reading = read_config(path)
    found = [d for d in reading.diagnostics if d.code == code and key in d.message]
    assert found, reading.diagnostics
    assert found[0].span is not None, "a caret under the key"


def test_mlp_layer_types_place_dense_layers_anywhere() -> None:
    data = json.loads(RELEASED.read_text()) | {"num_hidden_layers": 3, "mlp_layer_types": ["sparse", "dense", "sparse"]}
    reading = read_config(data)
    assert reading.spec is not None and reading.spec.pattern.flat == "DED-DE"
    assert canonical_map(reading.spec).architecture == "deepseek_v32"


def test_a_null_query_rank_is_refused_as_transformers_does() -> None:
    reading = read_config(json.loads(RELEASED.read_text()) | {"q_lora_rank": None})
    assert reading.spec is None and errors(reading)
    from huggingface_hub.errors import StrictDataclassFieldValidationError

    with pytest.raises(StrictDataclassFieldValidationError, match="q_lora_rank"):
        transformers.DeepseekV32Config(q_lora_rank=None)


def test_the_spec_requires_the_query_latent() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None and reading.spec.dsa is not None
    mla = reading.spec.dsa.mla.model_copy(update={"q_lora_rank": None})
    with pytest.raises(ValueError, match="query latent"):
        DsaSpec.model_validate({**reading.spec.dsa.model_dump(), "mla": mla.model_dump()})


def test_defaults_match_transformers() -> None:
    check_defaults("deepseek_v32", transformers.DeepseekV32Config)


def _reasons(main: str, mtp: str = "", depths: int = 0) -> list[str]:
    """The canonical map's deepseek_v32 reasons for the released spec with its layers replaced."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    spec = reading.spec.model_copy(update={"pattern": make_pattern(main, mtp=mtp, depths=depths)})
    result = canonical_map(spec)
    assert result.architecture != "deepseek_v32"
    return list(result.reasons["deepseek_v32"])


def test_an_mtp_block_other_than_one_decoder_layer_is_not_deepseek_v32() -> None:
    assert any("MTP block `DEDE`" in r for r in _reasons("D-DE", "DEDE", 1))


def test_standard_attention_is_not_sparse_attention() -> None:
    assert any("self-attention" in r for r in _reasons("*-DE"))


def test_torch_backend_builds_the_released_config() -> None:
    """Sparse attention runs on the torch backend (issue 15; parity in tests/backends/torch/test_deepseek_v32.py)."""
    from backends.patternc_torch.support import SUPPORT, unsupported

    assert SUPPORT["dsa"].module is not None
    reading = read_config(RELEASED)
    assert reading.spec is not None and unsupported(reading.spec) == []


def test_megatron_build_is_refused_with_reasons(tmp_path: Path) -> None:
    """Megatron-Core has DSA, but patternc's Megatron recipe is Nemotron-H's HybridModel: it writes no
    latent-attention or indexer arguments, so `build --target megatron` refuses and says why."""
    result = CliRunner().invoke(app, ["build", str(RELEASED), "--target", "megatron", "-o", str(tmp_path / "m")])
    assert result.exit_code != 0
    assert "`D` layers" in result.output or "P511" in result.output, result.output
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())
