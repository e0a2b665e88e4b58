"""``patternc gen --layers N --attention A``: a pattern from layer ratios (docs/analysis.md).

The default layout is mixer-then-FFN blocks (``block_pattern``): every FFN follows a mixer of its
own, attention first, so the pattern never starts with an FFN.  ``--layout spread`` keeps the earlier
placement (each kind spread on its own), ``--megatron-compatible`` Megatron-Core's.  ``--json`` prints
one ``gen-output`` object whatever happens.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from patternc.kinds import LayerKind, kind_def

_MAMBA2 = kind_def(LayerKind.MAMBA2).symbol
_ATTENTION = kind_def(LayerKind.ATTENTION).symbol


class Layout(StrEnum):
    BLOCKS = "blocks"
    SPREAD = "spread"


def gen(
    layers: Annotated[int, typer.Option("--layers", min=1, help="Number of layers N (pattern symbols).")],
    attention: Annotated[float, typer.Option("--attention", min=0.0, max=1.0, help="Ratio of attention layers, 0..1.")],
    mlp: Annotated[
        float, typer.Option("--mlp", min=0.0, max=1.0, help="Ratio of FFN layers, 0..1 (dense, or MoE with --moe).")
    ] = 0.0,
    moe: Annotated[bool, typer.Option("--moe", help="The FFN layers are mixtures of experts (`E`).")] = False,
    layout: Annotated[
        Layout,
        typer.Option("--layout", help="blocks: each FFN after a mixer of its own; spread: each kind spread alone."),
    ] = Layout.BLOCKS,
    mtp: Annotated[
        int, typer.Option("--mtp", min=0, metavar="DEPTHS", help="Append this many MTP depths (`/` parts).")
    ] = 0,
    mtp_pattern: Annotated[
        str | None,
        typer.Option(
            "--mtp-pattern", metavar="PART", help="The layers of one MTP depth (default `*-`, `*E` with --moe)."
        ),
    ] = None,
    mixer: Annotated[
        str,
        typer.Option(
            "--mixer",
            metavar="SYMBOL",
            help="The symbol of the linear-time mixers: M (Mamba2), G, K, L, S or C.",
        ),
    ] = _MAMBA2,
    attention_kind: Annotated[
        str,
        typer.Option("--attention-kind", metavar="SYMBOL", help="The symbol of the attention layers: *, + or D."),
    ] = _ATTENTION,
    megatron_compatible: Annotated[
        bool,
        typer.Option("--megatron-compatible", help="Reproduce Megatron-Core's pattern_from_ratios exactly."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object (schema gen-output).")] = False,
) -> None:
    """Print a pattern of N layers with round(N x ratio) attention and FFN layers: mixer-then-FFN blocks,
    evenly placed."""
    from patternc.analysis.outputs import GenReport, diagnostics_out
    from patternc.analysis.ratios import generate
    from patternc.commands.stats import fail, print_diagnostics
    from patternc.diagnostics import has_errors
    from patternc.kinds import kinds
    from patternc.source import Source

    result = generate(
        layers,
        attention,
        mlp,
        moe=moe,
        megatron_compatible=megatron_compatible,
        layout=layout.value,
        mtp_depths=mtp,
        mtp_pattern=mtp_pattern,
        mixer=mixer,
        attention_kind=attention_kind,
    )
    source = Source(result.source_text, "--mtp-pattern" if result.source_text else "<argv>")
    if result.pattern is None or has_errors(result.diagnostics):
        fail(result.diagnostics, source, json_output=json_output)
    main = result.pattern.split("/", 1)[0]
    if json_output:
        counts = {d.symbol: main.count(d.symbol) for d in kinds() if d.symbol in main}
        report = GenReport(
            pattern=result.pattern,
            layers=len(main),
            decoder_blocks=sum(main.count(d.symbol) for d in kinds() if d.role.mixes_tokens),
            counts=counts,
            attention=result.attention,
            ffn=result.mlp,
            mtp=result.mtp,
            megatron_compatible=megatron_compatible,
            diagnostics=diagnostics_out(result.diagnostics, source),
        )
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    print_diagnostics(result.diagnostics, source, err=True)
    typer.echo(result.pattern)


def register(app: typer.Typer) -> None:
    app.command(name="gen")(gen)
