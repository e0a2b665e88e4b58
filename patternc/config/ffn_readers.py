"""The FFN readers: one per layer kind (dense MLP, mixture of experts), driven by key names.

As for the mixers (``patternc.config.mixer_readers``), each reader takes the family's key names as
data (``MlpKeys``, ``MoeKeys``), with what differs in meaning (gated experts, sigmoid group routing,
a shared expert) as fields of the same value.  Keys are read in one fixed order: the order of the
``P911`` note that lists the defaults used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from patternc.config.readers import Ctx, check_top_k
from patternc.model import MlpSpec, MoeSpec


@dataclass(frozen=True, slots=True)
class MlpKeys:
    """A family's names for the dense MLP's hyper-parameters, and whether it is gated."""

    intermediate_size: str
    activation: str
    gated: bool
    bias: str | None = None
    """The key that gives the projections their bias, or None when the family builds none."""
    unused: tuple[str, ...] = ()
    """The keys named by a P913 note when the model has no dense MLP layer."""


def read_mlp(ctx: Ctx[Any], keys: MlpKeys) -> MlpSpec:
    return MlpSpec(
        intermediate_size=ctx.get(keys.intermediate_size),
        activation=ctx.get(keys.activation),
        gated=keys.gated,
        bias=ctx.get(keys.bias) if keys.bias is not None else False,
    )


@dataclass(frozen=True, slots=True)
class MoeKeys:
    """A family's names for the mixture of experts' hyper-parameters, and how its experts route."""

    experts: str
    top_k: str
    intermediate_size: str
    activation: str
    shared_size: str
    """The size of the one shared expert every family here builds."""
    router: Literal["sigmoid", "softmax"]
    expert_gated: bool
    shared_gated: bool
    shared_expert_gate: bool = False
    score_correction_bias: bool = False
    top_k_nullable: bool = False
    """Whether ``top_k`` may be null (an error where an MoE layer needs it)."""
    groups: tuple[str, str] | None = None
    """The keys of group-limited routing (``n_group``, ``topk_group``), or None."""
    norm_topk_prob: str | None = None
    """The key that says whether the top-k weights are renormalised, or None when they always are."""
    scaling: str | None = None
    latent_size: str | None = None
    bias: str | None = None
    shared_count: tuple[str, str] | None = None
    """(the key of the shared-expert count, the transformers class that always builds exactly one)."""
    shared_multiplier: str | None = None
    """The key of a count that multiplies ``shared_size`` into one shared MLP that wide (DeepSeek-V3:
    ``moe_intermediate_size x n_shared_experts``), or None."""
    unused: tuple[str, ...] = ()
    """The keys named by a P913 note when the model has no MoE layer."""


def read_moe(ctx: Ctx[Any], keys: MoeKeys) -> MoeSpec | None:
    """The mixture of experts, or None when its routing is inconsistent (each problem is a diagnostic)."""
    experts = ctx.get(keys.experts)
    top_k = ctx.need(keys.top_k, "a mixture-of-experts layer") if keys.top_k_nullable else ctx.get(keys.top_k)
    n_group, topk_group = (ctx.get(keys.groups[0]), ctx.get(keys.groups[1])) if keys.groups else (1, 1)
    if top_k is None:
        return None
    check_top_k(ctx, keys.experts, keys.top_k, experts, top_k)
    ok = _groups_ok(ctx, keys, experts, top_k, n_group, topk_group) and top_k <= experts
    if keys.shared_count is not None:
        count_key, cls = keys.shared_count
        shared = ctx.get(count_key)
        if shared != 1:
            ctx.add(
                "P916",
                f"{ctx.q(count_key)} is {shared}, but transformers' {cls} always builds one shared "
                f"expert of {ctx.q(keys.shared_size)} channels",
                count_key,
                label="ignored",
            )
    if not ok:
        return None
    width = ctx.get(keys.shared_multiplier) if keys.shared_multiplier is not None else 1
    return MoeSpec(
        num_experts=experts,
        top_k=top_k,
        intermediate_size=ctx.get(keys.intermediate_size),
        router=keys.router,
        score_correction_bias=keys.score_correction_bias,
        n_group=n_group,
        topk_group=topk_group,
        norm_topk_prob=ctx.get(keys.norm_topk_prob) if keys.norm_topk_prob is not None else True,
        routed_scaling_factor=float(ctx.get(keys.scaling)) if keys.scaling is not None else 1.0,
        expert_gated=keys.expert_gated,
        expert_activation=ctx.get(keys.activation),
        shared_experts=1,
        shared_intermediate_size=ctx.get(keys.shared_size) * width,
        shared_gated=keys.shared_gated,
        shared_expert_gate=keys.shared_expert_gate,
        latent_size=ctx.get(keys.latent_size) if keys.latent_size is not None else None,
        bias=ctx.get(keys.bias) if keys.bias is not None else False,
    )


def _groups_ok(ctx: Ctx[Any], keys: MoeKeys, experts: int, top_k: int, n_group: int, topk_group: int) -> bool:
    """Group-limited routing: experts split into equal groups, top_k within the selected groups."""
    if keys.groups is None:
        return True
    group_key, topk_group_key = keys.groups
    ok = ctx.divisible(keys.experts, group_key, experts, n_group, "experts are routed in equal groups")
    if topk_group > n_group:
        ctx.add(
            "P908",
            f"{ctx.q(topk_group_key)} ({topk_group}) is larger than {ctx.q(group_key)} ({n_group})",
            topk_group_key,
            secondary=ctx.secondary(group_key),
        )
        return False
    if ok and top_k > topk_group * (experts // n_group):
        ctx.add(
            "P908",
            f"{ctx.q(keys.top_k)} ({top_k}) is more than the {topk_group * (experts // n_group)} "
            f"experts in the {topk_group} selected group(s)",
            keys.top_k,
            secondary=ctx.secondary(topk_group_key, group_key),
        )
        return False
    return ok
