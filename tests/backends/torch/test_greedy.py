"""The screened greedy head: its error bound holds, its picks equal the fp32 argmax, it is really used."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from patternc_torch.greedy import MIN_VOCAB, ScreenedHead, screened_head  # noqa: E402

import patternc  # noqa: E402
from patternc.ir import make_pattern  # noqa: E402
from patternc.model import AttentionSpec, MambaSpec, MlpSpec, ModelSpec, NormSpec  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(torch, "_weight_int8pack_mm"), reason="this torch has no int8 weight kernel"
)

VOCAB = MIN_VOCAB + 57


def head(seed: int, hidden: int, std: float = 0.02) -> torch.Tensor:
    return torch.randn(VOCAB, hidden, generator=torch.Generator().manual_seed(seed)) * std


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    hidden=st.sampled_from([16, 48, 64, 128]),
    batch=st.integers(1, 3),
    log_scale=st.floats(-4, 4),
    std=st.sampled_from([1e-3, 0.02, 1.0]),
)
def test_bound_holds_and_the_pick_is_the_fp32_argmax(
    seed: int, hidden: int, batch: int, log_scale: float, std: float
) -> None:
    weight = head(seed, hidden, std)
    screen = screened_head(weight, None)
    assert screen is not None
    h = torch.randn(batch, hidden, generator=torch.Generator().manual_seed(seed + 1)) * 10**log_scale
    exact = F.linear(h, weight)
    approx, bound = screen.estimate(h)
    assert bool(((approx - exact).abs() <= bound).all())
    assert screen.argmax(h).tolist() == exact.argmax(-1).tolist()


def test_near_ties_are_resolved_by_the_fp32_values() -> None:
    weight = head(0, 64)
    h = torch.randn(2, 64, generator=torch.Generator().manual_seed(9))
    top = int(F.linear(h[:1], weight).argmax())
    # rows whose logits differ from the top one by far less than the int8 error
    for k, row in enumerate((11, 5000, VOCAB - 1)):
        weight[row] = weight[top] * (1 + (k - 1) * 1e-6)
    screen = ScreenedHead(weight)
    assert screen.argmax(h).tolist() == F.linear(h, weight).argmax(-1).tolist()


def test_the_screen_reads_few_fp32_rows() -> None:
    """Guards the fast path: a typical head leaves a handful of candidates, not the vocabulary."""
    weight = head(1, 128)
    screen = ScreenedHead(weight)
    h = torch.randn(1, 128, generator=torch.Generator().manual_seed(2))
    approx, bound = screen.estimate(h)
    candidates = int(((approx + bound) >= (approx - bound).max()).sum())
    assert 1 <= candidates < VOCAB // 50
    assert screen.argmax(h).tolist() == F.linear(h, weight).argmax(-1).tolist()
    assert screen.last_candidates == candidates


def test_non_finite_states_fall_back_to_the_full_product() -> None:
    weight = head(2, 32)
    h = torch.randn(1, 32)
    h[0, 3] = float("inf")
    screen = ScreenedHead(weight)
    assert screen.argmax(h).tolist() == F.linear(h, weight).argmax(-1).tolist()
    assert screen.last_candidates is None


def test_unsupported_heads_get_no_screen() -> None:
    assert screened_head(torch.randn(MIN_VOCAB - 1, 32), None) is None  # small vocabulary
    assert screened_head(torch.randn(VOCAB, 40), None) is None  # hidden not a multiple of 16
    assert screened_head(torch.randn(VOCAB, 32, dtype=torch.bfloat16), None) is None
    assert screened_head(torch.randn(VOCAB, 32, device="meta"), None) is None


def model() -> torch.nn.Module:
    spec = ModelSpec(
        source="pattern",
        pattern=make_pattern("M-*M"),
        hidden_size=64,
        vocab_size=VOCAB,
        norm=NormSpec(eps=1e-5),
        attention=AttentionSpec(num_heads=4, num_kv_heads=2, head_dim=16),
        mamba=MambaSpec(
            num_heads=4, head_dim=16, state_size=8, n_groups=1, conv_kernel=4, chunk_size=8, norm_group_size=64
        ),
        mlp=MlpSpec(intermediate_size=96, activation="relu2", gated=False),
    )
    torch.manual_seed(0)
    return patternc.torch_model(spec)


def test_generate_with_the_screen_equals_full_logits_and_follows_weight_changes() -> None:
    lm = model()
    ids = torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(4))
    screened = lm.generate(ids, 12)
    assert lm._screened is not None  # the screen was built and used
    assert screened.tolist() == lm.generate(ids, 12, screen_head=False).tolist()
    before = lm._screened
    assert lm.generate(ids, 12).tolist() == screened.tolist() and lm._screened is before  # reused
    with torch.no_grad():  # an in-place change of the head invalidates the cached screen
        lm.lm_head.weight.mul_(-1.0)
    assert lm.generate(ids, 12).tolist() == lm.generate(ids, 12, screen_head=False).tolist()
    assert lm._screened is not before
    before = lm._screened
    lm.lm_head.weight.data.copy_(torch.roll(lm.lm_head.weight.data, 1, dims=0))  # `.data`: no version bump
    assert lm.generate(ids, 12).tolist() == lm.generate(ids, 12, screen_head=False).tolist()
    assert lm._screened is not before


def test_a_model_built_in_inference_mode_is_screened_too() -> None:
    with torch.inference_mode():
        lm = model()
        ids = torch.tensor([[1, 2, 3]])
        assert lm.generate(ids, 4).tolist() == lm.generate(ids, 4, screen_head=False).tolist()
        assert lm._screened is not None
