"""The runnable model: a ``ModelSpec`` built as an nn.Module, with inference state and generation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from patternc.kinds import LayerKind, Role, by_symbol
from patternc.model import ModelSpec
from patternc_torch.arguments import check_generation, check_input, invalid
from patternc_torch.decode import StepFn, norm_step
from patternc_torch.greedy import ScreenedHead, screened_head
from patternc_torch.kinds import build_mixer, decode_steps, ready
from patternc_torch.layers import (
    Block,
    Context,
    RMSNorm,
    rope_frequencies,
    rope_tables,
)
from patternc_torch.lightning import ScaledResidualBlock
from patternc_torch.parallel import ParallelBlock
from patternc_torch.postnorm import PostNormBlock, post_normed
from patternc_torch.state import InferenceState

FP32_PARAMETERS = ("A_log", "D", "dt_bias", "gate.weight", "gate.e_score_correction_bias")
"""Kept in float32 whatever the model dtype (transformers keeps the router in fp32 too)."""


@dataclass
class CausalLMOutput:
    logits: torch.Tensor
    """(batch, seq, vocab), float32."""
    state: InferenceState | None = None
    mtp_logits: list[torch.Tensor] | None = None
    """Per MTP depth k, logits for the token k + 1 positions ahead (only when asked for)."""
    hidden_states: torch.Tensor | None = None


class _Stack(nn.Module):
    """``backbone``: embeddings, layers, final norm (the Nemotron-H hub layout)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        # an uninitialised table (``HybridLM.init_weights`` or a checkpoint fills it): nn.Embedding's own
        # normal_() on the meta device first imports torch's Python decompositions, 1.2 s of a cold start
        self.embeddings = nn.Embedding(
            spec.vocab_size, spec.hidden_size, _weight=torch.empty(spec.vocab_size, spec.hidden_size)
        )
        self.layers = nn.ModuleList(
            build_layer(spec, layer.symbol, layer.index, layer.parallel) for layer in spec.pattern.layers
        )
        self.norm_f = RMSNorm(spec.hidden_size, spec.norm.eps, spec.norm.unit_offset, exact=exact_norms(spec))


class MtpLayer(Block):
    """A layer of an MTP depth; the first of a depth fuses the next token's embedding, the last norms."""

    def __init__(self, symbol: str, mixer: nn.Module, spec: ModelSpec, first: bool, last: bool) -> None:
        offset = spec.norm.unit_offset
        super().__init__(symbol, mixer, spec.hidden_size, spec.norm.eps, spec.residual_multiplier, offset)
        h = spec.hidden_size
        if first:
            self.enorm = RMSNorm(h, spec.norm.eps, offset)
            self.hnorm = RMSNorm(h, spec.norm.eps, offset)
            self.eh_proj = nn.Linear(2 * h, h, bias=False)
        if last:
            self.final_layernorm = RMSNorm(h, spec.norm.eps, offset)


class _Mtp(nn.Module):
    """``mtp.layers.{depth * len + j}``, the layout of Nemotron-3 hub checkpoints."""

    def __init__(self, spec: ModelSpec, first_index: int) -> None:
        super().__init__()
        block = spec.pattern.mtp
        assert block is not None
        size = len(block.layers)
        self.depths, self.size = block.depths, size
        layers = []
        for depth in range(block.depths):
            for j, layer in enumerate(block.layers):
                index = first_index + depth * size + j
                mixer = build_mixer(spec, layer.symbol, index)
                layers.append(MtpLayer(layer.symbol, mixer, spec, first=j == 0, last=j == size - 1))
        self.layers = nn.ModuleList(layers)


_LATENT = frozenset({LayerKind.MLA, LayerKind.DSA})


def _rope(spec: ModelSpec) -> tuple[torch.Tensor | None, float]:
    """The model's RoPE inverse frequencies (None: nothing rotates) and the factor its cos/sin tables
    are multiplied by: attention's, else the latent attention's (``patternc_torch.latent``; YaRN's
    attention factor).  ``support`` refuses a model whose two kinds would need different tables."""
    a = spec.attention
    used = spec.pattern.kinds()
    if a is not None and a.rope is not None and (LayerKind.ATTENTION in used or not used & _LATENT):
        return rope_frequencies(a.head_dim, a.rope.partial_factor, a.rope.theta), 1.0
    if not used & _LATENT:
        return None, 1.0
    from patternc_torch.latent import latent_rope

    latent = latent_rope(spec)
    return (None, 1.0) if latent is None else latent


def build_layer(spec: ModelSpec, symbol: str, index: int, parallel: tuple[str, ...] = ()) -> Block:
    """Layer ``index``: ``symbol``'s mixer in a ``Block``; ``parallel``: the kinds beside it (``Layer.parallel``)."""
    if parallel:  # `[*M]` (Falcon-H1): the branches summed into one residual add, a Block variant of its own
        return ParallelBlock(spec, symbol, parallel, index)
    mixer = build_mixer(spec, symbol, index)
    if spec.scaled_residual is not None:  # MiniMax: alpha * norm(x) + beta * f(norm(x)) (patternc_torch.lightning)
        return ScaledResidualBlock(symbol, mixer, spec)
    if post_normed(spec, index):  # OLMo's attention layer and its FFN: the norm on the output
        variant: type[Block] = PostNormBlock
    else:
        variant = Block
    block = variant(symbol, mixer, spec.hidden_size, spec.norm.eps, spec.residual_multiplier, spec.norm.unit_offset)
    block.norm.exact = exact_norms(spec)
    return block


def exact_norms(spec: ModelSpec) -> bool:
    """Whether the block and final norms round as transformers' (``RMSNorm.exact``): in a model with gated
    DeltaNet layers, whose chunked solve amplifies an ulp of difference in its input (OLMo Hybrid's plain
    norms; Qwen's zero-centred ones always do)."""
    return LayerKind.GATED_DELTANET in spec.pattern.kinds()


class HybridLM(nn.Module):
    """A hybrid decoder built from a ``ModelSpec``: ``backbone`` + ``lm_head`` (+ ``mtp``)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = _Stack(spec)
        self.lm_head = nn.Linear(spec.hidden_size, spec.vocab_size, bias=False)
        self.tie_weights()
        self.mtp = _Mtp(spec, spec.pattern.num_layers) if spec.pattern.mtp is not None else None
        inv_freq, self.rope_factor = _rope(spec)
        self.register_buffer("rope_inv_freq", inv_freq, persistent=False)
        self._has_attention = any(
            by_symbol(symbol).role is Role.ATTENTION for layer in self._all_layers() for symbol in layer.symbols
        )
        self._screened: ScreenedHead | None = None
        self._compiled: Any = None
        """The compiled decode step (``patternc_torch.compiled.CompiledDecode``), once asked for."""
        self.weights_from: str | None = None
        """The checkpoint directory ``torch_model`` loaded the weights from; None: initialised here."""

    def _all_layers(self) -> Iterator[Block]:
        yield from self.backbone.layers  # type: ignore[misc]
        if self.mtp is not None:
            yield from self.mtp.layers  # type: ignore[misc]

    # -- weights -------------------------------------------------------------------------------

    def init_weights(self, seed: int = 0, std: float = 0.02) -> None:
        """Random weights like transformers' initialisation (skipped on the meta device)."""
        if any(p.is_meta for p in self.parameters()):
            return
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in self.named_parameters():
                leaf = name.rsplit(".", 1)[-1]
                if name.endswith("norm.weight") or leaf in ("D",) or "layernorm" in name or "enorm" in name:
                    param.fill_(1.0)
                elif leaf == "A_log":
                    param.copy_(torch.log(torch.arange(1, param.numel() + 1, dtype=torch.float32)).view(param.shape))
                elif leaf == "dt_bias":
                    dt = torch.exp(
                        torch.rand(param.numel(), generator=gen) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)
                    ).clamp(min=1e-4)
                    param.copy_(dt + torch.log(-torch.expm1(-dt)))
                elif leaf == "bias":
                    if "conv1d" in name:
                        param.copy_(torch.randn(param.shape, generator=gen) * std)
                    else:
                        param.zero_()
                else:
                    param.copy_(torch.randn(param.shape, generator=gen) * std)
            for module in self.modules():  # zero-centred norms store w - 1: the identity scale is zero
                if isinstance(module, RMSNorm) and module.unit_offset:
                    module.weight.zero_()
                init = getattr(module, "init_like_transformers", None)  # what a name cannot say (Mamba-1's A)
                if callable(init):
                    init()

    def tie_weights(self) -> None:
        """One tensor for the embedding table and the head when the spec ties them (again after
        ``to_empty``, which gives each module its own new parameter)."""
        if self.spec.tie_embeddings:
            self.lm_head.weight = self.backbone.embeddings.weight

    def reset_buffers(self) -> None:
        """The buffers' values after ``to_empty``: RoPE frequencies computed, router biases zero."""
        with torch.no_grad():
            inv_freq, _ = _rope(self.spec)
            if isinstance(self.rope_inv_freq, torch.Tensor) and inv_freq is not None:
                self.rope_inv_freq.copy_(inv_freq)
            for name, buffer in self.named_buffers():
                if name.endswith("e_score_correction_bias"):
                    buffer.zero_()

    def keep_fp32(self) -> None:
        """Cast the SSM parameters and the router back to float32 (after ``.to(dtype)``)."""
        for name, tensor in [*self.named_parameters(), *self.named_buffers()]:
            if name.endswith(FP32_PARAMETERS) and tensor.dtype != torch.float32:
                tensor.data = tensor.data.float()

    # -- forward -------------------------------------------------------------------------------

    def _rope_tables(self, positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin for ``positions``, times YaRN's attention factor when the model's RoPE has one."""
        cos, sin = rope_tables(positions, inv_freq)
        if self.rope_factor != 1.0:
            cos, sin = cos * self.rope_factor, sin * self.rope_factor
        return cos, sin

    def new_state(self, batch: int, capacity: int = 256) -> InferenceState:
        return InferenceState(batch, capacity)

    def _context(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        state: InferenceState | None,
        position_ids: torch.Tensor | None,
    ) -> Context:
        b, t = input_ids.shape
        device = input_ids.device
        start = state.offset if state is not None else 0
        token_mask = None
        if attention_mask is not None:
            token_mask = attention_mask.to(device=device, dtype=torch.bool)
            if bool(token_mask.all()):
                token_mask = None
        if state is not None:
            state.reserve(t)
            if token_mask is not None and state.key_mask is None:
                state.key_mask = torch.ones(b, state.capacity, dtype=torch.bool, device=device)
            if state.key_mask is not None:
                state.key_mask[:, start : start + t] = True if token_mask is None else token_mask
        # positions: count real tokens only (left padding starts each row at 0)
        if position_ids is None and self.rope_inv_freq is not None:
            if token_mask is None and (state is None or state.next_position is None):
                position_ids = torch.arange(start, start + t, device=device).unsqueeze(0).expand(b, t)
            else:
                first = state.next_position if state is not None and state.next_position is not None else None
                if first is None:
                    first = torch.full((b,), start, dtype=torch.long, device=device)
                real = token_mask if token_mask is not None else torch.ones(b, t, dtype=torch.bool, device=device)
                position_ids = (first.unsqueeze(1) + real.long().cumsum(1) - 1).clamp(min=0)
        if state is not None and (token_mask is not None or state.next_position is not None):
            first = state.next_position
            if first is None:
                first = torch.full((b,), start, dtype=torch.long, device=device)
            added = token_mask.long().sum(1) if token_mask is not None else torch.full_like(first, t)
            state.next_position = first + added
        inv_freq = self.rope_inv_freq
        rope = (
            self._rope_tables(position_ids, inv_freq)
            if position_ids is not None and isinstance(inv_freq, torch.Tensor)
            else None
        )
        # the attention mask: causal over the whole cache, minus padded keys
        attn_mask = None
        is_causal = False
        if self._has_attention:
            keys = start + t
            key_mask = state.key_mask[:, :keys] if state is not None and state.key_mask is not None else token_mask
            a = self.spec.attention
            # a sliding window (transformers' `kv_idx > q_idx - sliding_window`) matters once it is shorter
            window = (
                a.sliding_window if a is not None and a.sliding_window is not None and keys > a.sliding_window else None
            )
            if key_mask is None and start == 0 and t > 1 and window is None:
                is_causal = True
            elif key_mask is not None or t > 1 or window is not None:
                q_pos = torch.arange(start, start + t, device=device).view(t, 1)
                allowed = torch.arange(keys, device=device).view(1, keys) <= q_pos  # (t, keys)
                if window is not None:
                    allowed = allowed & (torch.arange(keys, device=device).view(1, keys) > q_pos - window)
                allowed = allowed.view(1, 1, t, keys)
                if key_mask is not None:
                    allowed = allowed & key_mask.view(b, 1, 1, keys)
                    # a padded query sees only itself: its row must not be empty (NaN)
                    diagonal = torch.zeros(t, keys, dtype=torch.bool, device=device)
                    diagonal[torch.arange(t), torch.arange(start, start + t)] = True
                    allowed = allowed | diagonal.view(1, 1, t, keys)
                attn_mask = allowed
        return Context(state, token_mask, attn_mask, is_causal, rope, start)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        state: InferenceState | None = None,
        position_ids: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        return_mtp: bool = False,
    ) -> CausalLMOutput:
        """Logits for ``input_ids`` (b, t); with ``state``, continue from it and update it.

        Bad arguments (ids that are not a (b, t) integer tensor below the vocabulary size, a mask of
        another shape, a model on the meta device) raise ``PatternError`` (``P407``)."""
        embeddings = self.backbone.embeddings.weight
        check_input(input_ids, attention_mask, self.spec.vocab_size, embeddings)
        if state is not None and state.batch != input_ids.shape[0]:
            raise invalid(
                f"the state holds {state.batch} row(s), input_ids {input_ids.shape[0]}",
                help="start a new state with model.new_state(batch)",
            )
        if (
            state is not None
            and input_ids.shape[1] == 1
            and attention_mask is None
            and position_ids is None
            and not return_mtp
            and not torch.is_grad_enabled()
            and self._can_step(state)
        ):
            return self._step(input_ids, state, self._decode_plan())
        ctx = self._context(input_ids, attention_mask, state, position_ids)
        h = self.backbone.embeddings(input_ids)
        if self.spec.embedding_multiplier != 1.0:
            h = h * self.spec.embedding_multiplier
        for layer in self.backbone.layers:
            h = layer(h, ctx)
        hidden = h
        h = self.backbone.norm_f(h)
        if logits_to_keep > 0:
            h = h[:, -logits_to_keep:]
        logits = self._head(h)
        if state is not None:
            state.offset += input_ids.shape[1]
        mtp_logits = self._mtp(input_ids, hidden, ctx) if return_mtp and self.mtp is not None else None
        return CausalLMOutput(logits=logits, state=state, mtp_logits=mtp_logits, hidden_states=hidden)

    # -- one token per row (decoding) ---------------------------------------------------------------

    def _can_step(self, state: InferenceState) -> bool:
        """Whether ``state`` allows ``_step``: no padding so far, every layer's state exists (its kind says)."""
        if state.key_mask is not None or state.next_position is not None or state.offset == 0:
            return False
        return ready(cast("list[Block]", list(self.backbone.layers)), state)

    def _decode_plan(self) -> tuple[list[StepFn], Callable[[torch.Tensor], torch.Tensor]]:
        """The closures ``_step`` runs: one per layer, then the final norm (see ``patternc_torch.decode``)."""
        return decode_steps(cast("list[Block]", list(self.backbone.layers))), norm_step(self.backbone.norm_f)

    def _step(
        self,
        input_ids: torch.Tensor,
        state: InferenceState,
        plan: tuple[list[StepFn], Callable[[torch.Tensor], torch.Tensor]],
    ) -> CausalLMOutput:
        """``forward`` for one new token per row after an unpadded history (autograd off)."""
        hidden, normed = self._step_hidden(input_ids, state, plan)
        b = input_ids.shape[0]
        logits = self._head(normed).view(b, 1, -1)
        return CausalLMOutput(logits=logits, state=state, hidden_states=hidden.view(b, 1, -1))

    def _step_hidden(
        self,
        input_ids: torch.Tensor,
        state: InferenceState,
        plan: tuple[list[StepFn], Callable[[torch.Tensor], torch.Tensor]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layers of ``_step``: (last hidden state, after the final norm), both (b, hidden)."""
        b = input_ids.shape[0]
        start = state.offset
        state.reserve(1)
        rope = None
        inv_freq = self.rope_inv_freq
        if isinstance(inv_freq, torch.Tensor):
            positions = torch.full((b, 1), start, dtype=torch.long, device=input_ids.device)
            rope = self._rope_tables(positions, inv_freq)
        table = self.backbone.embeddings
        # a vocabulary-parallel table (patternc_torch.distributed) looks ids up in its own forward
        h = F.embedding(input_ids.view(b), table.weight) if type(table) is nn.Embedding else table(input_ids.view(b))
        if self.spec.embedding_multiplier != 1.0:
            h = h * self.spec.embedding_multiplier
        steps, final_norm = plan
        for step in steps:
            h = step(h, state, start, rope)
        state.offset += 1
        return h, final_norm(h)

    def _screen(self) -> ScreenedHead | None:
        """The int8 screen of the head for exact greedy picks (see ``patternc_torch.greedy``), cached."""
        if self.spec.logits_scaling <= 0 or self._lm_head_multiplier() <= 0:  # would reorder the logits
            return None
        self._screened = screened_head(self.lm_head.weight, self._screened)
        return self._screened

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        logits = F.linear(h, self.lm_head.weight)
        if logits.dtype != torch.float32:
            logits = logits.float()
        if self.spec.logits_scaling != 1.0:
            logits = logits / self.spec.logits_scaling
        if self._lm_head_multiplier() != 1.0:
            logits = logits * self._lm_head_multiplier()
        return logits

    def _lm_head_multiplier(self) -> float:
        """Falcon-H1's µP ``lm_head_multiplier`` (the logits times it); 1.0 without µP."""
        return 1.0 if self.spec.mup is None else self.spec.mup.lm_head

    def _mtp(self, input_ids: torch.Tensor, hidden: torch.Tensor, ctx: Context) -> list[torch.Tensor]:
        """DeepSeek-V3-style MTP: depth k fuses the embedding of token i + k with the previous depth's state."""
        assert self.mtp is not None
        plain = Context(None, ctx.token_mask, ctx.attn_mask, ctx.is_causal, ctx.rope, 0)
        if ctx.state is not None:  # the MTP heads keep no cache: full causal attention over this call
            t = input_ids.shape[1]
            plain.is_causal = t > 1 and ctx.token_mask is None
            plain.attn_mask = None if plain.is_causal or t == 1 else ctx.attn_mask
        out = []
        h = hidden
        shifted = input_ids
        for depth in range(self.mtp.depths):
            shifted = torch.roll(shifted, -1, dims=1)
            emb = self.backbone.embeddings(shifted) * self.spec.embedding_multiplier
            layers = list(self.mtp.layers)[depth * self.mtp.size : (depth + 1) * self.mtp.size]
            first = layers[0]
            assert isinstance(first, MtpLayer)
            h = first.eh_proj(torch.cat([first.enorm(emb), first.hnorm(h)], dim=-1))
            for layer in layers:
                h = layer(h, plain)
            last = layers[-1]
            assert isinstance(last, MtpLayer)
            out.append(self._head(last.final_layernorm(h)))
        return out

    # -- generation ----------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int = 20,
        *,
        attention_mask: torch.Tensor | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        eos_token_id: int | None = None,
        pad_token_id: int = 0,
        generator: torch.Generator | None = None,
        screen_head: bool = True,
        on_token: Callable[[int], None] | None = None,
        compile: bool | None = None,
    ) -> torch.Tensor:
        """Prompt + up to ``max_new_tokens`` ids (b, t + new); greedy unless ``do_sample``.

        Greedy decoding of an fp32 CPU model with a large vocabulary picks each token through an int8
        screen of the head with a proven error bound (``patternc_torch.greedy``): the same ids as the
        argmax of the fp32 logits, a quarter of the head's bytes read.  ``screen_head=False`` computes
        the full logits every step instead.

        Rows that produced ``eos_token_id`` are continued with ``pad_token_id``; generation stops
        early when every row has.  Bad arguments raise ``PatternError`` (``P407``), as in ``forward``.

        ``on_token(n)`` is called each time the n-th new token of every row has been picked (the first
        right after the prompt's forward pass), so that a caller can time the prompt and the decode
        steps apart (``patternc run`` reports tokens per second); it must not touch the model.

        ``compile=True`` runs the decode steps through ``torch.compile`` (``patternc_torch.compiled``:
        the same arithmetic, checked against the eager step once, falling back to it with a
        ``RuntimeWarning`` when it cannot compile); None takes ``compiled.DEFAULT`` (eager).
        """
        embeddings = self.backbone.embeddings.weight
        check_input(input_ids, attention_mask, self.spec.vocab_size, embeddings)
        check_generation(max_new_tokens, temperature, top_k, top_p)
        b, t = input_ids.shape
        # room for the first few thousand tokens; the KV buffers grow by doubling beyond (a huge
        # max_new_tokens with an early eos_token_id must not allocate its whole cache up front)
        state = self.new_state(b, t + min(max_new_tokens, 4096))
        out = self(input_ids, attention_mask, state=state, logits_to_keep=1)
        tokens = [input_ids]
        done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
        fast = self._can_step(state)
        plan = self._decode_plan() if fast else None
        if plan is not None and max_new_tokens > 1 and (compile if compile is not None else _compile_default()):
            from patternc_torch.compiled import compiled_plan

            plan = compiled_plan(self, plan, state)
        screen = self._screen() if plan is not None and not do_sample and screen_head and max_new_tokens > 1 else None
        picked: torch.Tensor | None = None
        for step in range(max_new_tokens):
            if picked is not None:
                nxt = picked
            else:
                nxt = _pick(out.logits[:, -1], do_sample, temperature, top_k, top_p, generator)
            if eos_token_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, pad_token_id), nxt)
                done = done | (nxt == eos_token_id)
            tokens.append(nxt.unsqueeze(1))
            if on_token is not None:
                on_token(step + 1)
            if step + 1 == max_new_tokens or (eos_token_id is not None and bool(done.all())):
                break
            if screen is not None and plan is not None:
                picked = screen.argmax(self._step_hidden(nxt.unsqueeze(1), state, plan)[1])
            elif plan is not None:
                out = self._step(nxt.unsqueeze(1), state, plan)
            else:
                out = self(nxt.unsqueeze(1), state=state, logits_to_keep=1)
        return torch.cat(tokens, dim=1)


def _compile_default() -> bool:
    from patternc_torch.compiled import DEFAULT

    return DEFAULT


def _pick(
    logits: torch.Tensor,
    do_sample: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if not do_sample:
        return logits.argmax(dim=-1)
    logits = logits.float() / max(temperature, 1e-6)
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1)[0][..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) > top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = F.softmax(logits, dim=-1)
    if not bool(torch.isfinite(probs).all()):
        raise invalid(
            "the logits hold NaN or infinite values: there is no distribution to sample from",
            help="check the weights (greedy decoding, do_sample=False, still runs)",
            origin="<model>",
        )
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
