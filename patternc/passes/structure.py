"""Structural rules of the parsed stack: a main decoder exists; pipeline stages are not empty."""

from __future__ import annotations

from collections.abc import Iterator

from patternc.diagnostics import Diagnostic, diag
from patternc.passes.manager import Context, Pass
from patternc.source import Span


def check_nonempty(ctx: Context) -> Iterator[Diagnostic]:
    """P101: Megatron builds a decoder with zero layers silently (its G3/G10); we refuse."""
    if ctx.pattern.num_layers == 0:
        has_mtp = ctx.pattern.mtp is not None
        yield diag(
            "P101",
            "the main pattern has no layer" + (" (only multi-token-prediction parts)" if has_mtp else ""),
            Span.at(0, 0) if not ctx.source_map.pipes else Span.at(ctx.source_map.pipes[0]),
            label="empty main pattern",
            help="write at least one layer symbol before any `/`, e.g. `M*-`",
        )


def check_empty_stages(ctx: Context) -> Iterator[Diagnostic]:
    """P102: Megatron allows empty stages for balancing; we accept them, with a warning."""
    stages = ctx.pattern.stages
    pipes = ctx.source_map.pipes
    if len(stages) < 2 or ctx.pattern.num_layers == 0:
        return
    last = len(stages) - 1
    for stage in stages:
        if stage.size:
            continue
        where = "leading `|`" if stage.index == 0 else "trailing `|`" if stage.index == last else "`||`"
        if stage.index == 0:
            span = Span.at(pipes[0])
        elif stage.index == last:
            span = Span.at(pipes[-1])
        else:
            span = Span(pipes[stage.index - 1], pipes[stage.index] + 1)
        yield diag(
            "P102",
            f"pipeline stage {stage.index + 1} of {len(stages)} is empty ({where})",  # 1-based: 3 of 3 is the last
            span,
            label="empty stage",
            help="Megatron accepts empty stages to balance pipelines; remove the `|` if it is a typo",
        )


PASSES = (
    Pass("nonempty", check_nonempty),
    Pass("empty-stages", check_empty_stages),
)
