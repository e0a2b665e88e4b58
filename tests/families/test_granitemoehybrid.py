"""The `granitemoehybrid` family: configs built by `GraniteMoeHybridConfig`, read into the IR; defaults drift."""

from __future__ import annotations

import pytest

from patternc.config import read_config
from tests.families.drift import check_defaults, errors

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("experts", [4, 0])
def test_granitemoehybrid(experts: int) -> None:
    data = transformers.GraniteMoeHybridConfig(
        num_hidden_layers=4,
        layer_types=["mamba", "attention", "mamba", "mamba"],
        hidden_size=256,
        mamba_n_heads=8,
        num_local_experts=experts,
        num_experts_per_tok=2,
        attention_multiplier=0.015625,
        embedding_multiplier=12.0,
        residual_multiplier=0.22,
        logits_scaling=8.0,
        position_embedding_type="rope",
    ).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    spec = reading.spec
    assert spec is not None
    ffn = "E" if experts else "-"
    assert spec.pattern.flat == f"M{ffn}*{ffn}M{ffn}M{ffn}"
    assert spec.attention is not None and spec.attention.scale == 0.015625 and spec.attention.rope is not None
    assert (spec.embedding_multiplier, spec.residual_multiplier, spec.logits_scaling) == (12.0, 0.22, 8.0)
    if experts:
        assert spec.moe is not None and spec.moe.router == "softmax" and spec.moe.expert_gated
        assert spec.moe.shared_experts == 1 and spec.moe.shared_gated and spec.moe.shared_intermediate_size == 1024
    else:
        assert spec.mlp is not None and spec.mlp.gated and spec.mlp.intermediate_size == 1024


def test_granitemoehybrid_length_mismatch() -> None:
    data = transformers.GraniteMoeHybridConfig(num_hidden_layers=2, layer_types=["mamba", "attention"]).to_dict()
    data["num_hidden_layers"] = 3
    reading = read_config(data)
    assert any(d.code == "P908" and "num_hidden_layers" in d.message for d in reading.diagnostics)


def test_defaults_match_transformers() -> None:
    check_defaults("granitemoehybrid", transformers.GraniteMoeHybridConfig)
