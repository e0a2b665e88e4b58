"""One test per diagnostic code: the code, its severity and the exact span it points at."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import patternc
from patternc.cli import run_example
from patternc.codes import BY_CODE, BY_NAME, CODES, USAGE_CODES, Severity, lookup
from patternc.diagnostics import Diagnostic
from patternc.limits import Limits
from patternc.render import render_text
from patternc.source import Source, Span

ERROR, WARNING, NOTE = Severity.ERROR, Severity.WARNING, Severity.NOTE
EXERCISED: set[str] = set()
"""Codes asserted by a test in this module (checked against CODES at the end)."""


def diags(text: str, dialect: str = "patternc", **limits: int) -> list[Diagnostic]:
    return patternc.analyze(text, dialect, limits=Limits(**limits)).diagnostics


def only(text: str, dialect: str = "patternc", **limits: int) -> tuple[str, Severity, Span | None]:
    found = diags(text, dialect, **limits)
    assert len(found) == 1, found
    d = found[0]
    EXERCISED.add(d.code)
    return d.code, d.severity, d.span


def test_p001_unknown_symbol() -> None:
    assert only("M-M*X-") == ("P001", ERROR, Span(4, 5))
    assert only("M--XX-") == ("P001", ERROR, Span(3, 5))  # a run of one bad character is one diagnostic
    assert only("M-3M") == ("P001", ERROR, Span(2, 3))  # digits outside braces


def test_p001_reports_every_bad_character_and_suggests() -> None:
    found = diags("m∗XM")
    assert [(d.code, d.span) for d in found] == [("P001", Span(0, 1)), ("P001", Span(1, 2)), ("P001", Span(2, 3))]
    assert found[0].label == "did you mean `M`?"
    assert found[1].label == "did you mean `*`?"
    assert "U+2217" in found[1].message
    assert found[2].label == "unknown symbol"


def test_p002_symbol_not_in_dialect() -> None:
    assert only("M-G*-", "hf") == ("P002", ERROR, Span(2, 3))
    assert only("MDD", "hf") == ("P002", ERROR, Span(1, 3))
    assert patternc.analyze("M-G*-", "megatron").ok


def test_p003_whitespace_not_allowed() -> None:
    assert only("M- M*-", "megatron") == ("P003", ERROR, Span(2, 3))
    assert only("M-  \tM", "hf") == ("P003", ERROR, Span(2, 5))
    assert patternc.analyze("M- M*-", "patternc").ok


def test_p004_comment_not_allowed() -> None:
    found = diags("M-M*- # attention", "megatron")
    assert [(d.code, d.severity, d.span) for d in found] == [
        ("P003", ERROR, Span(5, 6)),
        ("P004", ERROR, Span(6, 17)),
    ]
    assert only("M-M*-#x", "hf") == ("P004", ERROR, Span(5, 7))
    EXERCISED.add("P004")


def test_p005_repetition_not_allowed() -> None:
    found = diags("(M-){2}M*-", "megatron")
    assert [(d.code, d.severity, d.span, d.label) for d in found] == [
        ("P005", ERROR, Span(0, 4), "group"),
        ("P005", ERROR, Span(4, 7), "repetition"),
    ]
    assert only("M{3}", "hf") == ("P005", ERROR, Span(1, 4))


def test_p006_pipe_not_allowed() -> None:
    assert only("M-M*|M-M*", "hf") == ("P006", ERROR, Span(4, 5))
    assert patternc.analyze("M-M*|M-M*", "megatron").ok


def test_p007_mtp_not_allowed() -> None:
    assert only("MEME/*E", "hf") == ("P007", ERROR, Span(4, 5))


def test_p008_unbalanced_group() -> None:
    assert only("(M-M*-") == ("P008", ERROR, Span(0, 1))
    assert only("M-M*-)") == ("P008", ERROR, Span(5, 6))
    found = diags("((M)")
    assert [(d.code, d.span) for d in found] == [("P008", Span(0, 1))]


def test_p008_unbalanced_parallel_brackets() -> None:
    assert only("[*M-") == ("P008", ERROR, Span(0, 1))
    assert only("*M]-") == ("P008", ERROR, Span(2, 3))
    found = diags("[*M)-")  # a `)` does not close a `[`: both are reported
    assert [(d.code, d.span) for d in found] == [("P008", Span(0, 1)), ("P008", Span(3, 4))]
    assert found[0].label == "this parallel layer is never closed"


def test_p009_unexpected_token() -> None:
    assert only("M-{3}}") == ("P009", ERROR, Span(5, 6))
    assert only("{3}M") == ("P009", ERROR, Span(0, 1))
    assert only("M{}") == ("P009", ERROR, Span(2, 3))
    assert only("M(/)") == ("P009", ERROR, Span(2, 3))
    assert only("M{a}") == ("P009", ERROR, Span(2, 3))


def test_p009_at_end_of_input_points_just_past_the_text() -> None:
    code, severity, span = only("M{")
    assert (code, severity, span) == ("P009", ERROR, Span(2, 2))
    assert diags("M{")[0].message == "unexpected end of the pattern, expected a count"
    assert only("M{3") == ("P009", ERROR, Span(3, 3))


def test_p010_repetition_count_zero() -> None:
    assert only("(M-){0}M*-") == ("P010", ERROR, Span(4, 7))
    assert only("M*M{00}") == ("P010", ERROR, Span(3, 7))


def test_p011_too_many_layers() -> None:
    assert only("(M-){60000}") == ("P011", ERROR, Span(0, 11))
    assert only("M{4}", max_layers=3) == ("P011", ERROR, Span(0, 4))
    assert patternc.analyze("M{3}", limits=Limits(max_layers=3)).ok


def test_p012_input_too_large() -> None:
    assert only("M-M*-", max_chars=4) == ("P012", ERROR, Span(0, 0))
    assert patternc.analyze("M-M*", limits=Limits(max_chars=4)).ok


def test_p013_too_many_diagnostics() -> None:
    found = diags("Mxyz", max_diagnostics=2)
    assert [(d.code, d.severity, d.span) for d in found] == [
        ("P001", ERROR, Span(1, 2)),
        ("P001", ERROR, Span(2, 3)),
        ("P013", NOTE, None),
    ]
    assert found[2].message == "1 more diagnostics not shown (1 of them errors)"
    EXERCISED.add("P013")


def test_p014_unknown_layer_type() -> None:
    with pytest.raises(patternc.PatternError) as caught:
        patternc.from_layers_block_type(["mamba", "mlp", "mamba2"])
    [d] = caught.value.diagnostics
    assert (d.code, d.severity, d.span) == ("P014", ERROR, None)
    assert d.message == "layers_block_type[2] is 'mamba2', which is not a layer type"
    EXERCISED.add("P014")


def test_p015_no_list_name() -> None:
    with pytest.raises(patternc.PatternError) as caught:
        patternc.to_layers_block_type("MG*-")
    [d] = caught.value.diagnostics
    assert (d.code, d.severity, d.span) == ("P015", ERROR, None)
    assert d.message.startswith("layer 1 `G`")
    EXERCISED.add("P015")


@contextlib.contextmanager
def _in_scratch() -> Iterator[Path]:
    """A fresh working directory (the path-or-pattern rule looks at the working directory)."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            yield Path(scratch)
        finally:
            os.chdir(previous)


def test_p016_pattern_also_a_path() -> None:
    """A valid pattern that also names a file is read as the pattern, and a note says so (it used to be
    read as the file, silently)."""
    with _in_scratch() as scratch:
        _p016(scratch)


def _p016(tmp_path: Path) -> None:
    from patternc.check import read_argument
    from patternc.dialects import Dialect
    from patternc.inputs import source_kind
    from patternc.limits import DEFAULT_LIMITS

    (tmp_path / "E").write_text("{}", encoding="utf-8")
    kind, note = source_kind("E")
    assert kind == "pattern" and note is not None
    assert (note.code, note.severity, note.span) == ("P016", NOTE, Span(0, 1))
    assert note.help == "to read the file, name it as a path: `./E`"
    outcome = read_argument("E", Dialect.PATTERNC, DEFAULT_LIMITS)
    assert outcome.analysis.pattern is not None and outcome.analysis.pattern.flat == "E"
    assert "P016" in [d.code for d in outcome.analysis.diagnostics]
    assert source_kind("./E") == ("config", None)  # a path is never a valid pattern
    assert source_kind("M-M*-") == ("pattern", None)  # no such file: no note
    EXERCISED.add("P016")


def test_p017_read_as_path() -> None:
    """An existing path made of pattern characters that is no valid pattern is read as the path, with a note."""

    with _in_scratch() as scratch:
        (scratch / "M-").mkdir()
        _p017()


def _p017() -> None:
    from patternc.inputs import source_kind

    kind, note = source_kind("M-/")
    assert kind == "config" and note is not None
    assert (note.code, note.severity, note.span) == ("P017", NOTE, None)
    assert note.notes == ("as a pattern: error[P104]: trailing `/` opens an empty multi-token-prediction part",)
    assert source_kind("M-/x") == ("pattern", None)  # no such path: a pattern (with its errors)
    assert source_kind("missing.json") == ("config", None)  # a config that is missing: P901 later
    assert source_kind("/no/such/ckpt") == ("config", None)  # starts like a path, has letters: P901, not P001s
    assert source_kind("./ckpt") == ("config", None)
    assert source_kind("/*E") == ("pattern", None)  # pattern characters only: the pattern's own P101
    EXERCISED.add("P017")


def test_p018_parallel_not_allowed() -> None:
    assert only("[*M]-M-", "megatron") == ("P018", ERROR, Span(0, 4))
    assert [d.span for d in diags("[*M]-[*M]-", "megatron")] == [Span(0, 4), Span(5, 9)]  # each one
    assert only("-[*M]", "hf") == ("P018", ERROR, Span(1, 5))
    assert patternc.analyze("[*M]-[*M]-", "patternc").ok


def test_p018_converting_a_parallel_layer_to_a_dialect_without_one() -> None:
    from patternc.convert import to_layers_block_type, to_megatron

    pattern = patternc.parse("-[*M]-")
    with pytest.raises(patternc.PatternError) as megatron:
        to_megatron(pattern)
    assert [(d.code, d.span) for d in megatron.value.diagnostics] == [("P018", Span(1, 5))]
    with pytest.raises(patternc.PatternError) as names:
        to_layers_block_type(pattern.spelled)
    assert [d.code for d in names.value.diagnostics] == ["P018"]
    EXERCISED.add("P018")


_BAD_PARALLEL = [
    ("[-*]", Span(1, 2), "FFN inside a parallel layer"),
    ("[*ME]", Span(3, 4), "FFN inside a parallel layer"),
    ("[M*M]", Span(3, 4), "repeated mixer"),
    ("[M]", Span(0, 3), "fewer than two mixers"),
    ("[]", Span(0, 2), "fewer than two mixers"),
    ("[M|*]", Span(2, 3), "pipeline separator"),
    ("[[*M]]", Span(1, 5), "not a mixer symbol"),
    ("[(*M)]", Span(1, 5), "not a mixer symbol"),
    ("[*M{2}]", Span(3, 6), "not a mixer symbol"),
]


def test_p019_bad_parallel_layer() -> None:
    for text, span, label in _BAD_PARALLEL:
        assert only(text) == ("P019", ERROR, span), text
        assert diags(text)[0].label == label, text


def test_p019_allows_repetition_around_the_layer() -> None:
    assert patternc.parse("[*M]{4}") == patternc.parse("[*M][*M][*M][*M]")
    assert patternc.parse("([*M]-){2}") == patternc.parse("[*M]-[*M]-")
    assert patternc.analyze("[*M]-|[*M]-/[*M]-").ok


def test_p101_empty_pattern() -> None:
    assert only("/*E") == ("P101", ERROR, Span(0, 0))
    assert only("") == ("P101", ERROR, Span(0, 0))
    assert only("  # nothing") == ("P101", ERROR, Span(0, 0))
    assert only("|") == ("P101", ERROR, Span(0, 1))


def test_p102_empty_pipeline_stage() -> None:
    assert only("M-M*-||M-M*-") == ("P102", WARNING, Span(5, 7))
    assert only("|M-M*-") == ("P102", WARNING, Span(0, 1))
    assert only("M-M*-|") == ("P102", WARNING, Span(5, 6))
    assert patternc.analyze("M-M*-||M-M*-").ok  # a warning, not an error


def test_p103_pipe_in_mtp() -> None:
    assert only("M-M*-/*E|*E") == ("P103", ERROR, Span(8, 9))


def test_p104_empty_mtp_part() -> None:
    assert only("M-M*-/") == ("P104", ERROR, Span(5, 6))
    assert only("M-M*-//*E") == ("P104", ERROR, Span(5, 6))
    assert only("M-M*-/*E/") == ("P104", ERROR, Span(8, 9))
    assert only("M-M*-/ # none") == ("P104", ERROR, Span(5, 6))


def test_p105_mtp_depth_mismatch() -> None:
    [d] = diags("MEME/*E/ME")
    EXERCISED.add(d.code)
    assert (d.code, d.severity, d.span) == ("P105", ERROR, Span(8, 10))
    assert [(label.span, label.message) for label in d.secondary] == [(Span(5, 7), "depth 1")]
    assert d.message == "multi-token-prediction depth 2 is `ME`, but depth 1 is `*E`"


def test_p106_attention_mla_mix() -> None:
    assert only("M*M*/MD") == ("P106", ERROR, Span(6, 7))  # across main and MTP
    [d] = diags("M+*D")
    assert (d.code, d.span) == ("P106", Span(1, 2))
    assert [(label.span, label.message) for label in d.secondary] == [(Span(2, 3), "standard attention here")]
    assert patternc.analyze("MD+", "megatron").ok


def test_p107_segments_on_one_rank() -> None:
    from patternc.analysis import pipeline_diagnostics

    analysis = patternc.analyze("M-M*-|M-M*-|M-")
    assert analysis.pattern is not None
    [d] = pipeline_diagnostics(analysis.pattern, 1, pipes=(5, 11))
    EXERCISED.add(d.code)
    assert (d.code, d.severity, d.span) == ("P107", ERROR, Span(5, 6))  # the first `|`
    assert "3 pipe-delimited segments" in d.message and d.help == "remove the `|` separators, or use --pp 3"
    assert "builds segment 0 alone: M-M*-" in d.notes[1]
    assert pipeline_diagnostics(analysis.pattern, 3) == [] and pipeline_diagnostics(patternc.parse("M-M*-"), 1) == []


def test_p108_pattern_read_as_option_end() -> None:
    from patternc.config import read_config
    from patternc.engines import megatron_arguments

    def spec(pattern: str):  # type: ignore[no-untyped-def]
        read = read_config({"model_type": "nemotron_h", "hybrid_override_pattern": pattern}).spec
        assert read is not None
        return read

    args, found = megatron_arguments(spec("--"))
    [d] = [d for d in found if d.severity is ERROR]
    EXERCISED.add(d.code)
    assert (args, d.code, d.span) == (None, "P108", None)
    assert megatron_arguments(spec("-M-"))[0] is not None  # written as --hybrid-layer-pattern=-M-


def test_p201_mixed_dense_moe() -> None:
    [d] = diags("M-M*EM-")
    EXERCISED.add(d.code)
    assert (d.code, d.severity, d.span) == ("P201", WARNING, Span(4, 5))
    assert [(label.span, label.message) for label in d.secondary] == [(Span(1, 2), "first MLP layer")]
    assert patternc.analyze("M-M*EM-").ok


def test_p202_no_sequence_mixer() -> None:
    assert only("----") == ("P202", WARNING, Span(0, 1))
    found = diags("-E-E")
    assert [(d.code, d.severity, d.span) for d in found] == [
        ("P202", WARNING, Span(0, 1)),
        ("P201", WARNING, Span(1, 2)),
    ]
    assert patternc.analyze("-E-E").ok


def test_every_problem_is_reported_at_once() -> None:
    found = diags("M x|Y{0}/", "megatron")
    codes = [d.code for d in found]
    assert codes == ["P003", "P001", "P001", "P005", "P010", "P104"]
    assert [d.span for d in found] == [Span(1, 2), Span(2, 3), Span(4, 5), Span(5, 8), Span(5, 8), Span(8, 9)]


def test_caret_rendering_is_exact() -> None:
    text = "M-M*X-"
    rendered = render_text(diags(text), Source(text, "<argv>"))
    assert rendered.splitlines()[:5] == [
        "error[P001]: `X` is not a layer symbol",
        " --> <argv>:1:5",
        "  |",
        "1 | M-M*X-",
        "  |     ^ unknown symbol",
    ]


def test_caret_on_second_line() -> None:
    text = "M-\n  M*X-"
    [d] = diags(text)
    rendered = render_text([d], Source(text, "f"))
    assert " --> f:2:5" in rendered
    assert "2 |   M*X-\n  |     ^ unknown symbol" in rendered


def test_severity_comes_from_the_code_table() -> None:
    for code in CODES:
        assert code.code.startswith("P") and len(code.code) == 4
        assert BY_CODE[code.code] is code and BY_NAME[code.name] is code
        assert lookup(code.code.lower()) is code and lookup(code.name) is code
    assert lookup("P999") is None
    assert [c.code for c in CODES] == sorted(c.code for c in CODES)


CORE_CODES = [c for c in CODES if c.code[1] in "012"]
"""The front end's codes (P0xx, P1xx, P2xx); target (P3xx) and config (P9xx) codes have their own
test modules, and every code's example is run by ``test_every_code_example_emits_its_code``."""


def _test_name(code) -> str:  # type: ignore[no-untyped-def]
    return f"test_{code.code.lower()}_{code.name.replace('-', '_')}"


def test_every_core_code_has_a_test_here() -> None:
    """Each core code has a ``test_<code>_<name>`` function in this module (order-independent)."""
    assert len(CORE_CODES) == 29
    assert [_test_name(c) for c in CORE_CODES if _test_name(c) not in globals()] == []


def test_the_code_tests_assert_each_code() -> None:
    """Running the per-code tests records every core code."""
    EXERCISED.clear()
    for c in CORE_CODES:
        globals()[_test_name(c)]()
    assert sorted(EXERCISED) == sorted(c.code for c in CORE_CODES)


@pytest.mark.parametrize("code", CODES, ids=[c.code for c in CODES])
def test_every_code_example_emits_its_code(code) -> None:  # type: ignore[no-untyped-def]
    assert code.example, f"{code.code} has no example"
    _, output, exit_code = run_example(code)
    assert f"[{code.code}]" in output, output
    expected_exit = 2 if code.code in USAGE_CODES else 1 if code.severity is ERROR or code.code == "P013" else 0
    assert exit_code == expected_exit, output
