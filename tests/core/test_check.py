"""``patternc.check``: a typed request in, a frozen outcome out; the questions are plain calls (issue 13)."""

from __future__ import annotations

import dataclasses

import pytest

from patternc.check import STDIN, CheckOutcome, CheckRequest, Pipeline, answer, check, read
from patternc.dialects import Dialect


def test_a_bare_pattern_has_no_spec_and_no_answers_unless_asked() -> None:
    outcome = check(CheckRequest("M-M*-"))
    assert outcome.ok and outcome.analysis.pattern is not None and outcome.analysis.pattern.flat == "M-M*-"
    assert outcome.spec is None and outcome.config is None and outcome.canonical is None
    assert dict(outcome.targets) == {} and outcome.table is False


def test_the_outcome_is_frozen() -> None:
    outcome = check(CheckRequest("M-M*-"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.table = True  # type: ignore[misc]


def test_answer_returns_a_new_outcome_and_leaves_its_argument_alone() -> None:
    before = read(CheckRequest("M-M*-|M-M*-", Dialect.MEGATRON))
    diagnostics = list(before.analysis.diagnostics)
    after = answer(before, CheckRequest("M-M*-|M-M*-", Dialect.MEGATRON, pipeline=Pipeline(3)))
    assert after is not before
    assert before.analysis.diagnostics == diagnostics and before.analysis.pattern is not None
    assert not after.ok and after.analysis.pattern is None  # 2 segments on 3 ranks: a Megatron error
    assert any(d.code.startswith("P6") for d in after.analysis.diagnostics)


def test_named_targets_are_answered_under_their_profile_names() -> None:
    outcome = check(CheckRequest("M-G*-", targets=("vllm",)))
    assert list(outcome.targets) == ["vllm"] and not outcome.ok
    assert "P301" in [d.code for d in outcome.targets["vllm"]]  # vLLM has no gated DeltaNet


def test_the_portability_table_answers_every_profile_and_is_not_a_verdict() -> None:
    from patternc.targets import PROFILES

    outcome = check(CheckRequest("M-G*-", all_targets=True))
    assert list(outcome.targets) == list(PROFILES) and outcome.table and outcome.ok


def test_a_config_gets_its_spec_reading_and_canonical_map() -> None:
    outcome = check(CheckRequest("tests/fixtures/hub/Nemotron-H-8B-Base-8K"))
    assert outcome.spec is not None and outcome.config is not None and outcome.config.family == "nemotron_h"
    assert outcome.canonical is not None


def test_stdin_text_is_always_a_pattern(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(str(tmp_path))
    (__import__("pathlib").Path(str(tmp_path)) / "E").write_text("{}", encoding="utf-8")
    from_argv = check(CheckRequest("E"))
    from_stdin = check(CheckRequest("E", origin=STDIN))
    assert "P016" in [d.code for d in from_argv.analysis.diagnostics]  # the file of that name is named
    assert "P016" not in [d.code for d in from_stdin.analysis.diagnostics]


def test_an_input_with_errors_is_returned_unanswered() -> None:
    outcome = read(CheckRequest("M-X"))
    assert answer(outcome, CheckRequest("M-X", targets=("vllm",), pipeline=Pipeline(2))) is outcome


def test_check_outcome_fields_are_typed() -> None:
    """No ``Any`` field: what used to be ``Any`` names its type (issue 13, the review's §2.9)."""
    hints = {f.name: f.type for f in dataclasses.fields(CheckOutcome)}
    assert "Any" not in " ".join(str(t) for t in hints.values())
    assert hints["spec"] == "ModelSpec | None" and hints["canonical"] == "CanonicalResult | None"
    assert hints["config"] == "ConfigReading | None"
