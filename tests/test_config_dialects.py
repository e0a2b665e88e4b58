"""Other hybrid dialects, with configs built by transformers' own config classes; defaults drift."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from patternc.codes import Severity
from patternc.config import read_config
from patternc.config.models import COMMON_KEYS, INPUT_MODELS, KWARG_ONLY_FIELDS

transformers = pytest.importorskip("transformers")


def errors(reading: Any) -> list[str]:
    return [f"{d.code}: {d.message}" for d in reading.diagnostics if d.severity is Severity.ERROR]


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


def test_mamba2_pure() -> None:
    data = transformers.Mamba2Config(
        num_hidden_layers=3, hidden_size=256, num_heads=8, head_dim=64, n_groups=2
    ).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    spec = reading.spec
    assert spec is not None and spec.pattern.flat == "MMM" and spec.mlp is None and spec.moe is None
    assert spec.mamba is not None and spec.mamba.norm_group_size == 256


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


def test_jamba_layout_but_not_expressible() -> None:
    data = transformers.JambaConfig(num_hidden_layers=8).to_dict()
    reading = read_config(data)
    assert reading.spec is None and reading.pattern is not None
    assert reading.pattern.flat == "M-MEM-ME*-MEM-ME"
    assert [d.code for d in reading.diagnostics if d.severity is Severity.ERROR] == ["P914"]


def test_zamba2_not_expressible() -> None:
    reading = read_config(transformers.Zamba2Config().to_dict())
    assert reading.spec is None
    assert any(d.code == "P914" and "shared" in d.message for d in reading.diagnostics)


def test_nemotron_h_from_class() -> None:
    data = transformers.NemotronHConfig(
        layers_block_type=["linear_attention", "moe", "full_attention", "mlp"],
        n_routed_experts=8,
        num_experts_per_tok=2,
    ).to_dict()
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.pattern is not None and reading.pattern.flat == "ME*-"


# -- defaults drift ------------------------------------------------------------------------------

CLASSES = {
    "nemotron_h": "NemotronHConfig",
    "bamba": "BambaConfig",
    "granitemoehybrid": "GraniteMoeHybridConfig",
    "jamba": "JambaConfig",
    "mamba2": "Mamba2Config",
    "qwen3_next": "Qwen3NextConfig",
    "zamba2": "Zamba2Config",
}
BASE_FIELDS = {f.name for f in dataclasses.fields(transformers.PreTrainedConfig)}


def _same(ours: object, theirs: object) -> bool:
    if isinstance(theirs, tuple):
        theirs = list(theirs)
    if isinstance(ours, float) and isinstance(theirs, float) and math.isinf(theirs):
        return math.isinf(ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs, strict=True))
    return bool(ours == theirs and (type(ours) is type(theirs) or isinstance(ours, int | float)))


@pytest.mark.parametrize("dialect", sorted(CLASSES))
def test_defaults_match_transformers(dialect: str) -> None:
    cls = getattr(transformers, CLASSES[dialect])
    model = INPUT_MODELS[dialect]
    theirs = {f.name: f.default for f in dataclasses.fields(cls) if f.name not in BASE_FIELDS}
    for name, default in theirs.items():
        if default is dataclasses.MISSING or name in COMMON_KEYS:
            continue
        assert name in model.model_fields, f"{dialect}: transformers field {name} is missing from {model.__name__}"
        ours = model.model_fields[name].default
        assert _same(ours, default), f"{dialect}.{name}: ours {ours!r}, transformers {default!r}"
    ours_only = set(model.model_fields) - set(theirs) - BASE_FIELDS - KWARG_ONLY_FIELDS.get(dialect, frozenset())
    common = {
        "model_type",
        "torch_dtype",
        "dtype",
        "transformers_version",
        "architectures",
        "use_cache",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "initializer_range",
        "tie_word_embeddings",
    }
    assert ours_only <= common, f"{dialect}: fields transformers does not have: {sorted(ours_only - common)}"
