"""The grammar and the lowering: what each construct means, per dialect."""

from __future__ import annotations

import pytest

import patternc
from patternc.ir import Layer, MtpBlock, Pattern, Stage
from patternc.source import Source
from patternc.symbols import LayerKind
from patternc.syntax import MAX_NESTING, Digits, Group, Pipe, Repeat, Run
from patternc.syntax import parse as parse_syntax


def flat(text: str, dialect: str = "patternc") -> str:
    return patternc.parse(text, dialect).flat


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("M-M*-", "M-M*-"),
        ("M{3}", "MMM"),
        ("M-{3}", "M---"),  # repetition binds to the last symbol of a run
        ("(M-){3}", "M-M-M-"),
        ("(M-){3}M*-", "M-M-M-M*-"),
        ("((M-){2}*-){2}", "M-M-*-M-M-*-"),
        ("(M)", "M"),
        ("((M))", "M"),
        ("(M{2}-){2}", "MM-MM-"),
        ("M{1}", "M"),
        ("M{007}", "MMMMMMM"),
        ("M - M * -", "M-M*-"),
        ("M-\nM*-", "M-M*-"),
        ("M- # two layers\nM*-  # attention", "M-M*-"),
        ("( M - ) { 2 }", "M-M-"),
        ("M\t-\r\n*", "M-*"),
        ("MG*-E", "MG*-E"),
        ("MGD+-E", "MGD+-E"),
    ],
)
def test_patternc_dialect_expands(text: str, expected: str) -> None:
    assert flat(text) == expected


@pytest.mark.parametrize(
    ("text", "dialect"),
    [("M-M*-", "hf"), ("MEMEM*E", "hf"), ("M-M*-", "megatron"), ("MG+D-E", "megatron"), ("M-M*-", "patternc")],
)
def test_flat_spelling_is_identical_in_every_dialect_that_admits_it(text: str, dialect: str) -> None:
    assert flat(text, dialect) == text


def test_hf_alphabet_is_exactly_four_symbols() -> None:
    for symbol in "M*-E":
        assert patternc.analyze(symbol, "hf").ok
    for symbol in "GD+":
        assert [d.code for d in patternc.analyze(symbol, "hf").diagnostics] == ["P002"]


def test_ir_is_what_the_text_means() -> None:
    pattern = patternc.parse("M*|-E/M*/M*", "megatron")
    assert pattern == Pattern(
        layers=(
            Layer(index=0, kind=LayerKind.MAMBA2),
            Layer(index=1, kind=LayerKind.ATTENTION),
            Layer(index=2, kind=LayerKind.MLP),
            Layer(index=3, kind=LayerKind.MOE),
        ),
        stages=(Stage(index=0, start=0, stop=2), Stage(index=1, start=2, stop=4)),
        mtp=MtpBlock(
            layers=(Layer(index=0, kind=LayerKind.MAMBA2), Layer(index=1, kind=LayerKind.ATTENTION)), depths=2
        ),
    )
    assert pattern.flat == "M*-E"
    assert pattern.stage_strings() == ["M*", "-E"]
    assert pattern.counts() == {"M": 1, "*": 1, "-": 1, "E": 1}
    assert pattern.kinds() == {LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE}
    assert [layer.symbol for layer in pattern.layers] == list("M*-E")


def test_ir_equality_is_structural() -> None:
    assert patternc.parse("(M-){2}") == patternc.parse("M-M-") == patternc.parse("M-M-", "hf")
    assert patternc.parse("M-M-") != patternc.parse("M-|M-")
    assert patternc.parse("M-/M") != patternc.parse("M-/M/M")


def test_ir_rejects_inconsistent_construction() -> None:
    with pytest.raises(ValueError, match="index"):
        Pattern(layers=(Layer(index=1, kind=LayerKind.MLP),), stages=(Stage(index=0, start=0, stop=1),))
    with pytest.raises(ValueError, match="cover"):
        Pattern(layers=(Layer(index=0, kind=LayerKind.MLP),), stages=(Stage(index=0, start=0, stop=0),))
    with pytest.raises(ValueError, match="at least one stage"):
        Pattern(layers=(), stages=())
    with pytest.raises(ValueError):
        Pattern(layers=(), stages=(Stage(index=0, start=0, stop=0),), extra=1)  # type: ignore[call-arg]


def test_counts_are_in_symbol_table_order() -> None:
    assert list(patternc.parse("E-+DGM").counts()) == ["M", "G", "D", "+", "-", "E"]
    pattern = patternc.parse("E-EM*M")
    assert list(pattern.counts().items()) == [("M", 2), ("*", 1), ("-", 1), ("E", 2)]


def test_stages() -> None:
    pattern = patternc.parse("M-|M*-|M", "megatron")
    assert [(s.index, s.start, s.stop, s.size) for s in pattern.stages] == [(0, 0, 2, 2), (1, 2, 5, 3), (2, 5, 6, 1)]
    assert patternc.parse("(M-|){2}M").stage_strings() == ["M-", "M-", "M"]
    single = patternc.parse("M-M*-")
    assert [(s.start, s.stop) for s in single.stages] == [(0, 5)]


def test_mtp() -> None:
    pattern = patternc.parse("MEME/*E/*E", "megatron")
    assert pattern.flat == "MEME"
    assert pattern.mtp is not None
    assert (pattern.mtp.flat, pattern.mtp.depths) == ("*E", 2)
    assert pattern.stage_strings() == ["MEME"]
    # MTP parts are compared after expansion, so they may be spelled differently.
    spelled = patternc.parse("(ME){2} / *E / (*)E # depth 2")
    assert spelled == pattern


def test_readme_example() -> None:
    p = patternc.parse("(M-){3} M*- /*E", dialect="patternc")
    assert p.flat == "M-M-M-M*-"
    assert p.mtp is not None and p.mtp.flat == "*E"
    assert patternc.to_megatron(p) == "M-M-M-M*-/*E"
    # fmt gives the *shortest* spelling; `(M-){3}M*-` is one character longer than the plain one.
    assert patternc.fmt(p) == "M-M-M-M*-/*E"


def test_syntax_tree_records_offsets() -> None:
    ast, problems = parse_syntax(Source("M-(M*){2}|7-/E"))
    assert problems == []
    assert ast is not None
    main, mtp = ast.parts
    assert main.slash is None and main.end == 12
    assert mtp.slash == 12 and mtp.end == 14
    run, repeat, pipe, digits, dash = main.elements
    assert run == Run("M-", 0)
    assert isinstance(repeat, Repeat) and repeat.count == 2 and (repeat.span.start, repeat.span.end) == (6, 9)
    assert isinstance(repeat.atom, Group) and repeat.atom.elements == (Run("M*", 3),)
    assert pipe == Pipe(9)
    assert digits == Digits("7", 10)
    assert dash == Run("-", 11)
    assert mtp.elements == (Run("E", 13),)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    deep = "(" * MAX_NESTING + "M" + ")" * MAX_NESTING
    assert patternc.parse(deep).flat == "M"


def test_nested_counts_multiply() -> None:
    assert patternc.parse("((M){3}){4}").num_layers == 12
    assert patternc.parse("(((M-){2}){3}){5}").num_layers == 60
