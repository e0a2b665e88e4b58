"""``patternc split SOURCE --pp K``: the balanced pipeline split, in Megatron's ``|`` syntax."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from patternc.commands.stats import SourceArg
from patternc.dialects import Dialect

if TYPE_CHECKING:
    from patternc.analysis.pipeline import Partition

EXIT_ERRORS = 1


class CostChoice(StrEnum):
    PARAMS = "params"
    FLOPS = "flops"


def _rows(partition: Partition, pp: int, flat: str, first: int, last: int) -> list[str]:
    lines = [f"  {'segment':>7} {'rank':>4} {'vp':>3}  {'layers':<11} {'cost':>20}  pattern"]
    start = 0
    stages = len(partition.sizes)
    for index, (size, cost) in enumerate(zip(partition.sizes, partition.costs, strict=True)):
        span = f"{start}-{start + size - 1}" if size else "(empty)"
        extra = []
        if index == 0 and first:
            extra.append(f"+{first:,} embedding")
        if index == stages - 1 and last:
            extra.append(f"+{last:,} head/MTP")
        text = flat[start : start + size]
        shown = text if len(text) <= 60 else text[:57] + "..."
        suffix = f"  ({', '.join(extra)})" if extra else ""
        lines.append(f"  {index:>7} {index % pp:>4} {index // pp:>3}  {span:<11} {cost:>20,}  {shown}{suffix}")
        start += size
    mean = sum(partition.costs) / len(partition.costs)
    lines.append(f"  largest {partition.max_cost:,}  mean {mean:,.0f}  imbalance {100 * partition.imbalance:.2f}%")
    return lines


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
) -> None:
    """Split the layers into K x V contiguous segments minimising the largest segment cost (exactly)."""
    from patternc.analysis.costs import CostError
    from patternc.analysis.pipeline import Partition, pipeline_diagnostics, split_model, stage_costs
    from patternc.commands.stats import load_or_exit, no_cost_exit, print_diagnostics
    from patternc.diagnostics import has_errors

    loaded = load_or_exit(source, dialect)
    assert loaded.spec is not None and loaded.pattern is not None
    try:
        result = split_model(loaded.spec, pp, vpp, cost=cost.value, seq_len=seq_len)
    except CostError as error:
        no_cost_exit(error.kind.value, loaded.source)
        raise  # pragma: no cover
    flat = loaded.spec.pattern.flat
    lines = [f"source    {source}"]
    if loaded.defaults:
        lines.append("sizes     transformers' NemotronHConfig defaults (a bare pattern has no hyper-parameters)")
    what = "parameters" if cost is CostChoice.PARAMS else f"prefill FLOPs per token at seq-len {seq_len}"
    lines.append(f"cost      {what}; embedding on the first segment, final norm + LM head + MTP on the last")
    failed = False
    given = loaded.pattern
    if len(given.stages) > 1 or as_written:
        problems = pipeline_diagnostics(given, pp, vpp if vpp > 1 else None, pipes=loaded.pipes)
        failed = has_errors(problems)
        if len(given.stages) > 1:
            sizes: tuple[int, ...] | None = tuple(stage.size for stage in given.stages)
            title = f"as written ({len(given.stages)} segments)"
        else:  # Megatron-Core's automatic even split
            sizes = None if failed else (len(flat) // pp,) * pp
            title = f"as written: Megatron-Core's automatic split into {pp} equal stages"
        lines.append("")
        lines.append(title)
        if sizes is not None:
            written = Partition(sizes, stage_costs(result.layer_costs, sizes, result.first, result.last))
            lines.extend(_rows(written, pp, flat, result.first, result.last))
        typer.echo("\n".join(lines))
        lines = []
        print_diagnostics(problems, loaded.source, err=True)
    if not as_written:
        segments = pp * vpp
        lines.append("")
        lines.append(f"balanced  pp={pp} x vpp={vpp} = {segments} segment{'s' if segments != 1 else ''}")
        lines.append(f"pattern   {result.unified}")
        lines.extend(_rows(result.partition, pp, flat, result.first, result.last))
        if segments > len(flat):
            lines.append(f"  note: {segments} segments for {len(flat)} layers: some segments are empty")
        typer.echo("\n".join(lines))
    raise typer.Exit(EXIT_ERRORS if failed else 0)


def register(app: typer.Typer) -> None:
    app.command(name="split")(split)
