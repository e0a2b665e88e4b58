"""How much memory a model's parameters need, and the refusal (``P701``) before allocating it.

A config's sizes are each bounded (``INT_MAX``), but their products are not: ``hidden_size`` and
``vocab_size`` of 2**31 - 1 each make an embedding of 2**62 elements.  Every path that
allocates a model (``patternc build`` of the torch target, ``patternc run``, ``torch_model``) or
that instantiates it on the meta device (``patternc build`` of a transformers target, whose tensor
sizes torch computes in 64 bits) asks ``allocation_problem`` first, from the exact parameter count
of ``patternc.analysis`` (pure integer arithmetic: nothing is allocated to ask).

Limits: ``MAX_MODEL_BYTES`` (1 PiB) for every model, overridable with the environment variable
``PATTERNC_MAX_MODEL_BYTES``; an allocating path is also refused when the parameters exceed the
memory available now (``MemAvailable`` of ``/proc/meminfo`` for the CPU, free device memory for
CUDA).
"""

from __future__ import annotations

import os

from patternc.diagnostics import Diagnostic, diag
from patternc.model import ModelSpec

MAX_MODEL_BYTES = 2**50
"""Largest model (parameter bytes) patternc builds or loads at all: 1 PiB, far above any released model."""

ENV_LIMIT = "PATTERNC_MAX_MODEL_BYTES"
"""Environment variable that replaces ``MAX_MODEL_BYTES`` (a positive integer of bytes)."""


def model_parameters(spec: ModelSpec) -> int:
    """Elements the model stores: embedding, LM head unless tied, final norm, layers, MTP depths.

    A layer kind without hyper-parameters (a bare pattern's ``G``) counts 0, so this is a lower
    bound for such specs (which no backend builds).
    """
    from patternc.analysis.costs import CostError, layer_cost, mtp_overhead
    from patternc.analysis.stats import tied

    h, vocab = spec.hidden_size, spec.vocab_size
    per_kind: dict[object, int] = {}

    def cost(kind: object) -> int:
        if kind not in per_kind:
            try:
                per_kind[kind] = layer_cost(spec, kind).params  # type: ignore[arg-type]
            except CostError:
                per_kind[kind] = 0
        return per_kind[kind]

    total = vocab * h * (1 if tied(spec) else 2) + h
    total += sum(cost(layer.kind) for layer in spec.pattern.layers)
    mtp = spec.pattern.mtp
    if mtp is not None:
        total += mtp.depths * (mtp_overhead(h) + sum(cost(layer.kind) for layer in mtp.layers))
    return total


def model_bytes(spec: ModelSpec, bytes_per_param: int = 4) -> int:
    """Bytes the parameters take at ``bytes_per_param`` (4: float32, 2: bf16/fp16)."""
    return model_parameters(spec) * bytes_per_param


def max_model_bytes() -> int:
    """``MAX_MODEL_BYTES``, or ``PATTERNC_MAX_MODEL_BYTES`` when it is set to a positive integer."""
    text = os.environ.get(ENV_LIMIT, "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return MAX_MODEL_BYTES


def available_memory(device: str = "cpu") -> int | None:
    """Bytes that can be allocated now on ``device`` (None when unknown).

    Only the CPU is asked here (``/proc/meminfo``): the core imports no torch, so a backend that
    allocates on an accelerator measures its free memory itself and passes it to
    ``allocation_problem`` (``free=``).
    """
    if device != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _human(size: int) -> str:
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} B"


def allocation_problem(
    spec: ModelSpec,
    *,
    bytes_per_param: int = 4,
    device: str | None = "cpu",
    what: str = "the model",
    free: int | None = None,
) -> Diagnostic | None:
    """``P701`` when the parameters exceed the fixed limit, or (``device`` given) the memory free on it.

    ``device=None``: nothing is allocated (a meta-device model), only the fixed limit applies.
    ``free``: the bytes free on ``device`` as its backend measured them (default: ``available_memory``).
    """
    params = model_parameters(spec)
    need = params * bytes_per_param
    limit = max_model_bytes()
    where = f"the limit of {limit:,} bytes ({_human(limit)}; {ENV_LIMIT} changes it)"
    if device is not None:
        free = free if free is not None else available_memory(device)
        if free is not None and free < limit:
            limit = free
            where = f"the {free:,} bytes ({_human(free)}) of memory available on {device}"
    if need <= limit:
        return None
    return diag(
        "P701",
        f"{what} needs {need:,} bytes ({_human(need)}: {params:,} parameters x {bytes_per_param} bytes), above {where}",
        None,
        help="check the sizes in the config (hidden_size, vocab_size, intermediate sizes, experts, layers); "
        "nothing was allocated",
    )
