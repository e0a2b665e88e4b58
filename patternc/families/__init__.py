"""The model families patternc reads, expresses and targets: one module per ``model_type``.

``BUILTIN`` names the modules; each defines one ``FAMILY`` (``patternc.families.family.Family``)
and is imported on first use, the way sqlglot's ``dialects/__init__.py`` defers its dialects, so
``patternc check`` on a bare pattern imports none of them.  Every per-family registry of the core
(input models, ``architectures``, aliases, layout keys, readers, canonical candidates and
preference, transformers target profiles, published schemas) is derived from ``families()``;
``tests/families/test_registries.py`` fails naming any registry that misses a family.

Public API::

    from patternc import families
    families.names()            # every model_type, built-ins first, in list order
    families.get("bamba")       # one Family (KeyError if none)
    families.find(spec.source)  # the Family, or None (a bare pattern's source is "pattern")
    families.families()         # every Family, in list order
    with families.registered_family(toy): ...   # add one at runtime (tests, plugins)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import import_module
from typing import TypeVar

from patternc.families.family import Family

__all__ = [
    "BUILTIN",
    "Family",
    "builtin",
    "by_architecture",
    "families",
    "find",
    "get",
    "names",
    "register",
    "registered_family",
    "table",
    "unregister",
]

T = TypeVar("T")

BUILTIN: tuple[str, ...] = (
    "nemotron_h",
    "bamba",
    "granitemoehybrid",
    "jamba",
    "mamba2",
    "qwen3_next",
    "qwen3_5",
    "qwen3_5_moe",
    "olmo_hybrid",
    "deepseek_v3",
    "deepseek_v32",
    "kimi_linear",
    "bailing_hybrid",
    "lfm2",
    "lfm2_moe",
    "falcon_h1",
    "minimax",
    "zamba2",
)
"""The built-in families' module names (= their ``model_type``), in the order help texts list them."""

_REGISTERED: dict[str, Family] = {}


def _load(name: str) -> Family:
    family = import_module(f"patternc.families.{name}").FAMILY
    if not isinstance(family, Family) or family.name != name:
        raise TypeError(f"patternc.families.{name}.FAMILY is not the Family `{name}`")
    return family


def names() -> tuple[str, ...]:
    """Every family's ``model_type``: the built-ins, then the registered ones."""
    return BUILTIN + tuple(_REGISTERED)


def get(name: str) -> Family:
    """The family ``name`` (``KeyError`` when there is none)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in BUILTIN:
        return _load(name)
    raise KeyError(name)


def find(name: str | None) -> Family | None:
    """The family ``name``, or None when it is not one (a bare pattern's ``ModelSpec.source``)."""
    return get(name) if name is not None and name in names() else None


def builtin() -> tuple[Family, ...]:
    """The built-in families, in ``BUILTIN`` order."""
    return tuple(_load(name) for name in BUILTIN)


def families() -> tuple[Family, ...]:
    """Every family, in ``names()`` order."""
    return builtin() + tuple(_REGISTERED.values())


def by_architecture(architecture: str) -> str | None:
    """The family an ``architectures`` entry (``BambaForCausalLM``) names, or None."""
    for family in families():
        if architecture in family.architectures:
            return family.name
    return None


def register(family: Family) -> None:
    """Add a family at runtime; ``ValueError`` when its name is taken."""
    if family.name in BUILTIN or family.name in _REGISTERED:
        raise ValueError(f"a model family `{family.name}` is already registered")
    _REGISTERED[family.name] = family


def unregister(name: str) -> None:
    """Remove a family added by ``register`` (the built-ins stay)."""
    del _REGISTERED[name]


@contextmanager
def registered_family(family: Family) -> Iterator[Family]:
    """``family`` registered for the ``with`` block only (a test's toy family)."""
    register(family)
    try:
        yield family
    finally:
        unregister(family.name)


class _Table(Mapping[str, T]):
    """A per-family registry derived from the family list: ``model_type`` -> one field of each family.

    It is a live view, recomputed on each use (seven entries), so a family registered at runtime
    appears in every registry at once and the family modules are imported only when one is read."""

    def __init__(self, pick: Callable[[Family], T | None], order: Callable[[Family], int] | None) -> None:
        self._pick = pick
        self._order = order

    def _entries(self) -> dict[str, T]:
        found = families()
        if self._order is not None:
            found = tuple(sorted(found, key=self._order))
        return {family.name: value for family in found if (value := self._pick(family)) is not None}

    def __getitem__(self, name: str) -> T:
        return self._entries()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def __repr__(self) -> str:
        return repr(self._entries())


def table(pick: Callable[[Family], T | None], order: Callable[[Family], int] | None = None) -> Mapping[str, T]:
    """A registry derived from the families: name -> ``pick(family)`` (families where it is None left
    out), in list order or sorted by ``order``."""
    return _Table(pick, order)
