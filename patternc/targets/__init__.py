"""Target profiles: will a given consumer (transformers, vLLM, llama.cpp, Megatron…) load and run this?

Each ``Profile`` lists the rules one consumer enforces, each rule a small function that yields at
most one diagnostic per reason, with the source of the fact (a peer-survey section, or a check
run against the installed consumer).  Exact math equivalence is the canonical map's question;
profiles answer only "will it load and run".

>>> from patternc.api import parse
>>> [d.code for d in check_target("vllm", parse("M*M*/MM"))]
['P302']
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from patternc.codes import Severity
from patternc.diagnostics import Diagnostic, diag, has_errors, sort_diagnostics
from patternc.ir import Pattern
from patternc.model import ModelSpec
from patternc.target_names import VOCABULARY
from patternc.targets.profiles import build_profiles
from patternc.targets.rules import Profile, Rule

if TYPE_CHECKING:
    from patternc.lower import SourceMap

__all__ = [
    "ALIASES",
    "PROFILES",
    "Profile",
    "Rule",
    "check_target",
    "first_reason",
    "portability",
    "render_table",
    "resolve",
    "verdict",
]


class _Profiles(Mapping[str, Profile]):
    """The profiles by name: the built-ins (made once, on first use: the transformers ones come from
    the family modules, which import this package's rules), then those of registered families."""

    _builtin: dict[str, Profile] | None = None

    def _entries(self) -> dict[str, Profile]:
        from patternc import families

        if self._builtin is None:
            self._builtin = build_profiles()
        extra = [family.profile() for family in families.families()[len(families.BUILTIN) :] if family.profile]
        return {**self._builtin, **{profile.name: profile for profile in extra}}

    def __getitem__(self, name: str) -> Profile:
        return self._entries()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())


PROFILES: Mapping[str, Profile] = _Profiles()
"""Every profile by name, in table order (transformers, Megatron, serving engines, llama.cpp, then the
profiles of families registered at runtime)."""

ALIASES: dict[str, str] = {
    spelling.lower(): entry.profile
    for entry in VOCABULARY
    if entry.profile is not None
    for spelling in (entry.name, *entry.aliases)
    if spelling.lower() != entry.profile
}
"""Every other spelling of a profile, from the one target vocabulary (``patternc.target_names``)."""


def resolve(name: str) -> str | None:
    """The profile name for ``name`` or one of its aliases (case-insensitive); None if unknown."""
    key = name.strip().lower()
    if key in PROFILES:
        return key
    return ALIASES.get(key)


def _unknown(name: str) -> Diagnostic:
    close = difflib.get_close_matches(name.strip().lower(), [*PROFILES, *ALIASES], n=1, cutoff=0.5)
    meant = resolve(close[0]) if close else None
    return diag(
        "P313",
        f"unknown target `{name}`",
        None,
        label="unknown target",
        help=f"did you mean `{meant}`?" if meant else "`patternc check --targets` lists the verdict of every target",
        notes=[f"targets: {', '.join(PROFILES)}"],
    )


def check_target(
    name: str, pattern: Pattern, spec: ModelSpec | None = None, source_map: SourceMap | None = None
) -> list[Diagnostic]:
    """Every reason target ``name`` would not load or run ``pattern`` (and its warnings), sorted.

    ``spec`` enables the rules that need hyper-parameters (P311); ``source_map`` (from
    ``patternc.api.analyze``) puts a caret under the offending layer.  An unknown name yields a
    single P313 diagnostic.
    """
    key = resolve(name)
    if key is None:
        return [_unknown(name)]
    found: list[Diagnostic] = []
    for rule in PROFILES[key].rules:
        found.extend(rule.check(pattern, spec, source_map))
    return sort_diagnostics(found)


def portability(
    pattern: Pattern, spec: ModelSpec | None = None, source_map: SourceMap | None = None
) -> dict[str, list[Diagnostic]]:
    """``check_target`` for every profile, in ``PROFILES`` order."""
    return {name: check_target(name, pattern, spec, source_map) for name in PROFILES}


def verdict(diagnostics: Iterable[Diagnostic]) -> str:
    """``no`` when any diagnostic is an error, else ``ok``."""
    return "no" if has_errors(diagnostics) else "ok"


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTE: 2}


def first_reason(diagnostics: list[Diagnostic]) -> Diagnostic | None:
    """The most severe diagnostic (first in order among equals), or None."""
    if not diagnostics:
        return None
    return min(enumerate(diagnostics), key=lambda item: (_RANK[item[1].severity], item[0]))[1]


def render_table(results: dict[str, list[Diagnostic]], *, width: int | None = None) -> str:
    """The ``--targets`` portability table: profile, verdict, and the first reason.

    Deterministic plain text; ``width`` clips the reason column (None: no clipping).  A row whose
    verdict is ``ok`` but that has warnings or notes shows the first of them with its severity.
    """
    rows = [("target", "verdict", "first reason")]
    for name, found in results.items():
        reason = first_reason(found)
        extra = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        text = "" if reason is None else f"[{reason.code}] {reason.message}{extra}"
        if reason is not None and reason.severity is not Severity.ERROR:
            text = f"{reason.severity.value}: {text}"
        rows.append((name, verdict(found), text))
    first = max(len(r[0]) for r in rows)
    second = max(len(r[1]) for r in rows)
    lines = []
    for name, ok, text in rows:
        line = f"{name:<{first}}  {ok:<{second}}  {text}".rstrip()
        if width is not None and len(line) > width:
            line = line[: max(width - 1, 0)] + "…"
        lines.append(line)
    return "\n".join(lines) + "\n"
