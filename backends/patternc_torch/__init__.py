"""The torch backend: a ``ModelSpec`` as a runnable nn.Module (``patternc.torch_model``, ``patternc run``).

Registered as ``torch`` in the ``patternc.backends`` entry-point group; the core reaches it only through
``patternc.backends``.  Importing this package is light; torch is imported by the functions that need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patternc.backends import BuildOptions, BuildResult, Parallel

if TYPE_CHECKING:
    import torch
    from torch.distributed.device_mesh import DeviceMesh

    from patternc.diagnostics import Diagnostic
    from patternc.model import ModelSpec
    from patternc_torch.model import HybridLM
    from patternc_torch.session import TorchSession

__all__ = ["TorchBackend", "backend", "torch_model", "write_model_dir"]


def torch_model(
    source: ModelSpec | str | Path | dict[str, Any],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    mesh: DeviceMesh | None = None,
) -> HybridLM:
    """An nn.Module for an IR (ModelSpec), a config file or a directory (its safetensors loaded strictly).

    With ``mesh`` (a 1-D ``DeviceMesh`` over an initialised process group, its dimension named ``tp``
    or ``dp``) the model is this rank's shard: tensor parallel (each rank reads only its slices of
    the checkpoint) or FSDP2 (each rank reads only its rows of every parameter);
    docs/backends/distributed.md.  Pipeline parallel returns no single module:
    ``patternc_torch.launch.parallel_model`` with a ``pp`` mesh.

    ``model(input_ids).logits`` is (batch, seq, vocab); ``model.generate(input_ids, max_new_tokens=N)``
    returns the ids (greedy unless ``do_sample=True``).  ``dtype`` takes a torch dtype or a name (``"bf16"``).
    Raises ``patternc.PatternError``: P401-P405, P503/P504/P510 (checkpoint), P407 (arguments), P701, P90x (config).
    """
    if mesh is not None:
        from patternc_torch.launch import module_model

        return module_model(source, mesh, device=device, dtype=dtype)
    from patternc_torch.io import torch_model as impl

    return impl(source, device=device, dtype=dtype)


def write_model_dir(
    spec: ModelSpec, out_dir: str | Path, state_dict: dict[str, torch.Tensor] | None = None, *, force: bool = False
) -> Path:
    """Write ``config.json`` (the spec with the patternc format marker) and ``model.safetensors``, atomically;
    an existing non-empty ``out_dir`` is replaced only with ``force=True`` (else ``P502``)."""
    from patternc_torch.io import write_model_dir as impl

    return impl(spec, out_dir, state_dict, force=force)


class TorchBackend:
    name = "torch"
    description = "a runnable PyTorch model (Mamba2, attention, MLP, MoE) with KV/SSM-state decoding"
    targets: Mapping[str, str] = {"torch": "the patternc torch backend's model directory (config.json + safetensors)"}

    def check(self, spec: ModelSpec, target: str) -> list[Diagnostic]:
        """Every reason the backend cannot build ``spec`` (``P401``), all at once; torch is not imported."""
        from patternc_torch.support import unsupported

        return unsupported(spec)

    def write(
        self, spec: ModelSpec, out: Path, *, target: str, weights: str | None, options: BuildOptions
    ) -> BuildResult:
        """The model directory ``load`` reads back, with the checkpoint's weights or a random initialisation."""
        from patternc.diagnostics import diag

        try:
            from patternc_torch.io import build_dir
        except ImportError as error:
            return BuildResult(
                diagnostics=[
                    diag(
                        "P508",
                        f"the torch backend needs {error.name}, which is not installed",
                        None,
                        help='pip install "patternc[backends]"',
                    )
                ]
            )
        return build_dir(spec, out, weights, options)

    load = staticmethod(torch_model)
    """``patternc.torch_model``: the registry serves this function as the runnable backend's ``load``."""

    def session(
        self, *, device: str | None, dtype: str | None, compile: bool | None = None, parallel: Parallel | None = None
    ) -> TorchSession:
        from patternc_torch.session import TorchSession

        return TorchSession(device, dtype, compile=compile, parallel=parallel)


backend = TorchBackend()
