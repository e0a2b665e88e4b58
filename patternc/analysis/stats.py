"""Whole-model figures: parameters, FLOPs per token and inference memory (``patternc stats``).

``model_stats(spec, seq_len=, batch=, dtype=)`` returns a ``Stats`` (pydantic, the ``--json``
output and its schema ``stats-output``).  The formulas are in ``docs/analysis.md``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel

from patternc.analysis.costs import LayerCost, layer_cost, mtp_overhead, parallel_cost
from patternc.ir import Layer
from patternc.model import ModelSpec
from patternc.symbols import BY_KIND, SYMBOL_ORDER

STATS_SCHEMA_VERSION: Literal[1] = 1

DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp32": 4}


class _Out(BaseModel, frozen=True, extra="forbid"):
    """Base of the output models."""


class KindParams(_Out):
    kind: str
    symbol: str
    layers: int
    params: int
    """Stored elements of all layers of this kind (pre-norms included)."""
    active: int
    """Parameters per token of all layers of this kind."""


class Params(_Out):
    total: int
    """Every element the checkpoint stores for the main model (MTP excluded): the state_dict count."""
    embedding: int
    """The input embedding table (vocab_size x hidden_size)."""
    lm_head: int
    """The output projection; 0 when it is tied to the embedding (stored once)."""
    final_norm: int
    layers: int
    """The main decoder layers, pre-norms included."""
    active: int
    """Parameters a token uses, the embedding table included (MoE: top_k routed experts)."""
    active_without_embedding: int
    """``active`` less the embedding table (an untied LM head stays: it is a matmul every token runs)."""
    mtp: int
    """The multi-token-prediction block alone (all depths); it shares the embedding and LM head."""
    per_kind: list[KindParams]


class Flops(_Out):
    prefill: int
    """FLOPs per token of a prefill of seq_len tokens (the total divided by seq_len, rounded)."""
    decode: int
    """FLOPs of one decoded token attending seq_len keys (its own included)."""
    mtp_prefill: int
    mtp_decode: int


class Memory(_Out):
    weights: int
    """Main-model parameters x bytes per element."""
    mtp_weights: int
    kv_cache: int
    """Attention layers: 2 x kv_heads x head_dim x min(seq_len, window) x batch x bytes."""
    ssm_state: int
    """Mamba / gated DeltaNet layers: conv window + recurrent state x batch x bytes (independent of seq_len)."""
    total: int
    """weights + kv_cache + ssm_state (MTP excluded)."""


class LayerRow(_Out):
    index: int
    symbol: str
    kind: str
    params: int
    active: int
    flops_prefill: int
    flops_decode: int
    kv_cache_bytes: int
    state_bytes: int


class Settings(_Out):
    seq_len: int
    batch: int
    dtype: Literal["bf16", "fp16", "fp32"]
    bytes_per_element: int


class MtpStats(_Out):
    depths: int
    pattern: str
    """The layers of one depth."""
    params_per_depth: int
    overhead_per_depth: int
    """enorm + hnorm + eh_proj (2h -> h, no bias) + final norm."""
    layers: list[LayerRow]
    """The layers of one depth."""


class Stats(_Out):
    schema_version: Literal[1] = STATS_SCHEMA_VERSION
    ok: Literal[True] = True
    """Always true here; a failure prints a ``Failure`` object (``ok: false``) instead."""
    source: str
    """What was read: the config path, or the pattern text."""
    dialect: str
    """The config's model_type (``nemotron_h`` for a bare pattern without ``--like``)."""
    defaults: bool
    """True when SOURCE was a bare pattern sized with patternc's defaults (``build``'s ``PATTERN_DEFAULTS``)."""
    like: str | None = None
    """The config whose hyper-parameters a bare pattern took (``--like``)."""
    overrides: dict[str, Any] = {}
    """The ``--set KEY=VALUE`` values applied to the defaults or to the ``--like`` config."""
    pattern: str
    """Megatron's unified string of the model."""
    settings: Settings
    params: Params
    flops_per_token: Flops
    memory_bytes: Memory
    layers: list[LayerRow]
    mtp: MtpStats | None


def tied(spec: ModelSpec) -> bool:
    """Whether the checkpoint stores the LM head and the embedding as one tensor (``Family.ties_embeddings``)."""
    from patternc import families

    family = families.find(spec.source)
    return spec.tie_embeddings and (family is None or family.ties_embeddings)


def round_half_up(value: Fraction) -> int:
    """The nearest integer, halves rounded up: how every FLOP figure of ``stats`` and ``split`` is shown."""
    return int(value.numerator * 2 + value.denominator) // (2 * value.denominator)


def prefill_flops(cost: LayerCost, seq_len: int) -> Fraction:
    """Mean FLOPs per token over a prefill of ``seq_len`` tokens (token t attends min(t, window) keys,
    or min(t, top-k) for sparse attention; a sparse attention's indexer scores all t)."""
    scanned = keys = seq_len * (seq_len + 1) // 2
    cap = cost.attended_cap
    if cap is not None and seq_len > cap:
        keys = cap * (cap + 1) // 2 + (seq_len - cap) * cap
    flops = Fraction(cost.attn_flops_per_key * keys + cost.index_flops_per_key * scanned, seq_len)
    return Fraction(2 * cost.matmul + cost.other_flops, 1) + flops


def _row(index: int, kind: str, cost: LayerCost, seq_len: int, batch: int, size: int) -> LayerRow:
    cached = seq_len if cost.window is None else min(seq_len, cost.window)
    return LayerRow(
        index=index,
        symbol=_spelling(kind),
        kind=str(kind),
        params=cost.params,
        active=cost.active,
        flops_prefill=round_half_up(prefill_flops(cost, seq_len)),
        flops_decode=cost.flops_at(seq_len),
        kv_cache_bytes=cost.kv_elems_per_token * cached * batch * size,
        state_bytes=cost.state_elems * batch * size,
    )


_PARALLEL_JOIN = "&"
"""Joins the kinds of a parallel layer into its row's kind (``attention&mamba2``, spelled ``[*M]``)."""


def _key(layer: Layer) -> str:
    """The row kind of ``layer``: its kind, or its mixers joined for a parallel layer."""
    return _PARALLEL_JOIN.join(layer.kinds) if layer.parallel else layer.kind


def _spelling(key: str) -> str:
    kinds = key.split(_PARALLEL_JOIN)
    symbols = "".join(BY_KIND[k].symbol for k in kinds)
    return symbols if len(kinds) == 1 else f"[{symbols}]"


def _order(key: str) -> tuple[int, int]:
    """Single kinds in table order, then the parallel combinations, by their first kind."""
    kinds = key.split(_PARALLEL_JOIN)
    return (len(kinds) > 1, SYMBOL_ORDER[BY_KIND[kinds[0]].symbol])


def model_stats(
    spec: ModelSpec,
    *,
    seq_len: int = 4096,
    batch: int = 1,
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16",
    source: str = "",
    defaults: bool = False,
    like: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Stats:
    """Every figure of ``patternc stats``; ``CostError`` if a layer kind has no hyper-parameters."""
    if seq_len < 1 or batch < 1:
        raise ValueError("seq_len and batch must be positive")
    size = DTYPE_BYTES[dtype]
    h, vocab = spec.hidden_size, spec.vocab_size
    pattern = spec.pattern
    costs = {kind: layer_cost(spec, kind) for kind in sorted(pattern.kinds(), key=str)}
    if pattern.has_parallel:  # each parallel layer's combination is one more "kind" of row: `attention&mamba2`
        for layer in (*pattern.layers, *(pattern.mtp.layers if pattern.mtp else ())):
            if layer.parallel:
                costs[_key(layer)] = parallel_cost(h, tuple(costs[k] for k in layer.kinds))
    rows = [_row(layer.index, _key(layer), costs[_key(layer)], seq_len, batch, size) for layer in pattern.layers]
    embedding = vocab * h
    lm_head = 0 if tied(spec) else vocab * h
    final_norm = h
    layers_params = sum(r.params for r in rows)
    layers_active = sum(r.active for r in rows)
    total = embedding + lm_head + final_norm + layers_params
    active = embedding + lm_head + final_norm + layers_active
    head_flops = 2 * vocab * h
    prefill = sum((prefill_flops(costs[_key(layer)], seq_len) for layer in pattern.layers), Fraction(0)) + head_flops
    decode = sum(costs[_key(layer)].flops_at(seq_len) for layer in pattern.layers) + head_flops
    per_kind = []
    for kind in sorted(costs, key=_order):
        count = sum(1 for layer in pattern.layers if _key(layer) == kind)
        if count:
            per_kind.append(
                KindParams(
                    kind=str(kind),
                    symbol=_spelling(kind),
                    layers=count,
                    params=count * costs[kind].params,
                    active=count * costs[kind].active,
                )
            )
    mtp = None
    mtp_params = mtp_prefill = mtp_decode = mtp_bytes = 0
    if pattern.mtp is not None:
        mtp_rows = [
            _row(layer.index, _key(layer), costs[_key(layer)], seq_len, batch, size) for layer in pattern.mtp.layers
        ]
        overhead = mtp_overhead(h)
        per_depth = overhead + sum(r.params for r in mtp_rows)
        depths = pattern.mtp.depths
        mtp_params = depths * per_depth
        # eh_proj per depth, and the shared LM head once per depth
        extra = 2 * 2 * h * h + head_flops
        mtp_prefill = depths * (sum(r.flops_prefill for r in mtp_rows) + extra)
        mtp_decode = depths * (sum(r.flops_decode for r in mtp_rows) + extra)
        mtp_bytes = mtp_params * size
        mtp = MtpStats(
            depths=depths,
            pattern="".join(pattern.mtp.spelled),
            params_per_depth=per_depth,
            overhead_per_depth=overhead,
            layers=mtp_rows,
        )
    kv = sum(r.kv_cache_bytes for r in rows)
    state = sum(r.state_bytes for r in rows)
    from patternc.convert import unified

    return Stats(
        source=source,
        dialect=spec.source,
        defaults=defaults,
        like=like,
        overrides=dict(overrides or {}),
        pattern=unified(pattern),
        settings=Settings(seq_len=seq_len, batch=batch, dtype=dtype, bytes_per_element=size),
        params=Params(
            total=total,
            embedding=embedding,
            lm_head=lm_head,
            final_norm=final_norm,
            layers=layers_params,
            active=active,
            active_without_embedding=active - embedding,
            mtp=mtp_params,
            per_kind=per_kind,
        ),
        flops_per_token=Flops(
            prefill=round_half_up(prefill), decode=decode, mtp_prefill=mtp_prefill, mtp_decode=mtp_decode
        ),
        memory_bytes=Memory(
            weights=total * size, mtp_weights=mtp_bytes, kv_cache=kv, ssm_state=state, total=total * size + kv + state
        ),
        layers=rows,
        mtp=mtp,
    )
