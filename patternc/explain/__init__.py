"""``patternc explain CODE``: the long explanation of a code, and its example run live."""

from __future__ import annotations

import shlex
from importlib.resources import files

from patternc.codes import Code, lookup


def example_output(code: Code) -> tuple[str, str]:
    """The example's command line and what ``patternc`` prints for it (diagnostics only)."""
    from typer.testing import CliRunner

    from patternc.cli import app

    result = CliRunner().invoke(app, [*code.example, "--color", "never"] if code.example[0] == "check" else
                                list(code.example))
    return "patternc " + shlex.join(code.example), result.output


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
