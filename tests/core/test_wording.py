"""What patternc says to users is in their words and true (issue 12, defect 9): no internal names in messages,
stage numbers counted as people count, P201 honest about Jamba and pointing at the key that places the MoE
layers, one meaning of "parameters" across commands, and layer counts that explain themselves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import patternc
from patternc.check import check_config
from patternc.cli import app
from patternc.codes import CODES
from patternc.wording import decoder_layers, layers_text

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

INTERNAL = re.compile(r"ModelSpec|\bspec is None|`spec`|device=\"cpu\"|\bthe IR\b|IR's")
"""Names of patternc's internals (classes, variables, Python keyword arguments) that a message must not use."""

JAMBA = {
    "model_type": "jamba",
    "num_hidden_layers": 8,
    "attn_layer_period": 8,
    "attn_layer_offset": 4,
    "expert_layer_period": 2,
    "expert_layer_offset": 1,
    "num_experts": 16,
    "hidden_size": 4096,
}
BAMBA = {
    "model_type": "bamba",
    "num_hidden_layers": 32,
    "attn_layer_indices": [9, 18, 27],
    "hidden_size": 256,
    "vocab_size": 1000,
    "intermediate_size": 512,
    "mamba_n_heads": 8,
    "mamba_d_head": 64,
    "mamba_n_groups": 1,
    "mamba_d_state": 16,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def _write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_every_code_summary_and_explanation_uses_user_words() -> None:
    from importlib.resources import files

    for code in CODES:
        assert not INTERNAL.search(code.summary), (code.code, code.summary)
        page = files("patternc.explain").joinpath(f"{code.code}.md")
        if page.is_file():
            text = page.read_text(encoding="utf-8")
            # a Python caller's spelling may be named as such ("in Python, a `ModelSpec`"), never alone
            bare = [m for m in INTERNAL.finditer(text) if "Python" not in text[max(0, m.start() - 60) : m.end() + 60]]
            assert not bare, (code.code, [m.group() for m in bare])


def test_run_messages_name_no_internals(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    missing = runner.invoke(app, ["run", str(tmp_path / "nothing"), "--ids", "1"])
    assert missing.exit_code == 1 and "error[P402]" in missing.stderr
    assert not INTERNAL.search(missing.stderr), missing.stderr
    import torch

    if not torch.cuda.is_available():
        no_cuda = runner.invoke(app, ["run", "tests/fixtures/torch/P407", "--ids", "1", "--device", "cuda"])
        assert no_cuda.exit_code == 1 and "error[P407]" in no_cuda.stderr
        assert not INTERNAL.search(no_cuda.stderr) and "`cpu`" in no_cuda.stderr, no_cuda.stderr


def test_jamba_messages_name_no_internals(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(_write(tmp_path, JAMBA))])
    assert result.exit_code == 0 and "S-SES-SE*-SES-SE" in result.stdout, result.stdout
    assert not INTERNAL.search(result.stdout + result.stderr), result.stdout


@pytest.mark.parametrize(
    ("text", "stage"), [("|M-|M-", "1 of 3"), ("M-||M-", "2 of 3"), ("M-|M-|", "3 of 3"), ("M-|M-||M-", "3 of 4")]
)
def test_p102_counts_stages_from_one(text: str, stage: str) -> None:
    [d] = [d for d in patternc.analyze(text, "megatron").diagnostics if d.code == "P102"]
    assert d.message.startswith(f"pipeline stage {stage} is empty")


def test_p201_on_jamba_points_at_the_expert_period_and_does_not_deny_jamba(tmp_path: Path) -> None:
    path = _write(tmp_path, JAMBA)
    outcome = check_config(str(path))
    [d] = [d for d in outcome.analysis.diagnostics if d.code == "P201"]
    assert d.span is not None
    assert outcome.analysis.source.text[d.span.start : d.span.end] == '"expert_layer_period"'
    assert d.help is not None and "no released checkpoint" not in d.help and "Jamba" in d.help
    assert not d.secondary  # one key places both kinds: no second label on the layout key


def test_p201_on_a_pattern_still_points_at_the_layers() -> None:
    [d] = [d for d in patternc.analyze("M-M*EM-").diagnostics if d.code == "P201"]
    assert d.span is not None and (d.span.start, d.span.end) == (4, 5)


def test_readme_does_not_speak_of_this_machine() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "this machine" not in text


def test_build_and_stats_agree_on_what_parameters_are(tmp_path: Path) -> None:
    """A MoE router's score-correction bias is a buffer: ``stats`` counts it, transformers' parameters do not.
    ``build`` names both numbers, and its stored-element count is ``stats``' total."""
    pytest.importorskip("transformers")
    built = runner.invoke(app, ["build", "M-M*E", "-o", str(tmp_path / "o"), "--json"])
    stats = runner.invoke(app, ["stats", "M-M*E", "--json"])
    assert built.exit_code == stats.exit_code == 0, built.output + stats.output
    b, s = json.loads(built.stdout), json.loads(stats.stdout)
    assert b["stored_elements"] == s["params"]["total"] and b["parameters"] < b["stored_elements"]
    text = runner.invoke(app, ["build", "M-M*E", "-o", str(tmp_path / "t")]).stdout
    assert (
        f"parameters: {b['parameters']:,} (plus {b['stored_elements'] - b['parameters']} buffer elements: "
        f"{b['stored_elements']:,} stored elements, the total `patternc stats` shows)" in text
    )


def test_build_without_buffers_prints_one_number(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    text = runner.invoke(app, ["build", "M-M*-", "-o", str(tmp_path / "o")]).stdout
    [line] = [line for line in text.splitlines() if line.startswith("parameters:")]
    assert re.fullmatch(r"parameters: [\d,]+", line)


def test_bamba_layers_say_why_they_are_twice_the_config(tmp_path: Path) -> None:
    path = _write(tmp_path, BAMBA)
    check = runner.invoke(app, ["check", str(path)])
    assert "layers     64 pattern layers = 32 decoder layers × (mixer + FFN)" in check.stdout, check.stdout
    stats = runner.invoke(app, ["stats", str(path)])
    assert "= 32 decoder layers × (mixer + FFN)" in stats.stdout, stats.output
    pattern = runner.invoke(app, ["check", "M-M*-"])  # Nemotron-H: every pattern layer is a decoder layer
    assert re.search(r"^layers\s+5$", pattern.stdout, re.MULTILINE), pattern.stdout


def test_bamba_build_reports_its_decoder_layers(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    path = _write(tmp_path, BAMBA)
    result = runner.invoke(app, ["build", str(path), "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["layers"], data["decoder_layers"]) == (64, 32)
    text = runner.invoke(app, ["build", str(path), "-o", str(tmp_path / "t")]).stdout
    assert "layers: 64 pattern layers = 32 decoder layers × (mixer + FFN)" in text


@pytest.mark.parametrize(
    ("flat", "source", "expected"),
    [
        ("M-M-*-", "bamba", 3),
        ("MEME*E", "granitemoehybrid", 3),
        ("M-M-*-", "nemotron_h", None),  # every pattern layer is a decoder layer
        ("M-M*-", "bamba", None),  # odd: not mixer/FFN pairs
        ("MM--", "bamba", None),  # even, but not alternating
        ("", "bamba", None),
    ],
)
def test_decoder_layers(flat: str, source: str, expected: int | None) -> None:
    assert decoder_layers(flat, source) == expected
    assert layers_text(flat, source) == (
        str(len(flat))
        if expected is None
        else f"{len(flat)} pattern layers = {expected} decoder layers × (mixer + FFN)"
    )


def test_a_config_reports_each_pass_finding_once(tmp_path: Path) -> None:
    """The config reader checks the layout (spans in the config's text) and ``check`` ran the same passes
    again without spans: every P201 was printed twice, once pointing nowhere."""
    config = {"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*E", "num_hidden_layers": 5}
    result = runner.invoke(app, ["check", str(_write(tmp_path, config))])
    assert result.stdout.count("warning[P201]") == 1, result.stdout
    [d] = [d for d in check_config(str(tmp_path / "config.json")).analysis.diagnostics if d.code == "P201"]
    assert d.span is not None


def test_build_of_a_bare_pattern_points_at_the_pattern_not_a_generated_config(tmp_path: Path) -> None:
    """The warnings of a bare pattern point into the pattern as typed, once, never into the config JSON that
    ``build`` generates from it (which the user never saw)."""
    pytest.importorskip("transformers")
    result = runner.invoke(app, ["build", "M-M*E", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning[P201]") == 1 and " --> <argv>:1:5" in result.stderr
    assert "<pattern config>" not in result.stderr
    data = json.loads(runner.invoke(app, ["build", "M-M*E", "-o", str(tmp_path / "j"), "--json"]).stdout)
    [p201] = [d for d in data["diagnostics"] if d["code"] == "P201"]
    assert (p201["span"]["start"], p201["span"]["end"]) == (4, 5)


def test_no_example_output_names_internals() -> None:
    """Every code's example, as run live into docs/diagnostics.md (kept equal to the program's output by
    tests/docs/test_docs_diagnostics.py): what users see of each diagnostic uses no internal names."""
    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    outputs = re.findall(r"```+console\n(.*?)```", text, re.S)
    assert len(outputs) >= len(CODES) // 2
    leaks = [m.group() for block in outputs for m in INTERNAL.finditer(block)]
    assert leaks == []
