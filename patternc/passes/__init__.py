"""The pass manager: read-only checks over the IR, ordered by what each needs and provides.

A pass is a function that takes the ``Context`` and yields diagnostics; it may record facts
(``ctx.facts[...]``) for later passes.  Each pass declares the facts it ``requires`` and
``provides``; the run order is derived from those declarations with a topological sort, never
hand-written, so adding a pass cannot silently run it before its inputs exist.

Passes see the IR only, never a config's hyper-parameters or the command line: the questions a
``check`` request asks (target profiles, a pipeline split, the canonical map) are plain calls in
``patternc.check``, because they depend on the request rather than on facts other passes provide.
"""

from __future__ import annotations

from patternc.passes.manager import Context, Pass, PassFn, run_passes, schedule

__all__ = ["Context", "Pass", "PassFn", "default_passes", "run_passes", "schedule"]


def default_passes() -> list[Pass]:
    """The checks every input gets: structure, mixing rules, family classification."""
    from patternc.passes import classify, mixing, structure

    return [*structure.PASSES, *mixing.PASSES, *classify.PASSES]
