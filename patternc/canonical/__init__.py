"""The canonical-architecture map: which standard architecture expresses a model *exactly*.

``canonical_map(spec)`` lowers the spec to one dataflow graph per residual block
(``patternc.canonical.graph``), asks every candidate architecture to express the spec in its own
config terms and lowers what that architecture would compute (``patternc.canonical.archs``), then
compares the two block by block with networkx graph isomorphism (``patternc.canonical.compare``).
A candidate is exact when it has no structural finding, every spec block has exactly one
counterpart, and every pair of blocks is isomorphic (same ops, attributes and wiring, names
ignored).

Every model family (``patternc.families``) is a candidate, in the order of its
``canonical_rank``, most specific first: ``qwen3_5_moe``, ``qwen3_5``, ``mamba2``, ``bamba``,
``granitemoehybrid``, ``jamba``, ``qwen3_next``, ``zamba2``, then ``nemotron_h``.  ``architecture`` is
the first exact one in that order, or None when none is exact; ``zamba2`` is a candidate that is
always refused (shared blocks), so it is not in the preference order.

networkx is imported lazily, inside the comparison, never at ``import patternc`` time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patternc import families
from patternc.canonical.archs import Expression, Finding
from patternc.canonical.graph import BlockGraph, lower_spec
from patternc.model import ModelSpec


def _ranked() -> list[families.Family]:
    """Every family, most specific first (``Family.canonical_rank``; ties keep the list order)."""
    return sorted(families.families(), key=lambda family: family.canonical_rank)


def candidates() -> tuple[str, ...]:
    """Every candidate family, in the order reasons are reported (each family's ``canonical_rank``)."""
    return tuple(family.name for family in _ranked())


def preference() -> tuple[str, ...]:
    """Which exact candidate wins: candidate order, without the families that are never exact."""
    return tuple(family.name for family in _ranked() if family.can_be_exact)


@dataclass(frozen=True)
class CanonicalResult:
    architecture: str | None
    """The chosen model_type, or None when no candidate expresses the spec exactly."""
    reasons: dict[str, list[str]] = field(default_factory=dict)
    """Every candidate but the chosen one -> why it does not express the spec ([] when it does, too)."""
    matched: list[str] = field(default_factory=list)
    """Every exact candidate, in preference order."""

    def to_json(self) -> dict[str, object]:
        return {"architecture": self.architecture, "reasons": self.reasons, "matched": self.matched}


def _where(topic: str, layers: list[int]) -> str:
    if not layers:
        return topic
    if len(layers) == 1:
        return f"layer {layers[0]} `{topic}`"
    shown = [str(i) for i in layers] if len(layers) <= 6 else [*map(str, layers[:4]), "…", str(layers[-1])]
    return f"layers {', '.join(shown)} `{topic}` ({len(layers)} layers)"


def group_findings(findings: list[Finding]) -> list[str]:
    """Merge findings that say the same thing about several layers; first-occurrence order."""
    groups: dict[tuple[str, str, bool], list[int]] = {}
    for finding in findings:
        key = (finding.topic, finding.message, finding.layer is None)
        groups.setdefault(key, [])
        if finding.layer is not None:
            groups[key].append(finding.layer)
    return [f"{_where(topic, layers)}: {message}" for (topic, message, _), layers in groups.items()]


def _block_topic(block: BlockGraph) -> tuple[str, int | None]:
    if block.kind in ("embedding", "head"):
        return ("embedding" if block.kind == "embedding" else "output head"), None
    return block.kind, int(block.label.split()[1])


def compare_expression(spec_blocks: list[BlockGraph], expression: Expression) -> tuple[bool, list[str]]:
    """(exact?, grouped reasons) for one candidate's expression of the spec."""
    from patternc.canonical.compare import explain

    findings = list(expression.structural)
    seen: dict[int, int] = {}
    for spec_index, arch_block in expression.blocks:
        if spec_index is None:
            continue
        seen[spec_index] = seen.get(spec_index, 0) + 1
        spec_block = spec_blocks[spec_index]
        topic, layer = _block_topic(spec_block)
        for message in explain(spec_block, arch_block, expression.arch):
            findings.append(Finding(topic, layer, message))
    if expression.blocks:
        for spec_index, spec_block in enumerate(spec_blocks):
            if seen.get(spec_index, 0) == 0 and not any(f.layer == spec_index - 1 for f in expression.structural):
                topic, layer = _block_topic(spec_block)
                findings.append(Finding(topic, layer, f"{expression.arch} has nothing that computes it"))
    exact = (
        not findings
        and all(spec_index is not None for spec_index, _ in expression.blocks)
        and all(seen.get(i, 0) == 1 for i in range(len(spec_blocks)))
    )
    return exact, group_findings(findings)


def canonical_map(spec: ModelSpec) -> CanonicalResult:
    """The standard architecture that expresses ``spec`` exactly, and why each other one does not."""
    spec_blocks = lower_spec(spec)
    verdicts: dict[str, tuple[bool, list[str]]] = {}
    for family in _ranked():
        verdicts[family.name] = compare_expression(spec_blocks, family.express(spec))
    matched = [name for name in preference() if verdicts[name][0]]
    chosen = matched[0] if matched else None
    reasons = {name: verdicts[name][1] for name in verdicts if name != chosen}
    return CanonicalResult(chosen, reasons, matched)


__all__ = ["CanonicalResult", "candidates", "canonical_map", "group_findings", "preference"]
