"""`patternc build --target megatron|vllm`: the engines beyond one machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc.cli import app
from patternc.codes import Severity
from patternc.config import read_config
from patternc.engines import megatron_arguments, megatron_command_line, vllm_config_fields

HUB = Path(__file__).parents[1] / "fixtures" / "hub"
NANO = HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16" / "config.json"


def _spec(path: Path = NANO):  # type: ignore[no-untyped-def]
    spec = read_config(path).spec
    assert spec is not None
    return spec


def test_megatron_arguments_carry_the_balanced_split_and_the_model() -> None:
    args, problems = megatron_arguments(_spec(), pp=4)
    assert args is not None and not [d for d in problems if d.severity == "error"]
    pattern = args["hybrid-layer-pattern"]
    assert pattern.count("|") == 3 and pattern.replace("|", "") == _spec().pattern.flat
    assert args["num-layers"] == 52 and args["hidden-size"] == 2688
    assert args["num-experts"] == 128 and args["moe-router-topk"] == 6
    assert args["moe-router-score-function"] == "sigmoid" and args["moe-router-enable-expert-bias"] is True
    assert args["mamba-num-heads"] == 64 and args["num-query-groups"] == 2
    flags = megatron_command_line(args)
    assert flags[0] == f"--hybrid-layer-pattern={pattern}"
    assert "--untie-embeddings-and-output-weights" in flags and "False" not in flags


def test_megatron_refuses_families_it_has_no_recipe_for() -> None:
    spec = read_config(
        {
            "model_type": "mamba2",
            "num_hidden_layers": 2,
            "hidden_size": 64,
            "num_heads": 8,
            "head_dim": 16,
            "n_groups": 2,
            "state_size": 16,
            "vocab_size": 128,
        }
    ).spec
    assert spec is not None
    args, problems = megatron_arguments(spec)
    assert args is None and [d.code for d in problems if d.severity is Severity.ERROR] == ["P511"]


def test_vllm_fields_and_refusal() -> None:
    fields, _ = vllm_config_fields(_spec())
    assert fields == {"hybrid_override_pattern": _spec().pattern.flat}
    mtp = read_config(
        {
            "model_type": "nemotron_h",
            "hybrid_override_pattern": "M*M*",
            "mtp_hybrid_override_pattern": "MM",
            "num_nextn_predict_layers": 1,
        }
    ).spec
    assert mtp is not None
    fields, problems = vllm_config_fields(mtp)
    assert fields is None and "P302" in {d.code for d in problems}


def test_build_megatron_writes_one_document_atomically(tmp_path: Path) -> None:
    out = tmp_path / "meg"
    result = CliRunner().invoke(app, ["build", str(NANO), "-o", str(out), "--target", "megatron", "--pp", "2"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "megatron_args.json").read_text())
    assert document["format"] == "patternc.megatron.v1" and document["validated_with"] == "megatron-core 0.19.2"
    assert document["arguments"]["pipeline-model-parallel-size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meg"]  # no temporary sibling left
    again = CliRunner().invoke(app, ["build", str(NANO), "-o", str(out), "--target", "megatron"])
    assert again.exit_code == 1 and "P502" in again.output


def test_build_vllm_loads_in_transformers_with_the_pattern_strings(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "v"
    result = CliRunner().invoke(app, ["build", "MEM*E/*E", "-o", str(out), "--target", "vllm"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "config.json").read_text())
    assert written["hybrid_override_pattern"] == "MEM*E" and written["mtp_hybrid_override_pattern"] == "*E"
    config = transformers.AutoConfig.from_pretrained(out)
    assert config.hybrid_override_pattern == "MEM*E" and config.num_nextn_predict_layers == 1


def test_build_vllm_refuses_what_vllm_cannot_load(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "M*M*/MM", "-o", str(tmp_path / "v"), "--target", "vllm"])
    assert result.exit_code == 1 and "P302" in result.output and not (tmp_path / "v").exists()


def _pattern_spec(text: str, **overrides: object):  # type: ignore[no-untyped-def]
    from patternc.api import parse
    from patternc.presets import TINY_NEMOTRON_H, preset_config

    spec = read_config(preset_config(parse(text), TINY_NEMOTRON_H, overrides)).spec
    assert spec is not None
    return spec


def test_megatron_arguments_megatron_refused_before() -> None:
    """The arguments Megatron-Core 0.19.2 refused (tests/core/test_megatron_validation.py runs its validation)."""
    args, _ = megatron_arguments(_pattern_spec("(M-M*-){4}"), pp=2, vpp=2)
    assert args is not None and "num-virtual-stages-per-pipeline-rank" not in args  # vpp comes from the `|`
    assert args["hybrid-layer-pattern"].count("|") == 3
    args, _ = megatron_arguments(_pattern_spec("-M*M-"))
    assert args is not None and megatron_command_line(args)[0] == "--hybrid-layer-pattern=-M*M-"
    args, _ = megatron_arguments(_pattern_spec("M-M-"))
    assert args is not None and args["num-attention-heads"] == 1 and "kv-channels" not in args
    args, _ = megatron_arguments(_pattern_spec("MEMEME"))
    assert args is not None and args["squared-relu"] is True and args["disable-bias-linear"] is True
    assert "--squared-relu" in megatron_command_line(args) and "ffn-hidden-size" not in args
    assert {"seq-length", "micro-batch-size", "max-position-embeddings"} <= set(args)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"mlp_hidden_act": "silu"}, "P314"), ({"conv_kernel": 2}, "P315"), ({"mlp_bias": True}, "P316")],
)
def test_megatron_refuses_models_it_cannot_build(overrides: dict[str, object], code: str) -> None:
    args, problems = megatron_arguments(_pattern_spec("M-M*-", **overrides))
    assert args is None and code in {d.code for d in problems}


def test_build_megatron_refuses_virtual_stages_on_one_rank(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["build", "(M-M*-){2}", "-o", str(tmp_path / "m"), "--target", "megatron", "--vpp", "2"]
    )
    assert result.exit_code == 1 and "P107" in result.output and not (tmp_path / "m").exists()
