"""The `qwen3_next` family: configs built by transformers' `Qwen3NextConfig`, read into the IR; defaults drift."""

from __future__ import annotations

import pytest

from patternc.config import read_config
from tests.families.drift import check_defaults, errors

transformers = pytest.importorskip("transformers")


def test_qwen3_next() -> None:
    data = transformers.Qwen3NextConfig(
        num_hidden_layers=8, mlp_only_layers=[0], num_experts=8, num_experts_per_tok=2
    ).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    spec = reading.spec
    assert spec is not None and spec.pattern.flat == "G-GEGE*EGEGEGE*E"
    assert spec.norm.unit_offset
    assert spec.attention is not None and spec.attention.output_gate and spec.attention.qk_norm
    assert spec.attention.rope is not None and spec.attention.rope.partial_factor == 0.25
    assert spec.gated_deltanet is not None and spec.gated_deltanet.num_v_heads == 32
    assert spec.moe is not None and spec.moe.shared_expert_gate and spec.moe.router == "softmax"
    assert spec.mlp is not None and spec.mlp.gated


def test_qwen3_next_full_attention_interval() -> None:
    reading = read_config({"model_type": "qwen3_next", "num_hidden_layers": 6, "full_attention_interval": 3})
    assert reading.ok and reading.pattern is not None and reading.pattern.flat == "GEGE*EGEGE*E"


def test_defaults_match_transformers() -> None:
    check_defaults("qwen3_next", transformers.Qwen3NextConfig)
