"""The kind table (``patternc.kinds``): every per-kind table covers every kind, no layer character is
spelled outside the table, and a kind registered from a test goes through the whole product."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from patternc.analysis.costs import LayerCost, layer_cost
from patternc.analysis.stats import model_stats
from patternc.api import analyze
from patternc.canonical import canonical_map
from patternc.canonical.graph import lower_spec
from patternc.codes import Severity
from patternc.dialects import PROFILES as DIALECTS
from patternc.dialects import Dialect
from patternc.kinds import (
    BUILTIN,
    BY_SYMBOL,
    SYMBOL_ORDER,
    KindDef,
    LayerKind,
    Role,
    alphabet,
    behaviour,
    kind_def,
    kinds,
    register,
    registered_kind,
    unregister,
)
from patternc.model import ModelSpec, NormSpec
from patternc.targets import PROFILES, check_target

ROOT = Path(__file__).resolve().parents[2]

# --- (a) every per-kind table covers every kind ------------------------------------------------


def _spec_fields() -> set[str]:
    return set(ModelSpec.model_fields)


def _core_gaps(kind: KindDef) -> list[str]:
    """What the core's table entry for ``kind`` lacks (empty: complete)."""
    gaps = []
    if kind.spec_field is not None:
        if kind.spec_field not in _spec_fields():
            gaps.append(f"ModelSpec has no field {kind.spec_field!r}")
        spec_class = behaviour(kind.spec_class)
        if not (isinstance(spec_class, type) and issubclass(spec_class, BaseModel)):
            gaps.append("spec_class is not a pydantic model")
        elif spec_class not in getattr(ModelSpec.model_fields[kind.spec_field].annotation, "__args__", ()):
            gaps.append(f"ModelSpec.{kind.spec_field} does not hold {spec_class.__name__}")
        for name in ("cost", "lower"):
            if not callable(behaviour(getattr(kind, name))):
                gaps.append(f"{name} is not callable")
    return gaps


def _backend_table(module: str, attribute: str) -> Callable[[], set[str]]:
    def keys() -> set[str]:
        return set(getattr(importlib.import_module(module), attribute))

    return keys


def _hf_kinds() -> set[str]:
    return {d.kind for d in kinds() if d.hf}


PER_KIND_TABLES: dict[str, tuple[Callable[[], set[str]], Callable[[], set[str]]]] = {
    "patternc_torch.support.SUPPORT": (
        _backend_table("patternc_torch.support", "SUPPORT"),
        lambda: {d.kind for d in kinds()},
    ),
    "patternc_transformers.layouts.KIND_LAYOUTS": (
        _backend_table("patternc_transformers.layouts", "KIND_LAYOUTS"),
        _hf_kinds,
    ),
}
"""Each backend's per-kind table -> (its keys, the kinds it must cover): the torch capability table
every kind (building or refusing it), the transformers weight layout every kind transformers' layer
vocabulary names (``KindDef.hf``).  The torch module table is checked in
``tests/backends/torch/test_kind_table.py`` (it imports torch)."""


def missing_entries() -> dict[str, list[str]]:
    """Table name -> the kinds it misses (only tables that miss some)."""
    out: dict[str, list[str]] = {}
    for kind in kinds():
        gaps = _core_gaps(kind)
        if gaps:
            out.setdefault("patternc.kinds (KindDef)", []).append(f"{kind.kind}: {'; '.join(gaps)}")
    for name, (keys, required) in PER_KIND_TABLES.items():
        missing = sorted(required() - keys())
        if missing:
            out[name] = missing
    return out


def test_every_per_kind_table_covers_every_kind() -> None:
    assert missing_entries() == {}, "per-kind tables missing kinds: " + "; ".join(
        f"{table}: {', '.join(kinds)}" for table, kinds in missing_entries().items()
    )


def test_a_table_that_misses_a_kind_is_named() -> None:
    toy = KindDef("toy_ffn", "T", Role.FFN, "toy FFN", hf=True)
    with registered_kind(toy):
        missing = missing_entries()
    assert missing == {
        "patternc_torch.support.SUPPORT": ["toy_ffn"],
        "patternc_transformers.layouts.KIND_LAYOUTS": ["toy_ffn"],
    }


def test_every_spec_field_belongs_to_a_kind() -> None:
    """ModelSpec's per-kind fields are exactly the table's ``spec_field``s (no kind without its row)."""
    per_kind = {d.spec_field for d in kinds() if d.spec_field is not None}
    spec_classes = {
        name
        for name, field in ModelSpec.model_fields.items()
        if any(isinstance(a, type) and issubclass(a, BaseModel) for a in getattr(field.annotation, "__args__", ()))
    } - {
        "pattern",
        "norm",
        "scaled_residual",
        "mup",
    }  # model-wide nodes (MiniMax's residuals span every kind; Falcon-H1's multipliers)
    assert spec_classes == per_kind


def test_derived_tables_follow_the_kind_table() -> None:
    assert alphabet() == "".join(d.symbol for d in BUILTIN)
    assert list(SYMBOL_ORDER) == [d.symbol for d in BUILTIN]
    assert DIALECTS[Dialect.HF].alphabet == "".join(d.symbol for d in BUILTIN if d.hf)
    assert DIALECTS[Dialect.MEGATRON].alphabet == "".join(d.symbol for d in BUILTIN if d.megatron)
    assert DIALECTS[Dialect.PATTERNC].alphabet == alphabet()
    assert {d.kind for d in BUILTIN} == set(LayerKind)


# --- (b) no layer character outside the symbol table --------------------------------------------

TABLE_MODULES = {"patternc/kinds.py", "patternc/symbols.py", "patternc/dialects.py"}
"""Where layer characters are defined: the kind table, the look-alike table, the dialect profiles."""

NOT_LAYERS: dict[tuple[str, str, str | None], str] = {
    ("patternc/analysis/text.py", "human", "G"): "a decimal prefix (giga)",
    ("patternc/analysis/text.py", "human", "M"): "a decimal prefix (mega)",
    ("patternc/analysis/text.py", "human", "K"): "a decimal prefix (kilo)",
    ("patternc/cli.py", "check", "K"): "the metavar of `--pp` (pipeline ranks)",
    ("patternc/cli_common.py", "<module>", "K"): "the metavar of `--pp` (pipeline ranks)",
    ("patternc/draw.py", "human", "G"): "a decimal prefix (giga)",
    ("patternc/draw.py", "human", "M"): "a decimal prefix (mega)",
    ("patternc/cli.py", "_read_pattern", "-"): "the stdin argument",
    ("patternc/cli.py", "check", "-"): "the stdin argument",
    ("patternc/inputs.py", "source_kind", "-"): "the stdin argument",
    ("patternc/cli_common.py", "PatternCommand._positional_dashes", "-"): "an option's leading dash",
    ("patternc/cli_common.py", "PatternCommand._positional_dashes", "--"): "the end-of-options marker",
    ("patternc/cli_common.py", "apply_conventions", "-"): "an option's leading dash",
    ("patternc/commands/draw.py", "output_format", "-"): "the stdout argument",
    ("patternc/commands/draw.py", "write_picture", "-"): "the stdout argument",
    ("patternc/commands/draw.py", "_early_exists", "-"): "the stdout argument",
    ("patternc/engines.py", "megatron_arguments", "--"): "argparse's end-of-options marker, compared with the text",
    ("patternc/fmt.py", "_greedy", "M"): "a one-character stand-in for the shortest possible spelling",
    ("patternc/outdir.py", "clean_stale", "-"): "the separator in a staging directory's name",
    ("patternc/outdir.py", "publish", "*"): "a glob",
    ("patternc/render.py", "_snippets", "-"): "the underline of a secondary label",
    ("patternc/codes.py", "<module>", None): "example inputs of the code table: pattern text, not symbol logic",
    ("backends/patternc_torch/distributed.py", "_mamba_plan", "D"): "the Mamba2 mixer's skip parameter `D`",
    ("backends/patternc_torch/model.py", "<module>", "D"): "the Mamba2 parameter `D`",
    ("backends/patternc_torch/model.py", "HybridLM.init_weights", "D"): "the Mamba2 parameter `D`",
    ("backends/patternc_transformers/carry.py", "<module>", "*"): "a marker value of `Carried.written`",
    ("backends/patternc_transformers/hubnames.py", "_form", "*"): "the expert-index wildcard of transformers' "
    "conversion-mapping patterns",
}
"""String constants made of layer characters that do not mean layers: (file, scope, literal or None
for every literal of the scope) -> what they mean."""


def _docstrings_and_fstring_parts(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))  # module, class, function and attribute docstrings
        if isinstance(node, ast.JoinedStr):
            skip.update(id(value) for value in node.values if isinstance(value, ast.Constant))
    return skip


def layer_literals(path: Path, symbols: frozenset[str]) -> Iterator[tuple[str, str, int]]:
    """(scope, literal, line) of every string constant made only of layer symbols."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings_and_fstring_parts(tree)

    def visit(node: ast.AST, scope: str) -> Iterator[tuple[str, str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from visit(child, f"{scope}.{child.name}" if scope != "<module>" else child.name)
                continue
            if (
                isinstance(child, ast.Constant)
                and isinstance(child.value, str)
                and child.value
                and id(child) not in skip
                and set(child.value) <= symbols
            ):
                yield scope, child.value, child.lineno
            yield from visit(child, scope)

    yield from visit(tree, "<module>")


def _sources() -> Iterator[Path]:
    for top in ("patternc", "backends"):
        yield from sorted((ROOT / top).rglob("*.py"))


def test_no_layer_character_outside_the_symbol_table() -> None:
    symbols = frozenset(d.symbol for d in BUILTIN)
    found = []
    for path in _sources():
        name = path.relative_to(ROOT).as_posix()
        if name in TABLE_MODULES:
            continue
        for scope, literal, line in layer_literals(path, symbols):
            if (name, scope, literal) not in NOT_LAYERS and (name, scope, None) not in NOT_LAYERS:
                found.append(f"{name}:{line} ({scope}) {literal!r}")
    assert not found, "layer characters spelled outside the kind table (use the kind, a role or symbol_of):\n" + (
        "\n".join(found)
    )


def test_the_exemptions_are_still_needed() -> None:
    """An exemption whose literal is gone is deleted (the lists only shrink)."""
    symbols = frozenset(d.symbol for d in BUILTIN)
    seen = set()
    for path in _sources():
        name = path.relative_to(ROOT).as_posix()
        for scope, literal, _ in layer_literals(path, symbols):
            seen.update({(name, scope, literal), (name, scope, None)})
    stale = [key for key in NOT_LAYERS if key not in seen]
    assert not stale, f"delete these NOT_LAYERS entries, their literals are gone: {stale}"


def test_the_scan_sees_a_literal() -> None:
    source = 'def f(flat):\n    """`M` in a docstring is fine."""\n    return f"{flat}-" + ("M" in flat and "x")\n'
    path = Path(__file__).parent / "_scan_probe.py.txt"
    try:
        path.write_text(source, encoding="utf-8")
        assert list(layer_literals(path, frozenset("M-"))) == [("f", "M", 3)]
    finally:
        path.unlink()


# --- (c) a kind registered from a test goes through the product ---------------------------------


def _toy_cost(spec: ModelSpec) -> LayerCost:
    h = spec.hidden_size
    return LayerCost(params=h + 3 * h * h, active=h + 3 * h * h, matmul=3 * h * h, state_elems=h)


TOY = KindDef("toy_scan", "T", Role.SSM, "toy scan mixer", cost=_toy_cost, colours=("#000000", "#ffffff"))


def _spec(text: str) -> ModelSpec:
    pattern = analyze(text).pattern
    assert pattern is not None
    return ModelSpec(source="pattern", pattern=pattern, hidden_size=8, vocab_size=32, norm=NormSpec(eps=1e-5))


@pytest.fixture
def toy() -> Iterator[KindDef]:
    with registered_kind(TOY) as defn:
        yield defn


def test_toy_kind_is_parsed_in_the_patternc_dialect_only(toy: KindDef) -> None:
    result = analyze("M-T-*-")
    assert result.pattern is not None and not result.diagnostics
    assert [layer.kind for layer in result.pattern.layers][2] == "toy_scan"
    assert result.pattern.counts() == {"M": 1, "*": 1, "-": 3, "T": 1}
    for dialect in ("megatron", "hf"):
        (problem,) = analyze("M-T-*-", dialect).diagnostics
        assert problem.code == "P002" and "`--dialect patternc` accepts it" in (problem.help or "")


def test_toy_kind_is_counted_by_stats(toy: KindDef) -> None:
    spec = _spec("TT")
    assert layer_cost(spec, "toy_scan") == _toy_cost(spec)
    stats = model_stats(spec)
    (row,) = [k for k in stats.params.per_kind if k.kind == "toy_scan"]
    assert (row.symbol, row.params) == ("T", 2 * _toy_cost(spec).params)


def test_toy_kind_is_placed_by_the_canonical_map_and_refused_by_every_family(toy: KindDef) -> None:
    spec = _spec("T-*-")
    blocks = lower_spec(spec)
    assert [node.op for node in blocks[1].nodes if node.name == "mixer"] == ["toy_scan"]
    result = canonical_map(spec)
    assert result.architecture is None and result.matched == []
    assert result.reasons and all(result.reasons.values())


def test_toy_kind_is_refused_by_every_target_profile(toy: KindDef) -> None:
    spec = _spec("T-*-")
    for name in PROFILES:
        errors = [d for d in check_target(name, spec.pattern, spec) if d.severity is Severity.ERROR]
        assert any("`T`" in d.message for d in errors), name


def test_toy_kind_is_refused_with_a_reason_by_the_torch_backend(toy: KindDef) -> None:
    from patternc_torch.support import unsupported

    (problem,) = [d for d in unsupported(_spec("T-*-")) if "`T`" in d.message]
    assert problem.code == "P401"
    assert problem.message.endswith("not in the torch backend's kind table)")


def test_registration_is_undone() -> None:
    before = (alphabet(), dict(SYMBOL_ORDER))
    with registered_kind(TOY):
        assert kind_def("toy_scan") is TOY and BY_SYMBOL["T"] is TOY and alphabet().endswith("T")
    assert (alphabet(), dict(SYMBOL_ORDER)) == before
    with pytest.raises(KeyError):
        kind_def("toy_scan")


@pytest.mark.parametrize(
    ("defn", "message"),
    [
        (KindDef("again", "M", Role.SSM, "taken symbol"), "already spells"),
        (KindDef(LayerKind.MLP, "Q", Role.FFN, "taken name"), "already registered"),
        (KindDef("pipe", "|", Role.SSM, "structural"), "non-structural"),
        (KindDef("wide", "AB", Role.SSM, "two characters"), "one printable"),
    ],
)
def test_register_refuses(defn: KindDef, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        register(defn)


def test_builtin_kinds_cannot_be_unregistered() -> None:
    with pytest.raises(ValueError, match="built-in"):
        unregister(LayerKind.MLP)
