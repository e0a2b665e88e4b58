"""LFM2-MoE on the torch backend against transformers' ``Lfm2MoeForCausalLM``, fp32 CPU, same weights.

Hypothesis draws tiny ``Lfm2MoeConfig`` objects: the mix of short convolutions and attention
(``layer_types``), how many dense layers come first (``num_dense_layers``, none to all), the sigmoid
router's flavour (``expert_bias`` for selection only or not, renormalised top-k or not, a routed
scaling factor), the convolution's span and bias; each is read by the ``lfm2_moe`` family, built,
loaded from transformers' state dict and compared as in ``test_lfm2``.  Liquid's hub checkpoints hold
one tensor per expert (``feed_forward.experts.E.w1`` / ``w3`` / ``w2``): those load strictly too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import load_weights  # noqa: E402

from tests.backends.torch.test_lfm2 import check_family_parity, ids_for, pair  # noqa: E402
from tests.backends.torch.test_qwen3_next import SETTINGS, TOL, VOCAB  # noqa: E402


@st.composite
def lfm2_moe_configs(draw: st.DrawFn) -> tuple[Any, int]:
    layers = draw(st.lists(st.sampled_from(["conv", "full_attention"]), min_size=1, max_size=4))
    config = transformers.Lfm2MoeConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_hidden_layers=len(layers),
        layer_types=layers,
        num_dense_layers=draw(st.integers(0, len(layers))),
        num_experts=6,
        num_experts_per_tok=draw(st.sampled_from([1, 2, 3])),
        use_expert_bias=draw(st.booleans()),
        norm_topk_prob=draw(st.booleans()),
        routed_scaling_factor=draw(st.sampled_from([1.0, 2.5])),
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        conv_L_cache=draw(st.sampled_from([2, 3, 4])),
        conv_bias=draw(st.booleans()),
        tie_word_embeddings=draw(st.booleans()),
        norm_eps=1e-5,
    )
    return config, draw(st.integers(0, 2**16))


@SETTINGS
@given(lfm2_moe_configs())
def test_lfm2_moe_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_family_parity(transformers.Lfm2MoeForCausalLM, config, seed, config.layer_types)


def test_lfm2_moe_hub_names_load_strictly() -> None:
    """Liquid's per-expert hub tensors (``experts.E.w1`` gate, ``w3`` up, ``w2`` down) and the dense
    layers' ``w1``/``w3``/``w2`` load strictly and give transformers' logits."""
    config = transformers.Lfm2MoeConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_hidden_layers=3,
        layer_types=["conv", "full_attention", "conv"],
        num_dense_layers=1,
        num_experts=4,
        num_experts_per_tok=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    hf, ours, _ = pair(transformers.Lfm2MoeForCausalLM, config, 11)
    hub: dict[str, Any] = {}
    for name, tensor in hf.state_dict().items():
        if name.endswith("experts.gate_up_proj"):
            prefix = name[: -len("gate_up_proj")]
            for e, (gate, up) in enumerate(t.chunk(2, dim=0) for t in tensor):
                hub[f"{prefix}{e}.w1.weight"], hub[f"{prefix}{e}.w3.weight"] = gate, up
        elif name.endswith("experts.down_proj"):
            prefix = name[: -len("down_proj")]
            hub |= {f"{prefix}{e}.w2.weight": t for e, t in enumerate(tensor)}
        else:
            hub[name] = tensor
    assert any(".experts.0.w1.weight" in name for name in hub) and any(".w2.weight" in n for n in hub)
    with torch.no_grad():
        for p in ours.parameters():
            p.zero_()
    load_weights(ours, hub, "<hub>")
    ids = ids_for(3, 2, 10)
    with torch.no_grad():
        assert float((ours(ids).logits - hf(ids, use_cache=False).logits).abs().max()) <= TOL
