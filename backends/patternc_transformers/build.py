"""``patternc build``: a ModelSpec as a transformers model directory (config.json + safetensors).

    result = build_model_dir(spec, "out/", target="auto", weights="ckpt/")
    result.ok, result.diagnostics, result.files, result.architecture

1. The target must express the spec *exactly* (``patternc.canonical.canonical_map``); ``auto``
   is the canonical architecture.  Otherwise: ``P501`` with the reasons, nothing written.
2. The config is ``express_<arch>(spec).config`` (plus the numerics-only and token fields), built
   and saved by transformers' own config class, so ``AutoConfig.from_pretrained`` reads it back;
   the model is instantiated on the meta device to learn the tensor names and shapes.
3. With weights: every target tensor is planned from the checkpoint's headers (names, shapes,
   dtypes) before anything is read; missing (``P505``), unexpected (``P506``) and mis-shaped
   (``P507``) tensors are reported at once.  Then each tensor is read, renamed or reshaped
   (experts stacked, fused projections split or joined) and appended to its shard, one at a time.
4. Everything is written into a temporary directory beside ``out_dir`` and renamed into place;
   ``force`` replaces an existing directory by renaming it aside first.  A failure leaves nothing.
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from patternc_checkpoint import (
    FLOAT_DTYPES,
    INDEX_NAME,
    Checkpoint,
    CheckpointError,
    Entry,
    ShardWriter,
    TensorInfo,
    TensorReader,
    open_checkpoint,
    plan_shards,
    shard_name,
    write_index,
)

from patternc.backends import DEFAULT_MAX_SHARD_SIZE, BuildResult, Progress
from patternc.diagnostics import Diagnostic, diag, has_errors
from patternc.kinds import LayerKind
from patternc.model import ModelSpec
from patternc.outdir import check_out_dir, os_reason, publish, staging
from patternc_transformers import carry, llamacpp
from patternc_transformers.hubnames import HubError, HubForm, hub_forms
from patternc_transformers.layouts import LAYOUTS, WEIGHT_ARCHS, Piece, hub_name, logical_layout
from patternc_transformers.planned import Fetch, Planned, Producer, produce_tensor

if TYPE_CHECKING:
    pass

TOKEN_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id")
"""Copied from the source config when it has them (no math, but a model directory needs them)."""

_TORCH_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}


def _listing(names: list[str], limit: int = 30) -> list[str]:
    shown = names[:limit]
    return shown + ([f"… and {len(names) - limit} more"] if len(names) > limit else [])


# -- target choice -------------------------------------------------------------------------------------


def choose_target(spec: ModelSpec, target: str) -> tuple[str | None, str | None, list[Diagnostic]]:
    """(architecture to write, canonical architecture, diagnostics): refuses anything not exact."""
    from patternc.canonical import canonical_map

    result = canonical_map(spec)
    if target == "auto":
        if result.architecture is not None:
            return result.architecture, result.architecture, []
        # The family the config was read as first: why its own class cannot build it is what its reader
        # needs most, and the capped list must not lose it behind the other candidates' reasons.
        ordered = sorted(result.reasons.items(), key=lambda item: item[0] != spec.source)
        notes = [f"{arch}: {reason}" for arch, reasons in ordered for reason in reasons]
        return (
            None,
            None,
            [
                diag(
                    "P501",
                    "no standard architecture expresses this model exactly",
                    None,
                    notes=_listing(notes, 40),
                    help="patternc can still build it for `--target torch`",
                )
            ],
        )
    if target in result.matched:
        return target, result.architecture, []
    reasons = result.reasons.get(target, [])
    exact = ", ".join(f"`{a}`" for a in result.matched)
    return (
        None,
        result.architecture,
        [
            diag(
                "P501",
                f"`{target}` cannot express this model exactly",
                None,
                notes=_listing(reasons, 40),
                help=f"architectures that express it exactly: {exact}"
                if exact
                else "no standard architecture expresses it exactly; `--target torch` builds it",
            )
        ],
    )


# -- configs and meta models ---------------------------------------------------------------------------


def config_fields(spec: ModelSpec, arch: str, source_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` fields of ``arch`` for the spec (before transformers' defaults fill the rest)."""
    from patternc import families

    fields: dict[str, Any] = dict(families.get(arch).express(spec).config)
    known = families.get(arch).input_model.model_fields  # the family's own spelling of each key
    if spec.mamba is not None and spec.pattern.has(LayerKind.MAMBA2):
        fields["mamba_chunk_size" if "mamba_chunk_size" in known else "chunk_size"] = spec.mamba.chunk_size
    if spec.max_position_embeddings is not None and "max_position_embeddings" in known:
        fields["max_position_embeddings"] = spec.max_position_embeddings
    for key in TOKEN_KEYS:
        value = (source_config or {}).get(key)
        if key in (source_config or {}) and (value is None or isinstance(value, int)):
            fields[key] = value
    return fields


def make_config(arch: str, fields: Mapping[str, Any]) -> Any:
    from transformers import AutoConfig

    from patternc import families

    # the ForCausalLM's own config type where the family's released configs are wrappers (Qwen3.5)
    family = families.find(arch)
    model_type = family.config_model_type if family is not None and family.config_model_type else arch
    with warnings.catch_warnings():
        # a same-family build carries the source's own spellings verbatim (Kimi Linear's `rope_scaling`):
        # transformers' deprecation notice about them is not a diagnostic of the build, and it prints only
        # once per process, which would make the command's output depend on what ran before it
        warnings.simplefilter("ignore", FutureWarning)
        return AutoConfig.for_model(model_type, **dict(fields))


def meta_model(config: Any) -> Any:
    """The model transformers builds from ``config``, on the meta device (no memory, no init)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def tensor_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """The names and shapes ``save_pretrained`` would write: the state dict less tied duplicates."""
    every = dict(model.named_parameters(remove_duplicate=False))
    kept = dict(model.named_parameters())
    tied = set(every) - set(kept)
    return {name: tuple(t.shape) for name, t in model.state_dict().items() if name not in tied}


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


# -- quantized checkpoints -----------------------------------------------------------------------------

QUANT_FILES = ("config.json", "hf_quant_config.json")
"""Where a checkpoint says its weights are quantized: transformers' ``quantization_config`` in its
``config.json``, or the ``hf_quant_config.json`` NVIDIA ModelOpt writes beside NVFP4/FP8 exports."""


def _describe_quantization(block: Any) -> str:
    if not isinstance(block, Mapping):
        return repr(block)
    inner = block.get("quantization", block)  # hf_quant_config.json nests it under "quantization"
    keys = ("quant_method", "quant_algo", "fmt", "format", "bits", "weight_block_size")
    shown = [f"{k} `{inner[k]}`" for k in keys if isinstance(inner, Mapping) and k in inner]
    return ", ".join(shown) or "no method named"


def quantization_problem(weights: Path, source_config: Mapping[str, Any]) -> Diagnostic | None:
    """P508 when the weights are quantized (NVFP4, FP8, GPTQ…): a conversion would copy packed integers
    and drop their scales, or refuse them one by one as P507; say why once, before reading anything.

    The ``config.json`` beside the weights describes them (a dequantized copy may sit beside the
    quantized release's config); without one, the source config does."""
    root = weights if weights.is_dir() else weights.parent
    found: list[str] = []
    if "quantization_config" in source_config and not (root / "config.json").is_file():
        block = source_config["quantization_config"]
        found.append(f"the source config's `quantization_config`: {_describe_quantization(block)}")
    for file_name in QUANT_FILES:
        path = root / file_name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, Mapping):
            continue
        if file_name == "config.json":
            blocks = [data] + [v for v in data.values() if isinstance(v, Mapping)]  # text_config, llm_config
            block = next((b["quantization_config"] for b in blocks if "quantization_config" in b), None)
            if block is not None:
                found.append(f"`{path}` has `quantization_config`: {_describe_quantization(block)}")
        else:
            found.append(f"`{path}`: {_describe_quantization(data)}")
    if not found:
        return None
    return diag(
        "P508",
        "the weights are quantized; patternc converts unquantized floating-point weights only",
        None,
        notes=found,
        help="convert a BF16/FP16/FP32 release of the model, or build the config alone (drop `--weights`)",
    )


# -- planning ------------------------------------------------------------------------------------------


def _fetches(arch: str, spec: ModelSpec) -> tuple[dict[str, list[Fetch]], list[str]]:
    """Every way the source architecture's checkpoints may hold each logical weight, preferred first."""
    model = meta_model(make_config(arch, config_fields(spec, arch)))
    shapes = tensor_shapes(model)
    layout = logical_layout(arch, spec, list(shapes))
    ways: dict[str, list[Fetch]] = {}
    for name, piece in layout.items():
        hub = hub_name(arch, name, shapes[name])
        for index, logical in enumerate(piece.logical):
            options = ways.setdefault(logical, [])
            for alias, is_hub in ((name, False), (hub, True)):
                if alias is None:
                    continue
                if isinstance(alias, list):
                    if len(piece.logical) == 1:
                        options.append(Fetch("stack", tuple(alias), hub=True))
                elif len(piece.logical) == 1:
                    options.append(Fetch("one", (alias,), hub=is_hub))
                else:
                    options.append(Fetch("chunk", (alias,), piece.dim, index, len(piece.logical), hub=is_hub))
    return ways, list(shapes)


def _fetch_shape(fetch: Fetch, tensors: Mapping[str, TensorInfo]) -> tuple[tuple[int, ...], str] | str:
    """(shape, dtype) of what a fetch yields, or the reason it cannot be read."""
    infos = [tensors[n] for n in fetch.names]
    first = infos[0]
    if fetch.op == "one":
        return first.shape, first.dtype
    if fetch.op == "chunk":
        if len(first.shape) <= fetch.dim or first.shape[fetch.dim] % fetch.parts:
            return f"`{fetch.names[0]}` {list(first.shape)} does not split in {fetch.parts} along dimension {fetch.dim}"
        shape = list(first.shape)
        shape[fetch.dim] //= fetch.parts
        return tuple(shape), first.dtype
    odd = [n for n, i in zip(fetch.names, infos, strict=True) if (i.shape, i.dtype) != (first.shape, first.dtype)]
    if odd:
        return f"experts to stack differ in shape or dtype: `{odd[0]}` vs `{fetch.names[0]}`"
    return (len(infos), *first.shape), first.dtype


def plan_weights(
    spec: ModelSpec,
    source_arch: str,
    target_arch: str,
    target_shapes: Mapping[str, tuple[int, ...]],
    checkpoint: Checkpoint,
) -> tuple[list[Planned], list[Diagnostic]]:
    """Every target tensor from the checkpoint's headers; missing/unexpected/mis-shaped ones reported."""
    ways, source_names = _fetches(source_arch, spec)
    target_layout = logical_layout(target_arch, spec, list(target_shapes))
    tensors = checkpoint.tensors
    chosen: dict[str, Fetch] = {}
    for logical, options in ways.items():
        for option in options:
            if all(n in tensors for n in option.names):
                chosen[logical] = option
                break
    hub_votes = Counter(f.hub for f in chosen.values())
    prefer_hub = hub_votes[True] > hub_votes[False]
    missing: set[str] = set()
    wrong: list[str] = []
    plan: list[Planned] = []
    used: set[str] = set()
    for name, piece in target_layout.items():
        fetches: list[Fetch] = []
        for logical in piece.logical:
            if logical in chosen:
                fetches.append(chosen[logical])
                continue
            options = ways.get(logical, [])
            partial = max(options, key=lambda o: sum(n in tensors for n in o.names), default=None)
            if partial is not None and any(n in tensors for n in partial.names):
                used.update(n for n in partial.names if n in tensors)  # missing: only the absent ones
                missing.update(n for n in partial.names if n not in tensors)
                continue
            hub = [o for o in options if o.hub]
            shown = (hub if prefer_hub and hub else options)[:1]
            missing.update(shown[0].names if shown else [f"<{logical}>"])
        if len(fetches) != len(piece.logical):
            continue
        for fetch in fetches:
            used.update(fetch.names)
        entry = _combine(name, piece, fetches, tensors, target_shapes[name], wrong)
        if entry is not None:
            plan.append(Planned(entry, tuple(fetches), piece.dim))
    extra = sorted(set(tensors) - used)
    if target_arch == "nemotron_h" and spec.pattern.mtp is not None:
        passthrough = [n for n in extra if n.startswith("mtp.")]
        for name in passthrough:  # transformers ignores mtp.* on load; keep them for other consumers
            info = tensors[name]
            plan.append(Planned(Entry(name, info.shape, info.dtype), (Fetch("one", (name,)),)))
        extra = [n for n in extra if not n.startswith("mtp.")]
    diagnostics = _plan_diagnostics(source_arch, checkpoint, sorted(missing), extra, wrong)
    del source_names
    return plan, diagnostics


def plan_same_family(
    arch: str, model: Any, target_shapes: Mapping[str, tuple[int, ...]], checkpoint: Checkpoint
) -> tuple[list[Planned], list[Diagnostic]]:
    """Every tensor of ``arch`` from a checkpoint of the same family: no layout table, no logical weights.

    Source and target are one transformers class with one config, so each tensor is read under
    its own name, or under the older names transformers' conversion mapping gives for the family
    (``patternc_transformers.hubnames``: per-expert tensors stacked, q/k/v convolutions joined,
    ``block_sparse_moe`` for ``mlp``).  Shapes, dtypes, missing and unexpected tensors are checked
    from the headers exactly as ``plan_weights`` checks them.
    """
    tensors = checkpoint.tensors
    try:
        forms = hub_forms(model, target_shapes)
    except HubError as error:
        return [], [
            diag(
                "P508",
                f"weights cannot be converted for `{arch}`: its checkpoints need a conversion patternc does not do",
                None,
                notes=[str(error)],
                help="build the config alone (drop `--weights`)",
            )
        ]
    chosen: dict[str, HubForm | None] = {}
    for name in target_shapes:
        if name in tensors:
            chosen[name] = None
            continue
        found = [f for f in forms.get(name, []) if all(n in tensors for n in f.names)]
        if found:
            chosen[name] = found[0]
    prefer_hub = sum(f is not None for f in chosen.values()) > sum(f is None for f in chosen.values())
    missing: set[str] = set()
    wrong: list[str] = []
    plan: list[Planned] = []
    used: set[str] = set()
    for name, shape in target_shapes.items():
        if name not in chosen:
            options = forms.get(name, [])
            partial = [n for f in options for n in f.names if n in tensors]
            used.update(partial)
            if partial:  # some of the experts or parts are there: name only the absent ones
                best = max(options, key=lambda f: sum(n in tensors for n in f.names))
                missing.update(n for n in best.names if n not in tensors)
            else:
                missing.update(options[0].names if prefer_hub and options else [name])
            continue
        form = chosen[name]
        fetches = form.fetches() if form is not None else (Fetch("one", (name,)),)
        dim = form.dim if form is not None else 0
        labels = tuple(f"{name}[{i}]" for i in range(len(fetches)))
        used.update(n for fetch in fetches for n in fetch.names)
        entry = _combine(name, Piece(labels, dim), list(fetches), tensors, shape, wrong)
        if entry is not None:
            plan.append(Planned(entry, fetches, dim))
    return plan, _plan_diagnostics(arch, checkpoint, sorted(missing), sorted(set(tensors) - used), wrong)


def _plan_diagnostics(
    source_arch: str, checkpoint: Checkpoint, missing: list[str], extra: list[str], wrong: list[str]
) -> list[Diagnostic]:
    """P505 (missing), P506 (unexpected, not written) and P507 (mis-shaped or not a weight dtype)."""
    diagnostics: list[Diagnostic] = []
    root = checkpoint.root
    if missing:
        names = missing
        diagnostics.append(
            diag(
                "P505",
                f"{len(names)} tensor{'s' if len(names) > 1 else ''} the `{source_arch}` model needs "
                f"{'are' if len(names) > 1 else 'is'} not in `{root}`",
                None,
                notes=_listing(names),
                help="check that the weights belong to this config (its layer pattern and sizes)",
            )
        )
    if extra:
        diagnostics.append(
            diag(
                "P506",
                f"{len(extra)} tensor{'s' if len(extra) > 1 else ''} in `{root}` "
                f"{'are' if len(extra) > 1 else 'is'} not part of the `{source_arch}` model, not written",
                None,
                notes=_listing(extra),
            )
        )
    if wrong:
        diagnostics.append(
            diag(
                "P507",
                f"{len(wrong)} tensor{'s' if len(wrong) > 1 else ''} in `{root}` "
                f"{'do' if len(wrong) > 1 else 'does'} not have the shape the config gives, or a weight dtype",
                None,
                notes=_listing(sorted(wrong)),
            )
        )
    return diagnostics


def _combine(
    name: str,
    piece: Piece,
    fetches: list[Fetch],
    tensors: Mapping[str, TensorInfo],
    expected: tuple[int, ...],
    wrong: list[str],
) -> Entry | None:
    shapes: list[tuple[int, ...]] = []
    dtypes: set[str] = set()
    for fetch in fetches:
        found = _fetch_shape(fetch, tensors)
        if isinstance(found, str):
            wrong.append(found)
            return None
        shapes.append(found[0])
        dtypes.add(found[1])
    source = " + ".join(", ".join(f.names[:1]) + (" …" if len(f.names) > 1 else "") for f in fetches)
    if len(dtypes) > 1:
        wrong.append(f"`{source}`: parts of `{name}` have different dtypes ({', '.join(sorted(dtypes))})")
        return None
    unusable = dtypes - set(FLOAT_DTYPES)
    if unusable:  # integers, bool, complex, fp8 (whose scales a plain copy would drop): not model weights
        wrong.append(f"`{source}`: dtype {unusable.pop()}, not one of {', '.join(FLOAT_DTYPES)}, for `{name}`")
        return None
    shape = shapes[0]
    if len(shapes) > 1:
        rest = {s[: piece.dim] + s[piece.dim + 1 :] for s in shapes}
        if len(rest) > 1 or any(len(s) <= piece.dim for s in shapes):
            wrong.append(f"`{source}`: parts of `{name}` do not concatenate: {[list(s) for s in shapes]}")
            return None
        shape = (*shape[: piece.dim], sum(s[piece.dim] for s in shapes), *shape[piece.dim + 1 :])
    if shape != tuple(expected):
        wrong.append(f"`{source}`: {list(shape)} in the checkpoint, {list(expected)} for `{name}`")
        return None
    return Entry(name, shape, dtypes.pop())


# -- writing -------------------------------------------------------------------------------------------


def write_weights(
    directory: Path,
    plan: list[Planned],
    checkpoint: Checkpoint,
    max_shard_size: int,
    produce: Producer | None = None,
    progress: Progress | None = None,
) -> tuple[list[str], int]:
    """Shards and the index, tensor by tensor: (file names written, total bytes).

    ``progress`` is told the tensors and bytes ahead, then each tensor as it is written.

    ``produce`` makes one planned tensor (default: read, and stack or join its parts); the
    llama.cpp layout passes its own, which takes one expert out of a stacked tensor.
    """
    make = produce or produce_tensor
    shards = plan_shards([p.entry for p in plan], max_shard_size)
    by_name = {p.entry.name: p for p in plan}
    reader = TensorReader()
    weight_map: dict[str, str] = {}
    written: list[str] = []
    total = 0
    if progress is not None:
        progress.start(len(plan), sum(p.entry.nbytes for p in plan))
    try:
        for index, entries in enumerate(shards):
            file_name = shard_name(index, len(shards))
            writer = ShardWriter(directory / file_name, entries)
            try:
                for entry in entries:
                    tensor = make(by_name[entry.name], reader, checkpoint.tensors)
                    writer.write(entry.name, tensor)
                    del tensor
                    weight_map[entry.name] = file_name
                    total += entry.nbytes
                    if progress is not None:
                        progress.advance(entry.nbytes)
            except BaseException:
                writer.abort()
                raise
            writer.close()
            written.append(file_name)
    finally:
        reader.close()
    write_index(directory / INDEX_NAME, weight_map, total)
    if progress is not None:
        progress.finish()
    return [*written, INDEX_NAME], total


# -- the whole build -----------------------------------------------------------------------------------


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _quietly(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Silence transformers' own log messages meanwhile: what matters is reported as diagnostics."""

    @functools.wraps(function)
    def quiet(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _quiet_transformers():
            return function(*args, **kwargs)

    return quiet


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    try:
        from transformers.utils import logging
    except ImportError:
        yield
        return
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


@_quietly
def build_model_dir(
    spec: ModelSpec,
    out_dir: str | os.PathLike[str],
    *,
    target: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    force: bool = False,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
    source_config: Mapping[str, Any] | None = None,
    protected: list[Path] | None = None,
    extra_config: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    set_keys: Collection[str] = (),
    default_keys: Collection[str] = (),
) -> BuildResult:
    """Write a model directory for ``spec``; never raises for user errors (see ``BuildResult``).

    ``source_config`` is the source dialect's keys (``ConfigReading.values``): each reaches the
    written config or is reported with its reason (``patternc_transformers.carry``); ``set_keys``
    came from ``--set`` (not writing one is an error), ``default_keys`` were filled by patternc.

    ``progress`` is told how the weight conversion advances (tensors and bytes).

    ``extra_config`` keys are added to the written ``config.json`` (what another engine reads
    besides transformers, e.g. vLLM's ``hybrid_override_pattern``).
    """
    out = Path(out_dir)
    result = BuildResult()
    guard = [*(protected or []), *([Path(weights)] if weights is not None else [])]
    result.diagnostics += check_out_dir(out, force, guard)
    from patternc.footprint import allocation_problem

    # only a meta model is built: the fixed limit applies, not the memory free now
    too_large = allocation_problem(spec, device=None)
    if too_large is not None:
        result.diagnostics.append(too_large)
        return result
    llama = target == llamacpp.LLAMA_CPP_TARGET
    if llama:  # a nemotron_h directory in the layout llama.cpp's converter reads, if llama.cpp runs it
        result.layout, target = llamacpp.LLAMA_CPP_TARGET, "nemotron_h"
        result.next_step = "llama.cpp's layout: convert with convert_hf_to_gguf.py"
        result.diagnostics += llamacpp.profile_verdict(spec)
        if has_errors(result.diagnostics):
            return result
    arch, canonical, found = choose_target(spec, target)
    result.canonical = canonical
    result.diagnostics += found
    if arch is None or has_errors(result.diagnostics):
        return result
    result.architecture = arch
    # one family into itself: the same class and config, every tensor read under its own (or older) name;
    # the hand-written layouts that know every hub name (Nemotron-H's mtp.*, the llama.cpp layout) keep theirs
    same_family = arch == spec.source and not llama and not (arch in LAYOUTS and LAYOUTS[arch].within)
    if weights is not None and not same_family and (arch not in WEIGHT_ARCHS or spec.source not in WEIGHT_ARCHS):
        which = arch if arch not in WEIGHT_ARCHS else spec.source
        result.diagnostics.append(
            diag(
                "P508",
                f"weights cannot be converted from `{spec.source}` to `{arch}`: no weight layout for `{which}`",
                None,
                help=f"weights convert within one family, and between families the canonical map finds exact "
                f"through the layouts of {', '.join(f'`{a}`' for a in WEIGHT_ARCHS)}; "
                "build the config alone (drop `--weights`)",
            )
        )
        return result
    if weights is not None:
        quantized = quantization_problem(Path(weights), source_config or {})
        if quantized is not None:
            result.diagnostics.append(quantized)
            return result
    checkpoint = None
    if weights is not None:
        try:
            checkpoint = open_checkpoint(weights)
        except CheckpointError as error:
            result.diagnostics.append(diag(error.code, error.message, None, help=error.help))
            return result
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as error:
        result.diagnostics.append(
            diag(
                "P508",
                f"the transformers backend needs {error.name}, which is not installed",
                None,
                help='pip install "patternc[backends]"',
            )
        )
        return result
    fields = config_fields(spec, arch, source_config)
    carried = carry.plan(spec, arch, fields, source_config or {})
    fields.update(carried.fields)
    carry.complete(spec, arch, fields)
    plan: list[Planned] = []
    if checkpoint is not None:
        model = meta_model(make_config(arch, fields))
        if same_family:
            plan, found = plan_same_family(arch, model, tensor_shapes(model), checkpoint)
        else:
            plan, found = plan_weights(spec, spec.source, arch, tensor_shapes(model), checkpoint)
        result.diagnostics += found
        if has_errors(result.diagnostics):
            return result
        if llama:
            plan = llamacpp.hub_plan(plan, spec)
        floats = Counter(p.entry.dtype for p in plan if p.entry.dtype in _TORCH_DTYPES)
        if floats:
            fields["dtype"] = _TORCH_DTYPES[floats.most_common(1)[0][0]]
    config = make_config(arch, fields)
    carry.verify(carried, source_config or {}, config, arch)
    result.config_keys, result.dropped_keys = carried.written, carried.dropped
    result.diagnostics += carry.diagnostics(carried, set_keys, default_keys)
    if has_errors(result.diagnostics):
        return result
    model = meta_model(config)
    config.architectures = [type(model).__name__]
    result.num_parameters = count_parameters(model)
    result.stored_elements = sum(math.prod(shape) for shape in tensor_shapes(model).values())
    try:
        with staging(out) as tmp:
            config.save_pretrained(tmp)
            if extra_config or llama:
                written_config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
                written_config.update(extra_config or {})
                if llama:
                    mtp_weights = checkpoint is None or any(p.entry.name.startswith("mtp.") for p in plan)
                    before, written_config = (
                        written_config,
                        llamacpp.hub_config(written_config, spec, mtp_weights=mtp_weights),
                    )
                    note = llamacpp.dropped_keys(before, written_config, source_config)
                    result.diagnostics += [note] if note is not None else []
                (tmp / "config.json").write_text(json.dumps(written_config, indent=2, sort_keys=True) + "\n")
            files = ["config.json"]
            if checkpoint is not None:
                written, total = write_weights(
                    tmp, plan, checkpoint, max_shard_size, llamacpp.produce if llama else None, progress
                )
                files += written
                result.tensors, result.total_bytes = len(plan), total
            if llama:
                files += _llama_cpp_extras(spec, tmp, checkpoint is not None, plan, weights, protected, result)
            publish(tmp, out, force)
    except OSError as error:
        result.diagnostics.append(diag("P509", f"could not write `{out}`: {os_reason(error)}", None))
        return result
    result.out_dir, result.files = out, files
    return result


def _llama_cpp_extras(
    spec: ModelSpec,
    tmp: Path,
    has_weights: bool,
    plan: list[Planned],
    weights: str | os.PathLike[str] | None,
    sources: list[Path] | None,
    result: BuildResult,
) -> list[str]:
    """The tokenizer files beside the source (the converter needs them), and what is still missing."""
    searched = [Path(weights) if Path(weights).is_dir() else Path(weights).parent] if weights is not None else []
    searched += [p for p in sources or [] if p not in searched]
    files = llamacpp.tokenizer_files(searched)
    if not files:
        result.diagnostics.append(llamacpp.no_tokenizer(searched))
    if not has_weights:
        result.diagnostics.append(llamacpp.no_weights())
    elif llamacpp.keeps_mtp(spec) and not any(p.entry.name.startswith("mtp.") for p in plan):
        result.diagnostics.append(llamacpp.no_mtp_weights(spec))
    return llamacpp.copy_tokenizer(files, tmp)
