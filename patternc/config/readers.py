"""The shared machinery of the family readers: from a validated input model to layers and flavours.

A family's reader (``Family.read``, in ``patternc/families/<model_type>.py``) works on a ``Ctx``
(the model, where each key sits in the JSON text, what was defaulted and reported) and returns a
``Built`` (the layer layout and each present kind's flavour); ``combine`` turns the layout into the
checked IR.  Each reader follows what transformers' configuration and modeling code for that family
does (file:line references are in the docstrings), so the ``ModelSpec`` describes the model
transformers would build from the same config.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from patternc.api import analyze, check_pattern
from patternc.config._load import locate, string_value_offset
from patternc.config.models import ConfigModel
from patternc.diagnostics import Diagnostic, Label, diag
from patternc.dialects import Dialect
from patternc.ir import Pattern, make_pattern
from patternc.limits import DEFAULT_LIMITS
from patternc.lower import SourceMap
from patternc.model import (
    RopeSpec,
)
from patternc.source import Source, Span

LEGACY_NAMES = frozenset({"mamba", "attention"})


Model = TypeVar("Model", bound=ConfigModel)


class Ctx(Generic[Model]):
    """What a family's reader works with: its input model (typed: ``Ctx[BambaInput]``), where keys sit
    in the text, and what it found."""

    def __init__(self, model: Model, source: Source, prefix: str, base: int, renamed: dict[str, str]) -> None:
        self.model = model
        self.source = source
        self.prefix = prefix
        self.base = base
        self.renamed = renamed
        """canonical field -> the key the config spelled it with (an alias)."""
        self.diagnostics: list[Diagnostic] = []
        self.defaults_used: dict[str, object] = {}
        self.present = set(model.model_fields_set) | set(model.model_extra or {})
        self.reported: set[str] = set()
        """Keys a P913 note already named (not listed again as unknown)."""
        self.read: set[str] = set()
        """Fields the builder read (present or defaulted): what the model is made of."""

    # -- keys ------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return self.prefix + self.renamed.get(name, name)

    def q(self, name: str) -> str:
        return f"`{self.key(name)}`"

    def span(self, name: str) -> Span | None:
        return locate(self.source.text, self.renamed.get(name, name), self.base)

    def has(self, name: str) -> bool:
        return name in self.present

    def get(self, name: str) -> Any:
        """A field's value, recording the default when the config omits the key."""
        value = getattr(self.model, name)
        self.read.add(name)
        if name not in self.present:
            self.defaults_used[self.key(name)] = _plain(value)
        return value

    def need(self, name: str, what: str) -> Any:
        """Like ``get``, but a null value is a P907 error (the layer kind needs it)."""
        value = self.get(name)
        if value is None:
            self.add("P907", f"{self.q(name)} is null, but {what} needs it", name, label="null")
        return value

    def add(self, code: str, message: str, name: str | None = None, **kwargs: Any) -> None:
        self.diagnostics.append(diag(code, message, self.span(name) if name else None, **kwargs))

    def secondary(self, *names: str) -> list[Label]:
        labels = []
        for name in names:
            span = self.span(name)
            if span is not None:
                labels.append(Label(span, self.key(name)))
        return labels

    def vestigial(self, names: Sequence[str], why: str) -> None:
        found = [n for n in names if self.has(n) and n not in self.reported]
        self.reported.update(found)
        if found:
            shown = ", ".join(self.q(n) for n in found)
            self.add("P913", f"{shown} {'has' if len(found) == 1 else 'have'} no effect: {why}", found[0])

    def divisible(self, numerator: str, denominator: str, a: int | None, b: int | None, why: str) -> bool:
        if a is None or b is None or a % b == 0:
            return True
        self.add(
            "P908",
            f"{self.q(numerator)} ({a}) is not divisible by {self.q(denominator)} ({b}): {why}",
            numerator,
            label="not divisible",
            secondary=self.secondary(denominator),
        )
        return False


def _plain(value: object) -> object:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass
class Built:
    """A reader's result: the layers (or None) and each present kind's flavour."""

    main: str | None = None
    mtp: str = ""
    depths: int = 0
    specs: dict[str, Any] = dataclasses.field(default_factory=dict)
    main_key: str | None = None
    """The key the main layout came from (diagnostic spans of the pattern point there)."""
    main_text_offset: int | None = None
    """Where the main pattern's characters start in the text, when they appear there verbatim."""
    mtp_key: str | None = None
    ffn_key: str | None = None
    """The key that places the MoE layers when another key places the mixers (Jamba's
    ``expert_layer_period``): a diagnostic about the FFN kinds (``P201``) points there."""
    parallel: dict[int, str] = dataclasses.field(default_factory=dict)
    """Main layer index -> the symbols of the mixers that run beside ``main[index]`` (Falcon-H1:
    ``{0: "M"}`` with ``main`` ``*-``, the layer ``[*M]``); ``make_pattern`` takes it as is."""


# -- layout helpers ----------------------------------------------------------------------------


def list_symbols(ctx: Ctx[Any], field: str, names: list[str], allowed: dict[str, str]) -> str | None:
    symbols = []
    bad = False
    for index, name in enumerate(names):
        symbol = allowed.get(name)
        if symbol is None:
            known = ", ".join(f"`{n}`" for n in sorted(allowed))
            ctx.add(
                "P014",
                f"{ctx.key(field)}[{index}] is {name!r}, which is not a layer type",
                field,
                help=f"known layer types: {known}",
            )
            bad = True
        else:
            symbols.append(symbol)
    legacy = sorted({n for n in names if n in LEGACY_NAMES})
    if legacy and not bad:
        ctx.add(
            "P915",
            f"{ctx.q(field)} uses the legacy layer names {', '.join(f'`{n}`' for n in legacy)}",
            field,
            help="transformers remaps them (`mamba` -> `linear_attention`, `attention` -> `full_attention`)",
        )
    return None if bad else "".join(symbols)


def pattern_text(ctx: Ctx[Any], field: str, text: str) -> tuple[str | None, int | None]:
    """Check a ``hybrid_override_pattern``-style string with the hf dialect; shift its spans."""
    analysis = analyze(text, Dialect.HF, origin=ctx.key(field))
    key_span = ctx.span(field)
    offset = string_value_offset(ctx.source.text, key_span, text) if key_span is not None else None
    errors = [d for d in analysis.diagnostics if d.severity.value == "error"]
    for problem in errors:
        ctx.diagnostics.append(moved(problem, offset, key_span, len(text)))
    if errors:
        return None, offset
    return text, offset


def moved(problem: Diagnostic, offset: int | None, fallback: Span | None, length: int) -> Diagnostic:
    def move(span: Span | None) -> Span | None:
        if span is None:
            return None
        if offset is not None and span.end <= length:
            return Span(span.start + offset, span.end + offset)
        return fallback

    return dataclasses.replace(
        problem,
        span=move(problem.span),
        secondary=tuple(
            Label(moved, label.message) for label in problem.secondary if (moved := move(label.span)) is not None
        ),
    )


def read_rope(
    ctx: Ctx[Any], partial_default: float, top_level_partial: bool, uses_partial: bool = True
) -> RopeSpec | None:
    """transformers' rope standardisation (``rope_parameters``, else ``rope_scaling``, else top level)."""
    params_field = "rope_parameters" if ctx.has("rope_parameters") else "rope_scaling"
    params = getattr(ctx.model, params_field, None) or {}
    if params_field == "rope_parameters":
        ctx.get("rope_parameters")
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type != "default":
        ctx.add(
            "P914",
            f"{ctx.q(params_field)} asks for RoPE type {rope_type!r}, which patternc cannot express",
            params_field,
            help="patternc's RopeSpec holds the plain RoPE of a base theta and a partial factor",
        )
        return None
    theta = params.get("rope_theta")
    theta_key = f"{params_field}.rope_theta"
    if theta is None:
        theta = getattr(ctx.model, "rope_theta", None)
        theta_key = "rope_theta"
    if theta is None:
        theta = 10000.0
        ctx.defaults_used[ctx.prefix + "rope_parameters.rope_theta"] = theta
    if not (isinstance(theta, int | float) and not isinstance(theta, bool) and math.isfinite(theta) and theta > 0):
        ctx.add(
            "P906", f"`{ctx.prefix}{theta_key}` is {theta!r}: the RoPE base must be a positive number", params_field
        )
        return None
    partial = params.get("partial_rotary_factor") if uses_partial else None
    if partial is None and uses_partial:
        top = getattr(ctx.model, "partial_rotary_factor", None) if top_level_partial else None
        partial = top if top is not None else partial_default
        if top is None:
            ctx.defaults_used[ctx.prefix + "rope_parameters.partial_rotary_factor"] = partial_default
    if partial is None:
        partial = 1.0
    if not (isinstance(partial, int | float) and not isinstance(partial, bool) and 0 < partial <= 1):
        ctx.add(
            "P906",
            f"`{ctx.prefix}{params_field}.partial_rotary_factor` is {partial!r}: it must be in (0, 1]",
            params_field,
        )
        return None
    return RopeSpec(theta=float(theta), partial_factor=float(partial))


def read_heads(ctx: Ctx[Any], heads_field: str, kv_field: str) -> tuple[int, int]:
    heads: int = ctx.get(heads_field)
    kv = ctx.get(kv_field)
    if kv is None:
        kv = heads
    ctx.divisible(heads_field, kv_field, heads, kv, "every key/value head serves the same number of query heads")
    return heads, kv


def check_top_k(ctx: Ctx[Any], experts_field: str, top_k_field: str, experts: int, top_k: int) -> None:
    if top_k > experts:
        ctx.add(
            "P908",
            f"{ctx.q(top_k_field)} ({top_k}) is larger than {ctx.q(experts_field)} ({experts})",
            top_k_field,
            label="more experts chosen than exist",
            secondary=ctx.secondary(experts_field),
        )


def time_step_limit(value: Sequence[float] | None) -> tuple[float, float]:
    if value is None:
        return (0.0, float("inf"))
    return (float(value[0]), float(value[1]))


def combine(ctx: Ctx[Any], built: Built, main: str) -> Pattern | None:
    """The checked IR for the layout ``main`` (+ ``built``'s MTP block), diagnostics moved into the JSON text.

    The layout is never printed as pattern text and parsed again: the Pattern is built directly and
    every default pass runs on it, with a source map in the layout's own coordinates (main layer
    ``i`` at ``i``, the first MTP depth after them and a separator, where the same layers written
    as ``main/mtp`` would sit).  Each diagnostic then moves to the key that holds its layers: into
    a ``hybrid_override_pattern`` string character for character, else onto the key."""
    mtp, depths = (built.mtp, built.depths) if built.mtp and built.depths else ("", 0)
    length = len(main) + (len(mtp) + 1) * depths
    if length > DEFAULT_LIMITS.max_chars:  # the layout `patternc check` would refuse as text, refused alike
        found = [
            diag(
                "P012",
                f"the pattern text has more than {DEFAULT_LIMITS.max_chars:,} characters, the limit",
                Span(0, 0),
                label="input too large",
                help="raise the limit with `--max-chars N` (API: `Limits(max_chars=N)`) if this is intended",
            )
        ]
        pattern = None
    else:
        first_mtp = len(main) + 1
        source_map = SourceMap(
            main=list(range(len(main))), mtp=list(range(first_mtp, first_mtp + len(mtp))), text_length=length
        )
        pattern, found = check_pattern(make_pattern(main, mtp=mtp, depths=depths, parallel=built.parallel), source_map)
    main_span = ctx.span(built.main_key) if built.main_key else None
    mtp_span = ctx.span(built.mtp_key) if built.mtp_key else None
    ffn_span = ctx.span(built.ffn_key) if built.ffn_key else None
    for problem in found:
        if problem.code == "P201" and ffn_span is not None:  # the MoE layers are placed by another key
            ctx.diagnostics.append(
                dataclasses.replace(problem, span=ffn_span, label="places the MoE layers", secondary=())
            )
        elif problem.span is not None and problem.span.start >= len(main):
            ctx.diagnostics.append(dataclasses.replace(problem, span=mtp_span, secondary=()))
        else:
            ctx.diagnostics.append(moved(problem, built.main_text_offset, main_span, len(main)))
    return pattern
