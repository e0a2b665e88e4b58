"""``patternc build CONFIG --target torch`` then ``patternc run DIR`` for a tiny config of every family.

The per-family parity tests (tests/backends/torch/test_<family>.py) compare the torch backend with
transformers through the Python API; this file checks the user's path end to end, through the CLI,
for every registered family: a config of the family's transformers class (small sizes, the class's
own defaults otherwise) is written to disk, built into a model directory (config + safetensors),
and run; the ids ``patternc run --json`` prints equal those of ``generate`` on the model
``patternc.torch_model`` loads from that directory.  ``test_every_family_has_a_tiny_config`` names a
registered family this table forgets; every family but zamba2 (refused by design) must build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import patternc  # noqa: E402
from patternc import families  # noqa: E402
from patternc.cli import app  # noqa: E402
from patternc.config import read_config  # noqa: E402

VOCAB = 97
_ATTENTION: dict[str, Any] = {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8}
_MAMBA: dict[str, Any] = {"mamba_n_heads": 4, "mamba_d_head": 16, "mamba_n_groups": 1, "mamba_d_state": 8}
_LATENT: dict[str, Any] = {
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "q_lora_rank": 16,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": 8,
    "qk_rope_head_dim": 4,
    "v_head_dim": 8,
}
_EXPERTS: dict[str, Any] = {"num_experts_per_tok": 2, "moe_intermediate_size": 16}
_QWEN_LINEAR: dict[str, Any] = {
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
}

TINY: dict[str, tuple[str, dict[str, Any]]] = {
    "nemotron_h": (
        "nemotron_h",
        {
            "hybrid_override_pattern": "M-M*E",
            "mamba_num_heads": 4,
            "mamba_head_dim": 16,
            "n_groups": 1,
            "ssm_state_size": 8,
            "chunk_size": 8,
            "n_routed_experts": 4,
            "moe_shared_expert_intermediate_size": 16,
            **_ATTENTION,
            **_EXPERTS,
        },
    ),
    "bamba": ("bamba", {"num_hidden_layers": 2, "attn_layer_indices": [1], **_MAMBA, **_ATTENTION}),
    "granitemoehybrid": (
        "granitemoehybrid",
        {
            "num_hidden_layers": 2,
            "layer_types": ["mamba", "attention"],
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "shared_intermediate_size": 16,
            **_MAMBA,
            **_ATTENTION,
        },
    ),
    "jamba": (
        "jamba",
        {
            "num_hidden_layers": 4,
            "attn_layer_period": 2,
            "attn_layer_offset": 1,
            "expert_layer_period": 2,
            "expert_layer_offset": 1,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "mamba_d_state": 8,
            "mamba_expand": 2,
            **_ATTENTION,
        },
    ),
    "mamba2": (
        "mamba2",
        {"num_hidden_layers": 2, "num_heads": 4, "head_dim": 16, "n_groups": 1, "state_size": 8, "chunk_size": 8},
    ),
    "qwen3_next": (
        "qwen3_next",
        {
            "num_hidden_layers": 2,
            "layer_types": ["linear_attention", "full_attention"],
            "num_experts": 4,
            "shared_expert_intermediate_size": 16,
            **_QWEN_LINEAR,
            **_ATTENTION,
            **_EXPERTS,
        },
    ),
    "qwen3_5": (
        "qwen3_5_text",
        {"num_hidden_layers": 2, "layer_types": ["linear_attention", "full_attention"], **_QWEN_LINEAR, **_ATTENTION},
    ),
    "qwen3_5_moe": (
        "qwen3_5_moe_text",
        {
            "num_hidden_layers": 2,
            "layer_types": ["linear_attention", "full_attention"],
            "num_experts": 4,
            "shared_expert_intermediate_size": 16,
            **_QWEN_LINEAR,
            **_ATTENTION,
            **_EXPERTS,
        },
    ),
    "olmo_hybrid": (
        "olmo_hybrid",
        {
            "num_hidden_layers": 2,
            "layer_types": ["linear_attention", "full_attention"],
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 2,
            "linear_key_head_dim": 8,
            "linear_value_head_dim": 8,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
        },
    ),
    "deepseek_v3": (
        "deepseek_v3",
        {
            "num_hidden_layers": 2,
            "first_k_dense_replace": 1,
            "n_routed_experts": 4,
            "n_group": 1,
            "topk_group": 1,
            **_LATENT,
            **_EXPERTS,
        },
    ),
    "deepseek_v32": (
        "deepseek_v32",
        {
            "num_hidden_layers": 2,
            "first_k_dense_replace": 1,
            "n_routed_experts": 4,
            "n_group": 1,
            "topk_group": 1,
            "index_n_heads": 2,
            "index_head_dim": 16,
            "index_topk": 4,
            **_LATENT,
            **_EXPERTS,
        },
    ),
    "kimi_linear": (
        "kimi_linear",
        {
            "num_hidden_layers": 2,
            "linear_attn_config": {"kda_layers": [1], "full_attn_layers": [2]},
            "linear_num_heads": 2,
            "linear_head_dim": 8,
            "num_local_experts": 4,
            **_LATENT,
            **_EXPERTS,
        },
    ),
    "bailing_hybrid": (
        "bailing_hybrid",
        {
            "num_hidden_layers": 2,
            "layer_types": ["linear_attention", "full_attention"],
            "num_experts": 4,
            "num_mtp_layers": 0,
            "head_dim": 8,
            **_LATENT,
            **_EXPERTS,
        },
    ),
    "lfm2": ("lfm2", {"num_hidden_layers": 2, "layer_types": ["conv", "full_attention"], **_ATTENTION}),
    "lfm2_moe": (
        "lfm2_moe",
        {
            "num_hidden_layers": 2,
            "layer_types": ["conv", "full_attention"],
            "num_dense_layers": 1,
            "num_experts": 4,
            **_ATTENTION,
            **_EXPERTS,
        },
    ),
    "falcon_h1": (
        "falcon_h1",
        {
            "num_hidden_layers": 2,
            "mamba_n_heads": 4,
            "mamba_d_head": 16,
            "mamba_n_groups": 1,
            "mamba_d_state": 8,
            "mamba_chunk_size": 8,
            "mamba_d_ssm": 64,
            **_ATTENTION,
        },
    ),
    "minimax": (
        "minimax",
        {
            "num_hidden_layers": 2,
            "layer_types": ["linear_attention", "full_attention"],
            "num_local_experts": 4,
            "block_size": 4,
            **_ATTENTION,
            **_EXPERTS,
        },
    ),
}
"""Family -> (transformers ``model_type``, the small sizes given to its config class)."""

NOT_RUNNABLE = {"zamba2": "refused by design: its shared blocks are not a layer pattern (P914)"}
"""Families ``patternc build --target torch`` refuses by design, with the reason."""


def _config(family: str) -> dict[str, Any]:
    model_type, sizes = TINY[family]
    common = {
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    config: dict[str, Any] = transformers.AutoConfig.for_model(model_type, **(common | sizes)).to_dict()
    return config


def test_every_family_has_a_tiny_config() -> None:
    assert sorted(set(families.BUILTIN) - set(TINY) - set(NOT_RUNNABLE)) == []
    for family in TINY:
        reading = read_config(_config(family))
        assert reading.spec is not None, (family, [d.message for d in reading.diagnostics])
        assert reading.family == family


runner = CliRunner()


@pytest.mark.parametrize("family", sorted(TINY))
def test_build_then_run(family: str, tmp_path: Path) -> None:
    from patternc_torch.support import unsupported

    spec = read_config(_config(family)).spec
    assert spec is not None
    assert [d.message for d in unsupported(spec)] == []
    source = tmp_path / "config.json"
    source.write_text(json.dumps(_config(family)), encoding="utf-8")
    out = tmp_path / "model"
    built = runner.invoke(app, ["build", str(source), "--target", "torch", "-o", str(out)])
    assert built.exit_code == 0, built.output
    ran = runner.invoke(app, ["run", str(out), "--ids", "1 2 3", "--ids", "4 5", "-n", "4", "--json", "--device=cpu"])
    assert ran.exit_code == 0, ran.output
    rows = json.loads(ran.stdout)["rows"]
    model = patternc.torch_model(str(out), device="cpu")
    prompt = torch.tensor([[1, 2, 3], [0, 4, 5]])
    with torch.no_grad():
        expected = model.generate(prompt, attention_mask=torch.tensor([[1, 1, 1], [0, 1, 1]]), max_new_tokens=4)
    assert [row["ids"] for row in rows] == expected[:, 3:].tolist()
