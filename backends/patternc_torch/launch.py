"""Launching a model sharded: ``torchrun --nproc-per-node N -m patternc run MODEL --tp N`` (or ``--pp N``,
``--fsdp``), and ``patternc.torch_model(..., mesh=DeviceMesh)``.

Each rank reads only its share of a checkpoint when the plan allows it: under ``--tp`` a sharded
parameter is read as the slices its plan keeps (safetensors' ``get_slice``, through the checkpoint
files ``patternc_checkpoint`` opened and checked), under ``--pp`` only the stage's layers (and the
embeddings or head of the first or last stage; the last also reads the MTP block and a replica of the
embedding table for it: ``pipeline.keeps``) are read, under ``--fsdp`` the rank's rows of every
parameter (``Shard(0)``, filled into the meta-built FSDP2 model).  A checkpoint whose names need
converting (a hub layout: stacked experts, renamed layers) is read whole and then sharded.
Every misuse is a ``P420`` (the model cannot be split so) or ``P421`` (the launch is wrong) diagnostic.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.distributed as dist
from torch import nn

from patternc.backends import Parallel
from patternc.diagnostics import PatternError, diag
from patternc.model import ModelSpec
from patternc.source import Source
from patternc_torch import io
from patternc_torch.arguments import model_device
from patternc_torch.distributed import (
    Split,
    fully_sharded,
    refuse,
    tensor_parallel,
    tp_plan,
)
from patternc_torch.model import HybridLM
from patternc_torch.pipeline import PipelinedLM, keeps, pipeline_stages
from patternc_torch.weights import open_weights, paired_names, stand_ins, to_backend_names, unusable_dtypes

if TYPE_CHECKING:
    from patternc_checkpoint import Checkpoint
    from torch.distributed.device_mesh import DeviceMesh

LAUNCH_CODE = "P421"

KINDS = {"tp": "tensor parallel", "pp": "pipeline parallel", "dp": "FSDP2", "fsdp": "FSDP2"}
"""The mesh dimension names ``torch_model(mesh=...)`` understands (an unnamed 1-D mesh is ``tp``)."""


def misuse(message: str, *, help: str | None = None) -> PatternError:
    return PatternError([diag(LAUNCH_CODE, message, None, help=help)], Source("", "<launch>"))


def requested(parallel: Parallel | None) -> bool:
    return parallel is not None and (parallel.tp > 1 or parallel.pp > 1 or parallel.fsdp)


def check_options(parallel: Parallel) -> str:
    """The one kind of parallelism asked for (``tp``, ``pp`` or ``dp``); P421 for bad or combined options."""
    if parallel.tp < 1 or parallel.pp < 1:
        raise misuse(f"--tp {parallel.tp} --pp {parallel.pp}: the sizes count ranks, 1 or more")
    asked = [name for name, on in (("tp", parallel.tp > 1), ("pp", parallel.pp > 1), ("dp", parallel.fsdp)) if on]
    if len(asked) > 1:
        raise misuse(
            "--tp, --pp and --fsdp are not combined yet: " + " and ".join(f"`{KINDS[a]}`" for a in asked),
            help="run one of them (docs/backends/distributed.md lists the limits)",
        )
    return asked[0] if asked else "tp"


def world_from_env() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) that ``torchrun`` sets, or None outside a launch."""
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        return None
    return rank, world, local


def start(parallel: Parallel, kind: str, device: str) -> tuple[DeviceMesh, str]:
    """The process group and the 1-D mesh of this launch (``device``: this rank's device then)."""
    from torch.distributed.device_mesh import init_device_mesh

    flag = {"tp": f"--tp {parallel.tp}", "pp": f"--pp {parallel.pp}", "dp": "--fsdp"}[kind]
    env = world_from_env()
    if env is None:
        ranks = parallel.tp * parallel.pp if kind != "dp" else 2
        raise misuse(
            f"`run {flag}` starts no processes itself: it runs inside a distributed launch",
            help=f"torchrun --nproc-per-node {ranks} -m patternc run MODEL {flag} …",
        )
    rank, world, local = env
    want = {"tp": parallel.tp, "pp": parallel.pp, "dp": world}[kind]
    if world != want:
        raise misuse(
            f"{flag} needs {want} processes, the launch has {world}",
            help=f"torchrun --nproc-per-node {want} -m patternc run MODEL {flag} …",
        )
    target = model_device(device) or torch.device("cpu")
    if target.type == "cuda":
        if torch.cuda.device_count() <= local:
            raise misuse(f"rank {rank} wants cuda:{local}, this machine has {torch.cuda.device_count()} GPU(s)")
        target = torch.device("cuda", local)
        torch.cuda.set_device(target)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
        # torn down before the interpreter exits: a live gloo group's threads at exit abort the
        # process ("terminate called without an active exception"), seen in CI on `patternc run --tp 2`
        atexit.register(dist.destroy_process_group)
    mesh = init_device_mesh(target.type, (world,), mesh_dim_names=(kind,))
    return mesh, str(target)


def mesh_kind(mesh: DeviceMesh) -> str:
    if mesh.ndim != 1:
        raise refuse(
            f"a {mesh.ndim}-dimensional mesh: one kind of parallelism at a time (tensor, pipeline or FSDP2)",
            help="pass a 1-D mesh named `tp`, `pp` or `dp`",
        )
    names = mesh.mesh_dim_names
    name = names[0] if names else "tp"
    if name not in KINDS:
        raise refuse(f"a mesh dimension named `{name}`", help="name it `tp`, `pp` or `dp` (FSDP2)")
    return "dp" if name == "fsdp" else name


# -- loading -----------------------------------------------------------------------------------------


@dataclass
class _Weights:
    """A checkpoint whose tensor names are the backend's, read piece by piece."""

    checkpoint: Checkpoint
    directory: Path
    elements: int = 0
    """Elements read so far (this rank's share of the checkpoint: what the tests measure)."""

    def read(self, name: str, split: Split | None = None) -> torch.Tensor:
        tensor = self._read(name, split)
        self.elements += tensor.numel()
        return tensor

    def _read(self, name: str, split: Split | None) -> torch.Tensor:
        from safetensors import safe_open

        info = self.checkpoint.tensors[name]
        try:
            with safe_open(str(info.file), framework="pt") as handle:
                if split is None or split.kind == "replicate":
                    return handle.get_tensor(name)
                if split.kind == "partial":
                    full = handle.get_tensor(name)
                    return full if dist.get_rank() == 0 else torch.zeros_like(full)
                piece = handle.get_slice(name)
                parts = []
                for a, b in split.ranges:
                    index = tuple([slice(None)] * split.dim + [slice(a, b)])
                    parts.append(piece[index])
                return torch.cat(parts, dim=split.dim)
        except Exception as error:  # a file changed or truncated after its header was checked
            raise PatternError(
                [diag("P510", f"cannot read `{name}` in `{self.directory}`: {error}", None)],
                Source("", str(self.directory)),
            ) from None


def _direct_weights(source: ModelSpec | str | Path | dict[str, Any], model: HybridLM) -> _Weights | None:
    """The checkpoint beside ``source`` when its names are the backend's (checked strictly), else None."""
    spec = model.spec
    _, directory = io.read_spec(source)
    if directory is None:
        return None
    given_directory = isinstance(source, str | os.PathLike) and Path(source).is_dir()
    checkpoint = open_weights(directory, scan=given_directory)
    if checkpoint is None:
        return None
    stand = stand_ins(checkpoint)
    renamed = to_backend_names(stand, spec, paired=paired_names(checkpoint.tensors))
    if set(renamed) != set(stand):
        return None
    io.check_layout(model, renamed, str(directory), unusable_dtypes(checkpoint))
    return _Weights(checkpoint, directory)


def _materialize(model: nn.Module, weights: _Weights | None, keep: Callable[[str], bool], device: torch.device) -> None:
    """Give every parameter and buffer still on the meta device whose name ``keep`` accepts its values:
    from ``weights`` (whole), buffers that a checkpoint does not hold from ``reset_buffers``."""
    with torch.no_grad():
        for name, param in list(model.named_parameters()):
            if param.is_meta and keep(name) and weights is not None:
                owner, leaf = _owner(model, name)
                value = weights.read(name).to(device=device, dtype=param.dtype)
                setattr(owner, leaf, nn.Parameter(value, requires_grad=param.requires_grad))
        for name, buffer in list(model.named_buffers()):
            if buffer.is_meta:
                owner, leaf = _owner(model, name)
                stored = weights is not None and name in weights.checkpoint.tensors
                value = weights.read(name) if weights is not None and stored else torch.zeros(buffer.shape)
                owner._buffers[leaf] = value.to(device=device, dtype=buffer.dtype)
        if isinstance(model, HybridLM):
            model.tie_weights()
            rope = model.rope_inv_freq
            a = model.spec.attention
            if isinstance(rope, torch.Tensor) and a is not None and a.rope is not None:
                from patternc_torch.layers import rope_frequencies

                rope.copy_(rope_frequencies(a.head_dim, a.rope.partial_factor, a.rope.theta).to(device))


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


def _meta_model(source: ModelSpec | str | Path | dict[str, Any], dtype: Any) -> HybridLM:
    spec, _ = io.read_spec(source)
    return io.build(spec, "meta", dtype, init=False)


def parallel_model(
    source: ModelSpec | str | Path | dict[str, Any],
    mesh: DeviceMesh,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
) -> HybridLM | PipelinedLM:
    """``source`` sharded over ``mesh`` (its dimension's name says how: ``tp``, ``pp`` or ``dp``)."""
    kind = mesh_kind(mesh)
    target = model_device(device) or torch.device(mesh.device_type)
    model = _meta_model(source, dtype)
    weights = _direct_weights(source, model)
    if weights is None:  # random weights (the same seed on every rank), or names that need converting
        full = io.torch_model(source, device=target, dtype=dtype)
        if kind == "dp":
            return fully_sharded(full, mesh)
        return tensor_parallel(full, mesh) if kind == "tp" else PipelinedLM(full, mesh)
    if kind == "dp":
        return _sharded_from_rows(model, weights, mesh, target)
    rank = dist.get_rank(mesh.get_group())
    if kind == "tp":
        plan = tp_plan(model, rank, mesh.size())

        def read(name: str, split: Split, rank: int) -> torch.Tensor:
            return weights.read(name, split).to(target)

        sharded = tensor_parallel(model, mesh, source=read)
        _materialize(sharded, weights, lambda name: name not in plan.splits, target)
        sharded.weights_from = str(weights.directory)
        sharded.elements_read = weights.elements
        return sharded
    cuts = pipeline_stages(model.spec, mesh.size())

    def mine(name: str) -> bool:
        return keeps(model.spec, name, rank, mesh.size(), cuts[rank])

    _materialize(model, weights, mine, target)
    model.weights_from = str(weights.directory)
    pipeline = PipelinedLM(model, mesh, device=target)
    pipeline.elements_read = weights.elements
    return pipeline


def _sharded_from_rows(model: HybridLM, weights: _Weights, mesh: DeviceMesh, target: torch.device) -> HybridLM:
    """FSDP2 over ``mesh`` with each rank reading only its rows of every parameter: ``fully_shard`` on the
    meta-device model (every parameter a ``Shard(0)`` DTensor of meta local shards), ``to_empty`` (FSDP
    re-pads its local storage), then each local shard filled from the checkpoint through safetensors'
    ``get_slice``.  The rows a rank holds are ``torch.chunk``'s: ``ceil(rows / N)`` each, the last ranks
    fewer or none; the local shard's own size is checked against that (a change in FSDP's policy is an
    error, not a silent misplacement).  Buffers (not sharded) are computed or read whole."""
    sharded = fully_sharded(model, mesh)
    sharded.to_empty(device=target)
    group = mesh.get_group()
    rank, size = dist.get_rank(group), dist.get_world_size(group)
    with torch.no_grad():
        for name, param in sharded.named_parameters():
            local = cast(Any, param).to_local()
            rows = param.shape[0]
            chunk = -(-rows // size)
            first = min(rows, rank * chunk)
            stop = min(rows, first + chunk)
            if local.shape[0] != stop - first:
                raise RuntimeError(f"`{name}`: FSDP keeps {local.shape[0]} rows on rank {rank}, not {stop - first}")
            if stop > first:
                local.copy_(weights.read(name, Split(0, ((first, stop),))).to(local.dtype))
        sharded.reset_buffers()  # RoPE frequencies computed, router biases zero…
        for name, buffer in sharded.named_buffers():
            if name in weights.checkpoint.tensors:  # …unless the checkpoint holds them
                buffer.copy_(weights.read(name).to(buffer.dtype))
    sharded.weights_from = str(weights.directory)
    sharded.elements_read = weights.elements
    return sharded


def module_model(
    source: ModelSpec | str | Path | dict[str, Any],
    mesh: DeviceMesh,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
) -> HybridLM:
    """``parallel_model`` for a ``tp`` or ``dp`` mesh (``patternc.torch_model(mesh=...)``): one nn.Module."""
    if mesh_kind(mesh) == "pp":
        raise refuse(
            "a `pp` mesh gives one stage per rank, not one module",
            help="use patternc_torch.launch.parallel_model(source, mesh) for the pipeline",
        )
    model = parallel_model(source, mesh, device=device, dtype=dtype)
    assert isinstance(model, HybridLM)
    return model
