"""Compare two block graphs with networkx graph matching and explain the differences.

Exactness is decided by ``networkx.is_isomorphic`` with a node match on ``op`` *and* every
attribute, and an edge match on the input port; node names are ignored (renaming is allowed).
When that fails, the explanation comes from the graphs too: if the two graphs have the same
structure (an isomorphism on ``op`` and ports alone exists) the attribute differences of the
matched nodes are listed; otherwise the nodes present on one side only (by ``op`` counts, named by
their local names) and the attribute differences of same-named nodes.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

from patternc.canonical.graph import BlockGraph, Edge, Node, _fmt


def _full_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["op"] == b["op"] and a["attrs"] == b["attrs"])


def _op_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["op"] == b["op"])


def _port_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["port"] == b["port"])


def isomorphic(left: BlockGraph, right: BlockGraph) -> bool:
    """Same operations, attributes and wiring, up to renaming of the nodes."""
    import networkx as nx  # type: ignore[import-untyped]

    return bool(
        nx.is_isomorphic(left.to_networkx(), right.to_networkx(), node_match=_full_match, edge_match=_port_match)
    )


def _structural_mapping(left: BlockGraph, right: BlockGraph) -> dict[str, str] | None:
    """A node mapping left -> right that preserves ops and ports, preferring same names."""
    from networkx.algorithms.isomorphism import DiGraphMatcher  # type: ignore[import-untyped]

    lg, rg = left.to_networkx(), right.to_networkx()
    matcher = DiGraphMatcher(lg, rg, node_match=_op_match, edge_match=_port_match)
    if not matcher.is_isomorphic():
        return None
    if set(left.names()) == set(right.names()):
        # Prefer the identity-by-name mapping when it is itself an isomorphism (the usual case):
        # it pairs `q_proj` with `q_proj` even where `k_proj` and `v_proj` look alike.
        same_ops = all(node.op == right.node(node.name).op for node in left.nodes)
        same_edges = {(e.src, e.dst, e.port) for e in left.edges} == {(e.src, e.dst, e.port) for e in right.edges}
        if same_ops and same_edges:
            return {name: name for name in left.names()}
    return dict(matcher.mapping)


def _attr_diffs(left: Node, right: Node, right_name: str) -> list[str]:
    out = []
    rattrs = dict(right.attrs)
    for key, value in left.attrs:
        other = rattrs.get(key)
        if other != value:
            out.append(f"`{left.name}` {key} is {_fmt(value)}, {right_name}'s is {_fmt(other)}")
    keys = {key for key, _ in left.attrs}
    for key, other in right.attrs:  # an attribute only one side sets (Qwen3.5's `mrope`)
        if key not in keys:
            out.append(f"`{left.name}` {key} is {_fmt(None)}, {right_name}'s is {_fmt(other)}")
    return out


def explain(spec_block: BlockGraph, arch_block: BlockGraph, arch: str) -> list[str]:
    """Why ``arch_block`` (what ``arch`` computes) differs from ``spec_block``; [] when isomorphic.

    The answer depends only on the two graphs' nodes and edges (never on the block's label), and a
    stack repeats the same few blocks in every layer for every candidate, so it is computed once per
    distinct pair: a 60-layer config against 19 candidates is about 70 graph matchings, not 1,100."""
    return list(_explain(spec_block.nodes, spec_block.edges, arch_block.nodes, arch_block.edges, arch))


@lru_cache(maxsize=4096)
def _explain(
    spec_nodes: tuple[Node, ...],
    spec_edges: tuple[Edge, ...],
    arch_nodes: tuple[Node, ...],
    arch_edges: tuple[Edge, ...],
    arch: str,
) -> tuple[str, ...]:
    return tuple(
        _explain_graphs(BlockGraph("", "", spec_nodes, spec_edges), BlockGraph("", "", arch_nodes, arch_edges), arch)
    )


def _explain_graphs(spec_block: BlockGraph, arch_block: BlockGraph, arch: str) -> list[str]:
    if isomorphic(spec_block, arch_block):
        return []
    mapping = _structural_mapping(spec_block, arch_block)
    reasons: list[str] = []
    if mapping is not None:
        for node in spec_block.nodes:
            reasons.extend(_attr_diffs(node, arch_block.node(mapping[node.name]), arch))
    else:
        spec_names = {n.name for n in spec_block.nodes}
        arch_names = {n.name for n in arch_block.nodes}
        only_spec = [n for n in spec_block.nodes if n.name not in arch_names]
        only_arch = [n for n in arch_block.nodes if n.name not in spec_names]
        if only_spec:
            listed = ", ".join(f"`{n.name}` {n.describe()}" for n in only_spec)
            reasons.append(f"the model has {listed}; {arch} has no such node")
        if only_arch:
            listed = ", ".join(f"`{n.name}` {n.describe()}" for n in only_arch)
            reasons.append(f"{arch} has {listed}; the model does not")
        for node in spec_block.nodes:
            if node.name in arch_names:
                other = arch_block.node(node.name)
                if other.op != node.op:
                    reasons.append(f"`{node.name}` is {node.op}, {arch}'s is {other.op}")
                else:
                    reasons.extend(_attr_diffs(node, other, arch))
        spec_edges = {(e.src, e.dst, e.port) for e in spec_block.edges}
        arch_edges = {(e.src, e.dst, e.port) for e in arch_block.edges}
        if not reasons and spec_edges != arch_edges:
            reasons.append(f"the wiring differs from {arch}'s")
    if not reasons:  # pragma: no cover - defensive: the graphs differ, say so even if unexplained
        ops = Counter(n.op for n in spec_block.nodes) - Counter(n.op for n in arch_block.nodes)
        reasons.append(f"the block graphs differ from {arch}'s ({dict(ops)})")
    return reasons
