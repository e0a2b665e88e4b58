"""Post-norm layers (``AttentionSpec.post_norm``: OLMo 2/3's and OLMo Hybrid's attention decoder layer).

``OlmoHybridAttentionDecoderLayer`` normalises the outputs of its attention and of its MLP, not
their inputs::

    x = x + post_attention_layernorm(attention(x));  x = x + post_feedforward_layernorm(mlp(x))

while its gated DeltaNet layers stay pre-norm (``input_layernorm``, ``post_attention_layernorm``
before the MLP).  In the pattern that is: an attention layer of a spec whose attention is
``post_norm``, and the FFN right after it (``post_normed``, the rule of the canonical graph's
``_layer_frame``), are a ``PostNormBlock``: ``x + norm(mixer(x))``.  Its ``norm`` is the layer's
only norm, so a checkpoint's ``post_attention_layernorm`` / ``post_feedforward_layernorm`` of an
attention decoder layer load into the attention's and the MLP's block (``patternc_torch.weights``).
Its decode step is the kind's step with the norm after it.
"""

from __future__ import annotations

import torch

from patternc.kinds import LayerKind, by_symbol
from patternc.model import ModelSpec
from patternc_torch.decode import Rope, StepFn, norm_step
from patternc_torch.kinds import torch_kind
from patternc_torch.layers import Block, Context
from patternc_torch.state import InferenceState


def post_normed(spec: ModelSpec, index: int) -> bool:
    """Whether main-stack layer ``index`` normalises its output instead of its input: a ``post_norm``
    attention layer, or the FFN that follows one (they are one OLMo decoder layer)."""
    a, flat = spec.attention, spec.pattern.flat
    if a is None or not a.post_norm or index >= len(flat):
        return False
    kind = by_symbol(flat[index])
    if kind.kind == LayerKind.ATTENTION:
        return True
    return index > 0 and not kind.role.mixes_tokens and by_symbol(flat[index - 1]).kind == LayerKind.ATTENTION


class PostNormBlock(Block):
    """``x + norm(mixer(x)) * residual_multiplier``: the norm on the mixer's output (OLMo's post-norm)."""

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        out = self.norm(self.mixer(x, ctx))
        if self.residual_multiplier != 1.0:
            out = out * self.residual_multiplier
        return x + out

    def decode_step(self) -> StepFn:
        """``forward`` for one token per row: the kind's own step, then the norm, then the residual."""
        inner = torch_kind(self.symbol).step(self.mixer)
        norm = norm_step(self.norm)
        multiplier = self.residual_multiplier

        def step(x: torch.Tensor, state: InferenceState, start: int, rope: Rope | None) -> torch.Tensor:
            out = norm(inner(x, state, start, rope))
            return x + out if multiplier == 1.0 else torch.add(x, out, alpha=multiplier)

        return step

    def decode_ready(self, state: InferenceState) -> bool:
        """Whether ``state`` holds what the kind's step reads."""
        return torch_kind(self.symbol).ready(self.mixer, state)
