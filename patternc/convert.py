"""Conversions between the IR and the peers' spellings of a layer stack.

* flat string (``hybrid_override_pattern``): main layers only;
* Megatron-Core's unified string (``hybrid_layer_pattern``): ``|`` stages and ``/`` MTP depths;
* transformers' ``layers_block_type`` lists, in the current vocabulary
  (``linear_attention``/``full_attention``/``mlp``/``moe``) or the legacy one (``mamba``/``attention``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from patternc.api import parse
from patternc.diagnostics import Diagnostic, PatternError, diag
from patternc.dialects import Dialect
from patternc.ir import Pattern, make_pattern
from patternc.kinds import BY_KIND, BY_SYMBOL, Role, admitted, kinds
from patternc.limits import DEFAULT_LIMITS
from patternc.source import Source, Span


class Vocabulary(StrEnum):
    CURRENT = "current"
    """transformers 5.x: ``linear_attention``, ``full_attention``, ``mlp``, ``moe``."""
    LEGACY = "legacy"
    """Older checkpoints and the remote code: ``mamba``, ``attention``, ``mlp``, ``moe``."""


NAME_TO_SYMBOL: dict[str, str] = {
    **{info.hf_name: info.symbol for info in kinds() if info.hf_name},
    **{info.hf_legacy_name: info.symbol for info in kinds() if info.hf_legacy_name},
}
"""Every list name patternc reads, in both vocabularies."""


def unified(pattern: Pattern) -> str:
    """The unified string: stages joined by ``|``, then one ``/part`` per MTP depth, in the ``patternc``
    dialect (every kind's symbol; Megatron-Core's spelling when every kind is Megatron's)."""
    main = "|".join("".join(stage) for stage in pattern.stage_spellings())
    if pattern.mtp is None:
        return main
    return main + ("/" + "".join(pattern.mtp.spelled)) * pattern.mtp.depths


def megatron_lacks(pattern: Pattern) -> list[str]:
    """The symbols of ``pattern``'s kinds (MTP included) that Megatron-Core's alphabet lacks, in table order."""
    used = pattern.kinds()
    return [info.symbol for info in kinds() if info.kind in used and not admitted(info, Dialect.MEGATRON.value)]


def to_megatron(pattern: Pattern) -> str:
    """Megatron-Core's unified ``hybrid_layer_pattern``: ``unified(pattern)``, refused (``P002``, one
    diagnostic per kind, at its first layer) when a kind has no symbol in Megatron's alphabet: printing
    patternc's symbol there would be a string Megatron rejects, not its spelling of the model."""
    lacking = megatron_lacks(pattern)
    text = unified(pattern)
    if pattern.has_parallel:
        at = text.index("[")
        problem = diag(
            "P018",
            "parallel layers `[...]` are not part of dialect megatron",
            Span(at, text.index("]", at) + 1),
            label="Megatron-Core builds one mixer per layer",
            help="the pattern has no Megatron spelling (`--to fmt` or `--to flat` keep it in patternc's)",
        )
        raise PatternError([problem], Source(text, "<pattern>"))
    if not lacking:
        return text
    megatron = "".join(info.symbol for info in kinds() if admitted(info, Dialect.MEGATRON.value))
    problems = [
        diag(
            "P002",
            f"{BY_SYMBOL[symbol].description} `{symbol}` is not a layer symbol of dialect megatron",
            Span(text.index(symbol), text.index(symbol) + 1),
            label="Megatron-Core has no such layer",
            help=f"Megatron-Core's alphabet is {', '.join(f'`{s}`' for s in megatron)}; "
            "the pattern has no Megatron spelling (`--to fmt` or `--to flat` keep it in patternc's)",
        )
        for symbol in lacking
    ]
    raise PatternError(problems, Source(text, "<pattern>"))


def from_megatron(text: str) -> Pattern:
    return parse(text, Dialect.MEGATRON)


def to_layers_block_type(layers: Sequence[str], vocabulary: Vocabulary | str = Vocabulary.CURRENT) -> list[str]:
    """Names for a flat symbol string or each layer's spelling (``pattern.spelled``): a parallel
    layer (``[*M]``) has no name, since a transformers layer list gives each layer one type (P018)."""
    vocabulary = Vocabulary(vocabulary)
    names: list[str] = []
    problems: list[Diagnostic] = []
    for index, symbol in enumerate(layers):
        info = BY_SYMBOL.get(symbol)
        if symbol.startswith("[") and len(symbol) > 1:
            problems.append(
                diag(
                    "P018",
                    f"layer {index} `{symbol}` runs mixers in parallel: no `layers_block_type` name says that",
                    None,
                    help="a transformers layer list names one type per layer; keep the pattern in patternc's dialect",
                )
            )
            continue
        if info is None:
            problems.append(
                diag(
                    "P001",
                    f"layer {index} `{symbol}` is not a layer symbol",
                    Span(index, index + 1),
                    help="pass `pattern.flat` (symbols such as `M`, `*`, `-`, `E`)",
                )
            )
            continue
        name = info.hf_name if vocabulary is Vocabulary.CURRENT else info.hf_legacy_name
        if name is None:
            problems.append(
                diag(
                    "P015",
                    f"layer {index} `{symbol}` ({info.description}) has no transformers `layers_block_type` name",
                    None,
                    help="transformers' nemotron_h builds only `M`, `*`, `-` and `E` layers",
                )
            )
            continue
        names.append(name)
    if problems:
        raise PatternError(problems, Source("".join(layers), "<pattern>"))
    return names


def from_layers_block_type(names: Sequence[str], mtp_names: Sequence[str] = (), mtp_depths: int = 1) -> Pattern:
    """Read ``layers_block_type`` (and ``mtp_layers_block_type``) lists in either vocabulary.

    Bounded like pattern text: more layers than ``DEFAULT_LIMITS.max_layers`` is ``P011``, checked
    before any name is read."""
    for given, field_name in ((names, "layers_block_type"), (mtp_names, "mtp_layers_block_type")):
        if isinstance(given, str | bytes):
            problem = diag(
                "P014",
                f"{field_name} is a string, not a list of layer type names",
                None,
                help='e.g. ["mamba", "attention", "mlp"]',
            )
            raise PatternError([problem], Source(repr(given)[:200], "<layers_block_type>"))
    depths = max(mtp_depths, 0) if mtp_names else 0
    total = len(names) + len(mtp_names) * depths
    if total > DEFAULT_LIMITS.max_layers:
        raise PatternError(
            [diag("P011", f"{total:,} layers, above the limit of {DEFAULT_LIMITS.max_layers:,}", None)],
            Source("", "<layers_block_type>"),
        )
    main, problems = _symbols(names, "layers_block_type")
    mtp, mtp_problems = _symbols(mtp_names, "mtp_layers_block_type")
    problems.extend(mtp_problems)
    if not main:
        problems.append(diag("P101", "the main pattern has no layer", None, label="empty list"))
    if problems:
        raise PatternError(problems, Source(repr(list(names)), "<layers_block_type>"))
    return make_pattern(main, None, mtp, mtp_depths if mtp else 0)


def _symbols(names: Sequence[str], field_name: str) -> tuple[str, list[Diagnostic]]:
    symbols: list[str] = []
    problems: list[Diagnostic] = []
    known = ", ".join(f"`{n}`" for n in sorted(NAME_TO_SYMBOL))
    for index, name in enumerate(names):
        symbol = NAME_TO_SYMBOL.get(name) if isinstance(name, str) else None
        if symbol is None:
            problems.append(
                diag(
                    "P014",
                    f"{field_name}[{index}] is {name!r}, which is not a layer type",
                    None,
                    help=f"known layer types: {known}",
                )
            )
        else:
            symbols.append(symbol)
    return "".join(symbols), problems


def attention_indices(pattern: Pattern) -> list[int]:
    """0-based indices of the main layers that hold a KV cache (attention of any kind)."""
    attention = {info.symbol for info in kinds() if info.role is Role.ATTENTION}
    if pattern.has_parallel:  # a parallel layer holds a KV cache when any of its mixers does
        return [layer.index for layer in pattern.layers if any(BY_KIND[k].role is Role.ATTENTION for k in layer.kinds)]
    return [index for index, symbol in enumerate(pattern.flat) if symbol in attention]
