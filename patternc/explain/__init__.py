"""``patternc explain CODE``: the long explanation of a code, and its example run live."""

from __future__ import annotations

import shlex
from importlib.resources import files

from patternc.codes import Code, lookup


def example_output(code: Code) -> tuple[str, str]:
    """The example's command line and what ``patternc`` prints for it."""
    command, output, _ = run_example(code)
    return command, output


def run_example(code: Code) -> tuple[str, str, int]:
    """Run a code's example in a scratch directory holding its files: command, output, exit code."""
    import os
    import tempfile
    from pathlib import Path

    from typer.testing import CliRunner

    from patternc.cli import app

    args = [*code.example, "--color", "never"] if code.example[:1] == ("check",) else list(code.example)
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="patternc-example-") as scratch:
        for relative, text in code.files:
            target = Path(scratch, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        os.chdir(scratch)
        try:
            result = CliRunner().invoke(app, args)
        finally:
            os.chdir(previous)
    return "patternc " + shlex.join(code.example), result.output, result.exit_code


def explanation(code_or_name: str) -> str | None:
    code = lookup(code_or_name)
    if code is None:
        return None
    resource = files("patternc.explain").joinpath(f"{code.code}.md")
    body = resource.read_text(encoding="utf-8").strip() + "\n" if resource.is_file() else ""
    command, output = example_output(code)
    return (
        f"{code.code} {code.name} ({code.severity.value}): {code.summary}\n\n"
        f"{body}\n"
        f"Example:\n\n    $ {command}\n" + "".join(f"    {line}\n" if line else "\n" for line in output.splitlines())
    )
