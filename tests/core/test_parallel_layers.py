"""Parallel layers (`[*M]`): fmt and the IR round-trip them, old ir.v1 documents still validate, and
every malformed bracket is a diagnostic with its span, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import patternc
from patternc.fmt import fmt
from patternc.ir import Pattern
from patternc.source import Span

TOKENS = st.sampled_from(["M", "*", "-", "E", "G", "[*M]", "[M*]", "[*G]", "[*MG]"])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(TOKENS, min_size=1, max_size=40), st.lists(TOKENS, max_size=4))
def test_fmt_and_the_ir_round_trip_parallel_layers(main: list[str], mtp: list[str]) -> None:
    text = "".join(main) + (f"/{''.join(mtp)}" if mtp else "")
    pattern = patternc.parse(text)
    assert pattern.spelled == tuple(main)
    assert len(pattern.layers) == len(main)
    short = fmt(pattern)
    assert patternc.parse(short) == pattern
    assert len(short) <= len(text)
    assert Pattern.model_validate_json(pattern.model_dump_json()) == pattern


def test_ir_v1_documents_without_the_field_still_validate() -> None:
    old = '{"schema_version":1,"layers":[{"index":0,"kind":"mamba2"},{"index":1,"kind":"mlp"}],'
    old += '"stages":[{"index":0,"start":0,"stop":2}],"mtp":null}'
    pattern = Pattern.model_validate_json(old)
    assert pattern == patternc.parse("M-") and not pattern.has_parallel
    assert '"parallel"' not in patternc.parse("M-*-").model_dump_json()  # an ordinary layer's JSON is unchanged


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet="[]()M*-{}2|/", min_size=1, max_size=12))
def test_any_bracket_soup_is_diagnosed_with_spans_inside_the_text(text: str) -> None:
    analysis = patternc.analyze(text)
    for d in analysis.diagnostics:
        assert d.span is None or (0 <= d.span.start <= d.span.end <= len(text)), (text, d)
    if analysis.pattern is not None:
        assert patternc.parse(fmt(analysis.pattern)) == analysis.pattern


def test_carets_of_bad_brackets() -> None:
    expected = {
        "[*": ("P008", Span(0, 1)),
        "*]": ("P008", Span(1, 2)),
        "[-*]": ("P019", Span(1, 2)),
        "[[*M]]": ("P019", Span(1, 5)),
        "[]": ("P019", Span(0, 2)),
    }
    for text, (code, span) in expected.items():
        found = patternc.analyze(text).diagnostics
        assert [(d.code, d.span) for d in found] == [(code, span)], text
