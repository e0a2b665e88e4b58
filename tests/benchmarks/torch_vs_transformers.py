"""patternc_torch vs each family's transformers model: same weights, fp32, CPU (a script, not a test).

    python tests/benchmarks/torch_vs_transformers.py [--families nemotron_h,qwen3_next,...] [--sizes small,medium]
                                                     [--threads N] [--repeat N] [--device cpu|cuda]
                                                     [--dtype float32|bfloat16] [--no-compile] [--quick]

One row per family (``ROWS``: the families of issue 15's parity list, and Nemotron-H), each at a small
size (overhead-bound: a few MB of weights) and a medium one (weights-bound: a few hundred MB).  A row
builds the family's transformers config class at that size, reads it with ``patternc.config.read_config``
(the path ``patternc build <config>`` takes), builds transformers' model and patternc's from the IR, and
loads transformers' weights into patternc's through the backend's name mapping.  A family whose kinds
or flavours the torch backend does not build is printed as skipped with the backend's P401 reasons, so
that a kind added to ``patternc_torch.support.SUPPORT`` is benchmarked here with no change.
``--quick`` runs one tiny row (Nemotron-H unless ``--families`` says otherwise) in seconds: the test of
this script; its figures mean nothing.

The issue's figures are fp32 on the CPU (the defaults); on a GPU run it with ``--device cuda --dtype
bfloat16`` (memory figures are then CUDA allocator peaks, bandwidth a device-to-device copy).

Each phase runs ``--repeat`` times (default 3), alternating the two implementations, and the fastest run
counts. Prints, per family and size: prefill tokens/s (batch 1 x 2048 tokens; 512 for small), decode
tokens/s (batch 1, 64 new tokens after a 512-token prompt, greedy, each implementation's own cache),
their ratios, patternc's compiled decode step (``generate(compile=True)``, ``patternc_torch.compiled``:
its tokens/s and its one-off compile time), peak memory (RSS high-water mark of the process after each
phase; and each implementation alone in a child process on the same weights: how far its resident set
grows above the loaded model during prefill and during decode), the decode floor: bytes of weights
read per token / copy bandwidth measured in the same run, and the *GEMV ceiling*: the time one
chain of ``F.linear`` calls takes to read exactly the weights a decode step reads, measured between
the decode runs, i.e. what an implementation with no overhead at all would take on this machine now.
patternc's greedy decode reads the head through an int8 screen (``patternc_torch.greedy``: the same
ids, a quarter of the head's bytes); its decode is also timed with ``screen_head=False``.  Last, the
inference state each implementation holds after a prompt of 512 and of 8,192 tokens (patternc's
``InferenceState``, transformers' cache object: every tensor reachable from it), and the bytes each
further token of context adds: linear mixers (Mamba, DeltaNet, convolutions) add none, attention adds
its K/V (latent attention its compressed latent and rope key).

On a shared machine, ``--threads 1`` and the CPU-time figures (``cpu ms/token``, the process's CPU time
per decoded token, printed next to wall-clock tokens/s) are the steadier comparison.
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from patternc_torch.io import build, load_weights

from patternc import families
from patternc.config import read_config
from patternc.ir import make_pattern
from patternc.model import AttentionSpec, MambaSpec, MlpSpec, ModelSpec, NormSpec

DEVICE = torch.device("cpu")
DTYPE = torch.float32
"""Set by ``--device`` / ``--dtype`` (a script's globals: every phase runs on the same device)."""


@dataclass(frozen=True, slots=True)
class Size:
    """One benchmark size: the dimensions every family's row is built at, and the phases' lengths."""

    hidden: int
    vocab: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    inter: int
    experts: int
    top_k: int
    expert_inter: int
    prefill: int
    """Tokens of the timed prefill (batch 1)."""
    prompt: int
    """Tokens of the prompt before the timed decode."""
    new: int
    """Tokens decoded."""
    contexts: tuple[int, int]
    """Context lengths at which the inference state is measured."""
    target: tuple[float, float]
    """The issue's targets: prefill and decode speed-up over transformers."""


SIZES = {
    # overhead-bound: a few MB of weights, decode dominated by per-layer dispatch
    "small": Size(256, 1024, 8, 4, 2, 64, 768, 8, 2, 256, 512, 512, 64, (512, 8192), (1.5, 3.0)),
    # weights-bound: ~0.3-0.5 GB of fp32 weights, decode dominated by reading them
    "medium": Size(1024, 32000, 16, 8, 2, 128, 2304, 16, 2, 768, 2048, 512, 64, (512, 8192), (1.2, 1.8)),
    # one tiny row end to end in seconds (the test of this script; no figure means anything)
    "quick": Size(64, 97, 4, 2, 1, 32, 128, 4, 2, 64, 32, 16, 8, (16, 64), (0.0, 0.0)),
}


def _every_fourth(s: Size, linear: str, full: str = "full_attention") -> list[str]:
    """``s.layers`` layer types, every fourth one full attention (the 3:1 mix most hybrids release)."""
    return [full if i % 4 == 3 else linear for i in range(s.layers)]


def _qwen3_next(s: Size) -> dict[str, Any]:
    return {
        "vocab_size": s.vocab,
        "hidden_size": s.hidden,
        "intermediate_size": s.inter,
        "num_hidden_layers": s.layers,
        "layer_types": _every_fourth(s, "linear_attention"),
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "head_dim": s.head_dim,
        "partial_rotary_factor": 0.25,
        "linear_num_key_heads": s.heads,
        "linear_num_value_heads": 2 * s.heads,
        "linear_key_head_dim": s.head_dim,
        "linear_value_head_dim": s.head_dim,
        "num_experts": s.experts,
        "num_experts_per_tok": s.top_k,
        "moe_intermediate_size": s.expert_inter,
        "shared_expert_intermediate_size": s.expert_inter,
        "mlp_only_layers": [],
    }


def _qwen3_5(s: Size) -> dict[str, Any]:
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "layer_types")
    keep += ("num_attention_heads", "num_key_value_heads", "head_dim")
    keep += tuple(k for k in _qwen3_next(s) if k.startswith("linear_"))
    return {k: v for k, v in _qwen3_next(s).items() if k in keep}


def _qwen3_5_moe(s: Size) -> dict[str, Any]:
    moe = ("num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size")
    dense = _qwen3_5(s)
    del dense["intermediate_size"]
    return dense | {k: _qwen3_next(s)[k] for k in moe}


def _olmo_hybrid(s: Size) -> dict[str, Any]:
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "layer_types")
    keep += ("num_attention_heads", "num_key_value_heads")
    keep += tuple(k for k in _qwen3_next(s) if k.startswith("linear_"))
    out = {k: v for k, v in _qwen3_next(s).items() if k in keep}
    return out | {"num_key_value_heads": s.heads, "linear_num_value_heads": s.heads}


def _latent(s: Size) -> dict[str, Any]:
    """Multi-head latent attention's ranks, scaled with the model (DeepSeek's 512 + 64 at hidden 7168)."""
    return {
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.heads,
        "kv_lora_rank": s.hidden // 4,
        "q_lora_rank": s.hidden // 2,
        "qk_rope_head_dim": s.head_dim // 2,
        "qk_nope_head_dim": s.head_dim,
        "v_head_dim": s.head_dim,
    }


def _routed(s: Size) -> dict[str, Any]:
    return {
        "moe_intermediate_size": s.expert_inter,
        "num_experts_per_tok": s.top_k,
        "n_shared_experts": 1,
        "routed_scaling_factor": 2.5,
    }


def _kimi_linear(s: Size) -> dict[str, Any]:
    return (
        {
            "vocab_size": s.vocab,
            "hidden_size": s.hidden,
            "intermediate_size": s.inter,
            "num_hidden_layers": s.layers,
            "layer_types": _every_fourth(s, "linear_attention"),
            "mlp_layer_types": ["dense"] + ["sparse"] * (s.layers - 1),
            "linear_num_heads": s.heads,
            "linear_head_dim": s.head_dim,
            "num_local_experts": s.experts,
        }
        | _latent(s)
        | _routed(s)
        | {"q_lora_rank": None}
    )


def _bailing_hybrid(s: Size) -> dict[str, Any]:
    return _kimi_linear(s) | {
        "num_mtp_layers": 0,  # transformers builds no MTP depth: nothing to load patternc's from
        "q_lora_rank": None,
        "head_dim": s.head_dim,
        "first_k_dense_replace": 1,
        "n_group": 1,
        "topk_group": 1,
    }


def _deepseek_v3(s: Size) -> dict[str, Any]:
    return (
        {
            "vocab_size": s.vocab,
            "hidden_size": s.hidden,
            "intermediate_size": s.inter,
            "num_hidden_layers": s.layers,
            "first_k_dense_replace": 1,
            "num_mtp_layers": 0,  # transformers builds no MTP depth: nothing to load patternc's from
            "n_routed_experts": s.experts,
            "n_group": 2,
            "topk_group": 1,
        }
        | _latent(s)
        | _routed(s)
    )


def _deepseek_v32(s: Size) -> dict[str, Any]:
    return _deepseek_v3(s) | {"index_n_heads": s.heads, "index_head_dim": s.head_dim, "index_topk": s.prompt // 2}


def _jamba(s: Size) -> dict[str, Any]:
    return {
        "vocab_size": s.vocab,
        "hidden_size": s.hidden,
        "intermediate_size": s.inter,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "attn_layer_period": 4,
        "attn_layer_offset": 3,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "num_experts": s.experts,
        "num_experts_per_tok": s.top_k,
        "mamba_d_state": 16,
        "mamba_dt_rank": max(1, s.hidden // 16),
        "use_mamba_kernels": False,
    }


def _lfm2(s: Size) -> dict[str, Any]:
    return {
        "vocab_size": s.vocab,
        "hidden_size": s.hidden,
        "intermediate_size": s.inter,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "layer_types": _every_fourth(s, "conv"),
        "block_auto_adjust_ff_dim": False,
    }


def _lfm2_moe(s: Size) -> dict[str, Any]:
    return {k: v for k, v in _lfm2(s).items() if k != "block_auto_adjust_ff_dim"} | {
        "num_dense_layers": 1,
        "num_experts": s.experts,
        "num_experts_per_tok": s.top_k,
        "moe_intermediate_size": s.expert_inter,
    }


def _falcon_h1(s: Size) -> dict[str, Any]:
    return {
        "vocab_size": s.vocab,
        "hidden_size": s.hidden,
        "intermediate_size": s.inter,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "head_dim": s.head_dim,
        "mamba_n_heads": 2 * s.heads,
        "mamba_d_head": s.head_dim,
        "mamba_d_ssm": 2 * s.heads * s.head_dim,
        "mamba_d_state": s.head_dim,
        "mamba_n_groups": 1,
        "mamba_chunk_size": 128,
    }


def _minimax(s: Size) -> dict[str, Any]:
    return {
        "vocab_size": s.vocab,
        "hidden_size": s.hidden,
        "intermediate_size": s.expert_inter,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "head_dim": s.head_dim,
        "layer_types": _every_fourth(s, "linear_attention"),
        "num_local_experts": s.experts,
        "num_experts_per_tok": s.top_k,
        "block_size": 64,
    }


def _nemotron_h(s: Size) -> dict[str, Any]:
    """The Nemotron-H stack this benchmark always measured (``M-M*-M-M`` small, ``M-M-M*-`` x2 medium)."""
    pattern = {"small": "M-M*-M-M", "medium": "M-M-M*-M-M-M*-M-", "quick": "M*-M"}
    mamba_heads = {"small": 8, "medium": 32, "quick": 2}
    name = next(n for n, size in SIZES.items() if size is s)
    heads = mamba_heads[name]
    spec = ModelSpec(
        source="nemotron_h",
        pattern=make_pattern(pattern[name]),
        hidden_size=s.hidden,
        vocab_size=s.vocab,
        norm=NormSpec(eps=1e-5),
        attention=AttentionSpec(num_heads=s.heads, num_kv_heads=s.kv_heads, head_dim=s.head_dim),
        mamba=MambaSpec(
            num_heads=heads,
            head_dim=64 if name != "quick" else 32,
            state_size=s.head_dim,
            n_groups=1,
            conv_kernel=4,
            chunk_size=256,
            norm_group_size=heads * (64 if name != "quick" else 32),
            time_step_limit=(0.001, float("inf")),
        ),
        mlp=MlpSpec(intermediate_size=s.inter, activation="relu2", gated=False),
    )
    cfg = dict(families.get("nemotron_h").express(spec).config)
    return cfg | {"num_hidden_layers": len(cfg["layers_block_type"]), "chunk_size": 256}


@dataclass(frozen=True, slots=True)
class Row:
    """One family: its transformers config and model classes, and its config at a ``Size``."""

    config_class: str
    model_class: str
    kwargs: Callable[[Size], dict[str, Any]]


ROWS: dict[str, Row] = {
    "nemotron_h": Row("NemotronHConfig", "NemotronHForCausalLM", _nemotron_h),
    "qwen3_next": Row("Qwen3NextConfig", "Qwen3NextForCausalLM", _qwen3_next),
    "qwen3_5": Row("Qwen3_5TextConfig", "Qwen3_5ForCausalLM", _qwen3_5),
    "qwen3_5_moe": Row("Qwen3_5MoeTextConfig", "Qwen3_5MoeForCausalLM", _qwen3_5_moe),
    "olmo_hybrid": Row("OlmoHybridConfig", "OlmoHybridForCausalLM", _olmo_hybrid),
    "kimi_linear": Row("KimiLinearConfig", "KimiLinearForCausalLM", _kimi_linear),
    "bailing_hybrid": Row("BailingHybridConfig", "BailingHybridForCausalLM", _bailing_hybrid),
    "deepseek_v3": Row("DeepseekV3Config", "DeepseekV3ForCausalLM", _deepseek_v3),
    "deepseek_v32": Row("DeepseekV32Config", "DeepseekV32ForCausalLM", _deepseek_v32),
    "jamba": Row("JambaConfig", "JambaForCausalLM", _jamba),
    "lfm2": Row("Lfm2Config", "Lfm2ForCausalLM", _lfm2),
    "lfm2_moe": Row("Lfm2MoeConfig", "Lfm2MoeForCausalLM", _lfm2_moe),
    "falcon_h1": Row("FalconH1Config", "FalconH1ForCausalLM", _falcon_h1),
    "minimax": Row("MiniMaxConfig", "MiniMaxForCausalLM", _minimax),
}
"""Every family of issue 15's parity list, and Nemotron-H; a row whose kinds the torch backend does not
build is printed as skipped with the backend's P401 reasons (``patternc_torch.support``), so that a kind
added there is benchmarked here with no change."""


def hf_config(family: str, size: str) -> Any:
    import transformers

    row = ROWS[family]
    kwargs = row.kwargs(SIZES[size])
    if family != "nemotron_h":  # special ids inside the small vocabularies (the classes' defaults are not)
        kwargs |= {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    config = getattr(transformers, row.config_class)(**kwargs)
    config._attn_implementation = "sdpa"
    return config


def read_spec(family: str, config: Any) -> tuple[ModelSpec | None, list[str]]:
    """The IR the family's reader makes of ``config`` (the path ``patternc build <config>`` takes), or
    None and why it cannot be benchmarked: the reader's errors or the torch backend's refusals."""
    from patternc_torch.support import unsupported

    reading = read_config(config.to_dict())
    if reading.spec is None or not reading.ok:
        return None, [f"{d.code} {d.message}" for d in reading.diagnostics if d.severity.value == "error"]
    if reading.family != family:
        return None, [f"read as the {reading.family} family, not {family}"]
    refused = unsupported(reading.spec)
    return (None, [f"{d.code} {d.message}" for d in refused]) if refused else (reading.spec, [])


def transformers_model(family: str, config: Any) -> Any:
    import transformers

    torch.manual_seed(0)
    return getattr(transformers, ROWS[family].model_class)(config).eval()


def _where() -> str:
    name = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"CPU, threads {torch.get_num_threads()}"
    return f"{name}, {str(DTYPE)[6:]}"


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def peak_mib() -> float:
    if DEVICE.type == "cuda":
        return torch.cuda.max_memory_allocated(DEVICE) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def copy_bandwidth() -> float:
    """Bytes/s of a large fp32 copy (read + write counted)."""
    src = torch.randn(64 * 1024 * 1024 // 4 * 4, device=DEVICE)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(5):
        sync()
        start = time.perf_counter()
        dst.copy_(src)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * 4 / best


def bytes_per_token(model: torch.nn.Module, spec: ModelSpec) -> int:
    """Weights one decode step reads: everything but the embedding table (one row) and unused experts."""
    total = 0
    for name, p in model.named_parameters():
        if name == "backbone.embeddings.weight" and not spec.tie_embeddings:
            total += p.shape[1] * p.element_size()
        elif name.endswith(("experts.up_proj", "experts.down_proj", "experts.gate_up_proj")) and spec.moe:
            total += p.numel() * p.element_size() * spec.moe.top_k // spec.moe.num_experts
        else:
            total += p.numel() * p.element_size()
    return total


CHAIN_TOKENS = 8


def gemv_chain(model: Any, spec: ModelSpec, *, screened: bool = False) -> Any:
    """``CHAIN_TOKENS`` passes of one ``F.linear`` per weight matrix a decode step reads (the head in full,
    or through its int8 screen; the routed experts a token uses), and nothing else: the decode time of an
    overhead-free implementation."""
    import torch.nn.functional as F

    screen = model._screen() if screened else None
    weights = []
    for name, p in model.named_parameters():
        if p.dim() != 2 or name == "backbone.embeddings.weight" or "mtp." in name:
            continue
        if name == "lm_head.weight" and screen is not None:
            continue
        weights.append(p)
    experts = [p for name, p in model.named_parameters() if p.dim() == 3 and ".experts." in name]
    if spec.moe is not None:
        weights += [p[e] for p in experts for e in range(spec.moe.top_k)]
    inputs = {w.shape[1]: torch.randn(1, w.shape[1], device=DEVICE, dtype=DTYPE) for w in weights}
    normed = torch.randn(1, spec.hidden_size, device=DEVICE, dtype=DTYPE)

    def run() -> None:
        for _ in range(CHAIN_TOKENS):
            for w in weights:
                F.linear(inputs[w.shape[1]], w)
            if screen is not None:
                screen.argmax(normed)

    return run


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def working_memory(fn: Any) -> float:
    """MiB the resident set grows by while ``fn`` runs (its peak, from the kernel's high-water mark
    reset just before: ``/proc/self/clear_refs``), above the model already resident."""
    if DEVICE.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats(DEVICE)
        before_bytes = torch.cuda.memory_allocated(DEVICE)
        fn()
        sync()
        return (torch.cuda.max_memory_allocated(DEVICE) - before_bytes) / 2**20
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) / 1024


def _models(family: str, size: str, spec: ModelSpec, weights: dict[str, torch.Tensor] | None) -> tuple[Any, Any]:
    """transformers' model of the row (its own random weights, or ``weights``) and patternc's on the same."""
    hf = transformers_model(family, hf_config(family, size))
    if weights is not None:
        hf.load_state_dict(weights)
    ours = build(spec, DEVICE, DTYPE, init=False)
    load_weights(ours, dict(hf.state_dict()), "<transformers>")
    hf.to(DEVICE, DTYPE)
    return hf, ours


def _hf_generate(hf: Any, prompt: torch.Tensor, new: int) -> Any:
    mask = torch.ones_like(prompt)  # explicit: a prompt id equal to pad_token_id is no padding
    return hf.generate(
        prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0
    )


def memory_child(impl: str, phase: str, family: str, size: str, weights: str) -> None:
    """One implementation alone in this process: the working memory of one phase (prefill or decode),
    so that neither phase runs in memory the other freed."""
    from safetensors.torch import load_file

    s = SIZES[size]
    spec, _ = read_spec(family, hf_config(family, size))
    assert spec is not None
    if impl == "transformers":
        model = transformers_model(family, hf_config(family, size))
        model.load_state_dict(load_file(weights))
        model.to(DEVICE, DTYPE)
    else:
        model = build(spec, DEVICE, DTYPE, init=False)
        load_weights(model, load_file(weights), weights)
    gen = torch.Generator().manual_seed(0)
    long_ids = torch.randint(0, spec.vocab_size, (1, s.prefill), generator=gen).to(DEVICE)
    prompt = torch.randint(0, spec.vocab_size, (1, s.prompt), generator=gen).to(DEVICE)
    runs = {
        ("transformers", "prefill"): lambda: model(long_ids, use_cache=False, logits_to_keep=1),
        ("transformers", "decode"): lambda: _hf_generate(model, prompt, s.new),
        ("patternc", "prefill"): lambda: model(long_ids, logits_to_keep=1),
        ("patternc", "decode"): lambda: model.generate(prompt, max_new_tokens=s.new),
    }
    resident = _status_kib("VmRSS") / 1024
    with torch.inference_mode():
        grown = working_memory(runs[(impl, phase)])
    print(json.dumps({"model": resident, phase: grown}))


def measure_memory(hf: Any, family: str, size: str) -> dict[str, dict[str, float]]:
    """Each implementation in its own process on the same weights (a temporary safetensors file)."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        weights = str(Path(tmp) / "weights.safetensors")
        save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, weights)
        out: dict[str, dict[str, float]] = {"transformers": {}, "patternc": {}}
        for phase in ("prefill", "decode"):
            for impl in ("transformers", "patternc"):
                command = [sys.executable, __file__, "--memory-child", impl, "--phase", phase]
                command += ["--families", family, "--sizes", size, "--weights", weights]
                command += ["--device", str(DEVICE), "--dtype", str(DTYPE)[6:]]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                out[impl] |= json.loads(done.stdout.strip().splitlines()[-1])
    return out


def tensor_bytes(root: Any) -> int:
    """Bytes of every distinct tensor storage reachable from ``root`` through attributes, dicts, lists and
    tuples: an inference state or a cache object, whatever its layout (other implementations' too)."""
    seen_objects: set[int] = set()
    storages: dict[int, int] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, torch.Tensor):
            if obj.device.type != "meta":
                storage = obj.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
            continue
        if id(obj) in seen_objects or isinstance(obj, (str, bytes, int, float, bool, type(None), torch.nn.Module)):
            continue
        seen_objects.add(id(obj))
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not inspect.isroutine(obj) and not isinstance(obj, type):
            stack.extend(vars(obj).values())
    return sum(storages.values())


def state_bytes(hf: Any, ours: Any, spec: ModelSpec, contexts: tuple[int, ...]) -> dict[str, list[int]]:
    """Each implementation's inference state after a prompt of each length in ``contexts`` (batch 1):
    patternc's ``InferenceState`` sized to the prompt, transformers' cache object as it returns it."""
    out: dict[str, list[int]] = {"patternc": [], "transformers": []}
    gen = torch.Generator().manual_seed(1)
    for n in contexts:
        ids = torch.randint(0, spec.vocab_size, (1, n), generator=gen).to(DEVICE)
        with torch.inference_mode():
            state = ours.new_state(1, n)
            ours(ids, state=state, logits_to_keep=1)
            out["patternc"].append(tensor_bytes(state))
            del state
            cache = hf(ids, use_cache=True, logits_to_keep=1).past_key_values
            out["transformers"].append(tensor_bytes(cache))
            del cache
    return out


def _state_line(name: str, sizes: list[int], contexts: tuple[int, ...]) -> str:
    (short, long), (a, b) = contexts, sizes
    growth = (b - a) / (long - short)
    return (
        f"{name} {a / 2**20:8.2f} MiB at {short}, {b / 2**20:8.2f} MiB at {long} tokens of context: "
        f"{growth:9.1f} bytes per further token, {(a - growth * short) / 2**20:6.2f} MiB flat"
    )


def time_it(fn: Any, repeat: int = 2) -> float:
    """The best of ``repeat`` runs (the least disturbed by other processes on a shared machine)."""
    best = float("inf")
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def cpu_time(fn: Any) -> float:
    """CPU seconds this process spends in ``fn`` (all its threads): steadier than wall time on a busy machine."""
    sync()
    start = time.process_time()
    fn()
    sync()
    return time.process_time() - start


def _compile_option(ours: Any) -> bool:
    """Whether this backend's ``generate`` has the compiled decode step (``compile=``)."""
    return "compile" in inspect.signature(ours.generate).parameters


def run(family: str, size: str, repeat: int, *, compiled: bool, memory: bool) -> None:
    s = SIZES[size]
    config = hf_config(family, size)
    spec, why = read_spec(family, config)
    title = f"== {family} {size} ({ROWS[family].model_class})"
    if spec is None:
        print(f"{title}: skipped\n" + "\n".join(f"  {reason}" for reason in why), flush=True)
        return
    hf, ours = _models(family, size, spec, None)
    params = sum(p.numel() for p in ours.parameters())
    gen = torch.Generator().manual_seed(0)
    long_ids = torch.randint(0, spec.vocab_size, (1, s.prefill), generator=gen).to(DEVICE)
    prompt = torch.randint(0, spec.vocab_size, (1, s.prompt), generator=gen).to(DEVICE)
    new = s.new
    compiled = compiled and _compile_option(ours)
    rows = []
    with torch.inference_mode():
        check = prompt[:, : min(64, s.prompt)]
        ref = hf(check, use_cache=False).logits
        diff = float((ours(check).logits - ref).abs().max())
        mem0 = peak_mib()
        # the two implementations alternate, so that both see the same share of a busy machine;
        # the first round runs transformers first for the peak-memory figures
        t_hf_pre = time_it(lambda: hf(long_ids, use_cache=False, logits_to_keep=1), 1)
        mem_hf = peak_mib()
        t_our_pre = time_it(lambda: ours(long_ids, logits_to_keep=1), 1)
        mem_our = peak_mib()
        for _ in range(repeat - 1):
            t_hf_pre = min(t_hf_pre, time_it(lambda: hf(long_ids, use_cache=False, logits_to_keep=1), 1))
            t_our_pre = min(t_our_pre, time_it(lambda: ours(long_ids, logits_to_keep=1), 1))

        def hf_decode() -> Any:
            return _hf_generate(hf, prompt, new)

        def our_decode() -> Any:
            return ours.generate(prompt, max_new_tokens=new, **({"compile": False} if compiled else {}))

        def hf_prompt() -> Any:
            return hf(prompt, attention_mask=torch.ones_like(prompt), logits_to_keep=1)

        def our_prompt() -> Any:
            return ours(prompt, state=ours.new_state(1, s.prompt + new + 8), logits_to_keep=1)

        def our_full_decode() -> Any:
            return ours.generate(
                prompt, max_new_tokens=new, screen_head=False, **({"compile": False} if compiled else {})
            )

        def our_compiled_decode() -> Any:
            return ours.generate(prompt, max_new_tokens=new, compile=True)

        start = time.perf_counter()
        screen = ours._screen()  # built here, once: the timed generations reuse it
        t_screen = time.perf_counter() - start
        t_compile = 0.0
        if compiled:
            start = time.perf_counter()
            compiled_ids = our_compiled_decode()[0, s.prompt :].tolist()  # compiles, once
            t_compile = time.perf_counter() - start
        phases: list[tuple[str, Callable[[], Any]]] = [
            ("hf", hf_decode),
            ("hf_pre", hf_prompt),
            ("our", our_decode),
            ("our_pre", our_prompt),
            ("our_full", our_full_decode),
            ("chain", gemv_chain(ours, spec)),
            ("chain_screened", gemv_chain(ours, spec, screened=True)),
        ]
        if compiled:
            phases.append(("our_compiled", our_compiled_decode))
        best = {name: float("inf") for name, _ in phases}
        cpu = {name: float("inf") for name, _ in phases}
        for _ in range(repeat):
            for name, fn in phases:
                best[name] = min(best[name], time_it(fn, 1))
                cpu[name] = min(cpu[name], cpu_time(fn))
        mem_dec = peak_mib()
        t_hf_dec = max(best["hf"] - best["hf_pre"], 1e-9)
        t_our_dec = max(best["our"] - best["our_pre"], 1e-9)
        t_full_dec = max(best["our_full"] - best["our_pre"], 1e-9)
        t_chain = best["chain"] / CHAIN_TOKENS
        t_screened_chain = best["chain_screened"] / CHAIN_TOKENS

        def cpu_ms(name: str, prompt_phase: str) -> float:
            return max(cpu[name] - cpu[prompt_phase], 0.0) / new * 1e3

        ours_ids = our_decode()[0, s.prompt :].tolist()
        same = hf_decode()[0, s.prompt :].tolist() == ours_ids == our_full_decode()[0, s.prompt :].tolist()
        if compiled:
            same = same and compiled_ids == ours_ids
    states = state_bytes(hf, ours, spec, s.contexts)
    bandwidth = copy_bandwidth()
    floor = bandwidth / bytes_per_token(ours, spec)
    pre_hf, pre_our = s.prefill / t_hf_pre, s.prefill / t_our_pre
    dec_hf, dec_our, dec_full = new / t_hf_dec, new / t_our_dec, new / t_full_dec
    target_pre, target_dec = s.target
    rows.append(
        f"{title}: `{spec.pattern.flat}` hidden {spec.hidden_size} vocab {spec.vocab_size} "
        f"{params / 1e6:.1f}M params, {_where()}; max |logit diff| {diff:.2e}; "
        f"greedy ids equal: {same}"
    )
    rows.append(
        f"prefill 1x{s.prefill}: transformers {pre_hf:8.1f} tok/s  patternc {pre_our:8.1f} tok/s  "
        f"ratio {pre_our / pre_hf:5.2f}x (target {target_pre}x)"
    )
    rows.append(
        f"decode {new} after {s.prompt}: transformers {dec_hf:8.1f} tok/s  patternc {dec_our:8.1f} tok/s  "
        f"ratio {dec_our / dec_hf:5.2f}x (target {target_dec}x); cpu ms/token transformers "
        f"{cpu_ms('hf', 'hf_pre'):.2f}, patternc {cpu_ms('our', 'our_pre'):.2f}"
    )
    rows.append(f"  patternc without the head screen {dec_full:8.1f} tok/s  ratio {dec_full / dec_hf:5.2f}x")
    if compiled:
        t_comp_dec = max(best["our_compiled"] - best["our_pre"], 1e-9)
        rows.append(
            f"  patternc compiled step {new / t_comp_dec:8.1f} tok/s  ratio {new / t_comp_dec / dec_hf:5.2f}x, "
            f"{t_comp_dec / new * 1e3:.2f} ms/token (eager {t_our_dec / new * 1e3:.2f}), cpu ms/token "
            f"{cpu_ms('our_compiled', 'our_pre'):.2f}; compiled once in {t_compile:.1f} s"
        )
    if screen is not None:
        size_mb = (screen.codes.numel() + 2 * screen.scale.numel()) / 1e6
        rows.append(
            f"  head screen: built in {t_screen:.2f} s, {size_mb:.1f} MB, {screen.last_candidates} of "
            f"{spec.vocab_size} rows read in fp32 at the last step"
        )
    rows.append(
        f"GEMV ceiling: reading a step's weights takes {t_chain * 1e3:.2f} ms/token here now, so no "
        f"implementation reading all of them beats {t_hf_dec / new / t_chain:.2f}x transformers; "
        f"patternc's overhead over it {(t_full_dec / new - t_chain) * 1e3:+.2f} ms/token, "
        f"transformers' {(t_hf_dec / new - t_chain) * 1e3:+.2f} ms/token"
    )
    rows.append(
        f"  with the head screened: {t_screened_chain * 1e3:.2f} ms/token, ceiling "
        f"{t_hf_dec / new / t_screened_chain:.2f}x; patternc's overhead over it "
        f"{(t_our_dec / new - t_screened_chain) * 1e3:+.2f} ms/token"
    )
    rows.append(
        f"peak RSS MiB: start {mem0:.0f}, after transformers prefill {mem_hf:.0f}, after patternc prefill "
        f"{mem_our:.0f}, after both decodes {mem_dec:.0f}"
    )
    if memory:
        use = measure_memory(hf, family, size)
        mt, mp = use["transformers"], use["patternc"]
        rows.append(
            f"working memory MiB, each phase alone in its own process (peak above the loaded model): prefill "
            f"transformers {mt['prefill']:.0f}, patternc {mp['prefill']:.0f}; decode transformers "
            f"{mt['decode']:.0f}, patternc {mp['decode']:.0f}; models resident {mt['model']:.0f} / "
            f"{mp['model']:.0f} (process RSS)"
        )
    rows.append(
        f"decode floor: {bytes_per_token(ours, spec) / 1e6:.1f} MB weights/token at "
        f"{bandwidth / 1e9:.1f} GB/s copy bandwidth = {floor:8.1f} tok/s "
        f"(patternc at {dec_our / floor * 100:.0f}% of it)"
    )
    rows.append("inference state, batch 1:")
    rows.append(_state_line("  patternc    ", states["patternc"], s.contexts))
    rows.append(_state_line("  transformers", states["transformers"], s.contexts))
    print("\n".join(rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--sizes", default="small,medium", help="comma-separated, of small, medium, quick")
    parser.add_argument("--quick", action="store_true", help="one tiny row (the first family), no memory children")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per phase; the best counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled decode step")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-phase memory child processes")
    parser.add_argument("--memory-child", choices=["transformers", "patternc"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["prefill", "decode"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE, DTYPE
    DEVICE, DTYPE = torch.device(args.device), getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.families.split(",")
    unknown = [name for name in names if name not in ROWS]
    sizes = ["quick"] if args.quick else args.sizes.split(",")
    if unknown or any(size not in SIZES for size in sizes):
        parser.error(f"unknown families {unknown} or sizes {sizes}: families are {', '.join(ROWS)}")
    if args.memory_child:
        memory_child(args.memory_child, args.phase, names[0], sizes[0], args.weights)
        return
    if args.quick:
        names = names[:1]
    for size in sizes:
        for family in names:
            run(
                family,
                size,
                1 if args.quick else args.repeat,
                compiled=not args.no_compile,
                memory=not (args.quick or args.no_memory),
            )


if __name__ == "__main__":
    main()
