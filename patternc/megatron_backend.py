"""The ``megatron`` backend: ``OUT_DIR/megatron_args.json``, Megatron-Core arguments for the model.

It lives in the core (the arguments are pure data: ``patternc.engines.megatron_arguments``, nothing
heavy) but is registered like any other backend, as ``megatron`` in the ``patternc.backends``
entry-point group, so that ``patternc build`` finds every writer the same way and has no branch of
its own per target.  The file is published like every build output (``patternc.outdir``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from patternc.backends import BuildOptions, BuildResult
from patternc.codes import Severity

if TYPE_CHECKING:
    from patternc.diagnostics import Diagnostic
    from patternc.model import ModelSpec

TARGET = "megatron"
FILE = "megatron_args.json"


class MegatronBackend:
    name = "megatron"
    description = "Megatron-Core arguments (megatron_args.json) with a balanced pipeline split (--pp/--vpp)"
    targets: Mapping[str, str] = {TARGET: "Megatron-Core arguments with a balanced `|` split (--pp/--vpp)"}

    def check(self, spec: ModelSpec, target: str) -> list[Diagnostic]:
        """Why Megatron-Core cannot build the model (one pipeline rank; ``write`` checks the split it is given)."""
        from patternc.engines import megatron_arguments

        return [d for d in megatron_arguments(spec)[1] if d.severity is not Severity.NOTE]

    def write(
        self, spec: ModelSpec, out: Path, *, target: str, weights: str | None, options: BuildOptions
    ) -> BuildResult:
        """``megatron_args.json`` (the arguments and the command line), or the reasons Megatron-Core cannot
        take the model; ``weights`` are not converted (Megatron reads its own checkpoints)."""
        from patternc.engines import MEGATRON_FORMAT, megatron_arguments, megatron_command_line
        from patternc.model_keys import model_only
        from patternc.outdir import check_out_dir, publish, staging
        from patternc.targets.megatron import MEGATRON_CORE_VERSION

        result = BuildResult(
            diagnostics=model_only(spec, options.source_config, options.set_keys, "Megatron-Core's arguments")
        )
        args, found = megatron_arguments(spec, options.pipeline_ranks, options.virtual_stages)
        result.diagnostics += [d for d in found if d.severity is not Severity.NOTE]
        if args is not None:
            result.diagnostics += check_out_dir(out, options.force, list(options.protected))
        if args is None or any(d.code in ("P502", "P512") for d in result.diagnostics):
            return result
        document = {
            "format": MEGATRON_FORMAT,
            "validated_with": f"megatron-core {MEGATRON_CORE_VERSION}",
            "arguments": args,
            "command_line": megatron_command_line(args),
        }
        with staging(out) as tmp:
            (tmp / FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            publish(tmp, out, options.force)
        result.out_dir, result.files, result.architecture = out, [FILE], TARGET
        result.hybrid_layer_pattern = str(args["hybrid-layer-pattern"])
        return result


backend = MegatronBackend()
