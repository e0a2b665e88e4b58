"""The input models' shared parts: the base model, the value types, and the keys every config carries.

Each family's input model (``patternc/families/<model_type>.py``) mirrors the fields of
transformers' own config class (``NemotronHConfig``, ``BambaConfig``, …) with the same defaults,
so a key a config omits takes the value transformers would give it; ``tests/families/`` compares
every field against the real class to catch drift.  Models are strict (``"4096"`` is not an int,
``1`` is not a bool) and keep unknown keys (``extra="allow"``) so that the reader can report them
instead of dropping them.  Numeric fields carry the ranges that keep the math defined (sizes > 0, finite floats); a bad
value becomes a diagnostic naming its field, never an exception.

Each family's input model is ``patternc.families.get(model_type).input_model``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INT_MAX = 2**31 - 1
"""Upper bound of every size and count: larger values are certainly a mistake (and overflow int32 kernels)."""

PosInt = Annotated[int, Field(gt=0, le=INT_MAX)]
NonNegInt = Annotated[int, Field(ge=0, le=INT_MAX)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Factor = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Eps = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
TimeStepLimit = Annotated[list[float], Field(min_length=2, max_length=2)]
TokenId = Annotated[int, Field(ge=0, le=INT_MAX)] | list[Annotated[int, Field(ge=0, le=INT_MAX)]] | None

Activation = Literal[
    "gelu",
    "gelu_10",
    "gelu_accurate",
    "gelu_fast",
    "gelu_new",
    "gelu_python",
    "gelu_python_tanh",
    "gelu_pytorch_tanh",
    "hardswish",
    "laplace",
    "leaky_relu",
    "linear",
    "mish",
    "prelu",
    "quick_gelu",
    "relu",
    "relu2",
    "relu6",
    "sigmoid",
    "silu",
    "sqrtsoftplus",
    "swish",
    "tanh",
    "xielu",
]
"""The keys of transformers' ``ACT2FN`` (``transformers/activations.py``): any other name is a KeyError there."""


class ConfigModel(BaseModel):
    """Base of the families' input models: strict types, unknown keys kept in ``model_extra``."""

    model_config = ConfigDict(strict=True, extra="allow", defer_build=True)

    model_type: str | None = None
    architectures: list[str] | None = None
    transformers_version: str | None = None
    dtype: str | None = None
    torch_dtype: str | None = None
    """Pre-5.0 spelling of ``dtype``."""
    use_cache: bool = True
    pad_token_id: TokenId = None
    bos_token_id: TokenId = None
    eos_token_id: TokenId = None
    initializer_range: NonNegFloat = 0.02
    tie_word_embeddings: bool = False


COMMON_KEYS: frozenset[str] = frozenset(
    {
        # PreTrainedConfig's own fields and the keys every saved config carries
        "output_hidden_states",
        "output_attentions",
        "return_dict",
        "chunk_size_feed_forward",
        "is_encoder_decoder",
        "id2label",
        "label2id",
        "problem_type",
        "auto_map",
        "_name_or_path",
        "name_or_path",
        "quantization_config",
        "tokenizer_class",
        "use_return_dict",
        "_attn_implementation",
        "attn_implementation",
        "output_router_logits",
        "router_aux_loss_coef",
    }
)
"""Keys transformers accepts on every config and that do not change a layer's math."""

ROPE_KEYS = ("rope_parameters", "rope_scaling", "rope_theta", "partial_rotary_factor")


class MambaHybridInput(ConfigModel):
    """Fields Bamba and GraniteMoeHybrid share (their Mamba2 mixers are spelled ``mamba_*``)."""

    mamba_n_heads: PosInt | None = 128
    mamba_d_head: PosInt | Literal["auto"] | None = "auto"
    mamba_n_groups: PosInt | None = 1
    mamba_d_state: PosInt | None = 256
    mamba_d_conv: PosInt | None = 4
    mamba_expand: PosInt | None = 2
    mamba_chunk_size: PosInt | None = 256
    mamba_conv_bias: bool | None = True
    mamba_proj_bias: bool | None = False
    time_step_limit: TimeStepLimit | None = [
        0.0,
        float("inf"),
    ]
    rope_parameters: dict[str, Any] | None = None
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta``."""
    attention_bias: bool = False
    attention_dropout: NonNegFloat | None = 0.0
    head_dim: PosInt | None = None
    """Not a field of the transformers class, but its attention reads ``config.head_dim`` when set."""
