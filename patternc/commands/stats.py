"""``patternc stats SOURCE``: parameters, FLOPs per token and inference memory (docs/analysis.md)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from patternc.dialects import Dialect
from patternc.exit_codes import EXIT_ERRORS

if TYPE_CHECKING:
    from patternc.diagnostics import Diagnostic
    from patternc.inputs import Loaded
    from patternc.source import Source


SourceArg = Annotated[
    str,
    typer.Argument(
        metavar="SOURCE",
        help="A config.json, a directory holding one, or a bare pattern (sized as `build` sizes it).",
    ),
]
SetsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a size of a bare pattern (a NemotronHConfig key, or a key of the --like config); repeatable.",
    ),
]
LikeOpt = Annotated[
    str | None,
    typer.Option(
        "--like",
        metavar="CONFIG",
        help="Size a bare pattern with every hyper-parameter of CONFIG (a config.json or model directory).",
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


def fail(
    diagnostics: list[Diagnostic], source: Source, *, json_output: bool = False, what: str | None = None
) -> NoReturn:
    """Print the errors and exit 1: as text, or with ``--json`` as one ``Failure`` object (``schema_version``,
    ``ok: false``, ``source``, each diagnostic as in ``check --json``), valid against the command's published
    output schema, so that stdout stays JSON whatever happens."""
    if json_output:
        from patternc.analysis.outputs import Failure, diagnostics_out

        payload = Failure(source=what, diagnostics=diagnostics_out(diagnostics, source))
        typer.echo(json.dumps(payload.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        print_diagnostics(diagnostics, source, err=True)
    raise typer.Exit(EXIT_ERRORS)


LAYOUT_KEYS = frozenset(
    {
        "attn_layer_indices",
        "full_attention_interval",
        "decoder_sparse_step",
        "mlp_only_layers",
        "attn_layer_period",
        "attn_layer_offset",
        "expert_layer_period",
        "expert_layer_offset",
    }
)
"""Layout keys of the other families: with ``--like`` the pattern decides the layout, so ``--set`` may not."""


def read_overrides(source: str, sets: list[str] | None, like: str | None) -> dict[str, Any]:
    """``--set`` values, parsed and checked as ``build`` does; usage errors (exit 2) for a config SOURCE, for
    keys the family does not have, and for the keys that decide the layout (the pattern decides it)."""
    from patternc.commands.build import parse_sets
    from patternc.inputs import looks_like_config_path

    if (sets or like is not None) and looks_like_config_path(source):
        raise typer.BadParameter(
            "applies to a bare pattern SOURCE only; a config already has its sizes (edit it instead)",
            param_hint="--set" if sets else "--like",
        )
    family = "nemotron_h"
    if like is not None and sets:
        from patternc.config import read_config

        family = read_config(like).family or family  # an unreadable --like is reported when it is loaded
    overrides = parse_sets(sets or [], family)
    layout = sorted(key for key in overrides if key in LAYOUT_KEYS)
    if layout:
        raise typer.BadParameter(
            f"{', '.join(f'`{k}`' for k in layout)} would replace what the pattern SOURCE "
            "says; change the pattern instead",
            param_hint="--set",
        )
    return overrides


def load_or_exit(
    source: str,
    dialect: str,
    *,
    json_output: bool = False,
    sets: dict[str, Any] | None = None,
    like: str | None = None,
) -> Loaded:
    """Load SOURCE; print its errors and exit 1 when there is no model, else print warnings to stderr."""
    from patternc.diagnostics import has_errors
    from patternc.inputs import load_source

    loaded = load_source(source, dialect, sets=sets, like=like)
    if loaded.spec is None or has_errors(loaded.diagnostics):
        fail(loaded.diagnostics, loaded.source, json_output=json_output, what=source)
    print_diagnostics(loaded.diagnostics, loaded.source, err=True)
    return loaded


def no_cost_exit(kind_value: str, source: Source, *, json_output: bool = False, what: str | None = None) -> NoReturn:
    from patternc.diagnostics import diag

    problem = diag(
        "P601",
        f"the model gives no hyper-parameters for its {kind_value} layers, so they cannot be counted",
        None,
    )
    fail([problem], source, json_output=json_output, what=what)


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
    sets: SetsOpt = None,
    like: LikeOpt = None,
) -> None:
    """Parameters (exact, per kind, active, MTP), FLOPs per token and inference memory of a model.

    A bare pattern is sized as `patternc build` sizes it (a tiny Nemotron-H); --set changes a size,
    --like CONFIG takes every size from a real config and keeps the pattern.
    """
    from patternc.analysis.costs import CostError
    from patternc.analysis.stats import model_stats
    from patternc.analysis.text import render_stats

    overrides = read_overrides(source, sets, like)
    loaded = load_or_exit(source, dialect, json_output=json_output, sets=overrides, like=like)
    assert loaded.spec is not None
    try:
        result = model_stats(
            loaded.spec,
            seq_len=seq_len,
            batch=batch,
            dtype=dtype.value,
            source=source,
            defaults=loaded.defaults,
            like=loaded.like,
            overrides=loaded.overrides,
        )
    except CostError as error:
        no_cost_exit(str(error.kind), loaded.source, json_output=json_output, what=source)
    if json_output:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_stats(result), nl=False)


def register(app: typer.Typer) -> None:
    app.command(name="stats")(stats)
