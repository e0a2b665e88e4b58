"""The reference every family test compares with: the model transformers builds, on the meta device.

One construction gives what the family tests need: the state_dict's names and shapes (the
round trip through ``build --target`` must keep them) and the elements a checkpoint stores
(buffers included, each tied tensor once), which ``stats`` must equal exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetaModel:
    architecture: str
    """The class ``AutoModelForCausalLM`` chose (``Qwen3_5ForCausalLM``)."""
    shapes: dict[str, tuple[int, ...]]
    """Every state_dict name and its shape."""
    stored: int
    """Elements of the state_dict, buffers included, each tied tensor counted once."""


def meta_model(config: Any) -> MetaModel:
    """Build ``config``'s causal LM on the meta device (no memory) and describe its state_dict."""
    import torch
    import transformers

    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    state = model.state_dict(keep_vars=True)
    unique = {id(tensor): tensor.numel() for tensor in state.values()}
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    return MetaModel(type(model).__name__, shapes, sum(unique.values()))
