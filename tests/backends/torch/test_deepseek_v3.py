"""DeepSeek-V3 on the torch backend against transformers' ``DeepseekV3ForCausalLM``, fp32 CPU, same weights.

Hypothesis draws tiny ``DeepseekV3Config`` objects (``first_k_dense_replace``, ``n_group`` /
``topk_group``, a query bottleneck or a full-rank ``q_proj``, the rotary and value head sizes, the
interleaved or half-split rotary layout, plain RoPE or YaRN with DeepSeek's mscale); each is read into
the IR by the ``deepseek_v3`` family (the path ``patternc build <config> --target torch`` takes),
built by the backend and loaded with transformers' state dict through the backend's name mapping.
The logits agree within 1e-4 for the full forward, for step-by-step decoding (prefill, then the
one-token decode path, whose latent attention reads only the compressed cache), for a left-padded
batch, and greedy generation picks the same tokens.  The decode cache holds ``kv_lora_rank +
qk_rope_head_dim`` numbers per position per layer, and the released checkpoints' per-expert names load.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import build, load_weights  # noqa: E402
from patternc_torch.latent import LatentAttention  # noqa: E402

from patternc.config import read_config  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402
from tests.backends.torch.parity import build_pair, compare_to_reference  # noqa: E402

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
def latent_fields(draw: st.DrawFn) -> dict[str, Any]:
    """The attention and MoE keys both DeepSeek configs share, tiny, with the flavours the released
    configs use (YaRN with mscale, grouped routing, the query bottleneck) and their alternatives."""
    n = draw(st.integers(1, 4))
    groups = draw(st.sampled_from([(1, 1), (2, 1), (4, 2)]))
    rope_dim = draw(st.sampled_from([4, 8]))
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": draw(st.sampled_from([10000.0, 500.0]))}
    if draw(st.booleans()):
        rope |= {
            "rope_type": "yarn",
            "factor": draw(st.sampled_from([4.0, 40.0])),
            "original_max_position_embeddings": 32,
            "beta_fast": 32,
            "beta_slow": 1,
            "mscale": 1.0,
            "mscale_all_dim": draw(st.sampled_from([1.0, 0.7])),
        }
    heads = draw(st.sampled_from([2, 4]))
    return {
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "moe_intermediate_size": 16,
        "num_hidden_layers": n,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,  # read only by transformers' repeat_kv: one latent serves every head
        "n_shared_experts": draw(st.sampled_from([1, 2])),
        "n_routed_experts": 8,
        "n_group": groups[0],
        "topk_group": groups[1],
        "num_experts_per_tok": 2,
        "first_k_dense_replace": draw(st.integers(0, n)),
        "norm_topk_prob": draw(st.booleans()),
        "routed_scaling_factor": draw(st.sampled_from([1.0, 2.5])),
        "kv_lora_rank": draw(st.sampled_from([8, 16])),
        "qk_rope_head_dim": rope_dim,
        "qk_nope_head_dim": draw(st.sampled_from([4, 8])),
        "v_head_dim": draw(st.sampled_from([8, 12])),
        "rope_parameters": rope,
        "max_position_embeddings": 128,
        "tie_word_embeddings": draw(st.booleans()),
        "rms_norm_eps": 1e-6,
    }


@st.composite
def deepseek_v3_configs(draw: st.DrawFn) -> tuple[Any, int]:
    fields = draw(latent_fields())
    config = transformers.DeepseekV3Config(
        **fields,
        q_lora_rank=draw(st.sampled_from([None, 12])),
        rope_interleave=draw(st.booleans()),
        num_mtp_layers=0,  # transformers builds no MTP module (its weights are dropped on load)
    )
    return config, draw(st.integers(0, 2**16))


def randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights, norms away from 1 and a score-correction bias, so that routing, the
    latent norms and the rotary channels all matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 3 else 0.15))
        for name, buffer in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.copy_(0.1 * torch.randn(buffer.shape, generator=gen))


def pair(model_cls: Any, config: Any, seed: int) -> tuple[Any, Any, ModelSpec]:
    """transformers' model of ``config`` (random weights) and the backend's, read from the same config
    by its family and loaded from transformers' state dict."""
    return build_pair(model_cls, config, randomize, seed)


def ids(seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def cached_steps(hf: Any, tokens: Any, split: int, mask: Any = None) -> Any:
    """transformers' own logits for ``tokens[:, :split]`` then one token at a time through its cache
    (``mask``: left padding, with the positions ``generate`` passes)."""
    positions = None if mask is None else (mask.cumsum(1) - 1).clamp(min=0)

    def call(part: slice, cache: Any) -> Any:
        return hf(
            tokens[:, part],
            attention_mask=None if mask is None else mask[:, : part.stop],
            position_ids=None if positions is None else positions[:, part],
            cache=cache,
            use_cache=True,
        )

    out = call(slice(0, split), None)
    logits, cache = [out.logits], out.past_key_values
    for i in range(split, tokens.shape[1]):
        out = call(slice(i, i + 1), cache)
        logits.append(out.logits)
        cache = out.past_key_values
    return torch.cat(logits, dim=1)


def check_parity(model_cls: Any, config: Any, seed: int, seq: int = 24, cached_reference: bool = False) -> None:
    """Full forward, step-by-step decoding through the compressed cache (the real decode path), a
    left-padded batch (and its continuation token by token), greedy tokens: all as transformers'.

    ``cached_reference``: the step-by-step logits are compared with transformers' own decoding through
    its cache, not with its full forward (sparse attention: a top-k tie is broken one way in a row of
    every key and another in a row of the cached ones, by transformers as by this backend)."""
    hf, ours, spec = pair(model_cls, config, seed)
    flat = spec.pattern.flat

    def latent_only(state: Any) -> None:
        assert state.kv == {} and sorted(state.latent) == [i for i, s in enumerate(flat) if s in "+D"]

    steps = cached_steps if cached_reference else None
    compare_to_reference(
        hf,
        ours,
        vocab=VOCAB,
        seed=seed,
        tol=TOL,
        seq=seq,
        label=flat,
        after_steps=latent_only,
        cached_reference=steps,
        eos_token_id=config.eos_token_id,  # both stop there
    )


@SETTINGS
@given(deepseek_v3_configs())
def test_deepseek_v3_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(transformers.DeepseekV3ForCausalLM, config, seed)


def test_the_decode_cache_is_the_latent_and_the_rotary_key() -> None:
    """Per position and layer the state holds ``kv_lora_rank + qk_rope_head_dim`` numbers: the fraction
    ``(kv_lora_rank + qk_rope_head_dim) / (heads x (qk_head_dim + v_head_dim))`` of the keys and values
    an expanded cache would hold (2 x heads x head dim when the key and value heads are one size)."""
    config = transformers.DeepseekV3Config(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=8,
        num_key_value_heads=8,
        kv_lora_rank=16,
        q_lora_rank=24,
        qk_rope_head_dim=8,
        qk_nope_head_dim=8,
        v_head_dim=16,
        first_k_dense_replace=3,
        num_mtp_layers=0,
    )
    reading = read_config(config.to_dict())
    assert reading.spec is not None
    model = build(reading.spec)
    model.init_weights(seed=2, std=0.2)
    prompt, new = 11, 5
    with torch.no_grad():
        state = model.new_state(2, prompt + new)
        model(ids(0, 2, prompt), state=state)
        for i in range(new):
            model(ids(i + 1, 2, 1), state=state)
    assert state.offset == prompt + new and state.kv == {} and sorted(state.latent) == [0, 2, 4]
    per_position = sum(buffer.shape[-1] for buffer in state.latent.values())
    assert per_position == 3 * (16 + 8)
    expanded = 3 * 8 * ((8 + 8) + 16)  # heads x (qk_head_dim + v_head_dim) per layer
    assert per_position / expanded == (16 + 8) / (2 * 8 * 16)
    attention = model.backbone.layers[0].mixer
    assert isinstance(attention, LatentAttention) and attention.cache_width == 16 + 8


def test_released_per_expert_names_load_strictly() -> None:
    """DeepSeek's hub checkpoints store one tensor per expert (``mlp.experts.E.{gate,up,down}_proj.weight``)
    where transformers stacks them; both load into the same model, tensor for tensor."""
    config = transformers.DeepseekV3Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        n_routed_experts=4,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        first_k_dense_replace=1,
        kv_lora_rank=16,
        q_lora_rank=12,
        qk_rope_head_dim=8,
        qk_nope_head_dim=8,
        v_head_dim=8,
        num_mtp_layers=0,
    )
    hf = transformers.DeepseekV3ForCausalLM(config)
    randomize(hf, 3)
    stacked = dict(hf.state_dict())
    hub: dict[str, Any] = {}
    for name, tensor in stacked.items():
        if name.endswith("experts.gate_up_proj"):
            prefix = name.removesuffix("gate_up_proj")
            for e, per in enumerate(tensor):
                gate, up = per.chunk(2, dim=0)
                hub[f"{prefix}{e}.gate_proj.weight"], hub[f"{prefix}{e}.up_proj.weight"] = gate, up
        elif name.endswith("experts.down_proj"):
            prefix = name.removesuffix("down_proj")
            for e, per in enumerate(tensor):
                hub[f"{prefix}{e}.down_proj.weight"] = per
        else:
            hub[name] = tensor
    reading = read_config(config.to_dict())
    assert reading.spec is not None
    a, b = build(reading.spec), build(reading.spec)
    load_weights(a, stacked, "<transformers>")
    load_weights(b, hub, "<hub>")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_released_mtp_layer_loads_strictly(tmp_path: Any) -> None:
    """The hub's MTP depth is decoder layer ``num_hidden_layers`` (``enorm``, ``hnorm``, ``eh_proj``, the
    layer's attention and MoE, ``shared_head.norm``, and copies of the embedding and the head): it loads
    into the backend's MTP block tensor for tensor, from a state dict and from a checkpoint directory,
    the copies not read; transformers' names for the main layers load beside it."""
    from safetensors.torch import save_file

    import patternc

    config = transformers.DeepseekV3Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        n_routed_experts=4,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        first_k_dense_replace=1,
        kv_lora_rank=16,
        q_lora_rank=12,
        qk_rope_head_dim=8,
        qk_nope_head_dim=8,
        v_head_dim=8,
        num_mtp_layers=1,
    )
    reading = read_config(config.to_dict())
    assert reading.spec is not None and reading.spec.pattern.mtp is not None
    model = build(reading.spec)
    model.init_weights(seed=5, std=0.3)
    ours = model.state_dict()
    hf = transformers.DeepseekV3ForCausalLM(config)
    main = {name: torch.randn(t.shape) for name, t in hf.state_dict().items()}
    own = {
        "enorm.weight": "enorm.weight",
        "hnorm.weight": "hnorm.weight",
        "eh_proj.weight": "eh_proj.weight",
        "final_layernorm.weight": "shared_head.norm.weight",
    }
    hub: dict[str, Any] = {
        "model.layers.2.embed_tokens.weight": main["model.embed_tokens.weight"].clone(),
        "model.layers.2.shared_head.head.weight": main["lm_head.weight"].clone(),
    }
    for name, tensor in ours.items():
        if not name.startswith("mtp."):
            continue
        j, rest = int(name.split(".")[2]), ".".join(name.split(".")[3:])
        if rest in own:
            hub[f"model.layers.2.{own[rest]}"] = tensor
        elif rest == "norm.weight":
            hub[f"model.layers.2.{'input_layernorm' if j == 0 else 'post_attention_layernorm'}.weight"] = tensor
        elif j == 0:
            hub[f"model.layers.2.self_attn.{rest.removeprefix('mixer.')}"] = tensor
        elif rest == "mixer.experts.gate_up_proj":
            for e, per in enumerate(tensor):
                gate, up = per.chunk(2, dim=0)
                hub[f"model.layers.2.mlp.experts.{e}.gate_proj.weight"] = gate
                hub[f"model.layers.2.mlp.experts.{e}.up_proj.weight"] = up
        elif rest == "mixer.experts.down_proj":
            for e, per in enumerate(tensor):
                hub[f"model.layers.2.mlp.experts.{e}.down_proj.weight"] = per
        else:
            hub[f"model.layers.2.mlp.{rest.removeprefix('mixer.')}"] = tensor
    fresh = build(reading.spec)
    load_weights(fresh, main | hub, "<hub>")
    loaded = fresh.state_dict()
    assert all(torch.equal(loaded[name], t) for name, t in ours.items() if name.startswith("mtp."))
    assert torch.equal(loaded["backbone.layers.3.mixer.gate.weight"], main["model.layers.1.mlp.gate.weight"])
    (tmp_path / "config.json").write_text(config.to_json_string(), encoding="utf-8")
    save_file({name: t.contiguous() for name, t in (main | hub).items()}, str(tmp_path / "model.safetensors"))
    from_disk = patternc.torch_model(str(tmp_path)).state_dict()
    assert all(torch.equal(from_disk[name], t) for name, t in loaded.items())


def test_transformers_checkpoint_of_a_config_with_mtp_depths_loads(tmp_path: Any) -> None:
    """``DeepseekV3Config`` declares one MTP depth by default, but transformers builds and saves none:
    its ``save_pretrained`` directory loads through ``patternc.torch_model`` without the MTP block, with
    transformers' logits."""
    import patternc

    config = transformers.DeepseekV3Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        n_routed_experts=4,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        first_k_dense_replace=1,
        kv_lora_rank=16,
        q_lora_rank=12,
        qk_rope_head_dim=8,
        qk_nope_head_dim=8,
        v_head_dim=8,
    )
    assert config.num_nextn_predict_layers == 1
    hf = transformers.DeepseekV3ForCausalLM(config).eval()
    randomize(hf, 6)
    hf.save_pretrained(tmp_path)
    model = patternc.torch_model(str(tmp_path))
    assert model.spec.pattern.mtp is not None and model.mtp is None
    tokens = ids(8, 2, 12)
    with torch.no_grad():
        assert float((model(tokens).logits - hf(tokens).logits).abs().max()) <= TOL
