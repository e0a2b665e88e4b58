"""Input bounds: sizes are checked before expansion, nesting is bounded, text length is bounded."""

from __future__ import annotations

import time
import tracemalloc

import pytest

import patternc
from patternc.limits import DEFAULT_LIMITS, Limits
from patternc.source import Span
from patternc.syntax import MAX_NESTING


def _measure(text: str, limits: Limits = DEFAULT_LIMITS) -> tuple[patternc.Analysis, float, int]:
    patternc.analyze("M")  # build the parser outside the measurement
    tracemalloc.start()
    started = time.perf_counter()
    try:
        analysis = patternc.analyze(text, limits=limits)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return analysis, elapsed, peak


def test_default_limits() -> None:
    assert (DEFAULT_LIMITS.max_layers, DEFAULT_LIMITS.max_chars, DEFAULT_LIMITS.max_diagnostics) == (
        100_000,
        100_000,
        200,
    )


@pytest.mark.parametrize(
    "text",
    ["(M){10000000000}", "M{10000000000}", "((M-){100000}){100000}", "M{" + "9" * 5000 + "}", "(M{99999}){2}/M"],
)
def test_huge_repetition_is_refused_before_expansion(text: str) -> None:
    analysis, elapsed, peak = _measure(text)
    assert [(d.code, d.span) for d in analysis.diagnostics] == [("P011", Span(0, len(text)))]
    assert analysis.pattern is None
    assert elapsed < 2.0
    assert peak < 20 * 1024 * 1024


def test_p011_message_counts() -> None:
    [d] = patternc.analyze("(M){10000000000}").diagnostics
    assert d.message == "the pattern expands to 10,000,000,000 layers, above the limit of 100,000"
    [d] = patternc.analyze("M{" + "9" * 40 + "}").diagnostics
    assert d.message == "the pattern expands to at least 10^30 layers, above the limit of 100,000"


def test_exactly_the_limit_is_accepted() -> None:
    assert patternc.analyze("M{100000}").pattern is not None
    assert [d.code for d in patternc.analyze("M{100001}").diagnostics] == ["P011"]
    assert [d.code for d in patternc.analyze("M{50000}/M{50001}").diagnostics] == ["P011"]  # MTP counts too
    # `|` is bounded too: it is expanded like a layer, so it must not escape the check.
    assert [d.code for d in patternc.analyze("M(|){10000000000}").diagnostics] == ["P011"]
    small = Limits(max_layers=10)
    assert patternc.analyze("(M-){5}", limits=small).ok
    assert [d.code for d in patternc.analyze("(M-){5}*", limits=small).diagnostics] == ["P011"]


def test_nesting_depth_limit() -> None:
    ok = "(" * MAX_NESTING + "M" + ")" * MAX_NESTING
    assert patternc.analyze(ok).ok
    deep = "(" * (MAX_NESTING + 1) + "M" + ")" * (MAX_NESTING + 1)
    found = patternc.analyze(deep).diagnostics
    assert [(d.code, d.span) for d in found] == [("P008", Span(MAX_NESTING, MAX_NESTING + 1))]
    assert found[0].message == f"groups are nested more than {MAX_NESTING} deep"


def test_pathological_nesting_is_fast() -> None:
    text = "(" * 49_000 + "M" + ")" * 49_000  # just under the 100,000-character limit
    analysis, elapsed, _ = _measure(text)
    assert [d.code for d in analysis.diagnostics] == ["P008"]
    assert elapsed < 5.0


def test_max_chars() -> None:
    text = "M" * 11
    found = patternc.analyze(text, limits=Limits(max_chars=10)).diagnostics
    assert [(d.code, d.span) for d in found] == [("P012", Span(0, 0))]
    assert found[0].message == "the pattern text has more than 10 characters, the limit"
    assert patternc.analyze("M" * 10, limits=Limits(max_chars=10)).ok


def test_max_chars_default_refuses_huge_text_quickly() -> None:
    analysis, elapsed, _ = _measure("M" * 1_000_001)
    assert [d.code for d in analysis.diagnostics] == ["P012"]
    assert elapsed < 1.0


def test_max_diagnostics() -> None:
    text = "Mx" * 300
    found = patternc.analyze(text).diagnostics
    assert len(found) == 201
    assert [d.code for d in found[:200]] == ["P001"] * 200
    assert found[-1].code == "P013"
    assert found[-1].message == "100 more diagnostics not shown (100 of them errors)"


def test_limit_sized_pattern_is_reasonably_fast() -> None:
    analysis, elapsed, _ = _measure("(M-M-M*-M){12500}")
    assert analysis.pattern is not None and analysis.pattern.num_layers == 100_000
    assert elapsed < 10.0
