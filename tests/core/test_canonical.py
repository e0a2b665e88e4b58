"""The canonical-architecture map (patternc.canonical)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from patternc import families
from patternc.canonical import candidates, canonical_map, preference
from patternc.canonical.compare import isomorphic
from patternc.canonical.graph import lower_spec
from patternc.ir import make_pattern
from patternc.model import AttentionSpec, MambaSpec, MlpSpec, ModelSpec, MoeSpec, NormSpec, RopeSpec

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "tests" / "fixtures" / "hub"
DOC = ROOT / "docs" / "canonical.md"
FIXTURES = {
    "Nemotron-H-8B (dense)": "Nemotron-H-8B-Base-8K",
    "Nano-9B-v2 (dense, MM runs)": "NVIDIA-Nemotron-Nano-9B-v2",
    "Nemotron-3-Nano-30B (MoE)": "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
}


def nemotron_spec(path: Path) -> ModelSpec:
    """A nemotron_h config.json read by hand, with NemotronHConfig's defaults and modeling choices."""
    c = json.loads(path.read_text())
    pattern = c["hybrid_override_pattern"]
    heads, head_dim, groups = c.get("mamba_num_heads", 128), c.get("mamba_head_dim", 64), c.get("n_groups", 8)
    act = c.get("mlp_hidden_act", "relu2")
    mamba = MambaSpec(
        num_heads=heads,
        head_dim=head_dim,
        state_size=c.get("ssm_state_size", 128),
        n_groups=groups,
        conv_kernel=c.get("conv_kernel", 4),
        conv_bias=c.get("use_conv_bias", True),
        proj_bias=c.get("use_bias", False),
        norm_group_size=heads * head_dim // groups,
        activation=c.get("mamba_hidden_act", "silu"),
        # NemotronHMamba2Mixer: time_step_limit = (config.time_step_min, inf)
        time_step_limit=(c.get("time_step_min", 0.001), math.inf),
        chunk_size=c.get("chunk_size", 128),
    )
    attention = AttentionSpec(
        num_heads=c["num_attention_heads"],
        num_kv_heads=c["num_key_value_heads"],
        head_dim=c.get("head_dim", c.get("attention_head_dim", 128)),
    )
    mlp = MlpSpec(intermediate_size=c["intermediate_size"], activation=act, gated=False) if "-" in pattern else None
    moe = None
    if "E" in pattern:
        moe = MoeSpec(
            num_experts=c["n_routed_experts"],
            top_k=c["num_experts_per_tok"],
            intermediate_size=c["moe_intermediate_size"],
            router="sigmoid",
            score_correction_bias=True,
            n_group=c.get("n_group", 1),
            topk_group=c.get("topk_group", 1),
            norm_topk_prob=c.get("norm_topk_prob", True),
            routed_scaling_factor=c.get("routed_scaling_factor", 1.0),
            expert_gated=False,
            expert_activation=act,
            shared_experts=1,
            shared_intermediate_size=c["moe_shared_expert_intermediate_size"],
        )
    return ModelSpec(
        source="nemotron_h",
        pattern=make_pattern(pattern),
        hidden_size=c["hidden_size"],
        vocab_size=c["vocab_size"],
        tie_embeddings=c.get("tie_word_embeddings", False),
        norm=NormSpec(eps=c.get("layer_norm_epsilon", 1e-5)),
        mamba=mamba,
        attention=attention,
        mlp=mlp,
        moe=moe,
    )


def tiny(
    flat: str,
    *,
    mlp: MlpSpec | None = None,
    moe: MoeSpec | None = None,
    rope: RopeSpec | None = None,
    scale: float | None = None,
    hidden: int = 64,
    **model: object,
) -> ModelSpec:
    mamba = MambaSpec(num_heads=8, head_dim=16, state_size=16, n_groups=2, conv_kernel=4, norm_group_size=64)
    attention = AttentionSpec(num_heads=4, num_kv_heads=2, head_dim=16, rope=rope, scale=scale)
    return ModelSpec(
        source="pattern",
        pattern=make_pattern(flat),
        hidden_size=hidden,
        vocab_size=128,
        norm=NormSpec(eps=1e-5),
        mamba=mamba if "M" in flat else None,
        attention=attention if "*" in flat else None,
        mlp=mlp if "-" in flat else None,
        moe=moe if "E" in flat else None,
        **model,  # type: ignore[arg-type]
    )


RELU2 = MlpSpec(intermediate_size=96, activation="relu2", gated=False)
SWIGLU = MlpSpec(intermediate_size=96, activation="silu", gated=True)
GRANITE_MOE = MoeSpec(
    num_experts=4,
    top_k=2,
    intermediate_size=32,
    router="softmax",
    norm_topk_prob=True,
    expert_gated=True,
    expert_activation="silu",
    shared_experts=1,
    shared_intermediate_size=48,
    shared_gated=True,
)


def _has(reasons: list[str], *needles: str) -> bool:
    return any(all(n in r for n in needles) for r in reasons)


def test_candidates_and_preference_are_fixed() -> None:
    assert candidates() == (
        "deepseek_v32",
        "deepseek_v3",
        "kimi_linear",
        "bailing_hybrid",
        "falcon_h1",
        "minimax",
        "olmo_hybrid",
        "lfm2",
        "lfm2_moe",
        "qwen3_5_moe",
        "qwen3_5",
        "mamba2",
        "bamba",
        "granitemoehybrid",
        "jamba",
        "qwen3_next",
        "zamba2",
        "nemotron_h",
    )
    assert preference()[-1] == "nemotron_h" and "zamba2" not in preference()


def test_nemotron_h_dense_is_nemotron_h_and_not_bamba() -> None:
    result = canonical_map(tiny("M-M*-MM-", mlp=RELU2))
    assert result.architecture == "nemotron_h"
    assert result.matched == ["nemotron_h"]
    bamba = result.reasons["bamba"]
    assert _has(bamba, "layers 2, 5 `M`", "no FFN of its own")  # `M*` and the `MM` run
    assert _has(bamba, "`-`", "`gate_proj`", "`gate_mul`", "the model does not")  # not gated
    assert _has(bamba, "`act` fn is relu2, bamba's is silu")
    assert _has(bamba, "layer 3 `*`", "bamba has `rope` rope(theta=10000, partial_factor=0.5)")
    assert result.reasons.get("zamba2")
    assert set(result.reasons) == set(candidates()) - {"nemotron_h"}


def test_pure_mamba_is_mamba2_and_nemotron_h_too() -> None:
    spec = tiny("MMMM", hidden=64)  # inner 128 = 2 x 64
    result = canonical_map(spec)
    assert result.architecture == "mamba2"
    assert result.matched == ["mamba2", "nemotron_h"]
    assert result.reasons["nemotron_h"] == []  # exact as well, but less specific
    # nemotron_h can only clamp dt from below (time_step_min, inf); mamba2 takes any time_step_limit
    capped = spec.model_copy(update={"mamba": spec.mamba.model_copy(update={"time_step_limit": (0.0, 0.1)})})  # type: ignore[union-attr]
    result = canonical_map(capped)
    assert result.architecture == "mamba2"
    assert _has(result.reasons["nemotron_h"], "`ssm` dt_limit is (0, 0.1), nemotron_h's is (0, inf)")
    # tied embeddings: Mamba2 ties, NemotronHForCausalLM never does (_tied_weights_keys = {})
    tied = spec.model_copy(update={"tie_embeddings": True})
    result = canonical_map(tied)
    assert result.architecture == "mamba2"
    assert _has(result.reasons["nemotron_h"], "output head", "`lm_head` tied is True, nemotron_h's is False")


def test_non_integer_expand_is_not_mamba2() -> None:
    spec = tiny("MM", hidden=48)  # inner 128 is not k x 48
    result = canonical_map(spec)
    assert result.architecture == "nemotron_h"
    assert _has(result.reasons["mamba2"], "not an integer multiple of hidden_size 48")


def test_bamba_shaped_is_bamba() -> None:
    spec = tiny("M-M-*-M-", mlp=SWIGLU, rope=RopeSpec(theta=10000.0, partial_factor=0.5))
    result = canonical_map(spec)
    assert result.architecture == "bamba"
    assert "nemotron_h" not in result.matched
    nemo = result.reasons["nemotron_h"]
    assert _has(nemo, "`*`", "the model has `rope`")
    assert _has(nemo, "`-`", "`gate_proj`", "nemotron_h has no such node")
    expression = families.get("bamba").express(spec)
    assert expression.config["attn_layer_indices"] == [2]
    assert expression.config["num_hidden_layers"] == 4


@pytest.mark.parametrize("activation", ["gelu", "relu2"])
def test_mutation_removes_the_claim_and_names_the_attribute(activation: str) -> None:
    mlp = SWIGLU.model_copy(update={"activation": activation})
    spec = tiny("M-*-", mlp=mlp, rope=RopeSpec(theta=1e4, partial_factor=0.5))
    result = canonical_map(spec)
    assert result.architecture != "bamba"
    assert _has(result.reasons["bamba"], "`act` fn is " + activation, "bamba's is silu")


def test_mutation_rope_factor_and_scale() -> None:
    spec = tiny("M-*-", mlp=SWIGLU, rope=RopeSpec(theta=1e4, partial_factor=0.5))
    assert canonical_map(spec).architecture == "bamba"
    scaled = tiny("M-*-", mlp=SWIGLU, rope=RopeSpec(theta=1e4, partial_factor=0.5), scale=0.5)
    result = canonical_map(scaled)
    assert result.architecture != "bamba"
    assert _has(result.reasons["bamba"], "`sdpa` scale is 0.5, bamba's is 0.25")


def test_granite_shaped_is_granitemoehybrid() -> None:
    spec = tiny("M-M-*-", mlp=SWIGLU, embedding_multiplier=12.0, residual_multiplier=0.22, logits_scaling=8.0)
    result = canonical_map(spec)
    assert result.architecture == "granitemoehybrid"
    assert _has(result.reasons["bamba"], "embedding", "`embedding_scale` factor is 12, bamba's is 1")
    moe = tiny("ME*E", moe=GRANITE_MOE, rope=RopeSpec(theta=1e4))
    result = canonical_map(moe)
    assert result.architecture == "granitemoehybrid"
    sigmoid = tiny("ME*E", moe=GRANITE_MOE.model_copy(update={"router": "sigmoid"}), rope=RopeSpec(theta=1e4))
    result = canonical_map(sigmoid)
    assert result.architecture is None  # nemotron_h: non-gated experts only, no RoPE
    assert _has(result.reasons["granitemoehybrid"], "`topk` score is sigmoid, granitemoehybrid's is softmax")
    assert _has(result.reasons["nemotron_h"], "the model has `rope`")


def test_kinds_nobody_has_give_null() -> None:
    spec = tiny("M-D-", mlp=RELU2)
    result = canonical_map(spec)
    assert result.architecture is None
    assert _has(result.reasons["nemotron_h"], "layer 2 `D`", "nemotron_h has no DeepSeek sparse attention layer")


def test_mtp_only_nemotron_h() -> None:
    spec = tiny("M-M-", mlp=RELU2).model_copy(update={"pattern": make_pattern("M-M-", mtp="*-", depths=1)})
    result = canonical_map(spec)
    assert result.architecture == "nemotron_h"
    assert _has(result.reasons["bamba"], "MTP block `*-` x1: bamba has no multi-token prediction")


def test_claims_are_isomorphic_block_by_block() -> None:
    for spec in (tiny("MMMM"), tiny("M-*-", mlp=SWIGLU, rope=RopeSpec(theta=1e4, partial_factor=0.5))):
        result = canonical_map(spec)
        assert result.architecture is not None
        blocks = lower_spec(spec)
        expression = families.get(result.architecture).express(spec)
        assert [i for i, _ in expression.blocks] == list(range(len(blocks)))
        assert all(isomorphic(blocks[i], b) for i, b in expression.blocks if i is not None)


def test_networkx_is_not_imported_by_patternc() -> None:
    code = "import sys, patternc, patternc.canonical; print('networkx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


# -- the debate table ---------------------------------------------------------------------------------


def fixture_specs() -> dict[str, ModelSpec]:
    return {name: nemotron_spec(HUB / folder / "config.json") for name, folder in FIXTURES.items()}


def render_debate_table() -> str:
    lines = ["| checkpoint | canonical | Bamba | GraniteMoeHybrid |", "|---|---|---|---|"]
    for name, spec in fixture_specs().items():
        result = canonical_map(spec)
        cells = []
        for arch in ("bamba", "granitemoehybrid"):
            reasons = result.reasons.get(arch, [])
            cells.append("exact" if not reasons else "<br>".join(f"✗ {r}" for r in reasons).replace("|", "\\|"))
        lines.append(f"| {name} | `{result.architecture}` | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def test_fixture_results() -> None:
    for spec in fixture_specs().values():
        result = canonical_map(spec)
        assert result.architecture == "nemotron_h"
        assert result.matched == ["nemotron_h"]
        assert result.reasons["bamba"] and result.reasons["granitemoehybrid"]


def test_doc_table_matches_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- debate-table:start -->\n(.*?)\n<!-- debate-table:end -->", text, re.S)
    assert match, "docs/canonical.md lost its debate-table markers"
    assert match.group(1) == render_debate_table(), "regenerate with: python -m tests.core.test_canonical"


def test_config_reader_agrees_when_present() -> None:
    config = pytest.importorskip("patternc.config")
    for folder in FIXTURES.values():
        spec = config.read_config(HUB / folder / "config.json").spec
        assert canonical_map(spec).architecture == "nemotron_h"


if __name__ == "__main__":
    print(render_debate_table())
