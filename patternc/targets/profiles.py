"""The target profiles: what each consumer of hybrid patterns loads and runs.

Sources: ``peer-survey.md`` sections (``§3.1`` = vLLM, …) for what was read from the peers'
code, ``verified`` for what ``tests/backends/transformers/test_targets_transformers.py`` runs against the installed
transformers, and ``wheels`` for what was read from released transformers wheels.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from patternc.ir import Pattern
from patternc.kinds import LayerKind, kinds
from patternc.targets.rules import (
    Profile,
    Rule,
    family_built,
    family_support,
    llama_cpp_activations,
    llama_cpp_no_attention,
    llama_cpp_setting,
    main_alphabet,
    megatron_activation,
    megatron_attention_mla,
    megatron_expressible,
    megatron_mamba,
    mtp_alphabet,
    mtp_depth,
    mtp_dropped,
    mtp_exact,
    mtp_export_depth,
    nemotron_path,
    requires_version,
    sglang_mlp_patch,
    single_ffn_kind,
)

if TYPE_CHECKING:
    from patternc.model import ModelSpec

_NEMOTRON_H_KINDS = (LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP, LayerKind.MOE)
"""The kinds of a Nemotron-H stack, which the serving engines and converters below build."""
_MTP_KINDS = (LayerKind.ATTENTION, LayerKind.MOE)
"""The MTP block the engines hard-code: attention, then MoE."""


def _has_moe(pattern: Pattern) -> bool:
    return pattern.has(LayerKind.MOE)


def _megatron_core() -> Profile:
    t = "Megatron-Core"
    return Profile(
        name="megatron-core",
        consumer="Megatron-Core HybridModel (main @ d98e8a64dd)",
        description="the reference grammar: `M G * D + - E`, `|` stages, `/` MTP depths",
        versions=(
            "`E` 2025-11-17 (#2259); `/` MTP 2026-02-04 (#2363); `|` 2026-02-26 (#3377); `G` 2026-03-23 (#3535); "
            "`D` 2026-04-17 (#3553); `+` 2026-07-23 (#4452); `dev` has no `+` [§1.1]",
        ),
        rules=(
            Rule(
                "P301",
                "alphabet `M G * D + - E` (V1/V2)",
                "§1.2, §1.5 V1",
                main_alphabet(
                    t,
                    [defn.kind for defn in kinds() if defn.megatron],
                    "Megatron raises: ValueError: In main pattern, '{symbol}' is not a valid layer symbol.",
                ),
            ),
            Rule(
                "P106",
                "`*` with `D`/`+` within one part (V4; never across parts, G1)",
                "§1.5 V4, §1.10 G1",
                megatron_attention_mla(t),
            ),
            Rule(
                "P307",
                "symbols newer than the first hybrid release",
                "§1.1",
                requires_version(
                    "Megatron-Core main",
                    {
                        LayerKind.MOE: "at or after 2025-11-17 (9a1c0d05c9, #2259)",
                        LayerKind.GATED_DELTANET: "at or after 2026-03-23 (8f7fbe7860, #3535)",
                        LayerKind.DSA: "at or after 2026-04-17 (a00e9443ca, #3553)",
                        LayerKind.MLA: "at or after 2026-07-23 (4464d1c197, #4452); the dev branch removed it",
                    },
                ),
            ),
            Rule(
                "P314",
                "one FFN activation for every MLP and expert: plain relu², gated SiLU or plain GELU",
                "megatron-core 0.19.2 argument_utils.core_transformer_config_from_args [code-read]",
                megatron_activation(t),
            ),
            Rule(
                "P315",
                "MambaMixer: d_conv 4, conv bias, no projection bias, SiLU, gated RMSNorm eps 1e-5 per group",
                "megatron-core 0.19.2 core/ssm/mamba_mixer.py asserts [code-read]",
                megatron_mamba(t),
            ),
            Rule(
                "P316",
                "one add_bias_linear (router included), sigmoid top-k always renormalised, no multipliers",
                "megatron-core 0.19.2 arguments.py, moe_utils.topk_routing_with_score_function [code-read]",
                megatron_expressible(t),
            ),
        ),
    )


def _vllm() -> Profile:
    t = "vLLM"
    return Profile(
        name="vllm",
        consumer="vLLM NemotronHForCausalLM + NemotronHMTP draft (@00b08dc4 / @01ca2773)",
        description="main `M - * E` by `hybrid_override_pattern[i]`; MTP draft of `*`/`E`, one depth",
        versions=("surveyed commits only [code-read]",),
        rules=(
            Rule(
                "P301",
                "main alphabet `M - * E`",
                "§3.1",
                main_alphabet(
                    t, _NEMOTRON_H_KINDS, "vLLM raises: ValueError: Unsupported layer type '{symbol}' at layer {index}"
                ),
            ),
            Rule(
                "P302",
                "MTP alphabet `*`/`E`",
                "§3.1 (nemotron_h_mtp.py)",
                mtp_alphabet(
                    t,
                    _MTP_KINDS,
                    "vLLM raises: NotImplementedError: Pattern char '{symbol}' in {pattern} not implemented",
                ),
            ),
            Rule(
                "P303",
                "MTP depth 1",
                "§3.1",
                mtp_depth(t, 1, "vLLM asserts: Only one MTP layer is supported for NemotronH-MTP"),
            ),
        ),
    )


def _sglang() -> Profile:
    t = "SGLang"
    return Profile(
        name="sglang",
        consumer="SGLang NemotronHForCausalLM + MTP (@02c60328)",
        description="main `M * - E`; MTP `*`/`E`, one depth; patches transformers' `_pattern_to_list`",
        versions=("surveyed commits only [code-read]",),
        rules=(
            Rule(
                "P301",
                "main alphabet `M * - E`",
                "§3.2",
                main_alphabet(
                    t,
                    _NEMOTRON_H_KINDS,
                    "SGLang raises: ValueError: Pattern must only contain characters 'M', '*', '-' or 'E'.",
                ),
            ),
            Rule(
                "P302",
                "MTP alphabet `*`/`E`",
                "§0.3, §3.2",
                mtp_alphabet(
                    t, _MTP_KINDS, "SGLang's MTP builds only attention and MoE layers (got '{symbol}' in {pattern})"
                ),
            ),
            Rule(
                "P303",
                "MTP depth 1",
                "§3.2",
                mtp_depth(t, 1, "SGLang asserts: Only one MTP layer is supported for NemotronH-MTP"),
            ),
            Rule("P310", "its transformers monkeypatch drops `-`", "§3.2", sglang_mlp_patch(t)),
        ),
    )


_LLAMA_CPP = "llama.cpp in llama-cpp-python 0.3.36 (gguf-py 0.19.0)"


def _mamba_inner_not_64(pattern: Pattern, spec: ModelSpec) -> str | None:
    if spec.mamba is None or not pattern.has(LayerKind.MAMBA2) or spec.mamba.inner_size % 64 == 0:
        return None
    return (
        f"the converter asserts that the Mamba inner size is a multiple of 64, and this model's is "
        f"{spec.mamba.num_heads} x {spec.mamba.head_dim} = {spec.mamba.inner_size}"
    )


def _no_conv_bias(pattern: Pattern, spec: ModelSpec) -> str | None:
    if spec.mamba is None or not pattern.has(LayerKind.MAMBA2) or spec.mamba.conv_bias:
        return None
    return (
        "its Mamba graph adds the convolution bias unconditionally, and this model has none "
        "(`use_conv_bias: false`): the first decode step crashes (segmentation fault)"
    )


def _mamba_proj_bias(pattern: Pattern, spec: ModelSpec) -> str | None:
    if spec.mamba is None or not pattern.has(LayerKind.MAMBA2) or not spec.mamba.proj_bias:
        return None
    return (
        "its loader has no place for the Mamba projection biases (`use_bias: true`): the GGUF holds "
        "tensors it does not expect and loading fails"
    )


def _vocab_not_8(pattern: Pattern, spec: ModelSpec) -> str | None:
    if spec.vocab_size % 8 == 0:
        return None
    padded = -(spec.vocab_size // -8) * 8
    return (
        f"the converter pads the vocabulary to a multiple of 8 ({spec.vocab_size} -> {padded} tokens) but "
        "not the embedding matrix, so loading fails on its shape"
    )


def _llama_cpp() -> Profile:
    t = "llama.cpp"
    return Profile(
        name="llama.cpp",
        consumer="llama.cpp's Nemotron-H path: convert_hf_to_gguf.py (conversion/nemotron.py) and "
        "LLM_ARCH_NEMOTRON_H[_MOE] (src/models/nemotron-h.cpp)",
        description="pattern stored implicitly: recurrent iff n_head_kv == 0 and n_ff == 0; MTP only `*E`, depth 1; "
        "`patternc build --target llama.cpp` writes the directory its converter reads",
        versions=(
            f"{_LLAMA_CPP}: dense, MoE and MTP directories from `build --target llama.cpp` convert and run, "
            "logits within 1.4e-5 of the torch backend [verified]",
            "the converter pins transformers 4.57.6; under transformers >= 5.3 it reads configs through "
            "NemotronHConfig, whose MoE defaults turn every dense model into nemotron_h_moe [verified]",
            "dt is not clamped at `time_step_min` (transformers and patternc clamp it) [code-read, verified]",
        ),
        rules=(
            Rule(
                "P301",
                "alphabet `M * - E` (per-layer head_count_kv / feed_forward_length arrays)",
                "§4",
                main_alphabet(t, _NEMOTRON_H_KINDS, "GGUF has no per-layer field that encodes {symbol}"),
            ),
            Rule(
                "P309",
                "one FFN kind: NEMOTRON_H_MOE counts only `E` as FFN, NEMOTRON_H only `-`",
                "§4",
                single_ffn_kind(
                    t,
                    "the converter picks the architecture from `num_experts_per_tok`, not the pattern; layers of the "
                    "other kind get n_head_kv = 0 and n_ff = 0 and load as Mamba (recurrent)",
                ),
            ),
            Rule(
                "P317",
                "no `*` layer: the KV cache has no buffer and the first decode step aborts the process",
                f"verified {_LLAMA_CPP}: `M-M-`, `MEME`",
                llama_cpp_no_attention(
                    t, "llama.cpp aborts (SIGABRT): ggml-backend.cpp: GGML_ASSERT(buffer) failed, at the first decode"
                ),
            ),
            Rule(
                "P318",
                "relu² MLPs and experts, SiLU Mamba: no activation key is read (needs a config)",
                f"src/models/nemotron-h.cpp; verified {_LLAMA_CPP}",
                llama_cpp_activations(t),
            ),
            Rule(
                "P319",
                "Mamba inner size a multiple of 64 (needs a config)",
                "conversion/granite.py GraniteHybridModel.set_gguf_parameters",
                llama_cpp_setting(
                    t,
                    _mamba_inner_not_64,
                    "choose mamba_num_heads x mamba_head_dim as a multiple of 64",
                    "convert_hf_to_gguf.py raises: AssertionError: SSM inner size … not a multiple of head dim 64",
                ),
            ),
            Rule(
                "P319",
                "Mamba convolution bias present (needs a config)",
                f"src/models/mamba-base.cpp; verified {_LLAMA_CPP}",
                llama_cpp_setting(
                    t,
                    _no_conv_bias,
                    "llama.cpp runs Nemotron-H only with `use_conv_bias: true`",
                    "verified: the process dies with SIGSEGV in the first decode (ggml_add with a missing bias)",
                ),
            ),
            Rule(
                "P319",
                "no Mamba projection biases (needs a config)",
                f"src/models/nemotron-h.cpp; verified {_LLAMA_CPP}",
                llama_cpp_setting(
                    t,
                    _mamba_proj_bias,
                    "llama.cpp runs Nemotron-H only with `use_bias: false`",
                    "verified: llama_model_load: error loading model: done_getting_tensors: wrong number of tensors",
                ),
            ),
            Rule(
                "P319",
                "vocab_size a multiple of 8 (needs a config)",
                f"conversion/nemotron.py NemotronHModel.set_vocab; verified {_LLAMA_CPP}",
                llama_cpp_setting(
                    t,
                    _vocab_not_8,
                    "pad vocab_size (and the embedding and head rows) to a multiple of 8",
                    "verified: check_tensor_dims: tensor 'token_embd.weight' has wrong shape",
                ),
            ),
            Rule(
                "P304",
                "MTP exactly `*E`",
                "§4",
                mtp_exact(t, _MTP_KINDS, "the converter hard-codes mtp.layers.0 = attention, mtp.layers.1 = MoE"),
            ),
            Rule(
                "P303",
                "MTP depth 1",
                "§4",
                mtp_depth(
                    t, 1, "llama.cpp asserts: NemotronH MTP conversion currently supports num_nextn_predict_layers == 1"
                ),
            ),
            Rule(
                "P305",
                "MTP converted only for MoE models",
                "§4",
                mtp_dropped(
                    t,
                    "the converter writes MTP only for NEMOTRON_H_MOE (a pattern with `E`)",
                    only_if=lambda p: not _has_moe(p),
                ),
            ),
        ),
    )


def _megatron_bridge() -> Profile:
    t = "Megatron-Bridge"
    return Profile(
        name="megatron-bridge",
        consumer="Megatron-Bridge NemotronHBridge.megatron_to_hf_config (@067f987df0)",
        description="HF export: strips `|`, splits MTP, alphabet `M * - E` for main and MTP",
        versions=("surveyed commit 067f987df0 [code-read]; #5946 fixed after it by PR #5948",),
        rules=(
            Rule(
                "P301",
                "main alphabet `M * - E`",
                "§2.1",
                main_alphabet(
                    t,
                    _NEMOTRON_H_KINDS,
                    "Megatron-Bridge raises: ValueError: Unknown layer type characters in "
                    "hybrid_override_pattern: {{'{symbol}'}}. Expected: M (mamba), * (attention), E (moe), - (mlp).",
                ),
            ),
            Rule(
                "P302",
                "MTP alphabet `M * - E`",
                "§2.1",
                mtp_alphabet(
                    t,
                    _NEMOTRON_H_KINDS,
                    "Megatron-Bridge raises: ValueError: Unknown layer type characters in "
                    "mtp_hybrid_override_pattern: {{'{symbol}'}}. "
                    "Expected: M (mamba), * (attention), E (moe), - (mlp).",
                ),
            ),
            Rule("P312", "writes num_nextn_predict_layers = logical depth (#5946)", "§2.1, §1.8", mtp_export_depth(t)),
        ),
    )


_FAMILY_SOURCE = "patternc/targets/support_facts.py: repository, file and commit per family (table below)"


def _with_families(profile: Profile, target: str, *, nemotron_only: bool) -> Profile:
    """``profile`` that judges a config of another family by that family's architecture (P320/P321).

    ``nemotron_only``: the profile's own rules model the consumer's Nemotron-H path, so they apply only
    to bare patterns, ``nemotron_h`` configs and families without a fact.  Megatron-Core's rules are its
    HybridModel's own (and ``build --target megatron`` reads them), so they apply to every config.
    """
    rules = profile.rules
    if nemotron_only:
        rules = tuple(replace(rule, check=nemotron_path(profile.name, rule.check)) for rule in rules)
    return replace(
        profile,
        rules=(
            *rules,
            Rule(
                "P320",
                "a config of another family: no code for its architecture",
                _FAMILY_SOURCE,
                family_support(target, profile.name),
            ),
            Rule(
                "P321",
                "a config of another family: built by its own architecture (the fact's source)",
                _FAMILY_SOURCE,
                family_built(target, profile.name),
            ),
        ),
    )


def build_profiles() -> dict[str, Profile]:
    from patternc import families

    profiles = [
        *(family.profile() for family in families.builtin() if family.profile is not None),
        _with_families(_megatron_core(), "Megatron-Core", nemotron_only=False),
        _with_families(_megatron_bridge(), "Megatron-Bridge", nemotron_only=True),
        _with_families(_vllm(), "vLLM", nemotron_only=True),
        _with_families(_sglang(), "SGLang", nemotron_only=True),
        _with_families(_llama_cpp(), "llama.cpp", nemotron_only=True),
    ]
    return {p.name: p for p in profiles}
