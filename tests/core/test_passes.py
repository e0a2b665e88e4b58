"""The pass manager: order derived from requires/provides; errors on bad declarations; determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import patternc
from patternc.diagnostics import Diagnostic, diag
from patternc.lower import SourceMap
from patternc.passes import Context, Pass, default_passes, run_passes, schedule
from patternc.render import render_text
from patternc.summary import render_summary

ROOT = Path(__file__).resolve().parents[2]


def _noop(ctx: Context) -> Iterator[Diagnostic]:
    return iter(())


def p(name: str, requires: set[str] | None = None, provides: set[str] | None = None) -> Pass:
    return Pass(name, _noop, frozenset(requires or ()), frozenset(provides or ()))


def names(passes: list[Pass]) -> list[str]:
    return [x.name for x in passes]


def test_schedule_follows_requirements_not_list_order() -> None:
    passes = [p("c", {"b"}), p("a", provides={"a"}), p("b", {"a"}, {"b"})]
    assert names(schedule(passes)) == ["a", "b", "c"]
    assert names(schedule(list(reversed(passes)))) == ["a", "b", "c"]


def test_schedule_breaks_ties_by_name() -> None:
    passes = [p("zeta"), p("alpha"), p("mid", {"x"}), p("beta", provides={"x"})]
    assert names(schedule(passes)) == ["alpha", "beta", "zeta", "mid"]


def test_schedule_missing_provider() -> None:
    with pytest.raises(ValueError, match=r"pass needy requires \['family'\], which no pass provides"):
        schedule([p("needy", {"family"})])


def test_schedule_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        schedule([p("a", {"y"}, {"x"}), p("b", {"x"}, {"y"})])


def test_schedule_duplicate_provider() -> None:
    with pytest.raises(ValueError, match="provided by both"):
        schedule([p("a", provides={"x"}), p("b", provides={"x"})])


def test_default_passes_schedule() -> None:
    order = names(schedule(default_passes()))
    assert sorted(order) == sorted(x.name for x in default_passes())
    assert len(order) == len(set(order))
    assert order == sorted(order)  # no pass requires another today, so the order is by name


def test_facts_flow_to_later_passes() -> None:
    seen: list[object] = []

    def produce(ctx: Context) -> Iterator[Diagnostic]:
        ctx.facts["n"] = ctx.pattern.num_layers
        return iter(())

    def consume(ctx: Context) -> Iterator[Diagnostic]:
        seen.append(ctx.facts["n"])
        yield diag("P202", "found", None)

    ctx = Context(patternc.parse("M-M*-"), SourceMap())
    found = run_passes(
        ctx, [Pass("z-consume", consume, frozenset({"n"})), Pass("a", produce, provides=frozenset({"n"}))]
    )
    assert seen == [5]
    assert [d.code for d in found] == ["P202"]


def test_passes_collect_all() -> None:
    # P106 (error) does not stop the mixing and structure passes.
    found = patternc.analyze("*D-E").diagnostics
    assert sorted(d.code for d in found) == ["P106", "P201"]


def test_analysis_records_family() -> None:
    assert patternc.analyze("M-M*-").facts["family"] is patternc.Family.DENSE_HYBRID


FAMILIES = {
    "M-M*-": "dense_hybrid",
    "MEM*E": "moe_hybrid",
    "M-M*E": "mixed_hybrid",
    "MG*": "hybrid",
    "M-G-": "pure_ssm",
    "*-+": "pure_ssm",
    "*-": "pure_transformer",
    "-E": "ffn_only",
}


def test_classify() -> None:
    got = {}
    for text, family in FAMILIES.items():
        analysis = patternc.analyze(text)
        if analysis.pattern is None:
            continue
        got[text] = analysis.family.value if analysis.family else None
        assert got[text] == family, text
    assert set(got) == set(FAMILIES) - {"*-+"}


DETERMINISM_INPUTS = [
    "M-M*-",
    "M x|Y{0}/",
    "M*M*/MD",
    "-E-E+D*",
    "((M-){0}X)|/|/ |",
    "MEME/*E/ME/M/",
    "xyzzy ∗ m Ｍ 7 {3}",
]


def _render_all() -> str:
    out = []
    for text in DETERMINISM_INPUTS:
        for dialect in ("hf", "megatron", "patternc"):
            analysis = patternc.analyze(text, dialect)
            out.append(render_summary(analysis))
            out.append(render_text(analysis.diagnostics, analysis.source))
    return "\n".join(out)


def test_same_input_gives_byte_identical_text_in_process() -> None:
    assert _render_all() == _render_all()


def test_same_input_gives_byte_identical_text_across_hash_seeds() -> None:
    program = "from tests.core.test_passes import _render_all; import sys; sys.stdout.write(_render_all())"
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONIOENCODING": "utf-8"}
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, env=env, cwd=ROOT, timeout=120, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert outputs.pop().decode("utf-8") == _render_all()
