"""Target profiles: one failing and one passing case per rule, the fixture rows, the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from patternc.api import analyze, parse
from patternc.codes import BY_CODE, Severity
from patternc.ir import Pattern
from patternc.model import MambaSpec, ModelSpec, NormSpec
from patternc.targets import PROFILES, check_target, first_reason, portability, render_table, resolve, verdict
from patternc.targets.support_facts import CONSUMERS

HUB = Path(__file__).parents[1] / "fixtures" / "hub"
NANO_30B = json.loads((HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16" / "config.json").read_text())[
    "hybrid_override_pattern"
]
NANO_30B_MTP = NANO_30B + "/*E"
DENSE_8B = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"


def codes(target: str, text: str, spec: ModelSpec | None = None) -> list[str]:
    return [d.code for d in check_target(target, parse(text), spec)]


# --- one failing and one passing case per rule (target, code, failing, passing) ----------------

CASES = [
    ("transformers-nemotron_h", "P301", "M-G*-", "M-E*-"),
    ("transformers-nemotron_h", "P302", "M*E/*G", "M*E/M-"),
    ("transformers-nemotron_h", "P306", "M-M-E", "M-M*E"),
    ("transformers-nemotron_h", "P305", "M*E/*E", "M*E"),
    ("transformers-nemotron_h", "P307", "M-M*-", "MEM*E"),
    ("transformers-bamba", "P301", "M-*E", "M-*-"),
    ("transformers-bamba", "P308", "M-MM*-", "M-M-*-"),
    ("transformers-bamba", "P306", "M-M-", "M-*-"),
    ("transformers-bamba", "P305", "M-*-/*E", "M-*-"),
    ("transformers-granitemoehybrid", "P301", "MEG-", "ME*E"),
    ("transformers-granitemoehybrid", "P308", "MEM*E", "ME*E"),
    ("transformers-granitemoehybrid", "P309", "ME*-", "M-*-"),
    ("transformers-granitemoehybrid", "P306", "MEME", "ME*E"),
    ("transformers-granitemoehybrid", "P305", "ME*E/*E", "ME*E"),
    ("transformers-mamba2", "P301", "MM*", "MMM"),
    ("transformers-mamba2", "P305", "MMM/M", "MMM"),
    ("megatron-core", "P106", "MDM*", "MDMD"),
    ("megatron-core", "P307", "M+M+", "M*M*"),
    ("megatron-bridge", "P301", "MGM*", "M-M*"),
    ("megatron-bridge", "P302", "MEM*E/*G", "MEM*E/*E"),
    ("megatron-bridge", "P312", "MEM*E/*E/*E", "MEM*E/*E"),
    ("vllm", "P301", "MGM*", "M-M*"),
    ("vllm", "P302", "M*M*/MM", "M*M*/*E"),
    ("vllm", "P303", "MEM*E/*E/*E", "MEM*E/*E"),
    ("sglang", "P301", "MGM*", "M-M*"),
    ("sglang", "P302", "MEM*E/-E", "MEM*E/*E"),
    ("sglang", "P303", "MEM*E/*E/*E", "MEM*E/*E"),
    ("sglang", "P310", "M-M*-", "MEM*E"),
    ("llama.cpp", "P301", "MGM*-", "MMM*-"),
    ("llama.cpp", "P309", "M-M*E", "MEM*E"),
    ("llama.cpp", "P304", "MEM*E/E*", "MEM*E/*E"),
    ("llama.cpp", "P303", "MEM*E/*E/*E", "MEM*E/*E"),
    ("llama.cpp", "P305", "M-M*-/*E", "MEM*E/*E"),
    ("llama.cpp", "P317", "M-M-E", "M-M*E"),
]


@pytest.mark.parametrize(("target", "code", "failing", "passing"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_rule(target: str, code: str, failing: str, passing: str) -> None:
    # the Megatron P106 case is refused by patternc's own front end too; build the IR without it
    pattern = _unchecked(failing) if code == "P106" else parse(failing)
    found = [d for d in check_target(target, pattern) if d.code == code]
    assert len(found) == 1, check_target(target, pattern)
    assert found[0].severity is BY_CODE[code].severity
    assert code not in codes(target, passing)


def test_every_rule_of_every_profile_has_a_case() -> None:
    covered = {(target, code) for target, code, _, _ in CASES} | {
        ("transformers-bamba", "P311"),
        ("transformers-granitemoehybrid", "P311"),
        ("transformers-mamba2", "P311"),
        ("megatron-core", "P301"),  # see test_megatron_alphabet_is_patterncs
        ("megatron-core", "P314"),  # P314-P316: see test_megatron_hyperparameter_rules
        ("megatron-core", "P315"),
        ("megatron-core", "P316"),
        ("llama.cpp", "P318"),  # P318-P319 need a config: see tests/backends/transformers/test_llamacpp.py
        ("llama.cpp", "P319"),
        # P320-P321 judge configs of other families: see tests/core/test_support_facts.py
        *((consumer, code) for consumer in CONSUMERS for code in ("P320", "P321")),
    }
    declared = {(name, rule.code) for name, profile in PROFILES.items() for rule in profile.rules}
    assert declared == covered


def test_every_p3_code_is_used_and_documented() -> None:
    used = {rule.code for profile in PROFILES.values() for rule in profile.rules} | {"P313"}
    p3 = {code for code in BY_CODE if code.startswith("P3")}
    assert p3 <= used
    explain = Path(__file__).parents[2] / "patternc" / "explain"
    for code in p3:
        text = (explain / f"{code}.md").read_text()
        assert all(h in text for h in ("## What it means", "## Why", "## Use instead"))
        assert BY_CODE[code].example[:2] == ("check", "--target")


def _unchecked(text: str) -> Pattern:
    from patternc.ir import make_pattern

    main, _, mtp = text.partition("/")
    return make_pattern(main, mtp=mtp, depths=1 if mtp else 0)


def test_megatron_checks_each_part_alone() -> None:
    """G1: Megatron accepts `*` in main with `D` in MTP; the profile says what Megatron does."""
    assert "P106" not in codes_unchecked("megatron-core", "M*M*/MD")
    assert "P106" in codes_unchecked("megatron-core", "M*M*/*D")


def test_megatron_core_builds_its_whole_alphabet_and_refuses_the_rest() -> None:
    """Megatron-Core main builds every symbol of its own alphabet (the kind table's ``megatron``
    flag); a kind outside it (LFM2's short convolution `C`) is P301, never passed silently."""
    from patternc.kinds import BUILTIN

    megatron = "".join(info.symbol for info in BUILTIN if info.megatron)
    assert "P301" not in codes_unchecked("megatron-core", megatron)
    for info in BUILTIN:
        if not info.megatron:
            assert "P301" in codes_unchecked("megatron-core", "M-" + info.symbol), info.symbol


def codes_unchecked(target: str, text: str) -> list[str]:
    return [d.code for d in check_target(target, _unchecked(text))]


# --- spec rules ----------------------------------------------------------------------------


def _spec(pattern: str, hidden: int, heads: int, head_dim: int) -> ModelSpec:
    mamba = MambaSpec(
        num_heads=heads, head_dim=head_dim, state_size=128, n_groups=8, conv_kernel=4, norm_group_size=512
    )
    return ModelSpec(
        source="nemotron_h",
        pattern=parse(pattern),
        hidden_size=hidden,
        vocab_size=128,
        norm=NormSpec(eps=1e-5),
        mamba=mamba,
    )


@pytest.mark.parametrize("target", ["transformers-bamba", "transformers-granitemoehybrid", "transformers-mamba2"])
def test_p311_mamba_inner_size(target: str) -> None:
    nano = _spec("MMMM", 2688, 64, 64)  # Nemotron-3-Nano-30B: 4096 is no multiple of 2688
    h8b = _spec("MMMM", 4096, 128, 64)  # Nemotron-H-8B: 8192 = 2 x 4096
    assert "P311" in codes(target, "MMMM", nano)
    assert "P311" not in codes(target, "MMMM", h8b)
    assert "P311" not in codes(target, "MMMM")  # needs a spec


# --- the fixture rows --------------------------------------------------------------


@pytest.mark.parametrize("text", [NANO_30B, NANO_30B_MTP])
def test_moe_fixture_loads_where_the_survey_says(text: str) -> None:
    table = portability(parse(text))
    for target in ("transformers-nemotron_h", "vllm", "sglang", "llama.cpp", "megatron-core", "megatron-bridge"):
        assert verdict(table[target]) == "ok", (target, table[target])
    bamba = table["transformers-bamba"]
    assert verdict(bamba) == "no"
    assert [d.code for d in bamba if d.severity is Severity.ERROR] == ["P301", "P308"]
    errors = [d for d in bamba if d.severity is Severity.ERROR]
    assert "`E`" in errors[0].message and "layer 4 has no FFN" in errors[1].message  # MEMEM*: `M` then `*`
    assert verdict(table["transformers-granitemoehybrid"]) == "no"
    assert verdict(table["transformers-mamba2"]) == "no"


def test_moe_fixture_mtp_is_a_warning_in_transformers_only() -> None:
    table = portability(parse(NANO_30B_MTP))
    assert [d.code for d in table["transformers-nemotron_h"]] == ["P305"]
    assert table["vllm"] == [] and table["llama.cpp"] == []


def test_dense_fixtures() -> None:
    for text in (
        DENSE_8B,
        json.loads((HUB / "NVIDIA-Nemotron-Nano-9B-v2" / "config.json").read_text())["hybrid_override_pattern"],
    ):
        table = portability(parse(text))
        assert [d.code for d in table["transformers-nemotron_h"]] == ["P307"]
        assert verdict(table["llama.cpp"]) == "ok" and verdict(table["vllm"]) == "ok"
        assert [d.code for d in table["transformers-bamba"]] == ["P308"]  # `M*` and `MM` cannot pair


# --- API, table, spans, import weight ------------------------------------------------------


def test_spans_point_at_the_offending_layer() -> None:
    analysis = analyze("M-M*-\n/*G")
    assert analysis.pattern is not None
    (found,) = check_target("vllm", analysis.pattern, source_map=analysis.source_map)
    assert found.code == "P302" and found.span is not None and analysis.source.text[found.span.start] == "G"


def test_unknown_target_and_aliases() -> None:
    (found,) = check_target("vllmm", parse("M*"))
    assert found.code == "P313" and found.help == "did you mean `vllm`?"
    assert resolve("GGUF") == "llama.cpp" and resolve("hf") == "transformers-nemotron_h"


def test_table_is_deterministic() -> None:
    table = render_table(portability(parse(NANO_30B_MTP)))
    assert table == render_table(portability(parse(NANO_30B_MTP)))
    lines = table.splitlines()
    assert lines[0].split() == ["target", "verdict", "first", "reason"]
    assert [line.split()[0] for line in lines[1:]] == list(PROFILES)
    assert "transformers-bamba             no       [P301]" in table
    clipped = render_table(portability(parse(NANO_30B_MTP)), width=60)
    assert all(len(line) <= 60 for line in clipped.splitlines())
    assert first_reason([]) is None


def test_profiles_cite_sources() -> None:
    for profile in PROFILES.values():
        assert profile.versions and profile.rules
        for rule in profile.rules:
            assert rule.source and rule.summary


def test_import_is_light() -> None:
    code = "import sys, patternc.targets; print(sorted({'torch', 'transformers', 'networkx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


MEGATRON_HYPERPARAMETERS = [
    ({"mlp_hidden_act": "silu"}, "P314"),  # plain SiLU: Megatron's SiLU is gated (--swiglu)
    ({"hybrid_override_pattern": "MEM-E", "mlp_hidden_act": "gelu_pytorch_tanh"}, "P314"),
    ({"conv_kernel": 2}, "P315"),
    ({"use_conv_bias": False}, "P315"),
    ({"layer_norm_epsilon": 1e-6}, "P315"),  # MambaMixer's gated RMSNorm fixes 1e-5
    ({"mlp_bias": True}, "P316"),  # MLP biased, attention output not: one add_bias_linear
    ({"hybrid_override_pattern": "MEM*E", "norm_topk_prob": False}, "P316"),
    ({"hybrid_override_pattern": "MEM*E", "mlp_bias": True, "attention_bias": True}, "P316"),  # router bias
]


@pytest.mark.parametrize(("overrides", "code"), MEGATRON_HYPERPARAMETERS)
def test_megatron_hyperparameter_rules(overrides: dict[str, object], code: str) -> None:
    """P314-P316 need the spec: what Megatron-Core's one TransformerConfig cannot express."""
    from patternc.config import read_config

    base = {"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*-"}
    for config, expected in ((base, []), ({**base, **overrides}, [code])):
        spec = read_config(config).spec
        assert spec is not None
        found = [d.code for d in check_target("megatron-core", spec.pattern, spec) if d.severity is Severity.ERROR]
        assert found == expected, check_target("megatron-core", spec.pattern, spec)
