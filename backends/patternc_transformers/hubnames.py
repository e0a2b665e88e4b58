"""The names a checkpoint of one family may store each tensor under, read from transformers itself.

transformers 5.x loads a checkpoint through a per-family *conversion mapping*
(``transformers/conversion_mapping.py``): renamings (``block_sparse_moe`` -> ``mlp``, ``backbone.``
-> ``model.``) and converters (one tensor per expert stacked into ``experts.gate_up_proj``, gate and
up concatenated; OLMo Hybrid's three q/k/v convolutions concatenated).  ``save_pretrained`` reverts
the same mapping, so the hub checkpoints and every ``save_pretrained`` directory use the *older*
names.  Converting the weights of a family into the same family must accept both.

Rather than keeping a table per family (one more place a new family could be forgotten in), the
older names are derived here from transformers' own mapping for the model at hand, the way
``revert_weight_conversion`` derives them when it saves:

* renamings are reverted on the name;
* a converter whose operations are ``MergeModulelist(0)`` (stack the experts on dimension 0),
  optionally followed by ``Concatenate(d)`` (join several such stacks), or ``Concatenate(d)``
  alone (join several tensors), becomes a ``HubForm``: the parts, each one tensor or the
  per-expert tensors to stack, joined along ``d``;
* a ``PrefixChange`` (Qwen3.5's ``model.language_model.`` of its multimodal checkpoints) is an
  alternative spelling: ``save_pretrained`` of the text model does not write it, the released
  checkpoints do.

Any other operation (a transpose, a rope permutation, a dequantization) is a ``HubError``: patternc
would rather refuse the family's hub names than guess what the operation does to the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from patternc_transformers.planned import Fetch


class HubError(Exception):
    """A conversion transformers applies to this family that a plain read, stack or join cannot undo."""


@dataclass(frozen=True, slots=True)
class HubForm:
    """How an older-format checkpoint stores one transformers 5.x tensor."""

    parts: tuple[tuple[str, ...], ...]
    """Each part: one tensor name, or (``stacked``) the per-expert names stacked on dimension 0."""
    stacked: bool
    dim: int = 0
    """The dimension the parts are joined along (when there are several)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for part in self.parts for name in part)

    def fetches(self) -> tuple[Fetch, ...]:
        if self.stacked:
            return tuple(Fetch("stack", part, hub=True) for part in self.parts)
        return tuple(Fetch("one", part, hub=True) for part in self.parts)


def _op_names(converter: Any) -> list[tuple[str, int]]:
    return [(type(op).__name__, int(getattr(op, "dim", 0))) for op in getattr(converter, "operations", [])]


def _form(name: str, shape: tuple[int, ...], forward: Any, reverse: Any, renamings: list[Any], apply: Any) -> HubForm:
    """The older spelling of ``name``, which the reverse of ``forward`` matched."""
    renamed, _ = reverse.rename_source_key(name)
    patterns: list[str] = list(reverse.target_patterns)  # the forward sources, as transformers writes them
    at = renamed.find(patterns[0])
    if at < 0:  # pragma: no cover - transformers writes the first target pattern into the key
        raise HubError(f"`{name}`: cannot locate `{patterns[0]}` in `{renamed}`")
    ops = _op_names(forward)
    kinds = [kind for kind, _ in ops]
    stacked = kinds[:1] == ["MergeModulelist"]
    if stacked and ops[0][1] != 0:
        raise HubError(f"`{name}`: experts merged along dimension {ops[0][1]}, not 0")
    join = ops[-1][1] if kinds[-1:] == ["Concatenate"] else 0
    if kinds not in (["MergeModulelist"], ["MergeModulelist", "Concatenate"], ["Concatenate"]):
        raise HubError(f"`{name}`: transformers converts it with {', '.join(kinds) or 'no operation'}")
    if len(patterns) > 1 and kinds[-1] != "Concatenate":
        raise HubError(f"`{name}`: {len(patterns)} source tensors without a concatenation")
    parts: list[tuple[str, ...]] = []
    for pattern in patterns:
        key = renamed[:at] + pattern + renamed[at + len(patterns[0]) :]
        if stacked:
            if not shape or "*" not in key:
                raise HubError(f"`{name}`: per-expert tensors without an expert index in `{pattern}`")
            keys = [key.replace("*", str(e), 1) for e in range(shape[0])]
        else:
            keys = [key]
        parts.append(tuple(apply(k, renamings) for k in keys))
    return HubForm(tuple(parts), stacked, join)


def hub_forms(model: Any, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, list[HubForm]]:
    """Each transformers 5.x tensor name of ``model`` -> the older spellings checkpoints may use.

    A name transformers neither renames nor converts is absent.  The first spelling is the one
    ``save_pretrained`` writes; a second one, when the family has a ``PrefixChange``, carries the
    multimodal wrapper's prefix.
    """
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import PrefixChange, WeightConverter, WeightRenaming, apply_renamings

    transforms = list(get_model_conversion_mapping(model, add_legacy=False))
    if not transforms:
        return {}
    prefix_changes = [t for t in transforms if isinstance(t, PrefixChange)]
    plain = [t for t in transforms if not isinstance(t, PrefixChange)]
    spellings = [plain] + ([transforms] if prefix_changes else [])
    out: dict[str, list[HubForm]] = {}
    for chosen in spellings:
        backwards = chosen[::-1]  # revert_weight_conversion's order: sub-models' conversions first
        pairs = [(t, t.reverse_transform()) for t in backwards]
        renamings = [r for _, r in pairs if isinstance(r, WeightRenaming)]
        converters = [(f, r) for f, r in pairs if isinstance(r, WeightConverter)]
        for name, shape in shapes.items():
            form: HubForm | None = None
            for forward, reverse in converters:
                _, pattern = reverse.rename_source_key(name)
                if pattern is not None:
                    form = _form(name, shape, forward, reverse, renamings, apply_renamings)
                    break
            if form is None:
                older = apply_renamings(name, renamings)
                if older == name:
                    continue
                form = HubForm(((older,),), stacked=False)
            forms = out.setdefault(name, [])
            if form not in forms:
                forms.append(form)
    return out
