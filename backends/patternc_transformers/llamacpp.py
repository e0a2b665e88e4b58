"""``patternc build --target llama.cpp``: a Nemotron-H directory that llama.cpp's converter takes as written.

llama.cpp reads Hugging Face directories through ``convert_hf_to_gguf.py`` (``conversion/nemotron.py``,
``NemotronHModel``), which was written against NVIDIA's published Nemotron-H checkpoints, not against
what transformers 5.x ``save_pretrained`` writes.  Read from its source (llama-cpp-python 0.3.36's
vendored llama.cpp, gguf-py 0.19.0) and run, three differences break a transformers 5.x directory:

* **The architecture is chosen from a config key, not the pattern.** ``num_experts_per_tok`` anywhere
  in ``config.json`` makes it ``nemotron_h_moe``; transformers writes its MoE defaults into every
  Nemotron-H config, so a dense model converts as MoE with zero FFN sizes and llama.cpp fails to load
  it (``blk.1.ssm_in.weight not found``).  Here a config without an ``E`` layer carries no MoE key.
* **The pattern is read from ``hybrid_override_pattern`` (a string) or ``layers_block_type``**, and a
  list counts only ``"moe"`` entries as FFN layers: a dense list loses every ``-``.  Here the pattern
  is always the string, as in NVIDIA's configs (``mtp_hybrid_override_pattern`` for MTP).
* **Routed experts are read one tensor per expert** (``…mixer.experts.{e}.up_proj.weight``, the hub
  layout) and merged by the converter; transformers' stacked ``experts.up_proj`` is left over and the
  conversion fails with ``Unprocessed experts``.  Here tensors carry the hub names (``backbone.…``,
  per-expert), which transformers still loads (its conversion mapping stacks them back).

The converter also needs the tokenizer (it loads ``AutoTokenizer`` from the model directory), so the
tokenizer files found beside the source are copied in; without them ``P516`` says what to add.
Whether llama.cpp runs the model at all is the ``llama.cpp`` target profile's question
(``patternc.targets``): its errors refuse the build, its warnings are reported.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patternc_checkpoint import Entry, TensorInfo, TensorReader

from patternc.diagnostics import Diagnostic, diag
from patternc.kinds import LayerKind
from patternc.model import ModelSpec
from patternc_transformers.carry import reason_notes

if TYPE_CHECKING:
    import torch

    from patternc_transformers.planned import Planned

LLAMA_CPP_TARGET = "llama.cpp"
PROFILE = "llama.cpp"
"""The ``check --target`` profile whose verdict a llama.cpp build must pass."""

MOE_KEYS = (
    "n_routed_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
    "moe_shared_expert_intermediate_size",
    "moe_shared_expert_overlap",
    "moe_latent_size",
    "n_shared_experts",
    "norm_topk_prob",
    "routed_scaling_factor",
    "n_group",
    "topk_group",
    "output_router_logits",
    "router_aux_loss_coef",
)
"""Config keys of the MoE layers: the converter switches to ``nemotron_h_moe`` on ``num_experts_per_tok``."""

MTP_KEYS = ("mtp_layers_block_type", "mtp_hybrid_override_pattern", "num_nextn_predict_layers")

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)
"""Files of a Hugging Face tokenizer (and its generation defaults) that the converter may read."""

_STACKED = re.compile(r"^(?:model|backbone|mtp)\..*\.mixer\.experts\.(up|down)_proj$")


def keeps_mtp(spec: ModelSpec) -> bool:
    """Whether the converter writes the MTP block: only for an MoE main stack (``nemotron_h_moe``)."""
    return spec.pattern.mtp is not None and spec.pattern.has(LayerKind.MOE)


def hub_config(data: Mapping[str, Any], spec: ModelSpec, *, mtp_weights: bool = True) -> dict[str, Any]:
    """transformers' saved ``config.json`` rewritten in the spelling of NVIDIA's published configs.

    The values transformers wrote stay (so transformers reads the directory back to the same
    model); only the spelling of the layer stack changes and keys that would mislead the converter
    go: the MoE keys of a dense model, the MTP keys of a model whose MTP block the converter drops
    (a dense one) or whose MTP weights the checkpoint lacks (``mtp_weights``: the converter would
    expect them), and ``time_step_limit``, which transformers' Nemotron-H never reads (it clamps
    at ``time_step_min``) and writes with infinity as ``{"__float__": "Infinity"}``, which no other
    reader knows.
    """
    out = {k: v for k, v in data.items() if k not in ("layers_block_type", "layer_types", *MTP_KEYS)}
    out["architectures"] = ["NemotronHForCausalLM"]
    out["hybrid_override_pattern"] = spec.pattern.flat
    out["num_hidden_layers"] = spec.pattern.num_layers
    if not spec.pattern.has(LayerKind.MOE):
        for key in MOE_KEYS:
            out.pop(key, None)
    if keeps_mtp(spec) and mtp_weights:
        assert spec.pattern.mtp is not None
        out["mtp_hybrid_override_pattern"] = spec.pattern.mtp.flat
        out["num_nextn_predict_layers"] = spec.pattern.mtp.depths
    out.pop("time_step_limit", None)  # unread: transformers' Nemotron-H clamps dt at time_step_min
    return dict(sorted(out.items()))


_RESPELLED = frozenset(
    {
        "layers_block_type",
        "layer_types",
        "mtp_layers_block_type",
        "hybrid_override_pattern",
        "mtp_hybrid_override_pattern",
        "num_nextn_predict_layers",
        "num_hidden_layers",
    }
)


def dropped_keys(
    before: Mapping[str, Any], after: Mapping[str, Any], source_config: Mapping[str, Any] | None
) -> Diagnostic | None:
    """A P513 note for the source's keys that ``hub_config`` left out (the layer stack is respelled, not lost)."""
    gone = sorted(k for k in (source_config or {}) if k in before and k not in after and k not in _RESPELLED)
    if not gone:
        return None
    reasons: dict[str, str] = {}
    for key in gone:
        if key in MOE_KEYS:
            reasons[key] = "a model without `E` layers; llama.cpp's converter treats any `num_experts_per_tok` as MoE"
        elif key == "time_step_limit":
            reasons[key] = "transformers' Nemotron-H never reads it (it clamps dt at `time_step_min`)"
        else:
            reasons[key] = "the MTP block is not converted"
    return diag(
        "P513",
        f"{len(gone)} key{'s' if len(gone) > 1 else ''} of the source config not written in "
        f"llama.cpp's layout: {', '.join(f'`{k}`' for k in gone)}",
        None,
        notes=reason_notes(reasons),
    )


def hub_tensor_name(name: str) -> str:
    """transformers 5.x Nemotron-H name -> the hub name (``model.`` -> ``backbone.``)."""
    return "backbone." + name[len("model.") :] if name.startswith("model.") else name


def hub_plan(plan: Iterable[Planned], spec: ModelSpec) -> list[Planned]:
    """The build's plan with hub names: stacked experts split into one tensor per expert, MTP kept or not.

    A stacked expert tensor read from per-expert checkpoint tensors becomes those tensors again
    (read one by one, never stacked); read from a stacked tensor, it becomes one slice per expert.
    """
    from patternc_transformers.planned import Fetch, Planned

    out: list[Planned] = []
    for planned in plan:
        entry = planned.entry
        if entry.name.startswith("mtp.") and not keeps_mtp(spec):
            continue  # the converter has no MTP path for a dense model (P305 says so)
        name = hub_tensor_name(entry.name)
        if _STACKED.match(name) is None or len(entry.shape) != 3 or len(planned.fetches) != 1:
            out.append(Planned(Entry(name, entry.shape, entry.dtype), planned.fetches, planned.dim))
            continue
        fetch = planned.fetches[0]
        experts = entry.shape[0]
        prefix, _, proj = name.rpartition(".")
        for e in range(experts):
            if fetch.op == "stack":
                part = Fetch("one", (fetch.names[e],))
            else:
                part = Fetch("chunk", fetch.names, 0, e, experts)
            out.append(Planned(Entry(f"{prefix}.{e}.{proj}.weight", entry.shape[1:], entry.dtype), (part,)))
    return out


def produce(planned: Planned, reader: TensorReader, tensors: Mapping[str, TensorInfo]) -> torch.Tensor:
    """One planned tensor, in the planned shape (a one-expert slice loses its leading 1)."""
    from patternc_transformers.planned import produce_tensor

    return produce_tensor(planned, reader, tensors).reshape(planned.entry.shape)


def tokenizer_files(directories: Iterable[Path]) -> list[Path]:
    """The tokenizer files of the first directory that has ``tokenizer.json`` or ``tokenizer.model``."""
    for directory in directories:
        if not directory.is_dir():
            continue
        if any((directory / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
            return [directory / name for name in TOKENIZER_FILES if (directory / name).is_file()]
    return []


def copy_tokenizer(files: list[Path], out: Path) -> list[str]:
    """Copy the files (symbolic links followed: the hub cache links to blobs); the names written.

    One spelling is changed: transformers 5.x saves fast tokenizers as ``"tokenizer_class":
    "TokenizersBackend"``, a class the transformers the converter pins (4.57.6, its
    ``requirements-convert_hf_to_gguf.txt``) does not have, so ``AutoTokenizer`` fails there.
    ``PreTrainedTokenizerFast`` names the same tokenizer (``tokenizer.json``) in both versions.
    """
    for path in files:
        target = out / path.name
        if path.name == "tokenizer_config.json" and any(f.name == "tokenizer.json" for f in files):
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("tokenizer_class") == "TokenizersBackend":
                data["tokenizer_class"] = "PreTrainedTokenizerFast"
                target.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
                continue
        shutil.copyfile(path, target)
    return [path.name for path in files]


def no_tokenizer(searched: list[Path]) -> Diagnostic:
    where = (
        f"no `tokenizer.json` or `tokenizer.model` in {', '.join(f'`{p}`' for p in searched)}"
        if searched
        else "the source is a pattern: there is no directory to copy a tokenizer from"
    )
    return diag(
        "P516",
        "no tokenizer was copied: llama.cpp's converter reads the tokenizer from the model directory",
        None,
        notes=[
            where,
            "convert_hf_to_gguf.py loads `AutoTokenizer.from_pretrained(<directory>)` for Nemotron-H "
            "and stops without one",
        ],
        help="copy the model's tokenizer files (`tokenizer.json`, `tokenizer_config.json`, …) into the "
        "directory before converting, or build from a checkpoint directory that holds them",
    )


def no_weights() -> Diagnostic:
    return diag(
        "P517",
        "config only: llama.cpp's converter needs the weights, and this directory has none",
        None,
        help="pass `--weights CHECKPOINT` to write the tensors in the layout the converter reads",
    )


def no_mtp_weights(spec: ModelSpec) -> Diagnostic:
    mtp = spec.pattern.mtp.flat if spec.pattern.mtp is not None else ""
    return diag(
        "P517",
        f"the checkpoint has no `mtp.*` tensors: the multi-token-prediction block `{mtp}` is left out",
        None,
        notes=[
            "the config is written without `mtp_hybrid_override_pattern` / `num_nextn_predict_layers`, "
            "so the converter writes the main model alone"
        ],
        help="convert from a checkpoint that holds the MTP weights (`mtp.layers.0.…`, `mtp.layers.1.…`) "
        "to keep the draft head",
    )


def profile_verdict(spec: ModelSpec) -> list[Diagnostic]:
    """The ``llama.cpp`` profile's diagnostics for the spec (errors refuse the build)."""
    from patternc.targets import check_target

    return check_target(PROFILE, spec.pattern, spec)
