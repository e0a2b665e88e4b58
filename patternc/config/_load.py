"""Reading a config's text safely: paths, size limit, UTF-8, JSON, nesting depth, duplicate keys.

Every failure is a diagnostic (``P901``-``P904``); nothing here raises for bad input.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from patternc.diagnostics import Diagnostic, diag
from patternc.source import Source, Span

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""Largest config file read (16 MiB), checked with ``stat`` before reading a byte.

Real ``config.json`` files are a few KiB; the largest vision-language wrappers stay under 100 KiB."""

MAX_DEPTH = 64
"""Deepest JSON nesting accepted (real configs nest three or four levels)."""


_SPECIAL_FLOATS: dict[str, float] = {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("nan")}


def load(
    source: str | os.PathLike[str] | Mapping[str, Any], origin: str | None, max_bytes: int
) -> tuple[Source, dict[str, Any] | None, list[Diagnostic]]:
    """The config's text (for spans), its parsed object, and problems found on the way."""
    if isinstance(source, Mapping):
        return _from_mapping(source, origin or "<config>")
    path = Path(source)
    shown = origin or str(path)
    empty = Source("", shown)
    try:
        problem = _check_path(path)
        is_dir = path.is_dir()
    except OSError as error:  # a directory this user may not search, a name too long for the filesystem
        return empty, None, [diag("P901", f"cannot read `{path}`: {error.strerror or error}", None, help=_ACCESS_HELP)]
    if problem is not None:
        return empty, None, [diag("P901", problem, None, help=_PATH_HELP)]
    if is_dir:
        path = path / "config.json"
        shown = origin or str(path)
        empty = Source("", shown)
    try:
        info = path.stat()
    except OSError as error:
        return empty, None, [diag("P901", f"cannot read `{path}`: {error.strerror or error}", None, help=_ACCESS_HELP)]
    if not stat.S_ISREG(info.st_mode):
        return empty, None, [diag("P901", f"`{path}` is not a regular file", None, help=_PATH_HELP)]
    if info.st_size > max_bytes:
        return empty, None, [_too_large(info.st_size, max_bytes)]
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as error:
        return empty, None, [diag("P901", f"cannot read `{path}`: {error.strerror or error}", None, help=_ACCESS_HELP)]
    if len(raw) > max_bytes:  # the file grew between stat and read
        return empty, None, [_too_large(len(raw), max_bytes)]
    return parse_text(raw, shown)


_PATH_HELP = "pass a config.json file, or a directory that holds one (a Hugging Face checkpoint)"
_ACCESS_HELP = "check that this user may read the file and search every directory above it"


def _check_path(path: Path) -> str | None:
    if path.is_symlink() and not path.exists():
        return f"`{path}` is a symbolic link to `{os.readlink(path)}`, which does not exist"
    if not path.exists():
        return f"`{path}` does not exist"
    if path.is_dir() and not (path / "config.json").is_file():
        inner = path / "config.json"
        if inner.is_symlink() and not inner.exists():
            return f"`{inner}` is a symbolic link to `{os.readlink(inner)}`, which does not exist"
        return f"the directory `{path}` has no config.json"
    return None


def _too_large(size: int, limit: int) -> Diagnostic:
    return diag(
        "P902",
        f"the config file has {size:,} bytes, above the limit of {limit:,}",
        None,
        label="file too large",
        help="a config.json is a few KiB; check that this is the right file",
    )


def parse_text(raw: bytes, origin: str) -> tuple[Source, dict[str, Any] | None, list[Diagnostic]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        good = raw[: error.start].decode("utf-8", errors="replace")
        source = Source(raw.decode("utf-8", errors="replace"), origin)
        problem = diag(
            "P903",
            f"the config is not UTF-8: byte 0x{raw[error.start]:02x} at offset {error.start}",
            Span.at(len(good)),
            label="not UTF-8",
            help="config.json files are UTF-8 JSON (as json.load reads them)",
        )
        return source, None, [problem]
    if text.startswith("\ufeff"):
        text = text[1:]
    source = Source(text, origin)
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> Any:
        if len(items) == 1 and items[0][0] == "__float__" and items[0][1] in _SPECIAL_FLOATS:
            # transformers' save_pretrained writes inf/nan as {"__float__": "Infinity"}
            # (configuration_utils.py, _encode_special_floats); read it back as it does.
            return _SPECIAL_FLOATS[items[0][1]]
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as error:
        return (
            source,
            None,
            [
                diag(
                    "P903",
                    f"the config is not JSON: {error.msg}",
                    Span.at(min(error.pos, len(text)), 0 if error.pos >= len(text) else 1),
                    label=error.msg.lower(),
                    help="a config.json is one JSON object, as `save_pretrained` writes it; NaN and Infinity "
                    "are accepted, comments and trailing commas are not",
                )
            ],
        )
    except RecursionError:
        return source, None, [_too_deep(source)]
    except ValueError as error:  # an integer literal beyond Python's 4300-digit conversion limit
        return (
            source,
            None,
            [
                diag(
                    "P903",
                    f"the config is not usable JSON: {error}",
                    Span(0, min(len(text), 1)),
                    label="number too long",
                    help="no model config holds a number this long",
                )
            ],
        )
    if _depth(data) > MAX_DEPTH:
        return source, None, [_too_deep(source)]
    if not isinstance(data, dict):
        return (
            source,
            None,
            [
                diag(
                    "P903",
                    f"the config is a JSON {_json_type(data)}, not an object",
                    Span(0, min(len(text), 1)),
                    label="expected `{`",
                    help="pass the model's config.json: one object with `model_type`, `hidden_size`, …",
                )
            ],
        )
    problems = [
        diag(
            "P904",
            f"the key `{key}` appears more than once; the last value is used, as json.load does",
            locate_last(text, key),
            label="duplicate key",
            help="delete all but one of them",
        )
        for key in dict.fromkeys(duplicates)
    ]
    return source, data, problems


def _too_deep(source: Source) -> Diagnostic:
    return diag(
        "P903",
        f"the config nests deeper than {MAX_DEPTH} levels",
        Span(0, min(len(source.text), 1)),
        label="too deeply nested",
        help="a config.json nests a few levels; this is not a model config",
    )


def _from_mapping(data: Mapping[str, Any], origin: str) -> tuple[Source, dict[str, Any] | None, list[Diagnostic]]:
    if _depth(data) > MAX_DEPTH:
        return Source("", origin), None, [_too_deep(Source("", origin))]
    plain = dict(data)
    try:
        text = json.dumps(plain, indent=2, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = ""
    bad = [key for key in plain if not isinstance(key, str)]
    if bad:
        return (
            Source(text, origin),
            None,
            [
                diag(
                    "P903",
                    f"the config has a key that is not a string: {bad[0]!r}",
                    None,
                    label="bad key",
                    help="JSON object keys are strings; build the dict with string keys",
                )
            ],
        )
    return Source(text, origin), plain, []


def _depth(value: object) -> int:
    """Nesting depth, iteratively (a recursive walk is what a hostile input would overflow)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item)
    return deepest


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return "literal"
    return "number"


def _key_regex(key: str) -> re.Pattern[str]:
    return re.compile('"' + re.escape(json.dumps(key, ensure_ascii=False)[1:-1]) + r'"\s*:')


def locate(text: str, key: str, start: int = 0) -> Span | None:
    """The span of the first ``"key":`` at or after ``start`` (the quoted name), or None."""
    match = _key_regex(key).search(text, start)
    if match is None:
        return None
    name_end = match.start() + len(json.dumps(key, ensure_ascii=False))
    return Span(match.start(), name_end)


def locate_last(text: str, key: str) -> Span | None:
    matches = list(_key_regex(key).finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return Span(last.start(), last.start() + len(json.dumps(key, ensure_ascii=False)))


def string_value_offset(text: str, key_span: Span, value: str) -> int | None:
    """Where a string value's characters start in the text, if they appear there unescaped."""
    colon = text.find(":", key_span.end)
    if colon < 0:
        return None
    position = colon + 1
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    if text[position : position + 1] != '"':
        return None
    start = position + 1
    if text[start : start + len(value)] == value and text[start + len(value) : start + len(value) + 1] == '"':
        return start
    return None
