"""``patternc gen --layers N --attention A``: a pattern from layer ratios (docs/analysis.md)."""

from __future__ import annotations

from typing import Annotated

import typer

EXIT_ERRORS = 1


def gen(
    layers: Annotated[int, typer.Option("--layers", help="Number of layers N.")],
    attention: Annotated[float, typer.Option("--attention", help="Ratio of attention layers, 0..1.")],
    mlp: Annotated[float, typer.Option("--mlp", help="Ratio of FFN layers, 0..1.")] = 0.0,
    moe: Annotated[bool, typer.Option("--moe", help="The FFN layers are mixtures of experts (`E`).")] = False,
    megatron_compatible: Annotated[
        bool,
        typer.Option("--megatron-compatible", help="Reproduce Megatron-Core's pattern_from_ratios exactly."),
    ] = False,
) -> None:
    """Print a pattern of N layers with round(N x ratio) attention and FFN layers, evenly placed."""
    from patternc.analysis.ratios import generate
    from patternc.diagnostics import has_errors
    from patternc.render import render_text
    from patternc.source import Source

    result = generate(layers, attention, mlp, moe=moe, megatron_compatible=megatron_compatible)
    source = Source("", "<argv>")
    if result.pattern is None or has_errors(result.diagnostics):
        typer.echo(render_text(result.diagnostics, source), err=True)
        raise typer.Exit(EXIT_ERRORS)
    if result.diagnostics:
        typer.echo(render_text(result.diagnostics, source), err=True)
    typer.echo(result.pattern)


def register(app: typer.Typer) -> None:
    app.command(name="gen")(gen)
