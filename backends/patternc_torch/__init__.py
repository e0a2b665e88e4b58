"""The torch backend: a ``ModelSpec`` as a runnable nn.Module (``patternc.torch_model``).

Importing this package is light; torch is imported by the functions that need it.  Entry point:
``patternc.backends`` group, name ``torch``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from patternc.ir import Pattern

if TYPE_CHECKING:
    import torch

    from patternc.model import ModelSpec
    from patternc_torch.model import HybridLM

__all__ = ["TorchBackend", "backend", "torch_model", "write_model_dir"]


def torch_model(
    source: ModelSpec | str | Path | dict[str, Any],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
) -> HybridLM:
    """An nn.Module for an IR (ModelSpec), a config file or a directory (its safetensors loaded strictly).

    ``model(input_ids).logits`` is (batch, seq, vocab); ``model.generate(input_ids, max_new_tokens=N)``
    returns the ids (greedy unless ``do_sample=True``).  ``dtype`` takes a torch dtype or a name (``"bf16"``).
    Raises ``patternc.PatternError``: P401-P405, P503/P504/P510 (checkpoint), P407 (arguments), P701, P90x (config).
    """
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

    def emit(self, pattern: Pattern, /, **options: Any) -> dict[str, Any]:
        """The module layout the pattern builds: one ``backbone.layers.N`` per layer, and the MTP layers."""
        from patternc_torch.support import BUILDABLE

        layers = [{"name": f"backbone.layers.{layer.index}", "symbol": layer.symbol} for layer in pattern.layers]
        mtp = []
        if pattern.mtp is not None:
            size = len(pattern.mtp.layers)
            mtp = [{"name": f"mtp.layers.{d * size + j}", "symbol": layer.symbol}
                   for d in range(pattern.mtp.depths) for j, layer in enumerate(pattern.mtp.layers)]
        buildable = all(s in BUILDABLE for s in pattern.flat + (pattern.mtp.flat if pattern.mtp else ""))
        return {"target": "torch", "layers": layers, "mtp_layers": mtp, "buildable": buildable}

    def torch_model(self, source: Any, **options: Any) -> Any:
        return torch_model(source, **options)

    def write_model_dir(self, spec: ModelSpec, out_dir: str | Path, state_dict: Any = None, *,
                        force: bool = False) -> Path:
        return write_model_dir(spec, out_dir, state_dict, force=force)


backend = TorchBackend()
