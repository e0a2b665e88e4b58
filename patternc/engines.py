"""Engines beyond one machine: Megatron-Core arguments and a vLLM-ready config, from a ModelSpec.

``megatron_arguments`` maps the spec onto Megatron-Core's argument names (the
``--hybrid-layer-pattern`` carries the balanced ``|`` split of ``patternc.analysis.split_model``
and the ``/`` MTP depths; ``patternc.targets.megatron`` decides what Megatron-Core can express);
``vllm_config_fields`` adds what vLLM's Nemotron-H loader reads
(``hybrid_override_pattern`` and ``mtp_hybrid_override_pattern``, indexed per layer) to the
transformers config.  Both refuse, with the target profile's diagnostics, what the engine cannot
load.  Nothing here imports torch or transformers.
"""

from __future__ import annotations

from typing import Any

from patternc.diagnostics import Diagnostic, diag, has_errors
from patternc.kinds import LayerKind
from patternc.model import ModelSpec

MEGATRON_FORMAT = "patternc.megatron.v1"


def engine_diagnostics(profile: str, spec: ModelSpec) -> list[Diagnostic]:
    from patternc.targets import check_target

    return check_target(profile, spec.pattern, spec)


MEGATRON_SPEC = ["megatron.core.models.hybrid.hybrid_layer_specs", "hybrid_stack_spec"]
"""``--spec``: Megatron-Core's hybrid stack (Mamba, attention, MLP and MoE layers, MTP block)."""
DEFAULT_MAX_POSITIONS = 4096
"""transformers' ``NemotronHConfig.max_position_embeddings`` default, for specs that carry none."""
RUN_SEQ_LENGTH = 4096
"""``--seq-length`` written (capped at the model's positions): a run setting to override."""
RUN_SETTINGS = ("seq-length", "micro-batch-size")
"""Arguments Megatron requires that describe a run, not the model: written with safe values."""


def _pipeline_problems(unified: str, pp: int, vpp: int) -> list[Diagnostic]:
    """Megatron's pipeline rules (``check --pp``) over the split written into the arguments."""
    from patternc.analysis.pipeline import pipeline_diagnostics
    from patternc.api import parse

    return pipeline_diagnostics(parse(unified, dialect="megatron"), pp, vpp if vpp > 1 else None)


def megatron_arguments(spec: ModelSpec, pp: int = 1, vpp: int = 1) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """Megatron-Core arguments (``--name`` → value) for ``spec``, split over ``pp × vpp`` stages.

    The arguments build the same model, parameter for parameter, and pass Megatron-Core 0.19.2's
    own validation (``parse_args``, ``validate_args``, ``hybrid_config_from_args``; tested in
    ``tests/core/test_megatron_validation.py``).  ``None`` with the reasons when Megatron-Core cannot
    build the model (the ``megatron-core`` target profile, P314-P316) or run the split (P107).
    The virtual pipeline size is never an argument: Megatron derives it from the ``|`` segments
    and refuses ``--num-virtual-stages-per-pipeline-rank`` beside ``--hybrid-layer-pattern``.
    """
    from patternc.analysis import split_model
    from patternc.targets.megatron import activation_arguments, bias_arguments, used_kinds

    problems = engine_diagnostics("megatron-core", spec)
    if spec.source != "nemotron_h":
        problems.append(
            diag(
                "P511",
                f"a `{spec.source}` model has no Megatron-Core hybrid recipe in patternc",
                None,
                label="unsupported source",
                help="Megatron-Core's HybridModel builds Nemotron-H-style layers; convert the model first",
            )
        )
    if has_errors(problems):
        return None, problems
    split = split_model(spec, pp, vpp)
    problems += _pipeline_problems(split.unified, pp, vpp)
    if split.unified == "--":
        # argparse drops a "--" value even in `--opt=--` form: Megatron then gets a list, not a string
        problems.append(
            diag(
                "P108",
                "Megatron's command line cannot carry the pattern `--`: argparse reads it as the end of options",
                None,
                label="pattern `--`",
                help="a model needs a sequence mixer (`M` or `*`); with one, the pattern is no longer `--`",
                notes=["megatron-core 0.19.2 raises: AttributeError: 'list' object has no attribute 'split'"],
            )
        )
    activation, _ = activation_arguments(spec)
    biases, _ = bias_arguments(spec)
    if has_errors(problems) or activation is None or biases is None:
        return None, problems
    used = used_kinds(spec)
    positions = spec.max_position_embeddings or DEFAULT_MAX_POSITIONS
    args: dict[str, Any] = {
        "hybrid-layer-pattern": split.unified,
        "spec": MEGATRON_SPEC,
        "num-layers": spec.pattern.num_layers,
        "hidden-size": spec.hidden_size,
        "padded-vocab-size": spec.vocab_size,
        "max-position-embeddings": positions,
        "position-embedding-type": "none",
        "normalization": "RMSNorm",
        "norm-epsilon": spec.norm.eps,
        "untie-embeddings-and-output-weights": not spec.tie_embeddings,
        **biases,
        **activation,
        # transformers' Nemotron-H has no dropout; Megatron's defaults are 0.1
        "hidden-dropout": 0.0,
        "attention-dropout": 0.0,
        "pipeline-model-parallel-size": pp,
        "seq-length": min(RUN_SEQ_LENGTH, positions),
        "micro-batch-size": 1,
    }
    if spec.pattern.mtp is not None:
        args["mtp-num-layers"] = spec.pattern.mtp.depths
    attention = spec.attention if LayerKind.ATTENTION in used else None
    if attention is not None:
        args.update(
            {
                "num-attention-heads": attention.num_heads,
                "group-query-attention": attention.num_kv_heads != attention.num_heads,
                "num-query-groups": attention.num_kv_heads,
                "kv-channels": attention.head_dim,
            }
        )
    else:
        # Megatron requires the argument; no `*` layer reads it (1 divides every hidden size)
        args["num-attention-heads"] = 1
    if spec.mamba is not None and LayerKind.MAMBA2 in used:
        args.update(
            {
                "mamba-num-heads": spec.mamba.num_heads,
                "mamba-head-dim": spec.mamba.head_dim,
                "mamba-state-dim": spec.mamba.state_size,
                "mamba-num-groups": spec.mamba.n_groups,
            }
        )
    if spec.mlp is not None and LayerKind.MLP in used:
        args["ffn-hidden-size"] = spec.mlp.intermediate_size
    if spec.moe is not None and LayerKind.MOE in used:
        moe = spec.moe
        shared = moe.shared_intermediate_size if moe.shared_experts and moe.shared_intermediate_size else None
        grouped = moe.n_group > 1
        args.update(
            {
                "num-experts": moe.num_experts,
                "moe-router-topk": moe.top_k,
                "moe-ffn-hidden-size": moe.intermediate_size,
                # transformers' NemotronHMoE builds one shared MLP of this width (n_shared_experts is ignored)
                "moe-shared-expert-intermediate-size": shared,
                "moe-shared-expert-gate": moe.shared_expert_gate,
                "moe-router-score-function": moe.router,
                "moe-router-pre-softmax": moe.router == "softmax" and not moe.norm_topk_prob,
                "moe-router-enable-expert-bias": moe.score_correction_bias,
                "moe-router-topk-scaling-factor": moe.routed_scaling_factor if moe.routed_scaling_factor != 1 else None,
                "moe-router-num-groups": moe.n_group if grouped else None,
                "moe-router-group-topk": moe.topk_group if grouped else None,
                "moe-latent-size": moe.latent_size,
            }
        )
    return {key: value for key, value in args.items() if value is not None}, problems


def megatron_command_line(args: dict[str, Any]) -> list[str]:
    """The arguments as Megatron's command-line flags.

    Every value is attached with ``=`` (``--hybrid-layer-pattern=-M*M``): a pattern that starts
    with ``-`` would otherwise be read by argparse as an option.  Booleans are bare flags when
    true and left out when false; a list (``--spec``) is the option followed by its items.
    """
    flags: list[str] = []
    for key, value in args.items():
        if isinstance(value, bool):
            if value:
                flags.append(f"--{key}")
        elif isinstance(value, list):
            flags.extend([f"--{key}", *map(str, value)])
        else:
            flags.append(f"--{key}={value}")
    return flags


def vllm_config_fields(spec: ModelSpec) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """The pattern fields vLLM's Nemotron-H loader indexes, or the vLLM profile's refusals."""
    problems = engine_diagnostics("vllm", spec)
    if has_errors(problems):
        return None, problems
    fields: dict[str, Any] = {"hybrid_override_pattern": spec.pattern.flat}
    if spec.pattern.mtp is not None:
        fields["mtp_hybrid_override_pattern"] = spec.pattern.mtp.flat
        fields["num_nextn_predict_layers"] = spec.pattern.mtp.depths
    return fields, problems
