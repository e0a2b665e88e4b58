"""Sources of a model (an IR, a config file, a directory with weights) and the patternc model directory."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from patternc_checkpoint import CheckpointError, TensorReader, open_checkpoint

from patternc.backends import BuildOptions, BuildResult, Progress
from patternc.diagnostics import Diagnostic, PatternError, diag
from patternc.model import ModelSpec
from patternc.outdir import check_out_dir, os_reason, publish, staging
from patternc.source import Source
from patternc_torch.arguments import model_device, model_dtype
from patternc_torch.model import HybridLM
from patternc_torch.support import unsupported
from patternc_torch.weights import (
    check_names,
    layer_groups,
    open_weights,
    paired_names,
    stand_ins,
    to_backend_names,
    unusable_dtypes,
)

TARGET = "torch"
"""The ``build --target`` this backend writes."""

FORMAT = "patternc.torch.v1"
"""The value of ``config.json``'s ``patternc_format`` key in a directory ``write_model_dir`` wrote."""


def _fail(diagnostics: list[Diagnostic], origin: str) -> PatternError:
    return PatternError(diagnostics, Source("", origin))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def spec_to_config(spec: ModelSpec) -> dict[str, Any]:
    return {"patternc_format": FORMAT, "spec": _jsonable(spec.model_dump(mode="python"))}


def read_spec(source: ModelSpec | str | Path | dict[str, Any]) -> tuple[ModelSpec, Path | None]:
    """The spec, and the directory to look for weights in (None for an IR or a dict).

    A path that is not there is ``P402``; a config file is read as ``patternc check`` reads one
    (``P901``-``P904``: size limit before reading, UTF-8, JSON, nesting depth)."""
    if isinstance(source, ModelSpec):
        return source, None
    if isinstance(source, dict):
        config: dict[str, Any] | None = source
        path: Path | None = None
        origin = "<config>"
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        origin = str(path)
        if not str(source).strip():
            raise _fail([diag("P402", "the model path is empty", None, help=_SOURCE_HELP)], "<source>")
        try:
            config_file = path / "config.json" if path.is_dir() else path
            present = config_file.is_file()
        except OSError as error:  # a name too long for the filesystem, a permission problem
            raise _fail([diag("P402", f"cannot look at `{path}`: {error.strerror or error}", None)], origin) from None
        if not present:
            what = (
                f"no model at `{path}`: no such file or directory"
                if not path.exists()
                else f"no config at `{config_file}`"
            )
            raise _fail([diag("P402", what, None, help=_SOURCE_HELP)], origin)
        from patternc.config import MAX_CONFIG_BYTES
        from patternc.config._load import load
        from patternc.diagnostics import has_errors

        text, config, problems = load(config_file, str(config_file), MAX_CONFIG_BYTES)
        if has_errors(problems) or config is None:
            raise PatternError(problems, text)
    else:
        raise _fail(
            [
                diag(
                    "P402",
                    f"a model source is a ModelSpec, a config dict or a path, not {type(source).__name__}",
                    None,
                    help=_SOURCE_HELP,
                )
            ],
            "<source>",
        )
    directory = path if path is not None and path.is_dir() else (path.parent if path is not None else None)
    if isinstance(config, dict) and config.get("patternc_format") == FORMAT:
        try:
            return ModelSpec.model_validate(config["spec"]), directory
        except Exception as error:  # pydantic's ValidationError, a missing key
            raise _fail([diag("P402", f"the patternc model config is invalid: {error}", None)], origin) from None
    try:
        from patternc.config import read_config
    except ImportError:
        raise _fail(
            [diag("P402", "reading transformers configs needs patternc.config, which is not installed", None)], origin
        ) from None
    assert config is not None  # read above, or given
    result = read_config(config if path is None else path)
    if result.spec is None:
        raise PatternError(list(result.diagnostics), Source("", origin))
    return result.spec, directory


_SOURCE_HELP = "give a model directory (one `patternc build` wrote, or any holding a config.json) or a config.json"


def build(
    spec: ModelSpec,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    *,
    init: bool = True,
) -> HybridLM:
    problems = unsupported(spec)
    if problems:
        raise _fail(problems, "<model>")
    dtype = model_dtype(dtype)
    target = model_device(device) or torch.device("cpu")
    from patternc.footprint import allocation_problem

    width = (dtype if dtype is not None else torch.float32).itemsize
    too_large = allocation_problem(
        spec,
        bytes_per_param=width,
        device=None if target.type == "meta" else str(target),
        free=_cuda_free(target) if target.type == "cuda" else None,
    )
    if too_large is not None:  # refused before allocating (P701)
        raise _fail([too_large], "<model>")
    # built on meta, cast there, then given memory once, in its final dtypes: torch's default
    # initialisation of every Linear (kaiming_uniform_, 0.65 s for 150M parameters, ~35 s for 8B)
    # would be overwritten anyway, by ``init_weights`` or by the checkpoint, and a bf16 model never
    # exists in fp32 first
    with torch.device("meta"):
        model = HybridLM(spec)
    if dtype is not None:
        model.to(dtype)
        model.keep_fp32()
    if target.type != "meta":
        model.to_empty(device=target)
        model.tie_weights()
        model.reset_buffers()
        if init:
            model.init_weights()
    return model.eval()


def _cuda_free(device: torch.device) -> int | None:
    """Bytes free on a CUDA device now (None when the driver does not answer: only the fixed limit applies)."""
    try:
        free, _ = torch.cuda.mem_get_info(device)
    except Exception:  # no CUDA, or a driver that does not answer
        return None
    return int(free)


def load_weights(model: HybridLM, tensors: dict[str, torch.Tensor], origin: str) -> None:
    """Strict: every model tensor present, none extra, shapes equal; otherwise one PatternError."""
    wrong = _unusable(tensors)
    renamed = to_backend_names(tensors, model.spec)
    drop_absent_mtp(model, renamed)
    check_layout(model, renamed, origin, wrong)
    copy_weights(model, renamed, _targets(model))


def drop_absent_mtp(model: HybridLM, renamed: dict[str, torch.Tensor]) -> None:
    """A checkpoint without a single MTP tensor gives the model without its MTP block (``model.mtp`` None),
    not a ``P403`` for every tensor of it: transformers builds no MTP module for the families whose
    configs declare depths (DeepSeek-V3's ``num_mtp_layers`` defaults to 1) and saves none, so its own
    checkpoints hold the main stack only.  A checkpoint with some MTP tensors is checked strictly."""
    if model.mtp is not None and not any(name.startswith("mtp.") for name in renamed):
        model.mtp = None


def _unusable(tensors: dict[str, Any]) -> list[str]:
    """'name: what it is' for values that are not floating-point tensors of 16 bits or more."""
    return sorted(
        f"{name}: {t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}"
        for name, t in tensors.items()
        if not isinstance(t, torch.Tensor) or not t.dtype.is_floating_point or t.dtype.itemsize < 2
    )


def _targets(model: HybridLM) -> dict[str, torch.Tensor]:
    return dict([*model.named_parameters(), *model.named_buffers()])


def check_layout(
    model: HybridLM, renamed: dict[str, torch.Tensor], origin: str, wrong_dtypes: list[str] | None = None
) -> None:
    """P403 / P404 / P405 for checkpoint tensors (backend names; data or meta stand-ins) against the
    model; ``wrong_dtypes`` ('name: dtype') are reported with the shape mismatches (P405)."""
    expected = model.state_dict()
    missing, unexpected, mismatched = check_names(renamed, expected, model.spec.tie_embeddings)
    mismatched += [f"{entry} is not a floating-point dtype the model can take" for entry in wrong_dtypes or []]
    problems = []
    if missing:
        problems.append(
            diag(
                "P403",
                f"{len(missing)} tensor(s) of the model are missing from the checkpoint",
                None,
                notes=_listing(missing),
                help="check that the weights belong to this config (its layer pattern and sizes)",
            )
        )
    if unexpected:
        problems.append(
            diag(
                "P404",
                f"{len(unexpected)} tensor(s) of the checkpoint are not in the model",
                None,
                notes=_listing(unexpected),
                help="loading is strict: remove them, or use the config these weights were saved with",
            )
        )
    if mismatched:
        problems.append(
            diag(
                "P405",
                f"{len(mismatched)} tensor(s) have another shape or dtype than the model's",
                None,
                notes=_listing(mismatched),
                help="the config's sizes must be the checkpoint's; weights must be F16, BF16, F32 or F64",
            )
        )
    if problems:
        raise _fail(problems, origin)


def copy_weights(model: HybridLM, renamed: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> None:
    """Copy checkpoint tensors (backend names, already checked) into ``targets`` (the model's parameters
    and buffers by name), cast to their dtypes."""
    with torch.no_grad():
        for name, value in renamed.items():
            if name == "lm_head.weight" and model.spec.tie_embeddings:
                continue  # the embedding table is the head
            target = targets[name]
            if not target.is_meta:
                target.copy_(value.to(target.dtype))


def _listing(names: list[str], limit: int = 40) -> list[str]:
    shown = [f"`{n}`" for n in names[:limit]]
    if len(names) > limit:
        shown.append(f"… and {len(names) - limit} more")
    return shown


def torch_model(
    source: ModelSpec | str | Path | dict[str, Any],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
) -> HybridLM:
    """An nn.Module for ``source``: an IR (ModelSpec), a config path or a directory (weights loaded strictly).

    Without weights the parameters are randomly initialised (or left unallocated on ``device="meta"``).
    Raises ``patternc.PatternError`` with diagnostics (P401-P405, P510 for an unreadable checkpoint, P701
    for a model too large for the device) when the model cannot be built or loaded.
    """
    spec, directory = read_spec(source)
    # a directory given as the source is a checkpoint whatever its weight files are called; beside a
    # config *file*, only the names patternc writes (model.safetensors, its index) are looked for
    given_directory = isinstance(source, str | os.PathLike) and Path(source).is_dir()
    checkpoint = open_weights(directory, scan=given_directory) if directory is not None else None
    model = build(spec, device, dtype, init=checkpoint is None)
    if checkpoint is not None and directory is not None:
        # names, shapes and dtypes first, from the headers alone; then the data, one layer at a time
        paired = paired_names(checkpoint.tensors)
        names = to_backend_names(stand_ins(checkpoint), spec, paired=paired)
        drop_absent_mtp(model, names)
        check_layout(model, names, str(directory), unusable_dtypes(checkpoint))
        if not any(p.is_meta for p in model.parameters()):
            targets = _targets(model)
            for group in layer_groups(checkpoint, directory):
                copy_weights(model, to_backend_names(group, spec, paired=paired), targets)
        model.weights_from = str(directory)
    return model


def write_model_dir(
    spec: ModelSpec, out_dir: str | Path, state_dict: dict[str, torch.Tensor] | None = None, *, force: bool = False
) -> Path:
    """Write ``config.json`` (the spec, marked ``patternc_format``) and ``model.safetensors``, atomically.

    Without ``state_dict`` the weights are a fresh random initialisation of the spec.  The files are
    written into a staging directory beside ``out_dir`` and renamed into place, so a failure or a kill
    leaves no half-written directory; an existing non-empty ``out_dir`` is replaced only with
    ``force=True`` (else ``P502``).  ``torch_model(out_dir)`` loads the directory back.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    empty_dir = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
    if (out.exists() or out.is_symlink()) and not empty_dir and not force:
        raise _fail([diag("P502", f"`{out}` exists", None, help="pass force=True to replace it")], str(out))
    if state_dict is None:
        state_dict = build(spec).state_dict()
    else:  # what torch_model(out_dir) would refuse is refused before anything is written
        wrong = _unusable(dict(state_dict))
        if wrong:
            raise _fail(
                [
                    diag(
                        "P405",
                        f"{len(wrong)} value(s) of the state dict are not floating-point tensors",
                        None,
                        notes=_listing(wrong),
                    )
                ],
                "<state_dict>",
            )
        check_layout(build(spec, "meta"), to_backend_names(dict(state_dict), spec), "<state_dict>")
    tensors = to_backend_names(dict(state_dict), spec)
    if spec.tie_embeddings:
        tensors.pop("lm_head.weight", None)
    tensors = _own_storage({name: t.detach().to("cpu").contiguous() for name, t in tensors.items()})
    with staging(out) as tmp:
        (tmp / "config.json").write_text(json.dumps(spec_to_config(spec), indent=2) + "\n", encoding="utf-8")
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt", "patternc_format": FORMAT})
        publish(tmp, out, force=True)
    return out


def _own_storage(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of every tensor that shares memory with one before it: safetensors stores each tensor once
    and refuses shared storage (the tied head, dropped above, is the only sharing that means something)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr()
        out[name] = tensor.clone() if pointer in seen and tensor.numel() else tensor
        seen.add(pointer)
    return out


def build_dir(spec: ModelSpec, out: Path, weights: str | None, options: BuildOptions) -> BuildResult:
    """``patternc build --target torch``: ``write_model_dir`` with the checkpoint's tensors (or a random
    initialisation), after the checks every build makes; never raises for user errors."""
    result = BuildResult(architecture=TARGET, how="patternc torch backend")
    guard = [*options.protected, *([Path(weights)] if weights is not None else [])]
    result.diagnostics += check_out_dir(out, options.force, guard)
    from patternc.footprint import allocation_problem

    too_large = allocation_problem(spec, device="cpu")  # every tensor is held in memory
    if too_large is not None:
        result.diagnostics.append(too_large)
        return result
    from patternc.model_keys import model_only

    result.diagnostics += model_only(spec, options.source_config, options.set_keys, "the torch backend's directory")
    if result.diagnostics:
        return result
    state: dict[str, torch.Tensor] | None = None
    if weights is not None:
        try:
            state = _read_all(weights, options.progress)
        except CheckpointError as error:
            result.diagnostics.append(diag(error.code, error.message, None, help=error.help))
            return result
    try:  # write_model_dir stages and publishes atomically itself
        write_model_dir(spec, out, state, force=options.force)
    except PatternError as error:
        result.diagnostics += error.diagnostics
        return result
    except OSError as error:
        result.diagnostics.append(diag("P509", f"could not write `{out}`: {os_reason(error)}", None))
        return result
    result.out_dir, result.files = out, sorted(p.name for p in out.iterdir())
    if state is not None:
        result.tensors = len(state)
    return result


def _read_all(weights: str, progress: Progress | None) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint, by its own name (``write_model_dir`` renames and checks them)."""
    checkpoint = open_checkpoint(weights)
    reader = TensorReader()
    if progress is not None:
        progress.start(len(checkpoint.tensors), sum(info.nbytes for info in checkpoint.tensors.values()))
    state = {}
    for name, info in checkpoint.tensors.items():
        state[name] = reader.read(info, name)
        if progress is not None:
            progress.advance(info.nbytes)
    reader.close()
    if progress is not None:
        progress.finish()
    return state
