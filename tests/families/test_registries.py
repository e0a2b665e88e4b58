"""Every registry derived from the family list covers every family, and each family is well formed.

A registry that forgets a family fails here naming the registry and the family (the derived ones
cannot forget unless the derivation breaks; the hand-written ones, the target vocabulary and the
docs, can)."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from patternc import families
from patternc.canonical import candidates
from patternc.schemas import SCHEMAS
from patternc.target_names import lookup
from patternc.targets import PROFILES

NAMES = families.names()


def _registries() -> dict[str, Collection[str]]:
    from patternc_transformers import TransformersBackend

    return {
        "patternc_transformers: build --target": set(TransformersBackend().targets),
        "patternc.canonical.candidates()": set(candidates()),
        "patternc.schemas.SCHEMAS (config-<type>)": {n.removeprefix("config-") for n in SCHEMAS},
        "patternc.target_names.VOCABULARY (--target spellings)": {n for n in NAMES if lookup(n) is not None},
        "patternc.targets.PROFILES (transformers-<type>)": {
            f.name for f in families.families() if f.profile is None or f"transformers-{f.name}" in PROFILES
        },
    }


@pytest.mark.parametrize("registry", sorted(_registries()))
def test_registry_covers_every_family(registry: str) -> None:
    missing = [name for name in NAMES if name not in _registries()[registry]]
    assert not missing, f"{registry} misses the famil{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}"


@pytest.mark.parametrize("name", NAMES)
def test_family_is_well_formed(name: str) -> None:
    family = families.get(name)
    assert family.name == name
    fields = set(family.input_model.model_fields)
    assert set(family.aliases.values()) <= fields, f"{name}: an alias names no field"
    assert {key for group in family.layout_keys for key in group} <= fields, f"{name}: a layout key is no field"
    assert set(family.layout_related) <= fields, f"{name}: a layout-related key is no field"
    assert family.kwarg_only_fields <= fields, f"{name}: a keyword-only field is no field"
    assert family.checkpoint_fields <= fields, f"{name}: a checkpoint field is no field"
    assert family.remote_aliases <= set(family.aliases), f"{name}: a remote-code alias is no alias"
    if family.profile is not None:
        assert family.profile().name == f"transformers-{name}"


def test_families_do_not_overlap() -> None:
    architectures = [a for f in families.families() for a in f.architectures]
    assert len(architectures) == len(set(architectures)), "an `architectures` entry names two families"
    ranks = [f.canonical_rank for f in families.families()]
    assert len(ranks) == len(set(ranks)), "two families share a canonical rank"
    for family in families.families():
        assert families.by_architecture(family.architectures[0]) == family.name


def test_names_are_the_builtin_modules_and_load_lazily() -> None:
    assert families.names()[: len(families.BUILTIN)] == families.BUILTIN
    with pytest.raises(KeyError):
        families.get("llama")
