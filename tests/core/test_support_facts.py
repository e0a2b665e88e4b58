"""The consumer × family facts (patternc/targets/support_facts.py) and the P320/P321 rules that read them.

Every fact names the commit it was read at; every registered family has a fact for every consumer;
a config of each family, checked against each consumer, gets its fact's answer and none of the
consumer's Nemotron-H rules; bare patterns, ``nemotron_h`` configs and families without a fact are
judged exactly as before.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from patternc import families
from patternc.api import parse
from patternc.codes import BY_CODE, Severity
from patternc.config import read_config
from patternc.model import ModelSpec
from patternc.targets import PROFILES, check_target
from patternc.targets.support_facts import (
    CONSUMERS,
    FACTS,
    FAMILY_KINDS,
    NEW_KINDS,
    builders,
    fact,
    judged_by_family,
    kinds_built,
)
from tests.docgen_canonical import REFERENCES

ROOT = Path(__file__).resolve().parents[2]
NEMOTRON_CONFIG = ROOT / "tests" / "golden" / "configs" / "nemotron_h-small.json"
SOURCE = re.compile(r"^\S+/\S+ \S.* @ ([0-9a-f]{7,40})\b")
"""``owner/repo path @ commit``: the repository, the file (or folder) and a 7-40 hex commit."""


def _nemotron_spec() -> ModelSpec:
    spec = read_config(NEMOTRON_CONFIG).spec
    assert spec is not None
    return spec


def _as_family(family: str) -> ModelSpec:
    """The small Nemotron-H spec relabelled as read from ``family``: the rules read only ``spec.source``."""
    return _nemotron_spec().model_copy(update={"source": family})


FAMILY_CODES = ("P320", "P321")


def test_every_fact_names_a_repository_a_file_and_a_commit() -> None:
    bad = [
        f"{consumer}/{family}: {found.source!r}"
        for consumer, table in FACTS.items()
        for family, found in table.items()
        if not SOURCE.match(found.source) or not found.what
    ]
    assert not bad, bad


def test_the_consumers_are_profiles() -> None:
    assert set(FACTS) == set(CONSUMERS)
    assert set(CONSUMERS) <= set(PROFILES)


def test_every_registered_family_has_a_fact_for_every_consumer() -> None:
    missing = [
        f"{consumer} has no fact for `{name}`"
        for name in families.names()
        for consumer in CONSUMERS
        if fact(consumer, name) is None
    ]
    assert not missing, "add them to patternc/targets/support_facts.py: " + "; ".join(missing)


def test_every_family_with_kinds_has_a_row_for_every_consumer() -> None:
    """The table is square: the families of issue 14 not yet registered have their facts too."""
    for consumer in CONSUMERS:
        assert set(FACTS[consumer]) == set(FAMILY_KINDS), consumer


def test_family_kinds_agree_with_the_registered_families() -> None:
    """A registered family's module ``KINDS`` are among its ``FAMILY_KINDS`` (what transformers builds):
    fewer while patternc cannot yet express one of them (Jamba before `S`), never another one."""
    for name in families.names():
        module = importlib.import_module(f"patternc.families.{name}") if name in families.BUILTIN else None
        declared = getattr(module, "KINDS", None)
        if declared is None:
            continue
        assert set(declared) <= set(FAMILY_KINDS[name]), name


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("family", sorted(FAMILY_KINDS))
def test_a_config_of_each_family_gets_the_tables_answer(consumer: str, family: str) -> None:
    spec = _as_family(family)
    found = check_target(consumer, spec.pattern, spec)
    if family == "nemotron_h":
        assert not [d for d in found if d.code in FAMILY_CODES]
        return
    known = fact(consumer, family)
    assert known is not None
    expected = "P321" if known.builds else "P320"
    ours = [d for d in found if d.code in FAMILY_CODES]
    assert [d.code for d in ours] == [expected], found
    assert known.source in ours[0].message and known.what in ours[0].message
    assert ours[0].severity is BY_CODE[expected].severity
    if consumer != "megatron-core":
        # the consumer's Nemotron-H rules do not judge a model it loads by another architecture
        assert [d.code for d in found] == [expected]
    if not known.builds:
        others = [name for name in builders(family) if name != consumer]
        assert all(name in (ours[0].help or "") for name in others)


@pytest.mark.parametrize("family", sorted(REFERENCES))
def test_reference_configs_get_the_tables_answer(family: str) -> None:
    """The released (or transformers-written) config of each registered family, read end to end."""
    reading = read_config(ROOT / REFERENCES[family])
    if reading.spec is None:
        pytest.skip(f"{family}'s reference reads into no model (the family refuses it)")
    assert reading.spec.source == family
    for consumer in CONSUMERS:
        found = check_target(consumer, reading.spec.pattern, reading.spec)
        codes = [d.code for d in found if d.code in FAMILY_CODES]
        if family == "nemotron_h":
            assert codes == []
            continue
        known = fact(consumer, family)
        assert known is not None
        assert codes == ["P321" if known.builds else "P320"], (consumer, found)


def test_examples_of_the_issue() -> None:
    """vLLM builds Qwen3.5 (a note citing its file and commit); llama.cpp does not build OLMo Hybrid."""
    qwen = read_config(ROOT / REFERENCES["qwen3_5"]).spec
    assert qwen is not None
    (note,) = check_target("vllm", qwen.pattern, qwen)
    assert note.code == "P321" and note.severity is Severity.NOTE
    assert "vllm-project/vllm vllm/model_executor/models/qwen3_5.py @ 00def4f842" in note.message
    olmo = read_config(ROOT / REFERENCES["olmo_hybrid"]).spec
    assert olmo is not None
    (error,) = check_target("llama.cpp", olmo.pattern, olmo)
    assert error.code == "P320" and error.severity is Severity.ERROR
    assert "src/llama-arch.cpp @ 00395eb285" in error.message
    assert error.help is not None and "vllm" in error.help and "sglang" in error.help


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_nemotron_path_is_unchanged(consumer: str) -> None:
    """Bare patterns, nemotron_h configs and families without a fact keep the Nemotron-H rules, and no P320/P321."""
    spec = _nemotron_spec()
    for text in ("M-G*-", "MEM*E/*E/*E", "M-M-"):
        pattern = parse(text)
        bare = check_target(consumer, pattern)
        assert not [d for d in bare if d.code in FAMILY_CODES]
        for source in ("nemotron_h", "pattern", "no_such_family"):
            relabelled = spec.model_copy(update={"source": source, "pattern": pattern})
            found = check_target(consumer, pattern, relabelled)
            assert not [d for d in found if d.code in FAMILY_CODES]
            assert not judged_by_family(consumer, source)
        unknown_spec = spec.model_copy(update={"source": "no_such_family", "pattern": pattern})
        unknown = check_target(consumer, pattern, unknown_spec)
        assert [d.code for d in unknown if d.code.startswith("P30")] == [
            d.code for d in bare if d.code.startswith("P30")
        ]


def test_unknown_consumer_or_family_has_no_fact() -> None:
    assert fact("tensorrt", "qwen3_5") is None
    assert fact("vllm", "no_such_family") is None
    assert builders("no_such_family") == []


def test_kinds_built_follow_the_families() -> None:
    """A consumer builds a new kind exactly through the families it builds that have it."""
    for consumer in CONSUMERS:
        built = kinds_built(consumer)
        assert list(built) == list(NEW_KINDS)
        for kind, through in built.items():
            for family in through:
                found = fact(consumer, family)
                assert found is not None and found.builds and kind in FAMILY_KINDS[family]
    assert kinds_built("llama.cpp")["kda"] == ["kimi_linear"]
    assert kinds_built("megatron-core")["kda"] == []
    assert "falcon_h1" in kinds_built("vllm")["parallel"]


def test_rules_are_declared_once_per_consumer() -> None:
    for consumer in CONSUMERS:
        declared = [rule.code for rule in PROFILES[consumer].rules if rule.code in FAMILY_CODES]
        assert declared == list(FAMILY_CODES), consumer
    for name, profile in PROFILES.items():
        if name not in CONSUMERS:
            assert not [rule for rule in profile.rules if rule.code in FAMILY_CODES], name
