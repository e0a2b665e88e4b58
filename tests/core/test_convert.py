"""Conversions: flat string, Megatron's unified string, transformers' layers_block_type lists."""

from __future__ import annotations

import pytest

import patternc
from patternc.convert import NAME_TO_SYMBOL, attention_indices

CURRENT = ["linear_attention", "full_attention", "mlp", "moe"]
LEGACY = ["mamba", "attention", "mlp", "moe"]


def test_flat() -> None:
    pattern = patternc.parse("(M-){2}|M*-/*E", "patternc")
    assert pattern.flat == "M-M-M*-"
    assert patternc.parse(pattern.flat, "hf") == patternc.parse("M-M-M*-", "hf")
    with pytest.raises(patternc.PatternError):
        patternc.parse("M-G", "hf")  # the flat form is the hf dialect's


@pytest.mark.parametrize(
    ("text", "unified"),
    [
        ("M-M*-", "M-M*-"),
        ("(M-){2}", "M-M-"),
        ("M-|M*-", "M-|M*-"),
        ("M- | | M*-", "M-||M*-"),
        ("MEME / *E / (*E)", "MEME/*E/*E"),
        ("(M*|){2}M/(G){2}", "M*|M*|M/GG"),
    ],
)
def test_to_megatron(text: str, unified: str) -> None:
    pattern = patternc.parse(text)
    assert patternc.to_megatron(pattern) == unified
    assert patternc.from_megatron(unified) == pattern


def test_from_megatron_is_strict() -> None:
    with pytest.raises(patternc.PatternError) as caught:
        patternc.from_megatron("(M-){2}")
    assert {d.code for d in caught.value.diagnostics} == {"P005"}


def test_layers_block_type_current_and_legacy() -> None:
    assert patternc.to_layers_block_type("M*-E") == CURRENT
    assert patternc.to_layers_block_type("M*-E", "current") == CURRENT
    assert patternc.to_layers_block_type("M*-E", patternc.Vocabulary.LEGACY) == LEGACY
    assert patternc.to_layers_block_type("") == []


def test_from_layers_block_type_reads_both_vocabularies() -> None:
    expected = patternc.parse("M*-E", "hf")
    assert patternc.from_layers_block_type(CURRENT) == expected
    assert patternc.from_layers_block_type(LEGACY) == expected
    assert patternc.from_layers_block_type(["mamba", "full_attention", "mlp", "moe"]) == expected  # mixed
    assert NAME_TO_SYMBOL == {
        "linear_attention": "M",
        "mamba": "M",
        "full_attention": "*",
        "attention": "*",
        "mlp": "-",
        "moe": "E",
    }


def test_from_layers_block_type_with_mtp() -> None:
    pattern = patternc.from_layers_block_type(["mamba", "moe"], ["attention", "moe"], 3)
    assert pattern == patternc.parse("ME/*E/*E/*E", "megatron")
    assert patternc.from_layers_block_type(["mamba"], [], 3).mtp is None


@pytest.mark.parametrize("text", ["M-M*-", "MEMEM*E", "M*-E/*E/*E"])
def test_list_round_trip(text: str) -> None:
    pattern = patternc.parse(text, "megatron")
    for vocabulary in patternc.Vocabulary:
        names = patternc.to_layers_block_type(pattern.flat, vocabulary)
        mtp = patternc.to_layers_block_type(pattern.mtp.flat, vocabulary) if pattern.mtp else []
        depths = pattern.mtp.depths if pattern.mtp else 1
        assert patternc.from_layers_block_type(names, mtp, depths) == pattern


def test_p014_lists_every_bad_name() -> None:
    with pytest.raises(patternc.PatternError) as caught:
        patternc.from_layers_block_type(["mamba", "Mamba", 3, "mlp"], ["expert"])  # type: ignore[list-item]
    found = [(d.code, d.span, d.message) for d in caught.value.diagnostics]
    assert found == [
        ("P014", None, "layers_block_type[1] is 'Mamba', which is not a layer type"),
        ("P014", None, "layers_block_type[2] is 3, which is not a layer type"),
        ("P014", None, "mtp_layers_block_type[0] is 'expert', which is not a layer type"),
    ]
    assert "error[P014]" in str(caught.value)


def test_empty_list_is_p101() -> None:
    with pytest.raises(patternc.PatternError) as caught:
        patternc.from_layers_block_type([])
    assert [d.code for d in caught.value.diagnostics] == ["P101"]


def test_p015_lists_every_unnamed_layer() -> None:
    with pytest.raises(patternc.PatternError) as caught:
        patternc.to_layers_block_type("MGD+*", "legacy")
    found = [(d.code, d.severity.value, d.message.split(" (")[0]) for d in caught.value.diagnostics]
    assert found == [
        ("P015", "error", "layer 1 `G`"),
        ("P015", "error", "layer 2 `D`"),
        ("P015", "error", "layer 3 `+`"),
    ]


def test_attention_indices() -> None:
    assert attention_indices(patternc.parse("M*M-*G")) == [1, 4]
    assert attention_indices(patternc.parse("MD-+G")) == [1, 3]
    assert attention_indices(patternc.parse("M-")) == []


# --- fmt: the compact spelling ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "compact"),
    [
        ("M-M-M-", "M-M-M-"),  # a tie keeps the plain string
        ("MMMMM", "M{5}"),
        ("M-M-M-M-", "(M-){4}"),
        ("M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-", "M-M-M-M(*(-M){5}){4}-"),
        ("M||||||||M", "M(|){8}M"),  # `|` is no atom: `|{8}` would not parse
        ("(M|){10}M", "M(|M){10}"),
        ("M" * 200, "M{200}"),
        (("M-" * 100 + "|") * 3 + "M", "(M-){100}|(M-){100}|(M-){100}|M"),
        ("MEME/*E/*E", "MEME/*E/*E"),
        ("M-/(*E){3}/(*E){3}", "M-/*E*E*E/*E*E*E"),
    ],
)
def test_fmt(text: str, compact: str) -> None:
    pattern = patternc.parse(text)
    assert patternc.fmt(pattern) == compact
    assert patternc.parse(compact) == pattern


@pytest.mark.parametrize("pipes", [1, 7, 8, 20, 200])
def test_fmt_runs_of_empty_stages_parse_back(pipes: int) -> None:
    for text in ("M" + "|" * pipes + "M", "|" * pipes + "M-" * 90, "M*" * 90 + "|" * pipes + "E"):
        pattern = patternc.parse(text, "megatron")
        assert patternc.parse(patternc.fmt(pattern)) == pattern, text
