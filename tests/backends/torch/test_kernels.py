"""The fused CUDA kernels of the linear mixers (``patternc_torch.kernels``): wiring checked on the CPU,
the kernels themselves on a GPU.

On the CPU (always run): the kernel finders are replaced by PyTorch stand-ins with the kernels' exact
signatures, argument layouts and in-place behaviour (written from fla's naive delta rules,
causal-conv1d's ``causal_conv1d_ref`` / ``causal_conv1d_update_ref`` and mamba_ssm's
``selective_scan_ref`` / ``selective_state_update_ref``; each asserts the shapes the real kernel
asserts or assumes).  A model of each kind (``G`` in Qwen3-Next's and OLMo Hybrid's flavours, ``K``,
``S``, ``C``) then runs its full forward, a prompt fed in pieces and then token by token through the
one-token decode path, a left-padded batch and its continuation: with every package, with the
sequence kernels only, with the convolution only, and the logits must equal the plain PyTorch path's
within 1e-4, with every stand-in called where it should be.  A transposed layout, a dropped or
misnamed argument, a state in the wrong layout or not written back fails here.

On a GPU with the package installed (skipped, with the reason, otherwise): the same sequence on CUDA
with the real kernels against the PyTorch path.  No GPU run has been made for this file yet
(docs/backends/torch.md); ``GPU`` names the device so that its logic can be dry-run on the CPU.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from patternc_torch import kernels, ssd  # noqa: E402
from patternc_torch.io import build  # noqa: E402

from patternc.config import read_config  # noqa: E402
from patternc.kinds import by_symbol  # noqa: E402
from patternc.model import ModelSpec  # noqa: E402

TOL = 1e-4
VOCAB = 97

# -- the stand-ins ----------------------------------------------------------------------------------


def _l2norm(x: torch.Tensor) -> torch.Tensor:
    """fla's ``l2norm``: ``x / sqrt(sum(x**2) + 1e-6)`` over the last dim."""
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-6)


def _delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None,
    initial_state: torch.Tensor | None,
    output_final_state: bool,
    use_qk_l2norm_in_kernel: bool,
    per_channel: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fla's ``naive_recurrent_gated_delta_rule`` / KDA's naive rule, one position at a time, with the
    layouts fla documents: q, k ``[B, T, H, K]``, v ``[B, T, HV, V]`` (``HV % H == 0``: grouped value
    attention), g ``[B, T, HV]`` (``[B, T, HV, K]`` per channel), beta ``[B, T, HV]``, the state
    ``[B, HV, K, V]``; outputs in v's dtype, the final state float32."""
    b, t, h, dk = q.shape
    hv, dv = v.shape[2], v.shape[3]
    assert k.shape == q.shape and v.shape[:2] == (b, t) and hv % h == 0, (q.shape, k.shape, v.shape)
    assert g.shape == ((b, t, hv, dk) if per_channel else (b, t, hv)), g.shape
    assert beta.shape == (b, t, hv), beta.shape
    assert initial_state is None or initial_state.shape == (b, hv, dk, dv), initial_state.shape
    qf, kf, vf, gf, bf = (x.float() for x in (q, k, v, g, beta))
    if use_qk_l2norm_in_kernel:
        qf, kf = _l2norm(qf), _l2norm(kf)
    qf = qf * (dk**-0.5 if scale is None else scale)
    qf, kf = qf.repeat_interleave(hv // h, dim=2), kf.repeat_interleave(hv // h, dim=2)
    S = torch.zeros(b, hv, dk, dv) if initial_state is None else initial_state.float().clone()
    out = []
    for i in range(t):
        decay = gf[:, i].exp()
        S = S * (decay[..., None] if per_channel else decay[..., None, None])
        kv = torch.einsum("bhk,bhkv->bhv", kf[:, i], S)
        delta = (vf[:, i] - kv) * bf[:, i, :, None]
        S = S + kf[:, i, :, :, None] * delta[:, :, None, :]
        out.append(torch.einsum("bhk,bhkv->bhv", qf[:, i], S))
    return torch.stack(out, dim=1).to(v.dtype), S if output_final_state else None


def chunk_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
    use_beta_sigmoid_in_kernel: bool = False,
    allow_neg_eigval: bool = False,
    state_v_first: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    assert not (use_beta_sigmoid_in_kernel or allow_neg_eigval or state_v_first or cu_seqlens is not None)
    return _delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, False)


def fused_recurrent_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None = None,
    gk: torch.Tensor | None = None,
    gv: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    assert g is not None and beta is not None and gk is None and gv is None and cu_seqlens is None
    return _delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, False)


def chunk_kda(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
    use_gate_in_kernel: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    assert not use_gate_in_kernel and cu_seqlens is None
    return _delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, True)


def fused_recurrent_kda(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    A_log: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
    use_gate_in_kernel: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    assert not use_gate_in_kernel and A_log is None and dt_bias is None and cu_seqlens is None
    return _delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, True)


def causal_conv1d_fn(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    return_final_states: bool = False,
    final_states_out: torch.Tensor | None = None,
    activation: str | None = None,
) -> torch.Tensor:
    """causal-conv1d's ``causal_conv1d_ref``: x (batch, dim, seqlen), weight (dim, width)."""
    assert activation in (None, "silu", "swish")
    assert seq_idx is None and initial_states is None and not return_final_states
    dim, width = weight.shape
    assert x.dim() == 3 and x.shape[1] == dim and 2 <= width <= 4, (x.shape, weight.shape)
    assert x.stride(2) == 1 or x.stride(1) == 1
    out = F.conv1d(x.to(weight.dtype), weight.unsqueeze(1), bias, padding=width - 1, groups=dim)[..., : x.shape[-1]]
    return (out if activation is None else F.silu(out)).to(x.dtype)


def causal_conv1d_update(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    cache_seqlens: torch.Tensor | None = None,
    conv_state_indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """causal-conv1d's ``causal_conv1d_update_ref``: x (batch, dim) or (batch, dim, seqlen), conv_state
    (batch, dim, state_len >= width - 1) in x's dtype (the CUDA kernel checks it), updated in place."""
    assert activation in (None, "silu", "swish") and cache_seqlens is None and conv_state_indices is None
    unsqueeze = x.dim() == 2
    if unsqueeze:
        x = x.unsqueeze(-1)
    batch, dim, seqlen = x.shape
    width = weight.shape[1]
    state_len = conv_state.shape[-1]
    assert conv_state.shape == (batch, dim, state_len) and state_len >= width - 1 and 2 <= width <= 4
    assert weight.shape == (dim, width) and conv_state.dtype == x.dtype
    x_new = torch.cat([conv_state, x], dim=-1).to(weight.dtype)
    conv_state.copy_(x_new[:, :, -state_len:])
    out = F.conv1d(x_new, weight.unsqueeze(1), bias, padding=0, groups=dim)[:, :, -seqlen:]
    if unsqueeze:
        out = out.squeeze(-1)
    return (out if activation is None else F.silu(out)).to(x.dtype)


def selective_scan_fn(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> Any:
    """mamba_ssm's ``selective_scan_ref`` for a real A (dim, n) and variable B, C (batch, n, seqlen)."""
    batch, dim, seqlen = u.shape
    n = A.shape[1]
    assert delta.shape == u.shape and A.shape == (dim, n), (delta.shape, A.shape)
    assert B.shape == (batch, n, seqlen) and C.shape == B.shape, (B.shape, C.shape)
    dtype_in = u.dtype
    u, delta = u.float(), delta.float()
    if delta_bias is not None:
        assert delta_bias.shape == (dim,)
        delta = delta + delta_bias[..., None].float()
    if delta_softplus:
        delta = F.softplus(delta)
    x = A.new_zeros((batch, dim, n))
    delta_a = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    delta_b_u = torch.einsum("bdl,bnl,bdl->bdln", delta, B.float(), u)
    ys = []
    for i in range(seqlen):
        x = delta_a[:, :, i] * x + delta_b_u[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, :, i].float()))
    out = torch.stack(ys, dim=2)
    if D is not None:
        out = out + u * D.float()[:, None]
    if z is not None:
        out = out * F.silu(z.float())
    out = out.to(dtype_in)
    return (out, x) if return_last_state else out


def selective_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    state_batch_indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """mamba_ssm's ``selective_state_update_ref``: state (batch, dim, n) or with heads (batch, nheads,
    dim, n) updated in place; x, dt (batch, [nheads,] dim); A ([nheads,] dim, n); B, C (batch, [ngroups,]
    n), each group serving ``nheads // ngroups`` consecutive heads; D, dt_bias ([nheads,] dim)."""
    assert state_batch_indices is None
    has_heads = state.dim() > 3
    if not has_heads:
        state, x, dt, A, B, C = state.unsqueeze(1), x.unsqueeze(1), dt.unsqueeze(1), A[None], B[:, None], C[:, None]
        D = None if D is None else D[None]
        z = None if z is None else z.unsqueeze(1)
        dt_bias = None if dt_bias is None else dt_bias[None]
    batch, nheads, dim, dstate = state.shape
    ngroups = B.shape[1]
    assert x.shape == (batch, nheads, dim) and dt.shape == x.shape and A.shape == (nheads, dim, dstate)
    assert nheads % ngroups == 0 and B.shape == (batch, ngroups, dstate) and C.shape == B.shape
    assert D is None or D.shape == (nheads, dim)
    assert dt_bias is None or dt_bias.shape == (nheads, dim)
    if dt_bias is not None:
        dt = dt + dt_bias
    if dt_softplus:
        dt = F.softplus(dt)
    dA = torch.exp(dt[..., None] * A)
    B, C = B.repeat_interleave(nheads // ngroups, dim=1), C.repeat_interleave(nheads // ngroups, dim=1)
    dB = dt[..., None] * B[:, :, None, :]
    state.copy_(state * dA + dB * x[..., None])
    out = torch.einsum("bhdn,bhn->bhd", state.to(C.dtype), C)
    if D is not None:
        out = out + x * D
    if z is not None:
        out = out * F.silu(z)
    return (out if has_heads else out[:, 0]).to(x.dtype)


def mamba_chunk_scan_combined(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = (0.0, float("inf")),
    return_final_states: bool = False,
    return_varlen_states: bool = False,
) -> Any:
    """mamba_ssm's SSD scan, position by position: x (b, l, h, p), dt (b, t, h), A (h,), B, C (b, t, g, n),
    D (h,) or (h, p), z like x, dt_bias (h,), initial_states (b, h, p, n); dt biased, softplus'ed and
    clamped (when ``dt_limit`` is not the default) in the kernel."""
    b, t, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    assert dt.shape == (b, t, h) and A.shape == (h,) and B.shape == (b, t, g, n) and C.shape == B.shape
    assert initial_states is None or initial_states.shape == (b, h, p, n)
    assert seq_idx is None and cu_seqlens is None and not return_varlen_states and chunk_size > 0
    dt = dt.float()
    if dt_bias is not None:
        assert dt_bias.shape == (h,)
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    if dt_limit != (0.0, float("inf")):
        dt = dt.clamp(min=dt_limit[0], max=dt_limit[1])
    Bh = B.float().repeat_interleave(h // g, dim=2)
    Ch = C.float().repeat_interleave(h // g, dim=2)
    state = torch.zeros(b, h, p, n) if initial_states is None else initial_states.float().clone()
    ys = []
    for i in range(t):
        state = state * torch.exp(dt[:, i] * A.float())[..., None, None]
        state = state + (dt[:, i, :, None] * x[:, i].float())[..., None] * Bh[:, i, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, i]))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + x.float() * (D.float()[:, None] if D.dim() == 1 else D.float())
    if z is not None:
        y = y * F.silu(z.float())
    y = y.to(x.dtype)
    return (y, state) if return_final_states else y


Calls = Counter[str]


def _recording(calls: Calls, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return fn(*args, **kwargs)

    return wrapped


def _kernel_sets(calls: Calls, source: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """The three kernel sets over ``source`` (name -> function), each call counted in ``calls``."""
    r = {name: _recording(calls, name, fn) for name, fn in source.items()}
    return {
        "fla": kernels.Fla(
            r["chunk_gated_delta_rule"], r["fused_recurrent_gated_delta_rule"], r["chunk_kda"], r["fused_recurrent_kda"]
        ),
        "causal_conv1d": kernels.CausalConv1d(r["causal_conv1d_fn"], r["causal_conv1d_update"]),
        "mamba_ssm": kernels.MambaSsm(r["selective_scan_fn"], r["selective_state_update"]),
        "mamba2": {  # ssd.fused_kernels' dictionary
            name: r[name]
            for name in (
                "causal_conv1d_fn",
                "causal_conv1d_update",
                "selective_state_update",
                "mamba_chunk_scan_combined",
            )
        },
    }


STAND_INS: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in (
        chunk_gated_delta_rule,
        fused_recurrent_gated_delta_rule,
        chunk_kda,
        fused_recurrent_kda,
        causal_conv1d_fn,
        causal_conv1d_update,
        selective_scan_fn,
        selective_state_update,
        mamba_chunk_scan_combined,
    )
}


def _install(monkeypatch: pytest.MonkeyPatch, sets: dict[str, Any], packages: tuple[str, ...]) -> None:
    """The finders of ``packages`` answer with ``sets``' kernels whatever the device; the others with None.
    Mamba2's finder (``ssd.mamba2_kernels``) answers with both packages or neither, as ``fused_kernels``."""
    for package in ("fla", "causal_conv1d", "mamba_ssm"):
        found = sets[package] if package in packages else None
        monkeypatch.setattr(kernels, package, lambda x, found=found: found)
    both = "mamba_ssm" in packages and "causal_conv1d" in packages
    monkeypatch.setattr(ssd, "mamba2_kernels", lambda x, found=sets["mamba2"] if both else None: found)


# -- the models -------------------------------------------------------------------------------------

CONFIGS: dict[str, dict[str, Any]] = {
    "nemotron_h": {  # Mamba2 with the gated norm after the gate, two groups, dt clamped
        "model_type": "nemotron_h",
        "hybrid_override_pattern": "M-M*-",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "mamba_num_heads": 4,
        "mamba_head_dim": 16,
        "n_groups": 2,
        "ssm_state_size": 8,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "intermediate_size": 48,
        "chunk_size": 8,
        "time_step_min": 0.6,  # dt clamped below often: the kernel step gets dt ready
    },
    "falcon_h1": {  # [*M]: µP multipliers on in_proj's sections, the norm before the gate
        "model_type": "falcon_h1",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "mamba_d_ssm": 32,
        "mamba_n_heads": 4,
        "mamba_d_head": 8,
        "mamba_n_groups": 2,
        "mamba_d_state": 8,
        "mamba_d_conv": 4,
        "mamba_chunk_size": 16,
        "mamba_conv_bias": True,
        "mamba_rms_norm": True,
        "mamba_norm_before_gate": True,
        "ssm_multipliers": [0.5, 1.5, 0.75, 1.25, 2.0],
        "ssm_in_multiplier": 0.8,
    },
    "qwen3_next": {
        "model_type": "qwen3_next",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "layer_types": ["linear_attention", "full_attention"],
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 16,  # dk != dv: a state transposed to [V, K] cannot pass
        "linear_conv_kernel_dim": 4,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 16,
        "shared_expert_intermediate_size": 16,
    },
    "qwen3_5": {  # split projections, a convolution of width 2
        "model_type": "qwen3_5_text",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "layer_types": ["linear_attention", "full_attention"],
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 16,
        "linear_conv_kernel_dim": 2,
    },
    "bailing_hybrid": {  # Ling: full-rank gates, the bounded forget gate
        "model_type": "bailing_hybrid",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "layer_types": ["linear_attention", "full_attention"],
        "num_attention_heads": 2,
        "head_dim": 8,
        "short_conv_kernel_size": 3,
        "kv_lora_rank": 16,
        "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 4,
        "v_head_dim": 8,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 16,
        "kda_safe_gate": True,
        "kda_lower_bound": -2.0,
        "num_mtp_layers": 0,
    },
    "olmo_hybrid": {
        "model_type": "olmo_hybrid",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "layer_types": ["linear_attention", "full_attention"],
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "linear_num_key_heads": 1,
        "linear_num_value_heads": 2,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 16,
        "linear_conv_kernel_dim": 3,
        "linear_allow_neg_eigval": True,
        "rms_norm_eps": 1e-6,
    },
    "kimi_linear": {
        "model_type": "kimi_linear",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 1,
        "layer_types": ["linear_attention"],
        "mlp_layer_types": ["dense"],
        "linear_num_heads": 2,
        "linear_head_dim": 8,
        "linear_conv_kernel_dim": 4,
    },
    "jamba": {
        "model_type": "jamba",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "num_experts": 1,
        "mamba_d_state": 8,
        "mamba_expand": 2,
        "mamba_conv_bias": True,
    },
    "lfm2": {
        "model_type": "lfm2",
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "block_multiple_of": 16,
        "num_hidden_layers": 2,
        "layer_types": ["conv", "full_attention"],
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "conv_L_cache": 3,
        "conv_bias": True,
    },
}
"""One tiny config per family whose linear mixer has a kernel (the kind in ``KIND``)."""

KIND = {
    "nemotron_h": "M",
    "falcon_h1": "M",
    "qwen3_next": "G",
    "qwen3_5": "G",
    "olmo_hybrid": "G",
    "kimi_linear": "K",
    "bailing_hybrid": "K",
    "jamba": "S",
    "lfm2": "C",
}

SEQUENCE_KERNELS = {
    "G": ("chunk_gated_delta_rule", "fused_recurrent_gated_delta_rule"),
    "K": ("chunk_kda", "fused_recurrent_kda"),
    "S": ("selective_scan_fn", "selective_state_update"),
    "C": (),
    "M": ("mamba_chunk_scan_combined", "selective_state_update"),
}
"""Each kind's (prefill, one-token) kernel of its own package; the convolution's are every kind's."""

PACKAGE = {"G": "fla", "K": "fla", "S": "mamba_ssm", "C": "causal_conv1d", "M": "mamba_ssm"}


def spec_of(family: str) -> ModelSpec:
    reading = read_config(CONFIGS[family])
    assert reading.spec is not None, reading.diagnostics
    kind = by_symbol(KIND[family]).kind
    assert any(kind in (layer.kind, *layer.parallel) for layer in reading.spec.pattern.layers), family
    return reading.spec


def _model(family: str, seed: int, device: str = "cpu") -> Any:
    model = build(spec_of(family))
    model.init_weights(seed=seed, std=0.2)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # decays of 0.1 to 0.9 a step and gates that matter
        for name, p in model.named_parameters():
            if name.endswith(("A_log", "dt_bias")):
                p.copy_(torch.rand(p.shape, generator=gen) * 1.5 - 0.5)
    return model.to(device).eval()


def _sequence(model: Any, seed: int, device: str = "cpu") -> Iterator[tuple[str, torch.Tensor]]:
    """(label, logits) of the full forward; a prompt in two pieces then token by token on the one-token
    path; a left-padded batch; its continuation token by token (the forward with a state and a mask)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (2, 20), generator=gen).to(device)
    with torch.no_grad():
        yield "full", model(ids).logits
        state = model.new_state(2, 4)
        pieces = [model(ids[:, :5], state=state).logits, model(ids[:, 5:9], state=state).logits]
        assert model._can_step(state)
        pieces += [model(ids[:, i : i + 1], state=state).logits for i in range(9, 20)]
        yield "pieces then steps", torch.cat(pieces, dim=1)
        mask = torch.ones(2, 14, dtype=torch.long, device=device)
        mask[1, :3] = 0
        padded = ids[:, :14].clone()
        padded[1, :3] = 0
        yield "left-padded", model(padded, attention_mask=mask).logits * mask[..., None]
        state = model.new_state(2, 4)
        model(padded[:, :-3], attention_mask=mask[:, :-3], state=state)
        yield "padded steps", torch.cat([model(padded[:, i : i + 1], state=state).logits for i in range(11, 14)], 1)


FAMILIES = sorted(CONFIGS)


CASES = [(f, p) for f in FAMILIES for p in ("all", "sequence", "conv") if KIND[f] not in "CM" or p == "all"]
CASES += [("lfm2", "conv")]
"""Every family with every package, its own package alone, the convolution's alone (``C`` has no other,
``M`` takes both or neither: ``ssd.fused_kernels``)."""


@pytest.mark.parametrize(("family", "packages"), CASES)
def test_the_kernel_path_gives_the_pytorch_paths_logits(
    family: str, packages: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-ins in the kernels' places: the same logits as the plain path, and each stand-in used."""
    kind = KIND[family]
    chosen = {
        "all": ("fla", "causal_conv1d", "mamba_ssm"),
        "sequence": (PACKAGE[kind],),
        "conv": ("causal_conv1d",),
    }[packages]
    seed = 1 + FAMILIES.index(family)
    model = _model(family, seed)
    plain = dict(_sequence(model, seed))
    calls: Calls = Counter()
    _install(monkeypatch, _kernel_sets(calls, STAND_INS), chosen)
    fused = dict(_sequence(model, seed))
    for label, logits in plain.items():
        gap = float((fused[label] - logits).abs().max())
        assert gap <= TOL, (family, packages, label, gap)
    expected = set()
    if "causal_conv1d" in chosen:
        expected |= {"causal_conv1d_fn", "causal_conv1d_update"}
    if PACKAGE[kind] in chosen:
        expected |= set(SEQUENCE_KERNELS[kind])
    assert set(calls) == expected, (family, packages, calls)
    # the one-token decode closures (``TorchKind.step``) take the kernels too, not only the forward
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (2, 7), generator=gen)
    state = model.new_state(2, 4)
    with torch.no_grad():
        model(ids[:, :6], state=state)
        assert model._can_step(state)
        calls.clear()
        model(ids[:, 6:], state=state)
    prefill_only = {"causal_conv1d_fn", *SEQUENCE_KERNELS[kind][:1]}
    assert set(calls) == expected - prefill_only, (family, packages, "decode step", calls)


def test_fla_gets_the_key_heads_unrepeated_and_the_convolution_unnormalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers' layout: q, k with the key heads (fla repeats them), v with the value heads, and
    q, k straight from the convolution (the kernel normalises; normalising twice would be idempotent,
    but scaling twice is not: the model-level test catches that, this one the heads)."""
    seen: list[tuple[tuple[int, ...], ...]] = []

    def spy(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: Any) -> Any:
        seen.append((tuple(q.shape), tuple(k.shape), tuple(v.shape), tuple(kw["g"].shape)))
        assert kw["use_qk_l2norm_in_kernel"] is True and kw["output_final_state"] is True
        return chunk_gated_delta_rule(q, k, v, **kw)

    calls: Calls = Counter()
    sets = _kernel_sets(calls, STAND_INS | {"chunk_gated_delta_rule": spy})
    _install(monkeypatch, sets, ("fla",))
    model = _model("qwen3_next", 3)
    with torch.no_grad():
        model(torch.randint(2, VOCAB, (2, 7)))
    assert seen == [((2, 7, 2, 8), (2, 7, 2, 8), (2, 7, 4, 16), (2, 7, 4))]


def test_conv_helpers_fall_back_where_the_kernel_does_not_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """A width outside 2..4 or an activation the kernel does not apply runs ``ssd.causal_conv``: the
    kernel is not called and the result is the plain one; inside those, the kernel is called."""
    calls: Calls = Counter()
    _install(monkeypatch, _kernel_sets(calls, STAND_INS), ("causal_conv1d",))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 6, generator=gen)
    for width, activation in [(5, "silu"), (1, None), (3, "gelu")]:
        weight = torch.randn(8, 1, width, generator=gen)
        out, tail = kernels.conv_prefill(x, weight, None, None, activation)
        plain = F.conv1d(F.pad(x, (width - 1, 0)), weight, groups=8)
        plain = {"silu": F.silu, "gelu": F.gelu, None: lambda y: y}[activation](plain)
        torch.testing.assert_close(out, plain)
        assert tail.shape == (2, 8, width - 1)
    assert not calls
    weight = torch.randn(8, 1, 4, generator=gen)
    state = torch.randn(2, 8, 3, generator=gen)
    out, tail = kernels.conv_prefill(x, weight, None, state, "silu")
    plain = F.silu(F.conv1d(torch.cat([state, x], -1), weight, groups=8))
    torch.testing.assert_close(out, plain)
    torch.testing.assert_close(tail, x[:, :, -3:])
    step_state = state.clone()
    one = kernels.conv_step(x[:, :, 0], weight, None, step_state, "silu")
    torch.testing.assert_close(one, plain[:, :, 0])
    torch.testing.assert_close(step_state, torch.cat([state[:, :, 1:], x[:, :, :1]], -1))
    assert calls == Counter({"causal_conv1d_fn": 1, "causal_conv1d_update": 1})


def test_on_the_cpu_or_switched_off_no_kernel_is_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU tensor gets None without an import; a CUDA-resident computation with the switch set too."""
    looked: list[str] = []
    for name in ("find_fla", "find_causal_conv1d", "find_mamba_ssm"):
        monkeypatch.setattr(kernels, name, lambda name=name: looked.append(name))
    x = torch.zeros(2)
    assert kernels.fla(x) is None and kernels.causal_conv1d(x) is None and kernels.mamba_ssm(x) is None
    assert looked == []

    class Cuda:  # what the finders read of a tensor
        is_cuda = True

    monkeypatch.setenv(kernels.NO_FUSED, "1")
    fake = Cuda()
    assert kernels.fla(fake) is None and kernels.causal_conv1d(fake) is None  # type: ignore[arg-type]
    assert looked == []
    monkeypatch.delenv(kernels.NO_FUSED)
    kernels.mamba_ssm(fake)  # type: ignore[arg-type]
    assert looked == ["find_mamba_ssm"]


def _fake_package(monkeypatch: pytest.MonkeyPatch, modules: dict[str, dict[str, Any]]) -> None:
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        for key, value in attrs.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.parametrize(("version", "found"), [("0.4.2", False), ("0.5.0", True), ("0.5.2.dev1", True)])
def test_fla_is_found_from_the_version_that_takes_grouped_value_heads(
    version: str, found: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    gdr = {"chunk_gated_delta_rule": chunk_gated_delta_rule}
    gdr["fused_recurrent_gated_delta_rule"] = fused_recurrent_gated_delta_rule
    _fake_package(
        monkeypatch,
        {
            "fla": {"__version__": version},
            "fla.ops": {},
            "fla.ops.gated_delta_rule": gdr,
            "fla.ops.kda": {"chunk_kda": chunk_kda, "fused_recurrent_kda": fused_recurrent_kda},
        },
    )
    kernels.find_fla.cache_clear()
    try:
        result = kernels.find_fla()
    finally:
        kernels.find_fla.cache_clear()
    assert (result is not None) == found
    if result is not None:
        assert result.chunk_kda is chunk_kda and result.chunk_gated_delta_rule is chunk_gated_delta_rule


@pytest.mark.parametrize(("version", "found"), [("1.2.0", False), ("1.4.0", True), ("1.6.1", True)])
def test_causal_conv1d_is_found_from_the_version_that_takes_a_short_window(
    version: str, found: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_package(
        monkeypatch,
        {
            "causal_conv1d": {
                "__version__": version,
                "causal_conv1d_fn": causal_conv1d_fn,
                "causal_conv1d_update": causal_conv1d_update,
            }
        },
    )
    kernels.find_causal_conv1d.cache_clear()
    try:
        assert (kernels.find_causal_conv1d() is not None) == found
    finally:
        kernels.find_causal_conv1d.cache_clear()


def test_a_package_that_fails_to_import_means_no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """``None`` in ``sys.modules`` makes the import raise ImportError, as a missing package does."""
    for name in ("fla", "causal_conv1d", "mamba_ssm", "mamba_ssm.ops.selective_scan_interface"):
        monkeypatch.setitem(sys.modules, name, None)
    finders = (kernels.find_fla, kernels.find_causal_conv1d, kernels.find_mamba_ssm)
    for finder in finders:
        finder.cache_clear()
    try:
        assert [finder() for finder in finders] == [None, None, None]
    finally:
        for finder in finders:
            finder.cache_clear()


# -- on a GPU ---------------------------------------------------------------------------------------


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


CUDA_CONFIGS: dict[str, dict[str, Any]] = {
    "nemotron_h": {"hidden_size": 64, "mamba_head_dim": 32, "ssm_state_size": 16, "chunk_size": 16},
    "falcon_h1": {"hidden_size": 64, "mamba_d_ssm": 128, "mamba_d_head": 32, "mamba_d_state": 16},
    "qwen3_next": {"hidden_size": 128, "linear_key_head_dim": 32, "linear_value_head_dim": 64, "head_dim": 32},
    "qwen3_5": {"hidden_size": 128, "linear_key_head_dim": 32, "linear_value_head_dim": 64, "head_dim": 32},
    "olmo_hybrid": {"hidden_size": 128, "linear_key_head_dim": 32, "linear_value_head_dim": 64},
    "bailing_hybrid": {"hidden_size": 128, "head_dim": 32},
    "kimi_linear": {"hidden_size": 128, "linear_head_dim": 32},
    "jamba": {"hidden_size": 64},
    "lfm2": {"hidden_size": 64},
}
"""Head dimensions and state sizes of 16 and more: Triton's matrix products want tiles of 16."""


GPU = "cuda"
"""The device of the GPU test (a name, so that its logic can be dry-run on the CPU with stand-ins)."""


def _finders(monkeypatch: pytest.MonkeyPatch, sets: dict[str, Any] | None) -> None:
    """Every finder answers with ``sets``' kernels (None: no kernel anywhere) on ``GPU`` tensors."""
    for package in ("fla", "causal_conv1d", "mamba_ssm", "mamba2"):
        found = None if sets is None else sets[package]
        owner = ssd if package == "mamba2" else kernels
        name = "mamba2_kernels" if package == "mamba2" else package
        monkeypatch.setattr(owner, name, lambda x, found=found: found if x.device.type == GPU else None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("family", FAMILIES)
def test_cuda_kernels_give_the_pytorch_paths_logits(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real kernels, each one's use recorded, against the PyTorch path (every finder answering None,
    as ``PATTERNC_TORCH_NO_FUSED=1`` makes them), fp32 on CUDA, within 1% of the largest logit:
    Triton's fp32 products may run in TF32 (a wiring error is O(1), and caught on the CPU above)."""
    kind = KIND[family]
    needed = {PACKAGE[kind], "causal_conv1d"}
    missing = sorted(p for p in needed if not _installed(p))
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} installed")
    monkeypatch.delenv(kernels.NO_FUSED, raising=False)
    ssd.fused_kernels.cache_clear()
    real: dict[str, Any] = {
        "fla": kernels.find_fla(),
        "causal_conv1d": kernels.find_causal_conv1d(),
        "mamba_ssm": kernels.find_mamba_ssm(),
        "mamba2": ssd.fused_kernels(),
    }
    absent = sorted(p for p in ({"mamba2"} if kind == "M" else needed) if real[p] is None)
    if absent:
        pytest.skip(f"{' and '.join(absent)} installed but not usable (import failed or too old)")
    monkeypatch.setitem(CONFIGS, family, CONFIGS[family] | CUDA_CONFIGS[family])
    model = _model(family, 5, GPU)
    _finders(monkeypatch, None)
    plain = dict(_sequence(model, 5, GPU))
    source: dict[str, Callable[..., Any]] = dict(real["mamba2"] or {})
    for package in ("fla", "causal_conv1d", "mamba_ssm"):
        if real[package] is not None:
            source |= {f: getattr(real[package], f) for f in real[package].__dataclass_fields__}
    calls: Calls = Counter()
    recorded = _kernel_sets(calls, STAND_INS | source)
    _finders(monkeypatch, {package: recorded[package] if real[package] else None for package in recorded})
    fused = dict(_sequence(model, 5, GPU))
    for label, logits in plain.items():
        gap = float((fused[label] - logits).abs().max())
        assert gap <= 1e-2 * (1 + float(logits.abs().max())), (family, label, gap)
    assert set(SEQUENCE_KERNELS[kind]) | {"causal_conv1d_fn", "causal_conv1d_update"} <= set(calls), calls
