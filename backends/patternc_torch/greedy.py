"""Exact greedy choice over a large vocabulary, reading a quarter of the LM head's bytes.

Decoding one token at batch 1 on a CPU is bound by memory bandwidth: every step reads every weight
once, and a 32k x 1024 fp32 head alone is 131 MB of a 469 MB medium model.  Greedy decoding needs
only the *argmax* of the logits, not the logits, so ``ScreenedHead`` keeps an int8 copy of the head
(one scale per row, a quarter of the bytes), computes approximate logits from it, and bounds the
error of each one rigorously (below).  Every row whose upper bound reaches the largest lower bound
is a candidate; only the candidates' fp32 rows are read and multiplied, and the argmax among them is
the argmax of the fp32 logits.  Typically a few dozen of 32,000 rows are candidates.

The bound, for a row w with int8 codes q, scale s (a bfloat16 value: the kernel takes bf16 scales),
ŵ = q·s, Δw = w - ŵ, the normed hidden state h and its bfloat16 rounding h̃ (the kernel's input),
K = hidden size, and the kernel's bf16 output o:

    |w·h - o| <= ||Δw||·||h||                         quantisation of the weights
               + ||w||·||h - h̃||                      rounding of the activations
               + K·2^-22·||w||·||h̃||                  fp32 accumulation: the kernel's sum, and twice the
                                                       reference fp32 product's (its argmax may sit on a
                                                       row whose exact value is that much below the top)
               + 2^-8·|o|                             rounding of the output to bf16

with ||w|| taken as ||ŵ|| + ||Δw|| (an upper bound), all norms computed from the actual tensors,
and the total inflated by 1% for the rounding of the bound's own arithmetic.  Anything that cannot
be bounded (non-finite values, too many candidates) falls back to the full fp32 product, so the
result never depends on the screen: it is only faster.  One caveat, of float arithmetic rather than of
the screen: the candidates' fp32 logits come from a product over those rows alone, which may round
differently in the last bit from the full product, so two logits that tie to within one ulp may be
ordered differently than the full product would order them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_VOCAB = 8192
"""Below this the full fp32 head is cheap enough that screening does not pay."""
CHUNK_ROWS = 2048
MAX_CANDIDATES = 2048
"""More candidates than this (a flat distribution) and the full product is used instead."""


class ScreenedHead:
    """An int8 screen over ``weight`` (vocab, hidden) with per-row error constants; see the module doc."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight
        self.pointer = weight.data_ptr()
        self.probe = torch.randn(weight.shape[1], generator=torch.Generator().manual_seed(0))
        self.fingerprint = torch.mv(weight.detach(), self.probe)
        vocab, hidden = weight.shape
        self.codes = torch.empty(vocab, hidden, dtype=torch.int8)
        self.scale = torch.empty(vocab, dtype=torch.bfloat16)
        self.error_norm = torch.empty(vocab)
        self.weight_norm = torch.empty(vocab)
        slack = 1 + hidden * 2.0**-22  # fp32 norms, inflated by their worst rounding error (K ulps)
        for rows in torch.arange(vocab).split(CHUNK_ROWS):  # chunks: a few MB of temporaries, not 4x the head
            w = weight.detach()[rows[0] : rows[-1] + 1]
            peak = w.abs().amax(dim=1).clamp(min=1e-30)
            # a bf16 scale at least max|w|/127 (rounding to bf16 lowers a value by at most 2^-9 of it)
            scale = (peak / 127 * (1 + 2.0**-7)).to(torch.bfloat16)
            wide_scale = scale.float().unsqueeze(1)
            codes = torch.clamp(torch.round(w / wide_scale), -127, 127)
            approx = codes * wide_scale  # exact: 8-bit codes times 8-bit scales
            error_norm = torch.linalg.vector_norm(w - approx, dim=1) * slack
            self.codes[rows[0] : rows[-1] + 1] = codes
            self.scale[rows[0] : rows[-1] + 1] = scale
            self.error_norm[rows[0] : rows[-1] + 1] = error_norm
            self.weight_norm[rows[0] : rows[-1] + 1] = torch.linalg.vector_norm(approx, dim=1) * slack + error_norm
        # fp32 accumulation, K ulps each: inside the kernel, and twice in the reference product's own rounding
        self.accumulation = weight.shape[1] * 2.0**-22
        self.last_candidates: int | None = None
        """fp32 rows the last ``argmax`` read (None: it fell back to the full product)."""

    @staticmethod
    def supports(weight: torch.Tensor) -> bool:
        """fp32 weights on the CPU, a vocabulary large enough, and the int8 kernel present."""
        return (
            weight.device.type == "cpu"
            and weight.dtype == torch.float32
            and weight.dim() == 2
            and weight.shape[0] >= MIN_VOCAB
            and weight.shape[1] % 16 == 0  # the kernel's K blocking
            and hasattr(torch, "_weight_int8pack_mm")
        )

    def kernel_agrees(self) -> bool:
        """Whether the int8 kernel computes what the bound assumes (a private op: checked, not trusted)."""
        probe = torch.randn(2, self.codes.shape[1], generator=torch.Generator().manual_seed(0))
        rounded = probe.to(torch.bfloat16)
        rows = slice(0, 64)
        got = torch._weight_int8pack_mm(rounded, self.codes, self.scale)[:, rows].float()
        dequantized = self.codes[rows].float() * self.scale[rows].float().unsqueeze(1)
        want = F.linear(rounded.float(), dequantized)
        return bool(torch.isfinite(got).all()) and bool(((got - want).abs() <= 2.0**-7 * want.abs() + 1e-6).all())

    def current(self) -> bool:
        """Whether the screen still describes ``weight``: same storage, and the same product with a fixed
        random vector (one pass over the head).  Content, not a version counter: changes through
        ``.data`` and to inference tensors bump none.  A change too small to move that product is far
        inside the bound's 1% margin, and the candidates' logits are always computed from ``weight``."""
        weight = self.weight
        return (
            weight.data_ptr() == self.pointer
            and weight.dtype == torch.float32
            and tuple(weight.shape) == tuple(self.codes.shape)
            and torch.equal(torch.mv(weight.detach(), self.probe), self.fingerprint)
        )

    def estimate(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(approximate logits, their error bounds), both (batch, vocab) float32, for h (batch, hidden)."""
        rounded = h.to(torch.bfloat16)
        approx = torch._weight_int8pack_mm(rounded, self.codes, self.scale).float()
        wide = rounded.float()
        h_norm = torch.linalg.vector_norm(h, dim=-1, keepdim=True)
        rounding = torch.linalg.vector_norm(h - wide, dim=-1, keepdim=True)
        spread = rounding + self.accumulation * torch.linalg.vector_norm(wide, dim=-1, keepdim=True)
        bound = torch.addcmul(self.error_norm * h_norm, self.weight_norm, spread)
        return approx, bound.add_(approx.abs(), alpha=2.0**-8).mul_(1.01)

    def argmax(self, h: torch.Tensor) -> torch.Tensor:
        """``F.linear(h, weight).argmax(-1)`` for h (batch, hidden) in float32."""
        approx, bound = self.estimate(h)
        floor = (approx - bound).amax(dim=-1, keepdim=True)
        reach = (approx + bound) >= floor  # (b, vocab): rows that may hold the maximum
        rows = reach.any(dim=0).nonzero().squeeze(1)
        if not bool(torch.isfinite(floor).all()) or rows.numel() > MAX_CANDIDATES or rows.numel() == 0:
            self.last_candidates = None
            return F.linear(h, self.weight).argmax(dim=-1)
        self.last_candidates = rows.numel()
        exact = F.linear(h, self.weight.index_select(0, rows))  # (b, candidates)
        exact = exact.masked_fill(~reach.index_select(1, rows), float("-inf"))
        return rows[exact.argmax(dim=-1)]


def screened_head(weight: torch.Tensor, cached: ScreenedHead | None) -> ScreenedHead | None:
    """The screen for ``weight``: ``cached`` while it is current, a new one otherwise, None if unsupported."""
    if not ScreenedHead.supports(weight):
        return None
    if cached is not None and cached.weight is weight and cached.current():
        return cached
    screen = ScreenedHead(weight)
    return screen if screen.kernel_agrees() else None
