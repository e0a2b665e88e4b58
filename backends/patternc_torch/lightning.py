"""Lightning attention (``L``, kind ``lightning``) and MiniMax's weighted residual block.

The math is transformers' ``MiniMaxLightningAttention`` (``modeling_minimax.py``): ``qkv_proj`` of the
normed input through the activation (then zeroed at padded positions) gives q, k, v per head; each
head keeps a ``head_dim x head_dim`` state and reads

    S_t = exp(-s) S_(t-1) + k_t^T v_t,      o_t = q_t S_t

(no softmax, no RoPE, no q/k normalisation).  The heads' outputs are RMSNorm'd together (epsilon
``LightningSpec.norm_eps``), times ``sigmoid(output_gate(x))``, then ``out_proj``.

The slope ``s`` is not learned: ALiBi's ``base ** (h + 1)`` for head ``h``, ``base = 2 ** (-8 / heads)``,
times ``1 - l / (L - 1 + 1e-5) + 1e-5`` for decoder layer ``l`` of ``L``.  A decoder layer of MiniMax is
one token mixer and its FFN, so ``l`` is the number of token mixers before this layer in the main
stack and ``L`` their count (``num_hidden_layers`` of a ``minimax`` config); an MTP block has no such
place, and ``support`` refuses lightning layers there.  The slopes and the decays of one block are
computed with transformers' own expressions, in float32, so that they round alike; they are not
weights (transformers stores them as buffers, which loading drops: ``DERIVED_BUFFERS``) and are
computed when first needed, on the device of the call, never while building (a meta build of a
MiniMax-M1-sized model must not compute seventy ``heads x 256 x 256`` tables).

Prefill is transformers' block form with its ``block_size``: per block, the intra-block product with
the decay matrix plus the inter-block product with the carried state, the state decayed by a whole
block and updated once per block.  Continuing from a state (a longer prompt in pieces, a padded
batch's next tokens) runs the same block form from that state; one token per row after an unpadded
history is the recurrent step (``lightning_step``).  The inference state is constant: the float32
``(batch, heads, head_dim, head_dim)`` state in ``InferenceState.ssm``, keyed by the layer's index.

``ScaledResidualBlock`` is MiniMax's decoder residual (``ScaledResidualSpec``), built for every layer
of a spec that has one (``model.build_layer``): ``alpha * r + beta * f(norm(x))`` with ``r = norm(x)``
(``normed``, transformers' only form, the released configs' ``postnorm: true``) or ``r = x``, one
(alpha, beta) pair per lightning, other token-mixer and FFN layer.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from patternc.kinds import by_symbol
from patternc.model import LightningSpec, ModelSpec
from patternc_torch.decode import Rope, StepFn, dense, norm_step
from patternc_torch.kinds import TorchKind
from patternc_torch.layers import ACTIVATIONS, Block, Context
from patternc_torch.state import InferenceState

DERIVED_BUFFERS = ("slope_rate", "query_decay", "key_decay", "diagonal_decay")
"""transformers' persistent buffers of ``MiniMaxLightningAttention``: functions of the head count, the
layer's place and ``block_size``, recomputed here, so a checkpoint's copies are dropped on loading."""


def decoder_place(spec: ModelSpec, index: int) -> tuple[int, int]:
    """(decoder layer of main-stack layer ``index``, number of decoder layers): token mixers before
    ``index`` and in all, each of which opens one MiniMax decoder layer (mixer + FFN)."""
    mixers = [layer.index for layer in spec.pattern.layers if by_symbol(layer.symbol).role.mixes_tokens]
    return sum(1 for i in mixers if i < index), len(mixers)


def slope_rate(heads: int, layer: int, layers: int, device: torch.device | None = None) -> torch.Tensor:
    """(heads, 1, 1) float32: ``MiniMaxLightningAttention.get_slope_rate``, expression for expression."""
    base = 1 / (2 ** (8 / heads))
    exponent = torch.arange(heads, device=device) + 1
    factor = 1 - layer / (layers - 1 + 1e-5) + 1e-5
    rate = base**exponent
    rate = rate * factor
    return rate[:, None, None]


def decay_factors(slope: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(query decay (h, B, 1), key decay (h, B, 1), diagonal decay (1, h, B, B)) of one block:
    ``MiniMaxLightningAttention.decay_factors``."""
    block_size_range = torch.arange(block_size, device=slope.device) + 1
    query_decay = torch.exp(-slope * block_size_range[:, None])
    key_decay = torch.exp(-slope * (block_size - block_size_range[:, None]))
    diagonal_decay = block_size_range[:, None] - block_size_range[None, :]
    diagonal_decay = diagonal_decay[None, None, :, :]
    diagonal_decay = slope * diagonal_decay
    diagonal_decay = torch.where(diagonal_decay >= 0, -diagonal_decay, float("-inf"))
    diagonal_decay = torch.exp(diagonal_decay)
    return query_decay, key_decay, diagonal_decay


def lightning_blocks(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    S: torch.Tensor,
    slope: torch.Tensor,
    decays: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    block_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The block form over a sequence: q, k, v (b, h, t, d), ``S`` (b, h, d, d) the state before it;
    returns (output (b, h, t, d), state after it).  transformers' loop, product for product."""
    query_decay, key_decay, diagonal_decay = decays
    t = q.shape[2]
    out = []
    for start in range(0, t, block_size):
        end = min(start + block_size, t)
        size = end - start
        q_i, k_i, v_i = q[:, :, start:end], k[:, :, start:end], v[:, :, start:end]
        block_decay = torch.exp(-slope * size)
        intra = torch.matmul(torch.matmul(q_i, k_i.transpose(-1, -2)) * diagonal_decay[:, :, :size, :size], v_i)
        inter = torch.matmul(q_i * query_decay[:, :size], S)
        out.append(inter + intra)
        S = S * block_decay + torch.matmul((k_i * key_decay[:, -size:]).transpose(-1, -2), v_i)
    return torch.cat(out, dim=-2), S


class LightningAttention(nn.Module):
    """qkv_proj -> activation -> decayed linear attention -> RMSNorm over all heads -> times
    ``sigmoid(output_gate(x))`` -> out_proj."""

    def __init__(self, spec: LightningSpec, hidden: int, index: int, layer: int, layers: int) -> None:
        super().__init__()
        self.index = index
        self.heads, self.head_dim, self.block_size = spec.num_heads, spec.head_dim, spec.block_size
        self.layer, self.layers = layer, layers
        self.inner = self.heads * self.head_dim
        self.act = ACTIVATIONS[spec.activation]
        self.qkv_proj = nn.Linear(hidden, 3 * self.inner, bias=False)
        self.out_proj = nn.Linear(self.inner, hidden, bias=False)
        self.output_gate = nn.Linear(hidden, self.inner, bias=False)
        self.norm = HeadsRMSNorm(self.inner, spec.norm_eps)
        self._decays: dict[torch.device, tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}

    def decays(self, device: torch.device) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(slope (h, 1, 1), the block's decays) on ``device``, float32, computed on the CPU once (as
        transformers computes its buffers when it builds the layer) and kept per device."""
        cached = self._decays.get(device)
        if cached is None:
            slope = slope_rate(self.heads, self.layer, self.layers)
            factors = decay_factors(slope, self.block_size)
            to = device
            cached = (slope.to(to), (factors[0].to(to), factors[1].to(to), factors[2].to(to)))
            self._decays[device] = cached
        return cached

    def heads_of(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (b, t, hidden) -> q, k, v (b, h, t, d): the activated projection, zero at padded positions."""
        b, t, _ = x.shape
        qkv = self.act(self.qkv_proj(x))
        if mask is not None:
            qkv = (qkv * mask[:, :, None]).to(qkv.dtype)
        qkv = qkv.reshape(b, t, self.heads, 3 * self.head_dim)
        q, k, v = torch.split(qkv, self.head_dim, dim=3)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.heads_of(x, ctx.token_mask)
        state = ctx.state
        S = state.ssm.get(self.index) if state is not None else None
        slope, decays = self.decays(x.device)
        if S is not None and t == 1:  # transformers' recurrent form: exp(-s) S + k^T v, read by q
            S = exp_neg(slope) * S.to(v.dtype) + torch.matmul(k.transpose(-1, -2), v)
            y = torch.matmul(q, S)
        else:
            if S is None:
                S = torch.zeros(b, self.heads, self.head_dim, self.head_dim, dtype=v.dtype, device=v.device)
            y, S = lightning_blocks(q, k, v, S.to(v.dtype), slope, decays, self.block_size)
        if state is not None:
            state.ssm[self.index] = S.float().contiguous()
        y = y.transpose(1, 2).reshape(b, t, self.inner)
        y = self.norm(y)
        y = F.sigmoid(self.output_gate(x)) * y
        return self.out_proj(y)


def exp_neg(slope: torch.Tensor) -> torch.Tensor:
    """``exp(-slope)``: the decay of one step (transformers' ``ratio``)."""
    return torch.exp(-slope)


class HeadsRMSNorm(nn.Module):
    """``MiniMaxRMSNorm`` over all heads together: its arithmetic (``weight * (h * rsqrt(mean(h**2) + eps))``)."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = y.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(y.dtype)


def lightning_step(mixer: LightningAttention) -> StepFn:
    """``LightningAttention.forward`` for one token per row after an unpadded history: the state is
    decayed by one step and the new ``k^T v`` added, in place, then read by ``q``."""
    index, heads, d, inner = mixer.index, mixer.heads, mixer.head_dim, mixer.inner
    qkv_proj, gate_proj, out_proj = dense(mixer.qkv_proj), dense(mixer.output_gate), dense(mixer.out_proj)
    act, norm = mixer.act, mixer.norm
    ratios: dict[torch.device, torch.Tensor] = {}

    def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
        b = x.shape[0]
        ratio = ratios.get(x.device)
        if ratio is None:
            ratio = ratios[x.device] = exp_neg(mixer.decays(x.device)[0]).view(1, heads, 1, 1)
        q, k, v = act(qkv_proj(x)).view(b, heads, 3, d).unbind(2)
        S = state.ssm[index]
        S.mul_(ratio).add_(k.unsqueeze(-1) * v.unsqueeze(-2))
        y = torch.matmul(q.unsqueeze(-2).float(), S).view(b, inner)
        y = norm(y.to(x.dtype))
        return out_proj(torch.sigmoid(gate_proj(x)) * y)

    return step


class ScaledResidualBlock(Block):
    """MiniMax's decoder residual: ``alpha * r + beta * mixer(norm(x))``, ``r`` the normed input when
    ``normed`` (``MiniMaxDecoderLayer``: ``residual * alpha + hidden_states * beta``), else ``x``."""

    def __init__(self, symbol: str, mixer: nn.Module, spec: ModelSpec) -> None:
        super().__init__(symbol, mixer, spec.hidden_size, spec.norm.eps, 1.0, spec.norm.unit_offset)
        residual = spec.scaled_residual
        assert residual is not None
        self.alpha, self.beta = residual.factors(by_symbol(symbol).kind)
        self.normed = residual.normed

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        h = self.norm(x)
        out = self.mixer(h, ctx)
        return (h if self.normed else x) * self.alpha + out * self.beta

    def step(self, inner: StepFn) -> StepFn:
        """``forward`` for one token per row around the mixer's decode step ``inner``."""
        norm = norm_step(self.norm)
        alpha, beta, normed = self.alpha, self.beta, self.normed

        def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
            h = norm(x)
            out = inner(h, state, start, rope)
            return (h if normed else x) * alpha + out * beta

        return step


def _build(spec: ModelSpec, index: int) -> nn.Module | None:
    lightning = spec.lightning
    if lightning is None:
        return None
    layer, layers = decoder_place(spec, index)
    return LightningAttention(lightning, spec.hidden_size, index, layer, layers)


def _ready(mixer: nn.Module, state: InferenceState) -> bool:
    return cast(LightningAttention, mixer).index in state.ssm


LIGHTNING_KIND = TorchKind(_build, lambda mixer: lightning_step(cast(LightningAttention, mixer)), _ready)
"""The ``TorchKind`` of ``L`` (``support.SUPPORT`` names it)."""
