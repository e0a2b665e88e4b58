"""Which keys of the source config reach a built ``config.json``, and why the others do not.

``patternc build`` writes the model's math from the ``ModelSpec`` (``express_<arch>(spec).config``),
which holds only what changes a layer's computation.  A config says more than that: numerics
(``initializer_range``, ``time_step_max``, ``expand``), runtime settings (``use_cache``,
``mamba_ssm_cache_dtype``, ``sliding_window``), token ids and the dtype.  Dropping them silently
loses what the user gave, and a dropped ``expand`` even makes ``check`` of the output warn (P909)
where the source was clean.  The rule, per source key (after aliases: ``mamba_n_groups`` is read
as ``n_groups``):

1. Identity keys (``model_type``, ``architectures``, ``transformers_version``) are written anew.
2. A key the model's expression writes keeps the expression's value (equal to the source's,
   or the value transformers uses, which ``verify`` compares and reports when they differ).
3. A layout key the target spells another way (``hybrid_override_pattern``, a Bamba
   ``attn_layer_indices`` built as GraniteMoeHybrid ``layer_types``) is carried by that key;
   ``torch_dtype`` is written as ``dtype``; RoPE keys are carried by ``rope_parameters``.
4. Same family: every other key is copied, unknown ones included (transformers keeps unknown
   keys through ``from_pretrained``/``save_pretrained`` as well), except the few that describe the
   source files rather than the model (``auto_map``, ``_name_or_path``, ``quantization_config``).
5. Another family: a key is copied when the target's class knows it *and* it means the same in
   both (``NEUTRAL_KEYS``); any other is not written, and the reason says so.

Keys not written are reported: a ``P513`` note for keys of the source config, a ``P512`` error
for keys the user gave with ``--set`` (asked for explicitly, so never dropped quietly).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from patternc.diagnostics import Diagnostic, diag
from patternc.model import ModelSpec
from patternc.model_keys import IDENTITY_KEYS, roles

NOT_CARRIED: dict[str, str] = {
    "auto_map": "it names remote-code files that the output does not hold; transformers' own class reads the output",
    "_name_or_path": "it names where the source was loaded from, not the output",
    "name_or_path": "it names where the source was loaded from, not the output",
    "quantization_config": "it describes quantized weights, and patternc writes unquantized weights (or none)",
    "llm_config": "it is the wrapper's nested config; the language model's keys are written at the top level",
    "text_config": "it is the wrapper's nested config; the language model's keys are written at the top level",
}
"""Keys that describe the source's files or packaging rather than the model: never copied."""

NEUTRAL_KEYS = frozenset(
    {
        "use_cache",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "initializer_range",
        "dtype",
        "output_hidden_states",
        "output_attentions",
        "return_dict",
        "chunk_size_feed_forward",
        "id2label",
        "label2id",
        "problem_type",
        "tokenizer_class",
        "output_router_logits",
        "router_aux_loss_coef",
        "attention_dropout",
        "max_position_embeddings",
        "num_logits_to_keep",
        # the Mamba2 lineage (Mamba2Config, NemotronHConfig): the same dt initialisation and residual dtype
        "time_step_min",
        "time_step_max",
        "time_step_floor",
        "residual_in_fp32",
    }
)
"""Keys that mean the same in every family whose class has them, so they cross families.

Not ``rescale_prenorm_residual``: NemotronHConfig defaults it to true, and Mamba2ForCausalLM with it
true rescales ``out_proj`` by 1/sqrt(layers) after loading the weights (transformers 5.24: logits
off by 0.58 on a 3-layer test model), so carried from Nemotron-H it would change the model."""

MODEL = "*"
"""``Carried.written`` value of a key held by the target's own keys for the same model (another
family spells the same hyper-parameter otherwise: Nemotron-H ``mamba_num_heads`` is Mamba2 ``num_heads``)."""

LAYOUT_SPELLINGS = frozenset(
    {
        "layers_block_type",
        "hybrid_override_pattern",
        "layer_types",
        "num_hidden_layers",
        "mtp_layers_block_type",
        "mtp_hybrid_override_pattern",
        "num_nextn_predict_layers",
        "attn_layer_indices",
        "full_attention_interval",
        "mlp_only_layers",
        "decoder_sparse_step",
        "attn_layer_period",
        "attn_layer_offset",
        "expert_layer_period",
        "expert_layer_offset",
    }
)
"""Keys that place layers in some family: the target's own layout keys carry their content."""

ROPE_SPELLINGS = frozenset({"rope_scaling", "rope_theta", "partial_rotary_factor", "rope_parameters"})

_LAYOUT_OUT = ("layers_block_type", "layer_types", "attn_layer_indices", "num_hidden_layers")


@dataclass
class Carried:
    """What happens to each source key: the fields to add, and the account of every key."""

    fields: dict[str, Any] = field(default_factory=dict)
    """Keys to write besides the expression's (already merged by ``plan``)."""
    written: dict[str, str] = field(default_factory=dict)
    """Source key -> the output key that holds it (itself, or the key that carries its content)."""
    dropped: dict[str, str] = field(default_factory=dict)
    """Source key -> why it is not in the output."""
    carriers: set[str] = field(default_factory=set)
    """Source keys held by another output key with another spelling of their content (the layout,
    RoPE): ``verify`` does not compare their values."""


def known_keys(arch: str) -> frozenset[str]:
    """The keys transformers' class for ``arch`` reads (patternc's mirror of it, drift-tested)."""
    from patternc.config import known_keys as config_known_keys

    return frozenset(config_known_keys(arch))


def plan(spec: ModelSpec, arch: str, fields: Mapping[str, Any], source: Mapping[str, Any]) -> Carried:
    """Decide every source key (see the module docstring); ``fields`` are the expression's."""
    from patternc.config import ALIASES

    out = Carried()
    same_family = arch == spec.source
    model_keys, inert_keys = roles(spec.source, source) if not same_family else (frozenset(), frozenset())
    known = known_keys(arch)
    aliases = ALIASES.get(spec.source, {})
    layout_key = next((k for k in _LAYOUT_OUT if k in fields), None)
    for spelled, value in source.items():
        key = aliases.get(spelled, spelled) if aliases.get(spelled, spelled) not in source else spelled
        if key in IDENTITY_KEYS:
            out.written[spelled] = key
        elif key in NOT_CARRIED:
            out.dropped[spelled] = NOT_CARRIED[key]
        elif key in fields:
            out.written[spelled] = key
        elif key == "torch_dtype":
            if "dtype" in source and source["dtype"] != value:
                out.dropped[spelled] = f"`dtype` ({source['dtype']!r}) is given too and wins, as in transformers"
            else:
                out.fields.setdefault("dtype", value)
                out.written[spelled] = "dtype"
        elif same_family and key in _LIST_OF and _LIST_OF[key] in fields:
            out.written[spelled] = _LIST_OF[key]  # transformers turns the string into the list and drops it
            out.carriers.add(spelled)
        elif same_family and arch == "nemotron_h" and key == "num_hidden_layers" and layout_key is not None:
            out.written[spelled] = layout_key  # a property of NemotronHConfig: the list's length
            out.carriers.add(spelled)
        elif not same_family and key in _MTP_KEYS:
            out.dropped[spelled] = f"`{arch}` has no multi-token prediction, and the model has none"
        elif not same_family and key in LAYOUT_SPELLINGS and layout_key is not None:
            out.written[spelled] = layout_key  # the target's own layout key holds the same layers
            out.carriers.add(spelled)
        elif key in ROPE_SPELLINGS and "rope_parameters" in fields:
            out.written[spelled] = "rope_parameters"
            out.carriers.add(spelled)
        elif not same_family and key in known and key in NEUTRAL_KEYS and (why := _invalid(arch, key, value)):
            out.dropped[spelled] = f"{_shown(value)} is not a valid `{key}` for `{arch}`: {why}"
        elif same_family or (key in known and key in NEUTRAL_KEYS):
            out.fields[key] = value
            out.written[spelled] = key
        elif key in model_keys:  # the exact expression writes the model in the target's own keys
            out.written[spelled] = MODEL
            out.carriers.add(spelled)
        elif key in inert_keys:
            out.dropped[spelled] = f"it has no effect on this model (a P913 note of `check`), so `{arch}` needs none"
        elif key in known:
            out.dropped[spelled] = (
                f"`{key}` of a `{spec.source}` config does not mean the same in `{arch}`; "
                f"the model is written in `{arch}`'s own keys"
            )
        else:
            out.dropped[spelled] = f"transformers' `{arch}` config has no `{key}`"
    return out


def _invalid(arch: str, key: str, value: object) -> str | None:
    """Why ``value`` is out of range for ``key`` in ``arch``'s config, or None (same-named keys may
    differ in range: Nemotron-H's ``time_step_min`` may be 0, Mamba2's, a logarithm's argument, not)."""
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    from patternc import families

    field_info = families.get(arch).input_model.model_fields.get(key)
    if field_info is None:
        return None
    adapter: TypeAdapter[Any] = TypeAdapter(field_info.rebuild_annotation(), config=ConfigDict(strict=True))
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        message = error.errors()[0]["msg"]
        return message[0].lower() + message[1:]
    return None


_LIST_OF = {"hybrid_override_pattern": "layers_block_type", "mtp_hybrid_override_pattern": "mtp_layers_block_type"}
_MTP_KEYS = frozenset({"mtp_layers_block_type", "mtp_hybrid_override_pattern", "num_nextn_predict_layers"})


def same(source: object, written: object) -> bool:
    """Whether a written value says what the source value said (numbers by value, tuples as lists,
    legacy layer names as current ones, a written dict may add keys the source left to defaults)."""
    if isinstance(source, Mapping):
        return isinstance(written, Mapping) and all(k in written and same(v, written[k]) for k, v in source.items())
    if isinstance(source, list | tuple):
        if not isinstance(written, list | tuple) or len(source) != len(written):
            return False
        return all(same(a, b) for a, b in zip(source, written, strict=True))
    if isinstance(source, bool) or isinstance(written, bool):
        return source is written or (source == written and type(source) is type(written))
    if isinstance(source, int | float) and isinstance(written, int | float):
        return source == written or (math.isnan(source) and math.isnan(written))
    if isinstance(source, str) and isinstance(written, str):
        return _LEGACY.get(source, source) == _LEGACY.get(written, written)
    return source == written


_LEGACY = {"mamba": "linear_attention", "attention": "full_attention"}


def verify(carried: Carried, source: Mapping[str, Any], config: Any, arch: str) -> None:
    """Check each source key against the config transformers built: a same-named key whose value
    differs, or that the class does not keep, moves to ``dropped`` with what was written instead.

    ``save_pretrained`` writes ``to_diff_dict()``, which leaves out values equal to the base class
    defaults; such a key still reads back with its value (it is in ``to_dict()``), so it counts as
    written.  A key the class accepts but never serialises (transformers 5 turns ``rope_scaling`` into
    ``rope_parameters``, and a class without RoPE keeps neither) is dropped, with its reason."""
    written = config.to_diff_dict()
    kept = config.to_dict()  # every key the class serialises; an attribute it only reads (5.x's `rope_scaling`) is not
    missing = object()
    for spelled, into in list(carried.written.items()):
        if into in IDENTITY_KEYS or spelled in carried.carriers:
            continue
        real = getattr(config, "attribute_map", {}).get(into, into)  # e.g. Kimi's num_local_experts -> num_experts
        value = written[real] if real in written else kept.get(real, missing)
        if value is missing:
            del carried.written[spelled]
            carried.dropped[spelled] = f"transformers' `{arch}` config does not keep `{into}` (it derives it)"
        elif not same(source[spelled], value):
            del carried.written[spelled]
            why = "the weights' dtype" if into == "dtype" else f"the value `{arch}` builds the model with"
            carried.dropped[spelled] = f"written as {_shown(value)}, {why}, not {_shown(source[spelled])}"


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diagnostics(carried: Carried, set_keys: Collection[str], default_keys: Collection[str]) -> list[Diagnostic]:
    """P512 for each ``--set`` key not written; one P513 note for the source's other keys not written.

    ``default_keys`` are keys patternc filled itself (a bare pattern's defaults): nothing to report."""
    problems: list[Diagnostic] = []
    for key in sorted(k for k in carried.dropped if k in set_keys):
        problems.append(
            diag(
                "P512",
                f"`--set {key}` cannot be written: {carried.dropped[key]}",
                None,
                help="drop this `--set`, or choose a `--target` whose config has the key (`--target nemotron_h` "
                "writes every NemotronHConfig key)",
            )
        )
    rest = [k for k in carried.dropped if k not in set_keys and k not in default_keys]
    if rest:
        problems.append(
            diag(
                "P513",
                f"{len(rest)} key{'s' if len(rest) > 1 else ''} of the source config not written: "
                + ", ".join(f"`{k}`" for k in rest),
                None,
                notes=reason_notes({k: carried.dropped[k] for k in rest}),
            )
        )
    return problems


def reason_notes(dropped: Mapping[str, str]) -> tuple[str, ...]:
    """One note per reason, naming every key it covers: six MoE keys dropped for one reason are one line."""
    keys_by_reason: dict[str, list[str]] = {}
    for key, reason in dropped.items():
        keys_by_reason.setdefault(reason, []).append(key)
    return tuple(", ".join(f"`{k}`" for k in keys) + f": {reason}" for reason, keys in keys_by_reason.items())


def complete(spec: ModelSpec, arch: str, fields: dict[str, Any]) -> None:
    """Fill ``expand`` for Nemotron-H when neither the expression nor the source gave it.

    NemotronHConfig's default ``expand`` is 2, but its mixer sizes itself by heads x head size;
    ``check`` compares the two (P909), so a build without the key would warn about its own output
    whenever the inner size is not twice the hidden size (a bare pattern's defaults: 1 x 64)."""
    if arch != "nemotron_h" or "expand" in fields or spec.mamba is None:
        return
    inner = spec.mamba.num_heads * spec.mamba.head_dim
    if inner % spec.hidden_size == 0:
        fields["expand"] = inner // spec.hidden_size
