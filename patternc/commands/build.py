"""``patternc build SOURCE -o OUT_DIR``: a model directory that transformers (or the torch backend) loads.

SOURCE is a config file, a directory holding ``config.json``, or a bare pattern.  A pattern gets
the small Nemotron-H dimensions of ``patternc.presets.PATTERN_DEFAULTS`` (each overridable with ``--set key=value``,
keys of transformers' ``NemotronHConfig``), so ``patternc build "M-M*-" -o tiny`` gives a runnable
tiny model.  The work is done by the backend that writes ``--target``, found through the registry
(``patternc.backends.for_target``); this module only reads the source and prints.  Diagnostics go to
stderr, the summary of what was written to stdout.
Importing this module is cheap: everything heavy is imported inside the command.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from patternc.cli_common import PatternCommand, build_target, check_set_values
from patternc.dialects import Dialect
from patternc.exit_codes import EXIT_ERRORS, EXIT_OK

if TYPE_CHECKING:
    from patternc.backends import BuildResult


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: list[str], family: str = "nemotron_h") -> dict[str, Any]:
    """``key=value`` pairs; a value is JSON when it parses as JSON (``4``, ``true``, ``[1,2]``), else a string.

    Keys must be config keys of ``family`` (``stats``/``split --like CONFIG`` pass the config's dialect).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        out[key.strip()] = _value(value.strip())
    owned = sorted(key for key in out if key in PATTERN_KEYS)
    if owned:
        raise typer.BadParameter(
            f"{', '.join(f'`{k}`' for k in owned)} would replace what the pattern SOURCE says; "
            "change the pattern instead",
            param_hint="--set",
        )
    known = _nemotron_h_keys(family)
    unknown = [key for key in out if key not in known]
    if unknown:
        import difflib

        hints = [
            f"`{k}` (did you mean `{m[0]}`?)" if (m := difflib.get_close_matches(k, known, n=1)) else f"`{k}`"
            for k in unknown
        ]
        what = "NemotronHConfig" if family == "nemotron_h" else f"`{family}` config"
        raise typer.BadParameter(f"not a {what} key: {', '.join(hints)}", param_hint="--set")
    check_set_values(out, family)  # a value of the wrong type or range: usage error, exit 2
    return out


PATTERN_KEYS = frozenset(
    {
        "model_type",
        "architectures",
        "layers_block_type",
        "hybrid_override_pattern",
        "layer_types",
        "mtp_layers_block_type",
        "mtp_hybrid_override_pattern",
        "num_nextn_predict_layers",
        "num_hidden_layers",
    }
)
"""Config keys that a bare pattern's layers (or its dialect) decide: ``--set`` may not override them."""


def _nemotron_h_keys(family: str = "nemotron_h") -> set[str]:
    """The keys a bare pattern's config may set: ``family``'s (NemotronHConfig's by default), as patternc reads them."""
    from patternc import families
    from patternc.config.models import COMMON_KEYS

    fields = families.get(family).input_model.model_fields
    return set(COMMON_KEYS) | set(fields) | {f.alias for f in fields.values() if f.alias}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(text: str) -> int | None:
    """``2GB`` -> 2_000_000_000, ``512MiB``, ``1000`` (bytes); None when it is not a size."""
    match = _SIZE.match(text)
    if match is None:
        return None
    unit = (match.group(2) or "B").upper()
    value = int(float(match.group(1)) * _UNITS[unit])
    return value if value > 0 else None


def _size(text: str) -> int:
    size = parse_size(text)
    if size is None:
        raise typer.BadParameter(f"{text!r} is not a size such as 2GB, 500MB or 1GiB", param_hint="--max-shard-size")
    return size


def build(
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="A config.json, a directory holding one, or a pattern ('M-M*-').")
    ],
    output: Annotated[str, typer.Option("--output", "-o", metavar="OUT_DIR", help="The directory to write.")],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            metavar="NAME",
            parser=build_target,
            help="What to write (the names every installed backend writes; aliases as for check: docs/cli.md).",
        ),
    ] = "auto",
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights", "-w", metavar="CHECKPOINT", help="Safetensors weights to convert (a file or a directory)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT_DIR if it exists (atomically).")] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Override a default of a pattern SOURCE (repeatable)."),
    ] = None,
    dialect: Annotated[
        Dialect, typer.Option("--dialect", "-d", help="Surface syntax of a pattern SOURCE.")
    ] = Dialect.PATTERNC,
    max_shard_size: Annotated[str, typer.Option("--max-shard-size", help="Largest safetensors shard.")] = "2GB",
    pp: Annotated[int, typer.Option("--pp", min=1, help="Pipeline ranks (--target megatron).")] = 1,
    vpp: Annotated[int, typer.Option("--vpp", min=1, help="Virtual stages per rank (--target megatron).")] = 1,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (schema build-output) instead of the summary.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, warnings or notes: errors and the result only.")
    ] = False,
) -> None:
    """Write a model directory (config.json + safetensors) that transformers loads, from a config or a pattern.

    With --weights, a progress bar (bytes and tensors) is drawn on stderr when stderr is a terminal.
    """
    if not output.strip():
        raise typer.BadParameter("is empty: give the directory to write", param_hint="--output")
    from patternc.codes import Severity
    from patternc.inputs import looks_like_config_path, source_note
    from patternc.presets import PATTERN_DEFAULTS

    report = BuildReport(source, target, json_output, quiet)

    overrides = parse_sets(sets or [])
    shard_bytes = _size(max_shard_size)
    if looks_like_config_path(source):
        if overrides:
            raise typer.BadParameter("applies to a pattern SOURCE only; edit the config instead", param_hint="--set")
        reading, _, protected = _read_file(source)
    else:
        reading = _read_pattern(source, dialect, overrides, report)
        protected = []
    # a bare pattern's defaults are patternc's own: a target without them needs no word about them
    filled = frozenset() if protected else frozenset(PATTERN_DEFAULTS) - frozenset(overrides)
    shown = [d for d in reading.diagnostics if d.severity is not Severity.NOTE]
    if (which := source_note(source)) is not None:  # P016/P017: which reading was taken, when both could be
        shown.append(which)
    report.dialect = reading.family
    if reading.spec is None:
        report.fail(shown or reading.diagnostics, reading.source, read=True)
    report.pattern(reading.spec)
    from patternc.backends import BuildOptions, for_target
    from patternc.progress import conversion_bar

    bar = conversion_bar(quiet=quiet) if weights is not None else None
    options = BuildOptions(
        force=force,
        max_shard_size=shard_bytes,
        source_config=reading.values,
        protected=tuple(protected),
        set_keys=frozenset(overrides),
        default_keys=filled,
        pipeline_ranks=pp,
        virtual_stages=vpp,
        progress=bar,
    )
    try:  # the one backend that writes --target, found through the registry
        result = for_target(target).write(reading.spec, Path(output), target=target, weights=weights, options=options)
    finally:
        if bar is not None:
            bar.close()
    everything = shown + result.diagnostics
    if not result.ok or result.out_dir is None:
        report.fail(everything, reading.source, result=result)
    report.done(everything, reading.source, result)


def _read_file(source: str) -> tuple[Any, dict[str, Any] | None, list[Path]]:
    from patternc.config import read_config

    reading = read_config(source)
    data: dict[str, Any] | None = None
    try:
        loaded = json.loads(reading.source.text)
        data = loaded if isinstance(loaded, dict) else None
    except ValueError:
        data = None
    path = Path(source)
    return reading, data, [path if path.is_dir() else path.parent]


def _read_pattern(text: str, dialect: Dialect, overrides: dict[str, Any], report: BuildReport) -> Any:
    from patternc.api import analyze
    from patternc.presets import spec_for_pattern

    analysis = analyze(text, dialect, origin="<argv>")
    if analysis.pattern is None:
        report.fail(list(analysis.diagnostics), analysis.source, read=True)
    sized = spec_for_pattern(analysis.pattern, analysis.source_map, overrides=overrides)
    if sized.reading is None:  # a layer kind the defaults do not size (G, D, +): P601 under each
        report.fail(list(sized.missing), analysis.source, read=True)
    reading = sized.reading
    # The layout's checks ran on the pattern as written (spans in <argv>) and again on the config made from
    # it (spans in JSON the user never saw): report the first copy, pointing at the pattern.
    written = list(analysis.diagnostics)
    seen = {(d.code, d.message) for d in written}
    reading.diagnostics[:] = [*written, *(d for d in reading.diagnostics if (d.code, d.message) not in seen)]
    report.pattern_text(written, analysis.source)
    return reading


def _human(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _parameters_line(parameters: int, stored: int | None) -> str:
    """``parameters: N``, and when the state dict holds buffers too, how that relates to ``stats``' total.

    ``stats`` counts stored elements (parameters and persistent buffers, such as a MoE router's
    score-correction bias), transformers counts parameters: the same model would otherwise show two
    different "parameters" (116,952 here, 116,956 there) under one word.
    """
    line = f"parameters: {parameters:,}"
    if stored is not None and stored != parameters:
        line += (
            f" (plus {stored - parameters:,} buffer elements: {stored:,} stored elements, "
            "the total `patternc stats` shows)"
        )
    return line


def _summary(result: BuildResult, source_dialect: str, layers: str | None = None) -> str:
    if result.hybrid_layer_pattern is not None:  # Megatron-Core arguments: no model directory
        files = "".join(f"  {name}\n" for name in result.files)
        return (
            f"built megatron arguments into {result.out_dir}\n{files}"
            f"hybrid-layer-pattern: {result.hybrid_layer_pattern}\n\n"
        )
    arch = result.architecture
    how = result.how or ("canonical" if arch == result.canonical else f"exact; canonical: {result.canonical}")
    if result.next_step is not None:
        how += f"; {result.next_step}"
    lines = [f"built {arch} ({how}) from a {source_dialect} config into {result.out_dir}"]
    for name in result.files:
        lines.append(f"  {name}")
    if layers is not None:
        lines.append(f"layers: {layers}")
    if result.tensors:
        lines.append(f"weights: {result.tensors} tensors, {_human(result.total_bytes)}")
    if result.num_parameters is not None:
        lines.append(_parameters_line(result.num_parameters, result.stored_elements))
    return "\n".join(lines) + "\n"


class BuildReport:
    """How ``build`` tells its outcome: diagnostics on stderr and the summary on stdout, or with ``--json``
    one ``BuildOutput`` object on stdout (and nothing else there) whether it worked or not.

    ``--quiet`` keeps only errors on stderr.  Every way out of ``build`` after the command line was
    parsed goes through ``fail`` or one of the ``done`` methods, so no outcome escapes the JSON.
    """

    def __init__(self, source: str, target: str, json_output: bool, quiet: bool) -> None:
        self.source = source
        self.target = target
        self.json_output = json_output
        self.quiet = quiet
        self.dialect: str | None = None
        self.layers: int | None = None
        self.decoder_layers: int | None = None
        self._written: list[Any] = []
        self._written_source: Any = None

    def pattern_text(self, diagnostics: list[Any], source: Any) -> None:
        """These diagnostics (found in a bare pattern SOURCE) point into ``source``, not into the config."""
        self._written, self._written_source = diagnostics, source

    def _by_source(self, diagnostics: list[Any], source: Any) -> list[tuple[list[Any], Any]]:
        """The diagnostics grouped by the text their spans point into: the pattern as written, then the rest."""
        ours = [d for d in diagnostics if any(d is w for w in self._written)]
        rest = [d for d in diagnostics if not any(d is w for w in self._written)]
        return [(group, where) for group, where in ((ours, self._written_source), (rest, source)) if group]

    def pattern(self, spec: Any) -> None:
        """Remember the model's layer counts for the summary."""
        from patternc.wording import decoder_layers

        self.layers = spec.pattern.num_layers
        self.decoder_layers = decoder_layers(spec.pattern.flat, spec.source)

    def _layers_text(self) -> str | None:
        if self.layers is None or self.decoder_layers is None:
            return None
        return f"{self.layers} pattern layers = {self.decoder_layers} decoder layers × (mixer + FFN)"

    def _text_diagnostics(self, diagnostics: list[Any], source: Any) -> None:
        from patternc.codes import Severity
        from patternc.render import render_text

        shown = [d for d in diagnostics if d.severity is Severity.ERROR] if self.quiet else diagnostics
        for group, where in self._by_source(shown, source):
            typer.echo(render_text(group, where), err=True, nl=False)

    def _json(self, ok: bool, diagnostics: list[Any], source: Any, result: BuildResult | None = None) -> None:
        from patternc.commands.outputs import BuildOutput, WeightsOut, diagnostics_out

        written = result is not None and ok and result.out_dir is not None
        payload = BuildOutput(
            ok=ok,
            source=self.source,
            source_dialect=self.dialect,
            target=self.target,
            architecture=result.architecture if written and result is not None else None,
            canonical=result.canonical if result is not None else None,
            layout=result.layout if written and result is not None else None,
            out_dir=str(result.out_dir) if written and result is not None else None,
            files=list(result.files) if written and result is not None else [],
            weights=WeightsOut(tensors=result.tensors, bytes=result.total_bytes)
            if written and result is not None and result.tensors
            else None,
            parameters=result.num_parameters if result is not None else None,
            stored_elements=result.stored_elements if result is not None else None,
            layers=self.layers,
            decoder_layers=self.decoder_layers,
            hybrid_layer_pattern=result.hybrid_layer_pattern if written and result is not None else None,
            diagnostics=[
                d for group, where in self._by_source(diagnostics, source) for d in diagnostics_out(group, where)
            ],
        )
        typer.echo(json.dumps(payload.model_dump(mode="json"), indent=2, ensure_ascii=False))

    def fail(
        self, diagnostics: list[Any], source: Any, *, result: BuildResult | None = None, read: bool = False
    ) -> NoReturn:
        """Nothing was written: say why, exit 1.  ``read``: SOURCE itself could not be read."""
        if self.json_output:
            if read:
                self.layers = self.decoder_layers = None
            self._json(False, diagnostics, source, result)
        else:
            self._text_diagnostics(diagnostics, source)
            if not read:
                typer.echo("nothing written", err=True)
        raise typer.Exit(EXIT_ERRORS)

    def done(self, diagnostics: list[Any], source: Any, result: BuildResult) -> NoReturn:
        """A model directory was written: its summary, exit 0."""
        if self.json_output:
            self._json(True, diagnostics, source, result)
        else:
            self._text_diagnostics(diagnostics, source)
            typer.echo(_summary(result, self.dialect or "", self._layers_text()), nl=False)
        raise typer.Exit(EXIT_OK)


class BuildCommand(PatternCommand):
    """``build``, whose ``--target`` help lists what the installed backends write.

    The list comes from the registry, which reads entry-point metadata and imports each backend's
    package: that is done when ``build --help`` is printed, never when the command line of another
    command (``check``) is read.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from typer.core import TyperOption

        from patternc.backends import target_help
        from patternc.target_names import names_for

        for param in self.params:
            if isinstance(param, TyperOption) and "--target" in param.opts:
                param.help = target_help(names_for("build"))
        super().format_help(ctx, formatter)


def register(app: typer.Typer) -> None:
    app.command(name="build", cls=BuildCommand)(build)
