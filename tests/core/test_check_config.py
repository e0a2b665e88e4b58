"""`patternc check CONFIG`: the issue's done-means, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc.cli import app
from patternc.passes import Pass, schedule

HUB = Path(__file__).parents[1] / "fixtures" / "hub"
FIXTURES = {
    "Nemotron-H-8B-Base-8K": ("dense_hybrid", 52),
    "NVIDIA-Nemotron-Nano-9B-v2": ("dense_hybrid", 56),
    "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16": ("moe_hybrid", 52),
}


def _json(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(app, ["check", *args, "--json"])
    return result.exit_code, json.loads(result.output)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_checks_with_family_canonical_and_targets(name: str) -> None:
    family, layers = FIXTURES[name]
    code, report = _json(str(HUB / name / "config.json"), "--targets")
    assert code == 0
    assert report["ok"] is True
    assert report["family"] == family and report["layers"] == layers
    canonical = report["canonical"]
    assert isinstance(canonical, dict)
    assert canonical["architecture"] == "nemotron_h"
    assert canonical["reasons"]["bamba"] and canonical["reasons"]["granitemoehybrid"]
    targets = report["targets"]
    assert isinstance(targets, dict)
    assert targets["transformers-nemotron_h"]["ok"] is True
    assert targets["vllm"]["ok"] is True and targets["llama.cpp"]["ok"] is True
    assert targets["transformers-bamba"]["ok"] is False
    assert targets["transformers-bamba"]["diagnostics"]


def test_a_directory_holding_config_json_is_a_config() -> None:
    code, report = _json(str(HUB / "Nemotron-H-8B-Base-8K"))
    assert code == 0 and report["pattern"] == "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"


def test_moe_fixture_refused_by_bamba_with_its_reasons() -> None:
    result = CliRunner().invoke(
        app, ["check", str(HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16" / "config.json"), "--target", "bamba"]
    )
    assert result.exit_code == 1
    assert "target transformers-bamba: no" in result.output
    assert "[P301]" in result.output and "[P308]" in result.output


def test_canonical_reasons_name_layers_and_the_math() -> None:
    _, report = _json(str(HUB / "Nemotron-H-8B-Base-8K" / "config.json"))
    canonical = report["canonical"]
    assert isinstance(canonical, dict)
    bamba = " ".join(canonical["reasons"]["bamba"])
    assert "has no FFN of its own" in bamba
    assert "relu2" in bamba and "rope" in bamba


def test_bad_config_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*-", "hidden_size": -4}')
    code, report = _json(str(path))
    assert code == 1 and report["ok"] is False
    assert any(d["code"] == "P906" and "hidden_size" in d["message"] for d in report["diagnostics"])


def test_a_pattern_check_asks_no_canonical_question() -> None:
    code, report = _json("M-M*-")
    assert code == 0 and report["canonical"] is None and report["targets"] is None


def test_facts_already_established_satisfy_requirements() -> None:
    consumer = Pass("consumer", lambda ctx: iter(()), requires=frozenset({"family"}))
    with pytest.raises(ValueError, match="no pass provides"):
        schedule([consumer])
    assert schedule([consumer], given={"family"}) == [consumer]
