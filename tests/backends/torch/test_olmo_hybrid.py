"""OLMo Hybrid on the torch backend against transformers' ``OlmoHybridForCausalLM``, fp32 CPU, same weights.

OLMo Hybrid mixes pre-norm gated DeltaNet layers (separate ``q/k/v/g/a/b`` projections, negative
eigenvalues: ``beta = 2 sigmoid(b)``, a gated norm with its own epsilon) with post-norm attention
layers (q/k RMSNorms over the whole projection, RoPE or none, the norms on the attention's and the
MLP's outputs: ``patternc_torch.postnorm``).  Hypothesis draws tiny ``OlmoHybridConfig`` objects over
the layer-type mixes, grouped value heads, kv heads, RoPE or NoPE and ``linear_allow_neg_eigval``;
each is read by the ``olmo_hybrid`` family, built, loaded from transformers' state dict through the
backend's name mapping, and compared: the full forward over more than one chunk of the delta rule,
step-by-step decoding on the one-token path, a left-padded batch and its continuation, greedy tokens.
The released 7B config builds on the meta device.
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

from patternc_torch.io import build  # noqa: E402
from patternc_torch.postnorm import PostNormBlock  # noqa: E402
from patternc_torch.support import unsupported  # noqa: E402

from patternc.config import read_config  # noqa: E402
from tests.backends.torch.parity import build_pair, compare_to_reference  # noqa: E402
from tests.backends.torch.test_falcon_h1 import SETTINGS, TOL, VOCAB, _gap, _ids  # noqa: E402

RELEASED = Path(__file__).parents[2] / "fixtures" / "hub2" / "Olmo-Hybrid-7B"


@st.composite
def olmo_hybrid_configs(draw: st.DrawFn) -> tuple[Any, int]:
    layers = draw(st.lists(st.sampled_from(["linear_attention", "full_attention"]), min_size=2, max_size=4))
    if "full_attention" not in layers:
        layers[-1] = "full_attention"
    if "linear_attention" not in layers:
        layers[0] = "linear_attention"
    k_heads, v_heads = draw(st.sampled_from([(2, 2), (2, 4), (1, 2)]))
    theta = draw(st.sampled_from([None, 10000.0]))
    config = transformers.OlmoHybridConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=len(layers),
        layer_types=layers,
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        rope_parameters={"rope_type": "default", "rope_theta": theta},
        linear_num_key_heads=k_heads,
        linear_num_value_heads=v_heads,
        linear_key_head_dim=8,
        linear_value_head_dim=draw(st.sampled_from([8, 16])),
        linear_conv_kernel_dim=4,
        linear_allow_neg_eigval=draw(st.booleans()),
        attention_bias=draw(st.booleans()),
        tie_word_embeddings=draw(st.booleans()),
        rms_norm_eps=1e-6,
        pad_token_id=0,
        eos_token_id=1,
    )
    return config, draw(st.integers(0, 2**16))


def _randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights so that gating, decay, beta beyond 1 and every norm matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):  # decays of 0.03 to 0.7 a step, as trained
                p.copy_(torch.rand(p.shape, generator=gen) * 2)
            elif name.endswith("dt_bias"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2 - 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.15)


def check_parity(config: Any, seed: int) -> None:
    hf, ours, _ = build_pair(transformers.OlmoHybridForCausalLM, config, _randomize, seed)
    assert sum(isinstance(layer, PostNormBlock) for layer in ours.backbone.layers) == 2 * config.layer_types.count(
        "full_attention"
    )
    # seq: more than one chunk of the delta rule (64)
    compare_to_reference(hf, ours, vocab=VOCAB, seed=seed, tol=TOL, seq=70)


@SETTINGS
@given(olmo_hybrid_configs())
def test_olmo_hybrid_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(config, seed)


def test_released_config_builds_on_the_meta_device_quickly() -> None:
    """The released OLMo Hybrid 7B config (NoPE, negative eigenvalues) builds on the meta device in
    well under 2 s, its attention layers and their MLPs post-norm."""
    reading = read_config(json.loads((RELEASED / "config.json").read_text()))
    assert reading.spec is not None and unsupported(reading.spec) == []
    start = time.perf_counter()
    model = build(reading.spec, "meta")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed
    kinds = [type(layer).__name__ for layer in model.backbone.layers]
    assert kinds[4:8] == ["Block", "Block", "PostNormBlock", "PostNormBlock"]  # G - * -
    assert model.rope_inv_freq is None


def test_saved_checkpoint_loads_strictly(tmp_path: Path) -> None:
    """What transformers' ``save_pretrained`` writes (its conversion mapping reversed: the released
    checkpoints' ``attention_layer_norm``, ``feedforward_layer_norm``, one ``q_conv1d`` / ``k_conv1d`` /
    ``v_conv1d`` per stream, ``o_norm`` / ``o_proj``, ``post_feedforward_layernorm``) loads strictly through
    ``patternc_torch.torch_model(directory)``, the config read by the family, and gives transformers' logits."""
    from patternc_torch import torch_model

    config = transformers.OlmoHybridConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_parameters={"rope_type": "default", "rope_theta": None},
        linear_num_key_heads=2,
        linear_num_value_heads=2,
        linear_key_head_dim=8,
        linear_value_head_dim=16,
        pad_token_id=0,
        eos_token_id=1,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    hf = transformers.OlmoHybridForCausalLM(config).eval()
    _randomize(hf, 5)
    hf.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as saved:
        names = set(saved.keys())
    released = {"model.layers.0.attention_layer_norm.weight", "model.layers.0.linear_attn.q_conv1d.weight"}
    assert released <= names, sorted(released - names)
    ours = torch_model(tmp_path)
    ids = _ids(9, 2, 20)
    with torch.no_grad():
        assert _gap(ours(ids).logits, hf(ids, use_cache=False).logits) <= TOL
