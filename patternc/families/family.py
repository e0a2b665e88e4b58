"""``Family``: everything patternc knows about one model family (a config's ``model_type``), in one value.

A family module (``patternc/families/<model_type>.py``) defines one ``FAMILY``; every per-family
registry (the config reader's input models, ``architectures`` and alias tables, layout keys, the
canonical map's candidates and preference, the transformers target profiles, the published
``config-<type>`` schemas) is derived from the list in ``patternc.families``, so a family is added by
writing its module and naming it there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patternc.canonical.archs import Expression
    from patternc.config.models import ConfigModel
    from patternc.config.readers import Built, Ctx
    from patternc.model import ModelSpec
    from patternc.targets.rules import Profile


@dataclass(frozen=True, slots=True)
class Family:
    """One ``model_type``: how its config is read, how the canonical map expresses a spec in it,
    and which transformers target profile checks a pattern against it."""

    name: str
    """The ``model_type`` (``nemotron_h``, ``bamba``, …): also the ``config-<name>`` schema's name."""
    input_model: type[ConfigModel]
    """The pydantic model of its ``config.json``, with transformers' defaults."""
    read: Callable[[Ctx[Any]], Built]
    """Its reader: the validated input model (in ``Ctx``) to the layer layout and each kind's flavour."""
    express: Callable[[ModelSpec], Expression]
    """Its expresser for the canonical map: a spec in the family's own config terms, and what that computes."""
    canonical_rank: int
    """Its place among the canonical map's candidates: reasons are reported in rank order, and the
    first exact candidate in rank order wins (the most specific architecture first)."""
    architectures: tuple[str, ...] = ()
    """``architectures`` entries that name the family when a config has no ``model_type``."""
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Alternative key spellings transformers accepts: alias -> field."""
    remote_aliases: frozenset[str] = frozenset()
    """Aliases that only the family's remote code reads (NVIDIA's ``attention_head_dim``): transformers
    ignores them and builds its default, so one that would change the model is a P916 warning."""
    layout_keys: tuple[tuple[str, ...], ...] = ()
    """The keys that carry the layer stack, as groups: a config must hold one key of every group
    (else transformers builds its own default stack, which is an error: P917)."""
    layout_related: tuple[str, ...] = ()
    """Further keys that place layers (MTP, attention and expert placement): a misspelling of one of
    them while it is absent silently moves layers, so it is an error too (P917)."""
    kwarg_only_fields: frozenset[str] = frozenset()
    """Fields of ``input_model`` that are keyword arguments of the transformers class, not its fields."""
    checkpoint_fields: frozenset[str] = frozenset()
    """Fields of ``input_model`` that transformers' class lacks but the family's released configs carry
    and serving engines read (Qwen's ``mtp_num_hidden_layers``): read into the IR and written back by
    ``build``; transformers keeps them as plain attributes."""
    paired_layers: bool = False
    """Whether a decoder layer is a sequence mixer and the FFN after it (one ``num_hidden_layers``
    entry is two pattern layers, ``M-``, and a pipeline stage may not cut between them); False when
    every pattern layer is a decoder layer (Nemotron-H, Mamba2)."""
    ties_embeddings: bool = True
    """Whether transformers ties the LM head to the embeddings when ``tie_word_embeddings`` says so
    (``NemotronHForCausalLM`` never does: ``_tied_weights_keys = {}``)."""
    can_be_exact: bool = True
    """False for a family the canonical map always refuses (Zamba2's shared blocks): it is a
    candidate, with its reason, but never in the preference order."""
    config_model_type: str | None = None
    """The ``model_type`` of the config its ``ForCausalLM`` reads when that is not ``name``: Qwen3.5's
    released configs are multimodal wrappers (``qwen3_5_moe``) whose language model is the
    ``text_config`` of type ``qwen3_5_moe_text``, which ``Qwen3_5MoeForCausalLM`` takes and ``build``
    writes.  A config of this type is read as the family, and a wrapper of the family's ``name`` is
    read through its nested text config."""
    released_model_types: tuple[str, ...] = ()
    """Other ``model_type`` values read as this family: the released remote-code configs of a model
    that transformers ported under its own name (MiniMax-Text-01's ``minimax_text_01``, MiniMax-M1's
    ``minimax_m1``: ``minimax``).  The family's reader sees the config's own ``model_type`` and reads
    the remote code's keys with the remote code's meaning."""
    profile: Callable[[], Profile] | None = None
    """Its ``transformers-<name>`` target profile for ``check --target``, or None (build only)."""
