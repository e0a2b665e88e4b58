"""Patterns from layer ratios (``patternc gen``).

``even_pattern`` places exact counts evenly; ``megatron_pattern_from_ratios`` reproduces
Megatron-Core's ``pattern_from_ratios`` (``hybrid_layer_allocation.py``, peer-survey §1.6)
character for character.  ``generate`` wraps both and reports what cannot be built as
diagnostics instead of returning a pattern with the wrong counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patternc.diagnostics import Diagnostic, diag
from patternc.limits import DEFAULT_LIMITS


def ratio_count(num_layers: int, ratio: float) -> int:
    """Layers of a kind for ``ratio``: ``round(num_layers * ratio)``, Python's half-to-even, as Megatron."""
    return round(num_layers * ratio)


def spread(slots: int, count: int) -> list[int]:
    """``count`` distinct positions in ``range(slots)``, one at the centre of each of ``count`` equal blocks."""
    if not 0 <= count <= slots:
        raise ValueError("count must be between 0 and slots")
    return [(2 * i + 1) * slots // (2 * count) for i in range(count)]


def even_pattern(num_layers: int, attention: int, mlp: int, *, mlp_symbol: str = "-") -> str:
    """Exactly ``attention`` ``*`` and ``mlp`` FFN layers among ``num_layers``, the rest ``M``, each evenly spread.

    Attention goes to the centres of ``attention`` equal blocks of the stack; the FFN layers to the
    centres of ``mlp`` equal blocks of the layers left.
    """
    if attention < 0 or mlp < 0 or attention + mlp > num_layers:
        raise ValueError("the counts do not fit in the layers")
    layers = ["M"] * num_layers
    for position in spread(num_layers, attention):
        layers[position] = "*"
    free = [i for i, symbol in enumerate(layers) if symbol == "M"]
    for position in spread(len(free), mlp):
        layers[free[position]] = mlp_symbol
    return "".join(layers)


def megatron_pattern_from_ratios(num_layers: int, attention_ratio: float = 0.0, mlp_ratio: float = 0.0) -> str:
    """Megatron-Core's ``pattern_from_ratios``, bugs included (no check that the counts fit)."""
    if not (num_layers > 0 and 0.0 <= attention_ratio <= 1.0 and 0.0 <= mlp_ratio <= 1.0):
        raise ValueError("Megatron-Core asserts num_layers > 0 and ratios in [0, 1]")
    if attention_ratio + mlp_ratio > 1.0:
        raise ValueError("Megatron-Core asserts attention_ratio + mlp_ratio <= 1")
    attention_count = round(num_layers * attention_ratio)
    mamba_count = num_layers - attention_count
    section_len = mamba_count / (attention_count + 1)
    layers = ["M"] * num_layers
    x = section_len
    for i in range(num_layers):
        if x < 0.5:
            layers[i] = "*"
            x += section_len
        else:
            x -= 1
    mlp_count = round(num_layers * mlp_ratio)
    if mlp_count > 0:
        mamba_count -= mlp_count
        ratio = mamba_count / mlp_count
        x = ratio
        for i in range(num_layers):
            if layers[i] == "M":
                if x < 0.5:
                    layers[i] = "-"
                    x += ratio
                else:
                    x -= 1
    return "".join(layers)


@dataclass(slots=True)
class Generated:
    pattern: str | None
    """None when the request cannot be met."""
    attention: int
    mlp: int
    diagnostics: list[Diagnostic] = field(default_factory=list)


def generate(
    num_layers: int,
    attention_ratio: float,
    mlp_ratio: float = 0.0,
    *,
    moe: bool = False,
    megatron_compatible: bool = False,
) -> Generated:
    """A pattern of ``num_layers`` layers with the requested ratios, or diagnostics saying why not."""
    problems: list[Diagnostic] = []
    for name, value in (("--attention", attention_ratio), ("--mlp", mlp_ratio)):
        if not 0.0 <= value <= 1.0:
            problems.append(diag("P607", f"{name} is {value}, but a ratio is between 0 and 1", None,
                                 help="a ratio is a share of the layers, e.g. 0.1 for one layer in ten"))
    if num_layers < 1:
        problems.append(diag("P607", f"--layers is {num_layers}, but a pattern has at least one layer", None,
                             help="give --layers N with N >= 1"))
    elif num_layers > DEFAULT_LIMITS.max_layers:
        problems.append(diag("P011", f"--layers is {num_layers:,}, above the limit of {DEFAULT_LIMITS.max_layers:,} "
                             "layers", None, help="no released model has more than a few hundred layers"))
    if problems:
        return Generated(None, 0, 0, problems)
    attention = ratio_count(num_layers, attention_ratio)
    mlp = ratio_count(num_layers, mlp_ratio)
    symbol = "E" if moe else "-"
    if attention_ratio + mlp_ratio > 1.0:
        problems.append(
            diag(
                "P607",
                f"the ratios add up to {attention_ratio + mlp_ratio:g}, more than every layer",
                None,
                help="attention + MLP must be at most 1; the rest of the layers are Mamba",
            )
        )
        return Generated(None, attention, mlp, problems)
    for name, value, count in (("attention", attention_ratio, attention), ("MLP", mlp_ratio, mlp)):
        if value > 0 and count == 0:
            problems.append(
                diag(
                    "P609",
                    f"the {name} ratio {value:g} of {num_layers} layers rounds to 0 layers",
                    None,
                    help=f"round({num_layers} x {value:g}) = 0 (half to even); raise the ratio or the layer count",
                )
            )
    if attention + mlp > num_layers:
        problems.append(
            diag(
                "P607",
                f"{attention} attention + {mlp} MLP layers do not fit in {num_layers} layers "
                f"(round({num_layers} x {attention_ratio:g}) + round({num_layers} x {mlp_ratio:g}))",
                None,
                label="rounding overflow",
                help="lower a ratio, or add layers",
            )
        )
        if megatron_compatible:
            wrong = megatron_pattern_from_ratios(num_layers, attention_ratio, mlp_ratio)
            problems.append(_miscount(wrong, attention, mlp, symbol))
        return Generated(None, attention, mlp, problems)
    if megatron_compatible:
        text = megatron_pattern_from_ratios(num_layers, attention_ratio, mlp_ratio)
        if text.count("*") != attention or text.count("-") != mlp:
            problems.append(_miscount(text, attention, mlp, symbol))
            return Generated(None, attention, mlp, problems)
        return Generated(text.replace("-", symbol), attention, mlp, problems)
    return Generated(even_pattern(num_layers, attention, mlp, mlp_symbol=symbol), attention, mlp, problems)


def _miscount(text: str, attention: int, mlp: int, symbol: str) -> Diagnostic:
    return diag(
        "P608",
        f"Megatron-Core's pattern_from_ratios returns {text.replace('-', symbol)!r} here: "
        f"{text.count('*')} attention and {text.count('-')} MLP layers instead of {attention} and {mlp}",
        None,
        label="wrong counts",
        help="drop --megatron-compatible for a pattern with the exact counts, or change the ratios",
        notes=("Megatron-Core does not check that the rounded counts fit (peer-survey §1.6)",),
    )
