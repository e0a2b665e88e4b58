"""The ``zamba2`` family: transformers' ``Zamba2ForCausalLM``.

Its ``hybrid`` layers call transformer blocks shared across layers, which a pattern of independent
layers cannot express: the config is read and refused (P914), and the canonical map always refuses
it.  Input model, reader and expresser.
"""

from __future__ import annotations

from typing import Any

from patternc.canonical.archs import (
    Expression,
    Finding,
)
from patternc.config.models import (
    Activation,
    ConfigModel,
    Eps,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    TokenId,
)
from patternc.config.readers import (
    Built,
    Ctx,
)
from patternc.families.family import Family
from patternc.model import (
    ModelSpec,
)


class Zamba2Input(ConfigModel):
    """``model_type: zamba2`` (transformers ``Zamba2Config``): read, but not expressible in the IR."""

    vocab_size: PosInt = 32000
    max_position_embeddings: PosInt = 4096
    hidden_size: PosInt = 2560
    num_hidden_layers: PosInt = 54
    layers_block_type: list[str] | None = None
    mamba_d_state: PosInt = 64
    mamba_d_conv: PosInt = 4
    mamba_expand: PosInt = 2
    mamba_ngroups: PosInt = 1
    time_step_min: PosFloat = 0.001
    time_step_max: PosFloat = 0.1
    time_step_floor: NonNegFloat = 1e-4
    n_mamba_heads: PosInt = 8
    use_mamba_kernels: bool = True
    use_conv_bias: bool = True
    chunk_size: PosInt = 256
    use_mem_eff_path: bool = False
    add_bias_linear: bool = False
    intermediate_size: PosInt | None = None
    hidden_act: Activation = "gelu"
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = None
    attention_dropout: NonNegFloat = 0.0
    num_mem_blocks: PosInt = 1
    use_shared_attention_adapter: bool = False
    adapter_rank: PosInt = 128
    use_mem_rope: bool = False
    rope_parameters: dict[str, Any] | None = None
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-5
    num_logits_to_keep: NonNegInt | None = 1
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    use_long_context: bool = False
    tie_word_embeddings: bool = True


def read(ctx: Ctx[Zamba2Input]) -> Built:
    """``modeling_zamba2.py:248-257, 1023-1061``: ``hybrid`` layers call shared transformer blocks."""
    ctx.add(
        "P914",
        "Zamba2's `hybrid` layers call shared transformer blocks, which patternc cannot express",
        "model_type",
        label="shared blocks",
        notes=(
            "a `hybrid` layer runs one of `num_mem_blocks` transformer blocks whose weights are shared by every "
            "hybrid layer (cycled i % num_mem_blocks), on the concatenation of the hidden state and the original "
            "embeddings, then a per-layer linear and a Mamba2 layer; patternc gives each layer its own weights",
        ),
    )
    return Built(specs={"expressible": False})


def express(spec: ModelSpec) -> Expression:
    """Zamba2 shares one set of transformer-block weights across its "hybrid" layers: never exact."""
    message = (
        'zamba2 reuses shared transformer blocks (attention + MLP weights shared across its "hybrid" layers, '
        "fed the concatenation of the hidden state and the original embeddings, plus a per-layer linear and "
        "LoRA adapters): a pattern of independent layers has no such weight sharing"
    )
    return Expression("zamba2", {}, [Finding("pattern", None, message)], [])


FAMILY = Family(
    name="zamba2",
    input_model=Zamba2Input,
    read=read,
    express=express,
    canonical_rank=5,
    architectures=("Zamba2ForCausalLM",),
    layout_keys=(("layers_block_type", "num_hidden_layers"),),
    can_be_exact=False,
)
