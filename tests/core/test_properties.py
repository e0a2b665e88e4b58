"""Property tests: valid patterns round-trip; any text gives an IR or diagnostics; one wrong
character is reported where it is."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import patternc
from patternc.codes import BY_CODE, Severity
from patternc.convert import to_layers_block_type
from patternc.ir import Pattern
from patternc.render import render_text
from patternc.report import build_report
from patternc.source import Source
from patternc.summary import render_summary
from patternc.syntax import trivia
from tests.strategies import (
    HF_ALPHABET,
    Generated,
    any_pattern,
    hf_patterns,
    megatron_patterns,
    pattern_like_text,
    patternc_patterns,
)

# --- (a) valid patterns parse, and round-trip through fmt, the IR and the list forms -----------


def _check_meaning(pattern: Pattern, gen: Generated) -> None:
    assert pattern.flat == gen.flat
    assert tuple(pattern.stage_strings()) == gen.stages
    assert pattern.num_layers == len(gen.flat)
    assert [layer.index for layer in pattern.layers] == list(range(len(gen.flat)))
    if gen.depths:
        assert pattern.mtp is not None
        assert (pattern.mtp.flat, pattern.mtp.depths) == (gen.mtp, gen.depths)
    else:
        assert pattern.mtp is None


@given(any_pattern)
def test_valid_pattern_parses_to_what_it_means(gen: Generated) -> None:
    analysis = patternc.analyze(gen.text, gen.dialect)
    assert analysis.ok, analysis.diagnostics
    assert all(d.severity is not Severity.ERROR for d in analysis.diagnostics)
    assert analysis.pattern is not None
    _check_meaning(analysis.pattern, gen)
    assert analysis.family is patternc.classify(analysis.pattern)


@given(any_pattern)
def test_round_trip_through_fmt(gen: Generated) -> None:
    pattern = patternc.parse(gen.text, gen.dialect)
    compact = patternc.fmt(pattern)
    assert patternc.parse(compact, "patternc") == pattern
    assert len(compact) <= len(gen.megatron)
    assert patternc.fmt(patternc.parse(compact)) == compact  # idempotent


@st.composite
def _long_megatron(draw: st.DrawFn) -> str:
    """Long unified strings with repeated units and runs of `|`: the greedy factoring's domain."""
    pieces = draw(
        st.lists(
            st.tuples(st.text(alphabet="M*-E||", min_size=1, max_size=8), st.integers(1, 30)), min_size=1, max_size=8
        )
    )
    return "M" + "".join(unit * count for unit, count in pieces)


@settings(max_examples=25)
@given(_long_megatron())
def test_round_trip_through_fmt_long_patterns(text: str) -> None:
    pattern = patternc.parse(text, "megatron")
    compact = patternc.fmt(pattern)
    assert patternc.parse(compact) == pattern
    assert len(compact) <= len(text)


@given(any_pattern)
def test_round_trip_through_megatron_and_flat(gen: Generated) -> None:
    pattern = patternc.parse(gen.text, gen.dialect)
    unified = patternc.to_megatron(pattern)
    assert unified == gen.megatron
    assert patternc.from_megatron(unified) == pattern
    flat = patternc.parse(pattern.flat, "megatron")
    assert flat.flat == pattern.flat and len(flat.stages) == 1 and flat.mtp is None


@given(any_pattern)
def test_round_trip_through_ir_json(gen: Generated) -> None:
    pattern = patternc.parse(gen.text, gen.dialect)
    assert Pattern.model_validate_json(pattern.model_dump_json()) == pattern
    assert Pattern.model_validate(pattern.model_dump()) == pattern


@given(hf_patterns())
def test_hf_round_trip_through_both_list_vocabularies(gen: Generated) -> None:
    pattern = patternc.parse(gen.text, "hf")
    assert patternc.parse(pattern.flat, "hf") == pattern
    for vocabulary in patternc.Vocabulary:
        names = patternc.to_layers_block_type(pattern.flat, vocabulary)
        assert len(names) == len(gen.text)
        assert patternc.from_layers_block_type(names) == pattern


@given(st.one_of(megatron_patterns(HF_ALPHABET), patternc_patterns(HF_ALPHABET)))
def test_list_forms_round_trip_when_every_kind_has_a_name(gen: Generated) -> None:
    assert set(gen.flat + gen.mtp) <= set(HF_ALPHABET)
    pattern = patternc.parse(gen.text, gen.dialect)
    names = to_layers_block_type(pattern.flat)
    mtp_names = to_layers_block_type(pattern.mtp.flat) if pattern.mtp else []
    back = patternc.from_layers_block_type(names, mtp_names, pattern.mtp.depths if pattern.mtp else 1)
    assert back.flat == pattern.flat
    assert back.mtp == pattern.mtp
    assert len(back.stages) == 1  # lists carry no pipeline stages


@given(megatron_patterns())
def test_megatron_text_is_already_canonical(gen: Generated) -> None:
    assert patternc.to_megatron(patternc.parse(gen.text, "megatron")) == gen.text


@given(patternc_patterns())
def test_patternc_trivia_never_changes_the_meaning(gen: Generated) -> None:
    bare = patternc.parse(gen.megatron, "megatron")
    assert patternc.parse(gen.text, "patternc") == bare


# --- (b) any text yields an IR or diagnostics, never an exception -----------------------------


def _check_total(text: str, dialect: str) -> None:
    analysis = patternc.analyze(text, dialect)
    n = len(text)
    for d in analysis.diagnostics:
        assert d.code in BY_CODE, d
        assert d.severity is BY_CODE[d.code].severity
        assert d.message
        if d.span is not None:
            assert 0 <= d.span.start <= d.span.end <= n, (d, n)
        for label in d.secondary:
            assert 0 <= label.span.start <= label.span.end <= n, (label, n)
    has_errors = any(d.severity is Severity.ERROR for d in analysis.diagnostics)
    assert analysis.ok is (not has_errors)
    assert (analysis.pattern is None) is has_errors
    # Everything downstream of analyze must be total too.
    render_text(analysis.diagnostics, analysis.source)
    render_summary(analysis)
    report = build_report(analysis)
    assert report.ok is analysis.ok


@given(st.text(), st.sampled_from(["hf", "megatron", "patternc"]))
def test_any_unicode_text_gives_ir_or_diagnostics(text: str, dialect: str) -> None:
    _check_total(text, dialect)


@given(pattern_like_text, st.sampled_from(["hf", "megatron", "patternc"]))
def test_pattern_like_text_gives_ir_or_diagnostics(text: str, dialect: str) -> None:
    _check_total(text, dialect)


@given(pattern_like_text)
def test_parse_raises_only_pattern_error(text: str) -> None:
    try:
        pattern = patternc.parse(text)
    except patternc.PatternError as error:
        assert error.diagnostics
        assert any(d.severity is Severity.ERROR for d in error.diagnostics)
        assert str(error)  # rendering never fails
    else:
        assert isinstance(pattern, Pattern)


# --- (c) one wrong character is reported where it was inserted --------------------------------

WRONG = ["X", "m", "∗", "7", "x", "Q", "é", "Ｍ"]


def _in_comment(text: str, offset: int) -> bool:
    return any(tok.type == "COMMENT" and tok.start_pos < offset <= tok.end_pos for tok in trivia(Source(text)))


@given(any_pattern, st.sampled_from(WRONG), st.data())
def test_one_wrong_character_is_reported_at_its_offset(gen: Generated, char: str, data: st.DataObject) -> None:
    text = gen.text
    offset = data.draw(st.integers(0, len(text)), label="offset")
    assume(not _in_comment(text, offset))  # a comment may hold anything
    if char.isdigit():  # a digit next to a count changes the count, which is still valid
        assume(not text[offset - 1 : offset].isdigit() and not text[offset : offset + 1].isdigit())
    bad = text[:offset] + char + text[offset:]
    analysis = patternc.analyze(bad, gen.dialect)
    assert not analysis.ok
    assert analysis.pattern is None
    errors = [d for d in analysis.diagnostics if d.severity is Severity.ERROR]
    assert any(d.span is not None and d.span.start <= offset < d.span.end for d in errors), (bad, errors)


@given(hf_patterns(), st.sampled_from(WRONG), st.data())
def test_wrong_character_in_flat_pattern_is_the_only_error(gen: Generated, char: str, data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, len(gen.text)), label="offset")
    bad = gen.text[:offset] + char + gen.text[offset:]
    errors = [d for d in patternc.analyze(bad, "hf").diagnostics if d.severity is Severity.ERROR]
    assert [(d.code, d.span.start, d.span.end) for d in errors if d.span] == [("P001", offset, offset + 1)]
