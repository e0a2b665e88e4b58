"""The `bamba` family: configs built by transformers' `BambaConfig`, read into the IR; defaults drift."""

from __future__ import annotations

import pytest

from patternc.config import read_config
from tests.families.drift import check_defaults, errors

transformers = pytest.importorskip("transformers")


def test_bamba_mixer_plus_gated_mlp_partial_rope() -> None:
    data = transformers.BambaConfig(
        num_hidden_layers=3,
        attn_layer_indices=[1],
        hidden_size=256,
        mamba_n_heads=8,
        num_attention_heads=4,
        num_key_value_heads=2,
    ).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    spec = reading.spec
    assert spec is not None and spec.pattern.flat == "M-*-M-"
    assert spec.mlp is not None and spec.mlp.gated and spec.mlp.activation == "silu"
    assert spec.attention is not None and spec.attention.rope is not None
    assert spec.attention.rope.partial_factor == 0.5 and spec.attention.head_dim == 64
    assert spec.mamba is not None and spec.mamba.head_dim == 2 * 256 // 8 and spec.mamba.norm_group_size == 512


def test_bamba_inconsistent_mamba_head() -> None:
    data = transformers.BambaConfig(num_hidden_layers=2, hidden_size=256, mamba_n_heads=8).to_dict()
    data["mamba_d_head"] = 32
    reading = read_config(data)
    assert any(d.code == "P908" and "mamba_d_head" in d.message for d in reading.diagnostics)


def test_defaults_match_transformers() -> None:
    check_defaults("bamba", transformers.BambaConfig)
