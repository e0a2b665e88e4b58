"""The ``mamba2`` family: transformers' ``Mamba2ForCausalLM``: every layer a Mamba2 mixer, no FFN.

Input model, the key names of its mixer, layout reader, expresser and the ``transformers-mamba2``
profile.
"""

from __future__ import annotations

from typing import Literal

from patternc.canonical.archs import (
    Config,
    Expression,
    as_float,
    as_str,
    common_fields,
    dt_limit,
    integer_expand,
    kind_findings,
    mamba_fields,
    mamba_from,
    model_blocks,
    mtp_findings,
)
from patternc.canonical.graph import (
    BlockGraph,
    Frame,
    layer_label,
    lower_mamba,
)
from patternc.config.mixer_readers import MambaKeys, read_mamba
from patternc.config.models import (
    Activation,
    ConfigModel,
    Eps,
    NonNegFloat,
    PosFloat,
    PosInt,
    TimeStepLimit,
    TokenId,
)
from patternc.config.readers import (
    Built,
    Ctx,
)
from patternc.families.family import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import (
    ModelSpec,
    NormSpec,
)
from patternc.targets.rules import (
    Profile,
    Rule,
    main_alphabet,
    mamba_inner_size,
    mtp_dropped,
)

KINDS = (LayerKind.MAMBA2,)
"""The layer kinds the family builds."""
MAMBA_S = symbol_of(LayerKind.MAMBA2)


class Mamba2Input(ConfigModel):
    """``model_type: mamba2`` (transformers ``Mamba2Config``): every layer a Mamba2 mixer, no FFN."""

    num_heads: PosInt = 128
    head_dim: PosInt = 64
    vocab_size: PosInt = 32768
    hidden_size: PosInt = 4096
    state_size: PosInt = 128
    num_hidden_layers: PosInt = 64
    layer_norm_epsilon: Eps = 1e-5
    pad_token_id: TokenId = 1
    bos_token_id: TokenId = 0
    eos_token_id: TokenId = 2
    expand: PosInt = 2
    conv_kernel: PosInt = 4
    n_groups: PosInt = 8
    use_bias: bool = False
    use_conv_bias: bool = True
    hidden_act: Activation = "silu"
    initializer_range: NonNegFloat = 0.1
    residual_in_fp32: bool = True
    time_step_rank: PosInt | Literal["auto"] = "auto"
    time_step_min: PosFloat = 0.001
    time_step_max: PosFloat = 0.1
    time_step_floor: NonNegFloat = 1e-4
    time_step_limit: TimeStepLimit = [0.0, float("inf")]  # noqa: RUF012 (a pydantic field: copied per instance)
    rescale_prenorm_residual: bool = False
    chunk_size: PosInt = 256
    tie_word_embeddings: bool = False


MAMBA = MambaKeys(
    num_heads="num_heads",
    head_dim="head_dim",
    n_groups="n_groups",
    state_size="state_size",
    conv_kernel="conv_kernel",
    expand="expand",
    chunk_size="chunk_size",
    conv_bias="use_conv_bias",
    proj_bias="use_bias",
    activation="hidden_act",
    time_step="time_step_limit",
    inner_from="expand",
)
"""Mamba2's names for its mixer's keys."""


def read(ctx: Ctx[Mamba2Input]) -> Built:
    """``configuration_mamba2.py``, ``modeling_mamba2.py:383-432``: every layer a Mamba2 mixer, no FFN."""
    n = ctx.get("num_hidden_layers")
    built = Built(main=MAMBA_S * n, main_key="num_hidden_layers")
    built.specs["mamba"] = read_mamba(ctx, MAMBA, ctx.get("hidden_size"))
    built.specs["norm"] = NormSpec(eps=ctx.get("layer_norm_epsilon"))
    return built


def express(spec: ModelSpec) -> Expression:
    """Mamba2ForCausalLM: every layer is norm -> Mamba2 mixer -> residual; nothing else."""
    arch = "mamba2"
    expand, expand_findings = integer_expand(spec, arch, "expand")
    structural = kind_findings(spec, KINDS, arch) + expand_findings + mtp_findings(spec, arch)
    act = spec.mamba.activation if spec.mamba else "silu"
    cfg: Config = (
        common_fields(spec, "layer_norm_epsilon")
        | {"num_hidden_layers": spec.pattern.num_layers, "hidden_act": act}
        | mamba_fields(spec, MAMBA, expand)
    )
    frame = Frame(spec.hidden_size, NormSpec(eps=as_float(cfg, "layer_norm_epsilon")))
    blocks: list[tuple[int | None, BlockGraph]] = []
    embed, head = model_blocks(spec, cfg, frame, tied=bool(cfg["tie_word_embeddings"]))
    blocks.append(embed)
    if spec.mamba is not None:
        mamba = mamba_from(cfg, MAMBA, as_str(cfg, "hidden_act"), dt_limit(cfg))
        for layer in spec.pattern.layers:
            if layer.symbol == MAMBA_S:
                blocks.append((layer.index + 1, lower_mamba(frame, mamba, layer_label(layer.index, MAMBA_S))))
    blocks.append(head)
    return Expression(arch, cfg, structural, blocks)


def profile() -> Profile:
    t = "transformers mamba2"
    return Profile(
        name="transformers-mamba2",
        consumer="transformers Mamba2ForCausalLM (model_type mamba2)",
        description="only Mamba2 layers; a pure-`M` Nemotron-H is exactly this model (weights model. → backbone.)",
        versions=("checked against 5.24.0; logits of a pure-M NemotronHForCausalLM match bit for bit [verified]",),
        rules=(
            Rule(
                "P301",
                "alphabet `M` only",
                "§6; verified 5.24.0",
                main_alphabet(t, KINDS, "Mamba2ForCausalLM has no layer kind for {symbol}"),
            ),
            Rule("P305", "no MTP in the config", "Mamba2Config", mtp_dropped(t, "Mamba2Config has no MTP fields")),
            Rule(
                "P311",
                "heads × head_dim = integer expand × hidden_size",
                "verified 5.24.0 (validate_architecture)",
                mamba_inner_size(
                    t,
                    "transformers raises: ValueError: Inconsistent configuration: hidden_size * expand (…) "
                    "must equal num_heads * head_dim (…).",
                ),
            ),
        ),
    )


FAMILY = Family(
    name="mamba2",
    input_model=Mamba2Input,
    read=read,
    express=express,
    canonical_rank=0,
    architectures=("Mamba2ForCausalLM",),
    layout_keys=(("num_hidden_layers",),),
    profile=profile,
)
