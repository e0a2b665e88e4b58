"""Jamba on the torch backend against transformers' ``JambaForCausalLM``, fp32 CPU, same weights.

Hypothesis draws tiny ``JambaConfig`` objects: attention (no RoPE) or the Mamba-1 selective scan (with
its dt/B/C RMSNorms) per layer by ``attn_layer_period`` / ``attn_layer_offset``, the softmax top-k
mixture of experts (weights not renormalised) or the SwiGLU MLP by ``expert_layer_period`` /
``expert_layer_offset`` and ``num_experts``, the scan's convolution span, biases and time-step rank;
each is read by the ``jamba`` family, built, loaded from transformers' state dict and compared as in
``test_lfm2``: full forward, step-by-step decoding through the decode path, a left-padded batch and
its continuation, greedy tokens.  AI21's hub checkpoints hold one tensor per expert: those load too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import load_weights  # noqa: E402

from tests.backends.torch.test_lfm2 import check_family_parity, check_prompt_in_pieces, ids_for, pair  # noqa: E402
from tests.backends.torch.test_qwen3_next import SETTINGS, TOL, VOCAB  # noqa: E402


@st.composite
def jamba_configs(draw: st.DrawFn) -> tuple[Any, int]:
    n = draw(st.integers(1, 4))
    attn_period = draw(st.integers(1, 4))
    expert_period = draw(st.integers(1, 3))
    config = transformers.JambaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=n,
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        attn_layer_period=attn_period,
        attn_layer_offset=draw(st.integers(0, attn_period - 1)),
        expert_layer_period=expert_period,
        expert_layer_offset=draw(st.integers(0, expert_period - 1)),
        num_experts=draw(st.sampled_from([1, 4])),
        num_experts_per_tok=2,
        mamba_d_state=8,
        mamba_d_conv=draw(st.sampled_from([2, 3, 4])),
        mamba_expand=2,
        mamba_dt_rank=draw(st.sampled_from(["auto", 4])),
        mamba_conv_bias=draw(st.booleans()),
        mamba_proj_bias=draw(st.booleans()),
        tie_word_embeddings=draw(st.booleans()),
        rms_norm_eps=1e-6,
    )
    return config, draw(st.integers(0, 2**16))


@SETTINGS
@given(jamba_configs())
def test_jamba_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_family_parity(transformers.JambaForCausalLM, config, seed, config.layer_types)


def test_jamba_hub_names_load_strictly() -> None:
    """AI21's per-expert hub tensors (``feed_forward.experts.E.{gate,up,down}_proj.weight``) beside the
    ``feed_forward.router`` load strictly and give transformers' logits."""
    config = transformers.JambaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_layer_period=4,
        attn_layer_offset=2,
        expert_layer_period=2,
        expert_layer_offset=1,
        num_experts=4,
        mamba_d_state=8,
        mamba_expand=2,
    )
    hf, ours, _ = pair(transformers.JambaForCausalLM, config, 5)
    hub: dict[str, Any] = {}
    for name, tensor in hf.state_dict().items():
        if name.endswith("experts.gate_up_proj"):
            prefix = name[: -len("gate_up_proj")]
            for e, (gate, up) in enumerate(t.chunk(2, dim=0) for t in tensor):
                hub[f"{prefix}{e}.gate_proj.weight"], hub[f"{prefix}{e}.up_proj.weight"] = gate, up
        elif name.endswith("experts.down_proj"):
            prefix = name[: -len("down_proj")]
            hub |= {f"{prefix}{e}.down_proj.weight": t for e, t in enumerate(tensor)}
        else:
            hub[name] = tensor
    assert any(".experts.3.up_proj.weight" in name for name in hub)
    with torch.no_grad():
        for p in ours.parameters():
            p.zero_()
    load_weights(ours, hub, "<hub>")
    ids = ids_for(3, 2, 10)
    with torch.no_grad():
        assert float((ours(ids).logits - hf(ids, use_cache=False).logits).abs().max()) <= TOL


def test_jamba_prompt_in_pieces() -> None:
    """Unlike transformers' reference scan, which restarts from a zero state, a second multi-token
    prefill continues the Mamba-1 state."""
    config = transformers.JambaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_layer_period=3,
        attn_layer_offset=1,
        num_experts=1,
        mamba_d_state=8,
        mamba_expand=2,
    )
    check_prompt_in_pieces(pair(transformers.JambaForCausalLM, config, 6)[1])
