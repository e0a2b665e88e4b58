"""MiniMax on the torch backend against transformers' ``MiniMaxForCausalLM``, fp32 CPU, same weights.

Hypothesis draws tiny ``MiniMaxConfig`` objects: the mix of ``layer_types`` (lightning and softmax
attention), the lightning block size (so that the 40-token prompt spans several blocks, or one), the
softmax layers' sliding window (none, or shorter than the prompts), MoE sizes, the six residual
factors, kv heads, tied embeddings.  Each is read into the IR by the
``minimax`` family, in transformers' spelling (``layer_types``, ``*_alpha_factor``) or in the released
configs' (``model_type: minimax_text_01``, ``attn_type_list``, ``layernorm_*_alpha``, ``postnorm``),
built by the backend and loaded with transformers' state dict through the backend's own name mapping.
The logits agree within 1e-4 for the full forward, for step-by-step decoding (prefill, then the
one-token decode path), for a left-padded batch and its continuation, and greedy generation picks the
same tokens.  MiniMax's hub names load strictly, and so does the directory transformers'
``save_pretrained`` writes (``patternc.torch_model(directory)``); a config of MiniMax-M1's released
shapes builds on the meta device, tensor for tensor transformers' model, in under 2 s.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import build, load_weights  # noqa: E402
from patternc_torch.lightning import DERIVED_BUFFERS, LightningAttention, ScaledResidualBlock  # noqa: E402
from patternc_torch.support import unsupported  # noqa: E402
from patternc_torch.weights import check_names, to_backend_names  # noqa: E402

import patternc  # noqa: E402
from patternc.config import read_config  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402
from tests.backends.torch.parity import build_pair, compare_to_reference  # noqa: E402
from tests.backends.torch.test_qwen3_next import SETTINGS, TOL, VOCAB  # noqa: E402

FACTORS = (
    ("full_attn_alpha_factor", "layernorm_full_attention_alpha"),
    ("full_attn_beta_factor", "layernorm_full_attention_beta"),
    ("linear_attn_alpha_factor", "layernorm_linear_attention_alpha"),
    ("linear_attn_beta_factor", "layernorm_linear_attention_beta"),
    ("mlp_alpha_factor", "layernorm_mlp_alpha"),
    ("mlp_beta_factor", "layernorm_mlp_beta"),
)
"""transformers' residual factors and the released configs' names for them."""


@st.composite
def minimax_configs(draw: st.DrawFn) -> tuple[Any, bool, int]:
    layers = draw(st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=1, max_size=4))
    experts = draw(st.integers(2, 6))
    factor = st.sampled_from([1.0, 0.5, 0.8, 1.7, 3.5565588200778455])
    config = transformers.MiniMaxConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=draw(st.sampled_from([16, 24])),
        num_hidden_layers=len(layers),
        layer_types=layers,
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        head_dim=draw(st.sampled_from([8, 16])),
        num_local_experts=experts,
        num_experts_per_tok=draw(st.integers(1, experts)),
        block_size=draw(st.sampled_from([8, 16, 256])),
        sliding_window=draw(st.sampled_from([None, None, 5, 16])),
        rope_parameters={"rope_type": "default", "rope_theta": draw(st.sampled_from([10000.0, 1e6]))},
        tie_word_embeddings=draw(st.booleans()),
        rms_norm_eps=1e-5,
        **{ours: draw(factor) for ours, _ in FACTORS},
    )
    return config, draw(st.booleans()), draw(st.integers(0, 2**16))


def released_spelling(config: Any) -> dict[str, Any]:
    """``config`` as MiniMax's released configs spell it (the remote code's keys, ``attn_type_list``)."""
    raw = config.to_dict()
    for ours, remote in FACTORS:
        raw[remote] = raw.pop(ours)
    codes = {"linear_attention": 0, "full_attention": 1}
    raw["attn_type_list"] = [codes[t] for t in raw.pop("layer_types")]
    raw["rope_theta"] = raw.pop("rope_parameters")["rope_theta"]
    return raw | {"model_type": "minimax_text_01", "postnorm": True, "architectures": ["MiniMaxText01ForCausalLM"]}


def _randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights (norms around 1) so that routing, gating and the residual factors matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 3 else 0.15))


def _pair(config: Any, released: bool, seed: int) -> tuple[Any, Any, ModelSpec]:
    raw = released_spelling(config) if released else None
    hf, ours, spec = build_pair(transformers.MiniMaxForCausalLM, config, _randomize, seed, raw)
    assert spec.scaled_residual is not None
    return hf, ours, spec


def _ids(seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def check_parity(config: Any, released: bool, seed: int) -> None:
    """Full forward, step-by-step decoding, a left-padded batch and its continuation, greedy tokens."""
    hf, ours, spec = _pair(config, released, seed)
    flat = spec.pattern.flat

    def constant_state(state: Any) -> None:
        lightning = [i for i, s in enumerate(flat) if s == "L"]
        head_dim = config.head_dim
        assert all(state.ssm[i].shape == (2, 4, head_dim, head_dim) for i in lightning), "constant state per layer"

    split = 1 + seed % 11
    compare_to_reference(
        hf,
        ours,
        vocab=VOCAB,
        seed=seed,
        tol=TOL,
        seq=40,
        padded_seq=20,
        split=split,
        label=flat,
        after_steps=constant_state,
    )


@SETTINGS
@given(minimax_configs())
def test_minimax_parity(case: tuple[Any, bool, int]) -> None:
    config, released, seed = case
    check_parity(config, released, seed)


def test_slopes_and_residual_factors_follow_each_layer() -> None:
    """Each lightning layer decays at its own rate (its place among the decoder layers), and each block
    takes the (alpha, beta) of its kind: what the parity test could not tell apart if all were equal."""
    config = transformers.MiniMaxConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=16,
        num_hidden_layers=3,
        layer_types=["linear_attention", "full_attention", "linear_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_local_experts=2,
        num_experts_per_tok=1,
        full_attn_alpha_factor=2.0,
        linear_attn_beta_factor=0.5,
        mlp_alpha_factor=3.0,
    )
    spec = read_config(config.to_dict()).spec
    assert spec is not None
    model = build(spec, device="meta")
    layers = list(model.backbone.layers)
    assert all(isinstance(block, ScaledResidualBlock) for block in layers)
    factors = [(b.alpha, b.beta) for b in layers]
    assert factors == [(1.0, 0.5), (3.0, 1.0), (2.0, 1.0), (3.0, 1.0), (1.0, 0.5), (3.0, 1.0)]
    first, last = layers[0].mixer, layers[4].mixer
    assert isinstance(first, LightningAttention) and isinstance(last, LightningAttention)
    assert (first.layer, first.layers, last.layer, last.layers) == (0, 3, 2, 3)
    hf = transformers.MiniMaxForCausalLM(config)
    for ours, theirs in ((first, hf.model.layers[0].self_attn), (last, hf.model.layers[2].self_attn)):
        slope, (query, key, diagonal) = ours.decays(torch.device("cpu"))
        assert torch.equal(slope, theirs.slope_rate) and torch.equal(diagonal, theirs.diagonal_decay)
        assert torch.equal(query, theirs.query_decay) and torch.equal(key, theirs.key_decay)
    assert not torch.equal(first.decays(torch.device("cpu"))[0], last.decays(torch.device("cpu"))[0])


def test_the_residual_before_the_norm_postnorm_false() -> None:
    """A released config with ``postnorm: false`` (the remote code's other form, which transformers does
    not build) adds ``alpha * x``, the block's input, not its normed input; decoding equals the forward."""
    config = transformers.MiniMaxConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=16,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_local_experts=3,
        num_experts_per_tok=2,
        block_size=8,
        linear_attn_alpha_factor=1.5,
        linear_attn_beta_factor=0.7,
    )
    spec = read_config(released_spelling(config) | {"postnorm": False}).spec
    assert spec is not None and spec.scaled_residual is not None and not spec.scaled_residual.normed
    assert unsupported(spec) == []
    model = build(spec)
    model.init_weights(seed=2, std=0.2)
    first = model.backbone.layers[0]
    assert isinstance(first, ScaledResidualBlock)
    ids = _ids(6, 2, 21)
    with torch.no_grad():
        x = model.backbone.embeddings(ids)
        ctx = model._context(ids, None, None, None)
        by_hand = 1.5 * x + 0.7 * first.mixer(first.norm(x), ctx)
        assert float((first(x, ctx) - by_hand).abs().max()) <= 1e-6
        full = model(ids).logits
        state = model.new_state(2)
        steps = [model(ids[:, :5], state=state).logits]
        assert model._can_step(state)
        steps += [model(ids[:, i : i + 1], state=state).logits for i in range(5, 21)]
    assert float((torch.cat(steps, dim=1) - full).abs().max()) <= TOL


def test_minimax_hub_names_load_strictly() -> None:
    """The released checkpoints' names (``block_sparse_moe.gate``, per-expert ``w1``/``w3``/``w2``: gate,
    up, down; no derived buffers) load into the model tensor for tensor."""
    config = transformers.MiniMaxConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=16,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_local_experts=3,
        num_experts_per_tok=2,
    )
    hf = transformers.MiniMaxForCausalLM(config).eval()
    _randomize(hf, 7)
    hub: dict[str, Any] = {}
    for name, tensor in hf.state_dict().items():
        if name.rsplit(".", 1)[-1] in DERIVED_BUFFERS:
            continue
        if ".mlp.experts.gate_up_proj" in name:
            prefix = name.replace(".mlp.experts.gate_up_proj", ".block_sparse_moe.experts")
            for e, per in enumerate(tensor):
                gate, up = per.chunk(2, dim=0)
                hub[f"{prefix}.{e}.w1.weight"], hub[f"{prefix}.{e}.w3.weight"] = gate, up
        elif ".mlp.experts.down_proj" in name:
            prefix = name.replace(".mlp.experts.down_proj", ".block_sparse_moe.experts")
            for e, per in enumerate(tensor):
                hub[f"{prefix}.{e}.w2.weight"] = per
        else:
            hub[name.replace(".mlp.gate.", ".block_sparse_moe.gate.")] = tensor
    spec = read_config(config.to_dict()).spec
    assert spec is not None
    from_hub, from_transformers = build(spec), build(spec)
    load_weights(from_hub, hub, "<hub>")
    load_weights(from_transformers, dict(hf.state_dict()), "<transformers>")
    theirs = from_transformers.state_dict()
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in from_hub.state_dict().items())
    ids = _ids(0, 1, 9)
    with torch.no_grad():
        assert float((from_hub(ids).logits - hf(ids).logits).abs().max()) <= TOL


def test_what_save_pretrained_writes_loads_from_its_directory(tmp_path: Path) -> None:
    """transformers writes MiniMax's hub names (per-expert ``w1``/``w2``/``w3``) and the lightning
    layers' buffers; ``patternc.torch_model(directory)`` reads its config and loads them strictly."""
    config = transformers.MiniMaxConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=16,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_local_experts=3,
        num_experts_per_tok=2,
        block_size=8,
        mlp_alpha_factor=2.0,
        sliding_window=4,
    )
    hf = transformers.MiniMaxForCausalLM(config).eval()
    _randomize(hf, 3)
    hf.save_pretrained(tmp_path)
    model = patternc.torch_model(tmp_path)
    assert model.weights_from is not None
    ids = _ids(4, 2, 19)
    with torch.no_grad():
        assert float((model(ids).logits - hf(ids).logits).abs().max()) <= TOL


M1_SHAPED = {
    "model_type": "minimax",
    "architectures": ["MiniMaxForCausalLM"],
    "vocab_size": 200064,
    "hidden_size": 6144,
    "intermediate_size": 9216,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_act": "silu",
    "max_position_embeddings": 10240000,
    "num_local_experts": 32,
    "num_experts_per_tok": 2,
    "rms_norm_eps": 1e-05,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0},
    "layer_types": ["full_attention" if i % 8 == 7 else "linear_attention" for i in range(80)],
    "full_attn_alpha_factor": 3.5565588200778455,
    "linear_attn_alpha_factor": 3.5565588200778455,
    "mlp_alpha_factor": 3.5565588200778455,
    "tie_word_embeddings": False,
}
"""MiniMax-M1's released sizes (tests/fixtures/hub2/MiniMax-M1, ``attn_type_list`` as ``layer_types``) in
transformers' spelling, without ``rotary_dim`` (64 of 128: transformers rotates the whole head, so the
released config is not exactly ``minimax`` and the canonical map refuses it)."""


def test_released_m1_shapes_build_on_meta_as_transformers_model() -> None:
    released = json.loads((Path(__file__).parents[2] / "fixtures/hub2/MiniMax-M1/config.json").read_text())
    assert [1 if t == "full_attention" else 0 for t in M1_SHAPED["layer_types"]] == released["attn_type_list"]
    start = time.perf_counter()
    ours = patternc.torch_model(dict(M1_SHAPED), device="meta", dtype=torch.bfloat16)
    seconds = time.perf_counter() - start
    config = transformers.MiniMaxConfig(**{k: v for k, v in M1_SHAPED.items() if k != "model_type"})
    with torch.device("meta"):
        reference = transformers.MiniMaxForCausalLM(config)
    theirs = to_backend_names(dict(reference.state_dict()), ours.spec)
    missing, unexpected, mismatched = check_names(theirs, ours.state_dict(), ours.spec.tie_embeddings)
    assert (missing, unexpected, mismatched) == ([], [], [])
    assert sum(t.numel() for t in ours.state_dict().values()) == sum(t.numel() for t in theirs.values())
    assert 456.0e9 < sum(t.numel() for t in ours.parameters()) < 456.5e9  # MiniMax reports 456B in total
    assert seconds < 2.0, f"a meta build of MiniMax-M1's shapes took {seconds:.2f} s"
