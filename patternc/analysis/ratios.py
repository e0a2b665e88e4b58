"""Patterns from layer ratios (``patternc gen``).

``even_pattern`` places exact counts evenly; ``megatron_pattern_from_ratios`` reproduces
Megatron-Core's ``pattern_from_ratios`` (``hybrid_layer_allocation.py``, peer-survey §1.6)
character for character.  ``generate`` wraps both and reports what cannot be built as
diagnostics instead of returning a pattern with the wrong counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patternc.diagnostics import Diagnostic, diag
from patternc.kinds import LayerKind, Role, kind_def, kinds
from patternc.limits import DEFAULT_LIMITS

_MAMBA = kind_def(LayerKind.MAMBA2).symbol
_ATTENTION = kind_def(LayerKind.ATTENTION).symbol
_MLP = kind_def(LayerKind.MLP).symbol
_MOE = kind_def(LayerKind.MOE).symbol
"""The kinds ratios place (Megatron's ``pattern_from_ratios`` knows these four), spelled by the kind table."""


def ratio_count(num_layers: int, ratio: float) -> int:
    """Layers of a kind for ``ratio``: ``round(num_layers * ratio)``, Python's half-to-even, as Megatron."""
    return round(num_layers * ratio)


def spread(slots: int, count: int) -> list[int]:
    """``count`` distinct positions in ``range(slots)``, one at the centre of each of ``count`` equal blocks."""
    if not 0 <= count <= slots:
        raise ValueError("count must be between 0 and slots")
    return [(2 * i + 1) * slots // (2 * count) for i in range(count)]


def even_pattern(num_layers: int, attention: int, mlp: int, *, mlp_symbol: str = _MLP) -> str:
    """Exactly ``attention`` ``*`` and ``mlp`` FFN layers among ``num_layers``, the rest ``M``, each evenly spread.

    Attention goes to the centres of ``attention`` equal blocks of the stack; the FFN layers to the
    centres of ``mlp`` equal blocks of the layers left.
    """
    if attention < 0 or mlp < 0 or attention + mlp > num_layers:
        raise ValueError("the counts do not fit in the layers")
    layers = [_MAMBA] * num_layers
    for position in spread(num_layers, attention):
        layers[position] = _ATTENTION
    free = [i for i, symbol in enumerate(layers) if symbol == _MAMBA]
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
    layers = [_MAMBA] * num_layers
    x = section_len
    for i in range(num_layers):
        if x < 0.5:
            layers[i] = _ATTENTION
            x += section_len
        else:
            x -= 1
    mlp_count = round(num_layers * mlp_ratio)
    if mlp_count > 0:
        mamba_count -= mlp_count
        ratio = mamba_count / mlp_count
        x = ratio
        for i in range(num_layers):
            if layers[i] == _MAMBA:
                if x < 0.5:
                    layers[i] = _MLP
                    x += ratio
                else:
                    x -= 1
    return "".join(layers)


def block_pattern(num_layers: int, attention: int, ffn: int, *, ffn_symbol: str = _MLP) -> str:
    """Exactly ``attention`` ``*`` and ``ffn`` FFN layers among ``num_layers``, as mixer-then-FFN blocks.

    The ``num_layers - ffn`` mixers form the backbone; the attention layers sit at the centres of
    ``attention`` equal blocks of it.  Each FFN follows its own mixer: the attention mixers get
    theirs first (an attention layer followed by an FFN, as every released hybrid has it), the rest
    go to the centres of equal blocks of the Mamba mixers.  So the pattern never starts with an FFN
    and never has two FFNs in a row.  ``ValueError`` when there are more FFN layers than mixers.
    """
    mixers = num_layers - ffn
    if attention < 0 or ffn < 0 or attention > mixers or ffn > mixers:
        raise ValueError("the counts do not fit in mixer-then-FFN blocks")
    kinds = [_MAMBA] * mixers
    for position in spread(mixers, attention):
        kinds[position] = _ATTENTION
    attention_at = [i for i, k in enumerate(kinds) if k == _ATTENTION]
    mamba_at = [i for i, k in enumerate(kinds) if k == _MAMBA]
    if ffn <= attention:
        with_ffn = {attention_at[i] for i in spread(attention, ffn)}
    else:
        with_ffn = set(attention_at) | {mamba_at[i] for i in spread(len(mamba_at), ffn - attention)}
    return "".join(k + (ffn_symbol if i in with_ffn else "") for i, k in enumerate(kinds))


@dataclass(slots=True)
class Generated:
    pattern: str | None
    """None when the request cannot be met; Megatron's spelling (``/`` before each MTP depth) otherwise."""
    attention: int
    mlp: int
    diagnostics: list[Diagnostic] = field(default_factory=list)
    mtp: str | None = None
    """The layers of one MTP depth, or None."""
    source_text: str = ""
    """The text the diagnostics' spans point into (``--mtp-pattern``), empty when they have none."""


LAYOUTS = ("blocks", "spread")
"""``blocks``: mixer-then-FFN blocks (``block_pattern``); ``spread``: each kind spread on its own (``even_pattern``)."""


def generate(
    num_layers: int,
    attention_ratio: float,
    mlp_ratio: float = 0.0,
    *,
    moe: bool = False,
    megatron_compatible: bool = False,
    layout: str = "blocks",
    mtp_depths: int = 0,
    mtp_pattern: str | None = None,
    mixer: str = _MAMBA,
    attention_kind: str = _ATTENTION,
) -> Generated:
    """A pattern of ``num_layers`` layers with the requested ratios, or diagnostics saying why not.

    ``mtp_depths`` appends that many multi-token-prediction parts, each ``mtp_pattern`` (default:
    attention and the model's FFN, ``*E`` with ``moe``, else ``*-``).  ``mixer`` spells the
    linear-time mixers (every layer that is neither attention nor FFN: Mamba2 by default, or gated
    DeltaNet, KDA, lightning, Mamba-1, short convolution) and ``attention_kind`` the attention layers
    (``*``, or latent ``+`` / sparse ``D``): the placement does not depend on them, so Qwen3-Next's
    ``G``-and-``*`` or Kimi Linear's ``K``-and-``+`` stacks come from the same ratios.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout is one of {LAYOUTS}")
    problems: list[Diagnostic] = [
        *_symbol_problem("--mixer", mixer, Role.SSM),
        *_symbol_problem("--attention-kind", attention_kind, Role.ATTENTION),
    ]
    for name, value in (("--attention", attention_ratio), ("--mlp", mlp_ratio)):
        if not 0.0 <= value <= 1.0:
            problems.append(
                diag(
                    "P607",
                    f"{name} is {value}, but a ratio is between 0 and 1",
                    None,
                    help="a ratio is a share of the layers, e.g. 0.1 for one layer in ten",
                )
            )
    if num_layers < 1:
        problems.append(
            diag(
                "P607",
                f"--layers is {num_layers}, but a pattern has at least one layer",
                None,
                help="give --layers N with N >= 1",
            )
        )
    elif num_layers > DEFAULT_LIMITS.max_layers:
        problems.append(
            diag(
                "P011",
                f"--layers is {num_layers:,}, above the limit of {DEFAULT_LIMITS.max_layers:,} layers",
                None,
                help="no released model has more than a few hundred layers",
            )
        )
    if mtp_depths < 0:
        problems.append(
            diag(
                "P607",
                f"--mtp is {mtp_depths}, but a model has 0 or more MTP depths",
                None,
                help="give --mtp D with D >= 0 (the number of `/` parts)",
            )
        )
    symbol = _MOE if moe else _MLP
    mtp = None
    if mtp_depths > 0 or mtp_pattern is not None:
        mtp, found = _mtp_part(mtp_pattern, symbol, mtp_depths, attention_kind)
        if found:
            return Generated(None, 0, 0, problems + found, None, mtp_pattern or "")
    if problems:
        return Generated(None, 0, 0, problems)
    attention = ratio_count(num_layers, attention_ratio)
    mlp = ratio_count(num_layers, mlp_ratio)
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
    if moe and mlp_ratio == 0:
        problems.append(
            diag(
                "P612",
                "--moe makes the FFN layers mixtures of experts, but --mlp is 0: the pattern has no FFN layer",
                None,
                help="give the FFN share with --mlp, e.g. --mlp 0.5 for an FFN after every other layer",
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
    suffix = "/" + mtp if mtp else ""
    if megatron_compatible:
        text = megatron_pattern_from_ratios(num_layers, attention_ratio, mlp_ratio)
        if text.count(_ATTENTION) != attention or text.count(_MLP) != mlp:
            problems.append(_miscount(text, attention, mlp, symbol))
            return Generated(None, attention, mlp, problems)
        main = _spelled(text.replace(_MLP, symbol), mixer, attention_kind)
        return Generated(main + suffix * mtp_depths, attention, mlp, problems, mtp)
    if layout == "spread":
        main = _spelled(even_pattern(num_layers, attention, mlp, mlp_symbol=symbol), mixer, attention_kind)
        return Generated(main + suffix * mtp_depths, attention, mlp, problems, mtp)
    mixers = num_layers - mlp
    if mlp > mixers:
        problems.append(
            diag(
                "P613",
                f"{mlp} FFN layers need a mixer before each, but only {mixers} of the {num_layers} layers are mixers",
                None,
                help=f"lower --mlp to at most {num_layers // 2 / num_layers:g} (one FFN per mixer), "
                "or use --layout spread, which places FFN layers back to back",
            )
        )
        return Generated(None, attention, mlp, problems)
    main = _spelled(block_pattern(num_layers, attention, mlp, ffn_symbol=symbol), mixer, attention_kind)
    return Generated(main + suffix * mtp_depths, attention, mlp, problems, mtp)


def _spelled(pattern: str, mixer: str, attention_kind: str) -> str:
    """``pattern`` (placed with ``M`` and ``*``) with the requested mixer and attention symbols."""
    table: dict[str, str | int | None] = {_MAMBA: mixer, _ATTENTION: attention_kind}
    return pattern.translate(str.maketrans(table))


def _symbol_problem(option: str, symbol: str, role: Role) -> list[Diagnostic]:
    """P607 when ``symbol`` is not one character spelling a kind of ``role``."""
    allowed = [d for d in kinds() if d.role is role]
    if any(d.symbol == symbol for d in allowed):
        return []
    what = "an attention" if role is Role.ATTENTION else "a linear-time mixer"
    return [
        diag(
            "P607",
            f"{option} is {symbol!r}, which is not the symbol of {what} kind",
            None,
            help=f"give one of {', '.join(f'`{d.symbol}` ({d.description})' for d in allowed)}",
        )
    ]


def _mtp_part(
    text: str | None, ffn_symbol: str, depths: int, attention_kind: str = _ATTENTION
) -> tuple[str | None, list[Diagnostic]]:
    """One MTP depth's layers: ``text`` (``--mtp-pattern``) checked as a main pattern, or attention and the FFN."""
    if text is None:
        return attention_kind + ffn_symbol, []
    if depths < 1:
        return None, [
            diag(
                "P607",
                "--mtp-pattern without --mtp: no MTP depth would use it",
                None,
                help="add --mtp D for D MTP depths of this pattern",
            )
        ]
    from patternc.api import analyze

    analysis = analyze(text, "patternc", origin="--mtp-pattern")
    errors = [d for d in analysis.diagnostics if d.severity.value == "error"]
    if errors or analysis.pattern is None:
        return None, errors
    if len(analysis.pattern.stages) > 1 or analysis.pattern.mtp is not None:
        return None, [
            diag(
                "P607",
                "--mtp-pattern is the layers of one MTP depth, without `|` or `/`",
                None,
                help="give the symbols of one depth, e.g. --mtp-pattern '*E', and the depths with --mtp",
            )
        ]
    return analysis.pattern.flat, []


def _miscount(text: str, attention: int, mlp: int, symbol: str) -> Diagnostic:
    return diag(
        "P608",
        f"Megatron-Core's pattern_from_ratios returns {text.replace(_MLP, symbol)!r} here: "
        f"{text.count(_ATTENTION)} attention and {text.count(_MLP)} MLP layers instead of {attention} and {mlp}",
        None,
        label="wrong counts",
        help="drop --megatron-compatible for a pattern with the exact counts, or change the ratios",
        notes=("Megatron-Core does not check that the rounded counts fit (peer-survey §1.6)",),
    )
