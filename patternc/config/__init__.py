"""Config ingestion: a model's ``config.json`` (any supported family) into the IR.

    reading = read_config("checkpoints/Nemotron-H-8B")      # a directory, a file or a dict
    reading.spec        # ModelSpec, or None when there are errors
    reading.diagnostics # every problem and note, sorted; never raised

A config's ``model_type`` names its family (``patternc.families``: ``nemotron_h``, ``bamba``,
``granitemoehybrid``, ``jamba``, ``mamba2``, ``qwen3_next``, ``zamba2``), also when nested under
``llm_config`` or ``text_config`` by vision-language wrappers; the family's input model validates it
and its reader turns it into layers and flavours (``patternc.config.readers``).  ``jamba`` and
``zamba2`` are read and their layout reported, with a diagnostic saying why the IR cannot express
them.  Keys a config omits take the defaults of
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

from patternc import families
from patternc.codes import Severity
from patternc.config import readers
from patternc.config._load import MAX_CONFIG_BYTES, MAX_DEPTH, load, locate
from patternc.config.models import COMMON_KEYS, ConfigModel
from patternc.diagnostics import Diagnostic, diag, has_errors, sort_diagnostics
from patternc.ir import Pattern
from patternc.kinds import kinds
from patternc.model import ModelSpec
from patternc.source import Source

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "ConfigReading",
    "read_config",
]

WRAPPERS = ("llm_config", "text_config")
"""Keys under which vision-language wrappers nest the language model's config."""

ALIASES: Mapping[str, Mapping[str, str]] = families.table(lambda family: family.aliases or None)
"""Alternative spellings each family accepts: alias -> field (a view of ``Family.aliases``)."""

SIMILARITY = 0.8
"""difflib ratio above which an unknown key is taken for a misspelling of a known one."""


@dataclass(frozen=True, slots=True)
class ConfigReading:
    """Everything read from one config; never raised, always returned."""

    spec: ModelSpec | None
    """The model IR, or None when there are errors (or the family is not expressible)."""
    family: str | None
    """The family (``model_type``) read (``nemotron_h``, ``bamba``, …), or None when it is not known."""
    diagnostics: list[Diagnostic]
    source: Source
    """The JSON text (a dict is serialised with indent 2) that diagnostic spans point into."""
    defaults_used: dict[str, object] = field(default_factory=dict)
    """Absent key -> the transformers default used for it."""
    unknown_keys: list[str] = field(default_factory=list)
    """Keys the family's transformers class does not define (kept, and reported in a P912 note)."""
    pattern: Pattern | None = None
    """The layer layout (also set for Jamba, whose mixers the spec cannot express)."""
    values: dict[str, Any] = field(default_factory=dict)
    """The family's keys as transformers reads them (aliases renamed to their field, a nested
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
    family, inner, prefix, base, found = _detect(data, text_source)
    problems.extend(found)
    if family is None or inner is None:
        return ConfigReading(None, family, sort_diagnostics(problems), text_source)
    return _read(family, inner, prefix, base, text_source, problems)


def _detect(
    data: dict[str, Any], source: Source
) -> tuple[str | None, dict[str, Any] | None, str, int, list[Diagnostic]]:
    model_type = data.get("model_type")
    own = _family_of(model_type)
    if own is not None and not (
        families.get(own).config_model_type and any(isinstance(data.get(w), dict) for w in WRAPPERS)
    ):
        return own, data, "", 0, []
    for wrapper in WRAPPERS:
        inner = data.get(wrapper)
        if isinstance(inner, dict):
            inner_type = inner.get("model_type")
            archs = inner.get("architectures")
            if _family_of(inner_type) is not None or _from_architectures(archs):
                span = locate(source.text, wrapper)
                family, _, _, _, found = _detect(inner, source)
                note = diag(
                    "P915",
                    f"read the language model's config nested under `{wrapper}`"
                    + (f" of the `{model_type}` wrapper" if isinstance(model_type, str) else ""),
                    span,
                    label="nested config",
                )
                return family, inner, wrapper + ".", span.end if span else 0, [note, *found]
    arch = _from_architectures(data.get("architectures"))
    if arch is not None and model_type is None:
        note = diag(
            "P915",
            f"no `model_type`: the family `{arch}` comes from `architectures`",
            locate(source.text, "architectures"),
            label="family from architectures",
        )
        return arch, data, "", 0, [note]
    supported = ", ".join(f"`{t}`" for t in families.names())
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


def _family_of(model_type: object) -> str | None:
    """The family a ``model_type`` names: its own name, the text config type of a family whose
    released configs wrap it (``qwen3_5_moe_text`` -> ``qwen3_5_moe``: ``Family.config_model_type``), or
    a released remote-code type of a ported family (``minimax_m1`` -> ``minimax``:
    ``Family.released_model_types``)."""
    if not isinstance(model_type, str):
        return None
    if model_type in families.names():
        return model_type
    for found in families.families():
        if model_type == found.config_model_type or model_type in found.released_model_types:
            return found.name
    return None


def _from_architectures(archs: object) -> str | None:
    if isinstance(archs, list):
        for arch in archs:
            if isinstance(arch, str) and (family := families.by_architecture(arch)) is not None:
                return family
    return None


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _aliases(
    family: str, data: dict[str, Any], source: Source, prefix: str, base: int
) -> tuple[dict[str, Any], dict[str, str], list[Diagnostic]]:
    """Rename alias keys to their field, as transformers does (the alias wins a conflict)."""
    canonical = dict(data)
    renamed: dict[str, str] = {}
    problems: list[Diagnostic] = []
    used: list[str] = []
    found = families.get(family)
    for alias, target in found.aliases.items():
        if alias not in data:
            continue
        value = canonical.pop(alias)
        if alias in found.remote_aliases:  # read by remote code only: transformers builds its default
            if target in data:
                if data[target] != value:
                    problems.append(
                        diag(
                            "P916",
                            f"`{prefix}{alias}` ({_shown(value)}) differs from `{prefix}{target}` "
                            f"({_shown(data[target])}); transformers uses `{target}`",
                            locate(source.text, alias, base),
                            label="ignored",
                        )
                    )
                continue
            default = found.input_model.model_fields[target].default
            if value != default:
                problems.append(
                    diag(
                        "P916",
                        f"`{prefix}{alias}` is {_shown(value)}, but transformers 5 ignores this key and "
                        f"builds {target} {default}; add `{target}` to the config",
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
    family: str, data: dict[str, Any], prefix: str, base: int, source: Source, problems: list[Diagnostic]
) -> ConfigReading:
    canonical, renamed, found = _aliases(family, data, source, prefix, base)
    problems.extend(found)
    model_class = families.get(family).input_model
    try:
        model = model_class.model_validate(canonical)
    except ValidationError as error:
        problems.extend(_validation_problems(error, canonical, renamed, source, prefix, base))
        return ConfigReading(None, family, sort_diagnostics(problems), source)
    ctx = readers.Ctx(model, source, prefix, base, renamed)
    layout, flagged = _layout_problems(family, model, data, source, prefix, base)
    ctx.diagnostics.extend(layout)
    misspelled = _misspellings(family, model, data)
    built = families.get(family).read(ctx)
    pattern = None
    blocking = [d for d in ctx.diagnostics if d.severity is Severity.ERROR and d.code != "P914"]
    if built.main is not None and not blocking:
        pattern = readers.combine(ctx, built, built.main)
    spec = None
    if pattern is not None and built.specs.get("expressible", True) and not has_errors(ctx.diagnostics):
        spec = _spec(ctx, family, pattern, built.specs)
    problems.extend(ctx.diagnostics)
    if has_errors(ctx.diagnostics) and not all(
        d.code == "P914" for d in ctx.diagnostics if d.severity is Severity.ERROR
    ):
        pattern = None
    unknown = [k for k in _unknown(model, family, ctx.reported) if k not in flagged]
    for key in sorted(k for k in misspelled if k in unknown):
        guess = misspelled[key]
        problems.append(
            diag(
                "P918",
                f"`{prefix}{key}` is not a key of transformers' `{family}` config; did you mean `{prefix}{guess}`?",
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
                f"{len(unknown)} key{'s' if len(unknown) > 1 else ''} unknown to transformers' `{family}` config, "
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
        family,
        sort_diagnostics(problems),
        source,
        dict(ctx.defaults_used),
        [prefix + k for k in unknown],
        pattern,
        canonical,
        frozenset(k for k in ctx.read if k in canonical),
        frozenset(k for k in ctx.reported if k in canonical),
    )


def known_keys(family: str) -> set[str]:
    """Every key transformers' class for ``family`` reads: fields, accepted aliases and common keys."""
    return set(families.get(family).input_model.model_fields) | set(families.get(family).aliases) | set(COMMON_KEYS)


def _spellings(family: str, field_name: str) -> list[str]:
    """A field's name and the aliases transformers also reads for it."""
    return [field_name, *(alias for alias, target in families.get(family).aliases.items() if target == field_name)]


def _layout_problems(
    family: str, model: ConfigModel, data: dict[str, Any], source: Source, prefix: str, base: int
) -> tuple[list[Diagnostic], set[str]]:
    """P917 for each layout group the config leaves out, pointing at a misspelling of it when there
    is one; also P917 for a misspelled layout-related key (MTP, placement).  Returns the problems
    and the unknown keys they name.  A layout key given as null counts as missing (transformers
    then fills it from its defaults just the same)."""
    present = {name for name in model.model_fields_set if getattr(model, name) is not None}
    unknown = [k for k in data if k not in known_keys(family)]
    problems: list[Diagnostic] = []
    flagged: set[str] = set()

    def misspelled(key: str, guess: str, consequence: str) -> None:
        flagged.add(key)
        problems.append(
            diag(
                "P917",
                f"`{prefix}{key}` is not a key of transformers' `{family}` config; did you mean `{prefix}{guess}`? "
                + consequence,
                locate(source.text, key, base),
                label=f"did you mean `{guess}`?",
                help=f"rename `{prefix}{key}` to `{prefix}{guess}`",
            )
        )

    for group in families.get(family).layout_keys:
        if any(name in present for name in group):
            continue
        spellings = [spelled for name in group for spelled in _spellings(family, name)]
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
                f"the `{family}` config has no {wanted}: nothing says how many layers there are or which is which, "
                "and transformers would build its default stack",
                locate(source.text, "model_type", base),
                label="layer layout missing",
                help=f"add {wanted} (the layer stack) to the config",
            )
        )
    for name in families.get(family).layout_related:
        if name in present:
            continue
        spellings = _spellings(family, name)
        for key in unknown:
            match = difflib.get_close_matches(key, spellings, n=1, cutoff=SIMILARITY)
            if match and key not in flagged:
                misspelled(key, match[0], "Without it transformers places these layers by its default")
    return problems, flagged


def _misspellings(family: str, model: ConfigModel, data: dict[str, Any]) -> dict[str, str]:
    """Unknown key -> the known key it most resembles, when that one is absent (and so defaulted).

    With its look-alike present an unknown key is an extra (P912), not a misspelling."""
    known = known_keys(family)
    aliases = families.get(family).aliases
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


def _unknown(model: ConfigModel, family: str, reported: set[str]) -> list[str]:
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


def _spec(ctx: readers.Ctx[Any], family: str, pattern: Pattern, specs: dict[str, Any]) -> ModelSpec | None:
    """The model spec: each present kind's flavour (under its ``KindDef.spec_field``) and the model keys."""
    present = pattern.kinds()
    flavours = {d.spec_field: specs.get(d.spec_field) for d in kinds() if d.spec_field and d.kind in present}
    if any(value is None for value in flavours.values()):
        return None
    model = ctx.model
    try:
        return ModelSpec(
            source=family,
            pattern=pattern,
            hidden_size=ctx.get("hidden_size"),
            vocab_size=ctx.get("vocab_size"),
            tie_embeddings=specs.get("tie_embeddings", ctx.get("tie_word_embeddings")),
            norm=specs["norm"],
            max_position_embeddings=getattr(model, "max_position_embeddings", None),
            embedding_multiplier=specs.get("embedding_multiplier", 1.0),
            residual_multiplier=specs.get("residual_multiplier", 1.0),
            logits_scaling=specs.get("logits_scaling", 1.0),
            scaled_residual=specs.get("scaled_residual"),
            **({"mup": specs["mup"]} if "mup" in specs else {}),  # Falcon-H1's multipliers
            **flavours,
        )
    except ValidationError as error:
        for item in error.errors():
            where = ".".join(str(p) for p in item["loc"])
            ctx.add(
                "P906",
                f"the value read for `{where}` is not valid: {item['msg']}",
                None,
                help="check the config keys this value is read from (`patternc explain P906`)",
            )
        return None
