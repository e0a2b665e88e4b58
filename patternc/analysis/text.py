"""Plain-text rendering of ``stats`` and ``split`` results (deterministic, no colour)."""

from __future__ import annotations

from patternc.analysis.stats import LayerRow, Stats
from patternc.inputs import describe_sizes


def human(value: float, unit: str = "") -> str:
    """``31.58 B``, ``3.23 GFLOP``, ``6.71 GiB``-style short forms (decimal for counts, binary for bytes)."""
    if unit == "B":
        for binary, name in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            scale = float(binary)
            if abs(value) >= scale:
                return f"{value / scale:.2f} {name}"
        return f"{value:.0f} B"
    for scale, name in ((1e12, "T"), (1e9, "G" if unit else "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {name}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _line(label: str, value: int, unit: str = "", note: str = "") -> str:
    text = f"  {label:<28}{value:>20,}  {human(value, unit):>12}"
    return text + (f"  {note}" if note else "")


def _table(rows: list[LayerRow]) -> list[str]:
    head = f"  {'layer':>5} {'sym':>3} {'kind':<14}{'params':>16}{'active':>16}{'prefill FLOPs':>18}"
    head += f"{'decode FLOPs':>18}{'KV bytes':>16}{'state bytes':>14}"
    out = [head]
    for r in rows:
        out.append(
            f"  {r.index:>5} {r.symbol:>3} {r.kind:<14}{r.params:>16,}{r.active:>16,}{r.flops_prefill:>18,}"
            f"{r.flops_decode:>18,}{r.kv_cache_bytes:>16,}{r.state_bytes:>14,}"
        )
    return out


def _decoder_layers(s: Stats) -> str:
    """``: 32 decoder layers × (mixer + FFN)`` when the config's family pairs each mixer with its FFN."""
    from patternc.wording import decoder_layers

    pairs = decoder_layers(s.pattern.split("/")[0].replace("|", ""), s.dialect)
    return "" if pairs is None else f" = {pairs} decoder layers × (mixer + FFN)"


def render_stats(s: Stats) -> str:
    p, f, m, st = s.params, s.flops_per_token, s.memory_bytes, s.settings
    lines = [f"source      {s.source}"]
    sizes = describe_sizes(s.defaults, s.like, s.overrides)
    lines.append(f"sizes       {sizes}" if sizes is not None else f"model_type  {s.dialect}")
    lines.append(f"pattern     {s.pattern}")
    lines.append(
        f"layers      {len(s.layers)} ("
        + ", ".join(f"{k.symbol} {k.layers}" for k in p.per_kind)
        + ")"
        + _decoder_layers(s)
    )
    lines.append(f"settings    seq-len {st.seq_len}, batch {st.batch}, {st.dtype} ({st.bytes_per_element} bytes)")
    lines.append("")
    lines.append("parameters (stored elements: the state_dict, buffers included)")
    lines.append(_line("total", p.total, "", "MTP excluded"))
    lines.append(_line("embedding", p.embedding))
    lines.append(_line("lm head", p.lm_head, "", "tied: stored once" if p.lm_head == 0 else ""))
    lines.append(_line("final norm", p.final_norm))
    lines.append(_line("layers", p.layers))
    for k in p.per_kind:
        lines.append(_line(f"  {k.kind} ({k.symbol} x{k.layers})", k.params))
    lines.append(_line("active per token", p.active, "", "embedding included"))
    lines.append(_line("active without embedding", p.active_without_embedding))
    if s.mtp is not None:
        lines.append(
            _line("mtp", p.mtp, "", f"{s.mtp.depths} depth(s) of {s.mtp.pattern!r}, shares embedding and LM head")
        )
    else:
        lines.append(_line("mtp", 0, "", "no MTP block"))
    lines.append("")
    lines.append("FLOPs per token")
    lines.append(_line(f"prefill ({st.seq_len} tokens)", f.prefill, "FLOP"))
    lines.append(_line(f"decode (context {st.seq_len})", f.decode, "FLOP"))
    if s.mtp is not None:
        lines.append(_line("mtp prefill", f.mtp_prefill, "FLOP"))
        lines.append(_line("mtp decode", f.mtp_decode, "FLOP"))
    lines.append("")
    lines.append(f"inference memory (batch {st.batch}, context {st.seq_len}, {st.dtype})")
    lines.append(_line("weights", m.weights, "B"))
    lines.append(_line("kv cache (attention)", m.kv_cache, "B", "grows with the context"))
    lines.append(_line("conv + ssm state (Mamba)", m.ssm_state, "B", "independent of the context"))
    lines.append(_line("total", m.total, "B"))
    if s.mtp is not None:
        lines.append(_line("mtp weights", m.mtp_weights, "B", "not in the total"))
    lines.append("")
    lines.append("per layer")
    lines.extend(_table(s.layers))
    if s.mtp is not None:
        lines.append("")
        lines.append(
            f"mtp depth (x{s.mtp.depths}): {s.mtp.params_per_depth:,} parameters, "
            f"{s.mtp.overhead_per_depth:,} of them enorm + hnorm + eh_proj + final norm"
        )
        lines.extend(_table(s.mtp.layers))
    return "\n".join(lines) + "\n"
