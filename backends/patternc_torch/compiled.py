"""A compiled one-token decode step: the layers' decode closures run through ``torch.compile``.

Decoding one token at a time on a small model is bound by dispatch, not by arithmetic: each layer's
step (``patternc_torch.decode``) is a few dozen tiny operators, each a few microseconds of Python and
ATen dispatch.  ``compiled_plan`` hands the same closures to ``torch.compile`` (Inductor: the
pointwise tails fused into generated C++ / Triton kernels, the products left to the BLAS), so the
arithmetic is the eager step's and the results agree within float rounding.

What is compiled: maximal runs of consecutive layers whose kind computes without reading values back to
Python (``EAGER_KINDS`` lists those that do, with the reason: MoE's decode picks its experts'
weights by ``tolist()``; a compiled region there would recompile for every choice of experts).  Each run
is one compiled region with its own code object (``torch.compile`` caches by code object, and a model
has many runs); the final norm, the embedding and the head stay as they are.  The inference state is
read and updated in place, exactly as the eager step does, so prefill, the eager step and the compiled
step share one ``InferenceState``.  Sizes are static but for those that change between calls
(``torch.compile``'s automatic dynamic shapes): the position, hence the KV length, after the second
step, and the KV capacity once the buffers grow.  Everything dynamic from the start
(``dynamic=True``) made the batch size symbolic too, and sympy then spent minutes on the views of the
Mamba step.

When: ``HybridLM.generate(compile=True)`` and ``patternc run --compile``; the default stays the eager
step (``DEFAULT``): on the CPU the compiled step measured no faster (dynamo's per-call guard check and
input collection cost about what fusing saves; figures in docs/backends/torch.md), and compiling takes
from tens of seconds to minutes on first use.

Fallback, always to the eager step, with a ``RuntimeWarning`` saying why (``CompiledDecode.reason``):
no ``torch.compile`` or no C++ compiler for Inductor on the CPU (``compiler_missing``), every layer of an
eager-only kind, or the first compiled steps failing or disagreeing with the eager step.  Those first
steps are a rehearsal on a copy of the inference state, compared with the eager step on another copy
(``verify``), so a compile failure never leaves the real state half updated (the recompile when the
KV buffers outgrow their first capacity, after thousands of tokens in ``generate``, is the one that
happens on the real state); the decision is cached on the model for its batch size, device and dtype.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import torch

from patternc.kinds import LayerKind, by_symbol
from patternc_torch.decode import Rope, StepFn
from patternc_torch.layers import Block
from patternc_torch.state import InferenceState

Plan = tuple[list[StepFn], Callable[[torch.Tensor], torch.Tensor]]


class HybridLM(Protocol):
    """What this module uses of ``patternc_torch.model.HybridLM`` (which imports this module lazily)."""

    backbone: Any
    _compiled: Any

    def _step_hidden(
        self, input_ids: torch.Tensor, state: InferenceState, plan: Plan
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


DEFAULT = False
"""Whether ``generate`` compiles when not told: no (measured no faster on the CPU; see the module doc)."""

EAGER_KINDS: dict[str, str] = {
    LayerKind.MOE: "the routed experts are picked by value (tolist()), which a compiled region would "
    "recompile for at every new choice of experts",
}
"""Kinds whose decode step stays eager, with the reason: they read tensor values back to Python."""

REHEARSAL = 2
"""Steps ``verify`` runs both ways before the compiled step is used."""

MODE: str | None = None
"""``torch.compile`` mode: Inductor's default.  ``reduce-overhead`` (CUDA graphs) needs static shapes,
and the KV length grows by one every token."""


def compiler_missing(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot generate code for ``device`` here (None when it can)."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if device.type == "cpu":
        names = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
        if not any(name and shutil.which(name) for name in names):
            return "Inductor needs a C++ compiler on the CPU and none is on PATH (g++, c++, clang++ or $CXX)"
    elif device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "Inductor needs triton on CUDA and it is not installed"
    else:
        return f"no compiled decode step on {device.type}"
    return None


def eager_reason(symbol: str) -> str | None:
    """Why layers of the kind ``symbol`` spells decode eagerly (None: they are compiled)."""
    return EAGER_KINDS.get(by_symbol(symbol).kind)


def _run(steps: list[StepFn], h: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
    for step in steps:
        h = step(h, state, start, rope)
    return h


def _region(number: int) -> Callable[..., torch.Tensor]:
    """One compiled region: a fresh copy of ``_run``'s code object (``torch.compile`` caches per code
    object: regions sharing one would evict each other's entries), called with the run's steps."""
    code = _run.__code__.replace(co_name=f"decode_region_{number}")
    fresh = types.FunctionType(code, _run.__globals__, code.co_name)
    compiled: Callable[..., torch.Tensor] = torch.compile(fresh, mode=MODE, dynamic=None)
    return compiled


def _bound(compiled: Callable[..., torch.Tensor], steps: list[StepFn]) -> StepFn:
    def region(h: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        return compiled(steps, h, state, start, rope)

    return region


def regions(symbols: list[str], steps: list[StepFn]) -> list[tuple[bool, list[StepFn]]]:
    """``steps`` (one per layer, of the kinds ``symbols`` spell) cut into maximal runs: (compiled, run)."""
    runs: list[tuple[bool, list[StepFn]]] = []
    for symbol, step in zip(symbols, steps, strict=True):
        compiled = eager_reason(symbol) is None
        if runs and runs[-1][0] == compiled:
            runs[-1][1].append(step)
        else:
            runs.append((compiled, [step]))
    return runs


@dataclass
class CompiledDecode:
    """The compiled decode step of one model for one (batch, device, dtype), or why there is none.

    It keeps the compiled regions, not the steps: ``bind`` puts each ``generate`` call's fresh eager
    closures (over the weights as they are now) into them, and ``torch.compile`` reuses its code for
    closures of the same shapes."""

    key: tuple[int, str, str]
    compiled: dict[int, Callable[..., torch.Tensor]] = field(default_factory=dict)
    """Run number (``regions``) -> its compiled region; empty: decode eagerly."""
    reason: str | None = None
    """Why the eager step is used (None while compiled)."""
    compiled_layers: int = 0
    warned: bool = field(default=False, repr=False)

    def bind(self, symbols: list[str], steps: list[StepFn]) -> list[StepFn]:
        """The layers' ``steps`` with every compiled run replaced by its region."""
        out: list[StepFn] = []
        for number, (compiled, run) in enumerate(regions(symbols, steps)):
            out.extend([_bound(self.compiled[number], run)] if compiled else run)
        return out


def _clone_state(state: InferenceState) -> InferenceState:
    """A copy of ``state`` whose tensors are new (the rehearsal must not touch the real state)."""
    return copy.deepcopy(state)


def _state_tensors(state: InferenceState) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    stack: list[Any] = [vars(state)]
    while stack:
        obj = stack.pop()
        if isinstance(obj, torch.Tensor):
            out.append(obj)
        elif isinstance(obj, dict):
            stack.extend(obj[k] for k in sorted(obj, key=str, reverse=True))
        elif isinstance(obj, (list, tuple)):
            stack.extend(reversed(obj))
    return out


def _tolerance(dtype: torch.dtype) -> float:
    return max(1e-5, 64 * torch.finfo(dtype).eps) if dtype.is_floating_point else 0.0


def verify(
    model: HybridLM,
    eager: Plan,
    compiled_steps: list[StepFn],
    state: InferenceState,
) -> str | None:
    """Run ``REHEARSAL`` steps both ways on copies of ``state`` (a fixed token per row) and compare the
    hidden states and every state tensor after each; None when they agree, else why not (an
    exception's first line too).  Two steps: the first compiles for its position, the second
    recompiles with the position dynamic, so that neither compile happens on the real state."""
    b = state.batch
    device = model.backbone.embeddings.weight.device
    ids = torch.zeros(b, 1, dtype=torch.long, device=device)
    reference_state, trial_state = _clone_state(state), _clone_state(state)
    for _ in range(REHEARSAL):
        want, _ = model._step_hidden(ids, reference_state, eager)
        try:
            got, _ = model._step_hidden(ids, trial_state, (compiled_steps, eager[1]))
        except Exception as error:  # Inductor raises many kinds: a compiler error, an unsupported operator
            first = (str(error).strip().splitlines() or [""])[0][:200]
            return f"compiling the decode step failed ({type(error).__name__}: {first})"
        if not _agree([(want, got), *zip(_state_tensors(reference_state), _state_tensors(trial_state), strict=True)]):
            return "the compiled decode step disagrees with the eager step"
    return None


def _agree(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> bool:
    for a, c in pairs:
        if a.shape != c.shape:
            return False
        if a.is_floating_point():
            tol = _tolerance(a.dtype)
            if not torch.allclose(a.float(), c.float(), rtol=tol, atol=tol, equal_nan=True):
                return False
        elif not torch.equal(a, c):
            return False
    return True


def compiled_plan(model: HybridLM, eager: Plan, state: InferenceState) -> Plan:
    """``eager`` with its layers' steps in compiled regions, or ``eager`` itself when that cannot be
    (the reason warned once per model and kept in ``model._compiled``)."""
    weight = model.backbone.embeddings.weight
    key = (state.batch, str(weight.device), str(weight.dtype))
    symbols = [cast(Block, layer).symbol for layer in model.backbone.layers]
    cached: CompiledDecode | None = getattr(model, "_compiled", None)
    if cached is None or cached.key != key:
        cached = _prepare(model, eager, state, key, symbols)
        model._compiled = cached
    if not cached.compiled:
        if not cached.warned:
            warnings.warn(f"decoding with the eager step: {cached.reason}", RuntimeWarning, stacklevel=3)
            cached.warned = True
        return eager
    return cached.bind(symbols, eager[0]), eager[1]


def _prepare(
    model: HybridLM, eager: Plan, state: InferenceState, key: tuple[int, str, str], symbols: list[str]
) -> CompiledDecode:
    out = CompiledDecode(key)
    missing = compiler_missing(model.backbone.embeddings.weight.device)
    if missing is not None:
        out.reason = missing
        return out
    runs = regions(symbols, eager[0])
    if not any(compiled for compiled, _ in runs):
        reasons = sorted({why for symbol in symbols if (why := eager_reason(symbol))})
        out.reason = "no layer of this model compiles: " + "; ".join(reasons)
        return out
    out.compiled = {number: _region(number) for number, (compiled, _) in enumerate(runs) if compiled}
    out.compiled_layers = sum(len(run) for compiled, run in runs if compiled)
    with torch.no_grad():
        failure = verify(model, eager, out.bind(symbols, eager[0]), state)
    if failure is not None:
        out.reason = failure
        out.compiled = {}
        out.compiled_layers = 0
    return out
