"""``patternc stats SOURCE``: parameters, FLOPs per token and inference memory (docs/analysis.md)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from patternc.dialects import Dialect

if TYPE_CHECKING:
    from patternc.analysis.source import Loaded
    from patternc.diagnostics import Diagnostic
    from patternc.source import Source

EXIT_ERRORS = 1

SourceArg = Annotated[
    str,
    typer.Argument(
        metavar="SOURCE",
        help="A config.json, a directory holding one, or a bare pattern (sized with NemotronHConfig's defaults).",
    ),
]


class DtypeChoice(StrEnum):
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


def print_diagnostics(diagnostics: list[Diagnostic], source: Source, *, err: bool) -> None:
    from patternc.render import render_text

    if diagnostics:
        typer.echo(render_text(diagnostics, source), err=err)


def fail(diagnostics: list[Diagnostic], source: Source, *, json_output: bool = False) -> NoReturn:
    """Print the errors and exit 1: as text, or with ``--json`` as one object ``{"ok": false, "diagnostics":
    [...]}`` (each diagnostic as in ``check --json``), so that stdout stays JSON whatever happens."""
    from patternc.render import diagnostic_json

    if json_output:
        payload = {"ok": False, "diagnostics": [diagnostic_json(d, source) for d in diagnostics]}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print_diagnostics(diagnostics, source, err=True)
    raise typer.Exit(EXIT_ERRORS)


def load_or_exit(source: str, dialect: str, *, json_output: bool = False) -> Loaded:
    """Load SOURCE; print its errors and exit 1 when there is no model, else print warnings to stderr."""
    from patternc.analysis.source import load_source
    from patternc.diagnostics import has_errors

    loaded = load_source(source, dialect)
    if loaded.spec is None or has_errors(loaded.diagnostics):
        fail(loaded.diagnostics, loaded.source, json_output=json_output)
    print_diagnostics(loaded.diagnostics, loaded.source, err=True)
    return loaded


def no_cost_exit(kind_value: str, source: Source, *, json_output: bool = False) -> NoReturn:
    from patternc.diagnostics import diag

    problem = diag(
        "P601",
        f"the model gives no hyper-parameters for its {kind_value} layers, so they cannot be counted",
        None,
    )
    fail([problem], source, json_output=json_output)


def stats(
    source: SourceArg,
    seq_len: Annotated[int, typer.Option("--seq-len", min=1, help="Context length L.")] = 4096,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Sequences in the batch B.")] = 1,
    dtype: Annotated[DtypeChoice, typer.Option("--dtype", help="Element type of weights and caches.")] = (
        DtypeChoice.BF16
    ),
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object (schema stats-output).")] = False,
    dialect: Annotated[
        Dialect, typer.Option("--dialect", "-d", help="Surface syntax of a bare pattern.")
    ] = Dialect.PATTERNC,
) -> None:
    """Parameters (exact, per kind, active, MTP), FLOPs per token and inference memory of a model."""
    from patternc.analysis.costs import CostError
    from patternc.analysis.stats import model_stats
    from patternc.analysis.text import render_stats

    loaded = load_or_exit(source, dialect, json_output=json_output)
    assert loaded.spec is not None
    try:
        result = model_stats(
            loaded.spec, seq_len=seq_len, batch=batch, dtype=dtype.value, source=source, defaults=loaded.defaults
        )
    except CostError as error:
        no_cost_exit(error.kind.value, loaded.source, json_output=json_output)
    if json_output:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_stats(result), nl=False)


def register(app: typer.Typer) -> None:
    app.command(name="stats")(stats)
