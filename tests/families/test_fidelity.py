"""Nothing lost, nothing silently wrong (issue 12, defects 1 and 2).

``build`` writes every source key and every ``--set`` into the config, or says why not (P512 for a
``--set``, P513 for a source key); the dtype survives; ``check`` of the output gives no warning
that ``check`` of the source did not.  ``check`` refuses a config whose layer layout is missing or
misspelled (P917) and names the key a misspelled one resembles (P918).  The property tests run
every real fixture and generated configs of three families through ``build`` and back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from patternc_transformers import carry
from patternc_transformers.build import build_model_dir
from typer.testing import CliRunner

from patternc import families
from patternc.cli import app
from patternc.codes import Severity
from patternc.config import read_config

ROOT = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURES = sorted([*(ROOT / "hub").glob("*/config.json"), *(ROOT / "hub2").glob("*/config.json")])
NOT_READABLE = {
    "Kimi-K3": ("P906", "situ"),  # `hidden_act: situ`, an activation transformers does not have (SOURCE.md)
}
"""Released configs transformers cannot build at all: fixture -> (the error code, a word of its message)."""
NOT_EXACT = {
    "MiniMax-M1": "rotates 0.5 of each head",  # `rotary_dim` 64 of 128; transformers' port rotates the whole head
}
"""Released configs that read, but that no transformers class computes exactly (build refuses, P501)."""
READABLE = [p for p in FIXTURES if p.parent.name not in NOT_READABLE]
BUILDABLE = [p for p in READABLE if p.parent.name not in NOT_EXACT]
ISSUE_SETS = {
    "expand": 1,
    "initializer_range": 0.01,
    "use_cache": False,
    "rescale_prenorm_residual": False,
    "time_step_max": 0.2,
    "num_logits_to_keep": 3,
    "mamba_ssm_cache_dtype": "bfloat16",
    "sliding_window": 16,
    "dtype": "bfloat16",
}
"""The keys issue 12 found dropped by ``build --set``, with values other than the defaults."""


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _warnings(reading: Any) -> set[str]:
    return {d.code for d in reading.diagnostics if d.severity is Severity.WARNING}


def _written(out: Path) -> dict[str, Any]:
    """The written config as transformers reads it (``{"__float__": "Infinity"}`` is inf)."""
    reading = read_config(out)
    return dict(reading.values) if reading.values else json.loads((out / "config.json").read_text())


# -- defect 1: build keeps what it is given -----------------------------------------------------------


def test_every_set_key_of_the_issue_reaches_the_config(tmp_path: Path) -> None:
    out = tmp_path / "m"
    sets = [part for key, value in ISSUE_SETS.items() for part in ("--set", f"{key}={json.dumps(value)}")]
    result = _run("build", "M-M*-", "-o", str(out), *sets)
    assert result.exit_code == 0, result.output
    written = json.loads((out / "config.json").read_text())
    assert {key: written.get(key) for key in ISSUE_SETS} == ISSUE_SETS


def test_a_bare_pattern_build_checks_clean(tmp_path: Path) -> None:
    """The defaults use expand 1 (4 heads x 16 = 64 = 1 x hidden 64): the written config says so (no P909)."""
    out = tmp_path / "m"
    assert _run("build", "M-M*-", "-o", str(out)).exit_code == 0
    assert json.loads((out / "config.json").read_text())["expand"] == 1
    checked = _run("check", str(out))
    assert checked.exit_code == 0 and "0 warnings" in checked.output, checked.output


@pytest.mark.parametrize("key", ["torch_dtype", "dtype"])
def test_a_config_only_build_keeps_the_dtype(tmp_path: Path, key: str) -> None:
    source = json.loads((ROOT / "hub" / "Nemotron-H-8B-Base-8K" / "config.json").read_text())
    source.pop("torch_dtype", None)
    source[key] = "bfloat16"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text(json.dumps(source))
    out = tmp_path / "out"
    result = _run("build", str(tmp_path / "src"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    import torch
    import transformers

    assert transformers.AutoConfig.from_pretrained(out).dtype == torch.bfloat16


def test_a_set_the_target_cannot_hold_is_an_error(tmp_path: Path) -> None:
    """`MM` is built as mamba2, whose config has no sliding_window: refused, nothing written."""
    out = tmp_path / "m"
    result = _run("build", "MM", "-o", str(out), "--set", "sliding_window=4")
    assert result.exit_code == 1
    assert (
        "error[P512]: `--set sliding_window` cannot be written: transformers' `mamba2` config has no "
        "`sliding_window`" in result.output
    )
    assert not out.exists()
    kept = _run("build", "MM", "-o", str(out), "--set", "sliding_window=4", "--target", "nemotron_h")
    assert kept.exit_code == 0, kept.output
    assert json.loads((out / "config.json").read_text())["sliding_window"] == 4


def test_a_set_the_target_derives_otherwise_is_an_error(tmp_path: Path) -> None:
    """mamba2 writes expand from the Mamba heads (4 x 16 / 64 = 1): `--set expand=2` cannot be honoured."""
    result = _run("build", "MM", "-o", str(tmp_path / "m"), "--set", "expand=2")
    assert result.exit_code == 1
    assert re.search(r"error\[P512\]: `--set expand` cannot be written: written as 1, .* not 2", result.output)


@pytest.mark.parametrize(
    ("target", "output"), [("torch", "the torch backend's directory"), ("megatron", "Megatron-Core's arguments")]
)
def test_a_set_outside_the_model_is_an_error_for_model_only_outputs(tmp_path: Path, target: str, output: str) -> None:
    """The torch directory and Megatron-Core's arguments hold the model alone: `use_cache` has no place there."""
    out = tmp_path / "m"
    result = _run("build", "M-M*-", "-o", str(out), "--target", target, "--set", "use_cache=false")
    assert result.exit_code == 1
    assert f"error[P512]: `--set use_cache` cannot be written: the output ({output}) holds only" in result.output
    assert not out.exists()
    sized = _run("build", "M-M*-", "-o", str(out), "--target", target, "--set", "intermediate_size=96")
    assert sized.exit_code == 0, sized.output


def test_source_keys_not_written_are_named(tmp_path: Path) -> None:
    out = tmp_path / "m"
    fixture = ROOT / "hub2" / "NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16" / "config.json"
    result = _run("build", str(fixture), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "note[P513]: 1 key of the source config not written: `auto_map`" in result.output
    assert "`auto_map`: it names remote-code files" in result.output
    written = json.loads((out / "config.json").read_text())
    assert "auto_map" not in written and written["norm_eps"] == 1e-05  # unknown keys kept, as transformers does


# -- defect 2: check refuses a config whose layout is missing or misspelled -------------------------


def test_a_misspelled_pattern_key_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "nemotron_h",\n  "hybrid_overide_pattern": "M-M*-"\n}\n')
    result = _run("check", str(path))
    assert result.exit_code == 1, result.output
    assert (
        "error[P917]: `hybrid_overide_pattern` is not a key of transformers' `nemotron_h` config; did you "
        "mean `hybrid_override_pattern`?"
    ) in result.output
    assert f"--> {path}:3:3" in result.output  # the span is the misspelled key
    assert "^^^^^^^^^^^^^^^^^^^^^^^^ did you mean `hybrid_override_pattern`?" in result.output


@pytest.mark.parametrize(
    ("config", "key"),
    [
        (
            {"model_type": "nemotron_h", "hidden_size": 64},
            "`layers_block_type`, `layer_types` or `hybrid_override_pattern`",
        ),
        (
            {"model_type": "nemotron_h", "hybrid_override_pattern": None},  # null is transformers' default too
            "`layers_block_type`, `layer_types` or `hybrid_override_pattern`",
        ),
        ({"model_type": "bamba", "num_hidden_layers": 4}, "`attn_layer_indices`"),
        ({"model_type": "bamba", "attn_layer_indices": [1]}, "`num_hidden_layers`"),
        ({"model_type": "granitemoehybrid", "num_hidden_layers": 4}, "`layer_types` or `layers_block_type`"),
        ({"model_type": "mamba2", "hidden_size": 64}, "`num_hidden_layers`"),
        ({"model_type": "qwen3_next", "hidden_size": 64}, "`layer_types` or `num_hidden_layers`"),
        ({"model_type": "jamba", "hidden_size": 64}, "`num_hidden_layers`"),
        ({"model_type": "zamba2", "hidden_size": 64}, "`layers_block_type` or `num_hidden_layers`"),
    ],
)
def test_a_missing_layout_is_an_error(config: dict[str, Any], key: str) -> None:
    reading = read_config(config)
    found = [d for d in reading.diagnostics if d.code == "P917"]
    assert len(found) == 1 and found[0].severity is Severity.ERROR, reading.diagnostics
    assert f"has no {key}:" in found[0].message
    assert reading.spec is None


@pytest.mark.parametrize(
    ("config", "wrong", "right"),
    [
        ({"model_type": "nemotron_h", "layer_type": ["mamba", "mlp"]}, "layer_type", "layer_types"),
        (
            {"model_type": "bamba", "num_hidden_layers": 4, "attn_layer_indexes": [1]},
            "attn_layer_indexes",
            "attn_layer_indices",
        ),
        (
            {"model_type": "nemotron_h", "hybrid_override_pattern": "M*", "num_nextn_predict_layer": 1},
            "num_nextn_predict_layer",
            "num_nextn_predict_layers",
        ),
        (
            {"llm_config": {"model_type": "nemotron_h", "hybrid_overide_pattern": "M*"}},
            "llm_config.hybrid_overide_pattern",
            "llm_config.hybrid_override_pattern",
        ),
    ],
)
def test_a_misspelled_layout_key_is_named(config: dict[str, Any], wrong: str, right: str) -> None:
    reading = read_config(config)
    found = [d for d in reading.diagnostics if d.code == "P917"]
    assert len(found) == 1 and f"`{wrong}` is not a key" in found[0].message, reading.diagnostics
    assert f"did you mean `{right}`?" in found[0].message
    assert found[0].span is not None
    assert reading.source.text[found[0].span.start : found[0].span.end] == json.dumps(wrong.rpartition(".")[2])
    assert not any(d.code == "P912" for d in reading.diagnostics)  # named once, as an error


def test_a_misspelled_known_key_is_a_warning() -> None:
    reading = read_config(
        {"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*-", "intermediate_sise": 512, "my_tool_note": "x"}
    )
    assert reading.ok and reading.spec is not None
    (warning,) = [d for d in reading.diagnostics if d.code == "P918"]
    assert warning.severity is Severity.WARNING
    assert (
        "`intermediate_sise` is not a key of transformers' `nemotron_h` config; did you mean "
        "`intermediate_size`?" in warning.message
    )
    (note,) = [d for d in reading.diagnostics if d.code == "P912"]
    assert "`my_tool_note`" in note.message and "intermediate_sise" not in note.message


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.parent.name)
def test_no_released_config_is_an_error(path: Path) -> None:
    reading = read_config(path)
    assert reading.ok and reading.spec is not None, [f"{d.code}: {d.message}" for d in reading.diagnostics]
    assert not {"P917", "P918"} & {d.code for d in reading.diagnostics}


# -- the property: build, then check ----------------------------------------------------------------


def assert_faithful(source: dict[str, Any], out: Path, target: str = "auto") -> None:
    """Build ``source`` (config only), then hold the output to the rules of docs/configs.md."""
    reading = read_config(source)
    assert reading.spec is not None, [f"{d.code}: {d.message}" for d in reading.diagnostics]
    result = build_model_dir(reading.spec, out, target=target, source_config=reading.values)
    assert result.ok, [f"{d.code}: {d.message}" for d in result.diagnostics]
    back = read_config(out)
    assert back.spec is not None, [f"{d.code}: {d.message}" for d in back.diagnostics]
    written = json.loads((out / "config.json").read_text())
    values = back.values
    for key in reading.values:
        into = result.config_keys.get(key)
        if key in result.dropped_keys:
            assert into is None and result.dropped_keys[key]
            assert any(d.code == "P513" and f"`{key}`" in d.message for d in result.diagnostics)
        elif into == carry.MODEL:  # another family: its own keys hold the same model
            assert result.architecture != reading.family
        else:
            assert into is not None, f"`{key}` neither written nor reported"
            assert into in written or into in values or into in {"dtype"}, (key, into)
            if into == key and key in values and key not in carry.IDENTITY_KEYS:
                assert carry.same(reading.values[key], values[key]), (key, reading.values[key], values[key])
    new = _warnings(back) - _warnings(reading)
    assert not new, [f"{d.code}: {d.message}" for d in back.diagnostics if d.code in new]
    dtype = reading.values.get("dtype") or reading.values.get("torch_dtype")
    if dtype is not None:
        assert written.get("dtype") == dtype
    assert back.pattern == reading.pattern
    keep = {"pattern", "hidden_size", "vocab_size", "mamba", "attention", "mlp", "moe", "norm"}
    assert back.spec.model_dump(include=keep) == reading.spec.model_dump(include=keep)


@pytest.mark.parametrize("path", BUILDABLE, ids=lambda p: p.parent.name)
def test_every_fixture_builds_faithfully(path: Path, tmp_path: Path) -> None:
    assert_faithful(json.loads(path.read_text()), tmp_path / "out")


@pytest.mark.parametrize("name", sorted(NOT_READABLE))
def test_unreadable_released_configs_say_why(name: str) -> None:
    """The exemptions above stay true: the config is an error, for the stated reason."""
    code, word = NOT_READABLE[name]
    reading = read_config(ROOT / "hub2" / name / "config.json")
    assert not reading.ok and any(d.code == code and word in d.message for d in reading.diagnostics)


@pytest.mark.parametrize("name", sorted(NOT_EXACT))
def test_inexact_released_configs_are_refused_by_build_with_the_reason(name: str, tmp_path: Path) -> None:
    reading = read_config(ROOT / "hub2" / name / "config.json")
    assert reading.ok and reading.spec is not None
    result = build_model_dir(reading.spec, tmp_path / "out", target="auto", source_config=reading.values)
    assert [d.code for d in result.diagnostics if d.severity is Severity.ERROR] == ["P501"]
    assert any(NOT_EXACT[name] in note for d in result.diagnostics for note in (d.message, *d.notes))
    assert not (tmp_path / "out").exists()


_EXTRAS: dict[str, st.SearchStrategy[Any]] = {
    "initializer_range": st.sampled_from([0.0, 0.01, 0.05]),
    "use_cache": st.booleans(),
    "time_step_max": st.sampled_from([0.05, 0.2]),
    "time_step_min": st.sampled_from([0.0, 0.002]),
    "time_step_floor": st.sampled_from([0.0, 1e-3]),
    "rescale_prenorm_residual": st.booleans(),
    "residual_in_fp32": st.booleans(),
    "num_logits_to_keep": st.sampled_from([0, 1, 4]),
    "mamba_ssm_cache_dtype": st.sampled_from(["float32", "bfloat16"]),
    "sliding_window": st.sampled_from([None, 32]),
    "use_mamba_kernels": st.booleans(),
    "hidden_dropout": st.sampled_from([0.0, 0.1]),
    "tie_word_embeddings": st.booleans(),
    "pad_token_id": st.sampled_from([None, 0, 3]),
    "eos_token_id": st.sampled_from([2, [2, 5]]),
    "my_tool_note": st.just("kept"),
    "auto_map": st.just({"AutoConfig": "configuration_nemotron_h.NemotronHConfig"}),
    "_name_or_path": st.just("/somewhere/else"),
}
_DTYPES = st.sampled_from([{}, {"dtype": "bfloat16"}, {"torch_dtype": "float16"}, {"dtype": "float32"}])
_NAMES = {
    "M": ("mamba", "linear_attention"),
    "*": ("attention", "full_attention"),
    "-": ("mlp", "mlp"),
    "E": ("moe", "moe"),
}


@st.composite
def nemotron_h_configs(draw: st.DrawFn) -> dict[str, Any]:
    pattern = draw(st.text(alphabet="M*-E", min_size=1, max_size=6))
    legacy = draw(st.booleans())
    config: dict[str, Any] = {"model_type": "nemotron_h", "vocab_size": 64, "hidden_size": 32}
    spelling = draw(st.sampled_from(["hybrid_override_pattern", "layers_block_type", "layer_types"]))
    config[spelling] = (
        pattern if spelling == "hybrid_override_pattern" else [_NAMES[s][0 if legacy else 1] for s in pattern]
    )
    if draw(st.booleans()):
        config["num_hidden_layers"] = len(pattern) + draw(st.sampled_from([0, 0, 1]))
    heads = draw(st.sampled_from([2, 4]))
    config |= {
        "mamba_num_heads": heads,
        "mamba_head_dim": 16,
        "ssm_state_size": 8,
        "conv_kernel": 4,
        draw(st.sampled_from(["n_groups", "mamba_n_groups"])): draw(st.sampled_from([1, 2])),
        "num_attention_heads": 4,
        "num_key_value_heads": draw(st.sampled_from([1, 2, 4])),
        "head_dim": 8,
        "intermediate_size": 48,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 16,
        "moe_shared_expert_intermediate_size": 24,
        "n_group": 1,
        "topk_group": 1,
        "max_position_embeddings": 128,
    }
    expand = draw(st.sampled_from([None, 1, 2]))
    if expand is not None:
        config[draw(st.sampled_from(["expand", "mamba_expand"]))] = expand
    for key in draw(st.lists(st.sampled_from(sorted(_EXTRAS)), unique=True, max_size=8)):
        config[key] = draw(_EXTRAS[key])
    return config | draw(_DTYPES)


@st.composite
def mamba2_configs(draw: st.DrawFn) -> dict[str, Any]:
    expand = draw(st.sampled_from([1, 2]))
    config = {
        "model_type": "mamba2",
        "vocab_size": 64,
        "hidden_size": 32,
        "expand": expand,
        "num_heads": 32 * expand // 16,
        "head_dim": 16,
        "n_groups": 1,
        "state_size": 8,
        "num_hidden_layers": draw(st.integers(1, 3)),
    }
    for key in draw(
        st.lists(
            st.sampled_from(
                [
                    "initializer_range",
                    "use_cache",
                    "time_step_max",
                    "residual_in_fp32",
                    "rescale_prenorm_residual",
                    "my_tool_note",
                ]
            ),
            unique=True,
            max_size=4,
        )
    ):
        config[key] = draw(_EXTRAS[key])
    return config | draw(_DTYPES)


@st.composite
def bamba_configs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    config = {
        "model_type": "bamba",
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": n,
        "attn_layer_indices": draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)),
        "intermediate_size": 48,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "mamba_n_heads": 4,
        "mamba_d_head": 16,
        "mamba_n_groups": 1,
        "mamba_d_state": 8,
        "mamba_expand": 2,
    }
    for key in draw(
        st.lists(
            st.sampled_from(["initializer_range", "use_cache", "num_logits_to_keep", "my_tool_note", "pad_token_id"]),
            unique=True,
            max_size=4,
        )
    ):
        config[key] = draw(_EXTRAS[key])
    return config | draw(_DTYPES)


def _targets(config: dict[str, Any]) -> list[str]:
    from patternc.canonical import canonical_map

    reading = read_config(config)
    assert reading.spec is not None, [f"{d.code}: {d.message}" for d in reading.diagnostics]
    return ["auto", *canonical_map(reading.spec).matched]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.one_of(nemotron_h_configs(), mamba2_configs(), bamba_configs()), data=st.data())
def test_generated_configs_build_faithfully(config: dict[str, Any], data: st.DataObject, tmp_path: Path) -> None:
    target = data.draw(st.sampled_from(_targets(config)))
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    assert_faithful(config, out, target)


_SETS: dict[str, st.SearchStrategy[Any]] = {
    **{k: v for k, v in _EXTRAS.items() if k in families.get("nemotron_h").input_model.model_fields},
    "expand": st.sampled_from([1, 2]),
    "hidden_size": st.sampled_from([32, 64]),
    "dtype": st.just("bfloat16"),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pattern=st.text(alphabet="M*-E", min_size=1, max_size=5),
    keys=st.dictionaries(st.sampled_from(sorted(_SETS)), st.none(), max_size=5),
    data=st.data(),
)
def test_every_set_is_written_or_refused(
    pattern: str, keys: dict[str, None], data: st.DataObject, tmp_path: Path
) -> None:
    sets = {key: data.draw(_SETS[key]) for key in keys}
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    argv = [part for key, value in sets.items() for part in ("--set", f"{key}={json.dumps(value)}")]
    result = _run("build", "-o", str(out), *argv, "--", pattern)  # `--`: a pattern may start with `-`
    if result.exit_code == 0:
        written = _written(out)
        for key, value in sets.items():
            assert key in written and carry.same(value, written[key]), (key, value, written.get(key))
        from patternc.api import parse
        from patternc.presets import TINY_NEMOTRON_H, preset_config

        # what check of the source says (the pattern's P202, a --set's P909 or P916) may be said again
        source = read_config(preset_config(parse(pattern), TINY_NEMOTRON_H, sets))
        checked = read_config(out)
        assert not _warnings(checked) - _warnings(source), checked.diagnostics
    else:
        assert result.exit_code == 1, result.output
        refused = set(re.findall(r"error\[P512\]: `--set (\w+)`", result.output))
        assert refused and refused <= set(sets), result.output
        assert not out.exists()


def test_a_value_the_other_family_refuses_is_not_carried(tmp_path: Path) -> None:
    """Found by the property: Nemotron-H allows time_step_min 0, Mamba2 does not (it takes its log)."""
    config = {
        "model_type": "nemotron_h",
        "vocab_size": 64,
        "hidden_size": 32,
        "hybrid_override_pattern": "MM",
        "mamba_num_heads": 4,
        "mamba_head_dim": 16,
        "ssm_state_size": 8,
        "n_groups": 1,
        "time_step_min": 0.0,
        "time_step_max": 0.2,
    }
    assert_faithful(config, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    assert written["model_type"] == "mamba2" and written["time_step_max"] == 0.2
    assert written["time_step_min"] > 0 and written["time_step_limit"][0] == 0.0
