"""``patternc explain CODE``: the long explanation of a code, and the example that shows it.

This module only assembles text: the code's row (``patternc.codes``), its explanation
(``patternc/explain/<code>.md``) and its example command.  Running the example is the command line's
job (``patternc.cli.run_example``), so nothing below the CLI imports it.  The files an example reads
(a config, a checkpoint) are package data under ``patternc/explain/examples/<code>/``; the few that are
generated (safetensors files, torch model directories) are written by ``tests/docgen.py --write``,
which a test keeps in step.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from patternc.codes import Code, lookup


@dataclass(frozen=True, slots=True)
class Explanation:
    """What ``patternc explain`` prints, up to the example's output (which the CLI runs and appends)."""

    code: Code
    text: str
    """The header, the explanation and ``Example:`` with the command line after ``$``."""
    command: str
    """The example as a shell command line (``patternc check 'M-M*X-'``); ``example_args`` runs it."""


def example_args(code: Code) -> tuple[str, ...]:
    """The arguments a code's example runs with: ``check`` examples get ``--color never``."""
    return (*code.example, "--color", "never") if code.example[:1] == ("check",) else code.example


def example_command(code: Code) -> str:
    """The example as the shell command line shown to the reader."""
    return "patternc " + shlex.join(code.example)


def _examples(code: Code) -> Traversable:
    return files("patternc.explain").joinpath("examples", code.code)


def example_files(code: Code) -> list[str]:
    """The relative paths of the files a code's example reads, sorted (none for most codes)."""
    found: list[str] = []

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            else:
                found.append(prefix + child.name)

    root = _examples(code)
    if root.is_dir():
        walk(root, "")
    return found


def write_example_files(code: Code, directory: Path) -> None:
    """Write the files a code's example reads into ``directory`` (its scratch working directory)."""
    root = _examples(code)
    for relative in example_files(code):
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(root.joinpath(*relative.split("/")).read_bytes())


def explanation(code_or_name: str) -> Explanation | None:
    """The explanation of a code (or a code's name), or None when there is no such code."""
    code = lookup(code_or_name)
    if code is None:
        return None
    resource = files("patternc.explain").joinpath(f"{code.code}.md")
    body = resource.read_text(encoding="utf-8").strip() + "\n" if resource.is_file() else ""
    command = example_command(code)
    text = f"{code.code} {code.name} ({code.severity.value}): {code.summary}\n\n{body}\nExample:\n\n    $ {command}\n"
    return Explanation(code, text, command)
