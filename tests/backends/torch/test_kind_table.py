"""The torch backend's kind tables: the capability table covers every kind, the module table every kind
the backend builds, and a kind neither knows is refused with a reason, never built as another kind."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from patternc_torch.kinds import TorchKind, build_mixer, decode_steps, torch_kind  # noqa: E402
from patternc_torch.layers import Block  # noqa: E402
from patternc_torch.state import InferenceState  # noqa: E402
from patternc_torch.support import SUPPORT, unsupported  # noqa: E402

from patternc.api import analyze, parse  # noqa: E402
from patternc.diagnostics import PatternError  # noqa: E402
from patternc.kinds import KindDef, Role, kind_def, kinds, registered_kind  # noqa: E402
from patternc.model import (  # noqa: E402
    DsaSpec,
    GatedDeltaNetSpec,
    KdaSpec,
    LightningSpec,
    Mamba1Spec,
    MlaSpec,
    ModelSpec,
    RopeSpec,
    ShortConvSpec,
)
from patternc.presets import spec_for_pattern  # noqa: E402

TOY = KindDef("toy_scan", "T", Role.SSM, "toy scan mixer")


def _spec(text: str) -> ModelSpec:
    """A tiny model of ``text`` (the bare-pattern preset's sizes)."""
    analysis = analyze(text)
    assert analysis.pattern is not None
    reading = spec_for_pattern(analysis.pattern, analysis.source_map).reading
    assert reading is not None and reading.spec is not None
    return reading.spec


FLAVOURS = {
    "gated_deltanet": GatedDeltaNetSpec(num_k_heads=2, num_v_heads=4, head_k_dim=8, head_v_dim=8, conv_kernel=4),
    "kda": KdaSpec(num_heads=2, head_dim=8, conv_kernel=4, gate_rank=8),
    "short_conv": ShortConvSpec(conv_kernel=3),
    "mamba1": Mamba1Spec(expand=2, state_size=8, conv_kernel=4, dt_rank=4, inner_norms=True),
    "lightning": LightningSpec(num_heads=4, head_dim=8, block_size=16),
    "mla": MlaSpec(
        num_heads=4,
        q_lora_rank=16,
        kv_lora_rank=16,
        qk_nope_head_dim=8,
        qk_rope_head_dim=8,
        v_head_dim=8,
        rope=RopeSpec(theta=10000.0),
    ),
    "dsa": DsaSpec(
        mla=MlaSpec(
            num_heads=4,
            q_lora_rank=16,
            kv_lora_rank=16,
            qk_nope_head_dim=8,
            qk_rope_head_dim=8,
            v_head_dim=8,
            rope=RopeSpec(theta=10000.0),
        ),
        index_n_heads=2,
        index_head_dim=16,
        index_topk=4,
    ),
}
"""Hyper-parameters of the built kinds the bare-pattern preset (Nemotron-H's sizes) does not define."""

BUILT = sorted(kind for kind, support in SUPPORT.items() if support.module is not None)


def test_the_table_covers_every_kind() -> None:
    assert sorted({d.kind for d in kinds()} - set(SUPPORT)) == [], "patternc_torch.support.SUPPORT misses kinds"
    assert BUILT, "the torch backend builds some kind"


@pytest.mark.parametrize("kind", BUILT)
def test_each_named_module_builds_a_layer_and_its_decode_step(kind: str) -> None:
    spec = _spec("M-*E")
    if kind in FLAVOURS:
        spec = spec.model_copy(update={kind: FLAVOURS[kind]})
    symbol = next(d.symbol for d in kinds() if d.kind == kind)
    entry = torch_kind(symbol)
    assert isinstance(entry, TorchKind)
    mixer = build_mixer(spec, symbol, 0)
    block = Block(symbol, mixer, spec.hidden_size, spec.norm.eps, spec.residual_multiplier)
    (step,) = decode_steps([block])
    assert callable(step)
    assert entry.ready(mixer, InferenceState(1)) in (True, False)


def test_a_kind_missing_from_the_tables_is_refused_with_a_reason() -> None:
    with registered_kind(TOY):
        pattern = parse("M-T-*-")
        spec = _spec("M-*-").model_copy(update={"pattern": pattern})
        problems = unsupported(spec)
        assert [d.message for d in problems] == [
            "the torch backend cannot build `T` (toy scan mixer) layers: no module for this kind "
            "(it is not in the torch backend's kind table)"
        ]
        with pytest.raises(ValueError, match="not in the torch backend's kind table"):
            torch_kind("T")
        mamba = build_mixer(spec, "M", 0)
        impostor = Block("T", mamba, spec.hidden_size, spec.norm.eps, 1.0)
        with pytest.raises(ValueError, match="cannot build `T`"):
            decode_steps([impostor])  # never decoded as some other kind
        from patternc_torch.io import build

        with pytest.raises(PatternError):
            build(spec, device="meta")


def test_a_kind_without_a_module_is_refused_with_its_reason() -> None:
    refused = [kind for kind, support in SUPPORT.items() if support.module is None]
    if not refused:
        pytest.skip("the backend builds every kind")
    defn = kind_def(refused[0])
    spec = _spec("M-*-").model_copy(update={"pattern": parse(f"M-{defn.symbol}-")})
    (problem,) = unsupported(spec)
    assert problem.code == "P401" and f"`{defn.symbol}` ({defn.description}) layers" in problem.message
    assert (SUPPORT[refused[0]].refusal or "") in problem.message
