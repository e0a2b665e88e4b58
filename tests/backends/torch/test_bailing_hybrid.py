"""Ling (``bailing_hybrid``) on the torch backend against transformers' ``BailingHybridForCausalLM``, fp32 CPU.

Hypothesis draws tiny ``BailingHybridConfig`` objects (``layer_types`` or the released ``layer_group_size``
layout, dense-first ``first_k_dense_replace`` or explicit ``mlp_layer_types``, the sigmoid-routed MoE
with group-limited top-k, KDA with Ling's full-rank gates, the bounded ``kda_safe_gate`` forget gate or
the unbounded one); each is read by the ``bailing_hybrid`` family, built by the backend and loaded with
transformers' state dict through the backend's name mapping, and compared as Kimi Linear is
(``test_kimi_linear.check_parity``: full forward, step-by-step decode, left-padded batch, greedy tokens,
all within 1e-4).  transformers builds no MTP layer (its checkpoint names are ignored on load), so the
drawn configs have none; the KDA layer alone is also compared with ``BailingHybridDeltaAttention``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.kda import KimiDeltaAttention  # noqa: E402
from patternc_torch.layers import Context  # noqa: E402
from patternc_torch.state import InferenceState  # noqa: E402

from patternc.model import KdaSpec  # noqa: E402
from tests.backends.torch.test_kimi_linear import (  # noqa: E402
    SETTINGS,
    VOCAB,
    check_parity,
    check_released_names,
    randomize,
)

MIXERS = ["linear_attention", "full_attention"]
"""KDA (``K``) and Ling's latent attention with interleaved RoPE and a per-head output gate (``+``)."""


@st.composite
def ling_configs(draw: st.DrawFn) -> tuple[Any, int]:
    n = draw(st.integers(1, 4))
    layout: dict[str, Any] = {}
    if draw(st.booleans()):
        layout["layer_types"] = draw(st.lists(st.sampled_from(MIXERS), min_size=n, max_size=n))
    else:  # the released spelling: every group's last layer is latent attention
        layout["layer_group_size"] = draw(st.integers(2, 4))
    if draw(st.booleans()):
        layout["mlp_layer_types"] = draw(st.lists(st.sampled_from(["dense", "sparse"]), min_size=n, max_size=n))
    else:
        layout["first_k_dense_replace"] = draw(st.integers(0, n))
    safe = draw(st.booleans())
    n_group, topk_group = draw(st.sampled_from([(1, 1), (2, 1), (3, 2)]))
    config = transformers.BailingHybridConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=n,
        num_attention_heads=draw(st.sampled_from([2, 4])),
        num_key_value_heads=None,
        head_dim=draw(st.sampled_from([8, 16])),
        short_conv_kernel_size=draw(st.sampled_from([2, 4])),
        q_lora_rank=draw(st.sampled_from([None, 16])),
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        num_local_experts=6,
        num_experts_per_tok=2,
        n_group=n_group,
        topk_group=topk_group,
        moe_intermediate_size=16,
        n_shared_experts=draw(st.sampled_from([1, 2])),
        routed_scaling_factor=draw(st.sampled_from([1.0, 2.5])),
        norm_topk_prob=draw(st.booleans()),
        kda_safe_gate=safe,
        kda_lower_bound=draw(st.sampled_from([-5.0, -1.0])),
        num_mtp_layers=0,
        rms_norm_eps=1e-6,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **layout,
    )
    return config, draw(st.integers(0, 2**16))


@SETTINGS
@given(ling_configs())
def test_bailing_hybrid_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(transformers.BailingHybridForCausalLM, config, seed)


@pytest.mark.parametrize("safe", [True, False])
def test_ling_kda_layer_matches_transformers(safe: bool) -> None:
    """Ling's KDA mixer alone (full-rank ``f_proj`` / ``g_proj``; bounded or unbounded forget gate) on
    ``BailingHybridDeltaAttention``'s own weights: chunked prefill over three chunks, then decode steps."""
    from transformers.models.bailing_hybrid.modeling_bailing_hybrid import BailingHybridDeltaAttention

    config = transformers.BailingHybridConfig(
        hidden_size=32,
        num_hidden_layers=1,
        layer_types=["linear_attention"],
        num_attention_heads=2,
        head_dim=8,
        short_conv_kernel_size=4,
        kda_safe_gate=safe,
        kda_lower_bound=-2.0,
    )
    ref = BailingHybridDeltaAttention(config, 0)
    randomize(ref, 7)
    spec = KdaSpec(num_heads=2, head_dim=8, conv_kernel=4, gate_rank=None, gate_lower_bound=-2.0 if safe else None)
    ours = KimiDeltaAttention(spec, 32, config.rms_norm_eps, 0)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 133, 32, generator=torch.Generator().manual_seed(3))
    state = InferenceState(2)
    with torch.no_grad():
        expected = ref(x)
        prefill = ours(x[:, :130], Context(None, None, None, False, None, 0))
        ours(x[:, :130], Context(state, None, None, False, None, 0))
        steps = [ours(x[:, i : i + 1], Context(state, None, None, False, None, i)) for i in range(130, 133)]
    assert float((prefill - expected[:, :130]).abs().max()) < 1e-5
    assert float((torch.cat(steps, dim=1) - expected[:, 130:]).abs().max()) < 1e-5


def test_ling_released_names_load_strictly(tmp_path: Any) -> None:
    config = transformers.BailingHybridConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        layer_types=["full_attention", "linear_attention"],
        mlp_layer_types=["dense", "sparse"],
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=8,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        num_local_experts=4,
        num_experts_per_tok=2,
        n_group=1,
        topk_group=1,
        moe_intermediate_size=16,
        num_mtp_layers=0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    layer = "model.layers.1"
    check_released_names(
        transformers.BailingHybridForCausalLM,
        config,
        tmp_path,
        {
            "model.word_embeddings.weight",
            f"{layer}.attention.q_conv1d.weight",
            f"{layer}.attention.f_proj.weight",
            f"{layer}.attention.dense.weight",
            f"{layer}.mlp.experts.3.gate_proj.weight",
            f"{layer}.mlp.gate.expert_bias",
        },
    )


def test_ling_released_mtp_depth_loads_strictly() -> None:
    """Ling's MTP depth as the released checkpoints store it, decoder layer ``num_hidden_layers`` (its
    ``attention``, ``mlp`` with per-expert tensors and ``expert_bias``, its norms, and ``enorm``,
    ``hnorm``, ``eh_proj``, ``final_layernorm``), loads tensor for tensor into the backend's MTP block;
    transformers' own names load the main layers beside it."""
    from patternc_torch.io import build, load_weights

    from patternc.config import read_config

    config = transformers.BailingHybridConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        first_k_dense_replace=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=8,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        num_local_experts=4,
        num_experts_per_tok=2,
        n_group=1,
        topk_group=1,
        moe_intermediate_size=16,
        num_mtp_layers=1,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    spec = read_config(config.to_dict()).spec
    assert spec is not None and spec.pattern.mtp is not None and spec.pattern.mtp.flat == "+E"
    model = build(spec)
    model.init_weights(seed=2, std=0.3)
    ours = {name: t for name, t in model.state_dict().items() if name.startswith("mtp.")}
    released: dict[str, Any] = {}
    for name, tensor in ours.items():
        j, rest = int(name.split(".")[2]), ".".join(name.split(".")[3:])
        part = rest.split(".")[0]
        if part in ("enorm", "hnorm", "eh_proj", "final_layernorm"):
            released[f"model.layers.2.{rest}"] = tensor
        elif rest == "norm.weight":
            released[f"model.layers.2.{'input_layernorm' if j == 0 else 'post_attention_layernorm'}.weight"] = tensor
        elif j == 0:
            released[f"model.layers.2.attention.{rest.removeprefix('mixer.').replace('o_proj.', 'dense.')}"] = tensor
        elif rest == "mixer.experts.gate_up_proj":
            for e, per in enumerate(tensor):
                gate, up = per.chunk(2, dim=0)
                released[f"model.layers.2.mlp.experts.{e}.gate_proj.weight"] = gate
                released[f"model.layers.2.mlp.experts.{e}.up_proj.weight"] = up
        elif rest == "mixer.experts.down_proj":
            for e, per in enumerate(tensor):
                released[f"model.layers.2.mlp.experts.{e}.down_proj.weight"] = per
        else:
            rest = rest.removeprefix("mixer.").replace("gate.e_score_correction_bias", "gate.expert_bias")
            released[f"model.layers.2.mlp.{rest}"] = tensor
    main = {
        name: torch.randn(t.shape) for name, t in transformers.BailingHybridForCausalLM(config).state_dict().items()
    }
    fresh = build(spec)
    load_weights(fresh, main | released, "<hub>")
    loaded = fresh.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in ours.items())
