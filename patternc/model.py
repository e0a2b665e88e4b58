"""The model IR: a pattern plus the hyper-parameters that define each layer kind's math.

``ModelSpec`` is what config readers produce and what passes, the canonical-architecture map and
backends consume.  Every layer of one kind shares one flavour (``spec.flavour(kind)``), which is
how every supported family configures its layers.  Like ``Pattern`` it is frozen and
position-free; where a value came from (a config key, a default) is the config reader's business.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from patternc.ir import Pattern
from patternc.kinds import kind_def

MODEL_SCHEMA_VERSION: Literal[1] = 1

Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Node(BaseModel, frozen=True, extra="forbid"):
    """Base of the hyper-parameter nodes."""


class NormSpec(_Node):
    kind: Literal["rmsnorm"] = "rmsnorm"
    eps: PositiveFloat
    """Epsilon added to the mean square."""
    unit_offset: bool = False
    """True when the weight is stored as ``w - 1`` (Qwen3-Next's zero-centred RMSNorm)."""


class RopeSpec(_Node):
    theta: PositiveFloat
    """Base of the rotary frequencies."""
    partial_factor: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Fraction of each head's dimensions that rotate (Bamba: 0.5)."""
    mrope_section: tuple[Positive, ...] | None = Field(default=None, exclude_if=lambda v: v is None)
    """Multimodal RoPE (Qwen3.5): the rotary frequency pairs given to the temporal, height and width
    position streams, in order; None is one position stream.  Left out of the JSON when None, so
    the documents of the families without it stay as they were."""
    mrope_interleaved: bool = Field(default=False, exclude_if=lambda v: not v)
    """Whether the streams' frequencies alternate (t, h, w, t, …) instead of coming in three runs."""


class AttentionSpec(_Node):
    """Grouped-query self-attention (``*``)."""

    num_heads: Positive
    num_kv_heads: Positive
    head_dim: Positive
    qkv_bias: bool = False
    out_bias: bool = False
    rope: RopeSpec | None = None
    """None: no positional embedding (Nemotron-H)."""
    scale: PositiveFloat | None = None
    """Softmax scale; None means ``1/sqrt(head_dim)``."""
    qk_norm: bool = False
    output_gate: bool = False
    """Qwen3-Next gates the attention output with a sigmoid of a second query projection."""
    sliding_window: Positive | None = None
    qk_norm_whole: bool = Field(default=False, exclude_if=lambda v: not v)
    """OLMo 2/3 and OLMo Hybrid: the q/k RMSNorms (``qk_norm`` True) run over the whole projection
    (all heads at once, weights of ``heads * head_dim``), not over each head.  Left out of the JSON
    when False."""
    post_norm: bool = Field(default=False, exclude_if=lambda v: not v)
    """OLMo 2/3 and OLMo Hybrid (``OlmoHybridAttentionDecoderLayer``): an attention layer and the FFN
    after it normalise their outputs before the residual add (``post_attention_layernorm``,
    ``post_feedforward_layernorm``) and not their inputs.  Left out of the JSON when False."""


class YarnSpec(_Node):
    """YaRN rotary scaling (``rope_type: yarn``), with transformers' names and defaults
    (``modeling_rope_utils._compute_yarn_parameters``)."""

    factor: PositiveFloat
    """Context extension factor."""
    original_max_position_embeddings: Positive | None = None
    """The pre-training context; None: transformers uses ``max_position_embeddings``."""
    beta_fast: PositiveFloat = 32.0
    beta_slow: PositiveFloat = 1.0
    mscale: float | None = None
    mscale_all_dim: float | None = None
    """DeepSeek's second mscale: with it the softmax scale is multiplied by ``mscale(factor, mscale_all_dim)²``."""
    attention_factor: PositiveFloat | None = None

    @property
    def softmax_factor(self) -> float:
        """What the softmax scale is multiplied by (``yarn_apply_mscale`` of ``modeling_deepseek_v3.py``)."""
        if not self.mscale_all_dim:
            return 1.0
        m = 0.1 * self.mscale_all_dim * math.log(self.factor) + 1.0 if self.factor > 1 else 1.0
        return m * m


class MlaSpec(_Node):
    """Multi-head latent attention (``+``), as DeepSeek-V2/V3 define it (``DeepseekV3Attention``).

    Queries come through a low-rank bottleneck (``q_a_proj`` -> RMSNorm -> ``q_b_proj``) or one
    projection when ``q_lora_rank`` is None; keys and values through one shared latent of
    ``kv_lora_rank`` channels plus one shared rotary key of ``qk_rope_head_dim`` channels
    (``kv_a_proj_with_mqa``), normalised and expanded per head by ``kv_b_proj``.  The latent and the
    rotary key are what a token caches.
    """

    num_heads: Positive
    q_lora_rank: Positive | None
    """Rank of the query bottleneck; None: a full-rank ``q_proj`` (DeepSeek-V2-Lite)."""
    kv_lora_rank: Positive
    qk_nope_head_dim: Positive
    """Per-head query/key channels without rotary embedding."""
    qk_rope_head_dim: Positive
    """Per-head query channels, and the shared key channels, that rotate."""
    v_head_dim: Positive
    bias: bool = False
    """``attention_bias``: a bias on ``q_a_proj``, ``kv_a_proj_with_mqa`` and ``o_proj`` (never on the
    ``b`` projections)."""
    latent_norm_eps: PositiveFloat = 1e-6
    """Epsilon of the two latent RMSNorms (transformers builds them with its default, not ``rms_norm_eps``)."""
    rope: RopeSpec | None
    """The rotary base; it rotates the ``qk_rope_head_dim`` channels whole (``partial_factor`` 1).
    None: nothing rotates (Kimi Linear's ``KimiLinearAttention``, "MLA with NoPE"): the
    ``qk_rope_head_dim`` channels stay, a query slice and one key slice shared by every head, but carry
    no position, so that the full layers learn position only from the KDA layers between them."""
    rope_scaling: YarnSpec | None = None
    """YaRN scaling (DeepSeek-V3's released configs use it); None: plain RoPE."""
    rope_interleave: bool = True
    """Whether the rotary channels are stored interleaved (DeepSeek's checkpoints) and de-interleaved first."""
    output_gate: bool = Field(default=False, exclude_if=lambda v: not v)
    """Ling 3's ``BailingHybridAttention``: ``g_proj`` (hidden -> one gate per head) and the attention
    output of each head times ``sigmoid`` of its gate, before ``o_proj``.  Left out of the JSON when False."""

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def softmax_scale(self) -> float:
        """``qk_head_dim ** -0.5``, times YaRN's mscale² when the scaling says so."""
        factor = self.rope_scaling.softmax_factor if self.rope_scaling is not None else 1.0
        return float(self.qk_head_dim**-0.5 * factor)


class DsaSpec(_Node):
    """DeepSeek sparse attention (``D``), as DeepSeek-V3.2 defines it (``DeepseekV32Attention``):
    multi-head latent attention (``mla``, DeepSeek-V3's ``+`` unchanged) in which each query attends
    only the ``index_topk`` keys a lightning indexer (``DeepseekV32Indexer``) scores highest.

    The indexer reads the query latent (the output of ``q_a_layernorm``, so the query bottleneck is
    required) through ``wq_b`` to ``index_n_heads`` heads of ``index_head_dim``, projects the hidden
    state to one shared key (``wk``, then a LayerNorm with weight and bias, ``k_norm``), rotates the
    first ``qk_rope_head_dim`` channels of both with the model's RoPE (half-split, never interleaved,
    unlike the latent attention's), scores every cached key as ``sum_h w_h * relu(q_h . k)`` with
    per-token head weights from ``weights_proj`` (hidden -> heads) and keeps the top ``index_topk``.
    A token caches the latent attention's latent and rotary key plus the indexer's key."""

    mla: MlaSpec
    """The latent attention the indexer sparsifies (the query bottleneck, ``q_lora_rank``, is required)."""
    index_n_heads: Positive
    index_head_dim: Positive
    """Per-head channels of the indexer's queries and of its one shared key; the first
    ``qk_rope_head_dim`` of them rotate."""
    index_topk: Positive
    """Keys each query attends (all of them while the context is shorter)."""
    index_norm_eps: PositiveFloat = 1e-6
    """Epsilon of ``k_norm`` (``nn.LayerNorm(index_head_dim, eps=1e-6)``, fixed by transformers)."""

    @model_validator(mode="after")
    def _indexer_fits(self) -> DsaSpec:
        if self.mla.q_lora_rank is None:
            raise ValueError("the lightning indexer reads the query latent: `q_lora_rank` must be set")
        if self.index_head_dim < self.mla.qk_rope_head_dim:
            raise ValueError(
                f"index_head_dim ({self.index_head_dim}) is smaller than the rotary channels "
                f"qk_rope_head_dim ({self.mla.qk_rope_head_dim}) it rotates"
            )
        return self


class MambaSpec(_Node):
    """A Mamba2 mixer (``M``)."""

    num_heads: Positive
    head_dim: Positive
    state_size: Positive
    n_groups: Positive
    conv_kernel: Positive
    chunk_size: Positive = 256
    conv_bias: bool = True
    proj_bias: bool = False
    norm_group_size: Positive
    """Channels per group of the gated RMSNorm before the output projection."""
    activation: str = "silu"
    time_step_limit: tuple[float, float] = (0.0, float("inf"))
    gated_norm: bool = Field(default=True, exclude_if=lambda v: v)
    """Whether the scan output goes through the gated RMSNorm (weight ``inner_size``) before
    ``out_proj``; False (Falcon-H1's ``mamba_rms_norm: false``): no norm, the output is only gated by
    ``silu(z)``.  Left out of the JSON when True, so the other families' documents stay as they were."""
    norm_before_gate: bool = Field(default=False, exclude_if=lambda v: not v)
    """True (Falcon-H1's ``mamba_norm_before_gate``): ``norm(y) * silu(z)``; False: ``norm(y * silu(z))``
    (Mamba2's ``MambaRMSNormGated``).  Left out of the JSON when False."""
    out_proj_bias: bool | None = Field(default=None, exclude_if=lambda v: v is None)
    """The bias of ``out_proj`` when it differs in kind from ``in_proj``'s (Falcon-H1's
    ``projectors_bias``); None: ``proj_bias`` for both.  Left out of the JSON when None."""

    @property
    def inner_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def out_bias(self) -> bool:
        """Whether ``out_proj`` has a bias."""
        return self.proj_bias if self.out_proj_bias is None else self.out_proj_bias


class GatedDeltaNetSpec(_Node):
    """A gated DeltaNet mixer (``G``), as in Qwen3-Next."""

    num_k_heads: Positive
    num_v_heads: Positive
    head_k_dim: Positive
    head_v_dim: Positive
    conv_kernel: Positive
    split_projections: bool = Field(default=False, exclude_if=lambda v: not v)
    """Qwen3.5: separate ``in_proj_qkv``, ``in_proj_z``, ``in_proj_b``, ``in_proj_a`` instead of
    Qwen3-Next's fused, head-grouped ``in_proj_qkvz`` and ``in_proj_ba``.  The same function up to
    a fixed permutation of weight rows, but a different weight layout (so not the same graph, and a
    checkpoint does not convert by renaming).  Left out of the JSON when False."""
    separate_projections: bool = Field(default=False, exclude_if=lambda v: not v)
    """OLMo Hybrid: one projection per stream, ``q_proj``, ``k_proj``, ``v_proj``, the output gate's
    ``g_proj``, ``a_proj``, ``b_proj``, then ``o_norm`` and ``o_proj``.  The same function as the fused
    layouts up to a fixed permutation of weight rows, but another weight layout.  Left out of the
    JSON when False."""
    allow_neg_eigval: bool = Field(default=False, exclude_if=lambda v: not v)
    """OLMo Hybrid's ``linear_allow_neg_eigval``: beta is ``2 * sigmoid(b)``, in (0, 2), so the
    transition ``I - beta k k^T`` can have negative eigenvalues; Qwen's beta is ``sigmoid(b)``.  Left
    out of the JSON when False."""
    norm_eps: PositiveFloat | None = Field(default=None, exclude_if=lambda v: v is None)
    """Epsilon of the gated output RMSNorm when it is not the model's ``rms_norm_eps`` (OLMo Hybrid
    fixes it at 1e-5, FLA's ``FusedRMSNormGated`` default); None: the model's.  Left out of the
    JSON when None."""


class KdaSpec(_Node):
    """Kimi delta attention (``K``), as in Kimi Linear (``KimiLinearDeltaAttention``): ``q_proj``,
    ``k_proj``, ``v_proj`` (hidden -> ``num_heads * head_dim`` each), one causal depthwise convolution
    over the three (no bias, the model's ``hidden_act``), L2-normalised q and k, the gated delta rule
    with a decay per key channel (Qwen's gated DeltaNet decays per head: that is the difference), beta
    ``sigmoid(b_proj(x))`` per head, an output RMSNorm per head gated by ``sigmoid`` of the output gate,
    ``o_proj``.  The forget gate is ``f(x) + dt_bias`` (one bias per channel) scaled by ``exp(A_log)``
    (one per head).  Keys and values have the same head size, so the state is ``num_heads * head_dim²``
    plus the convolution's window."""

    num_heads: Positive
    head_dim: Positive
    """Per-head channels of q, k and v alike."""
    conv_kernel: Positive
    """Tokens the depthwise convolution spans (``short_conv_kernel_size``)."""
    gate_rank: Positive | None
    """Rank of the forget gate's and the output gate's projections: Kimi's ``f_a_proj`` / ``f_b_proj``
    and ``g_a_proj`` / ``g_b_proj`` go through ``head_dim`` channels; None: one full-rank projection
    each (Ling's ``f_proj`` and ``g_proj``)."""
    gate_lower_bound: float | None = Field(default=None, exclude_if=lambda v: v is None)
    """Ling's bounded ("safe") forget gate, ``lower_bound * sigmoid(exp(A_log) * (f + dt_bias))``;
    None: Kimi's ``-exp(A_log) * softplus(f + dt_bias)``, unbounded below.  Left out of the JSON when None."""
    activation: str = "silu"
    """The convolution's activation: transformers passes the model's ``hidden_act``."""

    @property
    def inner_size(self) -> int:
        return self.num_heads * self.head_dim


class ShortConvSpec(_Node):
    """A gated short convolution (``C``), as in LFM2 (``Lfm2ShortConv``): ``in_proj`` to three
    ``hidden_size`` streams B, C, x; a causal depthwise convolution of ``B * x`` over ``conv_kernel``
    tokens; the output gated by ``C``; ``out_proj``.  Its constant state is the last
    ``conv_kernel - 1`` inputs of the convolution."""

    conv_kernel: Positive
    """Tokens the depthwise convolution spans (LFM2's ``conv_L_cache``)."""
    bias: bool = False
    """``conv_bias``: a bias on ``in_proj``, the convolution and ``out_proj`` alike."""


class LightningSpec(_Node):
    """Lightning attention (``L``), as in MiniMax-Text-01 and MiniMax-M1 (``MiniMaxLightningAttention``):
    linear attention with a fixed exponential decay per head.  ``qkv_proj`` (hidden -> three
    ``num_heads * head_dim`` streams, no bias) through ``activation`` gives q, k and v; each head keeps
    a ``head_dim × head_dim`` state ``S_t = exp(-slope) · S_(t-1) + k_tᵀ v_t`` and reads ``o_t = q_t S_t``
    (no softmax, no RoPE, no q/k normalisation).  The heads' outputs go through one RMSNorm over all
    of them (``norm``, epsilon ``norm_eps``), times ``sigmoid(output_gate(x))``, then ``out_proj``.

    The slopes are not learned: ALiBi's geometric ``2^(-8(h+1)/heads)`` for head ``h``, times
    ``1 - l/(L-1)`` for decoder layer ``l`` of ``L`` (the first layer forgets fastest, the last
    hardly at all), so they follow from ``num_heads`` and the layer's place.  transformers stores
    them and the decays of one ``block_size`` chunk computed from them as persistent buffers
    (``slope_rate``, ``query_decay``, ``key_decay``, ``diagonal_decay``): the chunk size does not
    change the function, but it sizes those buffers (``heads · block_size²`` elements per layer)."""

    num_heads: Positive
    head_dim: Positive
    """Per-head channels of q, k and v alike (``head_dim``, else ``hidden_size // num_attention_heads``)."""
    block_size: Positive = 256
    """The chunk of the blockwise (intra/inter) evaluation; it sizes the decay buffers."""
    activation: str = "silu"
    """Applied to the whole ``qkv_proj`` output (transformers' ``hidden_act``)."""
    norm_eps: PositiveFloat = 1e-6
    """Epsilon of the output RMSNorm (transformers builds it with ``MiniMaxRMSNorm``'s default, not
    ``rms_norm_eps``)."""


class ScaledResidualSpec(_Node):
    """MiniMax's residual connections (``MiniMaxDecoderLayer``; the remote code's ``postnorm``): each
    sub-block adds ``alpha · r + beta · f(norm(x))``, where the residual ``r`` is the *normalised*
    input ``norm(x)`` when ``normed`` (transformers' only form) and ``x`` otherwise, with one
    (alpha, beta) pair after softmax attention, one after lightning attention and one after the FFN.
    MiniMax-Text-01's ``alpha = (2 · 80)^(1/4) ≈ 3.557`` is DeepNorm's up-weighted residual for 80
    layers.  These change the function, so the canonical map compares them."""

    normed: bool = True
    """The residual stream is the sub-block's normalised input (``postnorm: true``)."""
    attention_alpha: Finite = 1.0
    """``full_attn_alpha_factor`` (remote code: ``layernorm_full_attention_alpha``)."""
    attention_beta: Finite = 1.0
    """``full_attn_beta_factor`` (``layernorm_full_attention_beta``)."""
    lightning_alpha: Finite = 1.0
    """``linear_attn_alpha_factor`` (``layernorm_linear_attention_alpha``)."""
    lightning_beta: Finite = 1.0
    """``linear_attn_beta_factor`` (``layernorm_linear_attention_beta``)."""
    ffn_alpha: Finite = 1.0
    """``mlp_alpha_factor`` (``layernorm_mlp_alpha``)."""
    ffn_beta: Finite = 1.0
    """``mlp_beta_factor`` (``layernorm_mlp_beta``)."""

    def factors(self, kind: str) -> tuple[float, float]:
        """(alpha, beta) of a layer of ``kind``: lightning, else another sequence mixer (attention),
        else an FFN."""
        if kind == "lightning":
            return self.lightning_alpha, self.lightning_beta
        if kind_def(kind).role.mixes_tokens:
            return self.attention_alpha, self.attention_beta
        return self.ffn_alpha, self.ffn_beta


class Mamba1Spec(_Node):
    """A Mamba-1 selective-scan mixer (``S``), as transformers' ``MambaMixer`` and ``JambaMambaMixer``
    build it: ``in_proj`` to ``expand * hidden_size`` channels and as many gate channels; a causal
    depthwise convolution; ``x_proj`` to the low-rank time step (``dt_rank``) and one B and one C of
    ``state_size`` per token; ``dt_proj`` back to every channel; the per-channel scan with its own
    ``A`` row (``A_log``: channels x ``state_size``) and skip ``D``; the output gated by SiLU of the
    gate channels; ``out_proj``.  Unlike Mamba2 (``M``) it has no heads, no groups and no gated norm,
    and its state matrix is per channel, so no renaming of weights maps one onto the other.  Its
    constant state is the last ``conv_kernel - 1`` convolution inputs plus channels x ``state_size``."""

    expand: Positive
    """Inner channels per hidden channel (Jamba's ``mamba_expand``, Mamba's ``expand``)."""
    state_size: Positive
    """``mamba_d_state`` / ``state_size``: the state of each channel."""
    conv_kernel: Positive
    """``mamba_d_conv`` / ``conv_kernel``: tokens the depthwise convolution spans."""
    dt_rank: Positive
    """Rank of the time-step projection, ``"auto"`` resolved as transformers does: ``ceil(hidden_size / 16)``."""
    conv_bias: bool = True
    proj_bias: bool = False
    """A bias on ``in_proj`` and ``out_proj`` (``x_proj`` never has one, ``dt_proj`` always)."""
    activation: str = "silu"
    """Applied after the convolution (``hidden_act``); the output gate is SiLU whatever this says."""
    inner_norms: bool = False
    """Jamba: RMSNorms (the model's epsilon) over the time step, B and C after ``x_proj``
    (``dt_layernorm``, ``b_layernorm``, ``c_layernorm``); plain Mamba has none."""

    def inner_size(self, hidden_size: int) -> int:
        """The scan's channels: ``expand * hidden_size``."""
        return self.expand * hidden_size


class MlpSpec(_Node):
    """A dense MLP (``-``)."""

    intermediate_size: Positive
    activation: str
    """``relu2`` (Nemotron-H), ``silu``, ``gelu``…"""
    gated: bool
    """True: ``down(act(gate(x)) * up(x))`` (SwiGLU); False: ``down(act(up(x)))``."""
    bias: bool = False


class MoeSpec(_Node):
    """A mixture of experts (``E``)."""

    num_experts: Positive
    top_k: Positive
    intermediate_size: Positive
    """Hidden size of one routed expert."""
    router: Literal["sigmoid", "softmax"]
    score_correction_bias: bool = False
    """DeepSeek-style bias added to the scores for selection only."""
    n_group: Positive = 1
    topk_group: Positive = 1
    norm_topk_prob: bool = True
    routed_scaling_factor: PositiveFloat = 1.0
    expert_gated: bool
    expert_activation: str
    shared_experts: NonNegative = 0
    shared_intermediate_size: NonNegative = 0
    shared_gated: bool = False
    shared_expert_gate: bool = False
    """Qwen3-Next scales the shared expert by a learned sigmoid gate."""
    latent_size: Positive | None = None
    """Nemotron 3 Super projects tokens to this size before the routed experts."""
    bias: bool = False


class MupSpec(_Node):
    """Falcon-H1's µP multipliers: constants that scale activations (no weights), each changing the
    function the model computes, so the canonical map compares them field by field.  All 1.0 is a
    model without them; the embedding's is ``ModelSpec.embedding_multiplier``, as for Granite."""

    lm_head: float = 1.0
    """``lm_head_multiplier``: the logits times this."""
    attention_in: float = 1.0
    """``attention_in_multiplier``: a parallel layer's normed input times this, for attention only."""
    attention_out: float = 1.0
    """``attention_out_multiplier``: the attention branch's output times this, before the sum."""
    key: float = 1.0
    """``key_multiplier``: the keys times this (after ``k_proj``, before RoPE)."""
    ssm_in: float = 1.0
    """``ssm_in_multiplier``: the Mamba2 branch's input times this."""
    ssm_out: float = 1.0
    """``ssm_out_multiplier``: the Mamba2 branch's output times this, before the sum."""
    ssm: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)
    """``ssm_multipliers``: ``in_proj``'s output times these, per section (z, x, B, C, dt): the
    non-persistent ``mup_vector`` buffer."""
    mlp: tuple[float, float] = (1.0, 1.0)
    """``mlp_multipliers``: the MLP's gate projection times the first, its output times the second."""


class ModelSpec(_Node):
    """A whole model: the layer stack and the hyper-parameters of every kind it uses."""

    schema_version: Literal[1] = MODEL_SCHEMA_VERSION
    source: str
    """The model family (config ``model_type``) it was read from (``nemotron_h``, ``bamba``, …), or ``pattern``."""
    pattern: Pattern
    hidden_size: Positive
    vocab_size: Positive
    tie_embeddings: bool = False
    norm: NormSpec
    attention: AttentionSpec | None = None
    mamba: MambaSpec | None = None
    gated_deltanet: GatedDeltaNetSpec | None = None
    mlp: MlpSpec | None = None
    moe: MoeSpec | None = None
    mla: MlaSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """Multi-head latent attention (DeepSeek-V3).  Left out of the JSON when None, so the documents of
    the families without it stay as they were."""
    short_conv: ShortConvSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """Gated short convolution (LFM2).  Left out of the JSON when None, so the documents of the
    families without it stay as they were."""
    mup: MupSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """Falcon-H1's µP multipliers (branch, key, MLP and ``in_proj`` section scales).  Left out of the
    JSON when None."""
    dsa: DsaSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """DeepSeek sparse attention (DeepSeek-V3.2).  Left out of the JSON when None, so the documents of
    the families without it stay as they were."""
    lightning: LightningSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """Lightning attention (MiniMax).  Left out of the JSON when None, so the documents of the
    families without it stay as they were."""
    scaled_residual: ScaledResidualSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """MiniMax's weighted residuals from the normalised input; None: the plain pre-norm
    ``x + f(norm(x))`` (times ``residual_multiplier``) of every other family.  Left out of the JSON
    when None."""
    mamba1: Mamba1Spec | None = Field(default=None, exclude_if=lambda v: v is None)
    """Mamba-1 selective scan (Jamba, Mamba).  Left out of the JSON when None, so the documents of the
    families without it stay as they were."""
    kda: KdaSpec | None = Field(default=None, exclude_if=lambda v: v is None)
    """Kimi delta attention (Kimi Linear, Ling/Ring linear).  Left out of the JSON when None, so the
    documents of the families without it stay as they were."""
    embedding_multiplier: PositiveFloat = 1.0
    residual_multiplier: PositiveFloat = 1.0
    logits_scaling: PositiveFloat = 1.0
    """Logits are divided by this (GraniteMoeHybrid)."""
    max_position_embeddings: Positive | None = None

    def flavour(self, kind: str) -> BaseModel | None:
        """The hyper-parameters every layer of ``kind`` uses (None if the model has none).

        The field is the kind's ``KindDef.spec_field``; a kind without one has no hyper-parameters.
        """
        field_name = kind_def(kind).spec_field
        flavour: BaseModel | None = None if field_name is None else getattr(self, field_name)
        return flavour
