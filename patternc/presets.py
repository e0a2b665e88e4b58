"""A bare pattern plus defaults (a preset) into a model spec: the one path ``build``, ``stats``, ``split``,
``draw`` and ``run`` share.

A bare pattern (``"M-M*-"``) names layer kinds but no sizes.  A ``Preset`` supplies them: the config
keys of one family, and the layer kinds those keys size.  ``spec_for_pattern`` writes the pattern's
layers into the preset's config and reads it with ``patternc.config.read_config``, so a bare pattern
gets exactly the checks and the ``ModelSpec`` a config file of that family would.  A layer whose kind
the preset does not size is ``P601`` with a caret under the layer, whichever command meets it (before
this module, ``build`` said ``P015`` without a location and ``stats`` ``P601`` with one).

The defaults are an argument: ``TINY_NEMOTRON_H`` (``PATTERN_DEFAULTS``) is the one preset today;
``docs/analysis.md`` says why its dimensions are small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from patternc.diagnostics import Diagnostic, diag
from patternc.ir import Layer, Pattern
from patternc.kinds import alphabet_of
from patternc.symbols import LayerKind

if TYPE_CHECKING:  # the config reader is 30 ms to import: only when a pattern is really sized
    from patternc.config import ConfigReading
    from patternc.lower import SourceMap
    from patternc.source import Span


@dataclass(frozen=True, slots=True)
class Preset:
    """The hyper-parameters a bare pattern is sized with."""

    described: str
    """How messages name the model a bare pattern becomes (``a Nemotron-H model``)."""
    config: Mapping[str, Any]
    """Config keys, ``model_type`` included; the layout keys are written from the pattern."""
    kinds: frozenset[LayerKind]
    """The layer kinds ``config`` gives sizes for; any other kind is ``P601``."""

    @property
    def listed(self) -> str:
        """``kinds`` as messages list them, by their symbols in the kind table's order."""
        symbols = [f"`{symbol}`" for symbol in alphabet_of(self.kinds)]
        return " and ".join([", ".join(symbols[:-1]), symbols[-1]]) if len(symbols) > 1 else "".join(symbols)


PATTERN_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "model_type": "nemotron_h",
        "vocab_size": 256,
        "hidden_size": 64,
        "layer_norm_epsilon": 1e-5,
        "mamba_num_heads": 4,
        "mamba_head_dim": 16,
        "expand": 1,
        "ssm_state_size": 16,
        "n_groups": 1,
        "conv_kernel": 4,
        "chunk_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "intermediate_size": 128,
        "mlp_hidden_act": "relu2",
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "moe_shared_expert_intermediate_size": 64,
        "n_group": 1,
        "topk_group": 1,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
    }
)
"""The Nemotron-H config a bare pattern is built with (about 0.1M parameters per layer)."""

TINY_NEMOTRON_H = Preset(
    described="a Nemotron-H model",
    config=PATTERN_DEFAULTS,
    kinds=frozenset({LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE}),
)
"""patternc's bare-pattern defaults: a tiny Nemotron-H (hidden size 64), the model ``build "M-M*-"`` writes."""


@dataclass(frozen=True, slots=True)
class Sized:
    """A bare pattern sized by a preset: the config reading, or why there is none."""

    reading: ConfigReading | None
    """The preset's config with the pattern's layers, read; None when ``missing`` is not empty."""
    missing: tuple[Diagnostic, ...] = ()
    """One ``P601`` per layer whose kind the preset does not size, its span in the pattern's text."""


def preset_config(pattern: Pattern, preset: Preset, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config dict of ``pattern`` sized by ``preset`` (``overrides``: ``--set`` values, applied last).

    Every layer's kind must be one the preset sizes (``spec_for_pattern`` reports those that are not).
    """
    from patternc.convert import to_layers_block_type

    config = dict(preset.config)
    config["layers_block_type"] = to_layers_block_type(pattern.spelled)
    if pattern.mtp is not None:
        config["mtp_layers_block_type"] = to_layers_block_type(pattern.mtp.spelled)
        config["num_nextn_predict_layers"] = pattern.mtp.depths
    config.update(overrides or {})
    return config


def spec_for_pattern(
    pattern: Pattern,
    source_map: SourceMap,
    preset: Preset = TINY_NEMOTRON_H,
    overrides: Mapping[str, Any] | None = None,
) -> Sized:
    """Size a bare pattern with ``preset``; never raises for user errors (they are diagnostics).

    ``source_map`` points each layer back into the pattern's text, for the caret of a ``P601``.
    """
    from patternc.source import Span

    missing = tuple(
        no_defaults(
            "parallel layer" if layer.parallel else layer.kind,
            layer.spelling,
            Span(span.start, span.start + len(layer.spelling)) if span is not None and layer.parallel else span,
            preset,
        )
        for layer, span in layers_and_spans(pattern, source_map)
        if layer.kind not in preset.kinds or layer.parallel  # Nemotron-H's configs have no parallel layer
    )
    if missing:
        return Sized(None, missing)
    from patternc.config import read_config

    return Sized(read_config(preset_config(pattern, preset, overrides), origin="<pattern config>"))


def layers_and_spans(pattern: Pattern, source_map: SourceMap) -> list[tuple[Layer, Span | None]]:
    """Every layer (main part, then one MTP depth) with its span in the text it was parsed from."""
    spans = [source_map.layer_span(i) for i in range(len(pattern.layers))]
    layers: list[Layer] = list(pattern.layers)
    if pattern.mtp is not None:
        spans += [source_map.mtp_span(i) for i in range(len(pattern.mtp.layers))]
        layers += pattern.mtp.layers
    return list(zip(layers, spans, strict=True))


def no_defaults(kind: str, symbol: str, span: Span | None, preset: Preset) -> Diagnostic:
    """P601: the preset gives no sizes for this layer's kind."""
    return diag(
        "P601",
        f"`{symbol}` ({kind}) has no default hyper-parameters: a bare pattern is sized as "
        f"{preset.described}, which defines only {preset.listed}",
        span,
        label="no sizes for this layer",
        help="give a config that defines this layer kind as SOURCE (`stats` and `split` also take --like CONFIG)",
    )
