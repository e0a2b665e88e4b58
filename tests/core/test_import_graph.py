"""The layering, checked on the source: the import graph of ``patternc/`` and ``backends/``.

Every ``.py`` file is parsed with ``ast`` and every ``import`` statement counts wherever it is written:
at module level, inside a function (a lazy import still runs, and still ties the modules together),
or under ``if TYPE_CHECKING:`` (the type checker follows it, and ``mypy patternc`` then needs what it
names).  The test fails on

1. an import cycle, other than ``patternc.diagnostics`` <-> ``patternc.render`` (``PatternError.__str__``
   renders its diagnostics; xdsl's ``ParseError.__str__`` does the same);
2. the core (``patternc``) importing torch, transformers, safetensors, or any package under ``backends/``
   (backends are reached through the ``patternc.backends`` entry points only);
3. one backend package importing another, or a shared package under ``backends/`` (one without an entry
   point, such as ``patternc_checkpoint``) importing a backend.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "safetensors")
ALLOWED_CYCLES = [frozenset({"patternc.diagnostics", "patternc.render"})]


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for the core package and every package under ``backends/``."""
    found: dict[str, Path] = {}
    roots = [
        (ROOT, ROOT / "patternc"),
        *((ROOT / "backends", p) for p in sorted((ROOT / "backends").iterdir()) if (p / "__init__.py").is_file()),
    ]
    for base, package in roots:
        for path in sorted(package.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module name an import statement of ``path`` names (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from package import module` imports the module, not the package's names
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _internal(name: str) -> str | None:
    """The module of ours that ``name`` is, or is in (``patternc.x.y.Thing`` -> ``patternc.x.y``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> modules of ours it imports, module -> top-level external names it imports)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    external: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name in _imported(module, path):
            target = _internal(name)
            if target is None:
                external[module].add(name.split(".")[0])
            elif target != module:
                edges[module].add(target)
    return edges, external


EDGES, EXTERNAL = _graph()


def _backend_packages() -> set[str]:
    """The top-level packages the ``patternc.backends`` entry points name, outside the core."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    values = pyproject["project"]["entry-points"]["patternc.backends"].values()
    return {value.split(":")[0].split(".")[0] for value in values} - {"patternc"}


def _top(module: str) -> str:
    return module.split(".")[0]


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components with more than one module (the cycles), iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return components


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    """The parser is not fooled by where an import is written (the cycles of the review were all lazy)."""
    assert "patternc.backends" in EDGES["patternc.cli"]  # inside the `backends` command's function
    assert "patternc.model" in EDGES["patternc.megatron_backend"]  # under `if TYPE_CHECKING:`
    assert "patternc.outdir" in EDGES["patternc_torch.io"]
    assert {"patternc.diagnostics", "patternc.render"} in _strongly_connected(EDGES)  # a cycle is seen


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    path = tmp_path / "build.py"
    path.write_text("from . import run\nfrom .outputs import BuildOutput\nfrom ..backends import load\n")
    found = set(_imported("patternc.commands.build", path))
    assert found == {"patternc.commands.run", "patternc.commands.outputs", "patternc.backends"}


def test_no_import_cycles_but_diagnostics_and_render() -> None:
    edges = EDGES
    cycles = [sorted(c) for c in _strongly_connected(edges) if frozenset(c) not in ALLOWED_CYCLES]
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_core_imports_no_heavy_library_and_no_backend() -> None:
    outside = {_top(m) for m in MODULES if _top(m) != "patternc"}
    wrong = sorted(
        f"{module} imports {name}"
        for module in MODULES
        if _top(module) == "patternc"
        for name in (*EXTERNAL[module], *map(_top, EDGES[module]))
        if name in HEAVY or name in outside
    )
    assert wrong == []


def test_no_backend_imports_another() -> None:
    backends = _backend_packages()
    assert {"patternc_torch", "patternc_transformers"} <= backends  # the test sees what it guards
    shared = {_top(m) for m in MODULES} - backends - {"patternc"}
    assert "patternc_checkpoint" in shared
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in EDGES.items()
        if _top(module) != "patternc"
        for target in targets
        if _top(target) in backends and _top(target) != _top(module)
    )
    assert wrong == []
