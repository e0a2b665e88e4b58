"""Config ingestion: a model's ``config.json`` (any supported dialect) into the IR.

    reading = read_config("checkpoints/Nemotron-H-8B")      # a directory, a file or a dict
    reading.spec        # ModelSpec, or None when there are errors
    reading.diagnostics # every problem and note, sorted; never raised

Supported ``model_type`` values: ``nemotron_h`` (every spelling seen in the wild, also nested under
``llm_config`` or ``text_config`` by vision-language wrappers), ``bamba``, ``granitemoehybrid``,
``mamba2``, ``qwen3_next``; ``jamba`` and ``zamba2`` are read and their layout reported, with a
diagnostic saying why the IR cannot express them.  Keys a config omits take the defaults of
transformers' own config class (listed in a ``P911`` note); unknown keys are kept and listed in a
``P912`` note.  Files larger than ``MAX_CONFIG_BYTES`` (16 MiB) are refused before being read.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from patternc.codes import Severity
from patternc.config._load import MAX_CONFIG_BYTES, MAX_DEPTH, load, locate
from patternc.config.models import COMMON_KEYS, INPUT_MODELS, ConfigModel
from patternc.diagnostics import Diagnostic, diag, has_errors, sort_diagnostics
from patternc.ir import Pattern
from patternc.model import ModelSpec
from patternc.source import Source

__all__ = [
    "ARCHITECTURES",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "SUPPORTED_MODEL_TYPES",
    "ConfigReading",
    "read_config",
]

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(INPUT_MODELS)

ARCHITECTURES: dict[str, str] = {
    "NemotronHForCausalLM": "nemotron_h",
    "NemotronHModel": "nemotron_h",
    "BambaForCausalLM": "bamba",
    "GraniteMoeHybridForCausalLM": "granitemoehybrid",
    "JambaForCausalLM": "jamba",
    "Mamba2ForCausalLM": "mamba2",
    "Qwen3NextForCausalLM": "qwen3_next",
    "Zamba2ForCausalLM": "zamba2",
}
"""``architectures`` entries that identify a dialect when ``model_type`` is missing."""

WRAPPERS = ("llm_config", "text_config")
"""Keys under which vision-language wrappers nest the language model's config."""

ALIASES: dict[str, dict[str, str]] = {
    "nemotron_h": {
        # NemotronHConfig.__post_init__ (configuration_nemotron_h.py:156-166): Megatron-style names
        "mamba_n_groups": "n_groups",
        "mamba_d_conv": "conv_kernel",
        "mamba_expand": "expand",
        "mamba_dt_min": "time_step_min",
        "mamba_dt_max": "time_step_max",
        "mamba_dt_limit": "time_step_limit",
        "mamba_dt_init_floor": "time_step_floor",
        "mamba_conv_bias": "use_conv_bias",
        "mamba_chunk_size": "chunk_size",
        # attribute_map (configuration_nemotron_h.py:84)
        "layer_types": "layers_block_type",
        "num_local_experts": "n_routed_experts",
        # NVIDIA's remote code (Nemotron-H-8B/56B): transformers 5 ignores it, see _aliases
        "attention_head_dim": "head_dim",
    },
    "granitemoehybrid": {"layers_block_type": "layer_types"},
    "jamba": {"num_local_experts": "num_experts"},
}
"""Alternative spellings each dialect accepts: alias -> field."""

LAYOUT_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "nemotron_h": (("layers_block_type", "hybrid_override_pattern"),),
    "bamba": (("num_hidden_layers",), ("attn_layer_indices",)),
    "granitemoehybrid": (("layer_types",),),
    "mamba2": (("num_hidden_layers",),),
    "qwen3_next": (("layer_types", "num_hidden_layers"),),
    "jamba": (("num_hidden_layers",),),
    "zamba2": (("layers_block_type", "num_hidden_layers"),),
}
"""The keys that carry each dialect's layer stack, as groups: a config must hold one key of every
group (after aliases: ``layer_types`` counts for Nemotron-H's ``layers_block_type``).  Without
them transformers builds its own default stack (Nemotron-H: 4 layers ``ME*-``; Bamba: 32 Mamba
layers; …), which is never what a released config means, so a missing group is an error (P917)."""

LAYOUT_RELATED: dict[str, tuple[str, ...]] = {
    "nemotron_h": ("mtp_layers_block_type", "mtp_hybrid_override_pattern", "num_nextn_predict_layers"),
    "qwen3_next": ("full_attention_interval", "mlp_only_layers", "decoder_sparse_step"),
    "jamba": ("attn_layer_period", "attn_layer_offset", "expert_layer_period", "expert_layer_offset"),
}
"""Further keys that place layers (MTP, attention and expert placement): a misspelling of one of
them, while it is absent, silently moves layers, so it is an error too (P917)."""

SIMILARITY = 0.8
"""difflib ratio above which an unknown key is taken for a misspelling of a known one."""


@dataclass(frozen=True, slots=True)
class ConfigReading:
    """Everything read from one config; never raised, always returned."""

    spec: ModelSpec | None
    """The model IR, or None when there are errors (or the dialect is not expressible)."""
    dialect: str | None
    """The ``model_type`` read (``nemotron_h``, ``bamba``, …), or None when it is not known."""
    diagnostics: list[Diagnostic]
    source: Source
    """The JSON text (a dict is serialised with indent 2) that diagnostic spans point into."""
    defaults_used: dict[str, object] = field(default_factory=dict)
    """Absent key -> the transformers default used for it."""
    unknown_keys: list[str] = field(default_factory=list)
    """Keys the dialect's transformers class does not define (kept, and reported in a P912 note)."""
    pattern: Pattern | None = None
    """The layer layout (also set for Jamba, whose mixers the spec cannot express)."""
    values: dict[str, Any] = field(default_factory=dict)
    """The dialect's keys as transformers reads them (aliases renamed to their field, a nested
    config's own keys): what ``patternc build`` carries into the config it writes."""
    model_keys: frozenset[str] = frozenset()
    """Keys of ``values`` the reader turned into the model (the spec says what they said)."""
    inert_keys: frozenset[str] = frozenset()
    """Keys of ``values`` that have no effect on this model (named by a P913 note)."""

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def read_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    origin: str | None = None,
    max_bytes: int = MAX_CONFIG_BYTES,
) -> ConfigReading:
    """Read a config file, a directory holding ``config.json``, or a parsed dict into the IR.

    User errors (a missing file, bad JSON, a wrong value, an inconsistent pair of fields) are
    diagnostics in the result; this never raises them.
    """
    text_source, data, problems = load(source, origin, max_bytes)
    if data is None:
        return ConfigReading(None, None, sort_diagnostics(problems), text_source)
    dialect, inner, prefix, base, found = _detect(data, text_source)
    problems.extend(found)
    if dialect is None or inner is None:
        return ConfigReading(None, dialect, sort_diagnostics(problems), text_source)
    return _read(dialect, inner, prefix, base, text_source, problems)


def _detect(
    data: dict[str, Any], source: Source
) -> tuple[str | None, dict[str, Any] | None, str, int, list[Diagnostic]]:
    model_type = data.get("model_type")
    if isinstance(model_type, str) and model_type in INPUT_MODELS:
        return model_type, data, "", 0, []
    for wrapper in WRAPPERS:
        inner = data.get(wrapper)
        if isinstance(inner, dict):
            inner_type = inner.get("model_type")
            archs = inner.get("architectures")
            if (isinstance(inner_type, str) and inner_type in INPUT_MODELS) or _from_architectures(archs):
                span = locate(source.text, wrapper)
                dialect, _, _, _, found = _detect(inner, source)
                note = diag(
                    "P915",
                    f"read the language model's config nested under `{wrapper}`"
                    + (f" of the `{model_type}` wrapper" if isinstance(model_type, str) else ""),
                    span,
                    label="nested config",
                )
                return dialect, inner, wrapper + ".", span.end if span else 0, [note, *found]
    arch = _from_architectures(data.get("architectures"))
    if arch is not None and model_type is None:
        note = diag(
            "P915",
            f"no `model_type`: the dialect `{arch}` comes from `architectures`",
            locate(source.text, "architectures"),
            label="dialect from architectures",
        )
        return arch, data, "", 0, [note]
    supported = ", ".join(f"`{t}`" for t in SUPPORTED_MODEL_TYPES)
    if model_type is None:
        message = "the config has no `model_type` (and no known `architectures`)"
    elif isinstance(model_type, str):
        message = f"`model_type` is {model_type!r}, which is not a hybrid family patternc reads"
    else:
        message = f"`model_type` is {_shown(model_type)}, not a string"
    problem = diag(
        "P905",
        message,
        locate(source.text, "model_type"),
        label="unsupported model type",
        help=f"supported model types: {supported}",
    )
    return None, None, "", 0, [problem]


def _from_architectures(archs: object) -> str | None:
    if isinstance(archs, list):
        for arch in archs:
            if isinstance(arch, str) and arch in ARCHITECTURES:
                return ARCHITECTURES[arch]
    return None


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _aliases(
    dialect: str, data: dict[str, Any], source: Source, prefix: str, base: int
) -> tuple[dict[str, Any], dict[str, str], list[Diagnostic]]:
    """Rename alias keys to their field, as transformers does (the alias wins a conflict)."""
    canonical = dict(data)
    renamed: dict[str, str] = {}
    problems: list[Diagnostic] = []
    used: list[str] = []
    for alias, target in ALIASES.get(dialect, {}).items():
        if alias not in data:
            continue
        value = canonical.pop(alias)
        if alias == "attention_head_dim":
            # NVIDIA's remote code reads attention_head_dim; transformers 5 ignores it (head_dim: 128).
            if target in data:
                if data[target] != value:
                    problems.append(
                        diag(
                            "P916",
                            f"`{prefix}attention_head_dim` ({_shown(value)}) differs from `{prefix}head_dim` "
                            f"({_shown(data[target])}); transformers uses `head_dim`",
                            locate(source.text, alias, base),
                            label="ignored",
                        )
                    )
                continue
            if value != 128:
                problems.append(
                    diag(
                        "P916",
                        f"`{prefix}attention_head_dim` is {_shown(value)}, but transformers 5 ignores this key and "
                        "builds head_dim 128; add `head_dim` to the config",
                        locate(source.text, alias, base),
                        label="ignored by transformers",
                    )
                )
        elif target in data and data[target] != value:
            problems.append(
                diag(
                    "P916",
                    f"`{prefix}{alias}` ({_shown(value)}) and `{prefix}{target}` ({_shown(data[target])}) disagree; "
                    f"transformers uses `{alias}`",
                    locate(source.text, target, base),
                    label="ignored",
                )
            )
        canonical[target] = value
        renamed[target] = alias
        used.append(f"`{prefix}{alias}` for `{target}`")
    if used:
        first = next(iter(renamed.values()))
        problems.append(
            diag(
                "P915",
                f"read the alternative spelling{'s' if len(used) > 1 else ''} {', '.join(used)}",
                locate(source.text, first, base),
                label="alias",
            )
        )
    return canonical, renamed, problems


def _read(
    dialect: str, data: dict[str, Any], prefix: str, base: int, source: Source, problems: list[Diagnostic]
) -> ConfigReading:
    from patternc.config import _build

    canonical, renamed, found = _aliases(dialect, data, source, prefix, base)
    problems.extend(found)
    model_class = INPUT_MODELS[dialect]
    try:
        model = model_class.model_validate(canonical)
    except ValidationError as error:
        problems.extend(_validation_problems(error, canonical, renamed, source, prefix, base))
        return ConfigReading(None, dialect, sort_diagnostics(problems), source)
    ctx = _build.Ctx(model, source, prefix, base, renamed)
    layout, flagged = _layout_problems(dialect, model, data, source, prefix, base)
    ctx.diagnostics.extend(layout)
    misspelled = _misspellings(dialect, model, data)
    built = _build.BUILDERS[dialect](ctx)
    pattern = None
    blocking = [d for d in ctx.diagnostics if d.severity is Severity.ERROR and d.code != "P914"]
    if built.main is not None and not blocking:
        pattern = _build.combine(ctx, built)
    spec = None
    if pattern is not None and built.specs.get("expressible", True) and not has_errors(ctx.diagnostics):
        spec = _spec(ctx, dialect, pattern, built.specs)
    problems.extend(ctx.diagnostics)
    if has_errors(ctx.diagnostics) and not all(
        d.code == "P914" for d in ctx.diagnostics if d.severity is Severity.ERROR
    ):
        pattern = None
    unknown = [k for k in _unknown(model, dialect, ctx.reported) if k not in flagged]
    for key in sorted(k for k in misspelled if k in unknown):
        guess = misspelled[key]
        problems.append(
            diag(
                "P918",
                f"`{prefix}{key}` is not a key of transformers' `{dialect}` config; did you mean `{prefix}{guess}`?",
                locate(source.text, key, base),
                label="unknown key",
                help=f"`{prefix}{guess}` is absent, so transformers' default is used for it and `{prefix}{key}` "
                "is ignored; rename the key if it was meant",
            )
        )
    unknown = [k for k in unknown if k not in misspelled]
    if unknown:
        problems.append(
            diag(
                "P912",
                f"{len(unknown)} key{'s' if len(unknown) > 1 else ''} unknown to transformers' `{dialect}` config, "
                f"kept but not used: {', '.join(f'`{prefix}{k}`' for k in unknown)}",
                locate(source.text, unknown[0], base),
                label="unknown key",
            )
        )
    if ctx.defaults_used:
        names = list(ctx.defaults_used)
        problems.append(
            diag(
                "P911",
                f"{len(names)} key{'s' if len(names) > 1 else ''} absent, transformers' default used: "
                + ", ".join(f"`{n}`" for n in names),
                None,
                notes=tuple(f"{n} = {value!r}" for n, value in ctx.defaults_used.items()),
            )
        )
    return ConfigReading(
        spec,
        dialect,
        sort_diagnostics(problems),
        source,
        dict(ctx.defaults_used),
        [prefix + k for k in unknown],
        pattern,
        canonical,
        frozenset(k for k in ctx.read if k in canonical),
        frozenset(k for k in ctx.reported if k in canonical),
    )


def known_keys(dialect: str) -> set[str]:
    """Every key transformers' class for ``dialect`` reads: fields, accepted aliases and common keys."""
    return set(INPUT_MODELS[dialect].model_fields) | set(ALIASES.get(dialect, {})) | set(COMMON_KEYS)


def _spellings(dialect: str, field_name: str) -> list[str]:
    """A field's name and the aliases transformers also reads for it."""
    return [field_name, *(alias for alias, target in ALIASES.get(dialect, {}).items() if target == field_name)]


def _layout_problems(
    dialect: str, model: ConfigModel, data: dict[str, Any], source: Source, prefix: str, base: int
) -> tuple[list[Diagnostic], set[str]]:
    """P917 for each layout group the config leaves out, pointing at a misspelling of it when there
    is one; also P917 for a misspelled layout-related key (MTP, placement).  Returns the problems
    and the unknown keys they name.  A layout key given as null counts as missing (transformers
    then fills it from its defaults just the same)."""
    present = {name for name in model.model_fields_set if getattr(model, name) is not None}
    unknown = [k for k in data if k not in known_keys(dialect)]
    problems: list[Diagnostic] = []
    flagged: set[str] = set()

    def misspelled(key: str, guess: str, consequence: str) -> None:
        flagged.add(key)
        problems.append(
            diag(
                "P917",
                f"`{prefix}{key}` is not a key of transformers' `{dialect}` config; did you mean `{prefix}{guess}`? "
                + consequence,
                locate(source.text, key, base),
                label=f"did you mean `{guess}`?",
                help=f"rename `{prefix}{key}` to `{prefix}{guess}`",
            )
        )

    for group in LAYOUT_KEYS.get(dialect, ()):
        if any(name in present for name in group):
            continue
        spellings = [spelled for name in group for spelled in _spellings(dialect, name)]
        guesses = {k: m[0] for k in unknown if (m := difflib.get_close_matches(k, spellings, n=1, cutoff=SIMILARITY))}
        for key, guess in guesses.items():
            misspelled(key, guess, "Without it the layer stack is transformers' default")
        if guesses:
            continue
        names = [f"`{prefix}{s}`" for s in spellings]
        wanted = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        problems.append(
            diag(
                "P917",
                f"the `{dialect}` config has no {wanted}: nothing says how many layers there are or which is which, "
                "and transformers would build its default stack",
                locate(source.text, "model_type", base),
                label="layer layout missing",
                help=f"add {wanted} (the layer stack) to the config",
            )
        )
    for name in LAYOUT_RELATED.get(dialect, ()):
        if name in present:
            continue
        spellings = _spellings(dialect, name)
        for key in unknown:
            match = difflib.get_close_matches(key, spellings, n=1, cutoff=SIMILARITY)
            if match and key not in flagged:
                misspelled(key, match[0], "Without it transformers places these layers by its default")
    return problems, flagged


def _misspellings(dialect: str, model: ConfigModel, data: dict[str, Any]) -> dict[str, str]:
    """Unknown key -> the known key it most resembles, when that one is absent (and so defaulted).

    With its look-alike present an unknown key is an extra (P912), not a misspelling."""
    known = known_keys(dialect)
    aliases = ALIASES.get(dialect, {})
    present = set(model.model_fields_set) | set(data)
    candidates = sorted(
        k for k in known if k not in present and aliases.get(k, k) not in present and k not in COMMON_KEYS
    )
    out: dict[str, str] = {}
    for key in data:
        if key in known or key in WRAPPERS:
            continue
        match = difflib.get_close_matches(key, candidates, n=1, cutoff=SIMILARITY)
        if match:
            out[key] = match[0]
    return out


def _unknown(model: ConfigModel, dialect: str, reported: set[str]) -> list[str]:
    extra = model.model_extra or {}
    return sorted(k for k in extra if k not in COMMON_KEYS and k not in reported and k not in WRAPPERS)


def _validation_problems(
    error: ValidationError, data: dict[str, Any], renamed: dict[str, str], source: Source, prefix: str, base: int
) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    seen: set[str] = set()
    for item in error.errors():
        location = item["loc"]
        if not location:
            continue
        field_name = str(location[0])
        if field_name in seen:
            continue  # a union reports once per member: the first says enough
        seen.add(field_name)
        key = renamed.get(field_name, field_name)
        path = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in location[1:])
        value = data.get(field_name)
        reason = item["msg"]
        if item["type"] == "literal_error" and "'relu2'" in reason:
            reason = "not an activation transformers knows (the keys of transformers.activations.ACT2FN)"
        problems.append(
            diag(
                "P906",
                f"`{prefix}{path}` is {_shown(value)}: {reason[0].lower() + reason[1:]}",
                locate(source.text, key, base),
                label="bad value",
                help=f"give `{prefix}{path}` a value of the type and range the message states",
            )
        )
    return problems


def _spec(ctx: Any, dialect: str, pattern: Pattern, specs: dict[str, Any]) -> ModelSpec | None:
    from patternc.config._build import KIND_OF

    kinds = pattern.kinds()
    flavours = {name: specs.get(name) for name, kind in KIND_OF.items() if kind in kinds}
    if any(value is None for value in flavours.values()):
        return None
    model = ctx.model
    try:
        return ModelSpec(
            source=dialect,
            pattern=pattern,
            hidden_size=ctx.get("hidden_size"),
            vocab_size=ctx.get("vocab_size"),
            tie_embeddings=specs.get("tie_embeddings", ctx.get("tie_word_embeddings")),
            norm=specs["norm"],
            max_position_embeddings=getattr(model, "max_position_embeddings", None),
            embedding_multiplier=specs.get("embedding_multiplier", 1.0),
            residual_multiplier=specs.get("residual_multiplier", 1.0),
            logits_scaling=specs.get("logits_scaling", 1.0),
            **flavours,
        )
    except ValidationError as error:
        for item in error.errors():
            where = ".".join(str(p) for p in item["loc"])
            ctx.add("P906", f"the value read for `{where}` is not valid: {item['msg']}", None,
                    help="check the config keys this value is read from (`patternc explain P906`)")
        return None
