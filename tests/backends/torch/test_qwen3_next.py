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

from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import build, load_weights  # noqa: E402
from patternc_torch.support import unsupported  # noqa: E402

from patternc.config import read_config  # noqa: E402
from patternc.ir import make_pattern  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402
from tests.backends.torch.parity import build_pair, compare_to_reference, greedy_reference  # noqa: E402
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
            if name.endswith("A_log"):  # decays exp(-exp(A_log) softplus(.)) of 0.03 to 0.7 a step, as trained
                p.copy_(torch.rand(p.shape, generator=gen) * 2)
            elif name.endswith("dt_bias"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2 - 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen) + (1.0 if "linear_attn.norm" in name else 0.0))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 3 else 0.15))


def _pair(model_cls: Any, config: Any, seed: int) -> tuple[Any, Any, ModelSpec]:
    """transformers' model of ``config`` (random weights) and the backend's, read from the same config
    by its family and loaded from transformers' state dict."""
    return build_pair(model_cls, config, _randomize, seed)


def _ids(seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def check_parity(model_cls: Any, config: Any, seed: int) -> None:
    """Full forward over more than one chunk of the delta rule (64 tokens), step-by-step decoding, a
    left-padded batch (and its continuation token by token), greedy tokens: all as transformers'."""
    hf, ours, spec = _pair(model_cls, config, seed)
    label, greedy = spec.pattern.flat, partial(greedy_reference, config.layer_types)
    compare_to_reference(hf, ours, vocab=VOCAB, seed=seed, tol=TOL, seq=70, label=label, can_step=False, greedy=greedy)


@SETTINGS
@given(qwen3_next_configs())
def test_qwen3_next_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(transformers.Qwen3NextForCausalLM, config, seed)


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


def test_qwen_hub_names_with_the_mtp_block_load_strictly() -> None:
    """Qwen3-Next's hub layout, MTP block included (``mtp.fc``, ``mtp.pre_fc_norm_embedding``,
    ``mtp.pre_fc_norm_hidden``, ``mtp.layers.0``, ``mtp.norm``; experts one tensor each), loads into
    the backend's model tensor for tensor."""
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
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=24,
    )
    reading = read_config(config.to_dict() | {"mtp_num_hidden_layers": 1})
    assert reading.ok and reading.spec is not None and reading.spec.pattern.mtp is not None
    model = build(reading.spec)
    model.init_weights(seed=1, std=0.3)
    ours = model.state_dict()
    hub: dict[str, Any] = {}
    for name, tensor in ours.items():
        if name.startswith("backbone.") or name == "lm_head.weight":
            continue
        part = name.split(".")
        j, rest = int(part[2]), ".".join(part[3:])
        fixed = {
            "eh_proj.weight": "mtp.fc.weight",
            "enorm.weight": "mtp.pre_fc_norm_embedding.weight",
            "hnorm.weight": "mtp.pre_fc_norm_hidden.weight",
            "final_layernorm.weight": "mtp.norm.weight",
        }
        if rest in fixed:
            hub[fixed[rest]] = tensor
        elif rest == "norm.weight":
            hub[f"mtp.layers.0.{'input_layernorm' if j == 0 else 'post_attention_layernorm'}.weight"] = tensor
        elif j == 0:
            hub[f"mtp.layers.0.self_attn.{rest.removeprefix('mixer.')}"] = tensor
        elif rest == "mixer.experts.gate_up_proj":
            for e, per in enumerate(tensor):
                gate, up = per.chunk(2, dim=0)
                hub[f"mtp.layers.0.mlp.experts.{e}.gate_proj.weight"] = gate
                hub[f"mtp.layers.0.mlp.experts.{e}.up_proj.weight"] = up
        elif rest == "mixer.experts.down_proj":
            for e, per in enumerate(tensor):
                hub[f"mtp.layers.0.mlp.experts.{e}.down_proj.weight"] = per
        else:
            hub[f"mtp.layers.0.mlp.{rest.removeprefix('mixer.').replace('shared_experts.', 'shared_expert.')}"] = tensor
    reference = transformers.Qwen3NextForCausalLM(config)
    main = {name: torch.randn(t.shape) for name, t in reference.state_dict().items()}
    fresh = build(reading.spec)
    load_weights(fresh, main | hub, "<hub>")
    loaded = fresh.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in ours.items() if name.startswith("mtp."))
    assert torch.equal(
        loaded["backbone.layers.1.mixer.shared_expert_gate.weight"],
        main["model.layers.0.mlp.shared_expert_gate.weight"],
    )
