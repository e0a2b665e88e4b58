"""The `bailing_hybrid` family: configs of transformers' `BailingHybridConfig` read, mapped, built and counted.

Hypothesis draws small configs of the class in both spellings of the layout (the `layer_types` /
`mlp_layer_types` lists and `linear_*` KDA sizes `to_dict` writes, and the released configs'
`layer_group_size` / `first_k_dense_replace` / `head_dim`); each must read into the expected pattern
(MTP block included), map to `bailing_hybrid` exactly, build (`build --target bailing_hybrid`) into a
config that `AutoConfig` loads as `BailingHybridConfig` with the same meta-device state_dict names and
shapes, and `stats` must equal that state_dict's element count (the router's `e_score_correction_bias`
buffer included; the MTP depth counted apart).  The Ling-3.0-flash config is checked end to end.
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
from patternc.analysis.costs import layer_cost
from patternc.canonical import canonical_map
from patternc.cli import app
from patternc.config import read_config
from patternc.ir import make_pattern
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

HUB2 = Path(__file__).resolve().parents[1] / "fixtures" / "hub2"
RELEASED = HUB2 / "Ling-3.0-flash" / "config.json"
KIMI = HUB2 / "Kimi-Linear-48B-A3B-Instruct" / "config.json"
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def bailing_hybrid(draw: st.DrawFn) -> tuple[dict[str, Any], str, str]:
    """Keyword arguments of a small ``BailingHybridConfig``, the main pattern and the MTP pattern."""
    n = draw(st.integers(1, 6))
    heads = draw(st.integers(1, 3))
    n_group = draw(st.sampled_from([1, 2]))
    experts = n_group * draw(st.integers(2, 4))
    topk_group = draw(st.integers(1, n_group))
    rope = 2 * draw(st.integers(1, 3))
    kwargs: dict[str, Any] = {
        "vocab_size": draw(st.integers(16, 64)),
        "pad_token_id": 0,
        "eos_token_id": 2,
        "hidden_size": 8 * draw(st.integers(2, 6)),
        "intermediate_size": draw(st.integers(8, 40)),
        "moe_intermediate_size": draw(st.integers(4, 16)),
        "num_hidden_layers": n,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "n_shared_experts": draw(st.integers(0, 2)),
        "num_local_experts": experts,
        "routed_scaling_factor": draw(st.sampled_from([1.0, 2.5])),
        "kv_lora_rank": draw(st.integers(4, 16)),
        "q_lora_rank": draw(st.one_of(st.none(), st.integers(4, 16))),
        "qk_rope_head_dim": rope,
        "qk_nope_head_dim": draw(st.integers(2, 8)),
        "v_head_dim": draw(st.integers(2, 8)),
        "n_group": n_group,
        "topk_group": topk_group,
        "num_experts_per_tok": draw(st.integers(1, topk_group * (experts // n_group))),
        "norm_topk_prob": draw(st.booleans()),
        "attention_bias": draw(st.booleans()),
        "hidden_act": draw(st.sampled_from(["silu", "gelu"])),
        "rms_norm_eps": draw(st.sampled_from([1e-5, 1e-6])),
        "rope_theta": draw(st.sampled_from([10000.0, 6_000_000.0])),
        "head_dim": draw(st.integers(2, 8)),
        "short_conv_kernel_size": draw(st.integers(2, 4)),
        "kda_safe_gate": draw(st.booleans()),
        "kda_lower_bound": draw(st.sampled_from([-5.0, -2.5])),
        "num_mtp_layers": draw(st.integers(0, 2)),
        "first_k_dense_replace": draw(st.integers(0, n + 1)),
    }
    if draw(st.booleans()):  # the released spelling: groups and leading dense layers
        g = draw(st.integers(1, 4))
        kwargs["layer_group_size"] = g
        full = [(i + 1) % g == 0 for i in range(n)]
        sparse = [i >= kwargs["first_k_dense_replace"] for i in range(n)]
    else:
        full = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        sparse = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        kwargs["layer_types"] = ["full_attention" if f else "linear_attention" for f in full]
        kwargs["mlp_layer_types"] = ["sparse" if s else "dense" for s in sparse]
    main = "".join(("+" if f else "K") + ("E" if s else "-") for f, s in zip(full, sparse, strict=True))
    mtp = ("+" + ("E" if n >= kwargs["first_k_dense_replace"] else "-")) if kwargs["num_mtp_layers"] else ""
    return kwargs, main, mtp


@given(bailing_hybrid(), st.booleans())
@SETTINGS
def test_drawn_configs_read_map_build_and_count_exactly(
    tmp_path_factory: pytest.TempPathFactory, drawn: tuple[dict[str, Any], str, str], as_written: bool
) -> None:
    kwargs, main, mtp = drawn
    source = transformers.BailingHybridConfig(**kwargs)
    data = source.to_dict() if as_written else {"model_type": "bailing_hybrid", **kwargs}
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "bailing_hybrid" and spec.pattern.flat == main
    shown_mtp = spec.pattern.mtp.flat if spec.pattern.mtp else ""
    assert shown_mtp == mtp
    if mtp:
        assert spec.pattern.mtp is not None and spec.pattern.mtp.depths == kwargs["num_mtp_layers"]
    if "K" in main:
        k = spec.kda
        assert k is not None and k.gate_rank is None and k.head_dim == kwargs["head_dim"]
        assert k.gate_lower_bound == (kwargs["kda_lower_bound"] if kwargs["kda_safe_gate"] else None)
        assert k.activation == kwargs["hidden_act"] and k.conv_kernel == kwargs["short_conv_kernel_size"]
    if "+" in main + mtp:
        a = spec.mla
        assert a is not None and a.rope is not None and a.output_gate and a.rope_interleave

    result = canonical_map(spec)
    assert result.architecture == "bailing_hybrid", result.reasons.get("bailing_hybrid")
    reference = meta_model(source)
    assert model_stats(spec).params.total == reference.stored

    work = tmp_path_factory.mktemp("bailing")
    (work / "src").mkdir()
    (work / "src" / "config.json").write_text(json.dumps(data))
    built = CliRunner().invoke(app, ["build", str(work / "src"), "--target", "bailing_hybrid", "-o", str(work / "out")])
    assert built.exit_code == 0, built.output
    loaded = transformers.AutoConfig.from_pretrained(work / "out")
    assert type(loaded) is transformers.BailingHybridConfig
    assert loaded.layer_types == source.layer_types and loaded.mlp_layer_types == source.mlp_layer_types
    assert loaded.num_mtp_layers == kwargs["num_mtp_layers"]
    assert meta_model(loaded).shapes == reference.shapes
    again = read_config(json.loads((work / "out" / "config.json").read_text()))
    assert again.spec is not None and again.spec.pattern == spec.pattern


def test_released_config_checks_with_pattern_family_and_architecture() -> None:
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "pattern    K-K-KEKEKE+EKEKEKEKEKE+E" in result.output
    assert "mtp        +E × 1 depth" in result.output
    assert "canonical  bailing_hybrid" in result.output
    assert "error" not in result.output.lower().replace("0 errors", "")


def test_released_config_flavours_and_counts() -> None:
    """transformers builds 124.41B elements from the Ling-3.0-flash config (counted exactly against
    the meta state_dict), 5.51B active per token; the MTP layer (3.07B) is counted apart."""
    reading = read_config(RELEASED)
    spec = reading.spec
    assert spec is not None and spec.kda is not None and spec.mla is not None and spec.moe is not None
    k = spec.kda
    assert (k.num_heads, k.head_dim, k.conv_kernel, k.gate_rank, k.gate_lower_bound) == (32, 128, 4, None, -5.0)
    a = spec.mla
    assert a.rope is not None and a.rope.theta == 6e6 and a.output_gate and a.q_lora_rank is None
    e = spec.moe
    assert (e.num_experts, e.top_k, e.router, e.score_correction_bias) == (512, 8, "sigmoid", True)
    assert e.shared_intermediate_size == 768 and (e.n_group, e.topk_group) == (8, 4)
    assert spec.pattern.flat.count("+") == 7 and spec.pattern.mtp is not None and spec.pattern.mtp.flat == "+E"
    stats = model_stats(spec)
    config = transformers.AutoConfig.from_pretrained(RELEASED.parent)
    assert type(config) is transformers.BailingHybridConfig
    assert stats.params.total == meta_model(config).stored == 124_414_211_552
    assert stats.params.mtp > 0


def test_kda_state_and_latent_cache() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    kda = layer_cost(reading.spec, "kda")
    assert kda.state_elems == 32 * 128 * 128 + 3 * 4096 * 3 and kda.kv_elems_per_token == 0
    assert layer_cost(reading.spec, "mla").kv_elems_per_token == 512 + 64


def test_released_config_is_refused_by_every_other_family() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert result.matched == ["bailing_hybrid"]
    for family, reasons in result.reasons.items():
        if family != "bailing_hybrid":
            assert reasons, family
    kimi = result.reasons["kimi_linear"]
    assert any("full-rank" in r for r in kimi) and any("bounded" in r for r in kimi)
    assert any("applies RoPE" in r for r in kimi) and any("output gate" in r for r in kimi)


def test_kimi_linear_is_not_bailing_hybrid() -> None:
    """Per layer: Kimi's low-rank KDA gates and its NoPE, ungated MLA are what Ling's classes do not build."""
    reading = read_config(KIMI)
    assert reading.spec is not None
    reasons = canonical_map(reading.spec).reasons["bailing_hybrid"]
    assert any("`K`" in r and "full-rank" in r for r in reasons)
    assert any("`+`" in r and "no RoPE" in r for r in reasons)
    assert any("`+`" in r and "no gate" in r for r in reasons)


def _diag(data: dict[str, Any], code: str) -> list[str]:
    return [d.message for d in read_config(data).diagnostics if d.code == code]


BASE: dict[str, Any] = {"model_type": "bailing_hybrid", "num_hidden_layers": 4, "hidden_size": 64}


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        ({"layer_types": ["linear_attention"] * 3}, "P908", "3 entries"),
        ({"layer_types": ["linear_attention"] * 3 + ["sliding_attention"]}, "P014", "not a layer type"),
        ({"layer_types": ["linear_attention"] * 4, "mlp_layer_types": ["dense"]}, "P908", "1 entries"),
        ({"layer_types": ["linear_attention"] * 4, "layer_group_size": 2}, "P913", "layer_group_size"),
        ({"layer_group_size": 3}, "P916", "not a multiple"),
        ({"layer_group_size": 2, "no_kda_lora": False}, "P916", "no_kda_lora"),
        ({"layer_group_size": 2, "gated_attention_proj_granularity_type": "token_wise"}, "P916", "granularity"),
        ({"layer_group_size": 2, "rope_interleave": False}, "P916", "rope_interleave"),
        ({"layer_group_size": 2, "moe_shared_expert_intermediate_size": 1}, "P916", "shared MLP"),
        ({"layer_group_size": 2, "qk_head_dim": 7}, "P916", "derives it"),
        ({"layer_group_size": 2, "tie_word_embeddings": True}, "P916", "never ties"),
        ({"layer_group_size": 2, "num_mtp_layers": 2, "num_nextn_predict_layers": 1}, "P916", "disagree"),
    ],
)
def test_contradicting_fields_are_diagnostics(extra: dict[str, Any], code: str, words: str) -> None:
    found = _diag(BASE | extra, code)
    assert any(words in m for m in found), (code, found, read_config(BASE | extra).diagnostics)


def test_both_spellings_read_the_same_and_layer_types_wins() -> None:
    groups = {"layer_group_size": 2, "first_k_dense_replace": 1}
    types = {"layer_types": ["linear_attention", "full_attention"] * 2, "mlp_layer_types": ["dense"] + ["sparse"] * 3}
    a, b = read_config(BASE | groups).spec, read_config(BASE | types).spec
    assert a is not None and b is not None and a.pattern.flat == b.pattern.flat == "K-+EKE+E"


def test_default_layout_without_layout_keys_is_p917() -> None:
    """Without `layer_types` or `layer_group_size` transformers builds its own default stack."""
    assert any(d.code == "P917" for d in read_config(BASE).diagnostics)


def test_defaults_match_transformers() -> None:
    check_defaults("bailing_hybrid", transformers.BailingHybridConfig)


def _reasons(main: str, mtp: str = "", depths: int = 0) -> list[str]:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    spec = reading.spec.model_copy(update={"pattern": make_pattern(main, mtp=mtp, depths=depths)})
    result = canonical_map(spec)
    assert result.architecture != "bailing_hybrid"
    return list(result.reasons["bailing_hybrid"])


def test_gated_deltanet_is_not_kimi_delta_attention() -> None:
    assert any("gated DeltaNet" in r for r in _reasons("G-+E"))


def test_an_mtp_block_other_than_one_mla_layer_is_not_ling() -> None:
    assert any("MTP block `KE`" in r for r in _reasons("K-+E", "KE", 1))
