"""Pipeline parallel for the torch model: one stage of layers per rank, with inference state and MTP (issue 16).

``PipelinedLM(model, mesh)`` cuts the main stack at the pattern's ``|`` stages (or at given bounds, e.g.
``patternc.analysis.pipeline.split_model``'s) and keeps only this rank's stage: the first embeds, the
last applies the final norm and the head, and holds the MTP block with a replica of the embedding table
(the MTP block embeds the next tokens; Megatron-Core keeps the same replica on its last stage).

**Prefill** goes through ``torch.distributed.pipelining``: a ``PipelineStage`` per rank, run by
``ScheduleGPipe``.  The stages are declared with their input and output shapes (static metadata), so
the schedule runs each stage's forward exactly once per microbatch: its shape inference would otherwise
run the forward an extra time on empty tensors, which would also write garbage into the inference state.

**Inference state.**  Each rank keeps an ``InferenceState`` holding the entries of its own layers only
(their KV cache, conv and SSM state: the state is keyed by the layer's global index).  The bookkeeping
that every layer shares (the offset, the key mask of a left-padded batch, the next RoPE position of each
row) is kept by every stage in its own copy: each stage computes the same ``HybridLM._context`` from
the attention mask it is given, so the copies stay equal without any message.  Prefill fills the
state through the schedule; then each new token crosses the stages as the hidden state of one position
per row (``send``/``recv`` of a (batch, 1, hidden) tensor to the next rank), each stage running the
backend's one-token decode closures (``patternc_torch.decode``) on its cached state, or its layers'
forward on one position when the batch is left-padded (as ``HybridLM.generate`` does).  The last
stage picks the token (greedy through the int8 head screen when it applies, or sampling with the
caller's generator) and broadcasts it, so that every rank returns the same ids.

The tensors that are not activations (the ids that MTP embeds on the last stage, the attention mask
each stage builds its context from) are given to every rank by the caller, as a launch gives every rank
the same prompt; they reach the stage's forward beside the schedule, one entry per microbatch in the
order GPipe runs them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from patternc.model import ModelSpec
from patternc_torch.arguments import check_generation, check_input, invalid
from patternc_torch.decode import StepFn, norm_step
from patternc_torch.distributed import _mesh_group, refuse
from patternc_torch.kinds import decode_steps, ready
from patternc_torch.layers import Block
from patternc_torch.model import HybridLM, _pick
from patternc_torch.state import InferenceState

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.pipelining import ScheduleGPipe


def stage_bounds(
    spec: ModelSpec, stages: int | None = None, bounds: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """The main layers ``[start, stop)`` of each stage: ``bounds`` (cut points), else the pattern's ``|``
    stages when there are ``stages`` of them, else ``patternc.analysis.pipeline.split_model``'s cut."""
    n = len(spec.pattern.layers)
    if bounds is not None:
        cuts = [0, *bounds, n]
        return [(a, b) for a, b in itertools.pairwise(cuts)]
    marked = [(s.start, s.stop) for s in spec.pattern.stages]
    if stages is None or stages == len(marked):
        return marked
    if stages > n:
        raise refuse(f"{stages} pipeline stages for {n} layers", help=f"use --pp {n} or fewer")
    from patternc.analysis.pipeline import split_model

    try:
        sizes = tuple(split_model(spec, stages).partition.sizes)  # pattern symbols per segment
    except Exception:  # a kind the cost model does not know: equal shares of layers
        sizes = tuple(n // stages + (1 if i < n % stages else 0) for i in range(stages))
    if len(sizes) != stages or sum(sizes) != n or min(sizes) == 0:
        sizes = tuple(n // stages + (1 if i < n % stages else 0) for i in range(stages))
    out, start = [], 0
    for size in sizes:
        out.append((start, start + size))
        start += size
    return out


def pipeline_stages(spec: ModelSpec, size: int) -> list[tuple[int, int]]:
    """``stage_bounds`` for ``size`` ranks, or ``P420`` when the model cannot be pipelined so."""
    cuts = stage_bounds(spec, size)
    if len(cuts) != size:
        raise refuse(
            f"the pattern has {len(cuts)} pipeline stage(s) (`|`), the launch {size} rank(s)",
            help=f"run with {len(cuts)} processes, or leave the `|` out and let `--pp {size}` split the stack",
        )
    return cuts


def keeps(spec: ModelSpec, name: str, rank: int, size: int, bounds: tuple[int, int]) -> bool:
    """Whether the stage of ``rank`` (of ``size``, main layers ``bounds``) holds the parameter ``name``:
    its layers; the embedding table on the first stage, and on the last when the head is tied to it or
    an MTP block embeds there; the final norm, head and MTP block on the last stage."""
    first, last = rank == 0, rank == size - 1
    if name.startswith("backbone.layers."):
        return bounds[0] <= int(name.split(".")[2]) < bounds[1]
    if name.startswith("backbone.embeddings."):
        return first or (last and (spec.tie_embeddings or spec.pattern.mtp is not None))
    return last and name.startswith(("backbone.norm_f.", "lm_head.", "mtp."))


@dataclass
class _Feed:
    """What one microbatch's forward needs beside its activations (the same on every rank)."""

    attention_mask: torch.Tensor | None
    input_ids: torch.Tensor | None
    """The microbatch's ids, for the MTP block on the last stage (None: no MTP asked for)."""


class _Stage(nn.Module):
    """One pipeline stage of a ``HybridLM``: (ids ->) its layers (-> final norm -> logits (+ MTP logits)).

    ``state`` (None: none kept) is the rank's inference state, ``feeds`` the masks and ids of the
    microbatches still to run, ``keep`` the positions whose logits the last stage returns (0: all)."""

    _owner: HybridLM

    def __init__(self, model: HybridLM, start: int, stop: int, first: bool, last: bool) -> None:
        super().__init__()
        self.first, self.last = first, last
        self.bounds = (start, stop)
        mtp = last and model.mtp is not None
        self.embeddings = model.backbone.embeddings if first or mtp else None
        self.layers = nn.ModuleList(list(model.backbone.layers)[start:stop])
        self.norm_f = model.backbone.norm_f if last else None
        self.lm_head = model.lm_head if last else None
        self.mtp = model.mtp if mtp else None
        rope = model.rope_inv_freq
        self.register_buffer("rope_inv_freq", rope if isinstance(rope, torch.Tensor) else None, persistent=False)
        self.spec = model.spec
        object.__setattr__(self, "_owner", model)  # not a submodule: the other stages' parameters are on meta
        self.state: InferenceState | None = None
        self.feeds: list[_Feed] = []
        self.keep = 0
        self.tokens_seen = 0
        """Positions (rows x tokens) this stage's layers have run: what shows that decoding reuses the state."""

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        assert self.embeddings is not None
        x: torch.Tensor = self.embeddings(ids)
        return x * self.spec.embedding_multiplier if self.spec.embedding_multiplier != 1.0 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        feed = self.feeds.pop(0) if self.feeds else _Feed(None, None)
        if self.first:
            x = self._embed(x)
        b, t = x.shape[0], x.shape[1]
        self.tokens_seen += b * t
        state = self.state
        owner = self._owner
        ctx = owner._context(torch.zeros(b, t, dtype=torch.long, device=x.device), feed.attention_mask, state, None)
        for layer in self.layers:
            x = layer(x, ctx)
        if state is not None:
            state.offset += t
        if not self.last:
            return x
        assert self.norm_f is not None
        h = self.norm_f(x)
        logits = owner._head(h[:, -self.keep :] if self.keep else h)
        if feed.input_ids is None or self.mtp is None:
            return logits
        return (logits, *owner._mtp(feed.input_ids, x, ctx))

    def decode_ready(self) -> bool:
        """Whether this stage can take the one-token decode closures (``HybridLM._can_step``, its layers)."""
        state = self.state
        if state is None or state.key_mask is not None or state.next_position is not None or state.offset == 0:
            return False
        return ready(cast("list[Block]", list(self.layers)), state)

    def step(self, x: torch.Tensor, steps: list[StepFn]) -> torch.Tensor:
        """``HybridLM._step_hidden`` over this stage's layers: ids (b, 1) on the first stage, else the
        hidden state (b, 1, hidden); returns the hidden state (b, hidden) after its last layer."""
        state = self.state
        assert state is not None
        b = x.shape[0]
        start = state.offset
        state.reserve(1)
        rope = None
        inv_freq = self.rope_inv_freq
        if isinstance(inv_freq, torch.Tensor):
            positions = torch.full((b, 1), start, dtype=torch.long, device=x.device)
            rope = self._owner._rope_tables(positions, inv_freq)
        if self.first:
            table = self.embeddings
            assert table is not None
            h = F.embedding(x.view(b), table.weight) if type(table) is nn.Embedding else table(x.view(b))
            if self.spec.embedding_multiplier != 1.0:
                h = h * self.spec.embedding_multiplier
        else:
            h = x.view(b, -1)
        self.tokens_seen += b
        for fn in steps:
            h = fn(h, state, start, rope)
        state.offset += 1
        return h


class PipelinedLM:
    """``model`` cut into pipeline stages over a 1-D mesh, one stage per rank.

    Only this rank's stage keeps its parameters (the rest of the model goes to the meta device).
    ``logits(ids)`` returns the full logits (and the MTP heads') on every rank, broadcast from the last
    stage; ``prefill``/``step`` decode through the per-stage inference state, and ``generate`` is
    ``HybridLM.generate``'s loop over them.  Every rank is called with the same arguments."""

    def __init__(
        self,
        model: HybridLM,
        mesh: DeviceMesh,
        bounds: Sequence[tuple[int, int]] | None = None,
        device: torch.device | None = None,
    ) -> None:
        group, rank, size = _mesh_group(mesh)
        cuts = list(bounds) if bounds is not None else pipeline_stages(model.spec, size)
        start, stop = cuts[rank]
        first, last = rank == 0, rank == size - 1
        self.spec, self.group, self.rank, self.size = model.spec, group, rank, size
        self.vocab = model.spec.vocab_size
        self.weights_from = model.weights_from
        self.elements_read: int | None = None
        """Elements this rank read from the checkpoint (``patternc_torch.launch``); None: not loaded so."""
        self.module = _Stage(model, start, stop, first, last)
        # the other stages' weights leave this rank (to the meta device: the module tree stays whole);
        # the same rule as ``keeps``, module by module (a tied head shares the table's Parameter)
        for i, layer in enumerate(model.backbone.layers):
            if not start <= i < stop:
                layer.to("meta")
        if not keeps(model.spec, "backbone.embeddings.weight", rank, size, (start, stop)):
            model.backbone.embeddings.to("meta")
        if not last:
            model.backbone.norm_f.to("meta")
            if not model.spec.tie_embeddings:
                model.lm_head.to("meta")
            if model.mtp is not None:
                model.mtp.to("meta")
        self.device = device or next(self.module.parameters()).device
        self.dtype = model.backbone.embeddings.weight.dtype
        """The activations' dtype (the table's: a meta tensor still has one)."""
        self._probe = next(self.module.parameters())
        self._prev = dist.get_global_rank(group, rank - 1) if not first else None
        self._next = dist.get_global_rank(group, rank + 1) if not last else None
        self._root = dist.get_global_rank(group, size - 1)
        self._steps: list[StepFn] | None = None
        self._final: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def closures(self) -> bool:
        """Whether the tokens after the last prefill run through the decode closures (every stage's state
        allows them: no padding), rather than each stage's layers' forward on one position."""
        return self._steps is not None

    # -- the schedule ------------------------------------------------------------------------------

    def _schedule(self, b: int, t: int, keep: int, mtp: bool, microbatches: int) -> ScheduleGPipe:
        """A one-use ``ScheduleGPipe`` over this rank's stage for microbatches of (b, t) ids, the stage
        declared with its shapes (no shape inference: that would run the forward an extra time)."""
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        meta = torch.device("meta")
        hidden = self.spec.hidden_size
        first, last = self.module.first, self.module.last
        inputs = torch.empty(b, t, dtype=torch.long, device=meta) if first else torch.empty(b, t, hidden, device=meta)
        if not first:
            inputs = inputs.to(self.dtype)
        outputs: torch.Tensor | tuple[torch.Tensor, ...]
        if last:
            head = torch.empty(b, keep or t, self.vocab, device=meta)
            depths = self.spec.pattern.mtp.depths if mtp and self.spec.pattern.mtp is not None else 0
            outputs = (head, *[torch.empty(b, t, self.vocab, device=meta) for _ in range(depths)]) if depths else head
        else:
            outputs = torch.empty(b, t, hidden, dtype=self.dtype, device=meta)
        stage = PipelineStage(
            self.module, self.rank, self.size, self.device, input_args=inputs, output_args=outputs, group=self.group
        )
        return ScheduleGPipe(stage, microbatches)

    def _run(
        self,
        ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        *,
        microbatches: int = 1,
        keep: int = 0,
        mtp: bool = False,
    ) -> Any:
        """One schedule step over ``ids``: the last stage's output (logits, or a tuple with the MTP
        logits), None on the other ranks."""
        b, t = ids.shape
        if b % microbatches:
            raise invalid(f"a batch of {b} row(s) does not split into {microbatches} equal microbatches")

        rows = b // microbatches
        masks = attention_mask.split(rows) if attention_mask is not None else [None] * microbatches
        self.module.feeds = [
            _Feed(mask, chunk if mtp else None) for mask, chunk in zip(masks, ids.split(rows), strict=True)
        ]
        self.module.keep = keep
        schedule = self._schedule(rows, t, keep, mtp, microbatches)
        try:
            return schedule.step(ids) if self.module.first else schedule.step()
        finally:
            self.module.feeds, self.module.keep = [], 0

    def _broadcast(self, tensor: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """``tensor`` from the last stage, on every rank."""
        out = tensor.contiguous() if tensor is not None else torch.empty(shape, dtype=dtype, device=self.device)
        dist.broadcast(out, src=self._root, group=self.group)
        return out

    @torch.no_grad()
    def logits(
        self,
        ids: torch.Tensor,
        microbatches: int = 1,
        *,
        attention_mask: torch.Tensor | None = None,
        return_mtp: bool = False,
    ) -> Any:
        """The logits (b, t, vocab) of ``ids``, no state kept, on every rank; with ``return_mtp``, the
        pair (logits, [logits of each MTP depth])."""
        check_input(ids, attention_mask, self.vocab, self._probe)
        mtp = return_mtp and self.spec.pattern.mtp is not None
        out = self._run(ids, attention_mask, microbatches=microbatches, mtp=mtp)
        b, t = ids.shape
        parts = (out if isinstance(out, tuple) else (out,)) if out is not None else None
        depths = self.spec.pattern.mtp.depths if mtp and self.spec.pattern.mtp is not None else 0
        got = [
            self._broadcast(parts[i] if parts else None, (b, t, self.vocab), torch.float32) for i in range(1 + depths)
        ]
        return (got[0], got[1:]) if return_mtp else got[0]

    # -- decoding through the inference state ------------------------------------------------------

    def _start(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, capacity: int, keep: int) -> Any:
        """A new state on every stage, filled by the prompt through the schedule; decides (on all ranks
        together) whether the tokens after it take the decode closures.  The last stage's logits."""
        self.module.state = InferenceState(ids.shape[0], capacity)
        out = self._run(ids, attention_mask, keep=keep)
        fast = torch.tensor([1 if self.module.decode_ready() else 0], device=self.device)
        dist.all_reduce(fast, op=dist.ReduceOp.MIN, group=self.group)
        self._steps, self._final = None, None
        if bool(fast.item()):
            self._steps = decode_steps(cast("list[Block]", list(self.module.layers)))
            if self.module.last:
                assert self.module.norm_f is not None
                self._final = norm_step(self.module.norm_f)
        return out

    def _advance(self, nxt: torch.Tensor) -> torch.Tensor | None:
        """Feed one token per row (b,) through the stages: the last stage's hidden state after the final
        norm (b, hidden) on the decode closures' path, else its logits (b, 1, vocab); None elsewhere."""
        b = nxt.shape[0]
        if self.module.first:
            x = nxt.view(b, 1)
        else:
            x = torch.empty(b, 1, self.spec.hidden_size, dtype=self.dtype, device=self.device)
            dist.recv(x, src=self._prev, group=self.group)
        if self._steps is not None:
            out = self.module.step(x, self._steps)
        else:
            self.module.keep = 1
            try:
                out = cast(torch.Tensor, self.module(x))
            finally:
                self.module.keep = 0
        if self._next is not None:
            dist.send(out.view(b, 1, -1).contiguous(), dst=self._next, group=self.group)
            return None
        if self._final is not None:
            return self._final(out)
        return out

    @torch.no_grad()
    def prefill(
        self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, capacity: int = 256
    ) -> torch.Tensor:
        """Start decoding: a new inference state on every stage holding ``ids`` (b, t), and their
        logits (b, t, vocab) on every rank (``HybridLM.forward(ids, attention_mask, state=...)``)."""
        check_input(ids, attention_mask, self.vocab, self._probe)
        out = self._start(ids, attention_mask, max(capacity, ids.shape[1]), keep=0)
        return self._broadcast(out, (*ids.shape, self.vocab), torch.float32)

    @torch.no_grad()
    def step(self, nxt: torch.Tensor) -> torch.Tensor:
        """The logits (b, 1, vocab) of one more token per row (``nxt`` (b, 1)) after ``prefill``, on every
        rank, each stage continuing from its state."""
        if self.module.state is None:
            raise invalid("step before prefill: no inference state", help="call prefill(ids) first")
        check_input(nxt, None, self.vocab, self._probe)
        out = self._advance(nxt.view(-1))
        if out is not None and self._final is not None:
            out = self.module._owner._head(out).unsqueeze(1)
        return self._broadcast(out, (nxt.shape[0], 1, self.vocab), torch.float32)

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
    ) -> torch.Tensor:
        """``HybridLM.generate`` through the stages: the prompt through the schedule, then each token
        through the stages' states; the last stage picks (with ``generator`` when sampling) and every
        rank returns the same ids (b, t + new)."""
        check_input(input_ids, attention_mask, self.vocab, self._probe)
        check_generation(max_new_tokens, temperature, top_k, top_p)
        b, t = input_ids.shape
        last = self.module.last
        out = self._start(input_ids, attention_mask, t + min(max_new_tokens, 4096), keep=1)
        screen = None
        if last and self._steps is not None and not do_sample and screen_head and max_new_tokens > 1:
            screen = self.module._owner._screen()
        tokens = [input_ids]
        done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
        picked: torch.Tensor | None = None
        for step in range(max_new_tokens):
            mine = None
            if last:
                mine = (
                    picked if picked is not None else _pick(out[:, -1], do_sample, temperature, top_k, top_p, generator)
                )
            nxt = self._broadcast(mine, (b,), torch.long).to(input_ids.device)
            if eos_token_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, pad_token_id), nxt)
                done = done | (nxt == eos_token_id)
            tokens.append(nxt.unsqueeze(1))
            if on_token is not None:
                on_token(step + 1)
            if step + 1 == max_new_tokens or (eos_token_id is not None and bool(done.all())):
                break
            result = self._advance(nxt)
            if result is None:
                continue
            if self._final is None:
                out = result
            elif screen is not None:
                picked = screen.argmax(result)
            else:
                out = self.module._owner._head(result).unsqueeze(1)
        self.module.state = None
        return torch.cat(tokens, dim=1)
