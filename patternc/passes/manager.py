"""The pass manager's machinery: the ``Context`` a pass sees, ``Pass``, the scheduler and the runner.

A module of its own, which imports none of the passes, so that the passes (``structure``, ``mixing``,
``classify``) take it from here and the package that lists them (``patternc.passes.default_passes``)
is not in a cycle with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from patternc.diagnostics import Diagnostic
from patternc.ir import Pattern
from patternc.lower import SourceMap


@dataclass(slots=True)
class Context:
    """What a pass sees: the IR, where it came from, and facts earlier passes established."""

    pattern: Pattern
    source_map: SourceMap
    facts: dict[str, Any] = field(default_factory=dict)


PassFn = Callable[[Context], Iterable[Diagnostic]]


@dataclass(frozen=True, slots=True)
class Pass:
    name: str
    run: PassFn
    requires: frozenset[str] = frozenset()
    provides: frozenset[str] = frozenset()


def schedule(passes: Iterable[Pass], given: Iterable[str] = ()) -> list[Pass]:
    """Order passes so that every pass runs after the passes that provide what it requires.

    Ties are broken by name, so the order is deterministic.  A requirement nobody provides, or
    a cycle, is a programming error (``ValueError``), caught by the test suite.  ``given`` names
    facts already established (by an earlier run), which satisfy requirements without a provider.
    """
    given = frozenset(given)
    by_name = {p.name: p for p in passes}
    providers: dict[str, str] = {}
    for p in by_name.values():
        for fact in p.provides:
            if fact in providers:
                raise ValueError(f"fact {fact!r} provided by both {providers[fact]} and {p.name}")
            providers[fact] = p.name
    graph: dict[str, set[str]] = {}
    for p in by_name.values():
        missing = p.requires - providers.keys() - given
        if missing:
            raise ValueError(f"pass {p.name} requires {sorted(missing)}, which no pass provides")
        graph[p.name] = {providers[fact] for fact in p.requires if fact in providers}
    sorter = TopologicalSorter(graph)
    try:
        sorter.prepare()
    except CycleError as error:
        raise ValueError(f"pass dependencies form a cycle: {error.args[1]}") from error
    order: list[Pass] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(by_name[name] for name in ready)
        sorter.done(*ready)
    return order


def run_passes(ctx: Context, passes: Iterable[Pass]) -> list[Diagnostic]:
    """Run every pass (collect-all: one pass's findings never stop the next).

    Facts already in ``ctx.facts`` count as provided, so a later run can build on an earlier one.
    """
    found: list[Diagnostic] = []
    for p in schedule(passes, given=ctx.facts):
        found.extend(p.run(ctx))
    return found
