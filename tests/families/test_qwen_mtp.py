"""Qwen's multi-token prediction block (`mtp_num_hidden_layers`), which transformers drops on load and the
serving engines build (`qwen3_5_moe.read_mtp`): read for qwen3_next, qwen3_5 and qwen3_5_moe, counted under
`mtp` as transformers' own full-attention decoder layer plus `fc` (2h -> h) and three norms, written back by
`build`, and refused with a caret where the IR's MTP block cannot say it (several layers sharing one `fc`,
a dedicated embedding)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patternc.analysis import model_stats
from patternc.canonical import canonical_map
from patternc.config import read_config
from tests.families.drift import errors

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from patternc.cli import app  # noqa: E402

HUB2 = Path(__file__).resolve().parents[1] / "fixtures" / "hub2"
SMALL: dict[str, Any] = {
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
    "num_hidden_layers": 4,
}
MOE: dict[str, Any] = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16}

# family -> (config class, decoder layer class, extra keys, the MTP block's symbols)
FAMILIES: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "qwen3_5": ("Qwen3_5TextConfig", "qwen3_5.modeling_qwen3_5.Qwen3_5DecoderLayer", {}, "*-"),
    "qwen3_5_moe": (
        "Qwen3_5MoeTextConfig",
        "qwen3_5_moe.modeling_qwen3_5_moe.Qwen3_5MoeDecoderLayer",
        {**MOE, "shared_expert_intermediate_size": 24},
        "*E",
    ),
    "qwen3_next": (
        "Qwen3NextConfig",
        "qwen3_next.modeling_qwen3_next.Qwen3NextDecoderLayer",
        {**MOE, "shared_expert_intermediate_size": 24},
        "*E",
    ),
}


def _config(family: str, **extra: Any) -> dict[str, Any]:
    cls, _, keys, _ = FAMILIES[family]
    config = getattr(transformers, cls)(**SMALL, **keys).to_dict()
    return {**config, **extra}


def _mtp_layer_elements(family: str, config: dict[str, Any]) -> int:
    """Elements of transformers' own decoder layer built as full attention (the MTP layer), on meta."""
    cls, path, _, _ = FAMILIES[family]
    module, _, name = f"transformers.models.{path}".rpartition(".")
    layer_cls = getattr(__import__(module, fromlist=[name]), name)
    cfg = getattr(transformers, cls)(**{k: v for k, v in config.items() if k not in {"mtp_num_hidden_layers"}})
    full = cfg.layer_types.index("full_attention")
    with torch.device("meta"):
        layer = layer_cls(cfg, full)
    return sum(t.numel() for t in layer.state_dict().values())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_mtp_is_read_and_counted_as_transformers_layer_plus_fc_and_norms(family: str) -> None:
    config = _config(family, mtp_num_hidden_layers=1, mtp_use_dedicated_embeddings=False)
    reading = read_config(config)
    assert reading.ok, errors(reading)
    spec = reading.spec
    assert spec is not None and spec.pattern.mtp is not None
    assert (spec.pattern.mtp.flat, spec.pattern.mtp.depths) == (FAMILIES[family][3], 1)
    h = SMALL["hidden_size"]
    stats = model_stats(spec)
    assert stats.params.mtp == _mtp_layer_elements(family, config) + 2 * h * h + 3 * h
    without = read_config(_config(family))
    assert without.spec is not None and without.spec.pattern.mtp is None
    assert stats.params.total == model_stats(without.spec).params.total  # MTP never in the total
    assert canonical_map(spec).architecture == family


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_absent_mtp_keys_are_no_mtp_and_no_default(family: str) -> None:
    reading = read_config(_config(family))
    assert reading.ok and reading.spec is not None and reading.spec.pattern.mtp is None
    assert not any(key.startswith("mtp_") for key in reading.defaults_used)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_mtp_is_written_back_by_build(tmp_path: Path, family: str) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(_config(family, mtp_num_hidden_layers=1)), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", str(source), "--target", family, "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert written["mtp_num_hidden_layers"] == 1
    again = read_config(out)
    assert again.spec is not None and again.spec.pattern.mtp == read_config(source).spec.pattern.mtp  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"mtp_num_hidden_layers": 2}, "share one `fc`"),
        ({"mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": True}, "embedding of its own"),
    ],
)
def test_inexpressible_mtp_is_p914_with_a_caret(extra: dict[str, Any], needle: str) -> None:
    reading = read_config(_config("qwen3_5", **extra))
    found = [d for d in reading.diagnostics if d.code == "P914"]
    assert len(found) == 1 and needle in found[0].message
    assert found[0].span is not None and reading.spec is None


def test_other_families_refuse_the_mtp_block() -> None:
    spec = read_config(_config("qwen3_5_moe", mtp_num_hidden_layers=1)).spec
    assert spec is not None
    reasons = canonical_map(spec).reasons
    assert any("MTP block `*E` x1: lfm2_moe has no multi-token prediction" in r for r in reasons["lfm2_moe"])


@pytest.mark.parametrize(
    ("folder", "family", "block"),
    [("Qwen3.5-27B", "qwen3_5", "*-"), ("Qwen3.6-35B-A3B-NVFP4", "qwen3_5_moe", "*E")],
)
def test_released_configs_carry_one_mtp_layer(folder: str, family: str, block: str) -> None:
    reading = read_config(HUB2 / folder / "config.json")
    assert reading.ok and reading.family == family and reading.spec is not None
    mtp = reading.spec.pattern.mtp
    assert mtp is not None and (mtp.flat, mtp.depths) == (block, 1)
    assert not any("mtp_num_hidden_layers" in d.message for d in reading.diagnostics if d.code == "P912")
