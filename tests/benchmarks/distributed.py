"""Resident weights per rank and decode speed of the sharded torch model (issue 16).

Run it with the project's interpreter (not collected by pytest)::

    .venv/bin/python tests/benchmarks/distributed.py [--ranks 2 4] [--tokens 16] [--hidden 64]

For each rank count it launches ``torchrun --nproc-per-node N tests/backends/torch/dist_worker.py`` (the
ranks check themselves against the one-process model: logits within 1e-5, greedy tokens, decode steps;
a mismatch fails the launch) and prints, per mode (tensor parallel, FSDP2, pipeline) and config: the
largest difference of logits, each rank's resident weights as a fraction of the model's (``resident_bytes``:
about 1/N is the point of sharding) and the tokens per second of greedy generation, the one-process
model's figure beside it.  The pipeline's figure is decoding through each stage's inference state (one
position per row per stage and token, ``patternc_torch.pipeline``), the prompt through the schedule.
On a CPU with gloo the collectives dominate at these sizes: the figures show
that sharding works and what it costs here, not the speed-up of large models on GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "backends" / "torch" / "dist_worker.py"


def one_process(tokens: int) -> dict[str, float]:
    """Tokens per second of the unsharded model, per config, greedy, in this process."""
    import torch

    import patternc
    from tests.backends.torch.dist_worker import CONFIGS, prompt, spec_for

    torch.set_num_threads(1)
    out = {}
    for config in CONFIGS:
        model = patternc.torch_model(spec_for(config))
        ids = prompt()
        model.generate(ids, 2)
        start = time.perf_counter()
        model.generate(ids, tokens)
        out[config] = ids.shape[0] * tokens / (time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--modes", default="tp,fsdp,pp")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "backends"), str(ROOT), env.get("PYTHONPATH", "")])
    sys.path[:0] = [str(ROOT / "backends"), str(ROOT)]
    base = one_process(args.tokens)
    print("one process: " + ", ".join(f"{c} {r:.1f} tok/s" for c, r in base.items()))
    print(
        f"{'ranks':>5} {'mode':<5} {'config':<6} {'max |dlogits|':>13} {'resident/rank':>24} {'tok/s':>7} {'1 proc':>7}"
    )
    status = 0
    for world in args.ranks:
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world)]
            command += [str(WORKER), out, args.modes, "dense,moe,mtp,gdn", str(args.tokens)]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{world} ranks: FAIL\n{done.stderr[-3000:]}")
                status = 1
                continue
            results = [json.loads(p.read_text()) for p in sorted(Path(out).glob("*.json"))]
        groups: dict[tuple[str, str], list[dict[str, float]]] = {}
        for r in results:
            groups.setdefault((r["mode"], r["config"]), []).append(r)
        for (mode, config), ranks in sorted(groups.items()):
            fractions = " ".join(f"{r['fraction']:.3f}" for r in sorted(ranks, key=lambda r: r["rank"]))
            seconds = max(r["seconds"] for r in ranks)
            rate = 2 * args.tokens / seconds
            diff = max(r["logits_diff"] for r in ranks)
            print(f"{world:>5} {mode:<5} {config:<6} {diff:>13.2e} {fractions:>24} {rate:>7.1f} {base[config]:>7.1f}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
