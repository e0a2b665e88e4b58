"""How a SOURCE argument is read: a pattern or a config, and then into a model spec.

Every command that takes PATTERN|CONFIG (``check``, ``build``, ``stats``, ``split``, ``draw``, ``run``)
classifies its argument with ``source_kind`` (one rule, ``docs/cli.md`` "Pattern or config?"), so no
command guesses differently.  ``load_source`` is the SOURCE of ``stats``, ``split``, ``draw`` and
``run``: a config (file or directory), or a bare pattern sized as ``build`` sizes it (the preset of
``patternc.presets``, each key overridable with ``--set KEY=VALUE``), so ``stats "M-M*-"`` describes
the very model ``build "M-M*-"`` writes.  ``--like CONFIG`` takes every hyper-parameter from a real
config instead and keeps the given pattern.

A module of its own, below the commands and beside ``patternc.analysis``, so that neither reaches up to
``patternc.check`` (or a command) for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from patternc.codes import Severity
from patternc.diagnostics import Diagnostic, diag
from patternc.dialects import Dialect
from patternc.ir import Pattern
from patternc.source import Source, Span
from patternc.symbols import LayerKind

if TYPE_CHECKING:  # the model IR is 20 ms to import: `check PATTERN` never needs it
    from patternc.lower import SourceMap
    from patternc.model import ModelSpec

PATTERN_CHARACTERS = frozenset("MGD*+-E|/(){}#0123456789 \t\n\r")
"""Every character some dialect's pattern may hold (symbols, structure, repetition, comments)."""

Reading = Literal["pattern", "config"]


def source_kind(argument: str) -> tuple[Reading, Diagnostic | None]:
    """How a PATTERN|CONFIG argument is read, and the note that says so when it could be read both ways.

    The rule (``docs/cli.md``, "Pattern or config?"), the same for every command that takes either:

    1. ``-`` is a pattern read from stdin (the caller handles it);
    2. an argument that names no file or directory is a pattern, unless it ends in ``.json`` or
       starts like a path (``/``, ``./``, ``../``, ``~``) and holds a character no pattern has
       (then it is a config that is missing: ``P901``, not one P001 per letter);
    3. an existing file or directory is a config, *unless* the argument is also a valid pattern
       (patternc dialect, which accepts every dialect's spelling): then it is the pattern, and a
       ``P016`` note says that a file of that name exists and how to name it (``./E``).  The
       pattern wins because its meaning does not depend on the working directory;
    4. when an existing path is read as a config although every character could belong to a
       pattern (``/``, ``M-/``), a ``P017`` note says why it was not read as a pattern.

    So no reading is ever chosen silently when both are possible.
    """
    import os

    from patternc.api import analyze
    from patternc.diagnostics import diag
    from patternc.source import Span

    if argument == "-":
        return "pattern", None
    exists = os.path.isdir(argument) or os.path.isfile(argument)
    if not exists:
        return ("config" if argument.endswith(".json") or _missing_path(argument) else "pattern"), None
    what = "directory" if os.path.isdir(argument) else "file"
    analysis = analyze(argument, origin="<argv>")
    shown = _escape_name(argument)
    if analysis.pattern is not None:
        return "pattern", diag(
            "P016",
            f"`{shown}` is also the name of a {what} here; it was read as a pattern",
            Span(0, len(argument)),
            label=f"a pattern, and a {what}",
            help=f"to read the {what}, name it as a path: `./{shown}`"
            if not os.path.isabs(argument)
            else f"to read the {what}, name it as a path other than the pattern: `{shown}/.`",
        )
    if set(argument) <= PATTERN_CHARACTERS:
        first = next(d for d in analysis.diagnostics if d.severity.value == "error")
        return "config", diag(
            "P017",
            f"`{shown}` was read as the {what} of that name: as a pattern it has an error",
            None,
            label=f"read as a {what}",
            notes=[f"as a pattern: error[{first.code}]: {first.message}"],
            help="to check it as a pattern, fix the pattern; to check a config, name its file or directory",
        )
    return "config", None


def _missing_path(argument: str) -> bool:
    """A path that does not exist: it starts like one (``/``, ``./``, ``../``, ``~``; no valid pattern
    does) and holds a character no pattern has, so reading it as a pattern could only list P001s."""
    import os

    starts = ("/", "./", "../", "~", os.sep, f".{os.sep}", f"..{os.sep}")
    return argument.startswith(starts) and not set(argument) <= PATTERN_CHARACTERS


def _escape_name(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def source_note(argument: str) -> Diagnostic | None:
    """``source_kind``'s note (P016/P017) without a span, for commands whose diagnostics point into
    another text than the argument (a bare pattern's generated config), or None."""
    import dataclasses

    note = source_kind(argument)[1]
    return None if note is None else dataclasses.replace(note, span=None)


def looks_like_config_path(argument: str) -> bool:
    """Whether a SOURCE argument is read as a config (``source_kind``'s rule)."""
    return source_kind(argument)[0] == "config"


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
    """True for a bare pattern sized with the preset (``patternc.presets``; no ``--like``)."""
    origin: str = ""
    pipes: list[int] = field(default_factory=list)
    """Text offsets of the ``|`` of a bare pattern (for pipeline diagnostics)."""
    like: str | None = None
    """The config whose hyper-parameters a bare pattern took (``--like``)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The ``--set`` values applied."""


def load_source(
    argument: str,
    dialect: Dialect | str = Dialect.PATTERNC,
    *,
    sets: Mapping[str, Any] | None = None,
    like: str | None = None,
) -> Loaded:
    """``_load_source``, plus the note that says which reading was taken when SOURCE could be a pattern
    and a path (P016/P017, ``source_kind``): never a silent guess."""
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
    if looks_like_config_path(argument):
        if overrides or like is not None:
            raise ValueError("--set and --like apply to a bare pattern SOURCE")
        reading = read_config(argument)
        shown = [d for d in reading.diagnostics if d.severity is not Severity.NOTE]
        return Loaded(
            reading.spec, reading.spec.pattern if reading.spec else None, reading.source, shown, False, argument
        )
    from patternc.api import analyze
    from patternc.presets import spec_for_pattern

    analysis = analyze(argument, dialect, origin="<argv>")
    if analysis.pattern is None:
        return Loaded(None, None, analysis.source, list(analysis.diagnostics), like is None, argument, like=like)
    pattern = analysis.pattern
    pipes = list(analysis.source_map.pipes)
    if like is not None:
        return _like(argument, analysis.source, pattern, analysis.source_map, like, overrides)
    sized = spec_for_pattern(pattern, analysis.source_map, overrides=overrides)
    if sized.reading is None:
        return Loaded(None, pattern, analysis.source, list(sized.missing), True, argument)
    reading = sized.reading
    found = _config_problems(reading.diagnostics, {d.code for d in analysis.diagnostics})
    if reading.spec is None or found:
        source = reading.source if found else analysis.source
        return Loaded(reading.spec, pattern, source, found, True, argument, pipes, overrides=overrides)
    return Loaded(reading.spec, pattern, analysis.source, [], True, argument, pipes, overrides=overrides)


def _config_problems(found: list[Diagnostic], own: set[str]) -> list[Diagnostic]:
    """The errors and warnings a config reading adds to the pattern's own (which ``check`` reports)."""
    return [d for d in found if d.severity is Severity.ERROR or (d.severity is Severity.WARNING and d.code not in own)]


def _like(
    argument: str,
    source: Source,
    pattern: Pattern,
    source_map: SourceMap,
    like: str,
    overrides: dict[str, Any],
) -> Loaded:
    """A bare pattern with the hyper-parameters of the config ``like`` (and ``overrides`` of its keys)."""
    from patternc.config import read_config
    from patternc.presets import layers_and_spans

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
        _not_in_like(layer.kind, layer.symbol, span, like)
        for layer, span in layers_and_spans(pattern, source_map)
        if spec.flavour(layer.kind) is None
    ]
    if problems:
        return Loaded(None, pattern, source, problems, False, argument, like=like, overrides=overrides)
    spec = spec.model_copy(update={"pattern": _one_stage(pattern)})
    pipes = list(source_map.pipes)
    return Loaded(spec, pattern, source, [], False, argument, pipes, like=like, overrides=overrides)


def _one_stage(pattern: Pattern) -> Pattern:
    """``pattern`` without its ``|`` stages: a model's layers, as a config reader returns them."""
    if len(pattern.stages) == 1:
        return pattern
    from patternc.ir import make_pattern

    mtp = pattern.mtp
    return make_pattern(pattern.flat, None, mtp.flat if mtp else "", mtp.depths if mtp else 0)


def _not_in_like(kind: LayerKind, symbol: str, span: Span | None, like: str) -> Diagnostic:
    """P601: the ``--like`` config sizes no layer of this kind."""
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
