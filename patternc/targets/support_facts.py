"""Which model families each serving engine, converter and trainer builds: one fact per consumer and family.

A consumer loads a config by its ``architectures`` entry (vLLM's registry, SGLang's ``EntryClass``,
llama.cpp's ``LLM_ARCH_*``, Megatron-Bridge's ``register_bridge(source=...)``), or, for Megatron-Core,
builds a model from its own layer kinds.  So a config of family F is judged by F's architecture: the
fact below says whether the consumer has code for it, and where that was read (repository, file and
commit).  A bare pattern and a ``nemotron_h`` config are still judged by the consumer's Nemotron-H
path (``patternc.targets.profiles``), whose rules model that path in detail.

Everything is keyed by strings (a family's ``model_type``, a kind's name), not by the registries:
a family or kind that is not (yet) registered in patternc still has its facts here, and a family
that has no fact (one registered at runtime) is judged as before, by the Nemotron-H rules.
``tests/core/test_support_facts.py`` checks that every fact names a commit, that every registered
family has a fact for every consumer, and that a config of each family gets its fact's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "CONSUMERS",
    "FACTS",
    "FAMILY_KINDS",
    "NEMOTRON_PATH",
    "NEW_KINDS",
    "Fact",
    "builders",
    "fact",
    "judged_by_family",
    "kinds_built",
]


@dataclass(frozen=True, slots=True)
class Fact:
    """Whether one consumer builds one family, and where that was read."""

    builds: bool
    what: str
    """What the consumer builds it as (its architecture strings or model class), or what it lacks."""
    source: str
    """``owner/repo path @ commit`` (a line or symbol may follow): where the fact was read."""
    note: str = ""
    """What else a user should know (a newer commit adds it, the MTP head is separate, …)."""


NEMOTRON_PATH = frozenset({"nemotron_h", "pattern"})
"""Spec sources judged by each profile's Nemotron-H rules: a ``nemotron_h`` config, and a bare pattern
(which builds as Nemotron-H)."""

NEW_KINDS: tuple[str, ...] = (
    "gated_deltanet",
    "dsa",
    "mla",
    "short_conv",
    "kda",
    "lightning",
    "mamba1",
    "parallel",
)
"""The layer kinds of issue 14's families (``parallel``: mixers that run side by side in one layer,
``[...]``), in the order the support table lists them."""

FAMILY_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "nemotron_h": ("mamba2", "attention", "mlp", "moe"),
        "bamba": ("mamba2", "attention", "mlp"),
        "granitemoehybrid": ("mamba2", "attention", "mlp", "moe"),
        "mamba2": ("mamba2",),
        "zamba2": ("mamba2", "attention", "mlp"),
        "jamba": ("mamba1", "attention", "mlp", "moe"),
        "qwen3_next": ("gated_deltanet", "attention", "mlp", "moe"),
        "qwen3_5": ("gated_deltanet", "attention", "mlp"),
        "qwen3_5_moe": ("gated_deltanet", "attention", "moe"),
        "olmo_hybrid": ("gated_deltanet", "attention", "mlp"),
        "deepseek_v3": ("mla", "mlp", "moe"),
        "deepseek_v32": ("dsa", "mlp", "moe"),
        "kimi_linear": ("kda", "mla", "mlp", "moe"),
        "bailing_hybrid": ("kda", "mla", "mlp", "moe"),
        "lfm2": ("short_conv", "attention", "mlp"),
        "lfm2_moe": ("short_conv", "attention", "mlp", "moe"),
        "falcon_h1": ("attention", "mamba2", "mlp", "parallel"),
        "minimax": ("lightning", "attention", "moe"),
    }
)
"""Each family's layer kinds by name (as transformers 5.24 builds it), for the kinds-by-consumer table.
A registered family's own ``KINDS`` must agree (tested)."""

CONSUMERS: tuple[str, ...] = ("megatron-core", "megatron-bridge", "vllm", "sglang", "llama.cpp")
"""The consumer profiles that have a fact per family, in ``--targets`` order."""

# --- sources ---------------------------------------------------------------------------------

_MCORE = "NVIDIA/Megatron-LM megatron/core/models/hybrid/hybrid_layer_allocation.py @ d98e8a64dd"
_MCORE_KINDS = f"{_MCORE} (Symbols.VALID_LAYERS: M G * D + - E)"
_BRIDGE = "NVIDIA-NeMo/Megatron-Bridge src/megatron/bridge/models/{} @ 067f987df0"
_BRIDGE_NONE = (
    "NVIDIA-NeMo/Megatron-Bridge src/megatron/bridge/models @ 067f987df0 (no register_bridge(source=...) for it)"
)
_VLLM_REGISTRY = "vllm-project/vllm vllm/model_executor/models/registry.py @ 0002bff0b6"
_SGLANG = "sgl-project/sglang python/sglang/srt/models/{} @ {}"
_LLAMA_ARCH = "ggml-org/llama.cpp src/llama-arch.cpp @ 00395eb285 (LLM_ARCH_NAMES)"


def _yes(what: str, source: str, note: str = "") -> Fact:
    return Fact(True, what, source, note)


def _no(what: str, source: str, note: str = "") -> Fact:
    return Fact(False, what, source, note)


_MEGATRON_CORE: dict[str, Fact] = {
    "nemotron_h": _yes("HybridModel `M * - E`", _MCORE_KINDS),
    "bamba": _yes("HybridModel `M * -`", _MCORE_KINDS),
    "granitemoehybrid": _yes("HybridModel `M * - E`", _MCORE_KINDS),
    "mamba2": _yes("HybridModel `M`", _MCORE_KINDS),
    "zamba2": _no(
        "no layer shared across depths",
        _MCORE_KINDS,
        "Zamba2's hybrid layers call transformer blocks shared across the stack; every HybridModel layer "
        "has its own weights",
    ),
    "jamba": _no("no Mamba-1 mixer", _MCORE_KINDS, "megatron/core/ssm builds only the Mamba2 MambaMixer"),
    "qwen3_next": _yes("HybridModel `G * - E`", _MCORE_KINDS),
    "qwen3_5": _yes("HybridModel `G * -`", _MCORE_KINDS),
    "qwen3_5_moe": _yes("HybridModel `G * E`", _MCORE_KINDS),
    "olmo_hybrid": _yes("HybridModel `G * -`", _MCORE_KINDS),
    "deepseek_v3": _yes("HybridModel `+ - E`", _MCORE_KINDS),
    "deepseek_v32": _yes("HybridModel `D - E`", _MCORE_KINDS),
    "kimi_linear": _no("no Kimi delta attention layer", _MCORE_KINDS),
    "bailing_hybrid": _no("no Kimi delta attention layer", _MCORE_KINDS),
    "lfm2": _no("no short-convolution layer", _MCORE_KINDS),
    "lfm2_moe": _no("no short-convolution layer", _MCORE_KINDS),
    "falcon_h1": _no(
        "no layer with parallel mixers",
        _MCORE_KINDS,
        "Megatron-Bridge builds Falcon-H1 with its own FalconH1Model (falcon_h1/modeling_falconh1), not HybridModel",
    ),
    "minimax": _no("no lightning-attention layer", _MCORE_KINDS),
}

_MEGATRON_BRIDGE: dict[str, Fact] = {
    "nemotron_h": _yes("NemotronHForCausalLM", _BRIDGE.format("nemotronh/nemotron_h_bridge.py:234")),
    "bamba": _no("BambaForCausalLM", _BRIDGE_NONE),
    "granitemoehybrid": _no("GraniteMoeHybridForCausalLM", _BRIDGE_NONE),
    "mamba2": _no("Mamba2ForCausalLM", _BRIDGE_NONE, "models/mamba has a Megatron provider, no HF bridge"),
    "zamba2": _no("Zamba2ForCausalLM", _BRIDGE_NONE),
    "jamba": _no("JambaForCausalLM", _BRIDGE_NONE),
    "qwen3_next": _yes("Qwen3NextForCausalLM -> GPTModel", _BRIDGE.format("qwen/qwen3_next_bridge.py:36")),
    "qwen3_5": _yes(
        "Qwen3_5ForCausalLM, Qwen3_5ForConditionalGeneration",
        _BRIDGE.format("qwen/qwen35_bridge.py:453, qwen_vl/qwen35_vl_bridge.py:284"),
    ),
    "qwen3_5_moe": _yes(
        "Qwen3_5MoeForCausalLM, Qwen3_5MoeForConditionalGeneration",
        _BRIDGE.format("qwen/qwen35_bridge.py:138, qwen_vl/qwen35_vl_bridge.py:145"),
    ),
    "olmo_hybrid": _no("OlmoHybridForCausalLM", _BRIDGE_NONE),
    "deepseek_v3": _yes("DeepseekV3ForCausalLM -> GPTModel (MLA)", _BRIDGE.format("deepseek/deepseek_v3_bridge.py:45")),
    "deepseek_v32": _no(
        "DeepseekV32ForCausalLM", _BRIDGE_NONE, "the DeepSeek bridges are V2, V3 and V4 (deepseek_v4_bridge.py)"
    ),
    "kimi_linear": _no("KimiLinearForCausalLM", _BRIDGE_NONE, "its Kimi bridges are K2, K2.5-VL and K3"),
    "bailing_hybrid": _no(
        "BailingMoeV3ForCausalLM, BailingHybridForCausalLM",
        _BRIDGE_NONE,
        "bailing/bailing_moe2_bridge.py bridges BailingMoeV2ForCausalLM only",
    ),
    "lfm2": _no("Lfm2ForCausalLM", _BRIDGE_NONE),
    "lfm2_moe": _no("Lfm2MoeForCausalLM", _BRIDGE_NONE),
    "falcon_h1": _yes(
        "FalconH1ForCausalLM -> FalconH1Model (the bridge's own)", _BRIDGE.format("falcon_h1/falconh1_bridge.py:37")
    ),
    "minimax": _no("MiniMaxForCausalLM", _BRIDGE_NONE, "minimax_m2 and minimax_m3 bridges only"),
}

_VLLM: dict[str, Fact] = {
    "nemotron_h": _yes("NemotronHForCausalLM", _VLLM_REGISTRY),
    "bamba": _yes("BambaForCausalLM", _VLLM_REGISTRY),
    "granitemoehybrid": _yes("GraniteMoeHybridForCausalLM", _VLLM_REGISTRY),
    "mamba2": _yes("Mamba2ForCausalLM", _VLLM_REGISTRY),
    "zamba2": _yes("Zamba2ForCausalLM", _VLLM_REGISTRY),
    "jamba": _yes("JambaForCausalLM", _VLLM_REGISTRY),
    "qwen3_next": _yes("Qwen3NextForCausalLM", _VLLM_REGISTRY, "its MTP head is a separate draft, Qwen3NextMTP"),
    "qwen3_5": _yes(
        "Qwen3_5ForConditionalGeneration (language model Qwen3_5ForCausalLM)",
        "vllm-project/vllm vllm/model_executor/models/qwen3_5.py @ 00def4f842",
        "the registry at 0002bff0b6 predates it; load_weights skips `mtp.`",
    ),
    "qwen3_5_moe": _yes(
        "Qwen3_5MoeForConditionalGeneration (language model Qwen3_5MoeForCausalLM)",
        "vllm-project/vllm vllm/model_executor/models/qwen3_5.py @ 00def4f842",
        "the registry at 0002bff0b6 predates it; load_weights skips `mtp.`",
    ),
    "olmo_hybrid": _yes(
        "OlmoHybridForCausalLM",
        "vllm-project/vllm vllm/model_executor/models/olmo_hybrid.py @ 055e47c280",
        "the registry at 0002bff0b6 predates it",
    ),
    "deepseek_v3": _yes("DeepseekV3ForCausalLM", _VLLM_REGISTRY, "MTP: DeepSeekMTPModel draft"),
    "deepseek_v32": _yes("DeepseekV32ForCausalLM (deepseek_v2.DeepseekV3ForCausalLM)", _VLLM_REGISTRY),
    "kimi_linear": _yes("KimiLinearForCausalLM", _VLLM_REGISTRY),
    "bailing_hybrid": _yes(
        "BailingMoeV3ForCausalLM",
        "vllm-project/vllm vllm/model_executor/models/bailing_moe_v3.py @ 055e47c280",
        "the architecture Ling-3.0 configs name; the registry at 0002bff0b6 predates it",
    ),
    "lfm2": _yes("Lfm2ForCausalLM", _VLLM_REGISTRY),
    "lfm2_moe": _yes("Lfm2MoeForCausalLM", _VLLM_REGISTRY),
    "falcon_h1": _yes("FalconH1ForCausalLM", _VLLM_REGISTRY),
    "minimax": _yes("MiniMaxForCausalLM, MiniMaxText01ForCausalLM (minimax_text_01)", _VLLM_REGISTRY),
}

_SGLANG_FACTS: dict[str, Fact] = {
    "nemotron_h": _yes("NemotronHForCausalLM", _SGLANG.format("nemotron_h.py", "02c60328e5"), "EntryClass"),
    "bamba": _yes("BambaForCausalLM", _SGLANG.format("bamba.py", "aa7f7d67d2"), "EntryClass"),
    "granitemoehybrid": _yes(
        "GraniteMoeHybridForCausalLM", _SGLANG.format("granitemoehybrid.py", "008b79d235"), "EntryClass"
    ),
    "mamba2": _yes("Mamba2ForCausalLM", _SGLANG.format("mamba2.py", "62daa562fb"), "EntryClass"),
    "zamba2": _no(
        "Zamba2ForCausalLM",
        "sgl-project/sglang python/sglang/srt/models @ 02c60328e5",
        "no zamba2.py and no EntryClass naming it",
    ),
    "jamba": _yes("JambaForCausalLM", _SGLANG.format("jamba.py", "091dfb11a5"), "EntryClass"),
    "qwen3_next": _yes("Qwen3NextForCausalLM", _SGLANG.format("qwen3_next.py", "0201bc8059"), "EntryClass"),
    "qwen3_5": _yes(
        "Qwen3_5ForConditionalGeneration", _SGLANG.format("qwen3_5.py", "005fa71189"), "EntryClass (multimodal wrapper)"
    ),
    "qwen3_5_moe": _yes(
        "Qwen3_5MoeForConditionalGeneration",
        _SGLANG.format("qwen3_5.py", "005fa71189"),
        "EntryClass (multimodal wrapper)",
    ),
    "olmo_hybrid": _yes("OlmoHybridForCausalLM", _SGLANG.format("olmo_hybrid.py", "801042dadf"), "EntryClass"),
    "deepseek_v3": _yes("DeepseekV3ForCausalLM", _SGLANG.format("deepseek_v2.py", "3e4a39ee73"), "EntryClass"),
    "deepseek_v32": _yes("DeepseekV32ForCausalLM", _SGLANG.format("deepseek_v2.py", "3e4a39ee73"), "EntryClass"),
    "kimi_linear": _yes("KimiLinearForCausalLM", _SGLANG.format("kimi_linear.py", "0220422fc0"), "EntryClass"),
    "bailing_hybrid": _yes(
        "BailingMoeV3ForCausalLM",
        _SGLANG.format("bailing_moe_v3.py", "4f8bb364b9"),
        "EntryClass; the architecture Ling-3.0 configs name",
    ),
    "lfm2": _yes("Lfm2ForCausalLM", _SGLANG.format("lfm2.py", "01897f3fe4"), "EntryClass"),
    "lfm2_moe": _yes("Lfm2MoeForCausalLM", _SGLANG.format("lfm2_moe.py", "01fec0786e"), "EntryClass"),
    "falcon_h1": _yes("FalconH1ForCausalLM", _SGLANG.format("falcon_h1.py", "008b79d235"), "EntryClass"),
    "minimax": _yes("MiniMaxText01ForCausalLM", _SGLANG.format("minimax_text_01.py", "0400545e9f"), "EntryClass"),
}

_LLAMA_CPP: dict[str, Fact] = {
    "nemotron_h": _yes("LLM_ARCH_NEMOTRON_H, LLM_ARCH_NEMOTRON_H_MOE", _LLAMA_ARCH),
    "bamba": _yes(
        "LLM_ARCH_GRANITE_HYBRID",
        _LLAMA_ARCH,
        'conversion/granite.py: @ModelBase.register("GraniteMoeHybridForCausalLM", "BambaForCausalLM")',
    ),
    "granitemoehybrid": _yes("LLM_ARCH_GRANITE_HYBRID", _LLAMA_ARCH),
    "mamba2": _yes("LLM_ARCH_MAMBA2", _LLAMA_ARCH),
    "zamba2": _no("no Zamba2 architecture", _LLAMA_ARCH),
    "jamba": _yes("LLM_ARCH_JAMBA", _LLAMA_ARCH),
    "qwen3_next": _yes("LLM_ARCH_QWEN3NEXT", _LLAMA_ARCH),
    "qwen3_5": _yes("LLM_ARCH_QWEN35", _LLAMA_ARCH),
    "qwen3_5_moe": _yes("LLM_ARCH_QWEN35MOE", _LLAMA_ARCH),
    "olmo_hybrid": _no("no OLMo Hybrid architecture", _LLAMA_ARCH, "only olmo, olmo2 and olmoe"),
    "deepseek_v3": _yes("LLM_ARCH_DEEPSEEK2", _LLAMA_ARCH),
    "deepseek_v32": _yes("LLM_ARCH_DEEPSEEK32", _LLAMA_ARCH),
    "kimi_linear": _yes("LLM_ARCH_KIMI_LINEAR", _LLAMA_ARCH),
    "bailing_hybrid": _no(
        "no Bailing hybrid architecture", _LLAMA_ARCH, "bailingmoe and bailingmoe2 are the attention-only Ling models"
    ),
    "lfm2": _yes("LLM_ARCH_LFM2", _LLAMA_ARCH),
    "lfm2_moe": _yes("LLM_ARCH_LFM2MOE", _LLAMA_ARCH),
    "falcon_h1": _yes("LLM_ARCH_FALCON_H1", _LLAMA_ARCH),
    "minimax": _no("no MiniMax-Text-01 architecture", _LLAMA_ARCH, "minimax-m2 is MiniMax-M2, a full-attention MoE"),
}

FACTS: Mapping[str, Mapping[str, Fact]] = MappingProxyType(
    {
        "megatron-core": MappingProxyType(_MEGATRON_CORE),
        "megatron-bridge": MappingProxyType(_MEGATRON_BRIDGE),
        "vllm": MappingProxyType(_VLLM),
        "sglang": MappingProxyType(_SGLANG_FACTS),
        "llama.cpp": MappingProxyType(_LLAMA_CPP),
    }
)
"""consumer profile -> family ``model_type`` -> fact."""


def fact(consumer: str, family: str) -> Fact | None:
    """The fact for ``family`` in ``consumer``, or None (an unknown consumer or family)."""
    return FACTS.get(consumer, {}).get(family)


def judged_by_family(consumer: str, source: str) -> bool:
    """Whether a spec read from ``source`` is judged by its family's fact, not the Nemotron-H rules."""
    return source not in NEMOTRON_PATH and fact(consumer, source) is not None


def builders(family: str) -> list[str]:
    """The consumers that build ``family``, in ``CONSUMERS`` order."""
    return [name for name in CONSUMERS if (found := fact(name, family)) is not None and found.builds]


def kinds_built(consumer: str) -> dict[str, list[str]]:
    """Each kind of ``NEW_KINDS`` -> the families through which ``consumer`` builds it (empty: none)."""
    table = FACTS.get(consumer, {})
    return {
        kind: [family for family, found in table.items() if found.builds and kind in FAMILY_KINDS.get(family, ())]
        for kind in NEW_KINDS
    }
