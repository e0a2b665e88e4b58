"""A config of each model family, built by transformers' own config class, maps to its own architecture."""

from __future__ import annotations

from typing import Any

import pytest

from patternc.canonical import canonical_map
from patternc.config import read_config

transformers = pytest.importorskip("transformers")


def _tiny(name: str) -> Any:
    if name == "nemotron_h":
        return transformers.NemotronHConfig(
            hybrid_override_pattern="M-M*-ME",
            hidden_size=64,
            mamba_num_heads=8,
            mamba_head_dim=16,
            n_groups=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            intermediate_size=128,
            n_routed_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            moe_shared_expert_intermediate_size=32,
            vocab_size=128,
        )
    if name == "bamba":
        return transformers.BambaConfig(
            num_hidden_layers=3,
            attn_layer_indices=[1],
            hidden_size=64,
            intermediate_size=128,
            mamba_n_heads=8,
            mamba_d_head=16,
            mamba_n_groups=2,
            mamba_d_state=16,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=128,
        )
    if name == "granitemoehybrid":
        return transformers.GraniteMoeHybridConfig(
            num_hidden_layers=3,
            layer_types=["mamba", "attention", "mamba"],
            hidden_size=64,
            intermediate_size=128,
            mamba_n_heads=8,
            mamba_d_head=16,
            mamba_n_groups=2,
            mamba_d_state=16,
            num_attention_heads=4,
            num_key_value_heads=2,
            num_local_experts=4,
            num_experts_per_tok=2,
            shared_intermediate_size=64,
            vocab_size=128,
        )
    if name == "mamba2":
        return transformers.Mamba2Config(
            num_hidden_layers=3, hidden_size=64, num_heads=8, head_dim=16, n_groups=2, state_size=16, vocab_size=128
        )
    if name == "qwen3_next":
        return transformers.Qwen3NextConfig(
            num_hidden_layers=4,
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            linear_num_key_heads=2,
            linear_num_value_heads=4,
            linear_key_head_dim=16,
            linear_value_head_dim=16,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=32,
            vocab_size=128,
        )
    if name == "deepseek_v32":  # DeepSeek-V3's model plus a lightning indexer; a dense layer after an MoE one
        return transformers.DeepseekV32Config(
            num_hidden_layers=3,
            mlp_layer_types=["dense", "sparse", "dense"],
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_key_value_heads=4,
            q_lora_rank=32,
            kv_lora_rank=16,
            qk_nope_head_dim=16,
            qk_rope_head_dim=8,
            v_head_dim=16,
            index_n_heads=2,
            index_head_dim=16,
            index_topk=8,
            n_routed_experts=8,
            n_group=2,
            topk_group=1,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            vocab_size=128,
        )
    if name == "deepseek_v3":
        return transformers.DeepseekV3Config(
            num_hidden_layers=3,
            first_k_dense_replace=1,
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_key_value_heads=4,
            q_lora_rank=32,
            kv_lora_rank=16,
            qk_nope_head_dim=16,
            qk_rope_head_dim=8,
            v_head_dim=16,
            n_routed_experts=8,
            n_group=2,
            topk_group=1,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            vocab_size=128,
        )
    if name in ("qwen3_5", "qwen3_5_moe"):
        text = dict(
            num_hidden_layers=4,
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            linear_num_key_heads=2,
            linear_num_value_heads=4,
            linear_key_head_dim=16,
            linear_value_head_dim=16,
            vocab_size=128,
        )
        if name == "qwen3_5":  # as released: the multimodal wrapper around the text config
            return transformers.Qwen3_5Config(text_config=transformers.Qwen3_5TextConfig(intermediate_size=128, **text))
        return transformers.Qwen3_5MoeTextConfig(
            num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=32, **text
        )
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name",
    [
        "nemotron_h",
        "bamba",
        "granitemoehybrid",
        "mamba2",
        "qwen3_next",
        "deepseek_v3",
        "deepseek_v32",
        "qwen3_5",
        "qwen3_5_moe",
    ],
)
def test_family_config_maps_to_its_own_architecture(name: str) -> None:
    reading = read_config(_tiny(name).to_dict())
    assert reading.spec is not None, [d.message for d in reading.diagnostics]
    result = canonical_map(reading.spec)
    assert name in result.matched, result.reasons.get(name)
    if name != "nemotron_h":
        assert result.architecture == name
