"""Engines beyond one machine: Megatron-Core arguments and a vLLM-ready config, from a ModelSpec.

``megatron_arguments`` maps the spec onto Megatron-Core / Megatron-Bridge's argument names (the
``--hybrid-layer-pattern`` carries the balanced ``|`` split of ``patternc.analysis.split_model``
and the ``/`` MTP depths); ``vllm_config_fields`` adds what vLLM's Nemotron-H loader reads
(``hybrid_override_pattern`` and ``mtp_hybrid_override_pattern``, indexed per layer) to the
transformers config.  Both refuse, with the target profile's diagnostics, what the engine cannot
load.  Nothing here imports torch or transformers.
"""

from __future__ import annotations

from typing import Any

from patternc.diagnostics import Diagnostic, diag, has_errors
from patternc.model import ModelSpec

MEGATRON_FORMAT = "patternc.megatron.v1"


def engine_diagnostics(profile: str, spec: ModelSpec) -> list[Diagnostic]:
    from patternc.targets import check_target

    return check_target(profile, spec.pattern, spec)


def megatron_arguments(spec: ModelSpec, pp: int = 1, vpp: int = 1) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """Megatron-Core arguments (``--name`` → value) for ``spec``, split over ``pp × vpp`` stages."""
    from patternc.analysis import split_model

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
    args: dict[str, Any] = {
        "hybrid-layer-pattern": split.unified,
        "num-layers": spec.pattern.num_layers,
        "hidden-size": spec.hidden_size,
        "padded-vocab-size": spec.vocab_size,
        "normalization": "RMSNorm",
        "norm-epsilon": spec.norm.eps,
        "position-embedding-type": "none",
        "untie-embeddings-and-output-weights": not spec.tie_embeddings,
        "pipeline-model-parallel-size": pp,
    }
    if vpp > 1:
        args["num-virtual-stages-per-pipeline-rank"] = vpp
    if spec.pattern.mtp is not None:
        args["mtp-num-layers"] = spec.pattern.mtp.depths
    if spec.attention is not None:
        args.update(
            {
                "num-attention-heads": spec.attention.num_heads,
                "group-query-attention": spec.attention.num_kv_heads != spec.attention.num_heads,
                "num-query-groups": spec.attention.num_kv_heads,
                "kv-channels": spec.attention.head_dim,
                "add-qkv-bias": spec.attention.qkv_bias,
            }
        )
    if spec.mamba is not None:
        args.update(
            {
                "mamba-num-heads": spec.mamba.num_heads,
                "mamba-head-dim": spec.mamba.head_dim,
                "mamba-state-dim": spec.mamba.state_size,
                "mamba-num-groups": spec.mamba.n_groups,
            }
        )
    if spec.mlp is not None:
        args["ffn-hidden-size"] = spec.mlp.intermediate_size
        args["squared-relu"] = spec.mlp.activation == "relu2"
        args["swiglu"] = spec.mlp.gated and spec.mlp.activation == "silu"
    if spec.moe is not None:
        moe = spec.moe
        args.update(
            {
                "num-experts": moe.num_experts,
                "moe-router-topk": moe.top_k,
                "moe-ffn-hidden-size": moe.intermediate_size,
                "moe-shared-expert-intermediate-size": moe.shared_intermediate_size * max(moe.shared_experts, 1)
                if moe.shared_experts
                else None,
                "moe-router-score-function": moe.router,
                "moe-router-enable-expert-bias": moe.score_correction_bias,
                "moe-router-topk-scaling-factor": moe.routed_scaling_factor,
                "moe-router-num-groups": moe.n_group,
                "moe-router-group-topk": moe.topk_group,
                "moe-latent-size": moe.latent_size,
            }
        )
    return {key: value for key, value in args.items() if value is not None}, problems


def megatron_command_line(args: dict[str, Any]) -> list[str]:
    """The arguments as Megatron's command-line flags (booleans as bare flags when true)."""
    flags: list[str] = []
    for key, value in args.items():
        if isinstance(value, bool):
            if value:
                flags.append(f"--{key}")
        else:
            flags.extend([f"--{key}", str(value)])
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
