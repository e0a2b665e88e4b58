"""A config's layer list becomes IR without being printed as pattern text and parsed again.

Only ``hybrid_override_pattern`` (which *is* text) goes through the parser; every other layout is
built into a ``Pattern`` directly and checked by the default passes, with each diagnostic moved
onto the JSON key that placed its layers.
"""

from __future__ import annotations

from typing import Any

import pytest

from patternc.config import read_config, readers


def _refuse(text: str, *args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"the layout was parsed as text: {text!r}")


@pytest.mark.parametrize(
    "config",
    [
        {
            "model_type": "nemotron_h",
            "layers_block_type": ["mamba", "attention", "mlp", "moe"],
            "num_nextn_predict_layers": 1,
        },
        {"model_type": "bamba", "num_hidden_layers": 3, "attn_layer_indices": [1]},
        {"model_type": "mamba2", "num_hidden_layers": 2, "hidden_size": 256, "num_heads": 8},
        {"model_type": "qwen3_next", "num_hidden_layers": 4},
    ],
)
def test_a_layer_list_is_never_parsed(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "analyze", _refuse)
    reading = read_config(config)
    assert reading.ok, [d.message for d in reading.diagnostics]
    assert reading.pattern is not None and reading.pattern.num_layers > 0


def test_pattern_text_is_parsed_and_its_carets_land_in_the_string() -> None:
    reading = read_config({"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*-X"})
    found = [d for d in reading.diagnostics if d.code == "P001"]
    assert found and found[0].span is not None
    assert reading.source.text[found[0].span.start : found[0].span.end] == "X"


def test_a_pass_finding_points_at_the_key_that_placed_the_layers() -> None:
    reading = read_config({"model_type": "qwen3_next", "num_hidden_layers": 4, "mlp_only_layers": [0]})
    (mixing,) = [d for d in reading.diagnostics if d.code == "P201"]
    assert mixing.span is not None and mixing.label == "places the MoE layers"
    assert reading.source.text[mixing.span.start : mixing.span.end] == '"mlp_only_layers"'
