"""Properties of the canonical-architecture map: deterministic, and never exact where lowerings differ."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patternc import families
from patternc.canonical import candidates, canonical_map
from patternc.canonical.compare import isomorphic
from patternc.canonical.graph import lower_spec
from patternc.ir import make_pattern
from patternc.model import AttentionSpec, MambaSpec, MlpSpec, ModelSpec, MoeSpec, NormSpec, RopeSpec

ACTS = st.sampled_from(["silu", "relu2", "gelu"])


@st.composite
def specs(draw: st.DrawFn) -> ModelSpec:
    flat = draw(st.text(alphabet="M*-E", min_size=1, max_size=8))
    hidden = draw(st.sampled_from([32, 48, 64]))
    heads = draw(st.sampled_from([4, 8]))
    groups = draw(st.sampled_from([1, 2]))
    head_dim = 16
    inner = heads * head_dim
    mamba = MambaSpec(
        num_heads=heads,
        head_dim=head_dim,
        state_size=16,
        n_groups=groups,
        conv_kernel=4,
        norm_group_size=draw(st.sampled_from([inner // groups, inner])),
        activation=draw(ACTS),
        time_step_limit=draw(st.sampled_from([(0.0, float("inf")), (0.001, float("inf")), (0.0, 0.1)])),
        proj_bias=draw(st.booleans()),
    )
    rope = draw(
        st.one_of(
            st.none(),
            st.builds(RopeSpec, theta=st.sampled_from([1e4, 1e6]), partial_factor=st.sampled_from([0.5, 1.0])),
        )
    )
    attention = AttentionSpec(
        num_heads=4,
        num_kv_heads=draw(st.sampled_from([1, 2, 4])),
        head_dim=16,
        rope=rope,
        qkv_bias=draw(st.booleans()),
        scale=draw(st.sampled_from([None, 0.25, 0.5])),
    )
    mlp = MlpSpec(intermediate_size=draw(st.sampled_from([64, 96])), activation=draw(ACTS), gated=draw(st.booleans()))
    moe = MoeSpec(
        num_experts=4,
        top_k=2,
        intermediate_size=32,
        router=draw(st.sampled_from(["sigmoid", "softmax"])),
        score_correction_bias=draw(st.booleans()),
        norm_topk_prob=draw(st.booleans()),
        routed_scaling_factor=draw(st.sampled_from([1.0, 2.5])),
        expert_gated=draw(st.booleans()),
        expert_activation=draw(ACTS),
        shared_experts=draw(st.sampled_from([0, 1])),
        shared_intermediate_size=48,
        shared_gated=draw(st.booleans()),
    )
    return ModelSpec(
        source="pattern",
        pattern=make_pattern(flat),
        hidden_size=hidden,
        vocab_size=100,
        norm=NormSpec(eps=1e-5),
        tie_embeddings=draw(st.booleans()),
        embedding_multiplier=draw(st.sampled_from([1.0, 12.0])),
        mamba=mamba if "M" in flat else None,
        attention=attention if "*" in flat else None,
        mlp=mlp if "-" in flat else None,
        moe=moe if "E" in flat else None,
    )


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(specs())
def test_deterministic(spec: ModelSpec) -> None:
    first, second = canonical_map(spec), canonical_map(spec.model_copy(deep=True))
    assert first == second
    assert list(first.reasons) == [c for c in candidates() if c != first.architecture]


@SETTINGS
@given(specs())
def test_never_claims_exactness_where_lowerings_differ(spec: ModelSpec) -> None:
    result = canonical_map(spec)
    blocks = lower_spec(spec)
    for arch in result.matched:
        expression = families.get(arch).express(spec)
        assert not expression.structural
        assert sorted(i for i, _ in expression.blocks if i is not None) == list(range(len(blocks)))
        assert all(i is not None and isomorphic(blocks[i], block) for i, block in expression.blocks)
        assert result.reasons.get(arch, []) == []
    for arch, reasons in result.reasons.items():
        assert (reasons == []) == (arch in result.matched)
