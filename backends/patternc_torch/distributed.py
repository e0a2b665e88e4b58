"""The torch model over several processes: tensor parallel, FSDP2 and pipeline parallel (issue 16).

Everything here runs on PyTorch's own distributed engine (``torch.distributed`` process groups, a
``DeviceMesh``, ``fully_shard``, ``torch.distributed.pipelining``); docs/backends/distributed.md explains
the plans and their limits.

**Tensor parallel.**  ``tensor_parallel(model, mesh)`` turns a ``HybridLM`` into its shard on this rank.
The plan (``tp_plan``) gives every parameter of the kinds ``M * - E`` (and MTP) a slice of the full tensor
and the DTensor placement that slice has in the whole (``Shard(dim)``, ``Replicate()``, or ``Partial()``
for a row-parallel bias kept by rank 0 only): attention and Mamba2 by heads (Mamba's fused ``in_proj``
cut stream by stream, ``z x B C dt``, so that each rank's rows are its heads' and groups'), MLP and
expert projections by their intermediate size, the embedding and the head by vocabulary rows.

The parameters then hold their local slice as plain tensors, and the collectives sit at the module
boundaries: one all-reduce after each sharded mixer (its ``out_proj``/``o_proj``/``down_proj`` sums
partial products), one masked look-up plus all-reduce in the vocabulary-parallel embedding, one
all-gather of the head's logits.  Keeping the parameters plain (rather than ``DTensor`` parameters
under ``parallelize_module``) is deliberate: the backend's per-token decode closures
(``patternc_torch.decode``), Mamba's fused CUDA kernels, the conv and SSM functions read weights
directly, and each of those would need a DTensor unwrapped inside code that six other kinds share.
``placements(model)`` and ``dtensor_state_dict(model)`` still give the DTensor view of every
parameter (``DTensor.from_local`` over the mesh), for ``torch.distributed.checkpoint`` and checks.

**FSDP2.** ``fully_sharded(model, mesh)`` applies ``fully_shard`` to each layer and then to the root;
decoding goes through ``forward`` (whose FSDP hooks gather each layer's weights) instead of the
decode closures, which would capture sharded parameters.

**Pipeline parallel** is ``patternc_torch.pipeline`` (``PipelinedLM``: stages over ranks, each with its
layers' inference state, the MTP block on the last stage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from patternc.diagnostics import Diagnostic, PatternError, diag
from patternc.source import Source
from patternc_torch.decode import StepFn, block_step, module_step, norm_step
from patternc_torch.deltanet import GatedDeltaNet
from patternc_torch.kinds import torch_kind
from patternc_torch.layers import MLP, Attention, Block, Mamba2Mixer, MoE
from patternc_torch.model import HybridLM, MtpLayer
from patternc_torch.state import InferenceState

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor.placement_types import Placement

PLAN_CODE = "P420"
"""A model, mesh or option that the distributed plans cannot serve (see patternc/codes.py)."""


def refuse(message: str, *, help: str | None = None, origin: str = "<distributed>") -> PatternError:
    return PatternError([diag(PLAN_CODE, message, None, help=help)], Source("", origin))


# -- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Split:
    """What one rank keeps of a full parameter: the ``ranges`` of ``dim`` (concatenated in order).

    ``kind`` is ``shard`` (a slice), ``expanded`` (a slice that other ranks hold too: the key/value heads
    when there are fewer of them than ranks), ``partial`` (a row-parallel bias: rank 0 keeps it, the
    others hold zeros, so that the all-reduce adds it once) or ``replicate`` (the whole tensor)."""

    dim: int
    ranges: tuple[tuple[int, int], ...]
    kind: str = "shard"

    def take(self, full: torch.Tensor, rank: int) -> torch.Tensor:
        if self.kind == "replicate":
            return full
        if self.kind == "partial":
            return full if rank == 0 else torch.zeros_like(full)
        return torch.cat([full.narrow(self.dim, a, b - a) for a, b in self.ranges], dim=self.dim).contiguous()

    def size(self) -> int:
        return sum(b - a for a, b in self.ranges)


REPLICATE = Split(0, (), "replicate")
PARTIAL = Split(0, (), "partial")


def _block(r: int, n: int, count: int, width: int = 1, offset: int = 0) -> tuple[int, int]:
    """Rank ``r``'s contiguous share of ``count`` units of ``width`` elements starting at ``offset``."""
    share = count // n
    return offset + r * share * width, offset + (r + 1) * share * width


@dataclass
class _Mixer:
    """The plan of one mixer: parameter splits (names relative to the mixer) and the local sizes to set."""

    splits: dict[str, Split]
    sizes: dict[str, int]


def _attention_plan(attn: Attention, r: int, n: int) -> tuple[_Mixer | None, str | None]:
    h, kv, hd = attn.heads, attn.kv_heads, attn.head_dim
    if getattr(attn, "qk_norm_whole", False):
        return None, "the query/key norm spans all heads at once (OLMo): it has no per-rank share"
    if h % n:
        return None, f"{h} attention heads do not split over {n} ranks"
    width = (2 if attn.output_gate else 1) * hd
    q = Split(0, (_block(r, n, h, width),))
    if kv % n == 0:
        kv_rows = _block(r, n, kv, hd)
        local_kv = kv // n
    elif n % kv == 0:  # fewer KV heads than ranks: each rank keeps the one its query heads read
        j = (r * (h // n)) // (h // kv)
        kv_rows = (j * hd, (j + 1) * hd)
        local_kv = 1
    else:
        return None, f"{kv} key/value heads neither divide by {n} ranks nor divide {n}"
    kvs = Split(0, (kv_rows,), "shard" if kv % n == 0 else "expanded")
    splits = {"q_proj.weight": q, "k_proj.weight": kvs, "v_proj.weight": kvs}
    if attn.q_proj.bias is not None:
        splits |= {"q_proj.bias": q, "k_proj.bias": kvs, "v_proj.bias": kvs}
    splits["o_proj.weight"] = Split(1, (_block(r, n, h, hd),))
    if attn.o_proj.bias is not None:
        splits["o_proj.bias"] = PARTIAL
    return _Mixer(splits, {"heads": h // n, "kv_heads": local_kv}), None


def _mamba_plan(m: Mamba2Mixer, r: int, n: int) -> tuple[_Mixer | None, str | None]:
    heads, groups, inner, gn = m.heads, m.groups, m.inner, m.groups * m.state_size
    if heads % n or groups % n:
        return (
            None,
            f"Mamba2's {heads} heads in {groups} group(s) do not split over {n} ranks (both must divide by {n})",
        )
    if m.norm is not None and (inner // n) % m.norm.group_size:
        return None, f"Mamba2's gated norm groups of {m.norm.group_size} channels straddle the {n} ranks' shares"
    x = _block(r, n, inner)
    b = _block(r, n, gn, offset=inner)
    c = _block(r, n, gn, offset=inner + gn)
    # in_proj's rows: z | x B C | dt; the conv's channels: x B C
    dt = _block(r, n, heads, offset=inner + m.conv_dim)
    rows = (x, (inner + x[0], inner + x[1]), (inner + b[0], inner + b[1]), (inner + c[0], inner + c[1]), dt)
    heads_split = Split(0, (_block(r, n, heads),))
    splits = {
        "in_proj.weight": Split(0, rows),
        "conv1d.weight": Split(0, (x, b, c)),
        "dt_bias": heads_split,
        "A_log": heads_split,
        "D": heads_split,
        "out_proj.weight": Split(1, (x,)),
    }
    if m.norm is not None:
        splits["norm.weight"] = Split(0, (x,))
    if m.in_proj.bias is not None:
        splits["in_proj.bias"] = Split(0, rows)
    if m.conv1d.bias is not None:
        splits["conv1d.bias"] = Split(0, (x, b, c))
    if m.out_proj.bias is not None:
        splits["out_proj.bias"] = PARTIAL
    sizes = {"heads": heads // n, "groups": groups // n, "inner": inner // n, "conv_dim": m.conv_dim // n}
    return _Mixer(splits, sizes), None


def _mlp_splits(mlp: MLP, r: int, n: int, prefix: str = "") -> tuple[dict[str, Split], str | None]:
    size = mlp.up_proj.out_features
    if size % n:
        return {}, f"an MLP's intermediate size {size} does not split over {n} ranks"
    rows = Split(0, (_block(r, n, size),))
    names = ["up_proj"] + (["gate_proj"] if mlp.gated else [])
    splits = {f"{prefix}{name}.weight": rows for name in names}
    if mlp.up_proj.bias is not None:
        splits |= {f"{prefix}{name}.bias": rows for name in names}
        splits[f"{prefix}down_proj.bias"] = PARTIAL
    splits[f"{prefix}down_proj.weight"] = Split(1, (_block(r, n, size),))
    return splits, None


def _moe_plan(moe: MoE, r: int, n: int) -> tuple[_Mixer | None, str | None]:
    # each expert's projections split by their intermediate size (not whole experts per rank): the
    # router stays replicated and every rank computes every routed token on 1/N of each expert, so the
    # work is balanced whatever the routing, and the expert loop runs unchanged
    experts = moe.experts
    i = experts.intermediate
    if i % n:
        return None, f"the experts' intermediate size {i} does not split over {n} ranks"
    mine = _block(r, n, i)
    splits: dict[str, Split] = {}
    if experts.gated:
        splits["experts.gate_up_proj"] = Split(1, (mine, (i + mine[0], i + mine[1])))
    else:
        splits["experts.up_proj"] = Split(1, (mine,))
    splits["experts.down_proj"] = Split(2, (mine,))
    if moe.shared_experts is not None:
        shared, problem = _mlp_splits(moe.shared_experts, r, n, "shared_experts.")
        if problem:
            return None, "shared expert: " + problem
        splits |= shared
    if moe.fc2_latent_proj is not None and moe.fc2_latent_proj.bias is not None:
        splits["fc2_latent_proj.bias"] = PARTIAL
    return _Mixer(splits, {}), None


def _deltanet_plan(m: GatedDeltaNet, r: int, n: int) -> tuple[_Mixer | None, str | None]:
    # by key heads, each with the value heads that read it (value head j reads key head j // (hv / hk)):
    # the convolution's q, k, v channels, the gates and the recurrent state of those heads stay on one rank
    hk, hv, dk, dv = m.k_heads, m.v_heads, m.dk, m.dv
    if hk % n:
        return None, f"gated DeltaNet's {hk} key heads do not split over {n} ranks"
    key_dim = hk * dk
    q, k, v = _block(r, n, hk, dk), _block(r, n, hk, dk, key_dim), _block(r, n, hv, dv, 2 * key_dim)
    heads = Split(0, (_block(r, n, hv),))
    splits = {
        "conv1d.weight": Split(0, (q, k, v)),
        "dt_bias": heads,
        "A_log": heads,
        "out_proj.weight": Split(1, (_block(r, n, hv, dv),)),
    }
    if m.separate:  # OLMo Hybrid: one projection per stream
        splits |= {
            "q_proj.weight": Split(0, (_block(r, n, hk, dk),)),
            "k_proj.weight": Split(0, (_block(r, n, hk, dk),)),
            "v_proj.weight": Split(0, (_block(r, n, hv, dv),)),
            "g_proj.weight": Split(0, (_block(r, n, hv, dv),)),
            "a_proj.weight": heads,
            "b_proj.weight": heads,
        }
    elif m.split:  # Qwen3.5: stream-major projections
        splits |= {
            "in_proj_qkv.weight": Split(0, (q, k, v)),
            "in_proj_z.weight": Split(0, (_block(r, n, hv, dv),)),
            "in_proj_b.weight": heads,
            "in_proj_a.weight": heads,
        }
    else:  # Qwen3-Next: per key head, its q, k, then the v and z (b and a) of its value heads
        ratio = hv // hk
        splits["in_proj_qkvz.weight"] = Split(0, (_block(r, n, hk, 2 * dk + 2 * ratio * dv),))
        splits["in_proj_ba.weight"] = Split(0, (_block(r, n, hk, 2 * ratio),))
    sizes = {
        "k_heads": hk // n,
        "v_heads": hv // n,
        "key_dim": key_dim // n,
        "value_dim": hv * dv // n,
        "conv_dim": m.conv_dim // n,
    }
    return _Mixer(splits, sizes), None


def _mixer_plan(mixer: nn.Module, r: int, n: int) -> tuple[_Mixer | None, str | None]:
    # exact types: another kind's module deriving from one of these would have parameters of its own
    if type(mixer) is Attention:
        return _attention_plan(mixer, r, n)
    if type(mixer) is Mamba2Mixer:
        return _mamba_plan(mixer, r, n)
    if type(mixer) is MLP:
        splits, problem = _mlp_splits(mixer, r, n)
        return (None, problem) if problem else (_Mixer(splits, {}), None)
    if type(mixer) is MoE:
        return _moe_plan(mixer, r, n)
    if type(mixer) is GatedDeltaNet:
        return _deltanet_plan(mixer, r, n)
    return None, f"no tensor-parallel plan for {type(mixer).__name__} layers"


TENSOR_PARALLEL_KINDS = "M * - E G"
"""The layer symbols ``tensor_parallel`` has plans for (the Nemotron-H kinds, also in MTP blocks, and
Qwen3-Next's gated DeltaNet)."""


def _blocks(model: HybridLM) -> Iterator[tuple[str, Block]]:
    for i, layer in enumerate(model.backbone.layers):
        yield f"backbone.layers.{i}", cast(Block, layer)
    if model.mtp is not None:
        for i, layer in enumerate(model.mtp.layers):
            yield f"mtp.layers.{i}", cast(Block, layer)


@dataclass
class Plan:
    """Every sharded parameter's ``Split`` (full names), the local sizes per mixer, for one rank."""

    rank: int
    size: int
    splits: dict[str, Split]
    sizes: dict[str, dict[str, int]]
    """Mixer path -> attribute -> local value (heads, kv_heads, groups, inner…)."""


def tp_plan(model: HybridLM, rank: int, size: int) -> Plan:
    """The tensor-parallel plan of ``model`` for ``rank`` of ``size``; every reason it cannot be split
    is one ``P420`` diagnostic (all at once)."""
    problems: list[str] = []
    splits: dict[str, Split] = {}
    sizes: dict[str, dict[str, int]] = {}
    vocab = model.spec.vocab_size
    if vocab % size:
        problems.append(f"the vocabulary of {vocab} does not split over {size} ranks")
    else:
        rows = Split(0, (_block(rank, size, vocab),))
        splits["backbone.embeddings.weight"] = rows
        splits["lm_head.weight"] = rows
    for path, block in _blocks(model):
        if type(block) not in (Block, MtpLayer):  # post-norm and parallel blocks plan their own steps
            problems.append(f"layer `{block.symbol}` ({path}): no tensor-parallel plan for {type(block).__name__}")
            continue
        mixer_plan, problem = _mixer_plan(block.mixer, rank, size)
        if problem or mixer_plan is None:
            problems.append(f"layer `{block.symbol}` ({path}): {problem}")
            continue
        splits |= {f"{path}.mixer.{name}": split for name, split in mixer_plan.splits.items()}
        sizes[f"{path}.mixer"] = mixer_plan.sizes
    if problems:
        raise PatternError(
            [
                diag(
                    PLAN_CODE,
                    f"tensor parallel over {size} ranks: {p}",
                    None,
                    help=f"choose a --tp that divides these sizes (kinds with plans: {TENSOR_PARALLEL_KINDS})",
                )
                for p in problems
            ],
            Source("", "<distributed>"),
        )
    return Plan(rank, size, splits, sizes)


# -- collectives -----------------------------------------------------------------------------------


def _all_reduce(x: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
    """Sum over the group; differentiable when autograd records (``torch.distributed.nn``)."""
    if torch.is_grad_enabled() and x.requires_grad:
        from torch.distributed.nn.functional import all_reduce

        return cast(torch.Tensor, all_reduce(x, group=group))
    dist.all_reduce(x, group=group)
    return x


def _reduce_output(group: dist.ProcessGroup) -> Callable[[nn.Module, Any, torch.Tensor], torch.Tensor]:
    def hook(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        return _all_reduce(out, group)

    return hook


class VocabParallelEmbedding(nn.Embedding):
    """Rows ``[start, start + rows)`` of the table: ids of other ranks look up zeros, an all-reduce sums."""

    def __init__(self, weight: torch.Tensor, start: int, group: dist.ProcessGroup) -> None:
        super().__init__(weight.shape[0], weight.shape[1], _weight=weight)
        self.start = start
        self.group = group

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        local = ids - self.start
        outside = (local < 0) | (local >= self.num_embeddings)
        out = F.embedding(local.masked_fill(outside, 0), self.weight)
        return _all_reduce(out.masked_fill(outside.unsqueeze(-1), 0.0), self.group)


class TensorParallelLM(HybridLM):
    """A ``HybridLM`` whose parameters are this rank's shards (``tensor_parallel`` sets the class)."""

    tp_group: dist.ProcessGroup
    tp_size: int
    tp_mesh: DeviceMesh
    tp_plan: Plan
    elements_read: int | None = None
    """Elements this rank read from the checkpoint (``patternc_torch.launch``); None: not loaded so."""

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        local = super()._head(h).contiguous()
        parts = [torch.empty_like(local) for _ in range(self.tp_size)]
        dist.all_gather(parts, local, group=self.tp_group)
        return torch.cat(parts, dim=-1)

    def _screen(self) -> None:
        return None  # the int8 screen picks among this rank's rows only: the gathered logits decide

    def generate(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``HybridLM.generate`` with the eager decode step: the compiled one (``patternc_torch.compiled``)
        is not checked with the all-reduces inside its regions."""
        kwargs["compile"] = False
        return super().generate(*args, **kwargs)

    def _decode_plan(self) -> tuple[list[StepFn], Callable[[torch.Tensor], torch.Tensor]]:
        """The decode closures, each sharded mixer's step followed by the all-reduce of its output."""
        group = self.tp_group
        steps = []
        for layer in self.backbone.layers:
            block = cast(Block, layer)
            kind = torch_kind(block.symbol)
            inner = kind.step(block.mixer)
            if kind.step is module_step:  # the step calls the mixer's forward, whose hook reduces
                steps.append(block_step(block, inner))
                continue

            def reduced(
                x: torch.Tensor, state: InferenceState, start: int, rope: Any, inner: StepFn = inner
            ) -> torch.Tensor:
                out = inner(x, state, start, rope)
                dist.all_reduce(out, group=group)
                return out

            steps.append(block_step(block, reduced))
        return steps, norm_step(self.backbone.norm_f)


def _mesh_group(mesh: DeviceMesh) -> tuple[dist.ProcessGroup, int, int]:
    if mesh.ndim != 1:
        raise refuse(
            f"a {mesh.ndim}-dimensional mesh given for one kind of parallelism", help="pass mesh['tp'] (one dimension)"
        )
    group = mesh.get_group()
    return group, dist.get_rank(group), dist.get_world_size(group)


def tensor_parallel(
    model: HybridLM, mesh: DeviceMesh, source: Callable[[str, Split, int], torch.Tensor] | None = None
) -> TensorParallelLM:
    """Shard ``model`` in place over the 1-D ``mesh`` and return it (as a ``TensorParallelLM``).

    ``source(name, split, rank)`` gives a parameter's local slice (``shard_reader`` reads it from a
    checkpoint); by default the slice is cut from the full parameter the model holds.  The same ids on
    every rank give the same logits on every rank (the full vocabulary, gathered)."""
    group, rank, size = _mesh_group(mesh)
    plan = tp_plan(model, rank, size)
    tied = model.spec.tie_embeddings
    with torch.no_grad():
        for name, param in list(model.named_parameters(remove_duplicate=False)):
            split = plan.splits.get(name)
            if split is None or (tied and name == "lm_head.weight"):
                continue
            local = source(name, split, rank) if source is not None else split.take(param.detach(), rank)
            owner, leaf = _owner(model, name)
            setattr(owner, leaf, nn.Parameter(local.to(param.dtype), requires_grad=param.requires_grad))
        for path, values in plan.sizes.items():
            mixer = model.get_submodule(path)
            for attr, value in values.items():
                setattr(mixer, attr, value)
            if isinstance(mixer, Mamba2Mixer | GatedDeltaNet):
                mixer.conv1d.in_channels = mixer.conv1d.out_channels = mixer.conv1d.groups = mixer.conv_dim
            if isinstance(mixer, MoE):
                mixer.experts.intermediate //= size
        for _, block in _blocks(model):
            block.mixer.register_forward_hook(_reduce_output(group))
        table = model.backbone.embeddings.weight
        start = plan.splits["backbone.embeddings.weight"].ranges[0][0]
        model.backbone.embeddings = VocabParallelEmbedding(table, start, group)
        model.tie_weights()
    model.__class__ = TensorParallelLM
    tp = cast(TensorParallelLM, model)
    tp.tp_group, tp.tp_size, tp.tp_mesh, tp.tp_plan = group, size, mesh, plan
    tp._screened = None
    return tp


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def placements(model: TensorParallelLM) -> dict[str, Placement]:
    """Each parameter's DTensor placement over the tensor-parallel mesh."""
    from torch.distributed.tensor import Partial, Replicate, Shard

    out: dict[str, Placement] = {}
    for name, _ in model.named_parameters():
        split = model.tp_plan.splits.get(name, REPLICATE)
        if split.kind in ("shard", "expanded"):
            out[name] = Shard(split.dim)
        else:
            out[name] = Partial() if split.kind == "partial" else Replicate()
    return out


def dtensor_state_dict(model: TensorParallelLM) -> dict[str, DTensor]:
    """The parameters as DTensors over the mesh.  ``full_tensor()`` gives the whole parameter, except for
    those a rank keeps in several ranges (Mamba's ``in_proj``/``conv1d``, a gated expert's ``gate_up_proj``):
    their global layout is rank-major (rank 0's ``z x B C dt``, then rank 1's…), and for key/value heads
    held by several ranks (``expanded``: each head repeated once per rank that holds it)."""
    from torch.distributed.tensor import DTensor

    where = placements(model)
    return {
        name: DTensor.from_local(param.detach(), model.tp_mesh, [where[name]], run_check=False)
        for name, param in model.named_parameters()
    }


# -- FSDP2 ----------------------------------------------------------------------------------------


class FullyShardedLM(HybridLM):
    """A ``HybridLM`` under ``fully_shard``: decoding runs ``forward`` so that FSDP gathers each layer."""

    elements_read: int | None = None
    """Elements this rank read from the checkpoint (``patternc_torch.launch``: its rows of each parameter);
    None: not loaded so."""

    def _can_step(self, state: InferenceState) -> bool:
        return False

    def _screen(self) -> None:
        return None


def fully_sharded(model: HybridLM, mesh: DeviceMesh, *, reshard_after_forward: bool = True) -> FullyShardedLM:
    """``fully_shard`` each main layer and each MTP mixer, then the root (embeddings, final norm, head, the
    MTP fusion), over the 1-D ``mesh``; returns the model (its class derived from ``FullyShardedLM``)."""
    from torch.distributed.fsdp import fully_shard

    if mesh.ndim != 1:
        raise refuse(f"a {mesh.ndim}-dimensional mesh given to FSDP", help="pass mesh['dp'] (one dimension)")
    for path, block in _blocks(model):
        # an MTP layer's fusion norms and projection run outside its forward (``HybridLM._mtp``): they
        # stay with the root, whose forward gathers them; its mixer is a unit of its own
        unit = block.mixer if path.startswith("mtp.") else block
        fully_shard(unit, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard_after_forward)
    # fully_shard swaps the class for FSDP<HybridLM>; derive that from FullyShardedLM instead
    fsdp_class = type(model)
    model.__class__ = type(fsdp_class.__name__, (fsdp_class, FullyShardedLM), {})
    return cast(FullyShardedLM, model)


# -- measures -------------------------------------------------------------------------------------


def resident_bytes(module: nn.Module) -> int:
    """Bytes of this rank's parameters (a DTensor counts its local shard, a tied tensor once)."""
    seen: set[int] = set()
    total = 0
    for param in module.parameters():
        local = param.to_local() if hasattr(param, "to_local") else param
        key = local.untyped_storage().data_ptr()
        if key in seen:
            continue
        seen.add(key)
        total += local.numel() * local.element_size()
    return total


def problems(model: HybridLM, size: int) -> list[Diagnostic]:
    """The ``P420`` diagnostics ``tensor_parallel`` would raise for ``size`` ranks (rank 0's view)."""
    try:
        tp_plan(model, 0, size)
    except PatternError as error:
        return list(error.diagnostics)
    return []
