"""Sources of a model (an IR, a config file, a directory with weights) and the patternc model directory."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from patternc.diagnostics import Diagnostic, PatternError, diag
from patternc.model import ModelSpec
from patternc.source import Source
from patternc_torch.model import HybridLM
from patternc_torch.support import unsupported
from patternc_torch.weights import (
    check_names,
    layer_groups,
    open_weights,
    paired_names,
    stand_ins,
    to_backend_names,
)

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
    """The spec, and the directory to look for weights in (None for an IR or a dict)."""
    if isinstance(source, ModelSpec):
        return source, None
    if isinstance(source, dict):
        config: dict[str, Any] | None = source
        path: Path | None = None
        origin = "<config>"
    else:
        path = Path(source)
        origin = str(path)
        config_file = path / "config.json" if path.is_dir() else path
        if not config_file.is_file():
            raise _fail([diag("P402", f"no config at {config_file}", None,
                              help="pass a ModelSpec, a config.json or a directory that holds one")], origin)
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise _fail([diag("P402", f"{config_file} is not readable JSON: {error}", None)], origin) from None
    directory = path if path is not None and path.is_dir() else (path.parent if path is not None else None)
    if isinstance(config, dict) and config.get("patternc_format") == FORMAT:
        try:
            return ModelSpec.model_validate(config["spec"]), directory
        except Exception as error:  # pydantic's ValidationError, a missing key
            raise _fail([diag("P402", f"the patternc model config is invalid: {error}", None)], origin) from None
    try:
        from patternc.config import read_config
    except ImportError:
        raise _fail([diag("P402", "reading transformers configs needs patternc.config, which is not installed",
                          None)], origin) from None
    result = read_config(source if path is None else path)
    if result.spec is None:
        raise PatternError(list(result.diagnostics), Source("", origin))
    return result.spec, directory


def build(spec: ModelSpec, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
          *, init: bool = True) -> HybridLM:
    problems = unsupported(spec)
    if problems:
        raise _fail(problems, "<spec>")
    target = torch.device(device) if device is not None else torch.device("cpu")
    from patternc.footprint import allocation_problem

    width = (dtype if dtype is not None else torch.float32).itemsize
    too_large = allocation_problem(spec, bytes_per_param=width, device=None if target.type == "meta" else str(target))
    if too_large is not None:  # refused before allocating (P701)
        raise _fail([too_large], "<spec>")
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


def load_weights(model: HybridLM, tensors: dict[str, torch.Tensor], origin: str) -> None:
    """Strict: every model tensor present, none extra, shapes equal; otherwise one PatternError."""
    renamed = to_backend_names(tensors, model.spec)
    check_layout(model, renamed, origin)
    copy_weights(model, renamed, _targets(model))


def _targets(model: HybridLM) -> dict[str, torch.Tensor]:
    return dict([*model.named_parameters(), *model.named_buffers()])


def check_layout(model: HybridLM, renamed: dict[str, torch.Tensor], origin: str) -> None:
    """P403 / P404 / P405 for checkpoint tensors (backend names; data or meta stand-ins) against the model."""
    expected = model.state_dict()
    missing, unexpected, mismatched = check_names(renamed, expected, model.spec.tie_embeddings)
    problems = []
    if missing:
        problems.append(diag("P403", f"{len(missing)} tensor(s) of the model are missing from the checkpoint", None,
                             notes=_listing(missing)))
    if unexpected:
        problems.append(diag("P404", f"{len(unexpected)} tensor(s) of the checkpoint are not in the model", None,
                             notes=_listing(unexpected)))
    if mismatched:
        problems.append(diag("P405", f"{len(mismatched)} tensor(s) have another shape than the model's", None,
                             notes=_listing(mismatched)))
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
    dtype: torch.dtype | None = None,
) -> HybridLM:
    """An nn.Module for ``source``: an IR (ModelSpec), a config path or a directory (weights loaded strictly).

    Without weights the parameters are randomly initialised (or left unallocated on ``device="meta"``).
    Raises ``patternc.PatternError`` with diagnostics (P401-P405, P510 for an unreadable checkpoint, P701
    for a model too large for the device) when the model cannot be built or loaded.
    """
    spec, directory = read_spec(source)
    checkpoint = open_weights(directory) if directory is not None else None
    model = build(spec, device, dtype, init=checkpoint is None)
    if checkpoint is not None and directory is not None:
        # names and shapes first, from the headers alone; then the data, one layer at a time
        paired = paired_names(checkpoint.tensors)
        check_layout(model, to_backend_names(stand_ins(checkpoint), spec, paired=paired), str(directory))
        if not any(p.is_meta for p in model.parameters()):
            targets = _targets(model)
            for group in layer_groups(checkpoint, directory):
                copy_weights(model, to_backend_names(group, spec, paired=paired), targets)
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
    from patternc_transformers.build import publish, staging
    from safetensors.torch import save_file

    out = Path(out_dir)
    empty_dir = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
    if (out.exists() or out.is_symlink()) and not empty_dir and not force:
        raise _fail([diag("P502", f"`{out}` exists", None, help="pass force=True to replace it")], str(out))
    if state_dict is None:
        state_dict = build(spec).state_dict()
    tensors = to_backend_names(dict(state_dict), spec)
    if spec.tie_embeddings:
        tensors.pop("lm_head.weight", None)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    with staging(out) as tmp:
        (tmp / "config.json").write_text(json.dumps(spec_to_config(spec), indent=2) + "\n", encoding="utf-8")
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt", "patternc_format": FORMAT})
        publish(tmp, out, force=True)
    return out
