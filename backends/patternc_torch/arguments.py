"""The arguments of the public API, checked before they reach torch: every problem is a ``P407``.

``torch_model``'s ``device`` and ``dtype``, and the ids, mask and settings given to ``model(...)`` and
``model.generate(...)``.  torch's own errors for the same mistakes (``IndexError: index out of range
in self`` for an id beyond the vocabulary, ``AssertionError: Torch not compiled with CUDA enabled``)
say nothing about which argument is wrong; these say which, what was given and what is accepted.
Only what the caller passes is checked: the per-token decode path inside ``generate`` checks nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from patternc.diagnostics import PatternError, diag
from patternc.source import Source

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "float64": torch.float64,
    "fp64": torch.float64,
    "double": torch.float64,
}
"""The dtypes a model can be built in, by the names users write (``torch.float8_*`` has no kernels
for these layers; integer and bool dtypes hold no weights)."""


def invalid(message: str, *, help: str | None = None, origin: str = "<arguments>") -> PatternError:
    return PatternError([diag("P407", message, None, help=help)], Source("", origin))


def model_dtype(dtype: Any) -> torch.dtype | None:
    """``dtype`` as a floating torch dtype the layers compute in (a name such as ``"bf16"`` accepted)."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        found = DTYPES.get(dtype.lower().removeprefix("torch."))
        if found is None:
            raise invalid(f"unknown dtype `{dtype}`", help="use one of: " + ", ".join(sorted(DTYPES)))
        return found
    if isinstance(dtype, torch.dtype) and dtype in set(DTYPES.values()):
        return dtype
    raise invalid(
        f"a model cannot be built in dtype `{dtype}`",
        help="use torch.float32, torch.bfloat16, torch.float16 or torch.float64",
    )


def model_device(device: Any) -> torch.device | None:
    """``device`` as a torch device that exists here (``"meta"`` included), or None for the CPU default."""
    if device is None:
        return None
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise invalid(f"`{device}` is not a device", help='use "cpu", "cuda", "cuda:1" or "meta"') from None
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise invalid(
                f"device `{target}` requested, but this torch sees no CUDA device",
                help="use the device `cpu`, or leave the device unset (cuda only when this torch sees one)",
            )
        if target.index is not None and target.index >= torch.cuda.device_count():
            raise invalid(f"device `{target}` requested, but there are {torch.cuda.device_count()} CUDA device(s)")
    elif target.type not in ("cpu", "meta"):
        raise invalid(f"device type `{target.type}` is not supported", help='use "cpu", "cuda" or "meta"')
    return target


def check_input(input_ids: Any, attention_mask: Any, vocab_size: int, weights: torch.Tensor) -> None:
    """``input_ids`` (b, t) integer ids below ``vocab_size``, on the model's device, and a mask of the same shape."""
    if weights.is_meta:
        raise invalid(
            "the model is on the meta device: it has shapes but no values to compute with",
            help='build it on "cpu" or "cuda", or load its weights: torch_model(directory)',
        )
    if not isinstance(input_ids, torch.Tensor):
        raise invalid(
            f"input_ids must be a torch.Tensor of ids, not {type(input_ids).__name__}",
            help="e.g. torch.tensor([[1, 2, 3]])",
        )
    if input_ids.dtype == torch.bool or input_ids.dtype.is_floating_point or input_ids.dtype.is_complex:
        raise invalid(f"input_ids must hold integer ids, not {input_ids.dtype}", help="use input_ids.long()")
    if input_ids.dim() != 2:
        raise invalid(
            f"input_ids must be (batch, tokens); it has shape {tuple(input_ids.shape)}",
            help="a single sequence is input_ids.unsqueeze(0)",
        )
    if input_ids.numel() == 0:
        raise invalid(f"input_ids is empty: shape {tuple(input_ids.shape)}", help="give at least one token per row")
    if input_ids.device != weights.device:
        raise invalid(
            f"input_ids are on {input_ids.device}, the model on {weights.device}",
            help=f'move them: input_ids.to("{weights.device}")',
        )
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= vocab_size:
        raise invalid(f"ids must lie in [0, {vocab_size}) (the vocabulary); got {low if low < 0 else high}")
    if attention_mask is None:
        return
    if not isinstance(attention_mask, torch.Tensor):
        raise invalid(f"attention_mask must be a torch.Tensor, not {type(attention_mask).__name__}")
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise invalid(
            f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}; "
            f"got {tuple(attention_mask.shape)}"
        )


def check_generation(max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any) -> None:
    """The settings of ``generate``: a count of new tokens, and sampling parameters in their ranges."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise invalid(f"max_new_tokens must be an integer >= 0; got {max_new_tokens!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise invalid(f"top_k must be an integer >= 0 (0: no limit); got {top_k!r}")
    if not isinstance(top_p, int | float) or not 0.0 <= float(top_p) <= 1.0:
        raise invalid(f"top_p must lie in [0, 1]; got {top_p!r}")
    if not isinstance(temperature, int | float) or temperature != temperature:
        raise invalid(f"temperature must be a number; got {temperature!r}")
