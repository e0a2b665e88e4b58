"""The one target vocabulary of ``check --target`` and ``build --target``: names, aliases, what each means.

Before this table the two commands spoke two languages (``check --target transformers-nemotron_h``,
``build --target nemotron_h``).  Now every spelling of a consumer resolves here, case-insensitively,
for both commands, and a name that exists but means nothing to one command (``check --target torch``:
there is no load-and-run profile for the torch backend; ``build --target sglang``: patternc writes
nothing SGLang-specific) is refused with what *that* command takes instead, never with "unknown".

This module is deliberately light (no pydantic, no profile objects): the CLI validates ``--target``
while it parses the command line, before anything else is imported.  ``patternc.targets`` derives
its profile aliases from ``VOCABULARY``.  Which names ``build`` takes is not written here: it is the
``targets`` of the installed backends (``patternc.backends.build_targets``), asked only when a
``build`` command line is read, so ``check`` never loads a backend; ``VOCABULARY`` gives those names
their aliases and their help order, and a name a backend writes that it does not list (a third-party
backend's) is accepted as it is spelled.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

Command = Literal["check", "build"]


@dataclass(frozen=True, slots=True)
class TargetName:
    name: str
    """The canonical spelling (what help texts and error messages print)."""
    aliases: tuple[str, ...]
    """Other accepted spellings (case-insensitive, like the name)."""
    profile: str | None
    """The ``check --target`` profile (``patternc.targets.PROFILES`` key), or None when check has none."""
    what: str
    """One line for ``--help`` and docs."""


VOCABULARY: tuple[TargetName, ...] = (
    TargetName("auto", (), None, "build: the canonical architecture of the source"),
    TargetName(
        "nemotron_h",
        ("transformers-nemotron_h", "transformers", "hf", "nemotron-h", "nemotronh"),
        "transformers-nemotron_h",
        "transformers' NemotronH",
    ),
    TargetName("bamba", ("transformers-bamba",), "transformers-bamba", "transformers' Bamba"),
    TargetName(
        "granitemoehybrid",
        ("transformers-granitemoehybrid", "granite"),
        "transformers-granitemoehybrid",
        "transformers' GraniteMoeHybrid",
    ),
    TargetName("mamba2", ("transformers-mamba2",), "transformers-mamba2", "transformers' Mamba2"),
    TargetName("jamba", ("transformers-jamba",), None, "transformers' Jamba (build only)"),
    TargetName("qwen3_next", ("transformers-qwen3_next",), None, "transformers' Qwen3-Next (build only)"),
    TargetName(
        "qwen3_5",
        ("transformers-qwen3_5", "qwen3.5", "qwen3.6"),
        None,
        "transformers' dense Qwen3.5/3.6 text model, Qwen3_5ForCausalLM (build only)",
    ),
    TargetName(
        "qwen3_5_moe",
        ("transformers-qwen3_5_moe", "qwen3.5-moe", "qwen3.6-moe"),
        None,
        "transformers' Qwen3.5/3.6 MoE text model, Qwen3_5MoeForCausalLM (build only)",
    ),
    TargetName(
        "olmo_hybrid",
        ("transformers-olmo_hybrid", "olmo-hybrid"),
        None,
        "transformers' OLMo Hybrid, OlmoHybridForCausalLM (build only)",
    ),
    TargetName(
        "deepseek_v3",
        ("transformers-deepseek_v3", "deepseek-v3"),
        None,
        "transformers' DeepSeek-V3/V3.1/R1, DeepseekV3ForCausalLM (build only)",
    ),
    TargetName(
        "deepseek_v32",
        ("transformers-deepseek_v32", "deepseek-v3.2"),
        None,
        "transformers' DeepSeek-V3.2-Exp/V3.2 (sparse attention), DeepseekV32ForCausalLM (build only)",
    ),
    TargetName(
        "kimi_linear",
        ("transformers-kimi_linear", "kimi-linear"),
        None,
        "transformers' Kimi Linear (and Kimi-K3's language model), KimiLinearForCausalLM (build only)",
    ),
    TargetName(
        "bailing_hybrid",
        ("transformers-bailing_hybrid", "bailing-hybrid", "ling-linear"),
        None,
        "transformers' Ling 3 / Ring 3 linear (BailingMoeV3), BailingHybridForCausalLM (build only)",
    ),
    TargetName("lfm2", ("transformers-lfm2",), None, "transformers' LFM2, Lfm2ForCausalLM (build only)"),
    TargetName("lfm2_moe", ("transformers-lfm2_moe",), None, "transformers' LFM2-MoE, Lfm2MoeForCausalLM (build only)"),
    TargetName(
        "falcon_h1", ("transformers-falcon_h1",), None, "transformers' Falcon-H1, FalconH1ForCausalLM (build only)"
    ),
    TargetName(
        "minimax",
        ("transformers-minimax",),
        None,
        "transformers' MiniMax-Text-01 / MiniMax-M1, MiniMaxForCausalLM (build only)",
    ),
    TargetName("zamba2", ("transformers-zamba2",), None, "transformers' Zamba2 (build only)"),
    TargetName("torch", ("pytorch", "patternc-torch"), None, "the patternc torch backend (build only)"),
    TargetName("vllm", (), "vllm", "vLLM"),
    TargetName("sglang", (), "sglang", "SGLang (check only)"),
    TargetName("megatron", ("megatron-core", "mcore"), "megatron-core", "Megatron-Core"),
    TargetName("megatron-bridge", ("bridge",), "megatron-bridge", "Megatron-Bridge (check only)"),
    TargetName("llama.cpp", ("llamacpp", "llama-cpp", "gguf"), "llama.cpp", "llama.cpp"),
)
"""Every target name, in help order."""

_BY_SPELLING: dict[str, TargetName] = {
    spelling.lower(): entry for entry in VOCABULARY for spelling in (entry.name, *entry.aliases)
}


def lookup(text: str) -> TargetName | None:
    """The entry that ``text`` spells (name or alias, case-insensitive, surrounding blanks ignored)."""
    return _BY_SPELLING.get(text.strip().lower())


def names_for(command: Command) -> list[str]:
    """The canonical names ``command --target`` accepts, in help order (``build``: what the installed
    backends write, the vocabulary's names first, then any other a backend writes, sorted)."""
    if command == "check":
        return [entry.name for entry in VOCABULARY if entry.profile is not None]
    written = _build_names()
    known = [entry.name for entry in VOCABULARY if entry.name in written]
    return known + sorted(written - set(known))


def _build_names() -> frozenset[str]:
    from patternc.backends import build_targets

    return frozenset(build_targets())


def _applies(entry: TargetName, command: Command, written: frozenset[str]) -> bool:
    """Whether ``command`` takes ``entry`` (``written``: the names the installed backends write)."""
    return entry.name in written if command == "build" else entry.profile is not None


class TargetError(ValueError):
    """A ``--target`` name that is unknown, or known but not for this command."""

    def __init__(self, message: str, suggestion: str | None) -> None:
        super().__init__(message + (f"; did you mean `{suggestion}`?" if suggestion else ""))
        self.message = message
        self.suggestion = suggestion
        """The canonical name probably meant, or None."""


def resolve_for(text: str, command: Command) -> TargetName:
    """The entry ``text`` names for ``command``; ``TargetError`` (a ``ValueError``) otherwise."""
    written = _build_names() if command == "build" else frozenset()
    entry = lookup(text)
    if entry is not None and _applies(entry, command, written):
        return entry
    if entry is None and text.strip() in written:
        return TargetName(text.strip(), (), None, "")  # a backend's name the vocabulary does not list
    if entry is not None:
        other = "build" if command == "check" else "check"
        why = (
            "check has no load-and-run profile for it" if command == "check" else "build writes nothing specific to it"
        )
        raise TargetError(f"`{text}` is a `{other} --target` name only: {why}", None)
    # the spelling that is closest is suggested as it is (an alias is accepted too), so the hint
    # reads as a correction of what was typed: `transformer` -> `transformers`, not `nemotron_h`
    usable = [spelling for spelling, entry in _BY_SPELLING.items() if _applies(entry, command, written)]
    usable += [name for name in written if name.lower() not in _BY_SPELLING]
    close = difflib.get_close_matches(text.strip().lower(), usable, n=1, cutoff=0.7)
    raise TargetError(f"unknown target `{text}`", close[0] if close else None)
