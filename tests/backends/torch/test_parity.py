"""The torch backend against transformers' own modules, on the same weights, fp32, CPU.

For tiny random configs drawn by hypothesis (patterns and flavours), the logits of
``patternc_torch`` equal those of NemotronHForCausalLM, BambaForCausalLM,
GraniteMoeHybridForCausalLM and Mamba2ForCausalLM within 1e-4, for the full forward and for
step-by-step decoding with the inference state.  The weights go through the backend's own name
mapping (the one that loads checkpoints).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.io import build, load_weights  # noqa: E402

from patternc import families  # noqa: E402
from patternc.ir import make_pattern  # noqa: E402
from patternc.model import (  # noqa: E402
    AttentionSpec,
    MambaSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
    NormSpec,
    RopeSpec,
)

TOL = 1e-4
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HIDDEN = 32
VOCAB = 97


def mamba_spec(heads: int, groups: int, chunk: int, t_min: float = 0.0, hidden: int = HIDDEN) -> MambaSpec:
    head_dim = 2 * hidden // heads
    return MambaSpec(
        num_heads=heads,
        head_dim=head_dim,
        state_size=8,
        n_groups=groups,
        conv_kernel=4,
        chunk_size=chunk,
        norm_group_size=heads * head_dim // groups,
        time_step_limit=(t_min, math.inf),
    )


def _randomize(model: Any, seed: int) -> None:
    """Bigger-than-init weights so that every path (routing, gating, decay) matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("A_log", "dt_bias")):
                p.copy_(torch.rand(p.shape, generator=gen) * 2 - 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() == 3 else 0.15))
        for name, b in model.named_buffers():
            if "e_score_correction_bias" in name:
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)


def _hf_model(arch: str, spec: ModelSpec, extra: dict[str, Any]) -> Any:
    cfg = dict(families.get(arch).express(spec).config)
    cfg.update(extra)
    classes = {
        "nemotron_h": (transformers.NemotronHConfig, transformers.NemotronHForCausalLM),
        "bamba": (transformers.BambaConfig, transformers.BambaForCausalLM),
        "granitemoehybrid": (transformers.GraniteMoeHybridConfig, transformers.GraniteMoeHybridForCausalLM),
        "mamba2": (transformers.Mamba2Config, transformers.Mamba2ForCausalLM),
    }
    config_cls, model_cls = classes[arch]
    if arch == "nemotron_h":
        cfg["num_hidden_layers"] = len(cfg["layers_block_type"])
    config = config_cls(**cfg)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return model_cls(config).eval()


def compare(
    arch: str,
    spec: ModelSpec,
    extra: dict[str, Any],
    seed: int,
    seq: int = 19,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[float, float]:
    """(max |full forward diff|, max |step-by-step diff|) against transformers' full forward, relative
    to the largest reference logit when ``dtype`` is not float32."""
    hf = _hf_model(arch, spec, extra)
    _randomize(hf, seed)
    ours = build(spec)
    # transformers drops the MTP block: keep the backend's own (random) MTP weights
    mtp = {k: v for k, v in ours.state_dict().items() if k.startswith("mtp.")}
    load_weights(ours, dict(hf.state_dict()) | mtp, "<transformers>")
    if device != "cpu" or dtype != torch.float32:
        hf.to(device, dtype)
        ours.to(device, dtype)
        ours.keep_fp32()
    ids = torch.randint(0, VOCAB, (2, seq), generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        ref = hf(ids, use_cache=False).logits.float()
        full = ours(ids).logits
        state = ours.new_state(2, 4)  # small on purpose: the KV buffers must grow
        split = 1 + seed % 7
        steps = [ours(ids[:, :split], state=state).logits]
        steps += [ours(ids[:, i : i + 1], state=state).logits for i in range(split, seq)]
        if ours.mtp is not None:
            heads = ours(ids, return_mtp=True).mtp_logits
            assert heads is not None and [h.shape for h in heads] == [full.shape] * ours.mtp.depths
    step = torch.cat(steps, dim=1)
    assert torch.isfinite(ref).all()
    scale = 1.0 if dtype == torch.float32 else max(1.0, float(ref.abs().max()))
    return float((full - ref).abs().max()) / scale, float((step - ref).abs().max()) / scale


# -- Nemotron-H: M * - E, relu2 MLPs, sigmoid grouped router, latent MoE, MTP ---------------------


@st.composite
def nemotron_specs(draw: st.DrawFn) -> tuple[ModelSpec, int]:
    pattern = draw(st.text(alphabet="M*-E", min_size=2, max_size=7))
    heads, groups = draw(st.sampled_from([(4, 1), (4, 2), (8, 4)]))
    n_experts, n_group = draw(st.sampled_from([(8, 1), (8, 2), (6, 3)]))
    latent = draw(st.sampled_from([None, 16]))
    mtp = draw(st.sampled_from(["", "*E", "M-"]))
    spec = ModelSpec(
        source="nemotron_h",
        pattern=make_pattern(pattern, mtp=mtp, depths=1 if mtp else 0),
        hidden_size=HIDDEN,
        vocab_size=VOCAB,
        norm=NormSpec(eps=1e-5),
        attention=AttentionSpec(num_heads=4, num_kv_heads=draw(st.sampled_from([1, 2, 4])), head_dim=8),
        mamba=mamba_spec(heads, groups, draw(st.sampled_from([4, 8, 64])), 0.001),
        mlp=MlpSpec(intermediate_size=48, activation="relu2", gated=False),
        moe=MoeSpec(
            num_experts=n_experts,
            top_k=2,
            intermediate_size=16,
            router="sigmoid",
            score_correction_bias=True,
            n_group=n_group,
            topk_group=1 if n_group == 1 else 2,
            norm_topk_prob=draw(st.booleans()),
            routed_scaling_factor=2.5,
            expert_gated=False,
            expert_activation="relu2",
            shared_experts=1,
            shared_intermediate_size=24,
            latent_size=latent,
        ),
    )
    return spec, draw(st.integers(0, 2**16))


@SETTINGS
@given(nemotron_specs())
def test_nemotron_h_parity(case: tuple[ModelSpec, int]) -> None:
    spec, seed = case
    full, step = compare("nemotron_h", spec, {"chunk_size": spec.mamba.chunk_size if spec.mamba else 8}, seed)
    assert full <= TOL and step <= TOL, (spec.pattern.flat, full, step)


# -- Bamba: (M | * with partial RoPE) + SwiGLU ------------------------------------------------------


@st.composite
def bamba_specs(draw: st.DrawFn) -> tuple[ModelSpec, int]:
    mixers = draw(st.text(alphabet="M*", min_size=1, max_size=4))
    factor = draw(st.sampled_from([0.5, 1.0]))
    heads, groups = draw(st.sampled_from([(4, 1), (8, 2)]))
    spec = ModelSpec(
        source="bamba",
        pattern=make_pattern("".join(m + "-" for m in mixers)),
        hidden_size=HIDDEN,
        vocab_size=VOCAB,
        norm=NormSpec(eps=1e-5),
        tie_embeddings=draw(st.booleans()),
        attention=AttentionSpec(
            num_heads=4, num_kv_heads=2, head_dim=8, rope=RopeSpec(theta=10000.0, partial_factor=factor)
        ),
        mamba=mamba_spec(heads, groups, draw(st.sampled_from([4, 16]))),
        mlp=MlpSpec(intermediate_size=40, activation="silu", gated=True),
    )
    return spec, draw(st.integers(0, 2**16))


@SETTINGS
@given(bamba_specs())
def test_bamba_parity(case: tuple[ModelSpec, int]) -> None:
    spec, seed = case
    extra = {"mamba_chunk_size": spec.mamba.chunk_size if spec.mamba else 8, "num_logits_to_keep": None}
    full, step = compare("bamba", spec, extra, seed)
    assert full <= TOL and step <= TOL, (spec.pattern.flat, full, step)


# -- GraniteMoeHybrid: softmax router, gated experts + shared MLP, multipliers, optional RoPE ---------


@st.composite
def granite_specs(draw: st.DrawFn) -> tuple[ModelSpec, int]:
    mixers = draw(st.text(alphabet="M*", min_size=1, max_size=4))
    moe = draw(st.booleans())
    rope = draw(st.sampled_from([None, RopeSpec(theta=10000.0)]))
    ffn = "E" if moe else "-"
    spec = ModelSpec(
        source="granitemoehybrid",
        pattern=make_pattern("".join(m + ffn for m in mixers)),
        hidden_size=HIDDEN,
        vocab_size=VOCAB,
        norm=NormSpec(eps=1e-6),
        tie_embeddings=draw(st.booleans()),
        attention=AttentionSpec(num_heads=4, num_kv_heads=2, head_dim=8, rope=rope, scale=0.3),
        mamba=mamba_spec(4, 2, 8),
        mlp=MlpSpec(intermediate_size=40, activation="silu", gated=True) if not moe else None,
        moe=MoeSpec(
            num_experts=6,
            top_k=2,
            intermediate_size=16,
            router="softmax",
            norm_topk_prob=True,
            expert_gated=True,
            expert_activation="silu",
            shared_experts=1,
            shared_intermediate_size=24,
            shared_gated=True,
        )
        if moe
        else None,
        embedding_multiplier=draw(st.sampled_from([1.0, 12.0])),
        residual_multiplier=0.22,
        logits_scaling=8.0,
    )
    return spec, draw(st.integers(0, 2**16))


@SETTINGS
@given(granite_specs())
def test_granitemoehybrid_parity(case: tuple[ModelSpec, int]) -> None:
    spec, seed = case
    full, step = compare("granitemoehybrid", spec, {"mamba_chunk_size": 8}, seed)
    assert full <= TOL and step <= TOL, (spec.pattern.flat, full, step)


# -- Mamba2 ----------------------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(1, 4), st.sampled_from([(4, 1), (8, 2), (8, 8)]), st.sampled_from([4, 8, 32]), st.integers(0, 99))
def test_mamba2_parity(layers: int, heads_groups: tuple[int, int], chunk: int, seed: int) -> None:
    heads, groups = heads_groups
    spec = ModelSpec(
        source="mamba2",
        pattern=make_pattern("M" * layers),
        hidden_size=HIDDEN,
        vocab_size=VOCAB,
        norm=NormSpec(eps=1e-5),
        mamba=mamba_spec(heads, groups, chunk, 0.01),
    )
    full, step = compare("mamba2", spec, {"chunk_size": chunk, "residual_in_fp32": True}, seed)
    assert full <= TOL and step <= TOL, (full, step)


def test_long_sequence_many_chunks() -> None:
    """Several chunks and a prompt that is not a multiple of the chunk size."""
    spec = ModelSpec(
        source="nemotron_h",
        pattern=make_pattern("M*-M"),
        hidden_size=HIDDEN,
        vocab_size=VOCAB,
        norm=NormSpec(eps=1e-5),
        attention=AttentionSpec(num_heads=4, num_kv_heads=1, head_dim=8),
        mamba=mamba_spec(8, 2, 16, 0.001),
        mlp=MlpSpec(intermediate_size=48, activation="relu2", gated=False),
    )
    full, step = compare("nemotron_h", spec, {"chunk_size": 16}, 3, seq=75)
    assert full <= TOL and step <= TOL


# -- CUDA, bf16 (skipped without a GPU) ---------------------------------------------------------------

CUDA_SETTINGS = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BF16_TOL = 0.1
"""Relative to the largest logit: bf16 keeps 8 bits, transformers casts A_log/D/dt_bias to bf16 too, and
step-by-step decoding rounds every state update (the same comparison in bf16 on the CPU gives up to
0.067 on these configs; a wrong layer gives differences of the order of the logits themselves)."""
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@CUDA_SETTINGS
@given(nemotron_specs())
def test_cuda_bf16_nemotron_h_parity(case: tuple[ModelSpec, int]) -> None:
    spec, seed = case
    extra = {"chunk_size": spec.mamba.chunk_size if spec.mamba else 8}
    full, step = compare("nemotron_h", spec, extra, seed, device="cuda", dtype=torch.bfloat16)
    assert full <= BF16_TOL and step <= BF16_TOL, (spec.pattern.flat, full, step)


@cuda
@CUDA_SETTINGS
@given(bamba_specs())
def test_cuda_bf16_bamba_parity(case: tuple[ModelSpec, int]) -> None:
    spec, seed = case
    extra = {"mamba_chunk_size": spec.mamba.chunk_size if spec.mamba else 8, "num_logits_to_keep": None}
    full, step = compare("bamba", spec, extra, seed, device="cuda", dtype=torch.bfloat16)
    assert full <= BF16_TOL and step <= BF16_TOL, (spec.pattern.flat, full, step)
