"""patternc: a compiler for hybrid layer patterns.

text (``M-M*-``) -> lark grammar -> typed IR (pydantic) -> passes (diagnostics) -> backends.
Importing ``patternc`` is light: no torch, transformers or networkx.
"""

from patternc._version import __version__
from patternc.api import Analysis, analyze, parse
from patternc.codes import Severity
from patternc.convert import (
    Vocabulary,
    from_layers_block_type,
    from_megatron,
    to_layers_block_type,
    to_megatron,
)
from patternc.diagnostics import Diagnostic, PatternError
from patternc.dialects import Dialect
from patternc.fmt import fmt
from patternc.ir import Layer, MtpBlock, Pattern, Stage
from patternc.limits import Limits
from patternc.passes.classify import Family, classify
from patternc.source import Span
from patternc.symbols import LayerKind

__all__ = [
    "Analysis",
    "Diagnostic",
    "Dialect",
    "Family",
    "Layer",
    "LayerKind",
    "Limits",
    "MtpBlock",
    "Pattern",
    "PatternError",
    "Severity",
    "Span",
    "Stage",
    "Vocabulary",
    "__version__",
    "analyze",
    "classify",
    "fmt",
    "from_layers_block_type",
    "from_megatron",
    "parse",
    "to_layers_block_type",
    "to_megatron",
    "torch_model",
]


def __getattr__(name: str) -> object:
    """``patternc.torch_model``: the torch backend's ``load``, found through the ``patternc.backends``
    registry on first use (``import patternc`` never imports torch, nor the backend package)."""
    if name == "torch_model":
        from patternc.backends import runnable

        return runnable("torch").load
    raise AttributeError(f"module 'patternc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"torch_model"})
