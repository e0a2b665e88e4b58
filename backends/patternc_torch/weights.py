"""Checkpoint names -> this backend's names, and strict loading.

The backend's own names are the Nemotron-H hub names (``backbone.layers.N.mixer.…``,
``backbone.embeddings``, ``backbone.norm_f``, ``lm_head``, ``mtp.layers.N.…``) with routed experts
stacked (``mixer.experts.up_proj`` is (experts, out, in), as transformers holds them).  Accepted:

* Nemotron-H hub checkpoints (``backbone.…``, one tensor per expert: ``mixer.experts.E.up_proj.weight``);
* transformers' ``NemotronHForCausalLM`` and ``Mamba2ForCausalLM`` state dicts (``model.…``/``backbone.…``);
* transformers' ``BambaForCausalLM`` / ``GraniteMoeHybridForCausalLM`` (``model.layers.J.{mamba,self_attn,
  feed_forward,block_sparse_moe,shared_mlp}``, one decoder layer per mixer + FFN pair), and Granite hub
  names (``block_sparse_moe.input_linear``/``output_linear``/``router.layer``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import torch

from patternc.canonical.archs import pair_layers
from patternc.model import ModelSpec

_EXPERT = re.compile(r"^(.*\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")


def read_safetensors(directory: Path) -> dict[str, torch.Tensor] | None:
    """Every tensor of ``model.safetensors`` or of the shards ``model.safetensors.index.json`` names.

    The headers are checked first, as ``patternc build --weights`` checks them (shards named by the
    index stay inside ``directory``, symbolic links followed; no tensor in two shards; valid
    safetensors): a bad checkpoint raises ``PatternError`` (``P510``), never a bare exception.
    """
    from patternc_transformers.checkpoint import CheckpointError, contained, open_checkpoint
    from safetensors import safe_open

    from patternc.diagnostics import PatternError, diag
    from patternc.source import Source

    index = directory / "model.safetensors.index.json"
    single = directory / "model.safetensors"
    if not index.is_file() and not single.is_file():
        return None
    try:
        if not index.is_file() and not contained(single, directory):
            raise CheckpointError("P510", f"`{single.name}` leads out of the checkpoint directory `{directory}`",
                                  help="copy the file into the directory; patternc reads nothing outside it")
        checkpoint = open_checkpoint(directory if index.is_file() else single)
        by_file: dict[Path, list[str]] = defaultdict(list)
        for name, info in checkpoint.tensors.items():
            by_file[info.file].append(name)
        tensors: dict[str, torch.Tensor] = {}
        for file, names in by_file.items():
            with safe_open(str(file), framework="pt") as handle:
                for name in names:
                    tensors[name] = handle.get_tensor(name)
    except CheckpointError as error:
        problem = diag(error.code, error.message, None, help=error.help)
        raise PatternError([problem], Source("", str(directory))) from None
    except Exception as error:  # safetensors' own errors: a file changed or truncated after its header was read
        raise PatternError([diag("P510", f"cannot read the weights in `{directory}`: {error}", None)],
                           Source("", str(directory))) from None
    return tensors


def _stack_experts(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``….experts.E.up_proj.weight`` (one per expert) -> ``….experts.up_proj`` (E, out, in)."""
    groups: dict[tuple[str, str], dict[int, torch.Tensor]] = defaultdict(dict)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        match = _EXPERT.match(name)
        if match:
            groups[(match.group(1), match.group(3))][int(match.group(2))] = tensor
        else:
            out[name] = tensor
    for (prefix, proj), per_expert in groups.items():
        if sorted(per_expert) != list(range(len(per_expert))):  # a gap: leave them to be reported
            out.update({f"{prefix}.{e}.{proj}.weight": t for e, t in per_expert.items()})
            continue
        out[f"{prefix}.{proj}"] = torch.stack([per_expert[e] for e in range(len(per_expert))])
    for prefix in {p for p, _ in groups}:
        gate, up = out.get(f"{prefix}.gate_proj"), out.get(f"{prefix}.up_proj")
        if gate is not None and up is not None and gate.dim() == 3:
            out[f"{prefix}.gate_up_proj"] = torch.cat([gate, up], dim=1)
            del out[f"{prefix}.gate_proj"], out[f"{prefix}.up_proj"]
    return out


def _paired(tensors: dict[str, torch.Tensor], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """Bamba / GraniteMoeHybrid decoder layers (mixer + FFN) -> one backbone layer each."""
    pairs, _ = pair_layers(spec.pattern.flat, "paired")
    flat = spec.pattern.flat
    out: dict[str, torch.Tensor] = {}
    layer_name = re.compile(r"^model\.layers\.(\d+)\.([a-z_]+)\.(.*)$")
    for name, tensor in tensors.items():
        if name == "model.embed_tokens.weight":
            out["backbone.embeddings.weight"] = tensor
            continue
        if name in ("model.final_layernorm.weight", "model.norm.weight"):
            out["backbone.norm_f.weight"] = tensor
            continue
        match = layer_name.match(name)
        if not match or int(match.group(1)) >= len(pairs):
            out[name] = tensor
            continue
        j, part, rest = int(match.group(1)), match.group(2), match.group(3)
        mixer, ffn = pairs[j]
        if part in ("mamba", "self_attn"):
            out[f"backbone.layers.{mixer}.mixer.{rest}"] = tensor
        elif part == "input_layernorm" and rest == "weight":
            out[f"backbone.layers.{mixer}.norm.weight"] = tensor
        elif ffn is None:
            out[name] = tensor
        elif part in ("pre_ff_layernorm", "post_attention_layernorm") and rest == "weight":
            out[f"backbone.layers.{ffn}.norm.weight"] = tensor
        elif part == "feed_forward":
            out[f"backbone.layers.{ffn}.mixer.{rest}"] = tensor
        elif part == "block_sparse_moe":
            renamed = {
                "router.weight": "gate.weight", "router.layer.weight": "gate.weight",
                "experts.gate_up_proj": "experts.gate_up_proj", "input_linear.weight": "experts.gate_up_proj",
                "experts.down_proj": "experts.down_proj", "output_linear.weight": "experts.down_proj",
            }.get(rest)
            out[f"backbone.layers.{ffn}.mixer.{renamed}" if renamed else name] = tensor
        elif part == "shared_mlp":
            target = "shared_experts." if flat[ffn] == "E" else ""
            if rest == "input_linear.weight":
                gate, up = tensor.chunk(2, dim=0)
                out[f"backbone.layers.{ffn}.mixer.{target}gate_proj.weight"] = gate
                out[f"backbone.layers.{ffn}.mixer.{target}up_proj.weight"] = up
            elif rest == "output_linear.weight":
                out[f"backbone.layers.{ffn}.mixer.{target}down_proj.weight"] = tensor
            else:
                out[name] = tensor
        else:
            out[name] = tensor
    return out


def to_backend_names(tensors: dict[str, torch.Tensor], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's tensors to this backend's names (unknown names pass through unchanged)."""
    if any(name.startswith("model.embed_tokens.") or ".block_sparse_moe." in name or ".feed_forward." in name
           or ".pre_ff_layernorm." in name for name in tensors):
        tensors = _paired(tensors, spec)
    else:
        tensors = {("backbone." + name[len("model."):] if name.startswith("model.") else name): t
                   for name, t in tensors.items()}
    return _stack_experts(tensors)


def check_names(
    tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], tied: bool
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, 'name: checkpoint shape vs model shape'), each sorted."""
    optional = {"lm_head.weight"} if tied else set()
    missing = sorted(set(expected) - set(tensors) - optional)
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = sorted(
        f"{name}: {tuple(tensors[name].shape)} in the checkpoint, {tuple(expected[name].shape)} in the model"
        for name in set(tensors) & set(expected)
        if tuple(tensors[name].shape) != tuple(expected[name].shape)
    )
    return missing, unexpected, mismatched
