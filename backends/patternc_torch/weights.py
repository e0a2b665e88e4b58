"""Checkpoint names -> this backend's names, and strict loading.

The backend's own names are the Nemotron-H hub names (``backbone.layers.N.mixer.…``,
``backbone.embeddings``, ``backbone.norm_f``, ``lm_head``, ``mtp.layers.N.…``) with routed experts
stacked (``mixer.experts.up_proj`` is (experts, out, in), as transformers holds them).  Accepted:

* Nemotron-H hub checkpoints (``backbone.…``, one tensor per expert: ``mixer.experts.E.up_proj.weight``);
* transformers' ``NemotronHForCausalLM`` and ``Mamba2ForCausalLM`` state dicts (``model.…``/``backbone.…``);
* transformers' ``BambaForCausalLM`` / ``GraniteMoeHybridForCausalLM`` (``model.layers.J.{mamba,self_attn,
  feed_forward,block_sparse_moe,shared_mlp}``, one decoder layer per mixer + FFN pair), and Granite hub
  names (``block_sparse_moe.input_linear``/``output_linear``/``router.layer``);
* transformers' ``Qwen3NextForCausalLM`` and Qwen's hub checkpoints (``model.layers.J.{linear_attn,self_attn,
  mlp}``, ``mlp.shared_expert`` -> ``mixer.shared_experts``, per-expert ``mlp.experts.E.*_proj`` stacked), and
  their MTP block (``mtp.fc``, ``mtp.pre_fc_norm_{embedding,hidden}``, ``mtp.layers.J``, ``mtp.norm``);
* transformers' ``Lfm2ForCausalLM`` / ``Lfm2MoeForCausalLM`` and Liquid's hub names (``model.layers.J.{conv,
  self_attn,operator_norm,ffn_norm,feed_forward}``, ``w1``/``w3``/``w2`` -> gate/up/down, per-expert
  ``feed_forward.experts.E.w*`` stacked, ``expert_bias``, ``model.embedding_norm``), and ``JambaForCausalLM``
  (``model.layers.J.{mamba,self_attn,feed_forward}``, ``feed_forward.router``, per-expert hub tensors);
* transformers' ``KimiLinearForCausalLM`` / ``BailingHybridForCausalLM`` (``model.layers.J.{self_attn,mlp}``, the
  KDA mixer's ``forget_gate.*``) and their released names (``_kimi_ling_names``: Kimi's ``block_sparse_moe``
  with per-expert ``w1``/``w3``/``w2``, Ling's ``word_embeddings``, ``attention``, ``attention.dense`` and
  ``gate.expert_bias``, the forget gate's tensors beside the mixer, ``q_conv1d``/``k_conv1d``/``v_conv1d``
  concatenated into one ``conv1d``);
* transformers' ``MiniMaxForCausalLM`` (``self_attn`` for both attention kinds, ``mlp.gate``,
  ``mlp.experts.gate_up_proj``; the lightning layers' derived buffers dropped) and MiniMax's hub names
  (``block_sparse_moe.gate``, per-expert ``block_sparse_moe.experts.E.w1/w3/w2``: gate, up, down).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from patternc.canonical.archs import pair_layers
from patternc.diagnostics import PatternError, diag
from patternc.kinds import LayerKind, by_symbol
from patternc.model import ModelSpec
from patternc.source import Source
from patternc_torch.lightning import DERIVED_BUFFERS
from patternc_torch.postnorm import post_normed

if TYPE_CHECKING:
    from patternc_checkpoint import Checkpoint

_EXPERT = re.compile(r"^(.*\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")


def open_weights(directory: Path, *, scan: bool = True) -> Checkpoint | None:
    """The checkpoint in ``directory``, headers checked, no data read; None when it holds no weights.

    With ``scan``, any file that looks like weights makes the directory a checkpoint (other
    safetensors names are read, pickles refused with ``P503``, other formats ``P504``); without it
    only ``model.safetensors`` and its index are looked for.

    ``model.safetensors`` or the shards ``model.safetensors.index.json`` names, checked as
    ``patternc build --weights`` checks them (shards stay inside ``directory``, symbolic links
    followed; no tensor in two shards; valid safetensors headers): a bad checkpoint raises
    ``PatternError`` (``P510``), never a bare exception.
    """
    from patternc_checkpoint import CheckpointError, contained, open_checkpoint

    index = directory / "model.safetensors.index.json"
    single = directory / "model.safetensors"
    try:
        if not index.is_file() and not single.is_file():
            if not scan or not _holds_weights(directory):
                return None
            # other safetensors files (shards without an index, `consolidated.safetensors`) are read
            # as `build --weights` reads a directory; pickles are refused (P503); anything else that
            # looks like weights but cannot be read is P504, never a silently random model
            return open_checkpoint(directory)
        if not index.is_file() and not contained(single, directory):
            raise CheckpointError(
                "P510",
                f"`{single.name}` leads out of the checkpoint directory `{directory}`",
                help="copy the file into the directory; patternc reads nothing outside it",
            )
        return open_checkpoint(directory if index.is_file() else single)
    except CheckpointError as error:
        raise _unreadable(directory, error.code, error.message, error.help) from None


WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".gguf", ".h5", ".msgpack", ".npz", ".onnx")
"""Suffixes of files that hold weights in some format; a model directory holding one is a checkpoint."""


def _holds_weights(directory: Path) -> bool:
    """Whether ``directory`` holds a file that looks like weights (``pytorch_model.bin.index.json`` too)."""
    from patternc_checkpoint import CheckpointError

    try:
        entries = list(directory.iterdir())
    except OSError as error:  # readable config.json, unlistable directory: its weights cannot be ruled out
        raise CheckpointError(
            "P510",
            f"cannot list `{directory}`: {error.strerror or error}",
            help="check that this user may read the directory",
        ) from None
    return any(
        entry.suffix in WEIGHT_FILES or entry.name.endswith((".bin.index.json", ".safetensors.index.json"))
        for entry in entries
    )


def unusable_dtypes(checkpoint: Checkpoint) -> list[str]:
    """'name: dtype' for each tensor that is not floating point (integer, bool) or is fp8, whose values
    mean nothing without scales this backend does not apply."""
    from patternc_checkpoint import FLOAT_DTYPES

    tensors = checkpoint.tensors
    return sorted(
        f"{name}: {info.dtype}"
        for name, info in tensors.items()
        if info.dtype not in FLOAT_DTYPES and text_name(name) is not None
    )


def _unreadable(directory: Path, code: str, message: str, help: str | None = None) -> PatternError:
    return PatternError([diag(code, message, None, help=help)], Source("", str(directory)))


def stand_ins(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """A meta tensor of the right shape per checkpoint tensor: names and shapes checked, no data read."""
    return {name: torch.empty(info.shape, device="meta") for name, info in checkpoint.tensors.items()}


_LAYER = re.compile(r"^([a-z_]+)\.layers\.(\d+)\.")

_TEXT_PREFIX = "model.language_model."
"""Where a multimodal checkpoint (Qwen3.5 / Qwen3.6, saved by ``…ForConditionalGeneration``) keeps
its language model: read as ``model.`` (transformers' ``…ForCausalLM`` reads the same tensors)."""
_OTHER_TOWERS = ("model.visual.", "model.vision_tower.")
"""The vision encoder's tensors in such a checkpoint: not part of the text model this backend builds,
so they are neither read nor reported as unexpected (transformers' ``Qwen3_5ForCausalLM`` also
ignores ``model.visual.*`` on load)."""


def text_name(name: str) -> str | None:
    """A checkpoint name as the text model's name: the multimodal prefix read as ``model.``; None for
    a vision-tower tensor, which the text model leaves out."""
    if name.startswith(_TEXT_PREFIX):
        return "model." + name[len(_TEXT_PREFIX) :]
    if name.startswith(_OTHER_TOWERS):
        return None
    return name


def _text_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {renamed: t for name, t in tensors.items() if (renamed := text_name(name)) is not None}


def layer_groups(checkpoint: Checkpoint, directory: Path) -> Iterator[dict[str, torch.Tensor]]:
    """The checkpoint's tensors one layer at a time (every other tensor on its own), read from disk as
    they are needed: loading holds the model and one layer of the checkpoint, not the whole checkpoint.
    A layer's tensors are complete together (per-expert tensors to stack, Granite's paired FFN)."""
    from patternc_checkpoint import TensorReader

    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name in checkpoint.tensors:
        text = text_name(name)
        if text is None:  # a vision tower's tensor: never read
            continue
        match = _LAYER.match(text)
        groups[(match.group(1), match.group(2)) if match else ("", name)].append(name)
    reader = TensorReader()
    try:
        for names in groups.values():
            try:
                group = {name: reader.read(checkpoint.tensors[name], name) for name in names}
            except Exception as error:  # safetensors' own errors: a file changed or truncated after its header
                raise _unreadable(directory, "P510", f"cannot read the weights in `{directory}`: {error}") from None
            yield group
    finally:
        reader.close()


def read_safetensors(directory: Path) -> dict[str, torch.Tensor] | None:
    """Every tensor of the checkpoint in ``directory`` at once (``open_weights`` + ``layer_groups``)."""
    checkpoint = open_weights(directory)
    if checkpoint is None:
        return None
    tensors: dict[str, torch.Tensor] = {}
    for group in layer_groups(checkpoint, directory):
        tensors |= group
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
        shapes = {tuple(t.shape) for t in per_expert.values()}
        if sorted(per_expert) != list(range(len(per_expert))) or len(shapes) > 1:
            # a gap, or experts of different shapes: left as they are, to be reported by name
            out.update({f"{prefix}.{e}.{proj}.weight": t for e, t in per_expert.items()})
            continue
        out[f"{prefix}.{proj}"] = torch.stack([per_expert[e] for e in range(len(per_expert))])
    for prefix in {p for p, _ in groups}:
        gate, up = out.get(f"{prefix}.gate_proj"), out.get(f"{prefix}.up_proj")
        if gate is not None and up is not None and gate.dim() == 3:
            out[f"{prefix}.gate_up_proj"] = torch.cat([gate, up], dim=1)
            del out[f"{prefix}.gate_proj"], out[f"{prefix}.up_proj"]
    return out


_KIMI_LING_RENAMES = (
    (re.compile(r"^model\.word_embeddings\."), "model.embed_tokens."),
    (re.compile(r"^(model\.layers\.\d+)\.attention\."), r"\1.self_attn."),
    (re.compile(r"\.self_attn\.dense\."), ".self_attn.o_proj."),
    (re.compile(r"\.self_attn\.(f_a_proj|f_b_proj|f_proj)\."), r".self_attn.forget_gate.\1."),
    (re.compile(r"\.self_attn\.(dt_bias|A_log)$"), r".self_attn.forget_gate.\1"),
    (re.compile(r"\.block_sparse_moe\."), ".mlp."),
    (re.compile(r"\.mlp\.gate\.expert_bias$"), ".mlp.gate.e_score_correction_bias"),
    (re.compile(r"\.experts\.(\d+)\.w1\.weight$"), r".experts.\1.gate_proj.weight"),
    (re.compile(r"\.experts\.(\d+)\.w3\.weight$"), r".experts.\1.up_proj.weight"),
    (re.compile(r"\.experts\.(\d+)\.w2\.weight$"), r".experts.\1.down_proj.weight"),
)
"""Kimi Linear's and Ling's released names -> transformers' (the renames of its ``conversion_mapping``
for ``kimi_linear`` and ``bailing_hybrid``): Ling's ``word_embeddings``, ``attention`` and
``attention.dense``, the forget gate's tensors beside the KDA mixer, Kimi's ``block_sparse_moe`` with
per-expert ``w1``/``w3``/``w2`` (gate, up, down), Ling's router ``expert_bias``."""
_KDA_CONVS = ("q_conv1d.weight", "k_conv1d.weight", "v_conv1d.weight")
"""The released KDA checkpoints' three convolutions, one per stream, that transformers (and this
backend) hold as one ``conv1d`` over q, k and v side by side."""


def _kimi_ling_names(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Kimi Linear or Ling checkpoint's released names as transformers' (``_KIMI_LING_RENAMES``),
    and each KDA layer's ``q_conv1d`` / ``k_conv1d`` / ``v_conv1d`` concatenated into ``conv1d`` (the
    three come in one layer group: ``layer_groups``); a layer holding only some of them keeps them
    as they are, to be reported by name."""
    out = _Renamed()
    convs: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for source, tensor in tensors.items():
        name = source
        for pattern, replacement in _KIMI_LING_RENAMES:
            name = pattern.sub(replacement, name)
        prefix, _, leaf = name.rpartition(".")
        stem, _, conv = prefix.rpartition(".")
        if f"{conv}.{leaf}" in _KDA_CONVS:
            convs[stem][f"{conv}.{leaf}"] = tensor
            continue
        out.source = source
        out[name] = tensor
    for stem, parts in convs.items():
        if set(parts) == set(_KDA_CONVS):
            out.source = f"{stem}.q_conv1d.weight"
            out[f"{stem}.conv1d.weight"] = torch.cat([parts[conv] for conv in _KDA_CONVS], dim=0)
        else:
            for conv, tensor in parts.items():
                out.source = f"{stem}.{conv}"
                out[f"{stem}.{conv}"] = tensor
    out.check()
    return dict(out)


_OLMO_RENAMES = (
    (re.compile(r"\.attention_layer_norm\."), ".input_layernorm."),
    (re.compile(r"\.feedforward_layer_norm\."), ".post_attention_layernorm."),
)
"""OLMo Hybrid's released names -> transformers' (the renames of its ``conversion_mapping`` for
``olmo_hybrid``, which ``save_pretrained`` writes back)."""


def _olmo_names(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An OLMo Hybrid checkpoint's released names as transformers' (``_OLMO_RENAMES``), its gated DeltaNet's
    ``q_conv1d`` / ``k_conv1d`` / ``v_conv1d`` concatenated into ``conv1d`` as KDA's (``_kimi_ling_names``,
    none of whose renames matches an OLMo name)."""
    out = _Renamed()
    for source, tensor in tensors.items():
        name = source
        for pattern, replacement in _OLMO_RENAMES:
            name = pattern.sub(replacement, name)
        out.source = source
        out[name] = tensor
    out.check()
    return _kimi_ling_names(dict(out))


def _paired(tensors: dict[str, torch.Tensor], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """Bamba / GraniteMoeHybrid decoder layers (mixer + FFN) -> one backbone layer each."""
    if spec.kda is not None or spec.mla is not None:
        tensors = _kimi_ling_names(tensors)
    elif spec.gated_deltanet is not None and spec.gated_deltanet.separate_projections:
        tensors = _olmo_names(tensors)
    pairs, _ = pair_layers(spec.pattern.flat, "paired")
    flat = spec.pattern.flat
    out = _Renamed()
    layer_name = re.compile(r"^model\.layers\.(\d+)\.([a-z_]+)\.(.*)$")
    for name, tensor in tensors.items():
        out.source = name
        if name == "model.embed_tokens.weight":
            out["backbone.embeddings.weight"] = tensor
            continue
        if name in ("model.final_layernorm.weight", "model.norm.weight", "model.embedding_norm.weight"):
            out["backbone.norm_f.weight"] = tensor
            continue
        mtp = _qwen_mtp_name(name, spec) or _ling_mtp_name(name, spec, len(pairs))
        if mtp is None:
            mtp = _deepseek_mtp_name(name, spec, len(pairs))
        if mtp is not None:
            if mtp != SHARED_COPY:
                out[mtp] = tensor
            continue
        match = layer_name.match(name)
        if not match or int(match.group(1)) >= len(pairs):
            out[name] = tensor
            continue
        j, part, rest = int(match.group(1)), match.group(2), match.group(3)
        mixer, ffn = pairs[j]
        if part == "linear_attn" and rest in _OLMO_DELTANET:  # OLMo Hybrid's o_proj / o_norm
            rest = _OLMO_DELTANET[rest]
        if part in ("mamba", "self_attn", "linear_attn", "conv"):
            lightning = by_symbol(flat[mixer]).kind == LayerKind.LIGHTNING  # MiniMax's, under `self_attn`
            if lightning and rest in DERIVED_BUFFERS:
                continue  # MiniMax's slopes and decays: recomputed from the layer's place, not weights
            rest = _LFM2_ATTENTION.get(rest, rest) if part == "self_attn" and not lightning else rest
            out[f"backbone.layers.{mixer}.{_branch(spec, mixer, part)}.{rest}"] = tensor
        elif part == "post_attention_layernorm" and rest == "weight" and post_normed(spec, mixer):
            out[f"backbone.layers.{mixer}.norm.weight"] = tensor  # OLMo: the attention's output norm
        elif part in ("input_layernorm", "operator_norm") and rest == "weight":
            out[f"backbone.layers.{mixer}.norm.weight"] = tensor
        elif ffn is None:
            out[name] = tensor
        elif (
            part in ("pre_ff_layernorm", "post_attention_layernorm", "ffn_norm", "post_feedforward_layernorm")
            and rest == "weight"
        ):
            out[f"backbone.layers.{ffn}.norm.weight"] = tensor
        elif part == "feed_forward":
            out[f"backbone.layers.{ffn}.mixer.{_feed_forward_name(rest)}"] = tensor
        elif part == "mlp":  # Qwen3-Next / Qwen3.5: a dense MLP, or the MoE with its gated shared expert
            if rest.startswith("shared_expert."):
                rest = "shared_experts." + rest[len("shared_expert.") :]
            out[f"backbone.layers.{ffn}.mixer.{rest}"] = tensor
        elif part == "block_sparse_moe":
            expert = _MIXTRAL_EXPERT.match(rest)  # MiniMax's hub names: experts.E.w1 (gate), w3 (up), w2 (down)
            if expert:
                proj = {"1": "gate_proj", "2": "down_proj", "3": "up_proj"}[expert.group(2)]
                out[f"backbone.layers.{ffn}.mixer.experts.{expert.group(1)}.{proj}.weight"] = tensor
                continue
            renamed = {
                "gate.weight": "gate.weight",
                "router.weight": "gate.weight",
                "router.layer.weight": "gate.weight",
                "experts.gate_up_proj": "experts.gate_up_proj",
                "input_linear.weight": "experts.gate_up_proj",
                "experts.down_proj": "experts.down_proj",
                "output_linear.weight": "experts.down_proj",
            }.get(rest)
            out[f"backbone.layers.{ffn}.mixer.{renamed}" if renamed else name] = tensor
        elif part == "shared_mlp":
            target = "shared_experts." if by_symbol(flat[ffn]).kind == LayerKind.MOE else ""
            if rest == "input_linear.weight" and tensor.dim() >= 1 and tensor.shape[0] % 2 == 0:
                gate, up = tensor.chunk(2, dim=0)
                out[f"backbone.layers.{ffn}.mixer.{target}gate_proj.weight"] = gate
                out[f"backbone.layers.{ffn}.mixer.{target}up_proj.weight"] = up
            elif rest == "output_linear.weight":
                out[f"backbone.layers.{ffn}.mixer.{target}down_proj.weight"] = tensor
            else:
                out[name] = tensor
        else:
            out[name] = tensor
    out.check()
    return dict(out)


_LFM2_ATTENTION = {
    "out_proj.weight": "o_proj.weight",
    "q_layernorm.weight": "q_norm.weight",
    "k_layernorm.weight": "k_norm.weight",
}
"""LFM2's attention names -> the backend's (its convolution's ``in_proj``/``conv``/``out_proj`` are kept)."""

_LFM2_MLP = re.compile(r"^((?:experts\.\d+\.)?)w([123])\.weight$")
_LFM2_PROJ = {"1": "gate_proj", "2": "down_proj", "3": "up_proj"}
_FEED_FORWARD = {
    "router.weight": "gate.weight",  # Jamba's router
    "expert_bias": "gate.e_score_correction_bias",  # LFM2-MoE's selection bias, a buffer beside its router
}


def _feed_forward_name(rest: str) -> str:
    """A ``feed_forward.`` tensor of LFM2 / LFM2-MoE (``w1`` gate, ``w3`` up, ``w2`` down, per expert on
    the hub) or Jamba (``router``) -> the backend's MLP / MoE name."""
    match = _LFM2_MLP.match(rest)
    if match:
        return f"{match.group(1)}{_LFM2_PROJ[match.group(2)]}.weight"
    return _FEED_FORWARD.get(rest, rest)


_OLMO_DELTANET = {"o_proj.weight": "out_proj.weight", "o_norm.weight": "norm.weight"}
"""OLMo Hybrid's gated DeltaNet names that differ from the backend's (Qwen's)."""

_PART_KINDS = {"mamba": LayerKind.MAMBA2, "self_attn": LayerKind.ATTENTION, "linear_attn": LayerKind.GATED_DELTANET}


def _branch(spec: ModelSpec, index: int, part: str) -> str:
    """Where a decoder layer's mixer ``part`` lives in backbone layer ``index``: ``mixer``, or in a parallel
    layer the branch of its kind (Falcon-H1's ``mamba`` beside ``self_attn``: ``parallel.0``)."""
    layers = spec.pattern.layers
    kind = _PART_KINDS.get(part)
    if index >= len(layers) or kind is None or kind not in layers[index].parallel:
        return "mixer"
    return f"parallel.{layers[index].parallel.index(kind)}"


_MIXTRAL_EXPERT = re.compile(r"^experts\.(\d+)\.w([123])\.weight$")

_LING_MTP_FUSION = {"enorm": True, "hnorm": True, "eh_proj": True, "final_layernorm": False}
"""The MTP depth's own tensors in a Ling checkpoint (first layer of the depth: True; last: False)."""


def _ling_mtp_name(name: str, spec: ModelSpec, main_layers: int) -> str | None:
    """Ling's MTP depths -> the backend's DeepSeek-style MTP layers, or None.

    The released Ling checkpoints store depth ``d`` as decoder layer ``num_hidden_layers + d``
    (``model.layers.{n + d}``: the latent attention and its FFN under the decoder layer's names, and
    beside them ``enorm``, ``hnorm``, ``eh_proj`` and ``final_layernorm``, the names SGLang's Ling MTP
    loader reads); transformers ignores those tensors (``_keys_to_ignore_on_load_unexpected``).  Only
    for a model with KDA layers: DeepSeek stores its MTP layer the same way but names its norm
    ``shared_head.norm`` and repeats the embedding and head there, which this does not map."""
    block = spec.pattern.mtp
    match = _LING_MTP_DECODER.match(name)
    if block is None or spec.kda is None or not match:  # a KDA model with MTP depths: Ling
        return None
    depth = int(match.group(1)) - main_layers
    if not 0 <= depth < block.depths:
        return None
    pairs, _ = pair_layers(block.flat, "mtp")
    if len(pairs) != 1:
        return None
    mixer, ffn = pairs[0]
    first, size = depth * len(block.layers), len(block.layers)
    part, rest = match.group(2), match.group(3)
    if part in _LING_MTP_FUSION and rest == "weight":
        return f"mtp.layers.{first if _LING_MTP_FUSION[part] else first + size - 1}.{part}.{rest}"
    if part == "self_attn":
        return f"mtp.layers.{first + mixer}.mixer.{rest}"
    if part == "input_layernorm":
        return f"mtp.layers.{first + mixer}.norm.{rest}"
    if ffn is None:
        return None
    if part == "post_attention_layernorm":
        return f"mtp.layers.{first + ffn}.norm.{rest}"
    if part == "mlp":
        return f"mtp.layers.{first + ffn}.mixer.{rest}"
    return None


SHARED_COPY = ""
"""``_deepseek_mtp_name``'s answer for a tensor that repeats one of the model's own (not read)."""
_DEEPSEEK_MTP_OWN = {
    "enorm.weight": (True, "enorm.weight"),
    "hnorm.weight": (True, "hnorm.weight"),
    "eh_proj.weight": (True, "eh_proj.weight"),
    "shared_head.norm.weight": (False, "final_layernorm.weight"),
}
"""A DeepSeek MTP depth's own tensors -> (on the depth's first layer, else its last; the backend's name)."""


def _deepseek_mtp_name(name: str, spec: ModelSpec, main_layers: int) -> str | None:
    """DeepSeek-V3 / V3.2's released MTP depths -> the backend's MTP layers, ``SHARED_COPY``, or None.

    The hub checkpoints store depth ``d`` as decoder layer ``num_hidden_layers + d``: the latent
    attention and its FFN under the decoder layer's names, ``enorm``, ``hnorm``, ``eh_proj``, the final
    ``shared_head.norm``, and copies of the embedding and the head (``embed_tokens``,
    ``shared_head.head``: the model's own tensors again, DeepSeek's MTP shares them, so they are not
    read).  transformers drops the whole layer (``_keys_to_ignore_on_load_unexpected``).  Only for a
    latent-attention model without KDA layers (Ling's depths, named otherwise, are ``_ling_mtp_name``'s)."""
    block = spec.pattern.mtp
    match = _LING_MTP_DECODER.match(name)
    if block is None or spec.kda is not None or (spec.mla is None and spec.dsa is None) or not match:
        return None
    depth = int(match.group(1)) - main_layers
    pairs, _ = pair_layers(block.flat, "mtp")
    if not 0 <= depth < block.depths or len(pairs) != 1:
        return None
    mixer, ffn = pairs[0]
    first, size = depth * len(block.layers), len(block.layers)
    part, rest = match.group(2), match.group(3)
    own = _DEEPSEEK_MTP_OWN.get(f"{part}.{rest}")
    if own is not None:
        return f"mtp.layers.{first if own[0] else first + size - 1}.{own[1]}"
    if f"{part}.{rest}" in ("embed_tokens.weight", "shared_head.head.weight"):
        return SHARED_COPY
    if part == "self_attn":
        return f"mtp.layers.{first + mixer}.mixer.{rest}"
    if part == "input_layernorm":
        return f"mtp.layers.{first + mixer}.norm.{rest}"
    if ffn is not None and part == "post_attention_layernorm":
        return f"mtp.layers.{first + ffn}.norm.{rest}"
    if ffn is not None and part == "mlp":
        return f"mtp.layers.{first + ffn}.mixer.{rest}"
    return None


_LING_MTP_DECODER = re.compile(r"^model\.layers\.(\d+)\.([a-z_]+)\.(.*)$")

_QWEN_MTP_LAYER = re.compile(r"^mtp\.layers\.(\d+)\.([a-z_]+)\.(.*)$")


def _qwen_mtp_name(name: str, spec: ModelSpec) -> str | None:
    """Qwen3-Next / Qwen3.5 hub MTP names -> the backend's DeepSeek-style MTP layers, or None.

    Qwen's block is ``fc(cat(pre_fc_norm_embedding(emb), pre_fc_norm_hidden(h)))``, its decoder
    layers ``mtp.layers.J`` (mixer + FFN pairs, in the one depth the family reads), then ``mtp.norm``:
    the backend's ``eh_proj(cat(enorm(emb), hnorm(h)))``, layers, ``final_layernorm``."""
    block = spec.pattern.mtp
    if block is None or not name.startswith("mtp."):
        return None
    last = len(block.layers) - 1
    fixed = {
        "mtp.fc.weight": "mtp.layers.0.eh_proj.weight",
        "mtp.pre_fc_norm_embedding.weight": "mtp.layers.0.enorm.weight",
        "mtp.pre_fc_norm_hidden.weight": "mtp.layers.0.hnorm.weight",
        "mtp.norm.weight": f"mtp.layers.{last}.final_layernorm.weight",
    }
    if name in fixed:
        return fixed[name]
    match = _QWEN_MTP_LAYER.match(name)
    pairs, _ = pair_layers(block.flat, "mtp")
    if not match or int(match.group(1)) >= len(pairs):
        return None
    mixer, ffn = pairs[int(match.group(1))]
    part, rest = match.group(2), match.group(3)
    if part in ("self_attn", "linear_attn"):
        return f"mtp.layers.{mixer}.mixer.{rest}"
    if part == "input_layernorm":
        return f"mtp.layers.{mixer}.norm.{rest}"
    if ffn is None:
        return None
    if part == "post_attention_layernorm":
        return f"mtp.layers.{ffn}.norm.{rest}"
    if part == "mlp":
        if rest.startswith("shared_expert."):
            rest = "shared_experts." + rest[len("shared_expert.") :]
        return f"mtp.layers.{ffn}.mixer.{rest}"
    return None


class _Renamed(dict[str, torch.Tensor]):
    """Renamed tensors that remember which checkpoint name each came from: two names for one model
    tensor (``model.norm.weight`` and ``model.final_layernorm.weight``) are a ``P404``, not a silent pick."""

    def __init__(self) -> None:
        super().__init__()
        self.source = ""
        self.origins: dict[str, str] = {}
        self.clashes: list[str] = []

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        if key in self.origins:
            self.clashes.append(f"`{self.origins[key]}` and `{self.source}` both give `{key}`")
        self.origins[key] = self.source
        super().__setitem__(key, value)

    def check(self) -> None:
        if self.clashes:
            raise PatternError(
                [
                    diag(
                        "P404",
                        f"{len(self.clashes)} tensor(s) of the model are given twice by the "
                        "checkpoint, under two names",
                        None,
                        notes=sorted(self.clashes),
                        help="keep one of each pair",
                    )
                ],
                Source("", "<checkpoint>"),
            )


def paired_names(names: Iterable[str]) -> bool:
    """Whether checkpoint names are Bamba / GraniteMoeHybrid's (one decoder layer per mixer + FFN pair)."""
    return any(
        (text_name(name) or "").startswith(("model.embed_tokens.", "model.word_embeddings."))
        or ".block_sparse_moe." in name
        or ".feed_forward." in name
        or ".pre_ff_layernorm." in name
        for name in names
    )


def to_backend_names(
    tensors: dict[str, torch.Tensor], spec: ModelSpec, *, paired: bool | None = None
) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's tensors to this backend's names (unknown names pass through unchanged).

    ``paired`` says which naming the checkpoint uses when ``tensors`` is only a part of it.  A
    multimodal checkpoint's language model is read, its vision tower left out (``text_name``).
    """
    tensors = _text_tensors(tensors)
    if paired if paired is not None else paired_names(tensors):
        tensors = _paired(tensors, spec)
    else:
        renamed = _Renamed()
        for name, tensor in tensors.items():
            renamed.source = name
            renamed["backbone." + name[len("model.") :] if name.startswith("model.") else name] = tensor
        renamed.check()
        tensors = dict(renamed)
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
