"""The `kimi_linear` family: configs of transformers' `KimiLinearConfig` read, mapped, built and counted.

Hypothesis draws small configs of the class in both spellings of the layout (the `layer_types` /
`mlp_layer_types` lists `to_dict` writes, and the released configs' 1-based `linear_attn_config` lists
with `first_k_dense_replace`); each must read into the expected pattern, map to `kimi_linear` exactly,
build (`build --target kimi_linear`) into a config that `AutoConfig` loads as `KimiLinearConfig` with
the same meta-device state_dict names and shapes, and `stats` must equal that state_dict's element
count (the router's `e_score_correction_bias` buffer included).  The released Kimi-Linear-48B-A3B
config is checked end to end; Kimi-K3's wrapper is read and refused with its reasons.
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
from patternc.model import RopeSpec
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

HUB2 = Path(__file__).resolve().parents[1] / "fixtures" / "hub2"
RELEASED = HUB2 / "Kimi-Linear-48B-A3B-Instruct" / "config.json"
K3 = HUB2 / "Kimi-K3" / "config.json"
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def kimi_linear(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """Keyword arguments of a small ``KimiLinearConfig`` and the pattern it must read into."""
    n = draw(st.integers(1, 6))
    full = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    sparse = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    heads = draw(st.integers(1, 3))
    n_group = draw(st.sampled_from([1, 2]))
    experts = n_group * draw(st.integers(2, 4))
    topk_group = draw(st.integers(1, n_group))
    kwargs: dict[str, Any] = {
        "vocab_size": draw(st.integers(16, 64)),
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_size": 8 * draw(st.integers(2, 6)),
        "intermediate_size": draw(st.integers(8, 40)),
        "moe_intermediate_size": draw(st.integers(4, 16)),
        "num_hidden_layers": n,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "n_shared_experts": draw(st.integers(0, 2)),
        "num_local_experts": experts,
        "routed_scaling_factor": draw(st.sampled_from([1.0, 2.446])),
        "kv_lora_rank": draw(st.integers(4, 16)),
        "q_lora_rank": draw(st.one_of(st.none(), st.integers(4, 16))),
        "qk_rope_head_dim": draw(st.integers(1, 6)),
        "qk_nope_head_dim": draw(st.integers(2, 8)),
        "v_head_dim": draw(st.integers(2, 8)),
        "n_group": n_group,
        "topk_group": topk_group,
        "num_experts_per_tok": draw(st.integers(1, topk_group * (experts // n_group))),
        "norm_topk_prob": draw(st.booleans()),
        "attention_bias": draw(st.booleans()),
        "hidden_act": draw(st.sampled_from(["silu", "gelu"])),
        "rms_norm_eps": draw(st.sampled_from([1e-5, 1e-6])),
        "linear_head_dim": draw(st.integers(2, 8)),
        "linear_num_heads": draw(st.integers(1, 3)),
        "linear_conv_kernel_dim": draw(st.integers(2, 4)),
    }
    if draw(st.booleans()):  # the released configs' spelling: 1-based lists, first_k_dense_replace
        dense = draw(st.integers(0, n + 1))
        sparse = [i >= dense for i in range(n)]
        kwargs["first_k_dense_replace"] = dense
        kwargs["linear_attn_config"] = {
            "full_attn_layers": [i + 1 for i in range(n) if full[i]],
            "kda_layers": [i + 1 for i in range(n) if not full[i]],
            "num_heads": kwargs.pop("linear_num_heads"),
            "head_dim": kwargs.pop("linear_head_dim"),
            "short_conv_kernel_size": kwargs.pop("linear_conv_kernel_dim"),
        }
    else:
        kwargs["layer_types"] = ["full_attention" if f else "linear_attention" for f in full]
        kwargs["mlp_layer_types"] = ["sparse" if s else "dense" for s in sparse]
    pattern = "".join(("+" if f else "K") + ("E" if s else "-") for f, s in zip(full, sparse, strict=True))
    return kwargs, pattern


@given(kimi_linear(), st.booleans())
@SETTINGS
def test_drawn_configs_read_map_build_and_count_exactly(
    tmp_path_factory: pytest.TempPathFactory, drawn: tuple[dict[str, Any], str], as_written: bool
) -> None:
    kwargs, pattern = drawn
    source = transformers.KimiLinearConfig(**kwargs)
    data = source.to_dict() if as_written else {"model_type": "kimi_linear", **kwargs}
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "kimi_linear" and spec.pattern.flat == pattern
    if "K" in pattern:
        assert spec.kda is not None and spec.kda.gate_rank == spec.kda.head_dim
        assert spec.kda.activation == kwargs["hidden_act"] and spec.kda.gate_lower_bound is None
    if "+" in pattern:
        assert spec.mla is not None and spec.mla.rope is None and not spec.mla.output_gate

    result = canonical_map(spec)
    assert result.architecture == "kimi_linear", result.reasons.get("kimi_linear")
    reference = meta_model(source)
    assert model_stats(spec).params.total == reference.stored

    work = tmp_path_factory.mktemp("kimi")
    (work / "src").mkdir()
    (work / "src" / "config.json").write_text(json.dumps(data))
    built = CliRunner().invoke(app, ["build", str(work / "src"), "--target", "kimi_linear", "-o", str(work / "out")])
    assert built.exit_code == 0, built.output
    loaded = transformers.AutoConfig.from_pretrained(work / "out")
    assert type(loaded) is transformers.KimiLinearConfig
    assert loaded.layer_types == source.layer_types and loaded.mlp_layer_types == source.mlp_layer_types
    assert meta_model(loaded).shapes == reference.shapes


def test_released_config_checks_with_pattern_family_and_architecture() -> None:
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "pattern    K-KEKE+EKEKEKE+E" in result.output
    assert "canonical  kimi_linear" in result.output
    assert "error" not in result.output.lower().replace("0 errors", "")


def test_released_config_flavours_and_counts() -> None:
    """Moonshot reports 48B total and 3B activated; transformers builds 49.12B elements, counted exactly."""
    reading = read_config(RELEASED)
    spec = reading.spec
    assert spec is not None and spec.kda is not None and spec.mla is not None and spec.moe is not None
    assert (spec.kda.num_heads, spec.kda.head_dim, spec.kda.conv_kernel, spec.kda.gate_rank) == (32, 128, 4, 128)
    assert spec.mla.rope is None and spec.mla.q_lora_rank is None and spec.mla.kv_lora_rank == 512
    e = spec.moe
    assert (e.num_experts, e.top_k, e.router, e.score_correction_bias) == (256, 8, "sigmoid", True)
    assert e.routed_scaling_factor == 2.446 and e.shared_intermediate_size == 1024
    assert not spec.tie_embeddings
    stats = model_stats(spec)
    assert stats.params.total == 49_122_681_728
    assert round(stats.params.active / 1e9, 2) == 3.48
    config = transformers.KimiLinearConfig.from_json_file(RELEASED)
    assert stats.params.total == meta_model(config).stored


def test_kda_state_and_latent_cache() -> None:
    """KDA's constant state: 32 heads x 128 x 128 plus the 3 x 4096 channels' last 3 inputs; MLA caches
    the latent and the shared (unrotated) key slice."""
    reading = read_config(RELEASED)
    assert reading.spec is not None
    kda = layer_cost(reading.spec, "kda")
    assert kda.state_elems == 32 * 128 * 128 + 3 * 4096 * 3 and kda.kv_elems_per_token == 0
    assert layer_cost(reading.spec, "mla").kv_elems_per_token == 512 + 64


def test_released_config_is_refused_by_every_other_family() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert result.matched == ["kimi_linear"]
    for family, reasons in result.reasons.items():
        if family != "kimi_linear":
            assert reasons, family
    assert any("Kimi delta attention" in r for r in result.reasons["deepseek_v3"])


def test_kimi_k3_is_read_through_its_wrapper_and_refused_with_reasons() -> None:
    """transformers has no `situ` activation: Kimi-K3's language model is not one its class builds."""
    reading = read_config(K3)
    assert reading.family == "kimi_linear" and not reading.ok
    assert any(d.code == "P915" and "`text_config`" in d.message for d in reading.diagnostics)
    assert any(d.code == "P906" and "situ" in d.message for d in reading.diagnostics)
    result = CliRunner().invoke(app, ["check", str(K3)])
    assert result.exit_code != 0 and "hidden_act" in result.output


def test_kimi_k3_remote_code_keys_are_warnings_with_a_caret() -> None:
    data = json.loads(K3.read_text())
    data["text_config"]["hidden_act"] = "silu"
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    flat = reading.spec.pattern.flat
    assert len(flat) == 2 * 93 and flat.count("+") == 24 and flat[-2:] == "+E" and flat[:2] == "K-"
    warned = " ".join(d.message for d in reading.diagnostics if d.code == "P916")
    for key in ("mla_use_output_gate", "routed_expert_hidden_size", "gate_lower_bound", "use_full_rank_gate"):
        assert key in warned, key
    assert all(d.span is not None for d in reading.diagnostics if d.code == "P916")


def _diag(data: dict[str, Any], code: str) -> list[str]:
    return [d.message for d in read_config(data).diagnostics if d.code == code]


BASE: dict[str, Any] = {"model_type": "kimi_linear", "num_hidden_layers": 4, "hidden_size": 64}


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        ({"linear_attn_config": {"full_attn_layers": [4], "kda_layers": [1, 2, 5]}}, "P908", "outside 1..4"),
        ({"linear_attn_config": {"full_attn_layers": [4], "kda_layers": [1, 2]}}, "P908", "layer(s) 3"),
        ({"linear_attn_config": {"full_attn_layers": [3, 4], "kda_layers": [1, 2, 3]}}, "P916", "both"),
        ({"linear_attn_config": {"full_attn_layers": [4]}}, "P916", "only one"),
        ({"layer_types": ["linear_attention"] * 3}, "P908", "3 entries"),
        ({"layer_types": ["linear_attention"] * 3 + ["sliding_attention"]}, "P014", "not a layer type"),
        ({"layer_types": ["linear_attention"] * 4, "mlp_layer_types": ["dense"]}, "P908", "1 entries"),
        ({"layer_types": ["linear_attention"] * 4, "moe_layer_freq": 2}, "P916", "moe_layer_freq"),
        (
            {"layer_types": ["linear_attention"] * 4, "linear_num_heads": 4, "linear_attn_config": {"num_heads": 8}},
            "P916",
            "uses the latter",
        ),
        ({"layer_types": ["linear_attention"] * 4, "tie_word_embeddings": True}, "P916", "never ties"),
    ],
)
def test_contradicting_fields_are_diagnostics(extra: dict[str, Any], code: str, words: str) -> None:
    found = _diag(BASE | extra, code)
    assert any(words in m for m in found), (code, found, read_config(BASE | extra).diagnostics)


def test_both_spellings_read_the_same_and_layer_types_wins() -> None:
    lists = {"linear_attn_config": {"full_attn_layers": [2, 4], "kda_layers": [1, 3]}}
    types = {"layer_types": ["linear_attention", "full_attention"] * 2}
    a, b = read_config(BASE | lists).spec, read_config(BASE | types).spec
    assert a is not None and b is not None and a.pattern.flat == b.pattern.flat == "K-+EKE+E"
    other = {"linear_attn_config": {"full_attn_layers": [1], "kda_layers": [2, 3, 4]}}
    reading = read_config(BASE | types | other)
    assert reading.spec is not None and reading.spec.pattern.flat == "K-+EKE+E"
    assert any(d.code == "P913" and "layer_types" in d.message for d in reading.diagnostics)


def test_default_layout_without_layout_keys_is_p917() -> None:
    """Without `layer_types` or `linear_attn_config` transformers builds its own default stack."""
    assert any(d.code == "P917" for d in read_config(BASE).diagnostics)


def test_defaults_match_transformers() -> None:
    check_defaults("kimi_linear", transformers.KimiLinearConfig)


def _reasons(main: str) -> list[str]:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    spec = reading.spec.model_copy(update={"pattern": make_pattern(main)})
    result = canonical_map(spec)
    assert result.architecture != "kimi_linear"
    return list(result.reasons["kimi_linear"])


def test_gated_deltanet_is_not_kimi_delta_attention() -> None:
    assert any("gated DeltaNet" in r for r in _reasons("G-+E"))


def test_ling_flavours_are_not_kimi() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None and reading.spec.kda is not None and reading.spec.mla is not None
    ling_kda = reading.spec.kda.model_copy(update={"gate_rank": None, "gate_lower_bound": -5.0})
    spec = reading.spec.model_copy(update={"kda": ling_kda})
    reasons = canonical_map(spec).reasons["kimi_linear"]
    assert any("full-rank" in r for r in reasons) and any("bounded" in r for r in reasons)
    roped = reading.spec.mla.model_copy(update={"rope": RopeSpec(theta=10000.0), "output_gate": True})
    reasons = canonical_map(reading.spec.model_copy(update={"mla": roped})).reasons["kimi_linear"]
    assert any("NoPE" in r for r in reasons) and any("output gate" in r for r in reasons)
