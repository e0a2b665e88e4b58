"""The SOURCE of ``stats`` and ``split``: a config (file or directory) or a bare pattern.

A bare pattern has no hyper-parameters.  It is sized exactly as ``patternc build`` sizes it: the
Nemotron-H config of ``patternc.commands.build.pattern_config`` (the small dimensions of
``PATTERN_DEFAULTS``, each overridable with ``--set KEY=VALUE``), so ``stats "M-M*-"`` describes the
very model ``build "M-M*-"`` writes.  ``--like CONFIG`` takes every hyper-parameter from a real
config instead and keeps the given pattern.  ``docs/analysis.md`` says why the defaults are small.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from patternc.codes import Severity
from patternc.diagnostics import Diagnostic, diag
from patternc.dialects import Dialect
from patternc.ir import Pattern
from patternc.model import ModelSpec
from patternc.source import Source, Span
from patternc.symbols import LayerKind

BARE_KINDS = frozenset({LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE})
"""Kinds a bare pattern can use: those the Nemotron-H defaults define."""

LAYOUT_KEYS = frozenset({
    "attn_layer_indices", "full_attention_interval", "decoder_sparse_step", "mlp_only_layers",
    "attn_layer_period", "attn_layer_offset", "expert_layer_period", "expert_layer_offset",
})
"""Layout keys of the other families: with ``--like`` the pattern decides the layout, so ``--set`` may not."""


@dataclass(slots=True)
class Loaded:
    spec: ModelSpec | None
    """None when there are errors."""
    pattern: Pattern | None
    """The layout as written (a bare pattern keeps its ``|`` stages; a config has one stage)."""
    source: Source
    """The text the diagnostics point into."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    defaults: bool = False
    """True for a bare pattern sized with ``PATTERN_DEFAULTS`` (no ``--like``)."""
    origin: str = ""
    pipes: list[int] = field(default_factory=list)
    """Text offsets of the ``|`` of a bare pattern (for pipeline diagnostics)."""
    like: str | None = None
    """The config whose hyper-parameters a bare pattern took (``--like``)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The ``--set`` values applied."""


def looks_like_config(argument: str) -> bool:
    """Whether SOURCE is read as a config: ``check``'s rule (``patternc.check.source_kind``), for every command."""
    from patternc.check import looks_like_config_path

    return looks_like_config_path(argument)


def bare_config(pattern: Pattern, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config dict a bare pattern is sized with: ``build``'s, so every command agrees on one model."""
    from patternc.commands.build import pattern_config

    mtp = (pattern.mtp.flat, pattern.mtp.depths) if pattern.mtp is not None else None
    return pattern_config(pattern.flat, mtp, dict(overrides or {}))


def load_source(
    argument: str,
    dialect: Dialect | str = Dialect.PATTERNC,
    *,
    sets: Mapping[str, Any] | None = None,
    like: str | None = None,
) -> Loaded:
    """``_load_source``, plus the note that says which reading was taken when SOURCE could be a pattern
    and a path (P016/P017, ``patternc.check.source_kind``): never a silent guess."""
    from patternc.check import source_note

    loaded = _load_source(argument, dialect, sets=sets, like=like)
    note = source_note(argument)
    if note is not None:
        loaded.diagnostics.append(note)
    return loaded


def _load_source(
    argument: str,
    dialect: Dialect | str = Dialect.PATTERNC,
    *,
    sets: Mapping[str, Any] | None = None,
    like: str | None = None,
) -> Loaded:
    """Read SOURCE into a ModelSpec; never raises for user errors (they are diagnostics).

    ``sets`` (``--set``) override the defaults of a bare pattern, or the keys of the ``like``
    config; ``like`` (``--like``) sizes a bare pattern with a config's hyper-parameters.  Both
    apply to a bare pattern only (``ValueError`` for a config SOURCE: the command refuses that
    as a usage error first).
    """
    from patternc.config import read_config

    overrides = dict(sets or {})
    if looks_like_config(argument):
        if overrides or like is not None:
            raise ValueError("--set and --like apply to a bare pattern SOURCE")
        reading = read_config(argument)
        shown = [d for d in reading.diagnostics if d.severity is not Severity.NOTE]
        return Loaded(
            reading.spec, reading.spec.pattern if reading.spec else None, reading.source, shown, False, argument
        )
    from patternc.api import analyze

    analysis = analyze(argument, dialect, origin="<argv>")
    if analysis.pattern is None:
        return Loaded(None, None, analysis.source, list(analysis.diagnostics), like is None, argument, like=like)
    pattern = analysis.pattern
    pipes = list(analysis.source_map.pipes)
    spans = [analysis.source_map.layer_span(i) for i in range(len(pattern.layers))]
    if pattern.mtp is not None:
        spans += [analysis.source_map.mtp_span(i) for i in range(len(pattern.mtp.layers))]
    layers = [*pattern.layers, *(pattern.mtp.layers if pattern.mtp is not None else ())]
    own = {d.code for d in analysis.diagnostics}
    if like is not None:
        return _like(argument, analysis.source, pattern, pipes, layers, spans, like, overrides)
    problems = [
        _no_sizes(layer.kind, layer.symbol, span, None)
        for layer, span in zip(layers, spans, strict=True)
        if layer.kind not in BARE_KINDS
    ]
    if problems:
        return Loaded(None, pattern, analysis.source, problems, True, argument)
    reading = read_config(bare_config(pattern, overrides), origin="<pattern config>")
    found = _config_problems(reading.diagnostics, own)
    if reading.spec is None or found:
        source = reading.source if found else analysis.source
        return Loaded(reading.spec, pattern, source, found, True, argument, pipes, overrides=overrides)
    return Loaded(reading.spec, pattern, analysis.source, [], True, argument, pipes, overrides=overrides)


def _config_problems(found: list[Diagnostic], own: set[str]) -> list[Diagnostic]:
    """The errors and warnings a config reading adds to the pattern's own (which ``check`` reports)."""
    return [
        d for d in found if d.severity is Severity.ERROR or (d.severity is Severity.WARNING and d.code not in own)
    ]


def _like(
    argument: str,
    source: Source,
    pattern: Pattern,
    pipes: list[int],
    layers: list[Any],
    spans: list[Span | None],
    like: str,
    overrides: dict[str, Any],
) -> Loaded:
    """A bare pattern with the hyper-parameters of the config ``like`` (and ``overrides`` of its keys)."""
    from patternc.config import read_config

    reading = read_config(like)
    if reading.spec is not None and overrides:
        data = json.loads(reading.source.text)  # read_config succeeded, so the text is a JSON object
        data.update(overrides)
        reading = read_config(data, origin=f"{like} with --set")
    found = _config_problems(reading.diagnostics, set())
    if reading.spec is None or any(d.severity is Severity.ERROR for d in found):
        return Loaded(None, pattern, reading.source, found, False, argument, like=like, overrides=overrides)
    spec = reading.spec
    problems = [
        _no_sizes(layer.kind, layer.symbol, span, like)
        for layer, span in zip(layers, spans, strict=True)
        if spec.flavour(layer.kind) is None
    ]
    if problems:
        return Loaded(None, pattern, source, problems, False, argument, like=like, overrides=overrides)
    spec = spec.model_copy(update={"pattern": _one_stage(pattern)})
    return Loaded(spec, pattern, source, [], False, argument, pipes, like=like, overrides=overrides)


def _one_stage(pattern: Pattern) -> Pattern:
    """``pattern`` without its ``|`` stages: a model's layers, as a config reader returns them."""
    if len(pattern.stages) == 1:
        return pattern
    from patternc.analysis.pipeline import megatron_string
    from patternc.api import analyze

    mtp = pattern.mtp
    text = megatron_string(pattern.flat, [len(pattern.flat)], mtp.flat if mtp else "", mtp.depths if mtp else 0)
    flat = analyze(text, Dialect.MEGATRON).pattern
    assert flat is not None  # the same layers, spelled without `|`
    return flat


def _no_sizes(kind: LayerKind, symbol: str, span: Span | None, like: str | None) -> Diagnostic:
    if like is None:
        return diag(
            "P601",
            f"`{symbol}` ({kind.value}) has no default hyper-parameters: a bare pattern is sized as a Nemotron-H "
            "model, which defines only `M`, `*`, `-` and `E`",
            span,
            label="no sizes for this layer",
            help="give a config that defines this layer kind as SOURCE (`stats` and `split` also take --like CONFIG)",
        )
    return diag(
        "P601",
        f"`{symbol}` ({kind.value}): `{like}` gives no hyper-parameters for this layer kind",
        span,
        label="no sizes for this layer",
        help="use --like with a config that has such layers, or leave them out of the pattern",
    )


def describe_sizes(defaults: bool, like: str | None, overrides: Mapping[str, Any]) -> str | None:
    """Where a bare pattern's sizes came from, for the ``sizes`` line of ``stats`` and ``split`` (None: a config)."""
    sets = ", ".join(f"{key}={json.dumps(value)}" for key, value in overrides.items())
    if like is not None:
        return f"every hyper-parameter of {like} (--like)" + (f", with --set {sets}" if sets else "")
    if defaults:
        text = "patternc's bare-pattern defaults (tiny Nemotron-H, hidden 64; the model `build` writes)"
        return text + (f", with --set {sets}" if sets else "; change them with --set KEY=VALUE or --like CONFIG")
    return None
