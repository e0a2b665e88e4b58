"""``patternc draw SOURCE -o FILE.svg|FILE.html``: a picture of the layer stack (docs/draw.md).

SOURCE is read as ``stats`` reads it (``patternc.inputs.load_source``).  Without
``--bars`` no sizes are needed, so a bare pattern with layer kinds that have no default sizes
(``G``, ``D``, ``+``) is drawn anyway; with ``--bars`` the per-layer figures are ``stats``' own
(``model_stats``), so the picture and ``stats --json``'s ``layers`` rows always agree.
``split --draw`` calls ``draw_split`` here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from patternc.commands.stats import DtypeChoice, LikeOpt, SetsOpt, SourceArg
from patternc.dialects import Dialect
from patternc.exit_codes import EXIT_ERRORS

if TYPE_CHECKING:
    from patternc.analysis.pipeline import Partition, SplitResult
    from patternc.diagnostics import Diagnostic
    from patternc.draw import Collapse, Format, Picture
    from patternc.inputs import Loaded
    from patternc.source import Source


class CollapseChoice(StrEnum):
    """``--collapse`` (``patternc.draw.Collapse``, kept apart so that the CLI does not import the renderer)."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class FormatChoice(StrEnum):
    """``--format`` (``patternc.draw.Format``)."""

    SVG = "svg"
    HTML = "html"


class BarsChoice(StrEnum):
    PARAMS = "params"
    FLOPS = "flops"
    STATE = "state"


BAR_LABELS: dict[BarsChoice, str] = {
    BarsChoice.PARAMS: "parameters per layer",
    BarsChoice.FLOPS: "prefill FLOPs per token per layer at seq-len {seq_len}",
    BarsChoice.STATE: "inference state bytes per layer (KV cache + SSM state) at seq-len {seq_len}, batch 1, {dtype}",
}


def _fail(problems: list[Diagnostic], source: Source) -> NoReturn:
    """Print the errors on stderr, say that nothing was written, exit 1."""
    from patternc.render import render_text

    typer.echo(render_text(problems, source), err=True, nl=False)
    typer.echo("nothing written", err=True)
    raise typer.Exit(EXIT_ERRORS)


def output_format(output: str, given: FormatChoice | None, source: Source, *, format_option: bool = True) -> Format:
    """The format ``--format`` names, else the one FILE's suffix names; ``P622`` (before any reading) when neither."""
    from patternc.diagnostics import diag
    from patternc.draw import SUFFIXES, Format, format_for

    if not output.strip():
        raise typer.BadParameter(
            "is empty: give the file to write (FILE.svg, FILE.html or - for stdout)", param_hint="--output"
        )
    if given is not None:
        return Format(given.value)
    if output == "-":
        return Format.SVG
    found = format_for(output)
    if found is None:
        names = ", ".join(f"`{s}`" for s in SUFFIXES)
        problem = diag(
            "P622",
            f"cannot tell the picture's format from the file name `{output}`",
            None,
            help=f"end the name with {names}" + (", or pass `--format svg` or `--format html`" * format_option),
        )
        from patternc.cli_common import usage_error

        raise usage_error(problem)  # the command line names no format: exit 2, nothing read (docs/cli.md)
    return found


def write_picture(picture: Picture, output: str, fmt: Format, collapse: Collapse, force: bool, source: Source) -> str:
    """Render and publish ``picture`` (or print it for ``-``); the line that says what was drawn."""
    from patternc.diagnostics import diag
    from patternc.draw import PublishError, publish_file, render

    text, drawing = render(picture, fmt, collapse)
    if output == "-":
        typer.echo(text, nl=False)
        return ""
    try:
        path = publish_file(output, text.encode("utf-8"), force=force)
    except PublishError as error:
        if error.exists:
            problem = diag(
                "P620",
                f"`{output}` already exists",
                None,
                help="pass `--force` to replace it (atomically), or choose another file name",
            )
        else:
            problem = diag(
                "P621",
                f"cannot write `{output}`: {error.reason}",
                None,
                help="choose a file in an existing directory you can write to",
            )
        _fail([problem], source)
    return f"drew {drawing.summary} into {path}"


def _early_exists(output: str, force: bool, source: Source) -> None:
    """Refuse an existing FILE before any work (``publish_file`` checks again when it writes)."""
    from pathlib import Path

    from patternc.diagnostics import diag

    if output != "-" and not force and (Path(output).exists() or Path(output).is_symlink()):
        _fail(
            [
                diag(
                    "P620",
                    f"`{output}` already exists",
                    None,
                    help="pass `--force` to replace it (atomically), or choose another file name",
                )
            ],
            source,
        )


def _load(source: str, dialect: str, need_sizes: bool, sets: list[str] | None, like: str | None) -> Loaded:
    """Read SOURCE like ``stats`` (``--set``, ``--like`` included); without bars, a bare pattern's missing
    default sizes (P601) do not matter."""
    from patternc.commands.stats import print_diagnostics, read_overrides
    from patternc.diagnostics import has_errors
    from patternc.inputs import load_source

    overrides = read_overrides(source, sets, like)
    loaded = load_source(source, dialect, sets=overrides, like=like)
    sizeless = loaded.pattern is not None and all(d.code == "P601" for d in loaded.diagnostics)
    if not need_sizes and (loaded.defaults or loaded.like is not None) and sizeless:  # a bare pattern
        return loaded
    if loaded.spec is None or loaded.pattern is None or has_errors(loaded.diagnostics):
        _fail(list(loaded.diagnostics), loaded.source)
    print_diagnostics(loaded.diagnostics, loaded.source, err=True)
    return loaded


def draw(
    source: SourceArg,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="The picture to write: FILE.svg or FILE.html (`-` prints it on stdout).",
        ),
    ],
    bars: Annotated[
        BarsChoice | None,
        typer.Option("--bars", help="Bar heights per layer: parameters, prefill FLOPs or inference state bytes."),
    ] = None,
    seq_len: Annotated[int, typer.Option("--seq-len", min=1, help="Context length for --bars flops|state.")] = 4096,
    dtype: Annotated[DtypeChoice, typer.Option("--dtype", help="Element type for --bars state.")] = DtypeChoice.BF16,
    collapse: Annotated[
        CollapseChoice,
        typer.Option("--collapse", help="Draw runs of a repeated block once (auto: above 200 layers)."),
    ] = CollapseChoice.AUTO,
    fmt: Annotated[
        FormatChoice | None, typer.Option("--format", help="svg or html (default: from FILE's suffix).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists (atomically).")] = False,
    dialect: Annotated[
        Dialect, typer.Option("--dialect", "-d", help="Surface syntax of a bare pattern.")
    ] = Dialect.PATTERNC,
    sets: SetsOpt = None,
    like: LikeOpt = None,
) -> None:
    """Draw the layer stack as a coloured strip (SVG or HTML): kinds, stages, MTP, optional cost bars."""
    from patternc.draw import Collapse, picture_of
    from patternc.inputs import describe_sizes
    from patternc.source import Source as SourceText

    chosen = output_format(output, fmt, SourceText(source, "<argv>"))
    loaded = _load(source, dialect, bars is not None, sets, like)
    _early_exists(output, force, loaded.source)
    assert loaded.pattern is not None
    pattern = loaded.pattern
    if pattern.has_parallel:  # one cell per layer, coloured by its kind: a `[*M]` would show as `*` alone
        from patternc.diagnostics import diag

        problem = diag(
            "P018",
            "`draw` has no cell for a parallel layer (`[*M]`): it would draw it as its first mixer alone",
            None,
            help="`patternc check` and `patternc stats` show parallel layers; `fmt` spells them",
        )
        _fail([problem], loaded.source)
    values: tuple[int, ...] | None = None
    mtp_values: tuple[int, ...] | None = None
    label = ""
    subtitle: list[str] = []
    if bars is not None:
        assert loaded.spec is not None
        values, mtp_values = _bar_values(loaded, bars, seq_len, dtype)
        label = BAR_LABELS[bars].format(seq_len=seq_len, dtype=dtype.value)
        sizes = describe_sizes(loaded.defaults, loaded.like, loaded.overrides)
        if sizes is not None:
            subtitle.append(f"sizes: {sizes}")
    if loaded.spec is not None and not loaded.defaults and loaded.like is None:
        subtitle.append(f"config: model_type {loaded.spec.source}")
    picture = picture_of(pattern, source, bars=values, mtp_bars=mtp_values, bar_label=label, subtitle=subtitle)
    line = write_picture(picture, output, chosen, Collapse(collapse.value), force, loaded.source)
    if line:
        typer.echo(line)


def _bar_values(
    loaded: Loaded, bars: BarsChoice, seq_len: int, dtype: DtypeChoice
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    from patternc.analysis.costs import CostError
    from patternc.analysis.stats import model_stats
    from patternc.commands.stats import no_cost_exit

    assert loaded.spec is not None
    try:
        stats = model_stats(loaded.spec, seq_len=seq_len, batch=1, dtype=dtype.value)
    except CostError as error:
        no_cost_exit(str(error.kind), loaded.source)

    def value(row: object) -> int:
        from patternc.analysis.stats import LayerRow

        assert isinstance(row, LayerRow)
        if bars is BarsChoice.PARAMS:
            return row.params
        if bars is BarsChoice.FLOPS:
            return row.flops_prefill
        return row.kv_cache_bytes + row.state_bytes

    main = tuple(value(row) for row in stats.layers)
    mtp = tuple(value(row) for row in stats.mtp.layers) if stats.mtp is not None else None
    return main, mtp


def check_target(output: str, force: bool, source: str) -> None:
    """``split --draw FILE``'s checks before any work: a known format (P622), no FILE without --force (P620)."""
    from patternc.source import Source as SourceText

    text = SourceText(source, "<argv>")
    output_format(output, None, text, format_option=False)
    _early_exists(output, force, text)


def draw_split(
    loaded: Loaded,
    result: SplitResult,
    partition: Partition,
    cost_label: str,
    output: str,
    *,
    force: bool = False,
) -> str:
    """``split --draw FILE``: the segments of ``partition`` with their costs; the line that says so.

    The bars are the per-layer costs the split balanced; each segment's cost in the table
    includes the embedding (first) and the head and MTP (last), as ``split`` prints them.
    """
    from patternc.draw import Collapse, Picture, Segment

    assert loaded.spec is not None
    fmt = output_format(output, None, loaded.source, format_option=False)
    pattern = loaded.spec.pattern
    segments = []
    start = 0
    count = len(partition.sizes)
    for index, (size, cost) in enumerate(zip(partition.sizes, partition.costs, strict=True)):
        extra = []
        if index == 0 and result.first:
            extra.append(f"{result.first:,} embedding")
        if index == count - 1 and result.last:
            extra.append(f"{result.last:,} head/MTP")
        label = f"rank {index % result.pp}  vp {index // result.pp}"
        segments.append(Segment(start, start + size, label, cost, f"(+{', +'.join(extra)})" if extra else ""))
        start += size
    mtp = pattern.mtp
    unified = "|".join(pattern.flat[s.start : s.stop] for s in segments) + (
        f"/{mtp.flat}" * mtp.depths if mtp is not None else ""
    )
    picture = Picture(
        title=loaded.origin,
        main=pattern.flat,
        segments=tuple(segments),
        mtp=mtp.flat if mtp is not None else "",
        depths=mtp.depths if mtp is not None else 0,
        bars=result.layer_costs,
        bar_label=f"{cost_label} per layer",
        cost_label=cost_label,
        subtitle=(f"split pp={result.pp} x vpp={result.vpp}" + (f": {unified}" if len(unified) <= 120 else ""),),
        segment_word="segment",
    )
    return write_picture(picture, output, fmt, Collapse.AUTO, force, loaded.source)


def register(app: typer.Typer) -> None:
    app.command(name="draw")(draw)
