"""`build --target megatron` and `check --pp` against Megatron-Core 0.19.2's own code.

Every argument list patternc writes goes through Megatron's ``parse_args``, ``validate_args`` and
``hybrid_config_from_args`` (the ``TransformerConfig`` checks included), and the resulting config
is compared, field by field, with the model patternc read; the pipeline rules of ``check --pp``
are compared with Megatron's training and model-builder verdicts over a generated corpus.  How
Megatron's code is called here (Python 3.11, no distributed launch) is in ``tests/megatron_oracle.py``.
Skipped where megatron-core (and triton beside it) is not installed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patternc.analysis import pipeline_diagnostics
from patternc.api import parse
from patternc.cli import app
from patternc.config import read_config
from patternc.diagnostics import has_errors
from patternc.engines import megatron_arguments, megatron_command_line
from patternc.model import ModelSpec
from patternc.presets import TINY_NEMOTRON_H, preset_config

oracle = pytest.importorskip(
    "tests.megatron_oracle", reason="megatron-core 0.19.2 (with triton) is not installed", exc_type=ImportError
)

HUB = Path(__file__).parents[1] / "fixtures" / "hub"
FIXTURES = sorted(HUB.glob("*/config.json")) + sorted((HUB.parent / "megatron").glob("*/config.json"))
"""The hub fixtures, and Nemotron 3 Ultra (latent MoE and an MTP block) kept apart from them."""


def _pattern_spec(text: str, **overrides: Any) -> ModelSpec:
    """The spec `patternc build PATTERN` builds (transformers' Nemotron-H defaults at build size)."""
    spec = read_config(preset_config(parse(text), TINY_NEMOTRON_H, overrides), origin="<pattern config>").spec
    assert spec is not None
    return spec


def _fixture_spec(path: Path) -> ModelSpec:
    spec = read_config(path).spec
    assert spec is not None
    return spec


def _assert_same_model(spec: ModelSpec, args: Any, config: Any) -> None:
    """Megatron's config builds ``spec``: every size, flavour and flag that shapes a parameter."""
    t = config.transformer
    pattern = spec.pattern
    main, _, mtp = config.hybrid_layer_pattern.partition("/")
    assert main.replace("|", "") == pattern.flat
    assert mtp.split("/") == ([pattern.mtp.flat] * pattern.mtp.depths if pattern.mtp else [""])
    assert (t.num_layers, t.hidden_size, config.vocab_size) == (pattern.num_layers, spec.hidden_size, spec.vocab_size)
    assert not config.should_pad_vocab  # the embedding has exactly vocab_size rows
    assert config.share_embeddings_and_output_weights == spec.tie_embeddings
    assert config.position_embedding_type == "none"
    assert (t.normalization, t.layernorm_epsilon) == ("RMSNorm", spec.norm.eps)
    assert t.add_bias_linear is False and (t.hidden_dropout, t.attention_dropout) == (0.0, 0.0)
    assert t.mtp_num_layers == (pattern.mtp.depths if pattern.mtp else None)
    used = set(pattern.flat) | set(pattern.mtp.flat if pattern.mtp else "")
    if "*" in used:
        a = spec.attention
        assert a is not None
        assert (t.num_attention_heads, t.num_query_groups, t.kv_channels) == (a.num_heads, a.num_kv_heads, a.head_dim)
        assert t.add_qkv_bias == a.qkv_bias
    if "M" in used:
        m = spec.mamba
        assert m is not None
        assert (t.mamba_num_heads, t.mamba_head_dim, t.mamba_state_dim, t.mamba_num_groups) == (
            m.num_heads,
            m.head_dim,
            m.state_size,
            m.n_groups,
        )
    ffn_activations = set()
    if "-" in used:
        assert spec.mlp is not None and t.ffn_hidden_size == spec.mlp.intermediate_size
        ffn_activations.add((spec.mlp.activation, spec.mlp.gated))
    if "E" in used:
        e = spec.moe
        assert e is not None
        assert (t.num_moe_experts, t.moe_router_topk, t.moe_ffn_hidden_size) == (
            e.num_experts,
            e.top_k,
            e.intermediate_size,
        )
        assert t.moe_shared_expert_intermediate_size == (e.shared_intermediate_size or None)
        assert (t.moe_router_score_function, t.moe_router_enable_expert_bias) == (e.router, e.score_correction_bias)
        assert (t.moe_router_topk_scaling_factor or 1.0) == e.routed_scaling_factor
        assert t.moe_latent_size == e.latent_size
        ffn_activations.add((e.expert_activation, e.expert_gated))
    if ffn_activations:
        ((activation, gated),) = ffn_activations
        megatron = {"squared_relu": "relu2", "silu": "silu", "gelu": "gelu"}[t.activation_func.__name__]
        assert (megatron, t.gated_linear_unit) == (activation, gated)
    assert args.virtual_pipeline_model_parallel_size is None or args.num_virtual_stages_per_pipeline_rank is None


# (case id, spec, pp, vpp): dense, MoE, MTP, pipeline-split, a pattern starting with `-`,
# no attention at all, relu² MoE only, and the published configs.
CASES: list[tuple[str, Any, int, int]] = [
    ("dense", lambda: _pattern_spec("M-M*-"), 1, 1),
    ("moe", lambda: _pattern_spec("MEM*E"), 1, 1),
    ("mtp", lambda: _pattern_spec("MEM*E/*E"), 1, 1),
    ("mtp-two-depths", lambda: _pattern_spec("M-M*-/*-/*-"), 1, 1),
    ("pp4", lambda: _pattern_spec("(M-M*-){4}"), 4, 1),
    ("pp2-vpp2", lambda: _pattern_spec("(M-M*-){4}"), 2, 2),
    ("pp2-vpp3-mtp", lambda: _pattern_spec("(MEM*E){3}/*E"), 2, 3),
    ("leading-dash", lambda: _pattern_spec("-M*M-"), 1, 1),
    ("no-attention", lambda: _pattern_spec("M-M-"), 1, 1),
    ("relu2-moe-only", lambda: _pattern_spec("MEMEME"), 1, 1),
    ("gelu", lambda: _pattern_spec("M-M*-", mlp_hidden_act="gelu"), 1, 1),
    *[
        (f"{path.parent.name}-pp{pp}-vpp{vpp}", lambda p=path: _fixture_spec(p), pp, vpp)
        for path in FIXTURES
        for pp, vpp in ((1, 1), (4, 2))
    ],
]


@pytest.mark.parametrize(("make", "pp", "vpp"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_emitted_argument_list_passes_megatrons_validation(make: Any, pp: int, vpp: int) -> None:
    spec = make()
    args, problems = megatron_arguments(spec, pp, vpp)
    assert args is not None, problems
    argv = megatron_command_line(args)
    parsed, config = oracle.validate(argv)
    _assert_same_model(spec, parsed, config)
    assert parsed.pipeline_model_parallel_size == pp
    assert (parsed.virtual_pipeline_model_parallel_size or 1) == vpp  # derived from the `|` segments


def test_the_defects_megatron_refused_are_gone() -> None:
    """Each argument list of the issue: what Megatron refused (or built wrong) before, checked alone."""
    args, _ = megatron_arguments(_pattern_spec("(M-M*-){4}"), pp=2, vpp=2)
    assert args is not None and "num-virtual-stages-per-pipeline-rank" not in args
    args, _ = megatron_arguments(_pattern_spec("-M*M-"), 1, 1)
    assert args is not None and megatron_command_line(args)[0] == "--hybrid-layer-pattern=-M*M-"
    args, _ = megatron_arguments(_pattern_spec("M-M-"), 1, 1)
    assert args is not None and "num-attention-heads" in args
    args, _ = megatron_arguments(_pattern_spec("MEMEME"), 1, 1)
    assert args is not None and args["squared-relu"] is True and args["disable-bias-linear"] is True
    # the old spelling of each, refused by Megatron itself
    with pytest.raises(oracle.MegatronRefused, match="num-virtual-stages-per-pipeline-rank"):
        oracle.validate([*megatron_command_line(args), "--num-virtual-stages-per-pipeline-rank=2"])
    with pytest.raises(oracle.MegatronRefused, match="argparse"):
        oracle.validate(["--hybrid-layer-pattern", "-M*M-", *megatron_command_line(args)[1:]])


def test_fixtures_build_megatron_arguments_that_validate(tmp_path: Path) -> None:
    """End to end from the CLI: the JSON document's command line is what Megatron validates."""
    for path in FIXTURES:
        out = tmp_path / path.parent.name
        result = CliRunner().invoke(app, ["build", str(path), "-o", str(out), "--target", "megatron", "--pp", "2"])
        assert result.exit_code == 0, result.output
        document = json.loads((out / "megatron_args.json").read_text())
        parsed, config = oracle.validate(document["command_line"])
        _assert_same_model(_fixture_spec(path), parsed, config)


def test_a_split_megatron_cannot_run_is_refused() -> None:
    """--vpp 2 on one rank: patternc refuses (P107) the two segments Megatron's training refuses."""
    spec = _pattern_spec("(M-M*-){2}")
    args, problems = megatron_arguments(spec, pp=1, vpp=2)
    assert args is None and [d.code for d in problems if d.severity == "error"] == ["P107"]
    assert oracle.pipeline_verdict("M-M*-|M-M*-", 1, None) is not None


def _corpus(seed: int, size: int) -> list[tuple[str, int, int | None]]:
    """Unified patterns with 1-8 `|` segments (some empty), some with MTP, and (pp, vpp) requests."""
    rng = random.Random(seed)
    cases: set[tuple[str, int, int | None]] = set()
    while len(cases) < size:
        segments = rng.choice([1, 1, 2, 3, 4, 6, 8])
        sizes = [rng.choice([0, 1, 1, 2, 3]) for _ in range(segments)]
        main = "|".join("".join(rng.choice("M*-E") for _ in range(size)) for size in sizes)
        if not main.replace("|", "") or main == "--":
            continue  # no layer: P101 before any pipeline rule; `--`: see P108
        cases.add((main + rng.choice(["", "", "/*E"]), rng.choice([1, 1, 2, 3, 4]), rng.choice([None, None, 1, 2, 3])))
    return sorted(cases, key=str)


def test_check_pp_agrees_with_megatron_on_a_generated_corpus() -> None:
    """`check --pp K [--vpp V]` errors exactly where Megatron's training or model builder refuses."""
    disagreements = []
    corpus = _corpus(seed=20261203, size=400)
    for text, pp, vpp in corpus:
        ours = has_errors(pipeline_diagnostics(parse(text, dialect="megatron"), pp, vpp))
        theirs = oracle.pipeline_verdict(text, pp, vpp)
        if ours != (theirs is not None):
            disagreements.append((text, pp, vpp, theirs))
    assert not disagreements
    refused = sum(oracle.pipeline_verdict(*case) is not None for case in corpus[:100])
    assert 10 < refused < 90  # the corpus exercises both verdicts
