"""DeepSeek-V3.2 on the torch backend against transformers' ``DeepseekV32ForCausalLM``, fp32 CPU, same weights.

Every layer is DeepSeek sparse attention: DeepSeek-V3's latent attention in which the lightning
indexer picks, per query, the ``index_topk`` keys it attends.  Hypothesis draws tiny
``DeepseekV32Config`` objects (the DeepSeek-V3 keys of ``test_deepseek_v3``, the indexer's heads, head
size and top-k, below the sequence length so that selection matters, and ``mlp_layer_types`` in any
order); each is read by the ``deepseek_v32`` family, built by the backend and loaded with
transformers' state dict.  Full forward, step-by-step decoding (the decode path, which scores the new
query against the cached indexer keys and attends the selected cached latents), a left-padded batch
and greedy tokens agree with transformers; the cache holds the latent, the rotary key and the indexer
key per position, nothing expanded.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import build  # noqa: E402
from patternc_torch.latent import SparseLatentAttention  # noqa: E402

from patternc.config import read_config  # noqa: E402
from tests.backends.torch.test_deepseek_v3 import SETTINGS, VOCAB, check_parity, ids, latent_fields  # noqa: E402


@st.composite
def deepseek_v32_configs(draw: st.DrawFn) -> tuple[Any, int]:
    fields = draw(latent_fields())
    n = fields["num_hidden_layers"]
    kinds = draw(st.one_of(st.none(), st.lists(st.sampled_from(["dense", "sparse"]), min_size=n, max_size=n)))
    config = transformers.DeepseekV32Config(
        **fields,
        q_lora_rank=12,  # required: the indexer reads the query latent
        index_n_heads=draw(st.sampled_from([2, 8])),
        index_head_dim=draw(st.sampled_from([8, 16])),
        index_topk=draw(st.sampled_from([3, 7, 64])),
        mlp_layer_types=kinds,
    )
    return config, draw(st.integers(0, 2**16))


@SETTINGS
@given(deepseek_v32_configs())
def test_deepseek_v32_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    # a key that every indexer head scores at or below zero scores exactly 0 after the ReLU; a tie of
    # such keys at the top-k boundary is broken one way by transformers' full forward and another by its
    # own cached decoding, so the steps are checked against the latter (the full forward against the former)
    check_parity(transformers.DeepseekV32ForCausalLM, config, seed, seq=16, cached_reference=True)


def test_sparse_attention_attends_only_the_chosen_keys() -> None:
    """With ``index_topk`` 1 every query attends one key, so the output differs from dense latent
    attention; the decode cache holds ``kv_lora_rank + qk_rope_head_dim + index_head_dim`` per position."""
    config = transformers.DeepseekV32Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        kv_lora_rank=16,
        q_lora_rank=12,
        qk_rope_head_dim=8,
        qk_nope_head_dim=8,
        v_head_dim=8,
        index_n_heads=2,
        index_head_dim=16,
        index_topk=1,
        first_k_dense_replace=2,
    )
    reading = read_config(config.to_dict())
    assert reading.spec is not None
    sparse = build(reading.spec)
    sparse.init_weights(seed=4, std=0.3)
    dense_spec = reading.spec.model_copy(update={"dsa": reading.spec.dsa.model_copy(update={"index_topk": 64})})
    dense = build(dense_spec)
    dense.load_state_dict(sparse.state_dict())
    tokens = ids(7, 2, 10)
    with torch.no_grad():
        state = sparse.new_state(2)
        out = sparse(tokens, state=state).logits
        assert float((out - dense(tokens).logits).abs().max()) > 1e-3
    mixer = sparse.backbone.layers[0].mixer
    assert isinstance(mixer, SparseLatentAttention)
    assert state.kv == {} and [b.shape[-1] for b in state.latent.values()] == [16 + 8 + 16] * 2
