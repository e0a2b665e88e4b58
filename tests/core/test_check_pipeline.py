"""`patternc check --pp K`: a hand-placed split is checked with Megatron-Core's rules."""

from __future__ import annotations

from typer.testing import CliRunner

from patternc.cli import app


def _check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--dialect", "megatron", "--color", "never", *args])
    return result.exit_code, result.output


def test_segments_must_divide_among_ranks() -> None:
    code, out = _check("--pp", "2", "M-M*|M-M*|M-M*")
    assert code == 1 and "error[P602]" in out
    assert "1 | M-M*|M-M*|M-M*\n  |     ^" in out  # the caret sits under the first `|`


def test_an_even_split_passes() -> None:
    code, out = _check("--pp", "2", "M-M*|M-M*|M-M*|M-")
    assert code == 0 and "error" not in out.split("ok:")[0]


def test_without_pp_no_pipeline_rule_runs() -> None:
    code, _ = _check("M-M*|M-M*|M-M*")
    assert code == 0


def test_pp_1_refuses_several_segments() -> None:
    """Megatron's training refuses several segments on one rank (its model builder would keep the first)."""
    code, out = _check("--pp", "1", "M-M*|M-M*")
    assert code == 1 and "error[P107]" in out and "select_pipeline_segment builds segment 0 alone: M-M*" in out
    assert "1 | M-M*|M-M*\n  |     ^" in out  # the caret under the first `|`
    assert _check("--pp", "1", "M-M*M-M*")[0] == 0 and _check("--pp", "2", "M-M*|M-M*")[0] == 0
