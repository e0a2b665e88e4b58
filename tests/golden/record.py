"""Run every golden command in-process and compare with (or, with ``--write``, store) the outputs.

Each command runs in a scratch working directory holding a copy of its input, so that paths in
messages are the same relative text on every machine.  ``build`` is recorded as its exit code,
its output, the list of files it wrote and the text of each small text file (``config.json``, the
Megatron argument file, …).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.golden.corpus import config_files, patterns

STORE = Path(__file__).resolve().parent / "outputs"
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def _invoke(args: list[str]) -> dict[str, Any]:
    from typer.testing import CliRunner

    from patternc.cli import app

    result = CliRunner().invoke(app, args, env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise RuntimeError(f"patternc {args!r} raised {result.exception!r}")
    return {"rc": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}


def _written(out: Path) -> dict[str, Any]:
    if not out.exists():
        return {}
    files: dict[str, Any] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.relative_to(out).as_posix()
        data = path.read_bytes()
        files[name] = (
            data.decode()
            if path.suffix in (".json", ".txt", ".sh", ".args") or (len(data) < 4096 and b"\0" not in data)
            else f"<{len(data)} bytes>"
        )
    return files


def _build(args: list[str], work: Path) -> dict[str, Any]:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    record = _invoke(["build", "-o", "out", *args])
    record["files"] = _written(out)
    shutil.rmtree(out, ignore_errors=True)
    return record


def pattern_record(text: str, dialect: str, work: Path) -> dict[str, Any]:
    """The outputs of check, stats, fmt, convert and build for one pattern."""
    d = ["-d", dialect]
    return {
        "check": _invoke(["check", "--json", *d, "--", text]),
        "stats": _invoke(["stats", "--json", *d, "--", text]),
        "fmt": _invoke(["fmt", *d, "--", text]),
        "convert-megatron": _invoke(["convert", *d, "--to", "megatron", "--", text]),
        "convert-flat": _invoke(["convert", *d, "--to", "flat", "--", text]),
        "convert-list": _invoke(["convert", *d, "--to", "layers_block_type", "--", text]),
        "build": _build([*d, "--", text], work),
        "build-megatron": _build(["--target", "megatron", *d, "--", text], work),
    }


def config_record(source: Path, work: Path) -> dict[str, Any]:
    """The outputs of check (with the portability table), stats and build for one config."""
    case = work / "model"
    shutil.rmtree(case, ignore_errors=True)
    if source.name == "config.json" and source.parent.parent.name != "configs":
        shutil.copytree(source.parent, case)
    else:
        case.mkdir()
        shutil.copyfile(source, case / "config.json")
    path = "model/config.json"
    return {
        "check": _invoke(["check", "--json", path]),
        "check-targets": _invoke(["check", "--targets", path]),
        "stats": _invoke(["stats", "--json", path]),
        "build": _build([path], work),
        "build-megatron": _build(["--target", "megatron", path], work),
    }


def records() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(store file, case name, record) for the whole corpus."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chdir(work)
        try:
            for name, path in config_files().items():
                yield (
                    "configs",
                    name,
                    {"source": path.relative_to(path.parents[3]).as_posix(), **config_record(path, work)},
                )
            for case in patterns():
                yield (
                    "patterns",
                    case.name,
                    {"text": case.text, "dialect": case.dialect, **pattern_record(case.text, case.dialect, work)},
                )
        finally:
            os.chdir(old)


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="store the outputs instead of comparing")
    args = parser.parse_args(argv)
    stores: dict[str, dict[str, Any]] = {}
    for store, name, record in records():
        stores.setdefault(store, {})[name] = record
    STORE.mkdir(exist_ok=True)
    differ = 0
    for store, data in stores.items():
        path = STORE / f"{store}.json"
        if args.write:
            path.write_text(_dump(data), encoding="utf-8")
            continue
        old = json.loads(path.read_text(encoding="utf-8"))
        for name in sorted(set(old) | set(data)):
            if old.get(name) != data.get(name):
                differ += 1
                print(f"{store}/{name} differs", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
