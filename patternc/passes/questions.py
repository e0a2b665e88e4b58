"""Passes that answer questions about a valid model: its canonical architecture, its targets.

They run after classification (they require the ``family`` fact) and only record facts: a target
refusing a model is that target's verdict, not an error in the input.  Heavy modules (networkx
for the canonical map) are imported only when the pass has something to do.
"""

from __future__ import annotations

from collections.abc import Iterator

from patternc.diagnostics import Diagnostic
from patternc.passes import Context, Pass

TARGET_NAMES = "target_names"
"""Fact set by the caller: the profiles named with ``--target``."""
ALL_TARGETS = "all_targets"
"""Fact set by the caller: True for the ``--targets`` table."""


def canonical_pass(ctx: Context) -> Iterator[Diagnostic]:
    if ctx.spec is not None:
        from patternc.canonical import canonical_map

        ctx.facts["canonical"] = canonical_map(ctx.spec)
    return iter(())


def targets_pass(ctx: Context) -> Iterator[Diagnostic]:
    names: list[str] = list(ctx.facts.get(TARGET_NAMES, ()))
    if not names and not ctx.facts.get(ALL_TARGETS):
        return iter(())
    from patternc import targets

    if ctx.facts.get(ALL_TARGETS):
        ctx.facts["targets"] = targets.portability(ctx.pattern, ctx.spec, ctx.source_map)
    else:
        ctx.facts["targets"] = {
            targets.resolve(name) or name: targets.check_target(name, ctx.pattern, ctx.spec, ctx.source_map)
            for name in names
        }
    return iter(())


PIPELINE = "pipeline"
"""Fact set by the caller: ``(pp, vpp)`` from ``--pp``/``--vpp``, or absent."""


def pipeline_pass(ctx: Context) -> Iterator[Diagnostic]:
    """Megatron-Core's rules for a hand-placed split (``check --pp K``): these are input errors."""
    request = ctx.facts.get(PIPELINE)
    if request is None:
        return iter(())
    from patternc.analysis import pipeline_diagnostics

    pp, vpp = request
    return iter(pipeline_diagnostics(ctx.pattern, pp, vpp, pipes=ctx.source_map.pipes))


PASSES = (
    Pass("pipeline", pipeline_pass),
    Pass("canonical", canonical_pass, requires=frozenset({"family"}), provides=frozenset({"canonical"})),
    Pass("targets", targets_pass, requires=frozenset({"family"}), provides=frozenset({"targets"})),
)
