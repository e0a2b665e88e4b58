"""``patternc.analysis``: the split against brute force, Megatron's pipeline rules, gen, the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.analysis import (
    even_pattern,
    generate,
    megatron_pattern_from_ratios,
    optimal_partition,
    pipeline_diagnostics,
)
from patternc.analysis.pipeline import stage_costs
from patternc.api import analyze
from patternc.cli import app
from patternc.kinds import Role, kinds

NANO = str(Path(__file__).resolve().parents[1] / "fixtures" / "hub" / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")


def brute_force(costs: list[int], stages: int, first: int, last: int, *, nonempty: bool = False) -> int:
    n = len(costs)
    best = None
    for cuts in itertools.combinations_with_replacement(range(n + 1), stages - 1):
        bounds = [0, *cuts, n]
        sizes = [bounds[i + 1] - bounds[i] for i in range(stages)]
        if nonempty and min(sizes) == 0:
            continue
        worst = max(stage_costs(costs, sizes, first, last))
        best = worst if best is None else min(best, worst)
    assert best is not None
    return best


@given(
    st.lists(st.integers(0, 50), max_size=8),
    st.integers(1, 4),
    st.integers(0, 60),
    st.integers(0, 60),
)
@settings(max_examples=300, deadline=None)
def test_split_is_optimal_against_brute_force(costs: list[int], stages: int, first: int, last: int) -> None:
    result = optimal_partition(costs, stages, first=first, last=last)
    assert sum(result.sizes) == len(costs) and len(result.sizes) == stages
    assert result.costs == stage_costs(costs, result.sizes, first, last)
    assert result.max_cost == brute_force(costs, stages, first, last)


def test_split_examples() -> None:
    assert optimal_partition([1] * 8, 3).sizes == (3, 3, 2)
    assert optimal_partition([5, 1, 1, 1, 1, 1], 2).sizes == (1, 5)
    assert optimal_partition([1, 1, 1, 1], 2, first=2).sizes == (1, 3)
    assert optimal_partition([], 2).sizes == (0, 0)
    assert optimal_partition([4, 4], 2).imbalance == 0.0


def _pattern(text: str):  # type: ignore[no-untyped-def]
    analysis = analyze(text, "megatron")
    assert analysis.pattern is not None
    return analysis.pattern, analysis.source_map.pipes


def _codes(text: str, pp: int, vpp: int | None = None) -> list[str]:
    pattern, pipes = _pattern(text)
    return [d.code for d in pipeline_diagnostics(pattern, pp, vpp, pipes=pipes)]


def test_pipeline_rules() -> None:
    assert _codes("M*M*|M*M*", 2) == []
    assert _codes("M*M*|M*M*|M*|M*", 2) == []
    assert _codes("M*M*|M*M*|M*|M*", 2, 2) == []
    assert _codes("M*|M*|M*", 2) == ["P602"]
    assert _codes("M*|M*|M*|M*", 2, 3) == ["P603"]
    assert _codes("M*M*", 1) == []
    assert _codes("M*M*", 2) == ["P604"]
    assert _codes("M*M*M", 2) == ["P604", "P605"]
    assert _codes("M*M*", 2, 2) == ["P604", "P606"]
    assert _codes("M*M*", 1, 2) == ["P606"]
    assert _codes("||M*", 3) == []  # empty segments are allowed (Megatron: for balancing)
    pattern, pipes = _pattern("M*|M*|M*")
    (problem,) = pipeline_diagnostics(pattern, 2, pipes=pipes)
    assert problem.span is not None and problem.span.start == 2


def test_megatron_pattern_from_ratios_known_outputs() -> None:
    """Cases executed against Megatron-Core (peer-survey §1.6)."""
    assert megatron_pattern_from_ratios(3, 0.5, 0.5) == "*-*"
    assert megatron_pattern_from_ratios(2, 0.25, 0.25) == "MM"
    assert megatron_pattern_from_ratios(10, 0.0, 0.0) == "M" * 10


@given(st.integers(1, 80), st.floats(0, 1), st.floats(0, 1), st.booleans())
@settings(max_examples=300, deadline=None)
def test_gen_counts_are_exact_or_reported(n: int, attention: float, mlp: float, megatron: bool) -> None:
    result = generate(n, attention, mlp, megatron_compatible=megatron, layout="spread")
    a, m = round(n * attention), round(n * mlp)
    codes = {d.code for d in result.diagnostics if d.severity.value == "error"}
    if attention + mlp > 1 or a + m > n:
        assert result.pattern is None and "P607" in codes
        return
    if result.pattern is None:  # only Megatron's own miscount
        assert megatron and codes == {"P608"}
        text = megatron_pattern_from_ratios(n, attention, mlp)
        assert (text.count("*"), text.count("-")) != (a, m)
        return
    assert len(result.pattern) == n
    assert result.pattern.count("*") == a and result.pattern.count("-") == m
    if megatron:
        assert result.pattern == megatron_pattern_from_ratios(n, attention, mlp)


def test_even_pattern_spreads() -> None:
    assert even_pattern(8, 2, 0) == "MM*MMM*M"
    assert even_pattern(4, 0, 2, mlp_symbol="E") == "MEME"
    assert even_pattern(3, 1, 2) == "-*-"


runner = CliRunner()


def test_stats_json_nano() -> None:
    result = runner.invoke(app, ["stats", NANO, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["params"]["total"] == 31_577_940_288
    assert round(data["params"]["active_without_embedding"] / 1e9, 1) == 3.2
    assert round(data["params"]["active"] / 1e9, 1) == 3.6
    assert data["params"]["mtp"] == 0
    assert set(data["flops_per_token"]) >= {"prefill", "decode"}
    assert set(data["memory_bytes"]) >= {"weights", "kv_cache", "ssm_state"}
    assert data["memory_bytes"]["weights"] == 2 * 31_577_940_288
    # 6 attention layers x 2 (K, V) x 2 kv heads x 128 x 4096 tokens x 2 bytes
    assert data["memory_bytes"]["kv_cache"] == 6 * 2 * 2 * 128 * 4096 * 2
    assert len(data["layers"]) == 52


def test_stats_state_is_independent_of_context_and_kv_grows() -> None:
    short = json.loads(runner.invoke(app, ["stats", NANO, "--json", "--seq-len", "1000"]).stdout)
    long = json.loads(runner.invoke(app, ["stats", NANO, "--json", "--seq-len", "2000", "--batch", "1"]).stdout)
    assert short["memory_bytes"]["ssm_state"] == long["memory_bytes"]["ssm_state"]
    assert 2 * short["memory_bytes"]["kv_cache"] == long["memory_bytes"]["kv_cache"]
    assert long["flops_per_token"]["decode"] > short["flops_per_token"]["decode"]


def test_stats_bare_pattern_with_mtp() -> None:
    result = runner.invoke(app, ["stats", "M-M*E/*E/*E", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["defaults"] is True and data["pattern"] == "M-M*E/*E/*E"
    h = 64  # the bare-pattern default hidden_size (build's PATTERN_DEFAULTS)
    mtp = data["mtp"]
    assert mtp["depths"] == 2 and mtp["overhead_per_depth"] == 2 * h * h + 3 * h
    assert data["params"]["mtp"] == 2 * mtp["params_per_depth"]
    attention, moe = (data["layers"][3]["params"], data["layers"][4]["params"])
    assert mtp["params_per_depth"] == mtp["overhead_per_depth"] + attention + moe
    text = runner.invoke(app, ["stats", "M-M*E/*E/*E"]).stdout
    assert "bare-pattern defaults" in text and "mtp" in text


def test_stats_errors() -> None:
    result = runner.invoke(app, ["stats", "M-G-"])
    assert result.exit_code == 1 and "[P601]" in result.output
    result = runner.invoke(app, ["stats", "M-X-"])
    assert result.exit_code == 1 and "[P001]" in result.output


def test_split_cli() -> None:
    result = runner.invoke(app, ["split", NANO, "--pp", "4"])
    assert result.exit_code == 0, result.output
    assert "pattern   MEMEM*EMEMEM*|EMEMEM*EMEMEM*|EMEMEM*EMEMEM|EM*EMEMEMEME" in result.stdout
    assert "imbalance" in result.stdout
    result = runner.invoke(app, ["split", "M-M*-M-M*-/*E", "--pp", "2", "--vpp", "2", "--cost", "flops"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("pattern"))
    assert line.count("|") == 3 and line.endswith("/*E")


@pytest.mark.parametrize(
    ("args", "out"),
    [
        (["--layers", "8", "--attention", "0.25"], "MM*MMM*M"),
        (["--layers", "4", "--attention", "0", "--mlp", "0.5", "--moe"], "MEME"),
        (["--layers", "4", "--attention", "0", "--mlp", "0.5", "--moe", "--layout", "spread"], "MEME"),
        (["--layers", "6", "--attention", "0.17", "--mlp", "0.5"], "M-*-M-"),
        (["--layers", "10", "--attention", "0.2", "--mlp", "0.4", "--megatron-compatible"], None),
    ],
)
def test_gen_cli(args: list[str], out: str | None) -> None:
    result = runner.invoke(app, ["gen", *args])
    assert result.exit_code == 0, result.output
    if out is not None:
        assert result.stdout.strip() == out
    else:
        assert result.stdout.strip() == megatron_pattern_from_ratios(10, 0.2, 0.4)


@given(
    st.integers(1, 40),
    st.floats(0, 0.5),
    st.floats(0, 0.5),
    st.sampled_from([d.symbol for d in kinds() if d.role is Role.SSM]),
    st.sampled_from([d.symbol for d in kinds() if d.role is Role.ATTENTION]),
    st.sampled_from(["blocks", "spread"]),
)
@settings(max_examples=100, deadline=None)
def test_gen_mixer_and_attention_kind_respell_the_same_placement(
    n: int, attention: float, mlp: float, mixer: str, attention_kind: str, layout: str
) -> None:
    """``--mixer`` / ``--attention-kind`` change the symbols, never the placement, and the result
    reads back through the patternc dialect with the requested counts."""
    plain = generate(n, attention, mlp, layout=layout)
    spelled = generate(n, attention, mlp, layout=layout, mixer=mixer, attention_kind=attention_kind)
    assert [d.code for d in spelled.diagnostics] == [d.code for d in plain.diagnostics]
    if plain.pattern is None:
        assert spelled.pattern is None
        return
    assert spelled.pattern is not None
    assert spelled.pattern == plain.pattern.translate(str.maketrans({"M": mixer, "*": attention_kind}))
    assert spelled.pattern.count(attention_kind) == spelled.attention
    assert not analyze(spelled.pattern, "patternc").diagnostics


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--mixer", "X"], "P607", "--mixer is 'X', which is not the symbol of a linear-time mixer kind"),
        (["--mixer", "*"], "P607", "--mixer is '*'"),
        (["--attention-kind", "M"], "P607", "--attention-kind is 'M', which is not the symbol of an attention kind"),
    ],
)
def test_gen_refuses_a_symbol_of_the_wrong_role(args: list[str], code: str, message: str) -> None:
    result = runner.invoke(app, ["gen", "--layers", "8", "--attention", "0.25", *args])
    assert result.exit_code == 1
    assert f"[{code}]" in result.output and message in result.output


def test_gen_cli_qwen3_next_and_kimi_linear_stacks() -> None:
    args = ["gen", "--layers", "12", "--attention", "0.25", "--mlp", "0.5", "--moe", "--mixer", "G"]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout.strip()) == (0, "GE*EGE*EGE*E")
    args = ["gen", "--layers", "8", "--attention", "0.25", "--mixer", "K", "--attention-kind", "+", "--mtp", "1"]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stdout.strip()) == (0, "KK+KKK+K/+-")
