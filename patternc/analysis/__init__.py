"""Model analysis: exact parameter counts, FLOPs, inference memory, pipeline splits and ratio patterns.

    from patternc.analysis import model_stats, pipeline_diagnostics, optimal_partition, generate

- ``model_stats(spec, seq_len=, batch=, dtype=)``: every figure of ``patternc stats`` (a pydantic
  ``Stats``; parameter counts equal the ``state_dict`` element counts of transformers' model).
- ``layer_cost(spec, kind)``: one layer's parameters, active parameters, FLOPs and cache.
- ``optimal_partition(costs, stages, first=, last=)`` / ``split_model(spec, pp, vpp, cost=)``: the
  contiguous split minimising the largest stage cost, exactly.
- ``pipeline_diagnostics(pattern, pp, vpp=None)``: Megatron-Core's rules for a ``|``-split pattern.
- ``generate(n, attention, mlp, moe=, megatron_compatible=)``: a pattern from ratios.

Formulas: ``docs/analysis.md``.  Nothing here imports torch or transformers.
"""

from __future__ import annotations

from patternc.analysis.costs import CostError, LayerCost, layer_cost
from patternc.analysis.pipeline import (
    Partition,
    SplitResult,
    megatron_string,
    optimal_partition,
    pipeline_diagnostics,
    split_model,
)
from patternc.analysis.ratios import Generated, even_pattern, generate, megatron_pattern_from_ratios
from patternc.analysis.stats import Stats, model_stats

__all__ = [
    "CostError",
    "Generated",
    "LayerCost",
    "Partition",
    "SplitResult",
    "Stats",
    "even_pattern",
    "generate",
    "layer_cost",
    "megatron_pattern_from_ratios",
    "megatron_string",
    "model_stats",
    "optimal_partition",
    "pipeline_diagnostics",
    "split_model",
]
