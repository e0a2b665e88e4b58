"""The examples in README.md and docs/*.md run, and print what the documents say they print.

* Every ```python block is executed; the blocks of one file run in order in one fresh namespace
  (so a later block may use what an earlier one imported), and must not raise.
* Every ```console block holds ``$ patternc ARGS`` lines, each followed by the exact output
  (trailing blank lines aside). ARGS are split with ``shlex`` and run through
  ``typer.testing.CliRunner`` on ``patternc.cli.app``; ``check`` gets ``--color never``.
* docs/pattern-language.md carries a verbatim copy of patternc/grammar/pattern.lark.

docs/diagnostics.md is generated from live runs and compared whole by
tests/docs/test_docs_diagnostics.py, so its console blocks are not run again here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
GENERATED = {ROOT / "docs" / "diagnostics.md"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    """1-based line of the opening fence."""
    lang: str
    text: str


_FENCE = re.compile(r"^(`{3,})([\w.+-]*)\s*$")


def blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a Markdown file (fences of three or more backticks)."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, lang = match.groups()
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].rstrip() != fence:
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise AssertionError(f"{path.name}:{start + 1}: unclosed code fence")
        found.append(Block(path, start + 1, lang, "\n".join(body) + "\n"))
        index += 1
    return found


@dataclass(frozen=True)
class Command:
    args: list[str]
    expected: str
    line: int


def commands(block: Block) -> list[Command]:
    """The ``$ patternc ...`` commands of a console block, each with the output shown after it."""
    out: list[Command] = []
    current: tuple[list[str], int] | None = None
    shown: list[str] = []
    for offset, line in enumerate(block.text.splitlines(), start=1):
        if line.startswith("$ "):
            if current is not None:
                out.append(Command(current[0], "\n".join(shown).rstrip("\n"), current[1]))
            words = shlex.split(line[2:])
            assert words[:1] == ["patternc"], f"{block.path.name}:{block.line + offset}: not a patternc command"
            current, shown = (words[1:], block.line + offset), []
        else:
            assert current is not None, f"{block.path.name}:{block.line + offset}: output before any `$` line"
            shown.append(line)
    if current is not None:
        out.append(Command(current[0], "\n".join(shown).rstrip("\n"), current[1]))
    return out


def run_cli(args: list[str]) -> str:
    """Run one documented command from the repository root (docs name files relative to it)."""
    invocation = [*args, "--color", "never"] if args[:1] == ["check"] else args
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        result = CliRunner().invoke(app, invocation)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.output


def _cases(lang: str) -> list[Block]:
    return [b for path in DOCS for b in blocks(path) if b.lang == lang and path not in GENERATED]


def _id(block: Block) -> str:
    return f"{block.path.relative_to(ROOT)}:{block.line}"


CONSOLE = [(b, c) for b in _cases("console") for c in commands(b)]


@pytest.mark.parametrize(("block", "command"), CONSOLE, ids=[f"{_id(b)}:{c.line}" for b, c in CONSOLE])
def test_console_example(block: Block, command: Command) -> None:
    actual = run_cli(command.args).rstrip("\n")
    assert actual == command.expected, f"{block.path.name}:{command.line}: $ patternc {shlex.join(command.args)}"


PY_FILES = sorted({b.path for b in _cases("python")})


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # examples name files relative to the repository root, as the docs show them
    namespace: dict[str, object] = {"__name__": f"docs_example_{path.stem}"}
    for block in blocks(path):
        if block.lang != "python":
            continue
        code = compile(block.text, f"{path.name}:{block.line}", "exec")
        exec(code, namespace)


def test_docs_have_examples() -> None:
    """The checks above are not vacuous: the documents this project ships have examples."""
    assert {p.name for p in PY_FILES} >= {"README.md", "pattern-language.md"}
    assert {b.path.name for b, _ in CONSOLE} >= {"README.md", "pattern-language.md", "cli.md"}


def test_grammar_copy_is_verbatim() -> None:
    doc = ROOT / "docs" / "pattern-language.md"
    copies = [b.text for b in blocks(doc) if b.lang == "lark"]
    grammar = (ROOT / "patternc" / "grammar" / "pattern.lark").read_text(encoding="utf-8")
    assert copies == [grammar], "docs/pattern-language.md must hold one ```lark block equal to pattern.lark"
