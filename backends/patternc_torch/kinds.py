"""How the torch backend builds and decodes each kind it has a module for: one ``TorchKind`` each
(the module, the decode step, what the inference state must hold before that step can run).

The backend's kind table is ``patternc_torch.support.SUPPORT`` (torch-free, keyed by kind name like
the core's ``patternc.kinds``): each row names its ``TorchKind`` here, or refuses the kind with a
reason.  That replaces the per-kind ``if``/``isinstance`` chains: nothing here falls back to
treating an unknown mixer as some other kind.  A new kind's ``TorchKind`` may live in a module of
its own; its ``SUPPORT`` row names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from torch import nn

from patternc.kinds import behaviour, by_symbol
from patternc.model import ModelSpec
from patternc_torch.decode import StepFn, attention_step, block_step, mamba_step, mlp_step, module_step
from patternc_torch.layers import MLP, Attention, Block, Mamba2Mixer, MoE
from patternc_torch.state import InferenceState
from patternc_torch.support import SUPPORT, refusal


@dataclass(frozen=True, slots=True)
class TorchKind:
    """How the torch backend builds and decodes one layer kind."""

    build: Callable[[ModelSpec, int], nn.Module | None]
    """The mixer of layer ``index`` (its global index: state is keyed by it); None when ``spec`` has
    no hyper-parameters for the kind (``support.unsupported`` reports that before building)."""
    step: Callable[[nn.Module], StepFn]
    """The one-token decode closure over the mixer's weights (``patternc_torch.decode``)."""
    ready: Callable[[nn.Module, InferenceState], bool] = lambda mixer, state: True
    """Whether ``state`` holds what ``step`` reads (a Mamba layer's conv and SSM state exist only after
    a first forward); kinds whose state ``step`` creates itself are always ready."""


def _mamba(spec: ModelSpec, index: int) -> nn.Module | None:
    return None if spec.mamba is None else Mamba2Mixer(spec.mamba, spec.hidden_size, spec.norm.eps, index)


def _attention(spec: ModelSpec, index: int) -> nn.Module | None:
    return None if spec.attention is None else Attention(spec.attention, spec.hidden_size, index, spec.norm)


def _mlp(spec: ModelSpec, index: int) -> nn.Module | None:
    m = spec.mlp
    if m is None:
        return None
    multipliers = spec.mup.mlp if spec.mup is not None and m.gated else (1.0, 1.0)  # Falcon-H1's µP
    return MLP(spec.hidden_size, m.intermediate_size, m.activation, m.gated, m.bias, multipliers)


def _moe(spec: ModelSpec, index: int) -> nn.Module | None:
    return None if spec.moe is None else MoE(spec.moe, spec.hidden_size)


def _mamba_ready(mixer: nn.Module, state: InferenceState) -> bool:
    return cast(Mamba2Mixer, mixer).index in state.ssm


MAMBA2_KIND = TorchKind(_mamba, lambda mixer: mamba_step(cast(Mamba2Mixer, mixer)), _mamba_ready)
ATTENTION_KIND = TorchKind(_attention, lambda mixer: attention_step(cast(Attention, mixer)))
MLP_KIND = TorchKind(_mlp, lambda mixer: mlp_step(cast(MLP, mixer)))
MOE_KIND = TorchKind(_moe, module_step)


def torch_kind(symbol: str) -> TorchKind:
    """The ``TorchKind`` of the kind ``symbol`` spells (its ``SUPPORT`` row names it); ``ValueError``
    with the table's reason when the backend has none (``support.unsupported`` reports it first)."""
    kind = by_symbol(symbol).kind
    support = SUPPORT.get(kind)
    if support is None or support.module is None:
        raise ValueError(f"the torch backend cannot build `{symbol}` layers: {refusal(kind)}")
    entry: TorchKind = behaviour(support.module)
    return entry


def build_mixer(spec: ModelSpec, symbol: str, index: int) -> nn.Module:
    mixer = torch_kind(symbol).build(spec, index)
    if mixer is None:
        raise ValueError(f"cannot build `{symbol}`: the model has no hyper-parameters for this kind")
    return mixer


@runtime_checkable
class PlansOwnStep(Protocol):
    """A block variant that plans its own decode step (a parallel layer, ``patternc_torch.parallel``:
    one step per branch, summed), instead of one kind's step inside the block's norm and residual."""

    def decode_step(self) -> StepFn: ...

    def decode_ready(self, state: InferenceState) -> bool: ...


def decode_steps(layers: list[Block]) -> list[StepFn]:
    """One decode closure per layer: its kind's step, inside the block's norm and residual."""
    return [
        block.decode_step()
        if isinstance(block, PlansOwnStep)
        else block_step(block, torch_kind(block.symbol).step(block.mixer))
        for block in layers
    ]


def ready(layers: list[Block], state: InferenceState) -> bool:
    """Whether ``state`` holds what every layer's step reads."""
    return all(
        block.decode_ready(state)
        if isinstance(block, PlansOwnStep)
        else torch_kind(block.symbol).ready(block.mixer, state)
        for block in layers
    )
