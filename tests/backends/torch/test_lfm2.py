"""LFM2 on the torch backend against transformers' ``Lfm2ForCausalLM``, fp32 CPU, same weights.

Hypothesis draws tiny ``Lfm2Config`` objects (the mix of gated short convolutions and attention given
by ``layer_types`` or by the older ``full_attn_idxs``, the convolution's span and bias, kv heads,
the MLP width rule, tied embeddings); each is read into the IR by the ``lfm2`` family (the path
``patternc build <config> --target torch`` takes), built by the backend, and loaded with
transformers' state dict through the backend's own name mapping.  ``check_family_parity`` (shared
with the LFM2-MoE and Jamba tests) compares the full forward, step-by-step decoding (prefill, then
the one-token decode path), a left-padded batch and its continuation, within 1e-4, and greedy tokens.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


from patternc.kinds import by_symbol  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402
from tests.backends.torch.parity import build_pair, compare_to_reference, greedy_reference  # noqa: E402
from tests.backends.torch.test_qwen3_next import SETTINGS, TOL, VOCAB  # noqa: E402


def randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights so that the gates, decays, routing and norms all matter: norm weights
    around 1, Mamba-1 decays of a few per cent to most of the state a step, expert biases that move the
    selection."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 3 else 0.15))
        for name, b in model.named_buffers():
            if name.endswith("expert_bias"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.5)


def pair(model_cls: Any, config: Any, seed: int, raw: dict[str, Any] | None = None) -> tuple[Any, Any, ModelSpec]:
    """transformers' model of ``config`` (random weights) and the backend's, read from ``raw`` (the
    config's dict by default) by its family and loaded from transformers' state dict."""
    return build_pair(model_cls, config, randomize, seed, raw)


def ids_for(seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def check_family_parity(
    model_cls: Any, config: Any, seed: int, layer_types: list[str], raw: dict[str, Any] | None = None
) -> None:
    """Full forward, step-by-step decoding through the real decode path, a left-padded batch (and its
    continuation token by token), greedy tokens: all as transformers'."""
    hf, ours, spec = pair(model_cls, config, seed, raw)
    flat = spec.pattern.flat

    def constant_state(state: Any) -> None:
        for index, conv in state.conv.items():  # constant state: the window, whatever the length
            flavour = spec.flavour(by_symbol(flat[index]).kind)
            assert conv.shape[-1] == getattr(flavour, "conv_kernel", 0) - 1, (flat, index)
        if spec.mamba1 is not None:  # and a Mamba-1 layer's SSM state: channels x state_size
            shape = (2, spec.mamba1.inner_size(spec.hidden_size), spec.mamba1.state_size)
            assert all(state.ssm[i].shape == shape for i, s in enumerate(flat) if s == "S"), flat

    greedy = partial(greedy_reference, layer_types)
    compare_to_reference(
        hf, ours, vocab=VOCAB, seed=seed, tol=TOL, seq=40, label=flat, after_steps=constant_state, greedy=greedy
    )


@st.composite
def lfm2_configs(draw: st.DrawFn) -> tuple[Any, int, dict[str, Any]]:
    layers = draw(st.lists(st.sampled_from(["conv", "full_attention"]), min_size=1, max_size=4))
    config = transformers.Lfm2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        block_multiple_of=16,
        block_auto_adjust_ff_dim=draw(st.booleans()),
        num_hidden_layers=len(layers),
        layer_types=layers,
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        conv_L_cache=draw(st.sampled_from([1, 2, 3, 4])),
        conv_bias=draw(st.booleans()),
        tie_word_embeddings=draw(st.booleans()),
        norm_eps=1e-5,
    )
    raw = config.to_dict()
    if draw(st.booleans()):  # the first released configs: attention placed by full_attn_idxs only
        del raw["layer_types"]
        raw["full_attn_idxs"] = [i for i, kind in enumerate(layers) if kind == "full_attention"]
    return config, draw(st.integers(0, 2**16)), raw


@SETTINGS
@given(lfm2_configs())
def test_lfm2_parity(case: tuple[Any, int, dict[str, Any]]) -> None:
    config, seed, raw = case
    check_family_parity(transformers.Lfm2ForCausalLM, config, seed, config.layer_types, raw)


def check_prompt_in_pieces(model: Any) -> None:
    """A prompt fed in pieces (prefill, a second multi-token prefill on the state, then single tokens)
    gives the full forward's logits: each piece starts from the state the previous one left."""
    ids = ids_for(7, 2, 30)
    with torch.no_grad():
        full = model(ids).logits
        state = model.new_state(2, 4)
        pieces = [model(ids[:, :9], state=state).logits, model(ids[:, 9:22], state=state).logits]
        pieces += [model(ids[:, i : i + 1], state=state).logits for i in range(22, 30)]
    assert float((torch.cat(pieces, dim=1) - full).abs().max()) <= TOL


def test_lfm2_prompt_in_pieces() -> None:
    config = transformers.Lfm2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        block_multiple_of=16,
        num_hidden_layers=3,
        layer_types=["conv", "full_attention", "conv"],
        num_attention_heads=4,
        num_key_value_heads=2,
        conv_bias=True,
    )
    check_prompt_in_pieces(pair(transformers.Lfm2ForCausalLM, config, 4)[1])
