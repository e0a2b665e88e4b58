"""Exactness: patternc's parameter counts equal the state_dict of transformers' model on the meta device.

Count = every element of ``model.state_dict()`` (persistent buffers such as the MoE router's
``e_score_correction_bias`` included), each tied tensor once.  Fixtures and hypothesis-generated
tiny configs of every family the cost model covers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from patternc.analysis import model_stats
from patternc.config import read_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

HUB = Path(__file__).resolve().parents[1] / "fixtures" / "hub"
FIXTURES = sorted(HUB.glob("*/config.json"))
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def meta_model(config: dict[str, Any]) -> Any:
    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "architectures")}
    hf_config = transformers.AutoConfig.for_model(config["model_type"], **kwargs)
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(hf_config)


def state_dict_count(model: Any) -> int:
    """Elements a checkpoint stores: the state_dict (persistent buffers included), tied tensors once."""
    seen: set[int] = set()
    total = 0
    for tensor in model.state_dict(keep_vars=True).values():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel()
    return total


CHECKED: list[str] = []


def check(config: dict[str, Any], *, generated: bool = True) -> None:
    reading = read_config(config)
    if generated:
        assume(reading.spec is not None)
    assert reading.spec is not None, reading.diagnostics
    CHECKED.append(config["model_type"])
    stats = model_stats(reading.spec)
    model = meta_model(config)
    assert stats.params.total == state_dict_count(model)
    # per-layer: each transformers layer is one or two patternc layers (mixer + FFN)
    layers = model.model.layers if hasattr(model, "model") else model.backbone.layers
    hf_layers = [sum(t.numel() for t in layer.state_dict().values()) for layer in layers]
    assert stats.params.layers == sum(hf_layers)
    embed = model.get_input_embeddings().weight.numel()
    assert stats.params.embedding == embed


@pytest.mark.parametrize("path", FIXTURES, ids=[p.parent.name for p in FIXTURES])
def test_fixture_counts_equal_the_meta_state_dict(path: Path) -> None:
    check(json.loads(path.read_text(encoding="utf-8")), generated=False)


def test_nemotron3_nano_figures() -> None:
    """NVIDIA reports 31.6B total, 3.2B active without embeddings and 3.6B with them."""
    reading = read_config(HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    assert reading.spec is not None
    p = model_stats(reading.spec).params
    assert p.total == 31_577_940_288
    assert round(p.total / 1e9, 1) == 31.6
    assert round(p.active_without_embedding / 1e9, 1) == 3.2
    assert round(p.active / 1e9, 1) == 3.6


def test_state_dict_differs_from_parameters_by_the_router_buffer() -> None:
    """``sum(p.numel() for p in parameters())`` misses the persistent correction-bias buffers."""
    config = json.loads((HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16" / "config.json").read_text(encoding="utf-8"))
    model = meta_model(config)
    from_parameters = sum(p.numel() for p in model.parameters())
    moe_layers = config["hybrid_override_pattern"].count("E")
    assert state_dict_count(model) - from_parameters == moe_layers * config["n_routed_experts"]


@st.composite
def nemotron_h(draw: st.DrawFn) -> dict[str, Any]:
    pattern = draw(st.text(alphabet="M*-E", min_size=1, max_size=6))
    heads = draw(st.sampled_from([2, 4]))
    has_moe = "E" in pattern
    config: dict[str, Any] = {
        "model_type": "nemotron_h",
        "hybrid_override_pattern": pattern,
        "vocab_size": draw(st.sampled_from([16, 40])),
        "hidden_size": draw(st.sampled_from([8, 16])),
        "tie_word_embeddings": draw(st.booleans()),
        "num_attention_heads": heads,
        "num_key_value_heads": draw(st.sampled_from([1, heads])),
        "head_dim": draw(st.sampled_from([4, 8])),
        "intermediate_size": draw(st.sampled_from([8, 12])),
        # transformers applies mlp_bias to the shared expert too, which MoeSpec does not carry (see report)
        "mlp_bias": False if has_moe else draw(st.booleans()),
        "mamba_num_heads": heads,
        "mamba_head_dim": draw(st.sampled_from([4, 8])),
        "n_groups": draw(st.sampled_from([1, 2])),
        "ssm_state_size": draw(st.sampled_from([4, 8])),
        "conv_kernel": draw(st.sampled_from([2, 4])),
        "use_conv_bias": draw(st.booleans()),
        "use_bias": draw(st.booleans()),
        "n_routed_experts": 4,
        "num_experts_per_tok": draw(st.sampled_from([1, 2])),
        "moe_intermediate_size": draw(st.sampled_from([4, 8])),
        "moe_shared_expert_intermediate_size": draw(st.sampled_from([4, 12])),
        "moe_latent_size": draw(st.sampled_from([None, 4])),
        "num_nextn_predict_layers": draw(st.sampled_from([0, 1])),
    }
    return config


@given(nemotron_h())
@SETTINGS
def test_nemotron_h_counts(config: dict[str, Any]) -> None:
    check(config)


@st.composite
def bamba(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    heads = draw(st.sampled_from([2, 4]))
    return {
        "model_type": "bamba",
        "num_hidden_layers": n,
        "attn_layer_indices": draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)),
        "vocab_size": 32,
        "hidden_size": 16,
        "intermediate_size": draw(st.sampled_from([8, 24])),
        "num_attention_heads": heads,
        "num_key_value_heads": draw(st.sampled_from([1, heads])),
        "attention_bias": draw(st.booleans()),
        "mlp_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
        "mamba_n_heads": draw(st.sampled_from([4, 8])),
        "mamba_n_groups": draw(st.sampled_from([1, 2])),
        "mamba_d_state": draw(st.sampled_from([4, 8])),
        "mamba_d_conv": draw(st.sampled_from([2, 4])),
        "mamba_conv_bias": draw(st.booleans()),
        "mamba_proj_bias": draw(st.booleans()),
    }


@given(bamba())
@SETTINGS
def test_bamba_counts(config: dict[str, Any]) -> None:
    check(config)


@st.composite
def granite(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    experts = draw(st.sampled_from([0, 2, 4]))
    return {
        "model_type": "granitemoehybrid",
        "num_hidden_layers": n,
        "layer_types": draw(st.lists(st.sampled_from(["mamba", "attention"]), min_size=n, max_size=n)),
        "vocab_size": 32,
        "hidden_size": 16,
        "intermediate_size": draw(st.sampled_from([8, 12])),
        "shared_intermediate_size": draw(st.sampled_from([4, 8])),
        "num_local_experts": experts,
        "num_experts_per_tok": 1 if experts == 0 else draw(st.integers(1, experts)),
        "num_attention_heads": 4,
        "num_key_value_heads": draw(st.sampled_from([1, 2, 4])),
        "attention_bias": draw(st.booleans()),
        "position_embedding_type": draw(st.sampled_from([None, "rope"])),
        "tie_word_embeddings": draw(st.booleans()),
        "mamba_n_heads": draw(st.sampled_from([4, 8])),
        "mamba_n_groups": 1,
        "mamba_d_state": 8,
        "mamba_d_conv": draw(st.sampled_from([2, 4])),
        "mamba_conv_bias": draw(st.booleans()),
        "mamba_proj_bias": draw(st.booleans()),
    }


@given(granite())
@SETTINGS
def test_granitemoehybrid_counts(config: dict[str, Any]) -> None:
    check(config)


@st.composite
def mamba2(draw: st.DrawFn) -> dict[str, Any]:
    heads = draw(st.sampled_from([2, 4, 8]))
    return {
        "model_type": "mamba2",
        "num_hidden_layers": draw(st.integers(1, 3)),
        "vocab_size": 32,
        "hidden_size": 16,
        "expand": 2,
        "num_heads": heads,
        "head_dim": 32 // heads,
        "n_groups": draw(st.sampled_from([1, 2])),
        "state_size": draw(st.sampled_from([4, 8])),
        "conv_kernel": draw(st.sampled_from([2, 4])),
        "use_conv_bias": draw(st.booleans()),
        "use_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
    }


@given(mamba2())
@SETTINGS
def test_mamba2_counts(config: dict[str, Any]) -> None:
    check(config)


@st.composite
def qwen3_next(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    k_heads = draw(st.sampled_from([1, 2]))
    return {
        "model_type": "qwen3_next",
        "num_hidden_layers": n,
        "layer_types": draw(st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=n, max_size=n)),
        "vocab_size": 32,
        "hidden_size": 16,
        "intermediate_size": 12,
        "num_attention_heads": 4,
        "num_key_value_heads": draw(st.sampled_from([1, 2])),
        "head_dim": draw(st.sampled_from([4, 8])),
        "attention_bias": draw(st.booleans()),
        "linear_num_key_heads": k_heads,
        "linear_num_value_heads": k_heads * draw(st.sampled_from([1, 2])),
        "linear_key_head_dim": 4,
        "linear_value_head_dim": draw(st.sampled_from([4, 8])),
        "linear_conv_kernel_dim": draw(st.sampled_from([2, 4])),
        "num_experts": draw(st.sampled_from([2, 4])),
        "num_experts_per_tok": 2,
        "decoder_sparse_step": draw(st.sampled_from([1, 2])),
        "moe_intermediate_size": 8,
        "shared_expert_intermediate_size": draw(st.sampled_from([4, 8])),
        "tie_word_embeddings": draw(st.booleans()),
    }


@given(qwen3_next())
@SETTINGS
def test_qwen3_next_counts(config: dict[str, Any]) -> None:
    check(config)


def test_generated_configs_were_checked() -> None:
    """The strategies above produce readable configs (not all rejected by ``assume``)."""
    CHECKED.clear()
    for test in (
        test_nemotron_h_counts,
        test_bamba_counts,
        test_granitemoehybrid_counts,
        test_mamba2_counts,
        test_qwen3_next_counts,
    ):
        test()
    assert {name: CHECKED.count(name) >= 6 for name in set(CHECKED)} == dict.fromkeys(
        ["nemotron_h", "bamba", "granitemoehybrid", "mamba2", "qwen3_next"], True
    )


def test_nemotron_h_moe_with_mlp_bias() -> None:
    config = {
        "model_type": "nemotron_h",
        "hybrid_override_pattern": "ME",
        "vocab_size": 16,
        "hidden_size": 8,
        "mamba_num_heads": 2,
        "mamba_head_dim": 8,
        "n_groups": 1,
        "n_routed_experts": 4,
        "num_experts_per_tok": 1,
        "moe_intermediate_size": 4,
        "moe_shared_expert_intermediate_size": 4,
        "mlp_bias": True,
    }
    check(config, generated=False)
