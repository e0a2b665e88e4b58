"""Family classification: which kind of hybrid a pattern is, in the terms of the debate."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

from patternc.diagnostics import Diagnostic
from patternc.ir import Pattern
from patternc.kinds import BY_SYMBOL, LayerKind, Role
from patternc.passes.manager import Context, Pass


class Family(StrEnum):
    DENSE_HYBRID = "dense_hybrid"
    """Sequence mixers of both kinds (SSM and attention) with dense MLPs (Nemotron-H)."""
    MOE_HYBRID = "moe_hybrid"
    """SSM and attention with mixture-of-experts layers (Nemotron 3)."""
    MIXED_HYBRID = "mixed_hybrid"
    """SSM and attention with both `-` and `E`: no released model."""
    HYBRID = "hybrid"
    """SSM and attention with no FFN layer at all."""
    PURE_SSM = "pure_ssm"
    """No attention layer (Mamba2 when it is only `M`)."""
    PURE_TRANSFORMER = "pure_transformer"
    """No SSM layer."""
    FFN_ONLY = "ffn_only"
    """No sequence mixer at all."""
    EMPTY = "empty"


FAMILY_DESCRIPTIONS: dict[Family, str] = {
    Family.DENSE_HYBRID: "dense hybrid (SSM + attention + MLP)",
    Family.MOE_HYBRID: "MoE hybrid (SSM + attention + MoE)",
    Family.MIXED_HYBRID: "mixed hybrid (SSM + attention + both MLP and MoE)",
    Family.HYBRID: "hybrid without FFN layers (SSM + attention)",
    Family.PURE_SSM: "pure SSM (no attention)",
    Family.PURE_TRANSFORMER: "pure transformer (no SSM)",
    Family.FFN_ONLY: "FFN only (no sequence mixer)",
    Family.EMPTY: "empty",
}


def classify(pattern: Pattern) -> Family:
    """The family of the main stack (MTP layers do not change what the decoder is)."""
    symbols = set(pattern.counts())  # the mixers of parallel layers too: `[*M]-` is a hybrid
    if not symbols:
        return Family.EMPTY
    roles = {BY_SYMBOL[s].role for s in symbols}
    ssm, attention = Role.SSM in roles, Role.ATTENTION in roles
    if not ssm and not attention:
        return Family.FFN_ONLY
    if not attention:
        return Family.PURE_SSM
    if not ssm:
        return Family.PURE_TRANSFORMER
    kinds = {BY_SYMBOL[s].kind for s in symbols}
    dense, moe = LayerKind.MLP in kinds, LayerKind.MOE in kinds
    if dense and moe:
        return Family.MIXED_HYBRID
    if dense:
        return Family.DENSE_HYBRID
    if moe:
        return Family.MOE_HYBRID
    return Family.HYBRID


def classify_pass(ctx: Context) -> Iterator[Diagnostic]:
    ctx.facts["family"] = classify(ctx.pattern)
    return iter(())


PASSES = (Pass("classify", classify_pass, provides=frozenset({"family"})),)
