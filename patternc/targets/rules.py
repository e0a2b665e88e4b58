"""Target rules: one function per reason a consumer refuses (or mis-handles) a pattern.

A rule takes the pattern, the model spec (or None) and the source map (or None), and yields
diagnostics.  Parameterised rules (an alphabet, a depth) are built by small factories; each
rule emits exactly one code, and at most one diagnostic per call ("one diagnostic per reason").
Nothing here imports torch or transformers: the facts were established by running them
(``tests/backends/transformers/test_targets_transformers.py``) and by reading the peers' code (peer-survey.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patternc.diagnostics import Diagnostic, Label, diag
from patternc.ir import Pattern
from patternc.kinds import BY_SYMBOL, SYMBOL_ORDER, LayerKind, alphabet_of, symbol_of
from patternc.model import ModelSpec
from patternc.source import Span
from patternc.symbols import describe
from patternc.targets.support_facts import Fact, builders, fact, judged_by_family

if TYPE_CHECKING:
    from patternc.lower import SourceMap

RuleFn = Callable[[Pattern, "ModelSpec | None", "SourceMap | None"], Iterable[Diagnostic]]

KindSet = Collection[str]
"""Layer kinds a target builds, by name (``LayerKind`` members for the built-in ones).  A plain string
is read as the alphabet its symbols spell: the spelling the family modules still use (the source
scan in ``tests/core/test_kinds.py`` lists them while they do)."""

_MAMBA = symbol_of(LayerKind.MAMBA2)
_ATTENTION = symbol_of(LayerKind.ATTENTION)
_MLP = symbol_of(LayerKind.MLP)
_MOE = symbol_of(LayerKind.MOE)
"""The symbols of the kinds the rules below name, spelled by the kind table."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One reason a target refuses a pattern: its code, where the fact comes from, the check."""

    code: str
    summary: str
    """One line for docs/targets.md: what the consumer does."""
    source: str
    """Where the fact comes from: a peer-survey section, or ``verified: …`` for facts we ran."""
    check: RuleFn


@dataclass(frozen=True, slots=True)
class Profile:
    """One consumer of hybrid patterns and the rules it enforces (each with its source)."""

    name: str
    """Stable key for ``--target`` (``transformers-nemotron_h``, ``vllm``, …)."""
    consumer: str
    """The exact code path, with the version or commit surveyed."""
    description: str
    versions: tuple[str, ...]
    """Version facts: which release accepts which kind, and what was verified where."""
    rules: tuple[Rule, ...]


# --- helpers -------------------------------------------------------------------------------


def _main_span(source_map: SourceMap | None, index: int) -> Span | None:
    return source_map.layer_span(index) if source_map is not None else None


def _mtp_span(source_map: SourceMap | None, index: int) -> Span | None:
    return source_map.mtp_span(index) if source_map is not None else None


def _ticks(symbols: Iterable[str]) -> str:
    return ", ".join(f"`{s}`" for s in sorted(set(symbols), key=lambda s: SYMBOL_ORDER.get(s, 99)))


def _first_outside(flat: str, alphabet: str) -> int | None:
    allowed = set(alphabet)
    return next((i for i, s in enumerate(flat) if s not in allowed), None)


def _kind_names(chosen: KindSet) -> list[str]:
    """``chosen`` as kind names (an alphabet string's symbols looked up in the kind table)."""
    return [BY_SYMBOL[symbol].kind for symbol in chosen] if isinstance(chosen, str) else list(chosen)


def _alphabet(chosen: KindSet) -> str:
    """The symbols of ``chosen``, read when a rule runs (so kinds registered later are outside the set)."""
    return alphabet_of(_kind_names(chosen))


# --- alphabet ------------------------------------------------------------------------------


def main_alphabet(target: str, kinds: KindSet, failure: str) -> RuleFn:
    """P301: every main layer's kind is one the target builds; ``failure`` is what it raises."""
    _alphabet(kinds)

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        alphabet = _alphabet(kinds)
        first = _first_outside(pattern.flat, alphabet)
        if first is None:
            return
        bad = [s for s in pattern.flat if s not in alphabet]
        symbol = pattern.flat[first]
        yield diag(
            "P301",
            f"{target} cannot build {_ticks(bad)} layers ({len(bad)} in the main stack; "
            f"first: {describe(symbol)} at layer {first})",
            _main_span(source_map, first),
            label=f"not built by {target}",
            help=f"{target} builds only {_ticks(alphabet)}",
            notes=[failure.format(symbol=symbol, index=first)],
        )

    return check


def mtp_alphabet(target: str, kinds: KindSet, failure: str) -> RuleFn:
    """P302: every layer of the MTP block is of a kind the target's MTP module builds."""
    _alphabet(kinds)

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if pattern.mtp is None:
            return
        alphabet = _alphabet(kinds)
        flat = pattern.mtp.flat
        first = _first_outside(flat, alphabet)
        if first is None:
            return
        symbol = flat[first]
        yield diag(
            "P302",
            f"{target}'s multi-token-prediction module cannot build {_ticks(s for s in flat if s not in alphabet)} "
            f"layers (MTP is `{flat}`)",
            _mtp_span(source_map, first),
            label=f"not built in {target}'s MTP",
            help=f"{target}'s MTP block accepts only {_ticks(alphabet)}",
            notes=[failure.format(symbol=symbol, pattern=flat)],
        )

    return check


# --- MTP shape -----------------------------------------------------------------------------


def mtp_depth(target: str, max_depth: int, failure: str) -> RuleFn:
    """P303: the number of MTP depths the target supports."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if pattern.mtp is None or pattern.mtp.depths <= max_depth:
            return
        yield diag(
            "P303",
            f"{target} supports {max_depth} multi-token-prediction depth, "
            f"this pattern has {pattern.mtp.depths} (`num_nextn_predict_layers` = {pattern.mtp.depths})",
            _mtp_span(source_map, 0),
            label=f"{pattern.mtp.depths} MTP depths",
            help=f"keep one `/part`; {target} applies its single MTP block repeatedly when drafting",
            notes=[failure],
        )

    return check


def mtp_exact(target: str, kinds: Sequence[str], failure: str) -> RuleFn:
    """P304: the target hard-codes the MTP block's layers (``kinds``, in order; a string: their symbols)."""
    layout = "".join(symbol_of(kind) for kind in _kind_names(kinds))

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if pattern.mtp is None or pattern.mtp.flat == layout:
            return
        yield diag(
            "P304",
            f"{target} hard-codes the multi-token-prediction block as `{layout}`; this one is `{pattern.mtp.flat}`",
            _mtp_span(source_map, 0),
            label=f"not `{layout}`",
            help=f"use the MTP block `{layout}`, or convert without MTP",
            notes=[failure],
        )

    return check


def mtp_dropped(target: str, why: str, only_if: Callable[[Pattern], bool] | None = None) -> RuleFn:
    """P305: the target loads the model but never builds its MTP block."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if pattern.mtp is None or (only_if is not None and not only_if(pattern)):
            return
        yield diag(
            "P305",
            f"{target} does not build the multi-token-prediction block `{pattern.mtp.flat}`: {why}",
            _mtp_span(source_map, 0),
            label="MTP dropped",
            help="the main model loads and runs; speculative decoding with this MTP head is unavailable",
        )

    return check


def mtp_export_depth(target: str) -> RuleFn:
    """P312: Megatron-Bridge exports ``num_nextn_predict_layers`` as the logical depth (#5946)."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if pattern.mtp is None or pattern.mtp.depths <= 1:
            return
        depths = pattern.mtp.depths
        yield diag(
            "P312",
            f"{target} writes `num_nextn_predict_layers: {depths}` for {depths} MTP depths; "
            "with a repeated MTP layer (the default) the checkpoint has 1 physical depth",
            _mtp_span(source_map, 0),
            label=f"{depths} depths",
            help="set `num_nextn_predict_layers` to 1 in the exported config when the MTP layer is repeated; "
            "vLLM and SGLang refuse any other value",
            notes=["Megatron-Bridge issue #5946, fixed by PR #5948 (2026-09-03) after the surveyed commit 067f987df0"],
        )

    return check


# --- structure -----------------------------------------------------------------------------


def needs_attention_for_cache(target: str, failure: str) -> RuleFn:
    """P306: the target's cache answers ``get_seq_length`` only from an attention layer."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if pattern.num_layers == 0 or _ATTENTION in pattern.flat:
            return
        only_m = set(pattern.flat) == {_MAMBA}
        yield diag(
            "P306",
            f"{target} raises in forward whenever its cache is on (the default, and always in `generate`): "
            "the pattern has no attention `*` layer",
            _main_span(source_map, 0),
            label="no `*` layer",
            help="a pure-Mamba stack is exactly transformers' Mamba2ForCausalLM (target transformers-mamba2)"
            if only_m
            else "add an attention `*` layer, or run with `use_cache=False` (no incremental decoding)",
            notes=[failure],
        )

    return check


def mixer_ffn_pairs(target: str, ffn: KindSet, layer: str) -> RuleFn:
    """P308: the target's every layer is one sequence mixer followed by one FFN (of a kind in ``ffn``)."""
    _alphabet(ffn)

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        flat = pattern.flat
        offences: list[int] = []
        index = 0
        while index < len(flat):
            symbol = flat[index]
            mixer = BY_SYMBOL[symbol].role.mixes_tokens
            # any FFN pairs here; an FFN kind the target lacks is P301's reason, not this one's
            if mixer and index + 1 < len(flat) and not BY_SYMBOL[flat[index + 1]].role.mixes_tokens:
                index += 2
                continue
            offences.append(index)
            index += 1
        if not offences:
            return
        first = offences[0]
        symbol = flat[first]
        what = (
            f"{describe(symbol)} at layer {first} has no FFN after it"
            if BY_SYMBOL[symbol].role.mixes_tokens
            else f"{describe(symbol)} at layer {first} has no sequence mixer before it"
        )
        yield diag(
            "P308",
            f"{target} pairs every sequence mixer with one FFN ({layer}); {what} "
            f"({len(offences)} layer{'s' if len(offences) != 1 else ''} cannot be paired)",
            _main_span(source_map, first),
            label="cannot be paired",
            help=f"{target} can express only patterns of the form (mixer FFN)+ with FFN in {_ticks(_alphabet(ffn))}; "
            "patternc's torch backend builds any pattern",
        )

    return check


def single_ffn_kind(target: str, why: str) -> RuleFn:
    """P309: the target builds one FFN kind per model (all `-` or all `E`)."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        flat = pattern.flat
        if _MLP not in flat or _MOE not in flat:
            return
        first_mlp, first_moe = flat.index(_MLP), flat.index(_MOE)
        yield diag(
            "P309",
            f"{target} builds one FFN kind per model, and this pattern has both MLP `-` ({flat.count(_MLP)}) "
            f"and MoE `E` ({flat.count(_MOE)}) layers",
            _main_span(source_map, max(first_mlp, first_moe)),
            label="second FFN kind",
            help="use only `-` or only `E`",
            secondary=[
                Label(s, "first of the other kind") for s in [_main_span(source_map, min(first_mlp, first_moe))] if s
            ],
            notes=[why],
        )

    return check


def megatron_attention_mla(target: str) -> RuleFn:
    """P106 (Megatron's own V4): `*` with `D`/`+` *within one part*; Megatron never compares parts (G1)."""
    mla = {info.symbol for info in BY_SYMBOL.values() if info.mla_family}

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        parts = [("main", pattern.flat)] + ([("MTP", pattern.mtp.flat)] if pattern.mtp is not None else [])
        for name, flat in parts:
            if _ATTENTION in flat and mla & set(flat):
                index = next(i for i, s in enumerate(flat) if s in mla)
                span = _main_span(source_map, index) if name == "main" else _mtp_span(source_map, index)
                yield diag(
                    "P106",
                    f"{target} refuses `*` together with MLA-family attention in the {name} part",
                    span,
                    label=f"{BY_SYMBOL[flat[index]].description} here",
                    help="use `*` or the MLA family (`D`, `+`), not both",
                    notes=[
                        'Megatron raises: ValueError("Not supported to have both Attention and MLA/DSA in one model")'
                    ],
                )
                return

    return check


# --- versions and side effects -------------------------------------------------------------


def requires_version(target: str, since_by_kind: dict[str, str]) -> RuleFn:
    """P307: the kinds that need a newer release of the target than the rest (one note: the strictest).

    ``since_by_kind`` maps a kind name (or, as the family modules still spell it, its symbol) to the release."""
    since = {
        symbol_of(_kind_names(kind)[0] if kind in BY_SYMBOL else kind): release
        for kind, release in since_by_kind.items()
    }
    order = list(since)

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        used = set(pattern.flat) | set(pattern.mtp.flat if pattern.mtp else "")
        needed = [s for s in order if s in used]
        if not needed:
            return
        strictest = needed[-1]
        index = pattern.flat.find(strictest)
        yield diag(
            "P307",
            f"{describe(strictest)} needs {target} {since[strictest]}",
            _main_span(source_map, index) if index >= 0 else None,
            label=f"needs {since[strictest]}",
            notes=[f"{describe(s)}: {since[s]}" for s in needed],
        )

    return check


def sglang_mlp_patch(target: str) -> RuleFn:
    """P310: SGLang's transformers monkeypatch silently drops `-` from transformers-side configs."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        index = pattern.flat.find(_MLP)
        if index < 0:
            return
        yield diag(
            "P310",
            f"{target} serves this pattern, but after `import sglang` transformers' NemotronHConfig drops "
            f"every `-` ({pattern.flat.count(_MLP)} layers) from configs built in the same process",
            _main_span(source_map, index),
            label="dropped by the patch",
            help="do not build transformers-side Nemotron-H models in a process that imported sglang, "
            "or restore `NemotronHConfig._pattern_to_list` first",
            notes=["sglang/srt/utils/hf_transformers_patches.py::_patch_nemotron_h_pattern keeps only M, E, *"],
        )

    return check


def mamba_inner_size(target: str, failure: str) -> RuleFn:
    """P311 (needs a spec): Mamba heads × head_dim must be an integer multiple of hidden_size."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if spec is None or spec.mamba is None or _MAMBA not in pattern.flat:
            return
        inner, hidden = spec.mamba.inner_size, spec.hidden_size
        if inner % hidden == 0:
            return
        yield diag(
            "P311",
            f"{target} derives the Mamba inner size as `expand × hidden_size` with an integer expand; "
            f"this model has {spec.mamba.num_heads} × {spec.mamba.head_dim} = {inner} "
            f"with hidden_size {hidden}",
            _main_span(source_map, pattern.flat.index(_MAMBA)),
            label="inner size not a multiple of hidden_size",
            help="no integer `expand` reproduces these Mamba shapes in this target",
            notes=[failure],
        )

    return check


# --- Megatron-Core hyper-parameters (need a spec) -----------------------------------------


def megatron_activation(target: str) -> RuleFn:
    """P314 (needs a spec): Megatron-Core sets one FFN activation for every MLP and expert."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        from patternc.targets.megatron import activation_arguments

        if spec is None:
            return
        _, why = activation_arguments(spec)
        if why is None:
            return
        yield diag(
            "P314",
            f"{target} cannot build this model's FFNs: {why}",
            None,
            label="no Megatron activation",
            help="Megatron-Core builds plain relu² (--squared-relu), gated SiLU (--swiglu) or plain GELU FFNs, "
            "one kind for the whole model",
            notes=["megatron/training/argument_utils.py core_transformer_config_from_args sets one activation_func"],
        )

    return check


def megatron_mamba(target: str) -> RuleFn:
    """P315 (needs a spec): Megatron-Core's MambaMixer fixes the mixer's convolution, biases and norm."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        from patternc.targets.megatron import mamba_differences

        if spec is None:
            return
        differences = mamba_differences(spec)
        if not differences:
            return
        yield diag(
            "P315",
            f"{target}'s MambaMixer cannot build this model's Mamba2 mixer: it has {'; '.join(differences)}",
            _main_span(source_map, pattern.flat.find(_MAMBA)) if _MAMBA in pattern.flat else None,
            label="not Megatron's MambaMixer",
            help="Megatron-Core builds a 4-wide convolution with bias, unbiased projections, SiLU and a gated "
            "RMSNorm (eps 1e-5) per group",
            notes=["megatron/core/ssm/mamba_mixer.py: `assert not bias`, `assert conv_bias`, d_conv=4, eps=1e-5"],
        )

    return check


def megatron_expressible(target: str) -> RuleFn:
    """P316 (needs a spec): hyper-parameters no argument of patternc's Megatron recipe reproduces."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        from patternc.targets.megatron import other_differences

        if spec is None:
            return
        differences = other_differences(spec)
        if not differences:
            return
        yield diag(
            "P316",
            f"{target} arguments cannot reproduce this model: {'; '.join(differences)}",
            None,
            label="not expressible",
            help="`patternc explain P316` lists what Megatron-Core's HybridModel configures per model",
            notes=[f"checked against megatron-core's argument validation and layer code ({_megatron_version()})"],
        )

    return check


def _megatron_version() -> str:
    from patternc.targets.megatron import MEGATRON_CORE_VERSION

    return MEGATRON_CORE_VERSION


# --- llama.cpp (its Nemotron-H path: conversion/nemotron.py, src/models/nemotron-h.cpp) ------------


def llama_cpp_no_attention(target: str, failure: str) -> RuleFn:
    """P317: llama.cpp's Nemotron-H aborts at the first decode step when no layer is attention.

    Its hybrid memory allocates the KV cache for the attention layers only; with none, the cache
    has no buffer and ``ggml_backend_buffer_*`` asserts (``GGML_ASSERT(buffer)``), killing the process.
    """

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if pattern.num_layers == 0 or _ATTENTION in pattern.flat:
            return
        only_m = set(pattern.flat) == {_MAMBA}
        yield diag(
            "P317",
            f"{target} aborts the process at the first decode step: its Nemotron-H keeps a KV cache for "
            "attention layers only, and the pattern has no attention `*` layer",
            _main_span(source_map, 0),
            label="no `*` layer",
            help="a pure-Mamba stack is exactly a Mamba2 model: `patternc build --target mamba2` writes the "
            "directory llama.cpp converts as its `mamba2` architecture"
            if only_m
            else "add an attention `*` layer",
            notes=[failure],
        )

    return check


def _nemotron_spec(spec: ModelSpec | None) -> bool:
    """The llama.cpp rules that read hyper-parameters apply to Nemotron-H configs (and bare patterns,
    which build as Nemotron-H): other families have other llama.cpp converters, not modelled here."""
    return spec is not None and spec.source in ("nemotron_h", "pattern")


def llama_cpp_activations(target: str) -> RuleFn:
    """P318: llama.cpp hard-codes relu² (MLP, routed and shared experts) and SiLU (Mamba), reading no activation key."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if spec is None or not _nemotron_spec(spec):
            return
        flat = pattern.flat
        found: list[tuple[int, str]] = []
        if spec.mlp is not None and _MLP in flat and (spec.mlp.activation != "relu2" or spec.mlp.gated):
            what = f"gated `{spec.mlp.activation}`" if spec.mlp.gated else f"`{spec.mlp.activation}`"
            found.append(
                (flat.index(_MLP), f"{what} in its MLP `-` layers (`mlp_hidden_act`), where llama.cpp computes relu²")
            )
        if spec.moe is not None and _MOE in flat and (spec.moe.expert_activation != "relu2" or spec.moe.expert_gated):
            found.append(
                (
                    flat.index(_MOE),
                    f"`{spec.moe.expert_activation}` in its experts (`mlp_hidden_act`), where llama.cpp computes relu²",
                )
            )
        if spec.mamba is not None and _MAMBA in flat and spec.mamba.activation != "silu":
            found.append(
                (
                    flat.index(_MAMBA),
                    f"`{spec.mamba.activation}` in its Mamba layers (`mamba_hidden_act`), "
                    "where llama.cpp computes SiLU",
                )
            )
        if not found:
            return
        first = min(found)[0]
        yield diag(
            "P318",
            f"{target} would run another model, silently: this one uses " + "; ".join(text for _, text in found),
            _main_span(source_map, first),
            label="activation not computed",
            help=f"{target} runs Nemotron-H only with relu² MLPs and experts and SiLU Mamba layers",
            notes=[
                "the converter writes no activation to the GGUF; src/models/nemotron-h.cpp builds every FFN "
                "with LLM_FFN_RELU_SQR and mamba-base.cpp applies ggml_silu after the convolution",
                "verified: llama-cpp-python 0.3.36 loads and runs a `silu` MLP model, with logits far from it",
            ],
        )

    return check


def llama_cpp_setting(
    target: str, applies: Callable[[Pattern, ModelSpec], str | None], help: str, failure: str
) -> RuleFn:
    """P319: one hyper-parameter llama.cpp's converter refuses, its loader rejects or its graph ignores.

    ``applies`` returns the message (what the model has and what llama.cpp does) or None.
    """

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        if spec is None or not _nemotron_spec(spec):
            return
        message = applies(pattern, spec)
        if message is None:
            return
        yield diag("P319", f"{target}: {message}", None, help=help, notes=[failure])

    return check


# --- model families (patternc/targets/support_facts.py) ------------------------------------------


def nemotron_path(consumer: str, check: RuleFn) -> RuleFn:
    """``check``, applied only where ``consumer`` loads the model on its Nemotron-H path.

    That is a bare pattern, a ``nemotron_h`` config, or a config of a family the fact table has no row
    for (one registered at runtime): a config of another known family is loaded by that family's own
    architecture, which ``family_support``/``family_built`` judge instead, so the Nemotron-H alphabet,
    MTP and hyper-parameter rules would judge a model the consumer never builds that way.
    """

    def guarded(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterable[Diagnostic]:
        if spec is not None and judged_by_family(consumer, spec.source):
            return ()
        return check(pattern, spec, source_map)

    return guarded


def _family_of(consumer: str, spec: ModelSpec | None) -> tuple[str, Fact] | None:
    """The family and its fact, for a spec judged by its family (None on the Nemotron-H path)."""
    if spec is None or not judged_by_family(consumer, spec.source):
        return None
    found = fact(consumer, spec.source)
    return None if found is None else (spec.source, found)


def family_support(target: str, consumer: str) -> RuleFn:
    """P320: ``consumer`` has no code for the architecture of the config's family (a sourced fact)."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        found = _family_of(consumer, spec)
        if found is None or found[1].builds:
            return
        family, known = found
        others = [name for name in builders(family) if name != consumer]
        yield diag(
            "P320",
            f"{target} does not build `{family}` models: {known.what} ({known.source})",
            None,
            label=f"not built by {target}",
            help=f"`{family}` models are built by: {', '.join(others)}"
            if others
            else f"no consumer patternc knows builds `{family}` models; its transformers class does",
            notes=[known.note] if known.note else [],
        )

    return check


def family_built(target: str, consumer: str) -> RuleFn:
    """P321: ``consumer`` builds the config's family by its own architecture (a sourced fact)."""

    def check(pattern: Pattern, spec: ModelSpec | None, source_map: SourceMap | None) -> Iterator[Diagnostic]:
        found = _family_of(consumer, spec)
        if found is None or not found[1].builds:
            return
        family, known = found
        yield diag(
            "P321",
            f"{target} builds `{family}` models as {known.what} ({known.source})",
            None,
            label=f"built by {target}",
            notes=[known.note] if known.note else [],
        )

    return check
