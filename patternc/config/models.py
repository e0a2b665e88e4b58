"""The input models: one pydantic model per config dialect, with transformers' defaults as data.

Each model mirrors the fields of transformers' own config class (``NemotronHConfig``,
``BambaConfig``, …) with the same defaults, so a key a config omits takes the value transformers
would give it; ``tests/test_config_defaults.py`` compares every default here against the real
class to catch drift.  Models are strict (``"4096"`` is not an int, ``1`` is not a bool) and keep
unknown keys (``extra="allow"``) so that the reader can report them instead of dropping them.
Numeric fields carry the ranges that keep the math defined (sizes > 0, finite floats); a bad
value becomes a diagnostic naming its field, never an exception.
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
    """Base of the dialect models: strict types, unknown keys kept in ``model_extra``."""

    model_config = ConfigDict(strict=True, extra="allow", use_attribute_docstrings=True)

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


class NemotronHInput(ConfigModel):
    """``model_type: nemotron_h`` (transformers ``NemotronHConfig``, NVIDIA's remote code)."""

    vocab_size: PosInt = 131072
    hidden_size: PosInt = 4096
    layers_block_type: list[str] | None = None
    """The layer list, in the current (``linear_attention``…) or legacy (``mamba``…) vocabulary."""
    hybrid_override_pattern: str | None = None
    """The older one-character-per-layer spelling (``M-M*-``); used only when no list is given."""
    num_hidden_layers: PosInt | None = None
    """Deprecated in transformers: the layer count comes from the pattern."""
    tie_word_embeddings: bool = False
    num_logits_to_keep: NonNegInt | None = 1
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = 8
    head_dim: PosInt = 128
    max_position_embeddings: PosInt = 4096
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    sliding_window: PosInt | None = None
    intermediate_size: PosInt = 21504
    mlp_hidden_act: Activation = "relu2"
    mlp_bias: bool = False
    use_mamba_kernels: bool = True
    ssm_state_size: PosInt = 128
    mamba_num_heads: PosInt = 128
    mamba_head_dim: PosInt = 64
    mamba_hidden_act: Activation = "silu"
    n_groups: PosInt = 8
    conv_kernel: PosInt = 4
    expand: PosInt = 2
    time_step_min: NonNegFloat = 0.001  # the clamp's lower bound for dt: 0 (a converted Mamba2's) is no clamp
    time_step_max: PosFloat = 0.1
    time_step_limit: TimeStepLimit = [0.0, float("inf")]
    time_step_floor: NonNegFloat = 1e-4
    use_conv_bias: bool = True
    chunk_size: PosInt = 128
    mamba_proj_bias: bool = False
    mamba_ssm_cache_dtype: str = "float32"
    n_routed_experts: PosInt = 8
    n_shared_experts: NonNegInt = 1
    moe_intermediate_size: PosInt = 7688
    moe_shared_expert_intermediate_size: PosInt = 7688
    moe_latent_size: PosInt | None = None
    moe_shared_expert_overlap: bool = True
    num_experts_per_tok: PosInt = 2
    routed_scaling_factor: PosFloat = 1.0
    n_group: PosInt = 1
    topk_group: PosInt = 1
    norm_topk_prob: bool = True
    num_nextn_predict_layers: NonNegInt = 0
    mtp_layers_block_type: list[str] | None = None
    mtp_hybrid_override_pattern: str | None = None
    use_bias: bool = False
    initializer_range: NonNegFloat = 0.02
    layer_norm_epsilon: Eps = 1e-5
    residual_in_fp32: bool = False
    hidden_dropout: NonNegFloat = 0.0
    rescale_prenorm_residual: bool = True


class _MambaHybridInput(ConfigModel):
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


class BambaInput(_MambaHybridInput):
    """``model_type: bamba`` (transformers ``BambaConfig``)."""

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
    num_logits_to_keep: NonNegInt | None = 1
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    max_position_embeddings: PosInt = 262144
    attn_layer_indices: list[int] | None = None
    z_loss_coefficient: NonNegFloat | None = 0.0
    mlp_bias: bool = False
    partial_rotary_factor: Factor | None = None
    """Ignored by transformers: ``BambaConfig`` forces 0.5 unless ``rope_parameters`` names one."""


class GraniteMoeHybridInput(_MambaHybridInput):
    """``model_type: granitemoehybrid`` (transformers ``GraniteMoeHybridConfig``, IBM Granite 4.0)."""

    vocab_size: PosInt = 32000
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 11008
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt | None = None
    hidden_act: Activation = "silu"
    max_position_embeddings: PosInt = 2048
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    pad_token_id: TokenId = None
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    tie_word_embeddings: bool = False
    embedding_multiplier: PosFloat | None = 1.0
    logits_scaling: PosFloat | None = 1.0
    residual_multiplier: PosFloat | None = 1.0
    attention_multiplier: PosFloat | None = 1.0
    num_local_experts: NonNegInt | None = 8
    num_experts_per_tok: PosInt | None = 2
    shared_intermediate_size: PosInt = 1024
    position_embedding_type: str | None = None
    layer_types: list[str] | None = None
    partial_rotary_factor: Factor | None = None
    """Ignored: GraniteMoeHybrid's rotary embedding always rotates the whole head."""


class JambaInput(ConfigModel):
    """``model_type: jamba`` (transformers ``JambaConfig``); its Mamba-1 mixers are not expressible."""

    vocab_size: PosInt = 65536
    tie_word_embeddings: bool = False
    hidden_size: PosInt = 4096
    intermediate_size: PosInt = 14336
    num_hidden_layers: PosInt = 32
    num_attention_heads: PosInt = 32
    num_key_value_heads: PosInt = 8
    hidden_act: Activation = "silu"
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    pad_token_id: TokenId = 0
    bos_token_id: TokenId = 1
    eos_token_id: TokenId = 2
    max_position_embeddings: PosInt = 262144
    attention_dropout: NonNegFloat = 0.0
    num_experts_per_tok: PosInt = 2
    num_experts: PosInt = 16
    expert_layer_period: PosInt = 2
    expert_layer_offset: NonNegInt = 1
    attn_layer_period: PosInt = 8
    attn_layer_offset: NonNegInt = 4
    use_mamba_kernels: bool = True
    mamba_d_state: PosInt = 16
    mamba_d_conv: PosInt = 4
    mamba_expand: PosInt = 2
    mamba_dt_rank: PosInt | Literal["auto"] = "auto"
    mamba_conv_bias: bool = True
    mamba_proj_bias: bool = False
    use_mambapy: bool = False
    use_associative_scan: bool = True


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
    time_step_limit: TimeStepLimit = [0.0, float("inf")]
    rescale_prenorm_residual: bool = False
    chunk_size: PosInt = 256
    tie_word_embeddings: bool = False


class Qwen3NextInput(ConfigModel):
    """``model_type: qwen3_next`` (transformers ``Qwen3NextConfig``): gated DeltaNet ``G`` + gated attention."""

    vocab_size: PosInt = 151936
    hidden_size: PosInt = 2048
    intermediate_size: PosInt = 5632
    num_hidden_layers: PosInt = 48
    num_attention_heads: PosInt = 16
    num_key_value_heads: PosInt = 2
    hidden_act: Activation = "silu"
    max_position_embeddings: PosInt = 32768
    initializer_range: NonNegFloat = 0.02
    rms_norm_eps: Eps = 1e-6
    tie_word_embeddings: bool = False
    rope_parameters: dict[str, Any] | None = None
    rope_scaling: dict[str, Any] | None = None
    """Pre-5.0 spelling of ``rope_parameters``."""
    rope_theta: PosFloat | None = None
    """Pre-5.0 top-level spelling of ``rope_parameters.rope_theta``."""
    partial_rotary_factor: Factor | None = None
    """Pre-5.0 top-level spelling; transformers' default is 0.25."""
    attention_bias: bool = False
    attention_dropout: NonNegFloat = 0.0
    head_dim: PosInt = 256
    linear_conv_kernel_dim: PosInt = 4
    linear_key_head_dim: PosInt = 128
    linear_value_head_dim: PosInt = 128
    linear_num_key_heads: PosInt = 16
    linear_num_value_heads: PosInt = 32
    decoder_sparse_step: PosInt = 1
    moe_intermediate_size: PosInt = 512
    shared_expert_intermediate_size: PosInt = 512
    num_experts_per_tok: PosInt = 10
    num_experts: NonNegInt = 512
    norm_topk_prob: bool = True
    mlp_only_layers: list[int] | None = None
    layer_types: list[str] | None = None
    full_attention_interval: PosInt = 4
    """Used only when ``layer_types`` is absent: every ``full_attention_interval``-th layer is attention."""
    pad_token_id: TokenId = None
    bos_token_id: TokenId = None
    eos_token_id: TokenId = None


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


INPUT_MODELS: dict[str, type[ConfigModel]] = {
    "nemotron_h": NemotronHInput,
    "bamba": BambaInput,
    "granitemoehybrid": GraniteMoeHybridInput,
    "jamba": JambaInput,
    "mamba2": Mamba2Input,
    "qwen3_next": Qwen3NextInput,
    "zamba2": Zamba2Input,
}
"""model_type -> its input model (also the names of the published ``config-<type>`` schemas)."""

KWARG_ONLY_FIELDS: dict[str, frozenset[str]] = {
    "nemotron_h": frozenset({"hybrid_override_pattern", "mtp_hybrid_override_pattern", "num_hidden_layers"}),
    "bamba": frozenset({"rope_scaling", "rope_theta", "head_dim", "partial_rotary_factor"}),
    "granitemoehybrid": frozenset({"rope_scaling", "rope_theta", "head_dim", "partial_rotary_factor"}),
    "qwen3_next": frozenset({"rope_scaling", "rope_theta", "partial_rotary_factor", "full_attention_interval"}),
}
"""Fields that are not dataclass fields of the transformers class but keyword arguments it consumes
(``__post_init__`` kwargs, or the rope standardisation of ``PreTrainedConfig``)."""
