"""The per-token path: one new token per row after an unpadded history, without autograd.

``decode_steps(layers)`` (``patternc_torch.kinds``) turns every layer into a closure over its
weights: no module calls, no attribute look-ups, no masks, constants such as ``A = -exp(A_log)``
computed once, intermediate results updated in place.  ``HybridLM.generate`` builds the closures once per call,
``HybridLM.forward`` once per call it can serve this way (one token per row, a state without
padding, autograd off).  The arithmetic is ``forward``'s, so results agree within float rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from patternc_torch import ssd
from patternc_torch.layers import (
    MLP,
    Attention,
    Block,
    Mamba2Mixer,
    RMSNorm,
    _f32,
    _rotate,
    _scalar,
)
from patternc_torch.state import InferenceState

Rope = tuple[torch.Tensor, torch.Tensor]
StepFn = Callable[[torch.Tensor, InferenceState, int, "Rope | None"], torch.Tensor]
"""(x (b, hidden), state, cache position of the token, RoPE tables (b, 1, 1, rotary) or None) -> (b, hidden)."""


def norm_step(norm: RMSNorm) -> Callable[[torch.Tensor], torch.Tensor]:
    """``RMSNorm.forward`` for (b, hidden) (the zero-centred norm's ``1 + weight`` taken once)."""
    weight = norm.scale()
    eps = _scalar(norm.eps, weight.device)
    inv_size = 1.0 / weight.shape[-1]

    if norm.unit_offset or norm.exact:
        return norm.forward

    def step(x: torch.Tensor) -> torch.Tensor:
        h = _f32(x)
        length = torch.linalg.vector_norm(h, dim=-1, keepdim=True)
        out = (h * torch.addcmul(eps, length, length, value=inv_size).rsqrt_()).mul_(weight)
        return out if out.dtype == x.dtype else out.to(x.dtype)

    return step


def dense(linear: torch.nn.Linear) -> Callable[[torch.Tensor], torch.Tensor]:
    """``linear`` for (b, in) as one ``mm``/``addmm`` on a transposed view: the kernel ``F.linear``
    reaches after three more dispatches (``linear``, ``matmul``, ``t``), a few microseconds each."""
    transposed = linear.weight.t()
    bias = linear.bias
    if bias is None:
        return lambda x: torch.mm(x, transposed)
    return lambda x: torch.addmm(bias, x, transposed)


def block_step(block: Block, inner: StepFn) -> StepFn:
    """``Block.forward`` for one token per row: ``x + inner(norm(x)) * residual_multiplier``, where
    ``inner`` is the mixer's step (its kind's ``TorchKind.step``, ``patternc_torch.kinds``).  A Block
    variant with a residual of its own (``lightning.ScaledResidualBlock``) wraps ``inner`` with its
    ``step`` method instead."""
    own: Callable[[StepFn], StepFn] | None = getattr(block, "step", None)
    if own is not None:
        return own(inner)
    norm = norm_step(block.norm)
    multiplier = block.residual_multiplier

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        out = inner(norm(x), state, start, rope)
        return x + out if multiplier == 1.0 else torch.add(x, out, alpha=multiplier)

    return step


def module_step(mixer: torch.nn.Module) -> StepFn:
    """A mixer whose own forward is the step (MoE: its forward already batches the few tokens of a step)."""

    def step(h: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        out: torch.Tensor = mixer(h)
        return out

    return step


def mamba_step(mixer: Mamba2Mixer) -> StepFn:
    index = mixer.index
    h, p, g, n = mixer.heads, mixer.head_dim, mixer.groups, mixer.state_size
    r = h // g
    inner, conv_dim, kernel = mixer.inner, mixer.conv_dim, mixer.kernel
    splits, xbc_splits = [inner, conv_dim, h], [inner, g * n, g * n]
    in_proj, out_proj = dense(mixer.in_proj), dense(mixer.out_proj)
    conv_w, conv_b = mixer.conv1d.weight.view(conv_dim, kernel), mixer.conv1d.bias
    act = mixer.act
    dt_bias = _f32(mixer.dt_bias)
    low, high = mixer.dt_limit
    A = -torch.exp(_f32(mixer.A_log))
    D = _f32(mixer.D).view(h, 1)
    gate_norm = mixer.norm
    if gate_norm is None or gate_norm.before_gate or mixer.in_scales is not None:
        # Falcon-H1's flavours (no norm, the norm before the gate, the µP vector): the module's own
        # arithmetic, its states updated in place as below
        return _mixer_step(mixer)
    group = gate_norm.group_size
    gate_w = _f32(gate_norm.weight)
    gate_eps = _scalar(gate_norm.eps, gate_w.device)

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        if ssd.mamba2_kernels(x) is not None:  # on CUDA with mamba_ssm: the module's step takes its kernels
            return mixer.step(x, state.conv[index], state.ssm[index], A)
        b = x.shape[0]
        z, xbc, dt = in_proj(x).split_with_sizes(splits, dim=-1)
        # causal depthwise conv over the last `kernel` inputs
        conv_state = state.conv[index]
        window = torch.cat([conv_state, xbc.unsqueeze(-1)], dim=-1)  # (b, conv_dim, kernel)
        xbc = torch.linalg.vecdot(window, conv_w)
        if conv_b is not None:
            xbc.add_(conv_b)
        if kernel > 1:
            conv_state.copy_(window[:, :, 1:])
        xs, B, C = act(xbc).split_with_sizes(xbc_splits, dim=-1)
        xs = _f32(xs).view(b, h, p)
        B, C = _f32(B), _f32(C)
        # dt, then the SSM state: state * exp(dt A) + (x dt) outer B, read out with C
        dt = F.softplus(_f32(dt) + dt_bias)
        if high != float("inf"):
            dt.clamp_(min=low, max=high)
        elif low > 0.0:
            dt.clamp_(min=low)
        ssm = state.ssm[index]
        grouped = ssm.view(b, g, r, p, n)
        grouped.mul_(torch.exp(dt * A).view(b, g, r, 1, 1))
        grouped.addcmul_((xs * dt.unsqueeze(-1)).view(b, g, r, p, 1), B.view(b, g, 1, 1, n))
        y = torch.bmm(ssm.view(b * g, r * p, n), C.reshape(b * g, n, 1)).view(b, h, p)
        y = y.addcmul_(xs, D).view(b, inner)
        # gated RMSNorm (norm after the gate), out_proj
        y = y.mul_(F.silu(_f32(z)))
        grouped_y = y.view(b, inner // group, group)
        length = torch.linalg.vector_norm(grouped_y, dim=-1, keepdim=True)
        grouped_y.mul_(torch.addcmul(gate_eps, length, length, value=1.0 / group).rsqrt_())
        y = y.mul_(gate_w)
        return out_proj(y if y.dtype == x.dtype else y.to(x.dtype))

    return step


def _mixer_step(mixer: Mamba2Mixer) -> StepFn:
    """``Mamba2Mixer.step`` as a decode closure (``A`` computed once)."""
    index = mixer.index
    A = -torch.exp(_f32(mixer.A_log))

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        return mixer.step(x, state.conv[index], state.ssm[index], A)

    return step


def attention_step(attn: Attention) -> StepFn:
    index = attn.index
    heads, kv_heads, hd = attn.heads, attn.kv_heads, attn.head_dim
    r = heads // kv_heads
    q_proj, k_proj, v_proj, o_proj = dense(attn.q_proj), dense(attn.k_proj), dense(attn.v_proj), dense(attn.o_proj)
    scale = attn.scale
    gqa = kv_heads != heads
    plain = not attn.output_gate and attn.q_norm is None and attn.k_norm is None and attn.key_multiplier == 1.0
    window = attn.sliding_window

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        b = x.shape[0]
        gate = None
        if plain:
            q = q_proj(x).view(b, heads, 1, hd)
            k = k_proj(x).view(b, kv_heads, 1, hd)
        else:  # q/k norms, gated output, key multiplier: the module's own projections (Qwen3-Next, Falcon-H1)
            q_heads, gate = attn.queries(x)
            q = q_heads.view(b, heads, 1, hd)
            k = attn.keys(x).view(b, kv_heads, 1, hd)
        v = v_proj(x).view(b, kv_heads, 1, hd)
        if rope is not None:
            cos, sin = rope
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        k_buf, v_buf = state.kv_buffers(index, kv_heads, hd, k.dtype, k.device)
        end = start + 1
        k_buf[:, :, start:end] = k
        v_buf[:, :, start:end] = v
        first = 0 if window is None else max(0, end - window)  # a sliding window: the last `window` keys
        if q.dtype == torch.float32 and not q.is_cuda:
            # one query per row: two batched products and a softmax beat the fused kernel's setup on CPU
            n = end - first
            keys = k_buf[:, :, first:end].reshape(b * kv_heads, n, hd)
            scores = torch.bmm(q.reshape(b * kv_heads, r, hd), keys.transpose(1, 2)).mul_(scale)
            out = torch.bmm(torch.softmax(scores, dim=-1), v_buf[:, :, first:end].reshape(b * kv_heads, n, hd))
        else:
            k_seen, v_seen = k_buf[:, :, first:end], v_buf[:, :, first:end]
            out = F.scaled_dot_product_attention(q, k_seen, v_seen, scale=scale, enable_gqa=gqa)
        out = out.reshape(b, heads * hd)
        return o_proj(out if gate is None else out * torch.sigmoid(gate))

    return step


def mlp_step(mlp: MLP) -> StepFn:
    up, down = dense(mlp.up_proj), dense(mlp.down_proj)
    act = mlp.act
    if mlp.gated and mlp.multipliers != (1.0, 1.0):  # Falcon-H1's µP multipliers: the module's own arithmetic

        def scaled(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
            out: torch.Tensor = mlp(x)
            return out

        return scaled
    if mlp.gated:
        gate = dense(mlp.gate_proj)

        def gated(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
            return down(act(gate(x)).mul_(up(x)))

        return gated

    def plain(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        return down(act(up(x)))

    return plain
