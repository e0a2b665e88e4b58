"""Qwen3-Next on the torch backend against transformers' ``Qwen3NextForCausalLM``, fp32 CPU, same weights.

Hypothesis draws tiny ``Qwen3NextConfig`` objects (the mix of ``layer_types``, MoE or dense MLP per
layer, grouped value heads, kv heads, partial RoPE); each is read into the IR by the ``qwen3_next``
family (the path ``patternc build <config> --target torch`` takes), built by the backend, and loaded
with transformers' state dict through the backend's own name mapping.  The logits agree within 1e-4
for the full forward, for step-by-step decoding (prefill, then the one-token decode path), and for
a left-padded batch, and greedy generation picks the same tokens.  A mix no transformers class
builds (Mamba2, gated DeltaNet and gated attention in one stack) decodes as its full forward.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import build, load_weights  # noqa: E402

from patternc.config import read_config  # noqa: E402
from patternc.ir import make_pattern  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402
from tests.backends.torch.test_parity import mamba_spec  # noqa: E402

TOL = 1e-4
VOCAB = 97
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def qwen3_next_configs(draw: st.DrawFn) -> tuple[Any, int]:
    layers = draw(st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=1, max_size=4))
    k_heads, v_heads = draw(st.sampled_from([(2, 2), (2, 4), (1, 2)]))
    moe = draw(st.booleans())
    n = len(layers)
    config = transformers.Qwen3NextConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=n,
        layer_types=layers,
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        head_dim=8,
        partial_rotary_factor=draw(st.sampled_from([0.25, 0.5, 1.0])),
        linear_num_key_heads=k_heads,
        linear_num_value_heads=v_heads,
        linear_key_head_dim=8,
        linear_value_head_dim=draw(st.sampled_from([8, 16])),
        linear_conv_kernel_dim=4,
        num_experts=6 if moe else 0,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=24,
        norm_topk_prob=draw(st.booleans()),
        mlp_only_layers=draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True)) if moe else [],
        tie_word_embeddings=draw(st.booleans()),
        rms_norm_eps=1e-6,
    )
    return config, draw(st.integers(0, 2**16))


def _randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights so that routing, gating, decay and the (1 + w) norms all matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2 - 1)
            elif name.endswith("dt_bias"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2 - 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen) + (1.0 if "linear_attn.norm" in name else 0.0))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 3 else 0.15))


def _pair(config: Any, seed: int) -> tuple[Any, Any, ModelSpec]:
    reading = read_config(config.to_dict())
    assert reading.ok and reading.spec is not None, [d.message for d in reading.diagnostics]
    spec = reading.spec
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    hf = transformers.Qwen3NextForCausalLM(config).eval()
    _randomize(hf, seed)
    ours = build(spec)
    load_weights(ours, dict(hf.state_dict()), "<transformers>")
    return hf, ours, spec


def _ids(seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


@SETTINGS
@given(qwen3_next_configs())
def test_qwen3_next_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    hf, ours, spec = _pair(config, seed)
    seq = 70  # more than one chunk of the chunked delta rule (64)
    ids = _ids(seed, 2, seq)
    with torch.no_grad():
        ref = hf(ids, use_cache=False).logits
        full = ours(ids).logits
        state = ours.new_state(2, 4)  # small on purpose: the KV buffers must grow
        split = 1 + seed % 7
        steps = [ours(ids[:, :split], state=state).logits]
        steps += [ours(ids[:, i : i + 1], state=state).logits for i in range(split, seq)]
    step = torch.cat(steps, dim=1)
    assert torch.isfinite(ref).all()
    assert float((full - ref).abs().max()) <= TOL, (spec.pattern.flat, "full")
    assert float((step - ref).abs().max()) <= TOL, (spec.pattern.flat, "step")


@SETTINGS
@given(qwen3_next_configs())
def test_qwen3_next_left_padded_batch_and_greedy(case: tuple[Any, int]) -> None:
    config, seed = case
    hf, ours, spec = _pair(config, seed)
    seq, pad = 12, 1 + seed % 5
    ids = _ids(seed, 2, seq)
    mask = torch.ones(2, seq, dtype=torch.long)
    mask[1, :pad] = 0
    ids[1, :pad] = 0
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # what transformers' generate passes for left padding
    with torch.no_grad():
        ref = hf(ids, attention_mask=mask, position_ids=positions, use_cache=False).logits
        ours_out = ours(ids, attention_mask=mask).logits
        real = mask.bool()
        assert float((ours_out - ref)[real].abs().max()) <= TOL, (spec.pattern.flat, "left-padded")
        # continue the padded batch token by token (the padded state path) against the full forward
        state = ours.new_state(2, 4)
        ours(ids[:, :-3], attention_mask=mask[:, :-3], state=state)
        tail = [ours(ids[:, i : i + 1], state=state).logits for i in range(seq - 3, seq)]
        assert float((torch.cat(tail, dim=1) - ref[:, -3:]).abs().max()) <= TOL, (spec.pattern.flat, "padded decode")
        prompt = ids[:1, :6]
        if "full_attention" in config.layer_types:
            expected = hf.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0)
        else:  # transformers' cache cannot generate without an attention layer: greedy by full forwards
            expected = prompt
            for _ in range(8):
                picked = hf(expected, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
                expected = torch.cat([expected, picked], dim=1)
        got = ours.generate(prompt, max_new_tokens=8)
    assert torch.equal(got, expected), (spec.pattern.flat, got, expected)


def test_mix_no_transformers_class_builds() -> None:
    """``MG*-E`` x 2: Mamba2, gated DeltaNet, gated attention with q/k norms and partial RoPE, a dense
    MLP and a Qwen MoE, zero-centred norms: the step-by-step decode equals the full forward."""
    config = transformers.Qwen3NextConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=8,
        linear_value_head_dim=8,
        num_experts=6,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=24,
        intermediate_size=48,
        mlp_only_layers=[0],
    )
    reading = read_config(config.to_dict())
    assert reading.spec is not None
    spec = reading.spec.model_copy(
        update={"pattern": make_pattern("MG*-E" * 2), "mamba": mamba_spec(4, 2, 8), "source": "pattern"}
    )
    from patternc_torch.support import unsupported

    assert unsupported(spec) == []
    model = build(spec)
    model.init_weights(seed=3, std=0.2)
    ids = _ids(5, 2, 40)
    with torch.no_grad():
        full = model(ids).logits
        state = model.new_state(2, 4)
        steps = [model(ids[:, :9], state=state).logits]
        steps += [model(ids[:, i : i + 1], state=state).logits for i in range(9, 40)]
        greedy = model.generate(ids[:, :5], max_new_tokens=6, screen_head=False)
        again = ids[:, :5]
        for _ in range(6):
            again = torch.cat([again, model(again).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert float((torch.cat(steps, dim=1) - full).abs().max()) <= TOL
    assert torch.equal(greedy, again)
