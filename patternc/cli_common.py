"""Conventions every ``patternc`` command shares, in one place so that each command gets them for free.

``apply_conventions(app)`` runs once, after every command is registered (``patternc/cli.py``), and
gives each command:

- ``-h`` beside ``--help`` (inherited from the app's context settings) and an ``Examples:`` epilog
  (``EXAMPLES``; a command may set its own);
- metavars that name what a value is (``N``, ``K``, ``RATIO``, ``NAME``) instead of Python types
  (``<int>``, ``<str>``);
- choices (``--dialect``, ``--color``, ``--to``, …) that are case-insensitive, and a did-you-mean
  when a value is not one of them;
- PATTERN arguments that start with ``-``: a token such as ``-M*-`` or ``--M*-`` is not an option
  (options are ``-`` or ``--`` and a lowercase letter), so it is handed to the positional argument
  instead of failing with ``No such option: -M``.  ``--`` ends the options as everywhere (POSIX),
  and the help of a "No such option" error says so;
- ``--select``/``--ignore``/``-q`` (where the command has none of its own), which filter the
  diagnostics ``render_text`` prints while the command runs (``patternc.render.output_filter``).

Helpers the commands call: ``target_names``/``build_target`` (the one target vocabulary,
``patternc/target_names.py``), ``check_set_values`` (``--set`` values typed against the config
model), ``usage_error`` (a coded usage diagnostic, exit 2), ``filter_diagnostics``.

Exit codes (one rule, documented in ``docs/cli.md``): ``2`` when the command line itself is wrong
(an unknown command, option or choice, a value of the wrong form or outside its range, an unknown
``--target``, ``--ignore`` code, ``explain`` code or schema name: patternc did not start reading the
input), ``1`` when the input was read and has errors (diagnostics), or a question asked of it got
"no" (``check --target``).  Commands raise ``typer.BadParameter`` for the first kind.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from typer._click.exceptions import NoSuchOption  # typer >= 0.29 vendors click (pyproject pins it)
from typer.core import TyperArgument, TyperCommand, TyperOption

from patternc.exit_codes import EXIT_USAGE

if TYPE_CHECKING:
    from patternc.diagnostics import Diagnostic

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
"""The app's context settings; every command inherits them (``-h``)."""

_OPTION_LIKE = re.compile(r"^--?[a-z]")
"""What an option looks like: every patternc option is ``-x`` or ``--xyz`` with a lowercase letter.
Layer symbols are uppercase or punctuation, so a pattern never matches."""

EXAMPLES: dict[str, tuple[str, ...]] = {
    "check": (
        "patternc check 'M-M*-'",
        "patternc check -- '-M*-'                 # a pattern that starts with '-'",
        "patternc check config.json --target vllm --target llama.cpp",
        "patternc check ./ckpt --quiet --ignore P9",
        "echo 'M-M*-' | patternc check - --json",
    ),
    "fmt": ("patternc fmt 'M-M-M-M*-M-M-M-M*-'", "patternc fmt -d megatron 'M-M*-|M-M*-'"),
    "convert": (
        "patternc convert --to flat '(M-){2} M*- /*E'",
        "patternc convert --to layers_block_type 'M-M*-'",
        "patternc convert --from-list 'mamba,mlp,attention,mlp'",
    ),
    "explain": ("patternc explain P001", "patternc explain unknown-symbol"),
    "schema": ("patternc schema check-output", "patternc schema config-nemotron_h > nemotron_h.schema.json"),
    "backends": ("patternc backends",),
    "build": (
        "patternc build 'M-M*-' -o tiny",
        "patternc build config.json -o out --weights ckpt/ --target nemotron_h",
        "patternc build config.json -o args --target megatron --pp 4",
    ),
    "run": ("patternc run tiny --ids '1 2 3'", "patternc run out --prompt 'Hello' --tokenizer tok/"),
    "stats": (
        "patternc stats 'M-M*-M-M*-'",
        "patternc stats config.json --seq-len 8192 --json",
        "patternc stats 'M-M*-M-M*-' --like config.json      # the pattern with the config's sizes",
        "patternc stats 'M-M*-' --set hidden_size=1024 --set intermediate_size=4096",
    ),
    "split": (
        "patternc split config.json --pp 4",
        "patternc split 'M-M*-M-M*-' --pp 2 --vpp 2 --cost flops",
        "patternc split 'M-M*-M-M*-' --pp 2 --like config.json --json",
    ),
    "gen": (
        "patternc gen --layers 52 --attention 0.08 --mlp 0.46",
        "patternc gen --layers 24 --attention 0.25 --mlp 0.5 --moe --mtp 1",
        "patternc gen --layers 12 --attention 0.25 --mlp 0.5 --layout spread --json",
    ),
    "draw": ("patternc draw 'M-M*-M-M*-' -o pattern.svg", "patternc draw config.json -o model.html"),
    "completion": ("patternc completion bash > ~/.local/share/bash-completion/completions/patternc",),
}
"""Command -> example command lines printed under ``Examples:`` in its ``--help``."""

_METAVARS: dict[str, str] = {
    "--max-layers": "N",
    "--max-diagnostics": "N",
    "--max-chars": "N",
    "--pp": "K",
    "--vpp": "V",
    "--target": "NAME",
    "--seq-len": "TOKENS",
    "--batch": "B",
    "--layers": "N",
    "--attention": "RATIO",
    "--mlp": "RATIO",
    "--ignore": "CODE",
    "--select": "CODE",
    "--set": "KEY=VALUE",
    "--max-shard-size": "SIZE",
    "--ids": "IDS",
    "--prompt": "TEXT",
    "--tokenizer": "DIR",
    "--max-new-tokens": "N",
    "--seed": "N",
    "--device": "DEVICE",
    "--dtype": "DTYPE",
}
"""Option -> metavar, for options that do not set one; other options get one from their type."""

_TYPE_METAVARS: dict[object, str] = {int: "N", float: "X", str: "TEXT"}


def epilog_for(name: str) -> str | None:
    """The ``Examples:`` block for command ``name`` (``\\b`` keeps click from re-wrapping it)."""
    examples = EXAMPLES.get(name)
    if not examples:
        return None
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in examples)


def _metavar(param: TyperOption | TyperArgument) -> str | None:
    """A name for the value of ``param`` when it has none, or None to keep typer's display."""
    desc = param.type_descriptor
    if desc.is_choice:
        return None  # shown as the list of choices: already not a Python type
    for opt in getattr(param, "opts", ()):
        if opt in _METAVARS:
            return _METAVARS[opt]
    annotation = desc.annotation
    if desc.is_list:
        from typing import get_args

        args = get_args(annotation)
        annotation = args[0] if args else str
    return _TYPE_METAVARS.get(annotation, "VALUE")


def _choices(param: TyperOption | TyperArgument) -> list[str]:
    from typer._param_types import choice_as_str

    return [choice_as_str(c) for c in param.type_descriptor.choices or ()]


class _SuggestingOption(TyperOption):
    """A typer option whose metavar names the value and whose choice errors say what was meant."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        return super().display_type_rich(ctx)

    def process_value(self, ctx: Any, value: Any) -> Any:
        return _suggesting(self, ctx, value, super().process_value)


class _SuggestingArgument(TyperArgument):
    """A typer argument whose help line shows its metavar only (no ``<str>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def process_value(self, ctx: Any, value: Any) -> Any:
        return _suggesting(self, ctx, value, super().process_value)


def _suggesting(param: Any, ctx: Any, value: Any, process: Callable[[Any, Any], Any]) -> Any:
    """``process(ctx, value)``; a bad choice becomes a usage error that names the closest choice."""
    try:
        return process(ctx, value)
    except typer.BadParameter:
        if not param.type_descriptor.is_choice:
            raise
        raise typer.BadParameter(_choice_message(value, _choices(param)), ctx=ctx, param=param) from None


def _choice_message(value: Any, choices: Sequence[str]) -> str:
    """``'Megatorn' is not one of hf, megatron, patternc; did you mean `megatron`?``"""
    values = value if isinstance(value, (list, tuple)) else [value]
    lowered = {c.lower(): c for c in choices}
    bad = next((str(v) for v in values if str(v).lower() not in lowered), str(values[0]) if values else "")
    close = difflib.get_close_matches(bad.lower(), list(lowered), n=1, cutoff=0.5)
    hint = f"; did you mean `{lowered[close[0]]}`?" if close else ""
    return f"{bad!r} is not one of {', '.join(choices)}{hint}"


class PatternCommand(TyperCommand):
    """``TyperCommand`` with the shared conventions (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperOption) and type(param) is TyperOption:
                param.__class__ = _SuggestingOption
                param.type_descriptor.parameter_info.case_sensitive = False
                if param.metavar is None and not (param.is_flag or param.count):
                    param.metavar = _metavar(param)
            elif isinstance(param, TyperArgument) and type(param) is TyperArgument:
                param.__class__ = _SuggestingArgument
                param.type_descriptor.parameter_info.case_sensitive = False
        if self.callback is not None and self.name not in _NO_DIAGNOSTICS:
            self._add_noise_options()

    def _add_noise_options(self) -> None:
        """``--select``/``--ignore``/``--quiet`` for a command that has none of its own: they filter what
        ``render_text`` prints while the command runs (``invoke``); the command's function never sees them."""
        taken = {opt for param in self.params for opt in getattr(param, "opts", ())}
        for param in _noise_params():
            if taken.intersection(param.opts):
                continue
            self.params.append(param)

    def invoke(self, ctx: Any) -> Any:
        noise: dict[str, Any] = ctx.meta.get(_NOISE_KEY, {})
        if not any(noise.values()):
            return super().invoke(ctx)
        from patternc.codes import Severity
        from patternc.render import output_filter

        selected = code_prefixes(noise.get("select"), "--select")
        ignored = code_prefixes(noise.get("ignore"), "--ignore")
        quiet = bool(noise.get("quiet"))

        def keep(diagnostic: Diagnostic) -> bool:
            if quiet and diagnostic.severity is not Severity.ERROR:
                return False
            return keep_diagnostic(diagnostic, selected, ignored)

        with output_filter(keep):
            return super().invoke(ctx)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        takes_positional = any(isinstance(p, TyperArgument) for p in self.params)
        if takes_positional:
            args = self._positional_dashes(ctx, args)
        try:
            return super().parse_args(ctx, args)
        except NoSuchOption as error:
            if takes_positional and not error.message.endswith(")"):
                error.message += f" (a PATTERN that starts with '-' goes after '--': patternc {self.name} -- PATTERN)"
            raise

    def _positional_dashes(self, ctx: Any, args: list[str]) -> list[str]:
        """Move tokens that start with ``-`` but are no option (``-M*-``) behind a ``--``."""
        takes_value: dict[str, bool] = {}
        for param in self.get_params(ctx):
            if getattr(param, "param_type_name", "") == "option":
                flag = bool(getattr(param, "is_flag", False) or getattr(param, "count", False))
                for opt in (*param.opts, *param.secondary_opts):
                    takes_value[opt] = not flag
        kept: list[str] = []
        moved: list[str] = []
        index = 0
        while index < len(args):
            token = args[index]
            if token == "--":
                kept.extend(args[index:])
                break
            if len(token) > 1 and token.startswith("-") and not _OPTION_LIKE.match(token):
                moved.append(token)
            else:
                kept.append(token)
                if takes_value.get(token) and index + 1 < len(args):
                    kept.append(args[index + 1])
                    index += 1
            index += 1
        if not moved:
            return args
        if "--" in kept:
            at = kept.index("--") + 1
            return [*kept[:at], *moved, *kept[at:]]
        return [*kept, "--", *moved]


def usage_error(diagnostic: Diagnostic) -> typer.Exit:
    """Print a usage diagnostic (no span: it is about the command line) on stderr; the ``Exit(2)`` to raise.

    Used where patternc itself validates an option against a vocabulary (``--target``, ``--select``):
    the user gets a code to look up (``patternc explain P313``) and the did-you-mean, and stdout stays
    empty, so ``--json`` consumers see no half-document."""
    from patternc.render import render_text
    from patternc.source import Source

    typer.echo(render_text([diagnostic], Source("", "<command line>")), err=True)
    return typer.Exit(EXIT_USAGE)


def target_names(values: Iterable[str] | None, command: str) -> list[str]:
    """``--target`` values resolved in the one vocabulary (``patternc.target_names``), canonical names,
    duplicates dropped; an unknown name, or one that ``command`` cannot use, is ``P313`` and exit 2."""
    from patternc.diagnostics import diag
    from patternc.target_names import TargetError, names_for, resolve_for

    which: Literal["check", "build"] = "build" if command == "build" else "check"
    out: list[str] = []
    for value in values or ():
        try:
            entry = resolve_for(value, which)
        except TargetError as error:
            raise usage_error(
                diag(
                    "P313",
                    error.message,
                    None,
                    label="unknown target",
                    help=f"did you mean `{error.suggestion}`?"
                    if error.suggestion
                    else f"`patternc {command} -h` lists the targets; docs/cli.md has every alias",
                    notes=[f"{command} targets: {', '.join(names_for(which))}"],
                )
            ) from None
        if entry.name not in out:
            out.append(entry.name)
    return out


def check_set_values(values: dict[str, Any], family: str) -> None:
    """Each ``--set KEY=VALUE`` checked against the type and range of KEY in ``family``'s config model.

    A value of the wrong type or out of range is a usage error (``typer.BadParameter``, exit 2): it is
    a mistake on the command line, caught before any config is built, like an unknown key.  Whether
    the values agree with each other (heads divisible by groups) is the config reader's question: those
    are diagnostics of the built config (exit 1).
    """
    from typing import Annotated

    from pydantic import ConfigDict, TypeAdapter, ValidationError

    from patternc import families

    found = families.find(family)
    if found is None:
        return
    model = found.input_model
    fields = {**{f.alias: f for f in model.model_fields.values() if f.alias}, **model.model_fields}
    for key, value in values.items():
        field = fields.get(key)
        if field is None or field.annotation is None:
            continue
        shape: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        try:
            TypeAdapter(shape, config=ConfigDict(strict=True)).validate_python(value)
        except ValidationError as error:
            reason = error.errors()[0]["msg"] if error.errors() else str(error)
            raise typer.BadParameter(
                f"`{key}={value!r}`: {reason[:1].lower()}{reason[1:]}", param_hint="--set"
            ) from None


def build_target(value: str) -> str:
    """``build --target``'s parser: the canonical name of ``value`` (any alias, any case); P313 and exit 2
    for an unknown name or a check-only one."""
    return target_names([value], "build")[0]


def apply_conventions(app: typer.Typer) -> None:
    """Give every registered command the shared command class and its examples (call once, last)."""
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        if info.cls is None or info.cls is TyperCommand:  # typer fills in TyperCommand itself
            info.cls = PatternCommand
        if info.epilog is None:
            info.epilog = epilog_for(name)


# -- noise control: --select / --ignore / --quiet ---------------------------------------------------------

SelectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--select", metavar="CODE", help="Show only warnings and notes with these codes or prefixes (P2, P909)."
    ),
]
"""``--select CODE`` for any command (with ``IgnoreOpt``; pass both to ``filter_diagnostics``)."""
IgnoreOpt = Annotated[
    list[str] | None,
    typer.Option("--ignore", metavar="CODE", help="Hide warnings and notes with these codes or prefixes (repeatable)."),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only errors and the result (no warnings or notes).")
]


_NOISE_KEY = "patternc.noise"
_NO_DIAGNOSTICS = frozenset({"explain", "schema", "backends", "completion"})
"""Commands that print no diagnostics, so no noise options."""


def _noise_options(select: SelectOpt = None, ignore: IgnoreOpt = None, quiet: QuietOpt = False) -> None:
    """The signature ``PatternCommand`` borrows its added noise options from (never called)."""


@functools.cache
def _noise_params() -> tuple[Any, ...]:
    """The three options, built once and shared by every command (parameters keep no per-run state)."""
    import typer.main

    params, _ = typer.main._get_params_name_from_function(_noise_options)
    for param in params:
        param.expose_value = False
        param.callback = _remember_noise
    return tuple(params)


def _remember_noise(ctx: Any, param: Any, value: Any) -> Any:
    ctx.meta.setdefault(_NOISE_KEY, {})[param.name] = value
    return value


def filter_diagnostics(
    diagnostics: Sequence[Diagnostic], select: Iterable[str] | None, ignore: Iterable[str] | None
) -> tuple[list[Diagnostic], int]:
    """The diagnostics ``--select``/``--ignore`` keep (errors always), and how many they hid.

    Validates the values first (``P930``, exit 2), so call it before reading the input."""
    selected, ignored = code_prefixes(select, "--select"), code_prefixes(ignore, "--ignore")
    kept = [d for d in diagnostics if keep_diagnostic(d, selected, ignored)]
    return kept, len(diagnostics) - len(kept)


def code_prefixes(values: Iterable[str] | None, option: str) -> list[str]:
    """Validated ``--select``/``--ignore`` values: codes or prefixes (``P9``, ``P90``, ``P901``), upper-cased.

    A value that is no prefix of any code is a usage error (exit 2), with a did-you-mean; a value may
    also be a code's name (``unknown-symbol``).  Comma-separated values are split (``--ignore P101,P102``).
    """
    from patternc.codes import CODES

    codes = [c.code for c in CODES]
    by_name = {c.name: c.code for c in CODES}
    out: list[str] = []
    for raw in values or ():
        for part in raw.split(","):
            text = part.strip()
            if not text:
                continue
            if text.lower() in by_name:
                out.append(by_name[text.lower()])
                continue
            prefix = text.upper()
            if not any(code.startswith(prefix) for code in codes):
                from patternc.diagnostics import diag

                close = difflib.get_close_matches(prefix, codes, n=1, cutoff=0.6)
                raise usage_error(
                    diag(
                        "P930",
                        f"`{option} {text}` names no diagnostic code",
                        None,
                        label="unknown code",
                        help=f"did you mean `{close[0]}`?"
                        if close
                        else "give a code (`P202`), a prefix (`P2`) or a "
                        "code's name (`no-sequence-mixer`); docs/diagnostics.md lists them",
                    )
                )
            out.append(prefix)
    return out


def keep_diagnostic(diagnostic: Diagnostic, select: Sequence[str], ignore: Sequence[str]) -> bool:
    """Whether ``diagnostic`` is shown under ``--select``/``--ignore`` (ruff's rule: the longest prefix wins).

    Errors are always kept: an error means the input cannot be built, and hiding it would turn a
    failure into a silent success.  An empty ``select`` selects every code.
    """
    from patternc.codes import Severity

    if diagnostic.severity is Severity.ERROR:
        return True
    code = diagnostic.code
    if select:
        selected = max((len(p) for p in select if code.startswith(p)), default=None)
        if selected is None:
            return False
    else:
        selected = 0
    ignored = max((len(p) for p in ignore if code.startswith(p)), default=None)
    return ignored is None or selected > ignored
