"""patternc.config.read_config: hub fixtures, every family, every spelling, hostile input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from patternc.codes import BY_CODE, USAGE_CODES, Severity
from patternc.config import MAX_CONFIG_BYTES, ConfigReading, read_config
from patternc.explain import example_files, write_example_files

HUB = Path(__file__).resolve().parents[1] / "fixtures" / "hub"
FIXTURES = sorted(p.name for p in HUB.iterdir() if (p / "config.json").is_file())


def codes(reading: ConfigReading) -> list[str]:
    return [d.code for d in reading.diagnostics]


def errors(reading: ConfigReading) -> list[str]:
    return [f"{d.code}: {d.message}" for d in reading.diagnostics if d.severity is Severity.ERROR]


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HUB / name / "config.json").read_text(encoding="utf-8"))
    return data


NANO30 = "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"
NANO9 = "NVIDIA-Nemotron-Nano-9B-v2"
H8B = "Nemotron-H-8B-Base-8K"


# -- hub fixtures ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_reads_without_errors(name: str) -> None:
    reading = read_config(HUB / name)
    assert reading.ok, errors(reading)
    assert reading.spec is not None and reading.pattern is not None
    data = fixture(name)
    assert reading.pattern.flat == data["hybrid_override_pattern"]
    assert reading.spec.pattern == reading.pattern
    assert reading.family == "nemotron_h"
    assert reading.spec.hidden_size == data["hidden_size"]


def test_nano_30b_moe() -> None:
    spec = read_config(HUB / NANO30).spec
    assert spec is not None and spec.moe is not None and spec.attention is not None and spec.mamba is not None
    assert spec.pattern.counts() == {"M": 23, "*": 6, "E": 23}
    moe = spec.moe
    assert (moe.num_experts, moe.top_k, moe.shared_experts, moe.routed_scaling_factor) == (128, 6, 1, 2.5)
    assert moe.router == "sigmoid" and moe.score_correction_bias and not moe.expert_gated
    assert moe.expert_activation == "relu2" and moe.shared_intermediate_size == 3712 and moe.intermediate_size == 1856
    assert spec.mlp is None
    assert spec.attention.rope is None and (spec.attention.num_heads, spec.attention.num_kv_heads) == (32, 2)
    assert spec.mamba.inner_size == 64 * 64 and spec.mamba.norm_group_size == 4096 // 8
    assert spec.mamba.time_step_limit == (1e-4 * 10, float("inf"))


def test_nano_30b_reports_expand_mismatch_and_vestigial_keys() -> None:
    reading = read_config(HUB / NANO30)
    p909 = [d for d in reading.diagnostics if d.code == "P909"]
    assert len(p909) == 1 and "4096" in p909[0].message and p909[0].severity is Severity.WARNING
    vestigial = " ".join(d.message for d in reading.diagnostics if d.code == "P913")
    assert "`intermediate_size`" in vestigial and "`rope_theta`" in vestigial
    assert reading.unknown_keys == ["norm_eps"]


def test_nano_9b_dense_and_defaults() -> None:
    reading = read_config(HUB / NANO9)
    spec = reading.spec
    assert spec is not None and spec.mlp is not None and spec.moe is None
    assert spec.mlp.gated is False and spec.mlp.activation == "relu2" and spec.mlp.intermediate_size == 15680
    assert spec.pattern.counts() == {"M": 27, "*": 4, "-": 25}
    assert reading.defaults_used["layer_norm_epsilon"] == 1e-5
    assert reading.defaults_used["chunk_size"] == 128
    note = next(d for d in reading.diagnostics if d.code == "P911")
    assert "`layer_norm_epsilon`" in note.message and note.severity is Severity.NOTE


def test_8b_attention_head_dim_alias() -> None:
    reading = read_config(HUB / H8B)
    assert reading.spec is not None and reading.spec.attention is not None
    assert reading.spec.attention.head_dim == 128
    assert "P915" in codes(reading)
    assert reading.spec.mamba is not None and reading.spec.mamba.norm_group_size == 128 * 64 // 8


def test_spans_point_at_keys() -> None:
    reading = read_config(HUB / NANO30)
    p909 = next(d for d in reading.diagnostics if d.code == "P909")
    assert p909.span is not None
    assert reading.source.text[p909.span.start : p909.span.end] == '"mamba_num_heads"'


def test_dict_input_equals_file_input() -> None:
    from_file = read_config(HUB / NANO9)
    from_dict = read_config(fixture(NANO9))
    assert from_dict.spec == from_file.spec
    assert codes(from_dict) == codes(from_file)


# -- nemotron_h spellings ------------------------------------------------------------------------

NANO9_LIST = [
    {"M": "linear_attention", "*": "full_attention", "-": "mlp", "E": "moe"}[c]
    for c in fixture(NANO9)["hybrid_override_pattern"]
]


@pytest.mark.parametrize("key", ["layers_block_type", "layer_types"])
@pytest.mark.parametrize("legacy", [False, True])
def test_layer_lists_in_both_vocabularies(key: str, legacy: bool) -> None:
    data = fixture(NANO9)
    pattern = data.pop("hybrid_override_pattern")
    names = (
        [{"linear_attention": "mamba", "full_attention": "attention"}.get(n, n) for n in NANO9_LIST]
        if legacy
        else NANO9_LIST
    )
    data[key] = names
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.pattern is not None and reading.pattern.flat == pattern
    assert ("P915" in codes(reading)) == (legacy or key == "layer_types")


def test_bad_layer_name_names_the_index() -> None:
    data = fixture(NANO9)
    data["layers_block_type"] = ["mamba", "mlp", "mamba2"]
    reading = read_config(data)
    assert not reading.ok and reading.spec is None
    assert any(d.code == "P014" and "layers_block_type[2]" in d.message for d in reading.diagnostics)


def test_bad_pattern_character_points_into_the_string() -> None:
    data = fixture(NANO9)
    data["hybrid_override_pattern"] = "M-MX*-"
    data.pop("num_hidden_layers")
    reading = read_config(data)
    bad = next(d for d in reading.diagnostics if d.code == "P001")
    assert bad.span is not None and reading.source.text[bad.span.start] == "X"


def test_mtp_pattern_string() -> None:
    data = fixture(NANO30)
    data.update(num_nextn_predict_layers=1, mtp_hybrid_override_pattern="*E")
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.pattern is not None and reading.pattern.mtp is not None
    assert reading.pattern.mtp.flat == "*E" and reading.pattern.mtp.depths == 1


def test_mtp_layer_list_legacy_names() -> None:
    data = fixture(NANO30)
    data.update(num_nextn_predict_layers=2, mtp_layers_block_type=["attention", "moe"])
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.pattern is not None and reading.pattern.mtp is not None
    assert (reading.pattern.mtp.flat, reading.pattern.mtp.depths) == ("*E", 2)


def test_mtp_keys_without_depth_are_vestigial() -> None:
    data = fixture(NANO30)
    data["mtp_hybrid_override_pattern"] = "*E"
    reading = read_config(data)
    assert reading.pattern is not None and reading.pattern.mtp is None
    assert any(d.code == "P913" and "mtp_hybrid_override_pattern" in d.message for d in reading.diagnostics)


def test_mamba_aliases_as_transformers_renames_them() -> None:
    data = fixture(NANO9)
    for field in ("n_groups", "conv_kernel", "chunk_size", "use_conv_bias", "expand"):
        data.pop(field, None)
    data.update(mamba_n_groups=4, mamba_d_conv=3, mamba_chunk_size=64, mamba_conv_bias=False, mamba_expand=2)
    data.update(mamba_dt_min=0.002, mamba_dt_max=0.2, mamba_dt_limit=[0.0, 1e9], mamba_dt_init_floor=1e-3)
    reading = read_config(data)
    assert reading.ok, errors(reading)
    mamba = reading.spec.mamba if reading.spec else None
    assert mamba is not None
    assert (mamba.n_groups, mamba.conv_kernel, mamba.chunk_size, mamba.conv_bias) == (4, 3, 64, False)
    assert mamba.time_step_limit == (0.002, float("inf"))
    assert "P915" in codes(reading) and reading.unknown_keys == []


def test_alias_conflict_warns_and_alias_wins() -> None:
    data = fixture(NANO9)
    data["mamba_n_groups"] = 4
    reading = read_config(data)
    assert reading.spec is not None and reading.spec.mamba is not None and reading.spec.mamba.n_groups == 4
    assert any(d.code == "P916" and "mamba_n_groups" in d.message for d in reading.diagnostics)


def test_attention_head_dim_other_than_128_warns() -> None:
    data = fixture(H8B)
    data["attention_head_dim"] = 64
    reading = read_config(data)
    assert reading.spec is not None and reading.spec.attention is not None
    assert reading.spec.attention.head_dim == 64
    assert any(d.code == "P916" and "attention_head_dim" in d.message for d in reading.diagnostics)


@pytest.mark.parametrize("wrapper", ["llm_config", "text_config"])
def test_nested_vision_language_wrapper(wrapper: str) -> None:
    data = {"model_type": "NemotronH_Nano_VL_V2", "architectures": ["NemotronH_Nano_VL_V2"], wrapper: fixture(NANO9)}
    data["vision_config"] = {"hidden_size": 1280, "model_type": "radio"}
    reading = read_config(data)
    assert reading.ok, errors(reading)
    assert reading.spec is not None and reading.spec.hidden_size == 4480
    assert any(d.code == "P915" and wrapper in d.message for d in reading.diagnostics)
    assert all(k.startswith(wrapper + ".") for k in reading.defaults_used)


def test_family_from_architectures() -> None:
    data = fixture(H8B)
    del data["model_type"]
    reading = read_config(data)
    assert reading.family == "nemotron_h" and reading.ok


def test_num_hidden_layers_mismatch_warns() -> None:
    data = fixture(NANO9)
    data["num_hidden_layers"] = 52
    reading = read_config(data)
    assert reading.ok
    p910 = next(d for d in reading.diagnostics if d.code == "P910")
    assert "56" in p910.message and "num_hidden_layers" in p910.message


def test_dense_config_with_moe_keys_is_noted() -> None:
    data = fixture(NANO9)
    data.update(n_routed_experts=128, num_experts_per_tok=6)
    reading = read_config(data)
    vestigial = [d for d in reading.diagnostics if d.code == "P913"]
    assert vestigial and "n_routed_experts" in vestigial[0].message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_key_value_heads": 6}, "num_key_value_heads"),
        ({"n_groups": 7}, "n_groups"),
        ({"num_experts_per_tok": 200}, "num_experts_per_tok"),
        ({"n_group": 3}, "n_group"),
        ({"topk_group": 2}, "topk_group"),
    ],
)
def test_inconsistent_values(changes: dict[str, Any], field: str) -> None:
    data = fixture(NANO30)
    data.update(changes)
    reading = read_config(data)
    assert not reading.ok and reading.spec is None
    assert any(d.code == "P908" and field in d.message for d in reading.diagnostics), codes(reading)


def test_unsupported_model_type_lists_supported() -> None:
    reading = read_config({"model_type": "llama"})
    problem = next(d for d in reading.diagnostics if d.code == "P905")
    assert problem.help is not None and "`nemotron_h`" in problem.help and "`qwen3_next`" in problem.help


# -- hostile input --------------------------------------------------------------------------------


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "nemotron_h",}', encoding="utf-8")
    reading = read_config(path)
    assert codes(reading) == ["P903"] and reading.diagnostics[0].span is not None


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model_type": "nemotron_h\xff"}')
    assert codes(read_config(path)) == ["P903"]


def test_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("[1, 2]", encoding="utf-8")
    assert codes(read_config(path)) == ["P903"]


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deeply_nested(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "nemotron_h", "x": ' + "[" * depth + "]" * depth + "}", encoding="utf-8")
    reading = read_config(path)
    assert codes(reading) == ["P903"] and "nests" in reading.diagnostics[0].message


def test_deeply_nested_dict() -> None:
    data: dict[str, Any] = {}
    inner = data
    for _ in range(10_000):
        inner["x"] = {}
        inner = inner["x"]
    assert codes(read_config(data)) == ["P903"]


def test_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "mamba2", "num_hidden_layers": 2, "num_hidden_layers": 3}', encoding="utf-8")
    reading = read_config(path)
    dup = next(d for d in reading.diagnostics if d.code == "P904")
    assert dup.span is not None and reading.source.text[dup.span.start :].startswith('"num_hidden_layers": 3')
    assert reading.pattern is not None and reading.pattern.flat == "MMM"


def test_huge_file_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_CONFIG_BYTES + 1)  # sparse: no 16 MiB written
    reading = read_config(path)
    assert codes(reading) == ["P902"] and "16,777,216" in reading.diagnostics[0].message


def test_directory_without_config(tmp_path: Path) -> None:
    reading = read_config(tmp_path)
    assert codes(reading) == ["P901"] and "no config.json" in reading.diagnostics[0].message


def test_directory_with_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(fixture(NANO9)), encoding="utf-8")
    assert read_config(tmp_path).ok


def test_missing_file(tmp_path: Path) -> None:
    assert codes(read_config(tmp_path / "nope.json")) == ["P901"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "config.json"
    link.symlink_to(tmp_path / "blobs" / "missing")
    for target in (link, tmp_path):
        reading = read_config(target)
        assert codes(reading) == ["P901"] and "symbolic link" in reading.diagnostics[0].message


def test_not_a_regular_file() -> None:
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    assert codes(read_config("/dev/null")) == ["P901"]


def test_nan_and_infinity_literals(tmp_path: Path) -> None:
    data = json.dumps(fixture(NANO9))
    path = tmp_path / "config.json"
    path.write_text(
        data.replace('"hidden_size": 4480', '"hidden_size": NaN').replace('"conv_kernel": 4', '"conv_kernel": Infinity')
    )
    reading = read_config(path)
    messages = " ".join(d.message for d in reading.diagnostics if d.code == "P906")
    assert "`hidden_size`" in messages and "`conv_kernel`" in messages


# -- the code table's examples, read through the API (the CLI runs them in tests/core/test_diagnostics.py) --


@pytest.mark.parametrize("code", sorted(c for c in BY_CODE if c.startswith("P9") and c not in USAGE_CODES))
def test_p9_example_emits_its_code(code: str, tmp_path: Path) -> None:
    entry = BY_CODE[code]
    assert entry.example[:1] == ("check",) and example_files(entry)
    write_example_files(entry, tmp_path)
    args = list(entry.example[1:])
    max_bytes = MAX_CONFIG_BYTES
    if args[0] == "--max-chars":
        max_bytes, args = int(args[1]), args[2:]
    reading = read_config(tmp_path / args[0], max_bytes=max_bytes)
    assert code in codes(reading), codes(reading)


def test_reads_what_transformers_save_pretrained_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """transformers writes inf as {"__float__": "Infinity"}; a saved config reads back without errors."""
    transformers = pytest.importorskip("transformers")
    transformers.NemotronHConfig(hybrid_override_pattern="M-M*-", tie_word_embeddings=True).save_pretrained(tmp_path)
    assert '"__float__"' in (tmp_path / "config.json").read_text()
    reading = read_config(tmp_path)
    assert reading.ok and reading.spec is not None
    assert reading.spec.mamba is not None and reading.spec.mamba.time_step_limit[1] == float("inf")
    # NemotronHForCausalLM never ties lm_head (`_tied_weights_keys = {}`): the spec says so, with a warning.
    assert reading.spec.tie_embeddings is False
    assert any(d.code == "P916" and "tie_word_embeddings" in d.message for d in reading.diagnostics)
