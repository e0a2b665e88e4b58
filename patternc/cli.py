"""The ``patternc`` command line: a thin layer over the API.

Exit codes (``patternc/exit_codes.py`` states the rule): 0 no error (warnings allowed); 1 the input
was read and has errors; 2 the command line itself is wrong (unknown option, choice or name, a
value of the wrong form); 101 an internal error (a bug: please report it).
Diagnostics go to stdout for ``check`` (they are its result) and are deterministic.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from patternc.cli_common import (
    CONTEXT_SETTINGS,
    IgnoreOpt,
    SelectOpt,
    apply_conventions,
    code_prefixes,
    keep_diagnostic,
    target_names,
)
from patternc.dialects import Dialect
from patternc.exit_codes import EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from patternc.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from patternc.check import CheckOutcome
    from patternc.codes import Code
    from patternc.diagnostics import Diagnostic

__all__ = ["app", "main", "run_example"]

app = typer.Typer(
    name="patternc",
    help="A compiler for hybrid layer patterns such as `M-M-M*-` (Nemotron-H, Megatron-Core hybrids).",
    no_args_is_help=True,
    add_completion=False,  # `patternc completion SHELL` instead: a command, with its own --help
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT_SETTINGS,
    epilog="Examples:\n\n\b\n  patternc check 'M-M*-'\n  patternc check config.json --targets\n"
    "  patternc build 'M-M*-' -o tiny\n  patternc explain P001\n\n"
    "Exit codes: 0 ok, 1 the input has errors, 2 the command line is wrong (docs/cli.md). "
    "`patternc COMMAND -h` shows a command's options and examples.",
)


def _show_version(value: bool) -> None:
    if value:
        from patternc._version import __version__

        typer.echo(f"patternc {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", is_eager=True, callback=_show_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """The root: only ``--version``; its help text is the app's (``help=`` and ``epilog=`` above)."""


class ColorChoice(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class ConvertTo(StrEnum):
    FLAT = "flat"
    MEGATRON = "megatron"
    FMT = "fmt"
    LAYERS_BLOCK_TYPE = "layers_block_type"
    LEGACY_LAYERS_BLOCK_TYPE = "legacy_layers_block_type"


def _use_color(choice: ColorChoice) -> bool:
    if choice is ColorChoice.ALWAYS:
        return True
    if choice is ColorChoice.NEVER:
        return False
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _read_pattern(pattern: str, limits: Limits) -> tuple[str, str]:
    """The pattern text and its origin; ``-`` reads at most the size limit (plus one) from stdin."""
    if pattern != "-":
        return _source_text(pattern), "<argv>"
    cap = limits.max_chars * 4 + 1  # enough bytes for max_chars characters of any width, and one more
    data = sys.stdin.buffer.read(cap)
    full = len(data) < cap
    # the cap may cut the last character in half: up to three trailing bytes are not an error then
    for end in (len(data),) if full else range(len(data), max(len(data) - 4, -1), -1):
        try:
            text = data[:end].decode("utf-8")
            break
        except UnicodeDecodeError as error:
            problem = error
    else:
        raise typer.BadParameter(f"stdin is not UTF-8 text (byte {problem.start})", param_hint="PATTERN") from None
    if not full:  # longer than max_chars whatever its characters are: analyze reports P012
        return text[: limits.max_chars + 1], "<stdin>"
    return text.removesuffix("\n").removesuffix("\r"), "<stdin>"


DialectOpt = Annotated[Dialect, typer.Option("--dialect", "-d", help="Surface syntax of PATTERN.")]
PatternArg = Annotated[
    str, typer.Argument(metavar="PATTERN", help="The pattern, e.g. 'M-M*-'; '-' reads it from stdin.")
]
SourceArg = Annotated[
    str,
    typer.Argument(
        metavar="PATTERN|CONFIG",
        help="A pattern ('M-M*-'; '-' reads stdin), or a config.json / a directory holding one "
        "(a valid pattern wins over a file of the same name; write ./NAME for the file).",
    ),
]
MaxLayersOpt = Annotated[
    int, typer.Option("--max-layers", min=1, metavar="N", help="Refuse patterns that expand to more layers.")
]
MaxCharsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-chars",
        min=1,
        metavar="N",
        help="Refuse longer inputs: pattern characters (default 100,000), config bytes (16 MiB).",
    ),
]
MaxDiagOpt = Annotated[
    int, typer.Option("--max-diagnostics", min=1, metavar="N", help="Show at most this many diagnostics.")
]
ColorOpt = Annotated[ColorChoice, typer.Option("--color", help="Colour the diagnostics.")]


def _check_targets(values: list[str] | None) -> list[str]:
    """``--target`` values as profile names; an unknown or build-only name is P313 and exit 2."""
    from patternc.target_names import lookup

    profiles = []
    for name in target_names(values, "check"):
        entry = lookup(name)
        if entry is not None and entry.profile is not None:
            profiles.append(entry.profile)
    return profiles


def _source_text(argument: str) -> str:
    """A PATTERN|CONFIG argument checked for undecodable bytes (a usage error, like such stdin)."""
    # Python hands undecodable argv bytes over as lone surrogates (surrogateescape): the same
    # usage error as bytes on stdin that are not UTF-8, not an unknown layer symbol
    bad = next((i for i, c in enumerate(argument) if "\udc80" <= c <= "\udcff"), None)
    if bad is not None:
        raise typer.BadParameter(
            f"the argument is not UTF-8 text (byte 0x{ord(argument[bad]) - 0xDC00:02x} at character {bad})",
            param_hint="PATTERN",
        )
    return argument


@app.command()
def check(
    pattern: SourceArg,
    dialect: DialectOpt = Dialect.PATTERNC,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object (docs/cli.md).")] = False,
    max_layers: MaxLayersOpt = DEFAULT_LIMITS.max_layers,
    max_diagnostics: MaxDiagOpt = DEFAULT_LIMITS.max_diagnostics,
    max_chars: MaxCharsOpt = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            metavar="NAME",
            help="Will this consumer load and run it? Repeatable. Names: nemotron_h, bamba, granitemoehybrid, "
            "mamba2, vllm, sglang, megatron, megatron-bridge, llama.cpp (and aliases, docs/cli.md).",
        ),
    ] = None,
    all_targets: Annotated[
        bool, typer.Option("--targets", help="Print the portability table over every target profile.")
    ] = False,
    pp: Annotated[
        int | None,
        typer.Option("--pp", min=1, metavar="K", help="Check the `|` split against Megatron's rules for K ranks."),
    ] = None,
    vpp: Annotated[
        int | None, typer.Option("--vpp", min=1, metavar="V", help="Virtual pipeline stages per rank (with --pp).")
    ] = None,
    color: ColorOpt = ColorChoice.AUTO,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and the verdict (text output).")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also say why each other architecture is not exact (configs)."),
    ] = False,
    select: SelectOpt = None,
    ignore: IgnoreOpt = None,
) -> None:
    """Parse and check a pattern or a config; print its summary and every diagnostic."""
    from patternc.check import CheckRequest, Pipeline, check
    from patternc.report import build_report
    from patternc.summary import render_summary

    # The command line is validated in full before the input is read: exit 2, nothing on stdout.
    if vpp is not None and pp is None:
        raise typer.BadParameter("--vpp needs --pp (the number of pipeline ranks)", param_hint="--vpp")
    profiles = _check_targets(target)
    selected, ignored = code_prefixes(select, "--select"), code_prefixes(ignore, "--ignore")
    limits = Limits(
        max_layers=max_layers, max_chars=max_chars or DEFAULT_LIMITS.max_chars, max_diagnostics=max_diagnostics
    )
    if pattern == "-":
        argument, origin = _read_pattern(pattern, limits)
    else:
        argument, origin = _source_text(pattern), "<argv>"
    request = CheckRequest(
        argument,
        dialect,
        limits,
        max_bytes=max_chars,
        origin=origin,
        targets=tuple(profiles),
        all_targets=all_targets,
        pipeline=Pipeline(pp, vpp) if pp is not None else None,
    )
    outcome, filtered = _filter(check(request), selected, ignored)
    if json_output:
        report = build_report(outcome)
        typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        use_color = _use_color(color)
        # color=True: click would otherwise strip the escapes whenever stdout is not a terminal.
        text_out = render_summary(outcome, color=use_color, quiet=quiet, verbose=verbose, filtered=filtered)
        typer.echo(text_out, nl=False, color=use_color)
    raise typer.Exit(EXIT_OK if outcome.ok else EXIT_ERRORS)


def _filter(outcome: CheckOutcome, select: list[str], ignore: list[str]) -> tuple[CheckOutcome, int]:
    """``--select``/``--ignore`` applied to the outcome's diagnostics (errors always stay), and how many were hidden."""
    import dataclasses

    if not select and not ignore:
        return outcome, 0
    analysis = outcome.analysis
    kept = [d for d in analysis.diagnostics if keep_diagnostic(d, select, ignore)]
    hidden = len(analysis.diagnostics) - len(kept)
    targets: dict[str, list[Diagnostic]] = {}
    for name, found in outcome.targets.items():
        targets[name] = [d for d in found if keep_diagnostic(d, select, ignore)]
        hidden += len(found) - len(targets[name])
    filtered = dataclasses.replace(outcome, analysis=dataclasses.replace(analysis, diagnostics=kept), targets=targets)
    return filtered, hidden


@app.command()
def fmt(
    pattern: PatternArg,
    dialect: DialectOpt = Dialect.PATTERNC,
    max_layers: MaxLayersOpt = DEFAULT_LIMITS.max_layers,
) -> None:
    """Print the canonical compact form of a pattern (repetition factored)."""
    from patternc.fmt import fmt as format_pattern

    pattern_ir = _parse_or_exit(pattern, dialect, Limits(max_layers=max_layers))
    typer.echo(format_pattern(pattern_ir))


@app.command()
def convert(
    pattern: PatternArg,
    to: Annotated[ConvertTo, typer.Option("--to", help="Output form.")] = ConvertTo.MEGATRON,
    dialect: DialectOpt = Dialect.PATTERNC,
    from_list: Annotated[
        bool, typer.Option("--from-list", help="PATTERN is a comma-separated layers_block_type list.")
    ] = False,
) -> None:
    """Convert a pattern to another spelling (flat, Megatron unified string, HF lists, fmt)."""
    from patternc import convert as conv
    from patternc.diagnostics import PatternError
    from patternc.fmt import fmt as format_pattern

    try:
        if from_list:
            text, _ = _read_pattern(pattern, DEFAULT_LIMITS)
            names = [name.strip() for name in text.split(",") if name.strip()]
            pattern_ir = conv.from_layers_block_type(names)
        else:
            pattern_ir = _parse_or_exit(pattern, dialect, DEFAULT_LIMITS)
        if to is ConvertTo.FLAT:
            result: object = "".join(pattern_ir.spelled)  # a parallel layer stays `[*M]`
        elif to is ConvertTo.MEGATRON:
            result = conv.to_megatron(pattern_ir)
        elif to is ConvertTo.FMT:
            result = format_pattern(pattern_ir)
        else:
            vocabulary = conv.Vocabulary.LEGACY if to is ConvertTo.LEGACY_LAYERS_BLOCK_TYPE else conv.Vocabulary.CURRENT
            names = conv.to_layers_block_type(pattern_ir.spelled, vocabulary)
            payload: dict[str, object] = {"layers_block_type": names}
            if pattern_ir.mtp is not None:
                payload["mtp_layers_block_type"] = conv.to_layers_block_type(pattern_ir.mtp.spelled, vocabulary)
                payload["num_nextn_predict_layers"] = pattern_ir.mtp.depths
            result = json.dumps(payload)
    except PatternError as error:
        typer.echo(str(error), err=True, nl=False)
        raise typer.Exit(EXIT_ERRORS) from None
    typer.echo(result)


def _parse_or_exit(pattern: str, dialect: Dialect, limits: Limits):  # type: ignore[no-untyped-def]
    from patternc.api import analyze
    from patternc.render import render_text

    text, origin = _read_pattern(pattern, limits)
    analysis = analyze(text, dialect, limits=limits, origin=origin)
    if analysis.pattern is None:
        typer.echo(render_text(analysis.diagnostics, analysis.source), err=True, nl=False)
        raise typer.Exit(EXIT_ERRORS)
    return analysis.pattern


@app.command()
def explain(code: Annotated[str, typer.Argument(metavar="CODE", help="A code such as P001, or its name.")]) -> None:
    """Print the long explanation of a diagnostic code, with a live example."""
    from patternc.explain import explanation

    found = explanation(code)
    if found is None:
        from patternc.codes import CODES

        typer.echo(
            f"error: unknown diagnostic code {code!r}; known codes: " + ", ".join(c.code for c in CODES),
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)
    _, output, _ = run_example(found.code)
    shown = "".join(f"    {line}\n" if line else "\n" for line in output.splitlines())
    typer.echo(found.text + shown, nl=False)


def run_example(code: Code) -> tuple[str, str, int]:
    """Run a code's example in a scratch directory holding its files: its command line, output and exit code.

    In-process (``CliRunner``), in a fresh temporary working directory, because the examples name their
    files by relative paths (``check config.json``); ``explain``, ``tests/docgen.py`` and the docs tests
    all run them through here, so the documented output is the program's.
    """
    import contextlib
    import tempfile
    from pathlib import Path

    from typer.testing import CliRunner

    from patternc.explain import example_args, example_command, write_example_files

    with tempfile.TemporaryDirectory(prefix="patternc-example-") as scratch:
        write_example_files(code, Path(scratch))
        with contextlib.chdir(scratch):
            result = CliRunner().invoke(app, list(example_args(code)))
    return example_command(code), result.output, result.exit_code


@app.command()
def schema(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="ir, model, check-output, stats-output, split-output, gen-output, build-output, run-output, "
            "config-<model_type>",
        ),
    ],
) -> None:
    """Print a published JSON Schema (the same text as schemas/<name>.v1.schema.json)."""
    from patternc.schemas import SCHEMAS, schema_text

    if name not in SCHEMAS:
        typer.echo(f"error: unknown schema {name!r}; known: {', '.join(sorted(SCHEMAS))}", err=True)
        raise typer.Exit(EXIT_USAGE)
    typer.echo(schema_text(name), nl=False)


@app.command(name="backends")
def list_backends() -> None:
    """List the installed backends (entry-point group `patternc.backends`): name, targets, description."""
    from patternc.backends import listing

    for line in listing():
        typer.echo(line)


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"
    POWERSHELL = "powershell"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh, fish or powershell.")]) -> None:
    """Print the shell completion script for SHELL (source it, or save it where your shell loads completions)."""
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name="patternc", complete_var="_PATTERNC_COMPLETE", shell=shell.value))


if "_PATTERNC_COMPLETE" in os.environ:  # a shell asking for completions (the script `completion` prints)
    from typer._completion_classes import completion_init

    completion_init()  # typer registers its shell classes only with add_completion=True

from patternc.commands import register_all  # noqa: E402  (after the built-in commands: help order)

register_all(app)
apply_conventions(app)  # last: every command, wherever it is defined, gets -h, examples, metavars, choices


class Terminated(SystemExit):
    """SIGTERM or SIGHUP, raised in the main thread so ``finally`` blocks (a build's staging clean-up) run."""


def _on_signal(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


def main() -> None:
    """Console-script entry: map every failure to a documented exit code, never a traceback."""
    import signal

    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            signal.signal(signum, _on_signal)
    try:
        app(standalone_mode=True)
    except Terminated:
        sys.stderr.write("terminated\n")
        raise
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except BaseException as error:  # an internal error: a bug in patternc, not in the input (BaseException:
        # pyo3's PanicException, raised by a Rust extension such as safetensors, is not an Exception)
        if os.environ.get("PATTERNC_DEBUG"):
            raise
        sys.stderr.write(
            f"internal error: {type(error).__name__}: {error}\n"
            "this is a bug in patternc; please report it with the command you ran "
            "(set PATTERNC_DEBUG=1 for the traceback)\n"
        )
        sys.exit(EXIT_INTERNAL)
