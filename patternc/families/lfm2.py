"""The ``lfm2`` family: transformers' ``Lfm2ForCausalLM`` (Liquid AI's LFM2).

Every decoder layer is a gated short convolution (``C``) or grouped-query attention with q/k
RMSNorms (``*``), then a SwiGLU MLP (``-``) whose width transformers derives from
``intermediate_size`` (``block_auto_adjust_ff_dim``).  The layout is ``layer_types`` (``conv`` /
``full_attention``) or, in the first released configs, ``full_attn_idxs``.  Input model, key names,
layout reader and expresser (no target profile: ``build`` only).
"""

from __future__ import annotations

from typing import Any

from patternc.canonical.archs import (
    Config,
    Expression,
    as_float,
    as_int,
    common_fields,
    kind_findings,
    model_blocks,
    mtp_findings,
    pair_layers,
    paired_blocks,
)
from patternc.canonical.graph import BlockGraph, Frame, layer_label, lower_attention, lower_mlp, lower_short_conv
from patternc.config.ffn_readers import MlpKeys
from patternc.config.mixer_readers import AttentionKeys, read_attention
from patternc.config.models import ConfigModel, Eps, NonNegFloat, PosFloat, PosInt, TokenId
from patternc.config.readers import Built, Ctx, list_symbols, read_rope
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import AttentionSpec, MlpSpec, ModelSpec, NormSpec, RopeSpec, ShortConvSpec

KINDS = (LayerKind.SHORT_CONV, LayerKind.ATTENTION, LayerKind.MLP)
"""The layer kinds the family builds."""
CONV_S, ATTENTION_S, MLP_S = (symbol_of(kind) for kind in KINDS)

DEFAULT_THETA = 1_000_000.0
"""``Lfm2Config.default_theta``: the RoPE base when the config gives none (not transformers' usual 10,000)."""


class Lfm2Input(ConfigModel):
    """``model_type: lfm2`` (transformers ``Lfm2Config``): gated short convolutions ``C`` + attention ``*``."""

    vocab_size: PosInt = 65536
    hidden_size: PosInt = 2560
    intermediate_size: PosInt = 12288
    """Before ``block_auto_adjust_ff_dim``; ``block_ff_dim`` is its older spelling (an alias)."""
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt = 8
    max_position_embeddings: PosInt = 128_000
    initializer_range: NonNegFloat = 0.02
    norm_eps: Eps = 0.00001
    use_cache: bool = True
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId | list[int] = 2
    tie_word_embeddings: bool = True
    """``tie_embedding`` is its older spelling (an alias)."""
    rope_parameters: dict[str, Any] | None = None
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta`` (the released configs use it)."""
    head_dim: PosInt | None = None
    """Not a field of ``Lfm2Config``, but ``Lfm2Attention`` reads it when a config sets it;
    otherwise ``hidden_size // num_attention_heads``."""
    conv_bias: bool = False
    conv_L_cache: PosInt = 3
    block_multiple_of: PosInt = 256
    block_ffn_dim_multiplier: PosFloat = 1.0
    """``Lfm2Config`` types it ``float | int`` (no null), though ``Lfm2MLP`` tests it for None."""
    block_auto_adjust_ff_dim: bool = True
    full_attn_idxs: list[int] | None = None
    """Used only when ``layer_types`` is absent: the attention layers' indices."""
    layer_types: list[str] | None = None


LAYER_TYPES = {"conv": LayerKind.SHORT_CONV, "full_attention": LayerKind.ATTENTION}
"""``layer_types`` entries and the mixer kind each builds: ``Lfm2Model.forward`` masks by exactly these
two names (another name would build attention and then fail at the first forward)."""


def rope(ctx: Ctx[Any]) -> RopeSpec | None:
    """Whole-head RoPE (``compute_default_rope_parameters`` ignores a partial factor), base 1e6 by default."""
    params = ctx.model.rope_parameters or ctx.model.rope_scaling or {}
    given = params.get("rope_theta") is not None or ctx.model.rope_theta is not None
    rope = read_rope(ctx, 1.0, top_level_partial=False, uses_partial=False)
    if rope is None or given:
        return rope
    ctx.defaults_used[ctx.prefix + "rope_parameters.rope_theta"] = DEFAULT_THETA
    return RopeSpec(theta=DEFAULT_THETA)


ATTENTION = AttentionKeys(rope=rope, head_dim_derived=True, bias=None, qk_norm=True)
MLP = MlpKeys(intermediate_size="intermediate_size", activation="", gated=True)
"""The MLP's key (``activation`` is unused: ``Lfm2MLP`` hard-codes SiLU)."""


def ffn_width(ctx: Ctx[Lfm2Input]) -> int:
    """``Lfm2MLP.__init__`` (``modeling_lfm2.py``): with ``block_auto_adjust_ff_dim``, two thirds of
    ``intermediate_size``, times ``block_ffn_dim_multiplier``, rounded up to ``block_multiple_of``."""
    size: int = ctx.get("intermediate_size")
    if not ctx.get("block_auto_adjust_ff_dim"):
        ctx.vestigial(["block_ffn_dim_multiplier", "block_multiple_of"], "`block_auto_adjust_ff_dim` is false")
        return size
    size = int(2 * size / 3)
    size = int(ctx.get("block_ffn_dim_multiplier") * size)
    step = ctx.get("block_multiple_of")
    size = step * ((size + step - 1) // step)
    return size


def _layout(ctx: Ctx[Lfm2Input], n: int) -> tuple[str | None, str]:
    """The mixers, from ``layer_types``, else ``full_attn_idxs`` (``Lfm2Config.__post_init__``)."""
    m = ctx.model
    names = {name: symbol_of(kind) for name, kind in LAYER_TYPES.items()}
    if m.layer_types is not None:
        mixers = list_symbols(ctx, "layer_types", m.layer_types, names)
        if m.full_attn_idxs is not None and mixers is not None:
            placed = [i for i, s in enumerate(mixers) if s == names["full_attention"]]
            if sorted(set(m.full_attn_idxs)) != placed:  # transformers writes both, in agreement
                ctx.vestigial(
                    ["full_attn_idxs"], "it disagrees with `layer_types`, and transformers uses `layer_types`"
                )
        if mixers is not None and len(mixers) != n:
            ctx.add(
                "P908",
                f"{ctx.q('num_hidden_layers')} is {n}, but {ctx.q('layer_types')} has {len(mixers)} entries; "
                "transformers rejects this config",
                "num_hidden_layers" if ctx.has("num_hidden_layers") else "layer_types",
                secondary=ctx.secondary("layer_types"),
            )
            return None, "layer_types"
        return mixers, "layer_types"
    indices = ctx.get("full_attn_idxs")
    attention = set(range(n)) if indices is None else set(indices)
    ignored = sorted(i for i in attention if not 0 <= i < n)
    if ignored:
        ctx.add(
            "P916",
            f"{ctx.q('full_attn_idxs')} holds {', '.join(map(str, ignored))}, outside 0..{n - 1}; "
            "transformers ignores them",
            "full_attn_idxs",
            label="ignored",
        )
    return "".join(names["full_attention"] if i in attention else names["conv"] for i in range(n)), "full_attn_idxs"


def read(ctx: Ctx[Lfm2Input]) -> Built:
    """``configuration_lfm2.py`` and ``modeling_lfm2.py``: a short convolution or attention (q/k norms,
    no bias, RoPE over the whole head), then a SwiGLU MLP; plain RMSNorm everywhere, the final one
    (``embedding_norm``) after the last layer."""
    n = ctx.get("num_hidden_layers")
    mixers, field = _layout(ctx, n)
    if mixers is None:
        return Built(main_key=field)
    built = Built(main="".join(s + MLP_S for s in mixers), main_key=field)
    hidden = ctx.get("hidden_size")
    if ATTENTION_S in mixers:
        built.specs["attention"] = read_attention(ctx, ATTENTION, hidden)
    else:
        ctx.vestigial(["head_dim"], "the model has no attention layer")
    if CONV_S in mixers:
        built.specs["short_conv"] = ShortConvSpec(conv_kernel=ctx.get("conv_L_cache"), bias=ctx.get("conv_bias"))
    else:
        ctx.vestigial(["conv_L_cache", "conv_bias"], "the model has no convolution layer")
    width = ffn_width(ctx)
    if width <= 0:
        ctx.add(
            "P908",
            f"the MLP width transformers derives from {ctx.q('intermediate_size')} comes to {width}",
            "intermediate_size",
            label="no MLP channels",
        )
    else:
        built.specs["mlp"] = MlpSpec(intermediate_size=width, activation="silu", gated=True)
    built.specs["norm"] = NormSpec(eps=ctx.get("norm_eps"))
    return built


def _attention_spec(cfg: Config, hidden: int) -> AttentionSpec:
    heads = as_int(cfg, "num_attention_heads")
    theta = cfg["rope_parameters"]["rope_theta"]  # type: ignore[index]
    return AttentionSpec(
        num_heads=heads,
        num_kv_heads=as_int(cfg, "num_key_value_heads"),
        head_dim=as_int(cfg, "head_dim") if "head_dim" in cfg else hidden // heads,
        qk_norm=True,
        rope=RopeSpec(theta=float(theta)),
    )


def express(spec: ModelSpec) -> Expression:
    """Lfm2ForCausalLM: every layer is (short convolution or attention) + a SwiGLU MLP; the MLP width is
    written as is (``block_auto_adjust_ff_dim`` false) so that ``build`` gives the spec's width exactly."""
    arch = "lfm2"
    flat = spec.pattern.flat
    pairs, structural = pair_layers(flat, arch)
    structural = kind_findings(spec, KINDS, arch) + structural + mtp_findings(spec, arch)
    a, c, mlp_spec = spec.attention, spec.short_conv, spec.mlp
    cfg: Config = common_fields(spec, "norm_eps") | {
        "num_hidden_layers": len(pairs),
        "layer_types": ["full_attention" if flat[m] == ATTENTION_S else "conv" for m, _ in pairs],
        "intermediate_size": mlp_spec.intermediate_size if mlp_spec is not None else 12288,
        "block_auto_adjust_ff_dim": False,
        "conv_L_cache": c.conv_kernel if c is not None else 3,
        "conv_bias": c.bias if c is not None else False,
    }
    if a is not None:
        cfg |= {
            "num_attention_heads": a.num_heads,
            "num_key_value_heads": a.num_kv_heads,
            "head_dim": a.head_dim,
            "rope_parameters": {"rope_type": "default", "rope_theta": a.rope.theta if a.rope else DEFAULT_THETA},
        }
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "norm_eps")))
    attention = _attention_spec(cfg, spec.hidden_size) if a is not None else None
    conv = ShortConvSpec(conv_kernel=as_int(cfg, "conv_L_cache"), bias=bool(cfg["conv_bias"]))
    mlp = MlpSpec(intermediate_size=as_int(cfg, "intermediate_size"), activation="silu", gated=True)

    def mixer(j: int) -> BlockGraph:
        m = pairs[j][0]
        if flat[m] == ATTENTION_S and attention is not None:
            return lower_attention(frame, attention, layer_label(m, ATTENTION_S))
        return lower_short_conv(frame, conv, layer_label(m, CONV_S))

    def ffn(j: int) -> BlockGraph:
        f = pairs[j][1]
        return lower_mlp(frame, mlp, layer_label(f if f is not None else pairs[j][0], MLP_S))

    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    return Expression(arch, cfg, structural, [embed, *paired_blocks(pairs, mixer, ffn, flat, KINDS), head])


FAMILY = Family(
    name="lfm2",
    input_model=Lfm2Input,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-4,  # no other family builds `C`; before lfm2_moe (a dense stack is lfm2) and nemotron_h
    architectures=("Lfm2ForCausalLM",),
    aliases={"block_ff_dim": "intermediate_size", "tie_embedding": "tie_word_embeddings"},
    layout_keys=(("layer_types", "full_attn_idxs"),),
    layout_related=("num_hidden_layers",),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "head_dim"}),
)
