"""``patternc split SOURCE --pp K``: the balanced pipeline split, in Megatron's ``|`` syntax.

The split holds whole decoder layers (a Bamba or GraniteMoeHybrid layer is a mixer plus its FFN, two
pattern symbols that one stage must hold) and leaves no segment empty, so that ``check --pp K`` of
the printed pattern reports nothing the pattern did not already have; more segments than decoder
layers is error P610.  ``--json`` prints one ``split-output`` object whatever happens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from patternc.commands.stats import LikeOpt, SetsOpt, SourceArg
from patternc.dialects import Dialect
from patternc.exit_codes import EXIT_ERRORS, EXIT_OK

if TYPE_CHECKING:
    from patternc.analysis.outputs import Plan, SplitReport
    from patternc.analysis.pipeline import Partition, SplitResult
    from patternc.diagnostics import Diagnostic
    from patternc.inputs import Loaded


class CostChoice(StrEnum):
    PARAMS = "params"
    FLOPS = "flops"


def _plan(partition: Partition, result: SplitResult, flat: str, unified: str) -> Plan:
    """The segments of ``partition`` as the ``--json`` output and the table show them."""
    from patternc.analysis.outputs import Plan, Segment

    starts, at = set(), 0  # where each decoder layer begins
    for length in result.units:
        starts.add(at)
        at += length
    segments, start = [], 0
    stages = len(partition.sizes)
    for index, (size, cost) in enumerate(zip(partition.sizes, partition.costs, strict=True)):
        extra = (result.first if index == 0 else 0) + (result.last if index == stages - 1 else 0)
        segments.append(
            Segment(
                index=index,
                rank=index % result.pp,
                virtual_stage=index // result.pp,
                start=start,
                layers=size,
                decoder_layers=sum(1 for i in range(start, start + size) if i in starts),
                pattern=flat[start : start + size],
                cost=cost,
                extra=extra,
            )
        )
        start += size
    mean = sum(partition.costs) / len(partition.costs)
    return Plan(
        pattern=unified,
        segments=segments,
        largest=partition.max_cost,
        mean=mean,
        imbalance=partition.imbalance,
    )


def _rows(plan: Plan, first: int, last: int) -> list[str]:
    lines = [f"  {'segment':>7} {'rank':>4} {'vp':>3}  {'layers':<11} {'cost':>20}  pattern"]
    stages = len(plan.segments)
    for s in plan.segments:
        span = f"{s.start}-{s.start + s.layers - 1}" if s.layers else "(empty)"
        extra = []
        if s.index == 0 and first:
            extra.append(f"+{first:,} embedding")
        if s.index == stages - 1 and last:
            extra.append(f"+{last:,} head/MTP")
        shown = s.pattern if len(s.pattern) <= 60 else s.pattern[:57] + "..."
        suffix = f"  ({', '.join(extra)})" if extra else ""
        lines.append(f"  {s.index:>7} {s.rank:>4} {s.virtual_stage:>3}  {span:<11} {s.cost:>20,}  {shown}{suffix}")
    lines.append(f"  largest {plan.largest:,}  mean {plan.mean:,.0f}  imbalance {100 * plan.imbalance:.2f}%")
    return lines


def _cuts_inside(units: Sequence[int], sizes: Sequence[int], pipes: Sequence[int]) -> list[Diagnostic]:
    """P611 for each written `|` that falls between a mixer and its FFN (one decoder layer)."""
    from patternc.diagnostics import diag
    from patternc.source import Span

    edges, at = set(), 0
    for size in units:
        at += size
        edges.add(at)
    found, at = [], 0
    for index, size in enumerate(sizes[:-1]):
        at += size
        if at not in edges:
            found.append(
                diag(
                    "P611",
                    f"the `|` after symbol {at - 1} cuts a decoder layer: its mixer and its FFN are one module",
                    Span.at(pipes[index]) if index < len(pipes) else None,
                    label="inside a decoder layer",
                    help="move the `|` one symbol left or right, or let `patternc split` place the boundaries",
                )
            )
    return found


def _refuse_what_check_refuses(result: SplitResult, json_output: bool, what: str) -> None:
    """Exit 1 with Megatron-Core's pipeline errors for the proposed pattern (``pipeline_diagnostics``, the rules
    ``check --pp`` applies), pointing into it: ``--pp 1 --vpp 2`` has no split Megatron-Core trains."""
    from patternc.analysis.pipeline import pipeline_diagnostics
    from patternc.api import analyze
    from patternc.commands.stats import fail
    from patternc.diagnostics import has_errors
    from patternc.kinds import alphabet

    # Megatron-Core's spelling when every kind is Megatron's; a kind it lacks (a short convolution `C`)
    # is read in patternc's dialect, which spells the same string and admits every kind
    megatron = set(result.unified) <= set(alphabet("megatron")) | {"|", "/"}
    analysis = analyze(result.unified, "megatron" if megatron else "patternc", origin="<proposed split>")
    assert analysis.pattern is not None  # the model's own layers, joined by `|` and `/`
    found = pipeline_diagnostics(
        analysis.pattern, result.pp, result.vpp if result.vpp > 1 else None, pipes=analysis.source_map.pipes
    )
    if has_errors(found):
        fail(found, analysis.source, json_output=json_output, what=what)


def _too_many_segments(segments: int, units: int, pp: int, vpp: int, paired: bool) -> Diagnostic:
    from patternc.diagnostics import diag

    what = "decoder layers (a mixer and its FFN each)" if paired else "layers"
    return diag(
        "P610",
        f"pp={pp} x vpp={vpp} = {segments} segments, but the model has only {units} {what}: "
        f"{segments - units} segment{'s' if segments - units != 1 else ''} would be empty",
        None,
        help=f"use at most {units} segments (pp x vpp), or a deeper model",
        notes=(
            "Megatron-Core accepts empty segments, but each one is a rank that holds no layer; "
            "`patternc check` warns about them (P102)",
        ),
    )


def split(
    source: SourceArg,
    pp: Annotated[int, typer.Option("--pp", min=1, help="Pipeline-parallel ranks K.")],
    vpp: Annotated[int, typer.Option("--vpp", min=1, help="Virtual stages per rank V.")] = 1,
    cost: Annotated[CostChoice, typer.Option("--cost", help="What to balance.")] = CostChoice.PARAMS,
    seq_len: Annotated[int, typer.Option("--seq-len", min=1, help="Context length for --cost flops.")] = 4096,
    dialect: Annotated[
        Dialect, typer.Option("--dialect", "-d", help="Surface syntax of a bare pattern.")
    ] = Dialect.PATTERNC,
    as_written: Annotated[
        bool,
        typer.Option("--as-written", help="Only cost and check the split as written (Megatron-Core's rules)."),
    ] = False,
    sets: SetsOpt = None,
    like: LikeOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object (schema split-output).")] = False,
    draw_file: Annotated[
        str | None, typer.Option("--draw", metavar="FILE", help="Also draw the split: FILE.svg or FILE.html.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --draw FILE if it exists.")] = False,
) -> None:
    """Split the layers into K x V contiguous segments minimising the largest segment cost (exactly).

    Segments hold whole decoder layers and none is empty. A bare pattern is sized as `patternc build`
    sizes it; --set changes a size, --like CONFIG takes every size from a real config.
    """
    from patternc.analysis.costs import CostError
    from patternc.analysis.outputs import SplitReport, diagnostics_out
    from patternc.analysis.pipeline import Partition, pipeline_diagnostics, split_model, stage_costs
    from patternc.commands.stats import fail, load_or_exit, no_cost_exit, read_overrides
    from patternc.diagnostics import has_errors

    if draw_file is not None:  # a bad --draw FILE is reported before any work (docs/draw.md)
        from patternc.commands.draw import check_target

        check_target(draw_file, force, source)
    overrides = read_overrides(source, sets, like)
    loaded = load_or_exit(source, dialect, json_output=json_output, sets=overrides, like=like)
    assert loaded.spec is not None and loaded.pattern is not None
    try:
        result = split_model(loaded.spec, pp, vpp, cost=cost.value, seq_len=seq_len)
    except CostError as error:
        no_cost_exit(str(error.kind), loaded.source, json_output=json_output, what=source)
    paired = any(size > 1 for size in result.units)
    if not as_written and pp * vpp > len(result.units):
        fail(
            [_too_many_segments(pp * vpp, len(result.units), pp, vpp, paired)],
            loaded.source,
            json_output=json_output,
            what=source,
        )
    if not as_written:
        _refuse_what_check_refuses(result, json_output, source)
    if loaded.spec.pattern.has_parallel:  # the proposal is Megatron-Core's string, which has no `[*M]`
        from patternc.diagnostics import diag

        refusal = diag(
            "P018",
            "`split` proposes Megatron-Core's pipeline layout, and Megatron-Core has no parallel layers (`[*M]`)",
            None,
            help="a Falcon-H1 model is served by its own family's code (vLLM, SGLang, transformers), not by Megatron",
        )
        fail([refusal], loaded.source, json_output=json_output, what=source)
    flat = loaded.spec.pattern.flat
    given = loaded.pattern
    problems: list[Diagnostic] = []
    written = None
    if len(given.stages) > 1 or as_written:
        problems = pipeline_diagnostics(given, pp, vpp if vpp > 1 else None, pipes=loaded.pipes)
        sizes: tuple[int, ...] | None = None
        if len(given.stages) > 1:
            sizes = tuple(stage.size for stage in given.stages)
            problems += _cuts_inside(result.units, sizes, loaded.pipes)
        else:  # Megatron-Core's automatic even split
            sizes = None if has_errors(problems) else (len(flat) // pp,) * pp
        if sizes is not None:
            from patternc.analysis.pipeline import megatron_string

            mtp = loaded.spec.pattern.mtp
            text = megatron_string(flat, sizes, mtp.flat if mtp else "", mtp.depths if mtp else 0)
            partition = Partition(sizes, stage_costs(result.layer_costs, sizes, result.first, result.last))
            written = _plan(partition, result, flat, text)
    failed = has_errors(problems)
    balanced = None if as_written else _plan(result.partition, result, flat, result.unified)
    report = SplitReport(
        ok=not failed,
        source=source,
        model_type=loaded.spec.source,
        defaults=loaded.defaults,
        like=loaded.like,
        overrides=loaded.overrides,
        pp=pp,
        vpp=vpp,
        cost=cost.value,
        seq_len=seq_len if cost is CostChoice.FLOPS else None,
        layers_per_decoder_layer=2 if paired else 1,
        balanced=balanced,
        as_written=written,
        diagnostics=diagnostics_out([*loaded.diagnostics, *problems], loaded.source),
    )
    drawn = ""
    if draw_file is not None:  # the split printed below: the balanced one, or as written
        from patternc.commands.draw import draw_split

        pictured = (partition if written is not None else None) if as_written else result.partition
        if pictured is not None:  # None: the split as written has errors, there is nothing to draw
            label = "parameters" if cost is CostChoice.PARAMS else f"prefill FLOPs per token at seq-len {seq_len}"
            drawn = draw_split(loaded, result, pictured, label, draw_file, force=force)
    if json_output:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
        if drawn:
            typer.echo(drawn, err=True)
        raise typer.Exit(EXIT_ERRORS if failed else EXIT_OK)
    _print(report, loaded, result, len(given.stages) > 1 or as_written, problems)
    if drawn:
        typer.echo(drawn)
    raise typer.Exit(EXIT_ERRORS if failed else EXIT_OK)


def _print(
    report: SplitReport, loaded: Loaded, result: SplitResult, show_written: bool, problems: list[Diagnostic]
) -> None:
    """The text form: the header, the split as written (with its diagnostics on stderr), the balanced split."""
    from patternc.commands.stats import print_diagnostics
    from patternc.inputs import describe_sizes

    lines = [f"source    {report.source}"]
    sizes = describe_sizes(report.defaults, report.like, report.overrides)
    lines.append(f"sizes     {sizes}" if sizes is not None else f"model     {report.model_type} config")
    if report.layers_per_decoder_layer == 2:
        lines.append(
            f"units     a {report.model_type} decoder layer is a mixer and its FFN; no boundary falls between them"
        )
    what = "parameters" if report.cost == "params" else f"prefill FLOPs per token at seq-len {report.seq_len}"
    lines.append(f"cost      {what}; embedding on the first segment, final norm + LM head + MTP on the last")
    stages = len(loaded.pattern.stages) if loaded.pattern is not None else 1
    if show_written:
        lines.append("")
        if stages > 1:
            lines.append(f"as written ({stages} segments)")
        else:
            lines.append(f"as written: Megatron-Core's automatic split into {report.pp} equal stages")
        if report.as_written is not None:
            lines.extend(_rows(report.as_written, result.first, result.last))
        typer.echo("\n".join(lines))
        lines = []
        print_diagnostics(problems, loaded.source, err=True)
    if report.balanced is not None:
        segments = report.pp * report.vpp
        lines.append("")
        lines.append(f"balanced  pp={report.pp} x vpp={report.vpp} = {segments} segment{'s' if segments != 1 else ''}")
        lines.append(f"pattern   {report.balanced.pattern}")
        lines.extend(_rows(report.balanced, result.first, result.last))
        typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command(name="split")(split)
