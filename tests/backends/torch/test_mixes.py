"""Mixes no transformers class builds: every kind the torch backend builds, in any order, in one model.

Each family's parity test pins a kind to its transformers reference; this file checks that the kinds
also combine, as the IR allows, with one ``InferenceState`` holding each layer's own cache or
recurrent state.  Each kind takes its hyper-parameters from a *donor*: a tiny config of a family that
has the kind, read by that family (so the flavour is one a released model uses, not one made up
here).  Hypothesis draws patterns over the backend's whole alphabet; for each, the step-by-step decode
(the real one-token path) equals the full forward, a left-padded row equals the same prompt alone,
and greedy generation equals argmax over repeated full forwards.  ``test_every_buildable_kind_has_a_donor``
names any kind the backend builds that this table forgets.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from patternc_torch.io import build  # noqa: E402
from patternc_torch.support import BUILDABLE, SUPPORT, unsupported  # noqa: E402

from patternc.config import read_config  # noqa: E402
from patternc.ir import make_pattern  # noqa: E402
from patternc.kinds import by_symbol  # noqa: E402
from patternc.model import ModelSpec, NormSpec  # noqa: E402

TOL = 1e-4
HIDDEN = 32
VOCAB = 97

_NEMOTRON_H: dict[str, Any] = {
    "model_type": "nemotron_h",
    "hybrid_override_pattern": "M-M*-ME",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "mamba_num_heads": 4,
    "mamba_head_dim": 16,
    "n_groups": 2,
    "ssm_state_size": 8,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "intermediate_size": 48,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 16,
    "moe_shared_expert_intermediate_size": 16,
    "chunk_size": 8,
}
_QWEN3_NEXT: dict[str, Any] = {
    "model_type": "qwen3_next",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "layer_types": ["linear_attention", "full_attention"],
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 16,
    "shared_expert_intermediate_size": 16,
}
_KIMI_LINEAR: dict[str, Any] = {
    "model_type": "kimi_linear",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": 48,
    "num_hidden_layers": 1,
    "layer_types": ["linear_attention"],
    "mlp_layer_types": ["dense"],
    "linear_num_heads": 2,
    "linear_head_dim": 8,
    "linear_conv_kernel_dim": 4,
}
_LFM2: dict[str, Any] = {
    "model_type": "lfm2",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": 48,
    "block_multiple_of": 16,
    "num_hidden_layers": 2,
    "layer_types": ["conv", "full_attention"],
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "conv_L_cache": 3,
}
_MINIMAX: dict[str, Any] = {
    "model_type": "minimax",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "layer_types": ["linear_attention", "full_attention"],
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "block_size": 8,
}
_DEEPSEEK_V3: dict[str, Any] = {
    "model_type": "deepseek_v3",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": 48,
    "num_hidden_layers": 1,
    "first_k_dense_replace": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 16,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 4,
    "v_head_dim": 8,
}
_JAMBA: dict[str, Any] = {
    "model_type": "jamba",
    "vocab_size": VOCAB,
    "hidden_size": HIDDEN,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "attn_layer_period": 2,
    "attn_layer_offset": 1,
    "num_experts": 1,
    "mamba_d_state": 8,
    "mamba_expand": 2,
}
_DEEPSEEK_V32: dict[str, Any] = _DEEPSEEK_V3 | {
    "model_type": "deepseek_v32",
    "index_n_heads": 16,
    "index_head_dim": 16,
    "index_topk": 5,  # below the mixes' lengths: the indexer's choice matters
}
"""The latent attention is ``_DEEPSEEK_V3``'s: ``+`` and ``D`` in one model share one RoPE table."""

DONORS: dict[str, dict[str, Any]] = {
    "M": _NEMOTRON_H,
    "*": _NEMOTRON_H,
    "-": _NEMOTRON_H,
    "E": _NEMOTRON_H,
    "G": _QWEN3_NEXT,
    "K": _KIMI_LINEAR,
    "+": _DEEPSEEK_V3,
    "D": _DEEPSEEK_V32,
    "C": _LFM2,
    "L": _MINIMAX,
    "S": _JAMBA,
}
"""Symbol -> a tiny config whose family reading holds that kind's hyper-parameters."""


@cache
def _donated(symbol: str) -> tuple[str, Any]:
    """(ModelSpec field, value) of ``symbol``'s kind, read from its donor by the donor's family."""
    kind = by_symbol(symbol)
    reading = read_config(DONORS[symbol])
    assert reading.spec is not None, reading.diagnostics
    assert kind.spec_field is not None
    flavour = reading.spec.flavour(kind.kind)
    assert flavour is not None, f"the donor of `{symbol}` has no {kind.spec_field}"
    return kind.spec_field, flavour


def mixed_spec(pattern: str) -> ModelSpec:
    """A model of ``pattern`` (one symbol per layer, ``[XY]`` for a parallel layer) whose every kind
    takes its donor's flavour.  Built with ``make_pattern``: the mixes are the backend's business, not
    a dialect's (the patternc dialect's P106, Megatron's rule against ``*`` beside ``+``, is not applied)."""
    flat, parallel, i = [], {}, 0
    while i < len(pattern):
        if pattern[i] == "[":
            close = pattern.index("]", i)
            flat.append(pattern[i + 1])
            parallel[len(flat) - 1] = pattern[i + 2 : close]
            i = close + 1
        else:
            flat.append(pattern[i])
            i += 1
    fields = dict(_donated(symbol) for symbol in set(pattern) - {"[", "]"})
    return ModelSpec(
        source="pattern",
        pattern=make_pattern("".join(flat), parallel=parallel),
        hidden_size=HIDDEN,
        vocab_size=VOCAB,
        norm=NormSpec(eps=1e-5),
        **fields,
    )


def _state_tables(symbol: str) -> set[str]:
    support = SUPPORT[by_symbol(symbol).kind]
    return set(support.state)


PARALLEL_PAIRS = sorted(
    f"[{a}{b}]"
    for a in BUILDABLE
    for b in BUILDABLE
    if a != b and by_symbol(a).role.mixes_tokens and by_symbol(b).role.mixes_tokens
)
"""Every parallel layer of two buildable mixers (``[*M]`` is Falcon-H1's)."""


def test_every_buildable_kind_has_a_donor() -> None:
    """A kind the backend builds but this table forgets would never be mixed: name it."""
    assert sorted(set(BUILDABLE) - set(DONORS)) == []
    for symbol in BUILDABLE:
        _donated(symbol)


def test_a_parallel_layer_whose_mixers_share_a_state_table_is_refused() -> None:
    """Both mixers would key their decode state by the one layer index in the same table: P401, and
    every other pair builds (``KindSupport.state`` is the backend's declaration of those tables)."""
    for pair in PARALLEL_PAIRS:
        clash = _state_tables(pair[1]) & _state_tables(pair[2])
        problems = [d for d in unsupported(mixed_spec(pair + "-")) if "parallel layer" in d.message]
        assert bool(problems) == bool(clash), pair
        if clash:
            assert problems[0].code == "P401" and "slot of the inference state" in problems[0].message


BUILDABLE_PAIRS = [p for p in PARALLEL_PAIRS if not _state_tables(p[1]) & _state_tables(p[2])]


@st.composite
def mixes(draw: st.DrawFn) -> tuple[str, int]:
    units = st.one_of(st.sampled_from(sorted(BUILDABLE)), st.sampled_from(BUILDABLE_PAIRS))
    pattern = "".join(draw(st.lists(units, min_size=2, max_size=6)))
    return pattern, draw(st.integers(0, 2**16))


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mixes())
def test_any_mix_decodes_as_its_full_forward(case: tuple[str, int]) -> None:
    pattern, seed = case
    spec = mixed_spec(pattern)
    assert unsupported(spec) == []
    model = build(spec)
    model.init_weights(seed=seed, std=0.2)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (2, 24), generator=gen)
    with torch.no_grad():
        full = model(ids).logits
        state = model.new_state(2, 4)
        steps = [model(ids[:, :7], state=state).logits]
        assert model._can_step(state)
        steps += [model(ids[:, i : i + 1], state=state).logits for i in range(7, 24)]
        # a left-padded batch: row 0 is the prompt of row 1 shortened by 3, padded on the left
        padded = ids[:, :12].clone()
        padded[0, :3] = 0
        mask = torch.ones_like(padded)
        mask[0, :3] = 0
        alone = model(ids[:1, 3:12]).logits
        batched = model(padded, attention_mask=mask).logits
        greedy = model.generate(ids[:, :5], max_new_tokens=5, screen_head=False)
        again = ids[:, :5]
        for _ in range(5):
            again = torch.cat([again, model(again).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert float((torch.cat(steps, dim=1) - full).abs().max()) <= TOL, pattern
    assert float((batched[:1, 3:] - alone).abs().max()) <= TOL, pattern
    assert torch.equal(greedy, again), pattern
