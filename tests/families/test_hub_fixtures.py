"""The real patterns of released checkpoints parse with the right counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import patternc
from patternc.passes.classify import Family

HUB = Path(__file__).resolve().parents[1] / "fixtures" / "hub"

# name -> (M, -, *, E, family)
EXPECTED = {
    "Nemotron-H-8B-Base-8K": (24, 24, 4, 0, Family.DENSE_HYBRID),
    "NVIDIA-Nemotron-Nano-9B-v2": (27, 25, 4, 0, Family.DENSE_HYBRID),
    "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": (23, 0, 6, 23, Family.MOE_HYBRID),
}

NEMOTRON_H_56B = (
    "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-"
    "M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"
)
NEMOTRON_H_47B = "M-M-M-M-M-M-M-M-M*-M-M-M-M-M-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-M-M---MM---M-M*-M-M-M-M-M-"


def test_every_fixture_is_covered() -> None:
    assert sorted(p.name for p in HUB.iterdir() if (p / "config.json").is_file()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("dialect", ["hf", "megatron", "patternc"])
def test_hub_pattern_counts(name: str, dialect: str) -> None:
    config = json.loads((HUB / name / "config.json").read_text(encoding="utf-8"))
    text = config["hybrid_override_pattern"]
    analysis = patternc.analyze(text, dialect)
    assert analysis.diagnostics == []
    pattern = analysis.pattern
    assert pattern is not None
    m, mlp, attention, moe, family = EXPECTED[name]
    counts = pattern.counts()
    assert (counts.get("M", 0), counts.get("-", 0), counts.get("*", 0), counts.get("E", 0)) == (m, mlp, attention, moe)
    assert set(counts) <= {"M", "-", "*", "E"}
    assert pattern.num_layers == config["num_hidden_layers"] == m + mlp + attention + moe
    assert analysis.family is family
    assert pattern.flat == text
    assert patternc.parse(patternc.fmt(pattern)) == pattern
    assert len(patternc.fmt(pattern)) < len(text)


def test_nemotron_h_56b() -> None:
    pattern = patternc.parse(NEMOTRON_H_56B, "hf")
    assert pattern.num_layers == 118
    assert pattern.counts() == {"M": 54, "*": 10, "-": 54}
    assert patternc.classify(pattern) is Family.DENSE_HYBRID
    compact = patternc.fmt(pattern)
    assert compact == "M-M-M-M(*(-M){5}){10}-"
    assert len(compact) * 3 < len(NEMOTRON_H_56B)
    assert patternc.parse(compact) == pattern


def test_nemotron_h_47b() -> None:
    pattern = patternc.parse(NEMOTRON_H_47B, "hf")
    assert pattern.num_layers == 98
    assert pattern.counts() == {"M": 45, "*": 5, "-": 48}
    compact = patternc.fmt(pattern)
    assert compact == "M(-M){8}*(-M){10}(*(-M){5}){3}-M-M---MM---M-M*-(M-){5}"
    assert len(compact) < len(NEMOTRON_H_47B) * 0.6
    assert patternc.parse(compact) == pattern


def test_nemotron_h_8b_fmt_is_the_readme_form() -> None:
    text = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"
    assert patternc.fmt(patternc.parse(text, "hf")) == "M-M-M-M(*(-M){5}){4}-"
