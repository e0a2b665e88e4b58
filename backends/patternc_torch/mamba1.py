"""Mamba-1 selective scan (``S``, kind ``mamba1``): Jamba's SSM mixer (``JambaMambaMixer``), plain
Mamba's too (``MambaMixer``: the same without the inner norms).

The math is transformers' torch path (``modeling_jamba.py``: ``causal_conv1d_fn``,
``mamba_selective_scan``, ``mamba_selective_state_update``): the input (zeroed at padded positions)
goes through ``in_proj`` to ``inner = expand * hidden`` channels x and as many gate channels z; x
through a causal depthwise convolution and the activation (zeroed again at padded positions); then
``x_proj`` gives a low-rank time step (``dt_rank``), one B and one C of ``state_size`` per token,
RMSNorm'd each when ``inner_norms`` (Jamba's ``dt_layernorm``, ``b_layernorm``, ``c_layernorm``);
``dt = softplus(dt_proj.weight @ dt + dt_proj.bias)`` per channel; each channel keeps a
``state_size`` state

    h_t = exp(dt_t A) h_(t-1) + (dt_t B_t) x_t,   y_t = h_t . C_t + D x_t

with ``A = -exp(A_log)`` (channels x state_size); the output is ``y * silu(z)``, then ``out_proj``.
Prefill runs the recurrence position by position as transformers' reference does (same products,
same order, so the rounding is the same), its discretised ``exp(dt A)`` and ``dt B x`` materialised a
block of positions at a time; decoding runs one step in place.  The inference state is constant:
the convolution's last ``conv_kernel - 1`` inputs (``state.conv``) and the float32
(channels, state_size) SSM state (``state.ssm``), keyed by the layer's index.  Unlike transformers'
reference, a prefill that continues a state (a prompt fed in pieces) starts from that state.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from patternc.model import Mamba1Spec, ModelSpec
from patternc_torch import kernels
from patternc_torch.decode import Rope, StepFn, dense
from patternc_torch.kinds import TorchKind
from patternc_torch.layers import ACTIVATIONS, Context, _f32
from patternc_torch.ssd import causal_conv
from patternc_torch.state import InferenceState

BLOCK = 128
"""Positions whose discretised ``exp(dt A)`` and ``dt B x`` (channels x state_size each) are held at once."""


class JambaRMSNorm(nn.Module):
    """``weight * x / rms(x)`` with transformers' ``JambaRMSNorm`` arithmetic (``pow(2).mean``): its
    output feeds ``exp`` and ``softplus``, where an ulp of difference would not cancel."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _f32(x)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def selective_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrence over a sequence: (y (b, channels, t) without the skip, final state (b, channels, n)).

    ``x`` (b, channels, t), ``dt`` (b, channels, t) already biased and softplus'ed, ``A`` (channels, n),
    ``B``, ``C`` (b, t, n), ``state`` (b, channels, n) float32 or None (zeros)."""
    b, channels, t = x.shape
    n = A.shape[-1]
    h = torch.zeros(b, channels, n, dtype=torch.float32, device=x.device) if state is None else state.float()
    out = []
    for start in range(0, t, BLOCK):
        end = min(t, start + BLOCK)
        step = dt[:, :, start:end, None]
        decay = torch.exp(A[None, :, None, :] * step)  # (b, channels, block, n)
        drive = step * B[:, None, start:end, :].float() * x[:, :, start:end, None].float()
        for i in range(end - start):
            h = decay[:, :, i] * h + drive[:, :, i]
            out.append(torch.matmul(h.to(x.dtype), C[:, start + i, :].unsqueeze(-1))[:, :, 0])
    return torch.stack(out, dim=-1), h


class Mamba1Mixer(nn.Module):
    """in_proj -> causal depthwise conv (activation) -> x_proj (dt, B, C; normed) -> selective scan
    -> ``* silu(gate)`` -> out_proj.  transformers' parameter names."""

    def __init__(self, spec: Mamba1Spec, hidden: int, eps: float, index: int) -> None:
        super().__init__()
        if spec.activation not in ACTIVATIONS:
            raise ValueError(f"activation {spec.activation!r}")
        self.index = index
        self.inner = spec.inner_size(hidden)
        self.state_size, self.kernel, self.dt_rank = spec.state_size, spec.conv_kernel, spec.dt_rank
        self.activation = spec.activation
        self.act = ACTIVATIONS[spec.activation]
        self.in_proj = nn.Linear(hidden, 2 * self.inner, bias=spec.proj_bias)
        self.conv1d = nn.Conv1d(
            self.inner, self.inner, self.kernel, groups=self.inner, bias=spec.conv_bias, padding=self.kernel - 1
        )
        self.x_proj = nn.Linear(self.inner, self.dt_rank + 2 * self.state_size, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.inner, bias=True)
        self.A_log = nn.Parameter(torch.zeros(self.inner, self.state_size))
        self.D = nn.Parameter(torch.ones(self.inner))
        self.out_proj = nn.Linear(self.inner, hidden, bias=spec.proj_bias)
        self.dt_layernorm: JambaRMSNorm | None = None
        self.b_layernorm: JambaRMSNorm | None = None
        self.c_layernorm: JambaRMSNorm | None = None
        if spec.inner_norms:
            self.dt_layernorm = JambaRMSNorm(self.dt_rank, eps)
            self.b_layernorm = JambaRMSNorm(self.state_size, eps)
            self.c_layernorm = JambaRMSNorm(self.state_size, eps)

    def init_like_transformers(self) -> None:
        """``A_log`` as transformers initialises it (``HybridLM.init_weights`` calls this after its
        by-name pass): ``log(1 .. state_size)`` on every channel."""
        with torch.no_grad():
            rows = torch.arange(1, self.state_size + 1, dtype=torch.float32, device=self.A_log.device)
            self.A_log.copy_(torch.log(rows).expand_as(self.A_log))

    def ssm_inputs(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Convolved x (..., inner) -> (the time step before ``dt_proj`` (..., dt_rank), B, C (..., n)), normed."""
        dt, B, C = self.x_proj(xs).split([self.dt_rank, self.state_size, self.state_size], dim=-1)
        if self.dt_layernorm is not None and self.b_layernorm is not None and self.c_layernorm is not None:
            dt, B, C = self.dt_layernorm(dt), self.b_layernorm(B), self.c_layernorm(C)
        return dt, B, C

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        if kernels.mamba_ssm(x) is not None or kernels.causal_conv1d(x) is not None:
            return fused_forward(self, x, ctx)
        mask = ctx.token_mask
        if mask is not None:
            x = x * mask.unsqueeze(-1).to(x.dtype)
        xs, gate = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (b, inner, t) each
        state = ctx.state
        conv_state = state.conv.get(self.index) if state is not None else None
        ssm_state = state.ssm.get(self.index) if state is not None else None
        conv_raw, tail = causal_conv(xs, self.conv1d.weight, self.conv1d.bias, conv_state)
        xs = self.act(conv_raw)
        if mask is not None:
            xs = xs * mask.unsqueeze(1).to(xs.dtype)
        dt, B, C = self.ssm_inputs(xs.transpose(1, 2))
        dt = self.dt_proj.weight @ dt.transpose(1, 2)  # (b, inner, t): transformers' product, bias added below
        dt = F.softplus(dt + _f32(self.dt_proj.bias)[..., None])
        A = -torch.exp(_f32(self.A_log))
        y, final = selective_scan(xs, dt, A, B, C, ssm_state)
        if state is not None:
            state.conv[self.index] = tail.contiguous().clone()
            state.ssm[self.index] = final.contiguous()
        y = y + xs * _f32(self.D)[None, :, None]
        y = y * F.silu(gate)
        return self.out_proj(y.transpose(1, 2).to(x.dtype))


def mamba1_step(mixer: Mamba1Mixer) -> StepFn:
    """``Mamba1Mixer.forward`` for one token per row after an unpadded history: the convolution's
    window and the SSM state updated in place (transformers' ``mamba_selective_state_update``)."""
    index, kernel, inner = mixer.index, mixer.kernel, mixer.inner
    in_proj, out_proj = dense(mixer.in_proj), dense(mixer.out_proj)
    conv_w, conv_b = mixer.conv1d.weight.view(inner, kernel), mixer.conv1d.bias
    act = mixer.act
    dt_weight, dt_bias = mixer.dt_proj.weight, _f32(mixer.dt_proj.bias)
    A = -torch.exp(_f32(mixer.A_log))
    D = _f32(mixer.D)

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        if kernels.mamba_ssm(x) is not None or kernels.causal_conv1d(x) is not None:
            return fused_step(mixer, x, state)
        xs, gate = in_proj(x).chunk(2, dim=-1)
        conv_state = state.conv[index]
        window = torch.cat([conv_state, xs.unsqueeze(-1)], dim=-1)  # (b, inner, kernel)
        if kernel > 1:
            conv_state.copy_(window[:, :, 1:])
        xs = torch.linalg.vecdot(window, conv_w)
        if conv_b is not None:
            xs = xs.add_(conv_b)
        xs = act(xs)
        dt, B, C = mixer.ssm_inputs(xs)
        dt = F.softplus(F.linear(dt, dt_weight) + dt_bias)  # (b, inner)
        h = state.ssm[index]
        h.mul_(torch.exp(dt.unsqueeze(-1) * A)).add_(dt.unsqueeze(-1) * B.float().unsqueeze(1) * xs.unsqueeze(-1))
        y = torch.bmm(h, C.float().unsqueeze(-1))[:, :, 0]
        y = (y + xs * D) * F.silu(gate)
        return out_proj(y if y.dtype == x.dtype else y.to(x.dtype))

    return step


def fused_forward(mixer: Mamba1Mixer, x: torch.Tensor, ctx: Context) -> torch.Tensor:
    """``Mamba1Mixer.forward`` where a kernel imports (``patternc_torch.kernels``), with the arguments
    ``JambaMambaMixer`` passes: the convolution through ``causal_conv1d_fn`` (``kernels.conv_prefill``);
    from an empty state the scan through ``selective_scan_fn`` (u, delta (b, inner, t), A (inner, n)
    float32, B, C (b, n, t), ``D`` float32, ``z`` the gate, ``delta_bias`` float32 and softplus in the
    kernel, the last state returned), one token after a state through ``selective_state_update`` on a
    copy of it; a prompt continued in pieces (``selective_scan_fn`` takes no initial state), or a
    missing package, on the PyTorch path."""
    mask = ctx.token_mask
    if mask is not None:
        x = x * mask.unsqueeze(-1).to(x.dtype)
    t = x.shape[1]
    xs, gate = mixer.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (b, inner, t) each
    state = ctx.state
    conv_state = state.conv.get(mixer.index) if state is not None else None
    ssm_state = state.ssm.get(mixer.index) if state is not None else None
    xs, tail = kernels.conv_prefill(xs, mixer.conv1d.weight, mixer.conv1d.bias, conv_state, mixer.activation)
    if mask is not None:
        xs = xs * mask.unsqueeze(1).to(xs.dtype)
    dt, B, C = mixer.ssm_inputs(xs.transpose(1, 2))
    dt = mixer.dt_proj.weight @ dt.transpose(1, 2)  # (b, inner, t), the bias added by the scan
    A = -torch.exp(_f32(mixer.A_log))
    dt_bias = _f32(mixer.dt_proj.bias)
    scan = kernels.mamba_ssm(x)
    if scan is not None and ssm_state is None:
        y, final = scan.selective_scan_fn(
            xs,
            dt,
            A,
            B.transpose(1, 2),
            C.transpose(1, 2),
            D=_f32(mixer.D),
            z=gate,
            delta_bias=dt_bias,
            delta_softplus=True,
            return_last_state=True,
        )
    elif scan is not None and ssm_state is not None and t == 1:
        final = ssm_state.clone()
        y = scan.selective_state_update(
            final,
            xs[:, :, 0],
            dt[:, :, 0],
            A,
            B[:, 0],
            C[:, 0],
            mixer.D,
            z=gate[:, :, 0],
            dt_bias=dt_bias,
            dt_softplus=True,
        ).unsqueeze(-1)
    else:
        y, final = selective_scan(xs, F.softplus(dt + dt_bias[..., None]), A, B, C, ssm_state)
        y = y + xs * _f32(mixer.D)[None, :, None]
        y = y * F.silu(gate)
    if state is not None:
        state.conv[mixer.index] = tail.contiguous().clone()
        state.ssm[mixer.index] = final.float().contiguous()
    return mixer.out_proj(y.transpose(1, 2).to(x.dtype))


def fused_step(mixer: Mamba1Mixer, x: torch.Tensor, state: InferenceState) -> torch.Tensor:
    """``mamba1_step``'s step where a kernel imports: ``causal_conv1d_update`` on the window
    (``kernels.conv_step``), ``selective_state_update`` on the state (as ``JambaMambaMixer`` calls it:
    dt before its bias, the bias and softplus in the kernel, ``D`` and the gate ``z`` applied there)."""
    xs, gate = mixer.in_proj(x).chunk(2, dim=-1)
    conv_state = state.conv[mixer.index]
    xs = kernels.conv_step(xs, mixer.conv1d.weight, mixer.conv1d.bias, conv_state, mixer.activation)
    dt, B, C = mixer.ssm_inputs(xs)
    dt = F.linear(dt, mixer.dt_proj.weight)  # (b, inner)
    A = -torch.exp(_f32(mixer.A_log))
    dt_bias = _f32(mixer.dt_proj.bias)
    h = state.ssm[mixer.index]
    scan = kernels.mamba_ssm(x)
    if scan is not None:
        y = scan.selective_state_update(h, xs, dt, A, B, C, mixer.D, z=gate, dt_bias=dt_bias, dt_softplus=True)
    else:
        dt = F.softplus(dt + dt_bias)
        h.mul_(torch.exp(dt.unsqueeze(-1) * A)).add_(dt.unsqueeze(-1) * B.float().unsqueeze(1) * xs.unsqueeze(-1))
        y = torch.bmm(h, C.float().unsqueeze(-1))[:, :, 0]
        y = (y + xs * _f32(mixer.D)) * F.silu(gate)
    return mixer.out_proj(y if y.dtype == x.dtype else y.to(x.dtype))


def _build(spec: ModelSpec, index: int) -> nn.Module | None:
    m = spec.mamba1
    return None if m is None else Mamba1Mixer(m, spec.hidden_size, spec.norm.eps, index)


def _ready(mixer: nn.Module, state: InferenceState) -> bool:
    return cast(Mamba1Mixer, mixer).index in state.ssm


MAMBA1_KIND = TorchKind(_build, lambda mixer: mamba1_step(cast(Mamba1Mixer, mixer)), _ready)
"""The ``TorchKind`` of ``S`` (``support.SUPPORT`` names it)."""
