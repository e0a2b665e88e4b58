"""The ``falcon_h1`` family: transformers' ``FalconH1ForCausalLM`` (TII's Falcon-H1).

Every decoder layer runs attention and a Mamba2 mixer side by side on the same normed input
(``input_layernorm``), scales each branch (µP multipliers), sums them into one residual add, then a
SwiGLU MLP after ``pre_ff_layernorm``: the pattern is ``[*M]-`` per decoder layer, a parallel layer
then its MLP.  ``layers_block_type`` is ``hybrid`` for every layer: no key places layers, so only
``num_hidden_layers`` sets the layout.  Input model, key names, reader and expresser.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import Field

from patternc.canonical.archs import Config, Expression, Finding, as_dict, as_float, as_int, dt_limit, mtp_findings
from patternc.canonical.graph import lower_spec
from patternc.config.mixer_readers import HEADS_PER_GROUP, AttentionKeys, read_attention
from patternc.config.models import (
    Activation,
    ConfigModel,
    Eps,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    TimeStepLimit,
    TokenId,
)
from patternc.config.readers import Built, Ctx, read_rope, time_step_limit
from patternc.families.family import Family
from patternc.ir import make_pattern
from patternc.kinds import LayerKind, symbol_of
from patternc.model import AttentionSpec, MambaSpec, MlpSpec, ModelSpec, MupSpec, NormSpec, RopeSpec

KINDS = (LayerKind.ATTENTION, LayerKind.MAMBA2, LayerKind.MLP)
"""The layer kinds the family builds (attention and Mamba2 only ever together, in one parallel layer)."""
ATTENTION_S, MAMBA_S, MLP_S = (symbol_of(kind) for kind in KINDS)
PARALLEL = frozenset({LayerKind.ATTENTION, LayerKind.MAMBA2})
"""The mixers of every Falcon-H1 decoder layer."""


class FalconH1Input(ConfigModel):
    """``model_type: falcon_h1`` (transformers ``FalconH1Config``)."""

    vocab_size: PosInt = 128000
    tie_word_embeddings: bool = False
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 14336
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = 8
    hidden_act: Activation = "silu"
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-5
    use_cache: bool = True
    num_logits_to_keep: NonNegInt | None = 1
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId | list[int] = 2
    max_position_embeddings: PosInt = 8192
    attention_dropout: NonNegFloat | None = 0.0
    mamba_d_ssm: PosInt | None = 1024
    """The Mamba2 inner size; null: ``mamba_expand * hidden_size``."""
    mamba_n_heads: PosInt = 128
    mamba_d_head: PosInt | Literal["auto"] = "auto"
    mamba_n_groups: PosInt = 1
    mamba_d_state: PosInt = 256
    mamba_d_conv: PosInt = 4
    mamba_expand: PosInt = 2
    mamba_chunk_size: PosInt = 256
    mamba_conv_bias: bool = True
    mamba_proj_bias: bool = False
    """The bias of ``in_proj``."""
    mamba_norm_before_gate: bool = True
    mamba_rms_norm: bool = False
    time_step_limit: TimeStepLimit | None = [0.0, float("inf")]  # noqa: RUF012 (pydantic copies defaults)
    projectors_bias: bool = False
    """The bias of the Mamba2 ``out_proj`` (not the attention's: that is ``attention_bias``)."""
    rope_parameters: dict[str, Any] | None = None
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta`` (the released configs use it)."""
    head_dim: PosInt | None = None
    """Not a field of ``FalconH1Config``, but ``FalconH1Attention`` reads ``config.head_dim`` when a
    config sets it (the released ones do); otherwise ``hidden_size // num_attention_heads``."""
    lm_head_multiplier: float = 1.0
    embedding_multiplier: PosFloat = 1.0
    """The token embeddings times this (``ModelSpec.embedding_multiplier``)."""
    mlp_multipliers: list[float] | None = Field(default=None, min_length=2, max_length=2)
    key_multiplier: float = 1.0
    attention_out_multiplier: float = 1.0
    attention_in_multiplier: float = 1.0
    ssm_multipliers: list[float] | None = Field(default=None, min_length=5, max_length=5)
    ssm_in_multiplier: float = 1.0
    ssm_out_multiplier: float = 1.0
    attention_bias: bool = False
    mlp_bias: bool = False


def _rope(ctx: Ctx[FalconH1Input]) -> RopeSpec | None:
    """Whole-head RoPE (``FalconH1RotaryEmbedding``, default parameters), base 10,000 unless given."""
    return read_rope(ctx, 1.0, top_level_partial=False, uses_partial=False)


ATTENTION = AttentionKeys(rope=_rope, head_dim_derived=True)


def read_mamba(ctx: Ctx[FalconH1Input], hidden: int) -> MambaSpec | None:
    """``FalconH1Mixer.__init__``: inner size ``mamba_d_ssm`` (else ``mamba_expand * hidden_size``), heads
    of ``mamba_d_head`` (``auto``: inner // heads), ``in_proj`` biased by ``mamba_proj_bias``, ``out_proj``
    by ``projectors_bias``, and the gated RMSNorm only with ``mamba_rms_norm``."""
    d_ssm = ctx.get("mamba_d_ssm")
    heads, groups = ctx.get("mamba_n_heads"), ctx.get("mamba_n_groups")
    if d_ssm is None:
        inner = ctx.get("mamba_expand") * hidden
    else:
        inner = d_ssm
        ctx.vestigial(["mamba_expand"], "`mamba_d_ssm` gives the Mamba inner size")
    head_dim = ctx.get("mamba_d_head")
    ok = True
    if head_dim == "auto":
        head_dim = inner // heads
    if inner % heads or head_dim * heads != inner:
        ctx.add(
            "P908",
            f"{ctx.q('mamba_n_heads')} x {ctx.q('mamba_d_head')} = {head_dim * heads}, but the Mamba inner size "
            f"({'mamba_d_ssm' if d_ssm is not None else 'mamba_expand x hidden_size'}) is {inner}; "
            "transformers rejects this config",
            "mamba_d_head" if ctx.has("mamba_d_head") else "mamba_n_heads",
            label="head size mismatch",
            secondary=ctx.secondary("mamba_n_heads", "mamba_d_ssm"),
        )
        ok = False
    ok = ctx.divisible("mamba_n_heads", "mamba_n_groups", heads, groups, HEADS_PER_GROUP) and ok
    rms_norm = ctx.get("mamba_rms_norm")
    if rms_norm:
        why = "the gated RMSNorm splits the Mamba inner size into `mamba_n_groups` groups"
        ok = ctx.divisible("mamba_d_ssm", "mamba_n_groups", inner, groups, why) and ok
        before = ctx.get("mamba_norm_before_gate")
    else:
        ctx.vestigial(["mamba_norm_before_gate"], "`mamba_rms_norm` is false: the mixer has no norm")
        before = False
    if not ok or head_dim == 0:
        return None
    proj_bias, out_bias = ctx.get("mamba_proj_bias"), ctx.get("projectors_bias")
    return MambaSpec(
        num_heads=heads,
        head_dim=head_dim,
        state_size=ctx.get("mamba_d_state"),
        n_groups=groups,
        conv_kernel=ctx.get("mamba_d_conv"),
        chunk_size=ctx.get("mamba_chunk_size"),
        conv_bias=ctx.get("mamba_conv_bias"),
        proj_bias=proj_bias,
        out_proj_bias=None if out_bias == proj_bias else out_bias,
        norm_group_size=max(1, inner // groups),
        activation=ctx.get("hidden_act"),
        time_step_limit=time_step_limit(ctx.get("time_step_limit")),
        gated_norm=rms_norm,
        norm_before_gate=before,
    )


def read_mup(ctx: Ctx[FalconH1Input]) -> MupSpec:
    """The µP multipliers (``FalconH1Config``: every one 1.0 by default, the lists ``[1.0] * n``)."""
    mlp = ctx.get("mlp_multipliers") or [1.0, 1.0]
    ssm = ctx.get("ssm_multipliers") or [1.0] * 5
    return MupSpec(
        lm_head=float(ctx.get("lm_head_multiplier")),
        attention_in=float(ctx.get("attention_in_multiplier")),
        attention_out=float(ctx.get("attention_out_multiplier")),
        key=float(ctx.get("key_multiplier")),
        ssm_in=float(ctx.get("ssm_in_multiplier")),
        ssm_out=float(ctx.get("ssm_out_multiplier")),
        ssm=tuple(float(f) for f in ssm),
        mlp=tuple(float(f) for f in mlp),
    )


def read(ctx: Ctx[FalconH1Input]) -> Built:
    """``configuration_falcon_h1.py`` and ``modeling_falcon_h1.py``: ``num_hidden_layers`` decoder layers,
    each ``[*M]-``: attention and Mamba2 in parallel on one normed input, then a SwiGLU MLP."""
    n = ctx.get("num_hidden_layers")
    built = Built(
        main=(ATTENTION_S + MLP_S) * n, main_key="num_hidden_layers", parallel={2 * i: MAMBA_S for i in range(n)}
    )
    hidden = ctx.get("hidden_size")
    attention = read_attention(ctx, ATTENTION, hidden)
    mamba = read_mamba(ctx, hidden)
    if attention is None:
        ctx.add(
            "P908",
            f"the attention head size ({ctx.q('hidden_size')} // {ctx.q('num_attention_heads')}) comes to 0",
            "num_attention_heads",
            label="no attention channels",
        )
    if attention is None or mamba is None:
        return Built(main_key="num_hidden_layers")
    built.specs["attention"] = attention
    built.specs["mamba"] = mamba
    built.specs["mlp"] = MlpSpec(
        intermediate_size=ctx.get("intermediate_size"),
        activation=ctx.get("hidden_act"),
        gated=True,
        bias=ctx.get("mlp_bias"),
    )
    mup = read_mup(ctx)
    built.specs["mup"] = mup
    built.specs["embedding_multiplier"] = float(ctx.get("embedding_multiplier"))
    built.specs["norm"] = NormSpec(eps=ctx.get("rms_norm_eps"))
    return built


def _structure(spec: ModelSpec, arch: str) -> tuple[int, list[Finding]]:
    """How many decoder layers the spec's pattern makes, and what Falcon-H1 cannot build: each decoder
    layer is exactly one parallel layer of attention and Mamba2, then one MLP."""
    findings: list[Finding] = []
    layers = spec.pattern.layers
    for layer in layers:
        expected = PARALLEL if layer.index % 2 == 0 else frozenset({LayerKind.MLP})
        if frozenset(layer.kinds) != expected or len(layer.kinds) != len(expected):
            what = "attention and Mamba2 in parallel, `[*M]`" if layer.index % 2 == 0 else "an MLP `-`"
            findings.append(  # no decoder index in the text, so the map merges the same finding across layers
                Finding(layer.spelling, layer.index, f"{arch} has {what} here (every decoder layer is `[*M]-`)")
            )
    if len(layers) % 2:
        findings.append(Finding("pattern", None, f"{arch} pairs every `[*M]` with an MLP; the last layer has none"))
    return max(1, len(layers) // 2), findings


def config_of(spec: ModelSpec) -> Config:
    """The ``FalconH1Config`` fields that hold ``spec`` (defaults where the spec lacks a kind)."""
    a, m, mlp = spec.attention, spec.mamba, spec.mlp
    mup = spec.mup or MupSpec()
    n, _ = _structure(spec, "falcon_h1")
    cfg: Config = {
        "hidden_size": spec.hidden_size,
        "vocab_size": spec.vocab_size,
        "tie_word_embeddings": spec.tie_embeddings,
        "rms_norm_eps": spec.norm.eps,
        "num_hidden_layers": n,
        "embedding_multiplier": spec.embedding_multiplier,
        "lm_head_multiplier": mup.lm_head,
        "attention_in_multiplier": mup.attention_in,
        "attention_out_multiplier": mup.attention_out,
        "key_multiplier": mup.key,
        "ssm_in_multiplier": mup.ssm_in,
        "ssm_out_multiplier": mup.ssm_out,
        "ssm_multipliers": list(mup.ssm),
        "mlp_multipliers": list(mup.mlp),
    }
    if a is not None:
        cfg |= {
            "num_attention_heads": a.num_heads,
            "num_key_value_heads": a.num_kv_heads,
            "head_dim": a.head_dim,
            "attention_bias": a.qkv_bias,
            "rope_parameters": {"rope_type": "default", "rope_theta": a.rope.theta if a.rope else 10000.0},
        }
    if m is not None:
        cfg |= {
            "mamba_d_ssm": m.inner_size,
            "mamba_n_heads": m.num_heads,
            "mamba_d_head": m.head_dim,
            "mamba_n_groups": m.n_groups,
            "mamba_d_state": m.state_size,
            "mamba_d_conv": m.conv_kernel,
            "mamba_chunk_size": m.chunk_size,
            "mamba_conv_bias": m.conv_bias,
            "mamba_proj_bias": m.proj_bias,
            "projectors_bias": m.out_bias,
            "mamba_rms_norm": m.gated_norm,
            "mamba_norm_before_gate": m.norm_before_gate,
            "time_step_limit": m.time_step_limit,
            "hidden_act": m.activation,
        }
    if mlp is not None:
        cfg |= {"intermediate_size": mlp.intermediate_size, "mlp_bias": mlp.bias}
    return cfg


def _floats(cfg: Config, key: str, n: int) -> tuple[float, ...]:
    values = cast(list[float], cfg[key])
    if len(values) != n:
        raise ValueError(f"{key} holds {len(values)} values, not {n}")
    return tuple(float(f) for f in values)


def spec_of(cfg: Config, source: str = "falcon_h1") -> ModelSpec:
    """What ``FalconH1ForCausalLM`` builds from ``cfg`` (``config_of``'s fields): the read side of
    the canonical map, independent of the spec the fields came from."""
    n = as_int(cfg, "num_hidden_layers")
    hidden = as_int(cfg, "hidden_size")
    heads = as_int(cfg, "num_attention_heads") if "num_attention_heads" in cfg else 32
    inner = as_int(cfg, "mamba_d_ssm") if "mamba_d_ssm" in cfg else 1024
    groups = as_int(cfg, "mamba_n_groups") if "mamba_n_groups" in cfg else 1
    m_heads = as_int(cfg, "mamba_n_heads") if "mamba_n_heads" in cfg else 128
    theta = as_dict(cfg, "rope_parameters").get("rope_theta", 10000.0) if "rope_parameters" in cfg else 10000.0
    low, high = dt_limit(cfg)
    act = str(cfg.get("hidden_act", "silu"))
    return ModelSpec(
        source=source,
        pattern=make_pattern((ATTENTION_S + MLP_S) * n, parallel={2 * i: MAMBA_S for i in range(n)}),
        hidden_size=hidden,
        vocab_size=as_int(cfg, "vocab_size"),
        tie_embeddings=bool(cfg["tie_word_embeddings"]),
        norm=NormSpec(eps=as_float(cfg, "rms_norm_eps")),
        attention=AttentionSpec(
            num_heads=heads,
            num_kv_heads=as_int(cfg, "num_key_value_heads") if "num_key_value_heads" in cfg else 8,
            head_dim=as_int(cfg, "head_dim") if "head_dim" in cfg else max(1, hidden // heads),
            qkv_bias=bool(cfg.get("attention_bias", False)),
            out_bias=bool(cfg.get("attention_bias", False)),
            rope=RopeSpec(theta=float(cast(float, theta))),
        ),
        mamba=MambaSpec(
            num_heads=m_heads,
            head_dim=as_int(cfg, "mamba_d_head") if "mamba_d_head" in cfg else max(1, inner // m_heads),
            state_size=as_int(cfg, "mamba_d_state") if "mamba_d_state" in cfg else 256,
            n_groups=groups,
            conv_kernel=as_int(cfg, "mamba_d_conv") if "mamba_d_conv" in cfg else 4,
            chunk_size=as_int(cfg, "mamba_chunk_size") if "mamba_chunk_size" in cfg else 256,
            conv_bias=bool(cfg.get("mamba_conv_bias", True)),
            proj_bias=bool(cfg.get("mamba_proj_bias", False)),
            out_proj_bias=(
                None
                if bool(cfg.get("projectors_bias", False)) == bool(cfg.get("mamba_proj_bias", False))
                else bool(cfg.get("projectors_bias", False))
            ),
            norm_group_size=max(1, inner // groups),
            activation=act,
            time_step_limit=(float(low), float(high)),
            gated_norm=bool(cfg.get("mamba_rms_norm", False)),
            norm_before_gate=bool(cfg.get("mamba_rms_norm", False)) and bool(cfg.get("mamba_norm_before_gate", True)),
        ),
        mlp=MlpSpec(
            intermediate_size=as_int(cfg, "intermediate_size") if "intermediate_size" in cfg else 14336,
            activation=act,
            gated=True,
            bias=bool(cfg.get("mlp_bias", False)),
        ),
        mup=MupSpec(
            lm_head=as_float(cfg, "lm_head_multiplier"),
            attention_in=as_float(cfg, "attention_in_multiplier"),
            attention_out=as_float(cfg, "attention_out_multiplier"),
            key=as_float(cfg, "key_multiplier"),
            ssm_in=as_float(cfg, "ssm_in_multiplier"),
            ssm_out=as_float(cfg, "ssm_out_multiplier"),
            ssm=_floats(cfg, "ssm_multipliers", 5),
            mlp=_floats(cfg, "mlp_multipliers", 2),
        ),
        embedding_multiplier=as_float(cfg, "embedding_multiplier"),
    )


def express(spec: ModelSpec) -> Expression:
    """FalconH1ForCausalLM: ``num_hidden_layers`` times ``[*M]-`` with the spec's flavours and multipliers;
    the blocks are what that config builds (``spec_of``), laid against the spec's layers one for one."""
    arch = "falcon_h1"
    _, structural = _structure(spec, arch)
    structural += mtp_findings(spec, arch)
    if spec.attention is None or spec.mamba is None:
        structural.append(Finding("pattern", None, f"every {arch} layer holds attention and Mamba2"))
    if spec.residual_multiplier != 1.0 or spec.logits_scaling != 1.0:
        structural.append(Finding("pattern", None, f"{arch} has no residual multiplier or logits divisor"))
    cfg = config_of(spec)
    built = spec_of(cfg)
    blocks = lower_spec(built)
    n = spec.pattern.num_layers
    indexed: list[tuple[int | None, Any]] = [(0, blocks[0])]
    indexed.extend((i + 1 if i < n else None, block) for i, block in enumerate(blocks[1:-1]))
    indexed.append((n + 1, blocks[-1]))
    return Expression(arch, cfg, structural, indexed)


FAMILY = Family(
    name="falcon_h1",
    input_model=FalconH1Input,
    read=read,
    express=express,
    paired_layers=True,
    canonical_rank=-7,  # the only family whose layers run mixers in parallel; unique, after deepseek_v3
    architectures=("FalconH1ForCausalLM",),
    layout_keys=(("num_hidden_layers",),),
    kwarg_only_fields=frozenset({"rope_scaling", "rope_theta", "head_dim"}),
)
