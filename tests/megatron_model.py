"""Megatron-Core 0.19.2's ``HybridModel``, built on the CPU from the arguments `build --target megatron` writes.

Import it through ``pytest.importorskip("tests.megatron_model")``: it raises ImportError (so the
test skips) where megatron-core, triton or einops is missing.  The arguments go through Megatron's
own ``parse_args`` / ``validate_args`` / ``hybrid_config_from_args`` (``tests/megatron_oracle.py``),
and Megatron's own ``HybridModelBuilder.build_model`` builds the model from the resulting
``HybridModelConfig``.  What it takes on a CPU-only torch, each point read from megatron-core 0.19.2
(also in ``docs/backends/megatron.md``):

- **The layer spec.** ``--spec`` names ``hybrid_layer_specs.hybrid_stack_spec``, whose layers are
  Transformer Engine modules (``TELayerNormColumnParallelLinear``, ``TERowParallelLinear``,
  ``TENorm``, ``TEDotProductAttention``, ``TEGroupedMLP``): without TE each raises ``ImportError:
  Transformer Engine is not installed``.  Megatron ships a local twin,
  ``post_training/modelopt/hybrid/model_specs._get_hybrid_stack_local_spec`` (its local
  ``ColumnParallelLinear`` / ``RowParallelLinear``, ``DotProductAttention``, ``SequentialMLP``
  experts, ``MambaMixer``, the MTP block); its one TE module is the norm (``modelopt.layers.Norm``
  builds ``te.pytorch.RMSNorm``), replaced here by ``WrappedTorchNorm``, the norm Megatron's own
  ``LocalSpecProvider.layer_norm(rms_norm=True)`` picks.  ``remap_te_layernorm=True`` keeps the
  checkpoint keys of the TE spec (``norm.`` -> ``mixer.in_proj.layer_norm_`` and so on).
- **Run settings** (``CPU_RUN_FLAGS``, no parameter depends on them): ``--use-cpu-initialization``;
  ``--no-persist-layer-norm`` (``WrappedTorchNorm`` asserts it); ``--no-gradient-accumulation-fusion``
  (a CUDA kernel of the linears' backward).
- **RNG tracker.** ``MambaMixer`` initialises under ``get_cuda_rng_tracker().fork()``, which needs a
  CUDA RNG state; Megatron's own inference tracker (``initialize_rng_tracker(inference_rng_tracker=True)``)
  forks to a no-op.
- **Stand-ins while building** (``cpu_build``), because Megatron hard-codes CUDA or TE there:
  ``torch.cuda.current_device()`` answers the CPU (``MambaMixer`` allocates ``conv1d_weight``,
  ``conv1d_bias``, ``dt_bias``, ``A_log``, ``D`` and its norm on it, and the MoE ``TopKRouter`` its
  ``expert_bias`` buffers, whatever ``use_cpu_initialization`` says; a CPU torch raises
  ``AssertionError: Torch not compiled with CUDA enabled``); ``HybridStack``'s final norm is a
  hard-coded ``TENorm`` (not in the spec), built as ``WrappedTorchNorm``; ``MambaMixer.__init__``
  raises ``ImportError: MambaSSM is not installed`` without ``mamba_ssm`` (CUDA-only: its kernels are
  Triton and CUDA extensions), and its gated norm ``ExtendedRMSNorm`` subclasses ``mamba_ssm``'s
  Triton ``RMSNormGated``: ``GatedRMSNorm`` below has that class's constructor, parameter and
  function in torch.  Every other parameter name and shape is Megatron's own code's.
- **Pipeline stages** (``pp > 1``) are built one at a time in this one process: Megatron's own
  test hooks ``parallel_state.set_pipeline_model_parallel_rank`` / ``..._world_size`` set the stage,
  and the model's pipeline group is a ``StageGroup`` that answers that rank and size
  (``select_pipeline_segment`` and ``is_pp_first_stage`` only ask).  The one communication of a
  build, the all-reduce that copies the first stage's embedding into the last stage's replica (a
  tied head, or the MTP block's embedding), is skipped: the replica keeps its zeros.

``hf_sources`` is the name table: each Megatron tensor and the transformers (patternc torch
backend) tensors it holds; ``to_megatron`` converts a transformers state_dict through it.  The
forward pass (``logits``) runs Megatron's own modules on the CPU but for mamba_ssm's scan kernel,
answered by ``chunk_scan_reference`` on Megatron's non-fused Mamba path (``FORWARD_RUN_FLAGS``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import einops  # noqa: F401  (MambaMixer refuses to build without it: ImportError here skips)

from tests import megatron_oracle as oracle

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch
    from megatron.core import parallel_state
    from megatron.core.models.common.language_module.language_module import LanguageModule
    from megatron.core.models.hybrid import hybrid_block
    from megatron.core.models.hybrid.hybrid_model import HybridModel
    from megatron.core.post_training.modelopt.hybrid import model_specs
    from megatron.core.post_training.modelopt.layers import Norm
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.ssm import mamba_mixer
    from megatron.core.tensor_parallel import random as tp_random
    from megatron.core.transformer.spec_utils import ModuleSpec
    from megatron.core.transformer.torch_norm import WrappedTorchNorm
    from megatron.training.models.hybrid import HybridModelBuilder

CPU_RUN_FLAGS = ["--use-cpu-initialization", "--no-persist-layer-norm", "--no-gradient-accumulation-fusion"]
"""Run settings a CPU build needs beside the written arguments; no parameter depends on them."""


class GatedRMSNorm(torch.nn.Module):
    """``mamba_ssm.ops.triton.layernorm_gated.RMSNorm`` (the base of Megatron's ``ExtendedRMSNorm``) in torch.

    Same constructor and parameter (``weight`` of ``hidden_size``, no bias); the function is
    mamba_ssm's reference ``rms_norm_ref`` with ``norm_before_gate=False`` (the only value
    ``MambaMixer`` accepts): ``rmsnorm(x * silu(z))`` over groups of ``group_size`` channels.
    """

    def __init__(
        self,
        hidden_size: int,
        eps: float = 1e-5,
        group_size: int | None = None,
        norm_before_gate: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.eps, self.group_size, self.norm_before_gate = eps, group_size or hidden_size, norm_before_gate
        self.weight = torch.nn.Parameter(torch.ones(hidden_size, device=device, dtype=dtype))
        self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        assert not self.norm_before_gate
        dtype = x.dtype
        x = x.float()
        if z is not None:
            x = x * torch.nn.functional.silu(z.float())
        grouped = x.reshape(*x.shape[:-1], -1, self.group_size)
        grouped = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return (grouped.reshape(x.shape) * self.weight.float()).to(dtype)


def _swap_norm(obj: Any) -> Any:
    """``obj`` (a spec tree) with every ``modelopt.layers.Norm`` (TE) replaced by ``WrappedTorchNorm``."""
    if obj is Norm:
        return WrappedTorchNorm
    if isinstance(obj, ModuleSpec):
        return dataclasses.replace(obj, submodules=_swap_norm(obj.submodules))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _swap_norm(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **fields)
    if isinstance(obj, list):
        return [_swap_norm(item) for item in obj]
    if isinstance(obj, functools.partial):
        return functools.partial(obj.func, *obj.args, **{k: _swap_norm(v) for k, v in obj.keywords.items()})
    return obj


def cpu_stack_spec() -> ModuleSpec:
    """Megatron's local hybrid stack spec, TE-compatible checkpoint keys, torch norms."""
    spec = model_specs._get_hybrid_stack_local_spec(local_core_attention=True, remap_te_layernorm=True)
    swapped: ModuleSpec = _swap_norm(spec)
    return swapped


def init_parallel_state() -> None:
    """torch.distributed (gloo, world size 1) and Megatron's parallel state, once per process."""
    if not torch.distributed.is_initialized():
        # a file store, not TCP: no port to find free on a machine shared with other test runs
        store = Path(tempfile.mkdtemp(prefix="patternc-megatron-")) / "store"
        torch.distributed.init_process_group("gloo", init_method=store.as_uri(), rank=0, world_size=1)
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(1, 1)
    tp_random.initialize_rng_tracker(inference_rng_tracker=True, force_reset=True)


def teardown_parallel_state() -> None:
    """Undo ``init_parallel_state``: other tests in the session may start torch.distributed themselves."""
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class StageGroup:
    """The pipeline group of one stage, as the build asks it: its rank and size."""

    def __init__(self, rank: int, size: int) -> None:
        self._rank, self._size = rank, size

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size


@contextlib.contextmanager
def _stage(group: StageGroup) -> Iterator[None]:
    get_rank, get_world_size = torch.distributed.get_rank, torch.distributed.get_world_size

    def rank(group_: Any = None) -> int:
        return group_.rank() if isinstance(group_, StageGroup) else get_rank(group_)

    def world_size(group_: Any = None) -> int:
        return group_.size() if isinstance(group_, StageGroup) else get_world_size(group_)

    parallel_state.set_pipeline_model_parallel_rank(group.rank())
    parallel_state.set_pipeline_model_parallel_world_size(group.size())
    try:
        with (
            mock.patch.object(torch.distributed, "get_rank", rank),
            mock.patch.object(torch.distributed, "get_world_size", world_size),
            # the first <-> last stage all-reduce of the embedding (tied head, MTP) needs both stages
            mock.patch.object(LanguageModule, "_is_in_embd_group", lambda self: False),
        ):
            yield
    finally:
        parallel_state.set_pipeline_model_parallel_rank(None)
        parallel_state.set_pipeline_model_parallel_world_size(None)


@contextlib.contextmanager
def cpu_build(device: str = "cpu") -> Iterator[None]:
    """The stand-ins of the module docstring, for the duration of a build on ``device`` (cpu or meta)."""
    with (
        torch.device(device),
        mock.patch.object(torch.cuda, "current_device", lambda: torch.device(device)),
        mock.patch.object(hybrid_block, "TENorm", WrappedTorchNorm),
        mock.patch.object(mamba_mixer, "HAVE_MAMBA_SSM", True),
        mock.patch.object(mamba_mixer, "ExtendedRMSNorm", GatedRMSNorm),
    ):
        yield


@dataclasses.dataclass
class Stage:
    model: HybridModel
    layer_offset: int
    """The global index of this stage's first decoder layer."""


META_RUN_FLAGS = ["--init-model-with-meta-device", "--no-persist-layer-norm", "--no-gradient-accumulation-fusion"]
"""A build on the meta device, as Megatron's ``get_model`` does it (``with torch.device('meta')``): shapes
without memory, for published configs at full size."""


def build(argv: list[str], pp_rank: int = 0, *, meta: bool = False) -> Stage:
    """Megatron's HybridModel for pipeline rank ``pp_rank`` from ``argv`` (`build --target megatron`'s).

    ``meta``: on the meta device (``META_RUN_FLAGS``), else on the CPU (``CPU_RUN_FLAGS``).
    """
    init_parallel_state()
    args, config = oracle.validate([*argv, *(META_RUN_FLAGS if meta else CPU_RUN_FLAGS)])
    config.hybrid_stack_spec = cpu_stack_spec()
    pg = ProcessGroupCollection.use_mpu_process_groups()
    pp = args.pipeline_model_parallel_size
    stage = contextlib.nullcontext() if pp == 1 else _stage(StageGroup(pp_rank, pp))
    if pp > 1:
        pg.pp = StageGroup(pp_rank, pp)
    with warnings.catch_warnings(), cpu_build("meta" if meta else "cpu"), stage:
        warnings.simplefilter("ignore")
        model = HybridModelBuilder(config).build_model(pg)
    layers = model.decoder.layers
    offset = layers[0].layer_number - 1 if len(layers) else 0
    return Stage(model, offset)


def stored_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint of ``model`` holds: its state_dict less TE's ``_extra_state`` (None for local layers)."""
    return {k: v for k, v in model.state_dict().items() if not k.endswith("._extra_state")}


def is_replica(model: HybridModel, name: str) -> bool:
    """True for the last stage's copy of the first stage's embedding (``pp > 1`` with MTP or a tied head).

    Megatron marks it ``shared_embedding`` and keeps it equal to the first stage's through an
    all-reduce; a checkpoint stores the tensor once.
    """
    if model.pre_process or not (model.post_process or getattr(model, "mtp_process", False)):
        return False
    shared = model.shared_embedding_or_output_weight()
    parameter = dict(model.named_parameters()).get(name)
    return parameter is shared and bool(getattr(shared, "shared_embedding", False))


# -- the name table ------------------------------------------------------------------------------

_LAYER: dict[str, tuple[str, ...]] = {
    # Mamba layer: MambaLayer.norm + MambaMixer (in_proj packs [z, x, B, C, dt], as transformers' does)
    "norm.weight": ("norm.weight",),
    "mixer.in_proj.weight": ("mixer.in_proj.weight",),
    "mixer.conv1d_weight": ("mixer.conv1d.weight",),
    "mixer.conv1d_bias": ("mixer.conv1d.bias",),
    "mixer.dt_bias": ("mixer.dt_bias",),
    "mixer.A_log": ("mixer.A_log",),
    "mixer.D": ("mixer.D",),
    "mixer.norm.weight": ("mixer.norm.weight",),
    "mixer.out_proj.weight": ("mixer.out_proj.weight",),
    # attention layer: q, k, v fused, interleaved per query group ([q_g, k_g, v_g] for each group g)
    "input_layernorm.weight": ("norm.weight",),
    "self_attention.linear_qkv.weight": ("mixer.q_proj.weight", "mixer.k_proj.weight", "mixer.v_proj.weight"),
    "self_attention.linear_qkv.bias": ("mixer.q_proj.bias", "mixer.k_proj.bias", "mixer.v_proj.bias"),
    "self_attention.linear_proj.weight": ("mixer.o_proj.weight",),
    # MLP and MoE layers: the pre-norm is the layer's norm
    "pre_mlp_layernorm.weight": ("norm.weight",),
    "mlp.linear_fc2.weight": ("mixer.down_proj.weight",),
    "mlp.router.weight": ("mixer.gate.weight",),
    "mlp.router.expert_bias": ("mixer.gate.e_score_correction_bias",),
    "mlp.shared_experts.linear_fc1.weight": ("mixer.shared_experts.up_proj.weight",),
    "mlp.shared_experts.linear_fc2.weight": ("mixer.shared_experts.down_proj.weight",),
}
"""Megatron's name inside one layer (local spec) -> the transformers names it holds, concatenated on dim 0."""

_EXPERT = re.compile(r"mlp\.experts\.local_experts\.(\d+)\.linear_fc([12])\.weight")
_DECODER = re.compile(r"decoder\.layers\.(\d+)\.(.+)")
_MTP_LAYER = re.compile(r"mtp\.layers\.(\d+)\.mtp_model_layer\.layers\.(\d+)\.(.+)")
_MTP_OWN = re.compile(r"mtp\.layers\.(\d+)\.(enorm|hnorm|eh_proj|final_layernorm)\.weight")
_TOP = {
    "embedding.word_embeddings.weight": "backbone.embeddings.weight",
    "decoder.final_norm.weight": "backbone.norm_f.weight",
    "output_layer.weight": "lm_head.weight",
}

Source = tuple[str, int | None]
"""A transformers tensor name, and the expert index when the Megatron tensor is one slice of it."""


def _layer_sources(prefix: str, suffix: str, gated_mlp: bool) -> list[Source]:
    if suffix == "mlp.linear_fc1.weight":  # dense MLP: [gate; up] when gated
        names = ("mixer.gate_proj.weight", "mixer.up_proj.weight") if gated_mlp else ("mixer.up_proj.weight",)
        return [(prefix + n, None) for n in names]
    expert = _EXPERT.fullmatch(suffix)
    if expert:  # SequentialMLP's expert k is slice k of transformers' stacked expert tensor
        which = "up_proj" if expert.group(2) == "1" else "down_proj"
        return [(f"{prefix}mixer.experts.{which}", int(expert.group(1)))]
    if suffix not in _LAYER:
        raise KeyError(f"no transformers name for Megatron's layer tensor {suffix!r}")
    return [(prefix + n, None) for n in _LAYER[suffix]]


def hf_sources(name: str, layer_offset: int, mtp_layers: int, *, gated_mlp: bool = False) -> list[Source]:
    """The transformers tensors that Megatron's tensor ``name`` holds (KeyError for a name not in the table).

    ``layer_offset`` is the stage's first global layer (Megatron numbers each stage's layers from
    0); ``mtp_layers`` the layers of one MTP depth (transformers numbers the MTP layers of all
    depths in one sequence: depth ``d`` layer ``j`` is ``mtp.layers.{d * mtp_layers + j}``, with
    ``enorm`` / ``hnorm`` / ``eh_proj`` on its first layer and ``final_layernorm`` on its last).
    """
    if name in _TOP:
        return [(_TOP[name], None)]
    if match := _DECODER.fullmatch(name):
        return _layer_sources(f"backbone.layers.{layer_offset + int(match.group(1))}.", match.group(2), gated_mlp)
    if match := _MTP_LAYER.fullmatch(name):
        index = int(match.group(1)) * mtp_layers + int(match.group(2))
        return _layer_sources(f"mtp.layers.{index}.", match.group(3), gated_mlp)
    if match := _MTP_OWN.fullmatch(name):
        depth, what = int(match.group(1)), match.group(2)
        index = depth * mtp_layers + (mtp_layers - 1 if what == "final_layernorm" else 0)
        return [(f"mtp.layers.{index}.{what}.weight", None)]
    raise KeyError(f"no transformers name for Megatron's tensor {name!r}")


_TE_NAMES = {
    "mixer.in_proj.layer_norm_weight": "norm.weight",
    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
    "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
}
"""Megatron's TE spec fuses each layer's pre-norm into its first linear; the local spec's name for it."""


def te_to_local(te_name: str) -> str:
    """The local spec's name of a tensor of the TE spec (``hybrid_stack_spec``, the one the arguments name)."""
    for te, local in _TE_NAMES.items():
        if te_name.endswith("." + te):
            return te_name[: -len(te)] + local
    head, sep, tail = te_name.rpartition(".mlp.experts.")
    # TEGroupedMLP: linear_fc1.weight{k} -> local_experts.{k}.linear_fc1.weight
    if sep and tail.startswith("linear_fc"):
        fc, _, rest = tail.partition(".weight")
        return f"{head}.mlp.experts.local_experts.{rest}.{fc}.weight"
    return te_name


# -- weights and the forward pass ----------------------------------------------------------------


def to_megatron(
    hf: dict[str, torch.Tensor],
    stage: Stage,
    mtp_layers: int,
    *,
    heads: int,
    kv_heads: int,
    gated_mlp: bool,
    local_name: Callable[[str], str] = str,
) -> dict[str, torch.Tensor]:
    """Megatron's tensors of ``stage`` from a transformers state_dict, through ``hf_sources``.

    One source is copied (an expert's slice taken); ``linear_qkv`` interleaves the query heads of
    each query group with that group's key and value head (Megatron splits its output per group:
    ``[ng, (np / ng + 2) * hn]``); other fused tensors (``[gate; up]``) are concatenated on dim 0.
    ``local_name`` gives the name table's (local spec) name of a model tensor: ``te_to_local`` for a
    model built from the TE spec.
    """
    out: dict[str, torch.Tensor] = {}
    for name in stored_tensors(stage.model):
        if is_replica(stage.model, name):
            out[name] = hf["backbone.embeddings.weight"]
            continue
        sources = hf_sources(local_name(name), stage.layer_offset, mtp_layers, gated_mlp=gated_mlp)
        parts = [hf[source] if expert is None else hf[source][expert] for source, expert in sources]
        if ".linear_qkv." in name:
            q, k, v = parts
            rest = q.shape[1:]
            q = q.reshape(kv_heads, heads // kv_heads, -1, *rest)
            k, v = k.reshape(kv_heads, 1, -1, *rest), v.reshape(kv_heads, 1, -1, *rest)
            out[name] = torch.cat([q, k, v], dim=1).reshape(-1, *rest)
        else:
            out[name] = torch.cat(parts) if len(parts) > 1 else parts[0]
    return out


def load(stage: Stage, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` into the stage's model; every stored tensor exactly, shapes equal."""
    state = stored_tensors(stage.model)
    assert set(tensors) == set(state), set(tensors) ^ set(state)
    with torch.no_grad():
        for name, tensor in tensors.items():
            assert state[name].shape == tensor.shape, name
            state[name].copy_(tensor.to(state[name].device))


def chunk_scan_reference(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = (0.0, float("inf")),
    return_final_states: bool = False,
    initial_states: torch.Tensor | None = None,
    **unused: Any,
) -> torch.Tensor:
    """mamba_ssm's ``mamba_chunk_scan_combined`` (a Triton kernel) as a plain recurrence, one position at a time.

    x (b, l, h, p), dt (b, l, h), A (h,), B and C (b, l, g, n), D (h,): for each position t,
    ``dt = softplus(dt + dt_bias)`` clamped to ``dt_limit``; ``state = exp(dt * A) * state +
    dt * x ⊗ B``; ``y = state · C + D * x`` (heads share their group's B and C); ``y * silu(z)``
    when ``z`` is given.  The chunking changes only the order of the sums, not the function.
    """
    assert initial_states is None and not return_final_states and not unused.get("seq_idx")
    b, length, heads, _ = x.shape
    per_group = heads // B.shape[2]
    dt = dt.float() + (dt_bias.float() if dt_bias is not None else 0.0)
    dt = torch.nn.functional.softplus(dt) if dt_softplus else dt
    dt = dt.clamp(min=dt_limit[0], max=dt_limit[1])
    Bh = B.float().repeat_interleave(per_group, dim=2)  # (b, l, h, n)
    Ch = C.float().repeat_interleave(per_group, dim=2)
    state = x.new_zeros(b, heads, x.shape[3], B.shape[3], dtype=torch.float32)
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A.float())  # (b, h)
        state = state * decay[..., None, None] + (dt[:, t, :, None] * x[:, t].float())[..., None] * Bh[:, t, :, None]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, t]))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + x.float() * (D.float()[:, None] if D.dim() == 1 else D.float())
    if z is not None:
        y = y * torch.nn.functional.silu(z.float())
    return y.to(x.dtype)


FORWARD_RUN_FLAGS = ["--disable-mamba-mem-eff-path"]
"""Megatron's other Mamba path (``_ssm_prefill``, the one its inference takes): its convolution has a
torch fallback (``causal_conv1d_fn is None``) and its scan is one ``mamba_chunk_scan_combined`` call.
The default training path is one fused mamba_ssm kernel (``mamba_split_conv1d_scan_combined``)."""


@contextlib.contextmanager
def cpu_forward() -> Iterator[None]:
    """Megatron's forward on the CPU: mamba_ssm's scan kernel answered by ``chunk_scan_reference``, and
    ``torch.cuda.current_device()`` by the CPU (``DotProductAttention`` takes its score buffer from
    Megatron's global memory buffer, allocated there)."""
    with (
        mock.patch.object(mamba_mixer, "mamba_chunk_scan_combined", chunk_scan_reference),
        mock.patch.object(torch.cuda, "current_device", lambda: torch.device("cpu")),
    ):
        yield


def logits(stages: list[Stage], input_ids: torch.Tensor) -> torch.Tensor:
    """Megatron's logits (batch, seq, vocab) for ``input_ids`` (batch, seq), causal, no labels.

    Pipeline stages run in order, each stage's output (hidden states, seq-first) set as the next
    one's input tensor, as Megatron's pipeline schedule does between ranks.  On a CUDA device,
    Megatron's own kernels run (no stand-in).
    """
    b, s = input_ids.shape
    device = input_ids.device
    positions = torch.arange(s, device=device).expand(b, s)
    mask = torch.ones(s, s, dtype=torch.bool, device=device).triu(1)[None, None]  # True: masked out
    out: torch.Tensor | None = None
    with torch.no_grad(), cpu_forward() if device.type == "cpu" else contextlib.nullcontext():
        for stage in stages:
            stage.model.eval()
            if out is not None:
                stage.model.set_input_tensor(out)
            out = stage.model(input_ids if stage.model.pre_process else None, positions, mask)
    assert out is not None
    return out


# -- torch_dist checkpoints -----------------------------------------------------------------------

TORCH_DIST_METADATA = {
    "sharded_backend": "torch_dist",
    "sharded_backend_version": 1,
    "common_backend": "torch",
    "common_backend_version": 1,
}
"""``metadata.json`` of a Megatron-Core ``torch_dist`` checkpoint directory (``dist_checkpointing.save``)."""


def checkpoint_tensors(stage: Stage) -> dict[str, torch.Tensor]:
    """The tensors a ``torch_dist`` checkpoint of ``stage`` holds, by checkpoint key, each whole (tp = 1).

    Read from Megatron's own ``sharded_state_dict()`` with its factories applied: the TE spec's
    keys (the local spec remaps its norms), ``in_proj.weight`` split into ``.z .x .B .C .dt``,
    ``conv1d.{weight,bias}`` into ``.x .B .C``, each layer's experts stacked on a leading axis
    (``mlp.experts.experts.linear_fc1.weight``, (experts, ffn, hidden)).  TE's ``_extra_state``
    objects are left out: the local spec has none to write.
    """
    from megatron.core.dist_checkpointing.dict_utils import nested_values
    from megatron.core.dist_checkpointing.mapping import ShardedTensor, apply_factories

    with cpu_build():
        sharded = stage.model.sharded_state_dict()
    apply_factories(sharded)
    out: dict[str, torch.Tensor] = {}
    for item in nested_values(sharded):
        if not isinstance(item, ShardedTensor):
            continue
        whole = out.setdefault(item.key, torch.zeros(item.global_shape, dtype=item.data.dtype))
        n = item.prepend_axis_num  # leading axes the local tensor does not have (the expert index)
        index = tuple(slice(o, o + 1) for o in item.global_offset[:n]) + tuple(
            slice(o, o + size) for o, size in zip(item.global_offset[n:], item.data.shape, strict=True)
        )
        whole[index] = item.data.detach().reshape(whole[index].shape)
    return out


def write_torch_dist(tensors: dict[str, torch.Tensor], directory: Path) -> None:
    """A ``torch_dist`` checkpoint written by torch's own ``torch.distributed.checkpoint.save`` (no Megatron
    code), plus the ``metadata.json`` and (empty) ``common.pt`` Megatron's loader reads beside it."""
    import json

    import torch.distributed.checkpoint as dcp

    dcp.save(tensors, checkpoint_id=str(directory))
    (directory / "metadata.json").write_text(json.dumps(TORCH_DIST_METADATA), encoding="utf-8")
    torch.save({}, directory / "common.pt")


def load_torch_dist(stage: Stage, directory: Path) -> None:
    """Megatron-Core's ``dist_checkpointing.load`` of ``directory`` into ``stage``'s model.

    ``StrictHandling.LOG_ALL``: the checkpoint has no ``_extra_state`` objects (see
    ``checkpoint_tensors``), which Megatron then only logs; a tensor the checkpoint lacks is left out
    of what the load returns, and the assertion below names it.
    """
    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing.validation import StrictHandling

    with cpu_build():
        loaded = dist_checkpointing.load(
            stage.model.sharded_state_dict(), str(directory), strict=StrictHandling.LOG_ALL
        )
    result = stage.model.load_state_dict(loaded, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("._extra_state")]
    assert not missing and not result.unexpected_keys, (missing, result.unexpected_keys)
