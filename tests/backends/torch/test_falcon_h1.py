"""Falcon-H1 on the torch backend against transformers' ``FalconH1ForCausalLM``, fp32 CPU, same weights.

Every Falcon-H1 decoder layer is ``[*M]-``: attention and Mamba2 in parallel on one normed input,
summed into one residual add (``patternc_torch.parallel``), then a SwiGLU MLP; every µP multiplier
scales something (branch inputs and outputs, keys, the five ``in_proj`` sections, the MLP's gate and
output, the embeddings, the logits).  Hypothesis draws tiny ``FalconH1Config`` objects over those
multipliers, the sizes and the Mamba2 flavours (no norm, the norm before or after the gate, grouped
norms, separate ``in_proj`` / ``out_proj`` biases); each is read by the ``falcon_h1`` family, built,
loaded from transformers' state dict through the backend's name mapping, and compared: the full
forward over more than one scan chunk, step-by-step decoding on the one-token path, a left-padded
batch and its continuation, and greedy tokens.  The released 0.5B config builds on the meta device.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
F = torch.nn.functional

from patternc_torch.parallel import ParallelBlock  # noqa: E402
from patternc_torch.support import unsupported  # noqa: E402

from patternc.config import read_config  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402
from tests.backends.torch.parity import build_pair, compare_to_reference  # noqa: E402

TOL = 1e-4
VOCAB = 97
RELEASED = Path(__file__).parents[2] / "fixtures" / "hub2" / "Falcon-H1-0.5B-Instruct"
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_FACTORS = st.sampled_from([0.25, 0.5, 0.9375, 1.0, 1.25, 1.7])


@st.composite
def falcon_h1_configs(draw: st.DrawFn) -> tuple[Any, int]:
    heads, groups, d_head = draw(st.sampled_from([(4, 1, 8), (4, 2, 8), (2, 1, 16), (6, 3, 4)]))
    rms_norm = draw(st.booleans())
    config = transformers.FalconH1Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=draw(st.integers(1, 3)),
        num_attention_heads=4,
        num_key_value_heads=draw(st.sampled_from([1, 2, 4])),
        head_dim=draw(st.sampled_from([8, 16])),
        rope_theta=draw(st.sampled_from([10000.0, 1e11])),
        mamba_d_ssm=heads * d_head,
        mamba_n_heads=heads,
        mamba_d_head=d_head,
        mamba_n_groups=groups,
        mamba_d_state=8,
        mamba_d_conv=4,
        mamba_chunk_size=16,
        mamba_conv_bias=draw(st.booleans()),
        mamba_proj_bias=False,  # the released configs' (see test_in_proj_bias_and_left_padding)
        projectors_bias=draw(st.booleans()),
        mamba_rms_norm=rms_norm,
        mamba_norm_before_gate=draw(st.booleans()),
        attention_bias=draw(st.booleans()),
        mlp_bias=draw(st.booleans()),
        tie_word_embeddings=draw(st.booleans()),
        rms_norm_eps=1e-5,
        embedding_multiplier=draw(_FACTORS),
        lm_head_multiplier=draw(_FACTORS),
        attention_in_multiplier=draw(_FACTORS),
        attention_out_multiplier=draw(_FACTORS),
        key_multiplier=draw(_FACTORS),
        ssm_in_multiplier=draw(_FACTORS),
        ssm_out_multiplier=draw(_FACTORS),
        ssm_multipliers=[draw(_FACTORS) for _ in range(5)],
        mlp_multipliers=[draw(_FACTORS) for _ in range(2)],
    )
    return config, draw(st.integers(0, 2**16))


def _randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights so that every branch, multiplier, decay and norm matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2)
            elif name.endswith("dt_bias"):
                p.copy_(torch.rand(p.shape, generator=gen) * 2 - 0.5)
            elif name.endswith(".D"):
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.15)


def _pair(config: Any, seed: int) -> tuple[Any, Any, ModelSpec]:
    return build_pair(transformers.FalconH1ForCausalLM, config, _randomize, seed)


def _ids(seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def _gap(a: Any, b: Any) -> float:
    return float((a - b).abs().max())


def check_parity(config: Any, seed: int, padded_like_transformers: bool = True) -> None:
    """Full forward, step-by-step decoding, a left-padded batch and its continuation token by token,
    greedy tokens: all as transformers'.  ``padded_like_transformers`` off: the padded row is checked
    against the same row unpadded instead (transformers feeds ``in_proj``'s bias at padded positions
    into the convolution; the backend's padded positions contribute nothing)."""
    hf, ours, _ = _pair(config, seed)
    assert any(isinstance(layer, ParallelBlock) for layer in ours.backbone.layers)

    def unpadded(ids: Any, mask: Any, pad: int) -> Any:
        return torch.cat([hf(ids[:1]).logits, F.pad(hf(ids[1:, pad:]).logits, (0, 0, pad, 0))])

    reference = None if padded_like_transformers else unpadded
    # seq: more than two chunks of the scan (16)
    compare_to_reference(hf, ours, vocab=VOCAB, seed=seed, tol=TOL, seq=40, padded_reference=reference)


@SETTINGS
@given(falcon_h1_configs())
def test_falcon_h1_parity(case: tuple[Any, int]) -> None:
    config, seed = case
    check_parity(config, seed)


def test_in_proj_bias() -> None:
    """``mamba_proj_bias`` (``in_proj``'s bias) with ``projectors_bias`` off: the two biases apart.  A
    left-padded row equals the row unpadded (in transformers the bias at padded positions reaches
    the convolution; no released Falcon-H1 config has this bias)."""
    config = transformers.FalconH1Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        mamba_d_ssm=32,
        mamba_n_heads=4,
        mamba_d_head=8,
        mamba_d_state=8,
        mamba_chunk_size=16,
        mamba_proj_bias=True,
        projectors_bias=False,
        mamba_rms_norm=True,
        ssm_multipliers=[0.5, 1.25, 0.25, 1.7, 0.9375],
    )
    check_parity(config, 11, padded_like_transformers=False)


def test_released_config_builds_on_the_meta_device_quickly() -> None:
    """The released Falcon-H1-0.5B config builds on the meta device, every µP multiplier in place, in
    well under 2 s (the parameter count is the family's: 521,411,104)."""
    import json

    from patternc_torch.io import build as build_model

    reading = read_config(json.loads((RELEASED / "config.json").read_text()))
    assert reading.spec is not None and unsupported(reading.spec) == []
    start = time.perf_counter()
    model = build_model(reading.spec, "meta")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed
    assert sum(p.numel() for p in model.parameters()) == 521_411_104
    block = model.backbone.layers[0]
    assert isinstance(block, ParallelBlock)
    assert block.factors == ((1.0, 0.9375), (1.25, 0.23570226039551587))


def test_saved_checkpoint_loads_strictly(tmp_path: Path) -> None:
    """What transformers' ``save_pretrained`` writes (the released checkpoints' names: ``model.layers.J.
    self_attn`` / ``mamba`` / ``feed_forward``, ``input_layernorm``, ``pre_ff_layernorm``,
    ``model.final_layernorm``) loads strictly through ``patternc_torch.torch_model(directory)``, the
    config read by the family, and gives transformers' logits."""
    from patternc_torch import torch_model

    config = transformers.FalconH1Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        mamba_d_ssm=32,
        mamba_n_heads=4,
        mamba_d_head=8,
        mamba_d_state=8,
        mamba_chunk_size=16,
        mamba_rms_norm=True,
        projectors_bias=True,
        key_multiplier=0.5,
        ssm_multipliers=[0.5, 1.25, 0.25, 1.7, 0.9375],
    )
    hf, _, _ = _pair(config, 5)
    hf.save_pretrained(tmp_path)
    ours = torch_model(tmp_path)
    ids = _ids(9, 2, 20)
    with torch.no_grad():
        assert _gap(ours(ids).logits, hf(ids, use_cache=False).logits) <= TOL
