"""Speed and memory of ``patternc build --weights`` on a sharded ~200M-parameter checkpoint.

Run it with the project's interpreter (not collected by pytest)::

    .venv/bin/python tests/benchmarks/convert_weights.py [--dtype float32] [--shard-size 100MB] [--keep DIR]

It writes a random Nemotron-H MoE checkpoint in the hub layout (``backbone.*``, one tensor per
expert, sharded with ``model.safetensors.index.json``), then converts it with the installed
``patternc`` console script in a fresh process (experts stacked, names changed to transformers
5.x) and prints the wall time and the peak RSS of that process next to the largest tensor's size
and the checkpoint's size.  The same command without ``--weights`` is measured too: the import
and meta-model baseline the conversion adds to.  Streaming means peak RSS - baseline stays
within a small multiple of the largest tensor (reading experts to stack them holds them and the
stacked tensor at once), far below the checkpoint's size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "backends"))

CONFIG = {
    "model_type": "nemotron_h",
    "architectures": ["NemotronHForCausalLM"],
    "vocab_size": 32000,
    "hidden_size": 1024,
    "hybrid_override_pattern": "MEM*EMEM*",
    "num_hidden_layers": 9,
    "mamba_num_heads": 32,
    "mamba_head_dim": 64,
    "ssm_state_size": 128,
    "n_groups": 8,
    "conv_kernel": 4,
    "expand": 2,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "intermediate_size": 4096,
    "n_routed_experts": 16,
    "num_experts_per_tok": 4,
    "moe_intermediate_size": 1024,
    "moe_shared_expert_intermediate_size": 2048,
    "n_group": 1,
    "topk_group": 1,
    "time_step_limit": [0.0, float("inf")],
    "tie_word_embeddings": False,
}


def write_checkpoint(directory: Path, dtype_name: str, shard_bytes: int) -> tuple[int, int, str, int]:
    """(parameters, bytes, largest tensor name, its bytes) of a random hub-layout checkpoint."""
    import torch
    from patternc_transformers.build import config_fields, make_config, meta_model, tensor_shapes
    from patternc_transformers.layouts import hub_name
    from safetensors.torch import save_file

    from patternc.config import read_config

    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(CONFIG, indent=2))
    spec = read_config(directory).spec
    assert spec is not None
    shapes = tensor_shapes(meta_model(make_config("nemotron_h", config_fields(spec, "nemotron_h"))))
    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(0)
    hub: dict[str, tuple[int, ...]] = {}
    for name, shape in shapes.items():
        alias = hub_name("nemotron_h", name, shape)
        if isinstance(alias, list):
            hub.update({expert: shape[1:] for expert in alias})
        else:
            hub[alias or name] = shape
    size = torch.tensor([], dtype=dtype).element_size()
    largest = max(shapes, key=lambda n: _numel(shapes[n]))
    shard: dict[str, torch.Tensor] = {}
    shard_size, shards, weight_map, total, params = 0, 0, {}, 0, 0
    names = list(hub)

    def flush() -> None:
        nonlocal shard, shard_size, shards
        if shard:
            file = f"model-{shards + 1:05d}.safetensors"
            save_file(shard, str(directory / file), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, file))
            shards += 1
            shard, shard_size = {}, 0

    for name in names:
        numel = _numel(hub[name])
        if shard_size + numel * size > shard_bytes:
            flush()
        shard[name] = (torch.randn(hub[name], generator=generator) * 0.02).to(dtype)
        shard_size += numel * size
        total += numel * size
        params += numel
    flush()
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return params, total, largest, _numel(shapes[largest]) * size


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for s in shape:
        count *= s
    return count


def run(args: list[str]) -> tuple[float, int, str]:
    """Wall seconds and peak RSS (bytes) of a fresh ``patternc`` process."""
    script = Path(sys.executable).with_name("patternc")
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "print(dt, rss, p.returncode); sys.stderr.write(p.stdout + p.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(script), *args], capture_output=True, text=True, check=True)
    seconds, rss, status = done.stdout.split()
    if status != "0":
        raise SystemExit(f"patternc {' '.join(args)} failed:\n{done.stderr}")
    return float(seconds), int(rss), done.stderr


def mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--shard-size", default="100MB", help="shard size of the source checkpoint")
    parser.add_argument("--keep", type=Path, help="keep the checkpoints in this directory")
    options = parser.parse_args()
    from patternc.commands.build import parse_size

    work = options.keep or Path(tempfile.mkdtemp(prefix="patternc-bench-"))
    try:
        source, out = work / "source", work / "out"
        for path in (source, out):
            shutil.rmtree(path, ignore_errors=True)
        t = time.perf_counter()
        params, total, largest, largest_bytes = write_checkpoint(
            source, options.dtype, parse_size(options.shard_size) or 10**8
        )
        print(
            f"checkpoint: {params / 1e6:.1f}M parameters, {mb(total)} ({options.dtype}), "
            f"{len(list(source.glob('*.safetensors')))} shards, written in {time.perf_counter() - t:.1f} s"
        )
        print(f"largest tensor: {largest}, {mb(largest_bytes)}")
        base_s, base_rss, _ = run(["build", str(source), "-o", str(out), "--force"])
        print(f"config only (baseline): {base_s:.2f} s, peak RSS {mb(base_rss)}")
        seconds, rss, output = run(
            ["build", str(source), "-o", str(out), "--force", "--weights", str(source), "--max-shard-size", "200MB"]
        )
        print(output.rstrip())
        print(
            f"convert: {seconds:.2f} s, peak RSS {mb(rss)}; above baseline {mb(rss - base_rss)} "
            f"= {(rss - base_rss) / largest_bytes:.1f} x the largest tensor ({mb(largest_bytes)}), "
            f"{(rss - base_rss) / total:.2f} x the checkpoint ({mb(total)})"
        )
        print(f"throughput: {total / 1e6 / max(seconds - base_s, 1e-9):,.0f} MB/s beyond the baseline")
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
