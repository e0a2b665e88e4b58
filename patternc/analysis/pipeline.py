"""Pipeline parallelism: the optimal contiguous split, and Megatron's rules for a hand-placed one.

``optimal_partition(costs, stages, first=, last=)`` minimises the largest stage cost exactly
(binary search on the answer with a greedy feasibility test, which is exact for contiguous
partitions of non-negative costs).  ``pipeline_diagnostics(pattern, pp, vpp)`` checks a pattern's
``|`` segments against Megatron-Core's ``select_pipeline_segment`` and argument checks
(peer-survey §1.5 V7, V9, V10, W1; §1.7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from patternc.diagnostics import Diagnostic, diag
from patternc.ir import Pattern
from patternc.model import ModelSpec
from patternc.source import Span


@dataclass(frozen=True, slots=True)
class Partition:
    sizes: tuple[int, ...]
    """Layers per stage, in order (0 for an empty stage)."""
    costs: tuple[int, ...]
    """Cost per stage, the first stage's and last stage's fixed extras included."""

    @property
    def max_cost(self) -> int:
        return max(self.costs)

    @property
    def imbalance(self) -> float:
        """Largest stage cost over the mean stage cost, minus one (0.0 is a perfect balance)."""
        total = sum(self.costs)
        return 0.0 if total == 0 else max(self.costs) * len(self.costs) / total - 1.0


def stage_costs(costs: Sequence[int], sizes: Sequence[int], first: int = 0, last: int = 0) -> tuple[int, ...]:
    out, start = [], 0
    for size in sizes:
        out.append(sum(costs[start : start + size]))
        start += size
    out[0] += first
    out[-1] += last
    return tuple(out)


def _greedy(costs: Sequence[int], stages: int, bound: int, first: int, last: int, nonempty: bool) -> list[int] | None:
    """Stage sizes packing each stage as full as ``bound`` allows, or None when no partition fits.

    With ``nonempty`` every stage takes at least one unit, and each stage stops early enough to
    leave one unit for every stage after it.  Filling as far as the bound allows still covers the
    longest prefix any feasible partition covers (an exchange argument: a stage that starts no
    earlier than another partition's stage ends no earlier), so the test stays exact.
    """
    n = len(costs)
    if nonempty and n < stages:
        return None
    if stages == 1:
        return [n] if sum(costs) + first + last <= bound else None
    sizes, i = [], 0
    for stage in range(stages - 1):
        room = bound - (first if stage == 0 else 0)
        if room < 0:
            return None
        cap = n - (stages - 1 - stage) if nonempty else n
        start = i
        while i < cap and costs[i] <= room:
            room -= costs[i]
            i += 1
        if nonempty and i == start:
            return None
        sizes.append(i - start)
    if sum(costs[i:]) + last > bound:
        return None
    sizes.append(n - i)
    return sizes


def optimal_partition(
    costs: Sequence[int], stages: int, *, first: int = 0, last: int = 0, nonempty: bool = False
) -> Partition:
    """The contiguous split of ``costs`` into ``stages`` stages whose largest stage cost is smallest.

    ``first`` is added to the first stage (the embedding), ``last`` to the last (LM head, MTP).
    With ``nonempty`` every stage holds at least one unit (``ValueError`` when there are fewer
    units than stages): an empty pipeline stage is legal in Megatron-Core but ``check`` warns
    about it (P102), and with ``--cost flops`` the LM head alone can outweigh any layer, so the
    unconstrained optimum often leaves the last stage empty.
    Among optimal splits it returns the one that fills earlier stages first.
    """
    if stages < 1:
        raise ValueError("stages must be at least 1")
    if any(c < 0 for c in costs) or first < 0 or last < 0:
        raise ValueError("costs must be non-negative")
    if nonempty and len(costs) < stages:
        raise ValueError("fewer units than stages: some stage must be empty")
    low = max([first, last, *costs, 0])
    high = sum(costs) + first + last
    while low < high:
        middle = (low + high) // 2
        if _greedy(costs, stages, middle, first, last, nonempty) is None:
            low = middle + 1
        else:
            high = middle
    sizes = _greedy(costs, stages, low, first, last, nonempty)
    assert sizes is not None
    return Partition(tuple(sizes), stage_costs(costs, sizes, first, last))


def megatron_string(flat: str, sizes: Sequence[int], mtp: str = "", depths: int = 0) -> str:
    """Megatron's unified pattern: stages joined by ``|``, then ``/`` and the MTP layers per depth."""
    parts, start = [], 0
    for size in sizes:
        parts.append(flat[start : start + size])
        start += size
    return "|".join(parts) + ("/" + mtp) * depths if mtp else "|".join(parts)


def pipeline_diagnostics(
    pattern: Pattern, pp: int, vpp: int | None = None, *, pipes: Sequence[int] = ()
) -> list[Diagnostic]:
    """Megatron-Core's pipeline rules for ``pattern``'s ``|`` segments on ``pp`` ranks (and ``vpp``).

    ``pipes`` (optional) are the text offsets of the ``|`` separators (``SourceMap.pipes``), so
    that diagnostics point at them.
    """
    if pp < 1 or (vpp is not None and vpp < 1):
        raise ValueError("pp and vpp must be positive")
    segments = len(pattern.stages)
    layers = len(pattern.layers)
    first_pipe = Span.at(pipes[0]) if pipes else None
    found: list[Diagnostic] = []
    if segments > 1:
        if pp == 1:
            # Megatron's training derives vpp = segments // pp and refuses an interleaved schedule
            # on one rank; its model builder, given pp=1 and no vpp, builds segment 0 only.
            found.append(
                diag(
                    "P107",
                    f"the pattern has {segments} pipe-delimited segments, but pp=1: Megatron-Core's training "
                    "refuses them and its model builder would keep only the first segment",
                    first_pipe,
                    label=f"{segments} segments on one rank",
                    help=f"remove the `|` separators, or use --pp {_divisors(segments)}",
                    notes=(
                        "Megatron raises: AssertionError: When interleaved schedule is used, "
                        "pipeline-model-parallel size should be greater than 1",
                        f"with pp=1, select_pipeline_segment builds segment 0 alone: "
                        f"{pattern.flat[pattern.stages[0].start : pattern.stages[0].stop] or '(empty)'}",
                    ),
                )
            )
        elif segments % pp:
            found.append(
                diag(
                    "P602",
                    f"the pattern has {segments} pipe-delimited segments, which {pp} pipeline ranks cannot share "
                    f"evenly ({segments} is not divisible by pp={pp})",
                    first_pipe,
                    label=f"{segments} segments",
                    help=f"use {_multiples(segments, pp)} segments, or a pp that divides {segments}",
                    notes=("Megatron-Core gives segment k to pp rank k % pp and virtual stage k // pp",),
                )
            )
        elif vpp is not None and segments != pp * vpp:
            found.append(
                diag(
                    "P603",
                    f"pp={pp} x vpp={vpp} needs {pp * vpp} segments, but the pattern has {segments}",
                    first_pipe,
                    label=f"{segments} segments",
                    help=f"Megatron-Core derives vpp from the pattern: here vpp = {segments // pp}",
                )
            )
        return found
    if pp == 1:
        if vpp is not None and vpp > 1:
            found.append(_vpp_without_pipes(pp, vpp))
        return found
    found.append(
        diag(
            "P604",
            f"pp={pp} but the pattern has no `|`: Megatron-Core splits it evenly itself, a deprecated mode",
            None,
            help="place the stage boundaries with `|` (`patternc split` finds the balanced ones)",
        )
    )
    if vpp is not None and vpp > 1:
        found.append(_vpp_without_pipes(pp, vpp))
    if layers % pp:
        found.append(
            diag(
                "P605",
                f"{layers} layers cannot be split evenly over pp={pp} ranks, which Megatron-Core requires "
                "when the pattern has no `|`",
                None,
                help="add `|` separators to place the stages by hand",
            )
        )
    return found


def _vpp_without_pipes(pp: int, vpp: int) -> Diagnostic:
    return diag(
        "P606",
        f"vpp={vpp} needs `|` separators: Megatron-Core refuses virtual pipeline stages for a pattern without them",
        None,
        help=f"split the pattern into {pp * vpp} segments with `|`",
    )


def _divisors(segments: int) -> str:
    """The pipeline sizes above 1 that share ``segments`` evenly, as ``2, 3 or 6``."""
    sizes = [str(k) for k in range(2, segments + 1) if segments % k == 0]
    return ", ".join(sizes[:-1]) + " or " + sizes[-1] if len(sizes) > 1 else sizes[0]


def _multiples(segments: int, pp: int) -> str:
    below = segments - segments % pp
    above = below + pp
    return f"{below} or {above}" if below > 0 else str(above)


def decoder_layers(spec: ModelSpec) -> tuple[int, ...]:
    """The pattern symbols of each decoder layer, in order: the units a pipeline stage boundary may not cut.

    Nemotron-H-style models (and bare patterns) make every symbol its own decoder layer.  In
    a family with ``Family.paired_layers`` a mixer and the FFN right after it are one decoder layer (a stray symbol,
    which such a family cannot express, stays alone).
    """
    from patternc import families
    from patternc.symbols import BY_SYMBOL, Role

    flat = spec.pattern.flat
    family = families.find(spec.source)
    if family is None or not family.paired_layers:
        return (1,) * len(flat)
    units: list[int] = []
    i = 0
    while i < len(flat):
        paired = (
            BY_SYMBOL[flat[i]].role is not Role.FFN and i + 1 < len(flat) and BY_SYMBOL[flat[i + 1]].role is Role.FFN
        )
        units.append(2 if paired else 1)
        i += units[-1]
    return tuple(units)


@dataclass(frozen=True, slots=True)
class SplitResult:
    pp: int
    vpp: int
    cost: str
    layer_costs: tuple[int, ...]
    first: int
    """Fixed cost on the first stage (the embedding)."""
    last: int
    """Fixed cost on the last stage (final norm, LM head, MTP)."""
    partition: Partition
    """Pattern symbols and cost per segment."""
    unified: str
    """Megatron's unified pattern with ``|`` and ``/``."""
    units: tuple[int, ...] = ()
    """Pattern symbols per decoder layer (``decoder_layers``): no segment boundary falls inside one."""

    @property
    def decoder_layers_per_segment(self) -> tuple[int, ...]:
        """How many whole decoder layers each segment holds."""
        out, i = [], 0
        for size in self.partition.sizes:
            count = 0
            while size > 0:
                size -= self.units[i]
                i += 1
                count += 1
            out.append(count)
        return tuple(out)


def split_model(spec: ModelSpec, pp: int, vpp: int = 1, *, cost: str = "params", seq_len: int = 4096) -> SplitResult:
    """The balanced split of ``spec``'s main layers into ``pp * vpp`` segments (``CostError`` if unknown kinds).

    Segments hold whole decoder layers (``decoder_layers``), and none is empty when there are at
    least as many decoder layers as segments; with fewer, some must be (``split`` refuses that
    case with P610 before calling this; ``build --target megatron`` accepts it, as Megatron does).
    """
    from patternc.analysis.costs import layer_cost, mtp_overhead
    from patternc.analysis.stats import prefill_flops, round_half_up, tied

    if pp < 1 or vpp < 1:
        raise ValueError("pp and vpp must be positive")
    if cost not in ("params", "flops"):
        raise ValueError("cost is params or flops")
    pattern = spec.pattern
    h, vocab = spec.hidden_size, spec.vocab_size
    kinds = {layer.kind for layer in pattern.layers} | {
        layer.kind for layer in (pattern.mtp.layers if pattern.mtp else ())
    }
    costs = {kind: layer_cost(spec, kind) for kind in kinds}
    mtp_layers = pattern.mtp.layers if pattern.mtp else ()
    depths = pattern.mtp.depths if pattern.mtp else 0
    if cost == "params":
        per_layer = tuple(costs[layer.kind].params for layer in pattern.layers)
        first = vocab * h
        mtp = depths * (mtp_overhead(h) + sum(costs[layer.kind].params for layer in mtp_layers))
        last = h + (0 if tied(spec) else vocab * h) + mtp
    else:
        per_layer = tuple(round_half_up(prefill_flops(costs[layer.kind], seq_len)) for layer in pattern.layers)
        first = 0
        mtp_flops = sum((prefill_flops(costs[layer.kind], seq_len) for layer in mtp_layers), Fraction(0))
        mtp = depths * (round_half_up(mtp_flops) + 4 * h * h + 2 * vocab * h)
        last = 2 * vocab * h + mtp
    units = decoder_layers(spec)
    unit_costs, start = [], 0
    for size in units:
        unit_costs.append(sum(per_layer[start : start + size]))
        start += size
    segments = pp * vpp
    by_unit = optimal_partition(unit_costs, segments, first=first, last=last, nonempty=segments <= len(units))
    sizes, start = [], 0
    for count in by_unit.sizes:
        sizes.append(sum(units[start : start + count]))
        start += count
    partition = Partition(tuple(sizes), by_unit.costs)
    unified = megatron_string(pattern.flat, partition.sizes, pattern.mtp.flat if pattern.mtp else "", depths)
    return SplitResult(pp, vpp, cost, per_layer, first, last, partition, unified, units)
