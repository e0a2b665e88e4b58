"""``patternc.presets``: one function sizes a bare pattern, one code (P601, with a caret) for a kind it cannot."""

from __future__ import annotations

from types import MappingProxyType

from patternc.api import analyze
from patternc.presets import PATTERN_DEFAULTS, TINY_NEMOTRON_H, Preset, preset_config, spec_for_pattern
from patternc.symbols import LayerKind


def _sized(text: str, preset: Preset = TINY_NEMOTRON_H, **overrides: object):  # type: ignore[no-untyped-def]
    analysis = analyze(text)
    assert analysis.pattern is not None
    return analysis, spec_for_pattern(analysis.pattern, analysis.source_map, preset, overrides)


def test_a_pattern_of_sized_kinds_becomes_the_presets_model() -> None:
    _, sized = _sized("M-M*-/*E", hidden_size=32)
    assert sized.missing == () and sized.reading is not None and sized.reading.spec is not None
    spec = sized.reading.spec
    assert spec.hidden_size == 32 and spec.vocab_size == PATTERN_DEFAULTS["vocab_size"]
    assert spec.pattern.flat == "M-M*-" and spec.pattern.mtp is not None and spec.pattern.mtp.flat == "*E"


def test_each_layer_the_preset_cannot_size_is_p601_under_that_layer() -> None:
    analysis, sized = _sized("MG*-/*G")
    assert sized.reading is None
    assert [d.code for d in sized.missing] == ["P601", "P601"]
    marked = [analysis.source.text[d.span.start : d.span.end] for d in sized.missing if d.span is not None]
    assert marked == ["G", "G"] and [d.span.start for d in sized.missing if d.span] == [1, 6]
    assert "which defines only `M`, `*`, `-` and `E`" in sized.missing[0].message
    assert TINY_NEMOTRON_H.listed == "`M`, `*`, `-` and `E`"


def test_the_defaults_are_an_argument() -> None:
    mamba_only = Preset("a Mamba model", MappingProxyType(dict(PATTERN_DEFAULTS)), frozenset({LayerKind.MAMBA2}))
    _, sized = _sized("M-", mamba_only)
    assert [d.code for d in sized.missing] == ["P601"]
    assert "sized as a Mamba model, which defines only `M`" in sized.missing[0].message


def test_preset_config_writes_the_layout_and_applies_overrides_last() -> None:
    analysis = analyze("M*/E")
    assert analysis.pattern is not None
    config = preset_config(analysis.pattern, TINY_NEMOTRON_H, {"hidden_size": 8})
    assert config["layers_block_type"] == ["linear_attention", "full_attention"]
    assert config["mtp_layers_block_type"] == ["moe"]
    assert config["num_nextn_predict_layers"] == 1 and config["hidden_size"] == 8
    assert PATTERN_DEFAULTS["hidden_size"] == 64  # the preset itself is not changed
