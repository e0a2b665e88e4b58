"""Kimi Linear on the torch backend against transformers' ``KimiLinearForCausalLM``, fp32 CPU, same weights.

Hypothesis draws tiny ``KimiLinearConfig`` objects (the mix of ``layer_types`` or the released
configs' 1-based ``linear_attn_config`` lists, dense-first ``first_k_dense_replace`` or explicit
``mlp_layer_types``, the sigmoid-routed MoE with group-limited top-k, KDA heads and sizes); each is
read into the IR by the ``kimi_linear`` family (the path ``patternc build <config> --target torch``
takes), built by the backend, and loaded with transformers' state dict through the backend's own name
mapping.  The logits agree within 1e-4 for the full forward (over more than one 64-token chunk of the
KDA rule), for step-by-step decoding (prefill, then the one-token decode path), and for a left-padded
batch, and greedy generation picks the same tokens.  The KDA layer alone is also compared with
transformers' ``KimiLinearDeltaAttention`` (prefill and the recurrent step), and its decode state is
shown to stay the same size whatever the context.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import build  # noqa: E402
from patternc_torch.kda import KimiDeltaAttention  # noqa: E402
from patternc_torch.layers import Context  # noqa: E402
from patternc_torch.state import InferenceState  # noqa: E402

from patternc.config import read_config  # noqa: E402
from patternc.model import KdaSpec, ModelSpec  # noqa: E402
from tests.backends.torch.parity import build_pair, compare_to_reference, greedy_reference  # noqa: E402

TOL = 1e-4
VOCAB = 97
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),  # shrinking a failing model config takes minutes and says little
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MIXERS = ["linear_attention", "full_attention"]
"""KDA (``K``) and Kimi's latent attention without RoPE (``+``)."""


@st.composite
def kimi_configs(draw: st.DrawFn) -> tuple[Any, int]:
    n = draw(st.integers(1, 4))
    mixers = draw(st.lists(st.sampled_from(MIXERS), min_size=n, max_size=n))
    heads, head_dim = draw(st.sampled_from([(2, 8), (4, 8), (2, 16)]))
    layout: dict[str, Any] = {}
    if draw(st.booleans()):
        layout["layer_types"] = mixers
    else:  # the released spelling: 1-based layer numbers in linear_attn_config
        layout["linear_attn_config"] = {
            "full_attn_layers": [i + 1 for i, m in enumerate(mixers) if m == "full_attention"],
            "kda_layers": [i + 1 for i, m in enumerate(mixers) if m == "linear_attention"],
            "num_heads": heads,
            "head_dim": head_dim,
            "short_conv_kernel_size": draw(st.sampled_from([2, 4])),
        }
    if draw(st.booleans()):
        layout["mlp_layer_types"] = draw(st.lists(st.sampled_from(["dense", "sparse"]), min_size=n, max_size=n))
    else:
        layout["first_k_dense_replace"] = draw(st.integers(0, n))
    n_group, topk_group = draw(st.sampled_from([(1, 1), (2, 1), (3, 2)]))
    config = transformers.KimiLinearConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=n,
        num_attention_heads=4,
        num_key_value_heads=4,
        q_lora_rank=draw(st.sampled_from([None, 16])),
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        linear_num_heads=heads,
        linear_head_dim=head_dim,
        linear_conv_kernel_dim=4,
        num_local_experts=6,
        num_experts_per_tok=2,
        n_group=n_group,
        topk_group=topk_group,
        moe_intermediate_size=16,
        n_shared_experts=draw(st.sampled_from([1, 2])),
        routed_scaling_factor=draw(st.sampled_from([1.0, 2.446])),
        norm_topk_prob=draw(st.booleans()),
        rms_norm_eps=1e-5,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **layout,
    )
    return config, draw(st.integers(0, 2**16))


def randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights so that routing, gating, the per-channel decay and the norms all matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):  # exp(A_log) of 1 to 7, as FLA's init (log of 1..16)
                p.copy_(torch.rand(p.shape, generator=gen) * 2)
            elif name.endswith("dt_bias"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2 - 2.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 3 else 0.15))
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)


def pair(model_cls: Any, config: Any, seed: int) -> tuple[Any, Any, ModelSpec]:
    """transformers' model of ``config`` (random weights) and the backend's, read from the same config
    by its family and loaded from transformers' state dict."""
    return build_pair(model_cls, config, randomize, seed)


def ids_of(seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def check_parity(model_cls: Any, config: Any, seed: int) -> None:
    """Full forward over more than one chunk of the KDA rule (64 tokens), step-by-step decoding (the
    decode path itself: ``_can_step``), a left-padded batch (and its continuation token by token),
    greedy tokens: all as transformers'."""
    hf, ours, spec = pair(model_cls, config, seed)
    layers = config.layer_types
    greedy = partial(greedy_reference, layers)
    # transformers' generate stops at the config's eos token; the full-forward reference never stops
    eos = config.eos_token_id if "full_attention" in layers else None
    compare_to_reference(
        hf, ours, vocab=VOCAB, seed=seed, tol=TOL, seq=70, label=spec.pattern.flat, greedy=greedy, eos_token_id=eos
    )


@SETTINGS
@given(kimi_configs())
def test_kimi_linear_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(transformers.KimiLinearForCausalLM, config, seed)


@pytest.mark.parametrize("seq", [5, 64, 130])
def test_kda_layer_matches_transformers(seq: int) -> None:
    """The KDA mixer alone, on transformers' ``KimiLinearDeltaAttention``'s own weights (loaded by name,
    strictly): the chunked prefill (one chunk, exactly one, several) and then the recurrent step."""
    from transformers.models.kimi_linear.modeling_kimi_linear import KimiLinearDeltaAttention

    config = transformers.KimiLinearConfig(
        hidden_size=32,
        num_hidden_layers=1,
        layer_types=["linear_attention"],
        mlp_layer_types=["dense"],
        linear_num_heads=2,
        linear_head_dim=8,
        linear_conv_kernel_dim=4,
    )
    ref = KimiLinearDeltaAttention(config, 0)
    randomize(ref, seq)
    ours = KimiDeltaAttention(KdaSpec(num_heads=2, head_dim=8, conv_kernel=4, gate_rank=8), 32, config.rms_norm_eps, 0)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, seq + 3, 32, generator=torch.Generator().manual_seed(seq))
    state = InferenceState(2)
    with torch.no_grad():
        expected = ref(x)
        prefill = ours(x[:, :seq], Context(None, None, None, False, None, 0))
        ours(x[:, :seq], Context(state, None, None, False, None, 0))
        steps = [ours(x[:, i : i + 1], Context(state, None, None, False, None, i)) for i in range(seq, seq + 3)]
    assert float((prefill - expected[:, :seq]).abs().max()) < 1e-5
    assert float((torch.cat(steps, dim=1) - expected[:, seq:]).abs().max()) < 1e-5


def test_kda_state_is_constant() -> None:
    """Decode state per KDA layer: the convolution window and one head_dim x head_dim float32 state per
    head, whatever the context (prefill of 8 tokens or of 600, then decoding)."""
    config = transformers.KimiLinearConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        layer_types=["linear_attention", "linear_attention"],
        mlp_layer_types=["dense", "dense"],
        linear_num_heads=2,
        linear_head_dim=8,
        linear_conv_kernel_dim=4,
    )
    reading = read_config(config.to_dict())
    assert reading.spec is not None
    model = build(reading.spec)
    model.init_weights(seed=1)
    sizes = []
    with torch.no_grad():
        for seq in (8, 600):
            state = model.new_state(1, 4)
            model(ids_of(seq, 1, seq), state=state)
            model(ids_of(seq, 1, 1), state=state)
            sizes.append(
                [*sorted((i, tuple(state.conv[i].shape), tuple(state.ssm[i].shape)) for i in state.ssm), len(state.kv)]
            )
    assert sizes[0] == sizes[1] == [(0, (1, 48, 3), (1, 2, 8, 8)), (2, (1, 48, 3), (1, 2, 8, 8)), 0]


def check_released_names(model_cls: Any, config: Any, tmp_path: Any, expected: set[str]) -> None:
    """transformers' ``save_pretrained`` writes the released layout (its conversion mapping reversed):
    ``patternc.torch_model(directory)`` (the backend's ``torch_model``) reads the config by the family
    and loads those names strictly, and the logits are transformers' own."""
    from patternc_torch import torch_model

    hf, _, _ = pair(model_cls, config, 5)
    hf.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as saved:
        names = set(saved.keys())
    assert expected <= names, sorted(expected - names)  # the released spellings are the ones loaded here
    ours = torch_model(tmp_path)
    ids = ids_of(9, 2, 20)
    with torch.no_grad():
        assert float((ours(ids).logits - hf(ids, use_cache=False).logits).abs().max()) <= TOL


def test_kimi_released_names_load_strictly(tmp_path: Any) -> None:
    config = transformers.KimiLinearConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        layer_types=["full_attention", "linear_attention"],
        mlp_layer_types=["dense", "sparse"],
        num_attention_heads=4,
        num_key_value_heads=4,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        linear_num_heads=2,
        linear_head_dim=8,
        num_local_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    layer = "model.layers.1"
    check_released_names(
        transformers.KimiLinearForCausalLM,
        config,
        tmp_path,
        {
            f"{layer}.self_attn.q_conv1d.weight",
            f"{layer}.self_attn.f_a_proj.weight",
            f"{layer}.self_attn.A_log",
            f"{layer}.block_sparse_moe.experts.3.w1.weight",
            f"{layer}.block_sparse_moe.gate.e_score_correction_bias",
        },
    )


@pytest.mark.parametrize(("t", "heads", "dim"), [(5, 2, 8), (64, 3, 16), (130, 2, 8)])
def test_chunked_rule_is_transformers_to_the_bit(t: int, heads: int, dim: int) -> None:
    """``chunk_kda`` (one decay tensor per chunk, used twice) gives transformers' ``chunk_kimi_delta_attention``
    bit for bit, from a non-zero initial state: the same products in the same order."""
    from patternc_torch.kda import chunk_kda, l2norm
    from transformers.models.kimi_linear.modeling_kimi_linear import chunk_kimi_delta_attention

    gen = torch.Generator().manual_seed(t)
    q, k, v = (torch.randn(2, t, heads, dim, generator=gen) for _ in range(3))
    g = -torch.rand(2, t, heads, dim, generator=gen) * 2
    beta = torch.rand(2, t, heads, generator=gen)
    state = torch.randn(2, heads, dim, dim, generator=gen)
    with torch.no_grad():
        out, final = chunk_kda(l2norm(q), l2norm(k), v, g, beta, state)
        ref, ref_final = chunk_kimi_delta_attention(
            q, k, v, g, beta, initial_state=state, output_final_state=True, use_qk_l2norm_in_kernel=True
        )
    assert torch.equal(out, ref) and torch.equal(final, ref_final)
