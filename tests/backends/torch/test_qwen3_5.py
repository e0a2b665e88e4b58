"""Qwen3.5 (dense and MoE) on the torch backend against transformers' ``Qwen3_5ForCausalLM`` and
``Qwen3_5MoeForCausalLM``, fp32 CPU, same weights.

Qwen3.5 is Qwen3-Next with the gated DeltaNet's projections split by stream (``in_proj_qkv``,
``in_proj_z``, ``in_proj_b``, ``in_proj_a``) and interleaved multimodal RoPE, which for text (three
equal position streams) is plain partial RoPE.  Hypothesis draws tiny text configs (layer-type mixes,
grouped value heads); each is read by the ``qwen3_5`` / ``qwen3_5_moe`` family, built, loaded from
transformers' state dict, and compared as in ``test_qwen3_next``: full forward, step-by-step decoding,
a left-padded batch, greedy tokens.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.backends.torch.test_qwen3_next import SETTINGS, VOCAB, check_parity  # noqa: E402


@st.composite
def qwen3_5_configs(draw: st.DrawFn, moe: bool) -> tuple[Any, int]:
    layers = draw(st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=1, max_size=4))
    k_heads, v_heads = draw(st.sampled_from([(2, 2), (2, 4), (1, 2)]))
    common: dict[str, Any] = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=len(layers),
        layer_types=layers,
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        head_dim=16,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.5,
            "mrope_section": [2, 1, 1],
            "mrope_interleaved": True,
        },
        linear_num_key_heads=k_heads,
        linear_num_value_heads=v_heads,
        linear_key_head_dim=8,
        linear_value_head_dim=draw(st.sampled_from([8, 16])),
        linear_conv_kernel_dim=4,
        tie_word_embeddings=draw(st.booleans()),
        rms_norm_eps=1e-6,
    )
    if moe:
        config = transformers.Qwen3_5MoeTextConfig(
            **common,
            num_experts=6,
            num_experts_per_tok=2,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=24,
        )
    else:
        config = transformers.Qwen3_5TextConfig(**common, intermediate_size=48)
    return config, draw(st.integers(0, 2**16))


@SETTINGS
@given(qwen3_5_configs(moe=False))
def test_qwen3_5_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(transformers.Qwen3_5ForCausalLM, config, seed)


@SETTINGS
@given(qwen3_5_configs(moe=True))
def test_qwen3_5_moe_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(transformers.Qwen3_5MoeForCausalLM, config, seed)


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_multimodal_checkpoint_loads_its_language_model(moe: bool, tmp_path: Any) -> None:
    """A checkpoint saved by ``Qwen3_5(Moe)ForConditionalGeneration`` (the released Qwen3.5 / 3.6
    layout: ``model.language_model.*``, a vision tower under ``model.visual.*``, per-expert tensors on
    the hub) loads strictly into the text model, the tower left out, and gives that model's logits."""
    import patternc

    prefix = "Qwen3_5Moe" if moe else "Qwen3_5"
    text: dict[str, Any] = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=8,
        linear_value_head_dim=8,
        intermediate_size=48,
    )
    if moe:
        text |= dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, shared_expert_intermediate_size=24)
    vision = dict(depth=1, hidden_size=32, intermediate_size=48, num_heads=2, out_hidden_size=32, patch_size=4)
    config = getattr(transformers, f"{prefix}Config")(text_config=text, vision_config=vision)
    torch.manual_seed(0)
    reference = getattr(transformers, f"{prefix}ForConditionalGeneration")(config).eval()
    reference.save_pretrained(tmp_path)
    model = patternc.torch_model(str(tmp_path))
    ids = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(input_ids=ids).logits
        got = model(ids).logits
    assert float((got - expected).abs().max()) <= 1e-4
