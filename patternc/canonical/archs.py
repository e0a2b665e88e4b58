"""The shared machinery of the families' expressers: a ModelSpec in one architecture's config terms.

Each family's expresser (``Family.express``, in ``patternc/families/<model_type>.py``) does two
things, and never looks at the spec's graphs:

1. derive the architecture's config fields from the spec (``attn_layer_indices``, ``hidden_act``,
   ``rope_parameters``...), recording *structural* findings where the architecture has no way to
   say something (a mixer without its own FFN, a layer kind it lacks, MTP, a non-integer
   ``mamba_expand``);
2. lower what the architecture computes *from those fields alone*, with the choices its modeling
   code hard-codes, into the same block-graph vocabulary (``patternc.canonical.graph``), each block
   aligned to the spec block it stands for.

The facts each expresser encodes
were read from transformers 5.x ``models/<name>/modeling_*.py``
and ``configuration_*.py``; docs/canonical.md cites them line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from patternc.canonical.graph import (
    BlockGraph,
    Frame,
    lower_embedding,
    lower_head,
)
from patternc.kinds import BY_SYMBOL, LayerKind, Role, alphabet_of, kind_def, symbol_of

if TYPE_CHECKING:
    from patternc.config.mixer_readers import MambaKeys

from patternc.model import (
    MambaSpec,
    ModelSpec,
)

Config = dict[str, object]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason, before grouping: where (a layer, or a model-level topic) and what."""

    topic: str
    """The layer symbol, or ``embedding`` / ``output head`` / ``pattern``."""
    layer: int | None
    message: str


@dataclass
class Expression:
    """A spec as one architecture would hold it."""

    arch: str
    config: Config = field(default_factory=dict)
    structural: list[Finding] = field(default_factory=list)
    blocks: list[tuple[int | None, BlockGraph]] = field(default_factory=list)
    """What the architecture computes, block by block; the int is the spec block it stands for
    (0 = embedding, i + 1 = main layer i, n + 1 = output head), None when it has no counterpart."""


# -- helpers -----------------------------------------------------------------------------------------


def _is_mixer(symbol: str) -> bool:
    return BY_SYMBOL[symbol].role is not Role.FFN


def pair_layers(flat: str, arch: str) -> tuple[list[tuple[int, int | None]], list[Finding]]:
    """Group a flat stack into (mixer, ffn) decoder layers, as Bamba/Granite/Jamba/Qwen3-Next need."""
    pairs: list[tuple[int, int | None]] = []
    findings: list[Finding] = []
    i = 0
    while i < len(flat):
        symbol = flat[i]
        if _is_mixer(symbol):
            if i + 1 < len(flat) and not _is_mixer(flat[i + 1]):
                pairs.append((i, i + 1))
                i += 2
                continue
            pairs.append((i, None))
            findings.append(Finding(symbol, i, f"has no FFN of its own: {arch} pairs every mixer with an FFN"))
        else:
            findings.append(
                Finding(symbol, i, f"is an FFN without a mixer before it: every {arch} layer is one mixer + one FFN")
            )
        i += 1
    return pairs, findings


def mtp_findings(spec: ModelSpec, arch: str) -> list[Finding]:
    if spec.pattern.mtp is None:
        return []
    mtp = spec.pattern.mtp
    return [Finding("pattern", None, f"MTP block `{mtp.flat}` x{mtp.depths}: {arch} has no multi-token prediction")]


def has_kind(spec: ModelSpec, kind: str) -> bool:
    """Whether the main stack has a layer of ``kind``."""
    return symbol_of(kind) in spec.pattern.flat


def kind_findings(
    spec: ModelSpec, allowed: Collection[str], arch: str, why: Mapping[str, str] | None = None
) -> list[Finding]:
    """A finding per main layer of a kind outside ``allowed`` (``why``: a reason per kind)."""
    out = []
    for layer in spec.pattern.layers:
        if layer.kind not in allowed:
            extra = (why or {}).get(layer.kind, f"{arch} has no {kind_def(layer.kind).description} layer")
            out.append(Finding(layer.symbol, layer.index, extra))
    return out


def integer_expand(spec: ModelSpec, arch: str, field_name: str) -> tuple[int | None, list[Finding]]:
    """Mamba2 in Mamba2/Bamba/Granite: inner size = integer ``expand`` x hidden_size."""
    if spec.mamba is None or not has_kind(spec, LayerKind.MAMBA2):
        return 2, []
    inner = spec.mamba.inner_size
    if inner % spec.hidden_size == 0:
        return inner // spec.hidden_size, []
    message = (
        f"Mamba inner size {inner} ({spec.mamba.num_heads} heads x {spec.mamba.head_dim}) is not an integer multiple "
        f"of hidden_size {spec.hidden_size}: {arch} derives it as {field_name} x hidden_size with an integer "
        f"{field_name}"
    )
    mamba = symbol_of(LayerKind.MAMBA2)
    return None, [Finding(mamba, spec.pattern.flat.index(mamba), message)]


def mamba_fields(spec: ModelSpec, keys: MambaKeys, expand: int | None) -> Config:
    """The Mamba2 mixer's config fields, under the family's key names (the reader's ``MambaKeys``)."""
    m = spec.mamba
    if m is None:
        return {}
    names = (
        keys.num_heads,
        keys.head_dim,
        keys.n_groups,
        keys.state_size,
        keys.conv_kernel,
        keys.expand,
        keys.conv_bias,
        keys.proj_bias,
    )
    values = (m.num_heads, m.head_dim, m.n_groups, m.state_size, m.conv_kernel, expand, m.conv_bias, m.proj_bias)
    return dict(zip(names, values, strict=True)) | {keys.time_step: m.time_step_limit}


def mamba_from(cfg: Config, keys: MambaKeys, act: str, dt_limit: tuple[float, float]) -> MambaSpec:
    """What Mamba2/Bamba/Granite/Nemotron-H build: group size = inner // n_groups, gate silu, no norm first."""
    heads, head_dim, groups = as_int(cfg, keys.num_heads), as_int(cfg, keys.head_dim), as_int(cfg, keys.n_groups)
    inner = heads * head_dim
    return MambaSpec(
        num_heads=heads,
        head_dim=head_dim,
        state_size=as_int(cfg, keys.state_size),
        n_groups=groups,
        conv_kernel=as_int(cfg, keys.conv_kernel),
        conv_bias=bool(cfg[keys.conv_bias]),
        proj_bias=bool(cfg[keys.proj_bias]),
        norm_group_size=max(1, inner // groups),
        activation=act,
        time_step_limit=dt_limit,
    )


def _checked(key: str, value: object, kind: type[T]) -> T:
    """A field the expresser itself set: another type there is a bug in patternc, not a user error."""
    if not isinstance(value, kind):
        raise TypeError(f"expressed config field {key} is {value!r}, not a {kind.__name__}")
    return value


def as_int(cfg: Config, key: str) -> int:
    return _checked(key, cfg[key], int)


def as_float(cfg: Config, key: str) -> float:
    value = cfg[key]
    return float(value) if isinstance(value, int) else _checked(key, value, float)


def as_str(cfg: Config, key: str) -> str:
    return str(cfg[key])


def as_dict(cfg: Config, key: str) -> dict[str, Any]:
    return _checked(key, cfg[key], dict)


def dt_limit(cfg: Config) -> tuple[float, float]:
    low, high = _checked("time_step_limit", cfg.get("time_step_limit", (0.0, float("inf"))), tuple)
    return (float(low), float(high))


def ffn_activation(spec: ModelSpec) -> str:
    if spec.mlp is not None and has_kind(spec, LayerKind.MLP):
        return spec.mlp.activation
    if spec.moe is not None:
        return spec.moe.expert_activation
    return "silu"


def shared_activation(spec: ModelSpec) -> str:
    """One ``hidden_act`` drives the Mamba conv and the FFNs in Bamba and Granite: take the mixer's."""
    if spec.mamba is not None and has_kind(spec, LayerKind.MAMBA2):
        return spec.mamba.activation
    return ffn_activation(spec)


def attention_fields(spec: ModelSpec) -> Config:
    a = spec.attention
    if a is None:
        return {}
    return {
        "num_attention_heads": a.num_heads,
        "num_key_value_heads": a.num_kv_heads,
        "head_dim": a.head_dim,
        "attention_bias": a.qkv_bias,
    }


def model_blocks(
    spec: ModelSpec, cfg: Config, frame: Frame, *, multiplier: float = 1.0, tied: bool, logits: float = 1.0
) -> tuple[tuple[int, BlockGraph], tuple[int, BlockGraph]]:
    n = spec.pattern.num_layers
    embed = (0, lower_embedding(as_int(cfg, "vocab_size"), as_int(cfg, "hidden_size"), multiplier))
    head = (n + 1, lower_head(frame, as_int(cfg, "vocab_size"), tied, logits))
    return embed, head


def common_fields(spec: ModelSpec, eps_key: str) -> Config:
    return {
        "hidden_size": spec.hidden_size,
        "vocab_size": spec.vocab_size,
        "tie_word_embeddings": spec.tie_embeddings,
        eps_key: spec.norm.eps,
    }


def paired_blocks(
    pairs: list[tuple[int, int | None]],
    mixer: Callable[[int], BlockGraph],
    ffn: Callable[[int], BlockGraph],
    flat: str,
    allowed: Collection[str],
) -> list[tuple[int | None, BlockGraph]]:
    """Decoder layer j = (its mixer block, its FFN block), aligned to spec layers (+1 for the embedding).

    ``allowed`` are the kinds the architecture builds.  A block whose spec layer is of a kind it
    lacks (already a structural finding) is aligned to nothing rather than compared with a stand-in.
    """
    symbols = alphabet_of(allowed)
    out: list[tuple[int | None, BlockGraph]] = []
    for j, (m, f) in enumerate(pairs):
        out.append((m + 1 if flat[m] in symbols else None, mixer(j)))
        out.append((f + 1 if f is not None and flat[f] in symbols else None, ffn(j)))
    return out
