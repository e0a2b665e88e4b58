"""The transformers backend: a ModelSpec as a model directory transformers loads (config.json + safetensors).

Registered as ``transformers`` in the ``patternc.backends`` entry-point group; the core reaches it only
through ``patternc.backends``.  It writes one ``build --target`` per model family (the families of
``patternc.families``), ``auto`` (the canonical architecture), ``vllm`` (a Nemotron-H directory plus
the pattern strings vLLM's loader indexes) and ``llama.cpp`` (a Nemotron-H directory in the layout
llama.cpp's ``convert_hf_to_gguf.py`` reads).  Importing this package is light: ``write`` imports
``patternc_transformers.build`` (transformers, torch) when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from patternc.backends import BuildOptions, BuildResult
from patternc.codes import Severity
from patternc.diagnostics import Diagnostic

if TYPE_CHECKING:
    from patternc.model import ModelSpec

AUTO, VLLM, LLAMA_CPP = "auto", "vllm", "llama.cpp"
_NEMOTRON_H = "nemotron_h"
"""What ``vllm`` and ``llama.cpp`` write: vLLM and llama.cpp read hybrids through Nemotron-H."""


class TransformersBackend:
    name = "transformers"
    description = "transformers model directories (config.json + converted safetensors), one per model family"

    @property
    def targets(self) -> Mapping[str, str]:
        from patternc.families import names

        return {
            AUTO: "the canonical architecture of the source",
            **{family: f"transformers' `{family}`" for family in names()},
            VLLM: "a transformers nemotron_h directory plus the pattern strings vLLM's loader indexes",
            LLAMA_CPP: "a nemotron_h directory in the layout llama.cpp's convert_hf_to_gguf.py reads",
        }

    def check(self, spec: ModelSpec, target: str) -> list[Diagnostic]:
        """What ``write`` would refuse before writing: engine rules, then the exact-architecture choice."""
        from patternc_transformers.build import choose_target

        found: list[Diagnostic] = []
        if target == VLLM:
            found += _vllm_fields(spec)[1]
        elif target == LLAMA_CPP:
            from patternc_transformers.llamacpp import profile_verdict

            found += profile_verdict(spec)
        arch = _NEMOTRON_H if target in (VLLM, LLAMA_CPP) else target
        return found + choose_target(spec, arch)[2]

    def write(
        self, spec: ModelSpec, out: Path, *, target: str, weights: str | None, options: BuildOptions
    ) -> BuildResult:
        """``build_model_dir`` for ``target``; ``vllm`` adds the fields vLLM reads to ``config.json``."""
        from patternc_transformers.build import build_model_dir

        found: list[Diagnostic] = []
        extra: dict[str, object] | None = None
        if target == VLLM:
            extra, found = _vllm_fields(spec)
            if extra is None:
                return BuildResult(diagnostics=found)
            target = _NEMOTRON_H
        result = build_model_dir(
            spec,
            out,
            target=target,
            weights=weights,
            force=options.force,
            max_shard_size=options.max_shard_size,
            source_config=options.source_config,
            protected=list(options.protected),
            extra_config=extra,
            progress=options.progress,
            set_keys=options.set_keys,
            default_keys=options.default_keys,
        )
        result.diagnostics[:0] = found
        return result


def _vllm_fields(spec: ModelSpec) -> tuple[dict[str, object] | None, list[Diagnostic]]:
    """vLLM's extra ``config.json`` fields (None when vLLM cannot load the model), and the warnings and
    errors that say why (notes are ``check --target vllm``'s business, not the build's)."""
    from patternc.engines import vllm_config_fields

    extra, found = vllm_config_fields(spec)
    return extra, [d for d in found if d.severity is not Severity.NOTE]


backend = TransformersBackend()
