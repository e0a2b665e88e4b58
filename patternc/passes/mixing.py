"""Mixing rules: which layer kinds may share one model."""

from __future__ import annotations

from collections.abc import Iterator

from patternc.diagnostics import Diagnostic, Label, diag
from patternc.kinds import BY_KIND, BY_SYMBOL, LayerKind, kind_def
from patternc.passes.manager import Context, Pass
from patternc.source import Span


def _first(ctx: Context, symbols: str) -> tuple[str, Span | None] | None:
    """The first layer (main, then MTP) whose symbol is in ``symbols``, with its span."""
    pattern = ctx.pattern
    if pattern.has_parallel:  # a parallel layer's other mixers are not in `flat`
        for layers, span_of in (
            (pattern.layers, ctx.source_map.layer_span),
            (pattern.mtp.layers if pattern.mtp else (), ctx.source_map.mtp_span),
        ):
            for layer in layers:
                found = next((BY_KIND[k].symbol for k in layer.kinds if BY_KIND[k].symbol in symbols), None)
                if found is not None:
                    return found, span_of(layer.index)
        return None
    main = [i for i in (pattern.flat.find(s) for s in symbols) if i >= 0]
    if main:
        index = min(main)
        return pattern.flat[index], ctx.source_map.layer_span(index)
    if pattern.mtp is not None:
        mtp = [i for i in (pattern.mtp.flat.find(s) for s in symbols) if i >= 0]
        if mtp:
            index = min(mtp)
            return pattern.mtp.flat[index], ctx.source_map.mtp_span(index)
    return None


def check_attention_mla_mix(ctx: Context) -> Iterator[Diagnostic]:
    """P106: ``*`` with ``D``/``+``, across main *and* MTP (Megatron checks each part alone: G1)."""
    mla = "".join(info.symbol for info in BY_SYMBOL.values() if info.mla_family)
    attention = _first(ctx, kind_def(LayerKind.ATTENTION).symbol)
    latent = _first(ctx, mla)
    if attention is None or latent is None:
        return
    symbol, span = latent
    yield diag(
        "P106",
        f"standard attention `*` and {BY_SYMBOL[symbol].description} `{symbol}` cannot be mixed",
        span,
        label=f"{BY_SYMBOL[symbol].description} here",
        help="Megatron-Core builds one attention family per model; use `*` or the MLA family, not both",
        secondary=[Label(attention[1], "standard attention here")] if attention[1] else [],
        notes=["the rule covers the main part and the multi-token-prediction parts together"],
    )


def check_mixed_ffn(ctx: Context) -> Iterator[Diagnostic]:
    """P201: ``-`` beside ``E``.  Jamba's and Qwen3-Next's configs place both by design, but Nemotron-H's
    configs, Megatron's checkpoint converter and llama.cpp take one FFN kind per model."""
    moe = _first(ctx, kind_def(LayerKind.MOE).symbol)
    mlp = _first(ctx, kind_def(LayerKind.MLP).symbol)
    if moe is None or mlp is None:
        return
    yield diag(
        "P201",
        "dense MLP `-` and mixture-of-experts `E` layers in one model",
        moe[1],
        label="first MoE layer",
        help="Megatron-Core, patternc's torch backend and Jamba-style configs build this; Nemotron-H "
        "configs, Megatron's checkpoint converter and llama.cpp take one FFN kind per model",
        secondary=[Label(mlp[1], "first MLP layer")] if mlp[1] else [],
    )


def check_sequence_mixer(ctx: Context) -> Iterator[Diagnostic]:
    """P202: a stack of only ``-``/``E`` never mixes information across tokens."""
    if ctx.pattern.num_layers == 0:
        return
    if not any(BY_SYMBOL[s].role.mixes_tokens for s in set(ctx.pattern.flat)):
        yield diag(
            "P202",
            "no sequence mixer: every layer is an MLP or MoE, so tokens never interact",
            Span.at(ctx.source_map.main[0]) if ctx.source_map.main else None,
            label="no `M`, `G` or attention layer",
            help="add Mamba `M` or attention `*` layers",
        )


PASSES = (
    Pass("attention-mla-mix", check_attention_mla_mix),
    Pass("mixed-ffn", check_mixed_ffn),
    Pass("sequence-mixer", check_sequence_mixer),
)
