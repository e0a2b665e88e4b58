"""Coverage-guided fuzzing of the config readers, every dialect (docs/reliability.md).

    .venv/bin/python tests/fuzz/fuzz_config.py -runs=30000 -max_total_time=280 -timeout=10 -rss_limit_mb=2048

Half the inputs are raw bytes written as ``config.json`` (UTF-8, JSON, nesting, duplicate keys);
the other half take a real config of one of the seven dialects and set, add or delete fields with
hostile values (huge, negative, zero, NaN/inf, wrong types, nesting).  ``check_config`` must give
a spec or diagnostics, never raise; a spec must be countable or refused (``P701``) as a whole.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["patternc"]):
    from patternc.analysis import CostError, model_stats
    from patternc.check import CheckRequest, answer, check_config
    from patternc.footprint import model_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _seeds import seed_configs, tally

SEEDS = seed_configs()
KEYS = sorted({key for config in SEEDS for key in config})
SCRATCH = Path(tempfile.mkdtemp(prefix="patternc-fuzz-config-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
FILE = SCRATCH / "config.json"
COUNTS: dict[str, int] = {}


def value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> Any:
    kind = fdp.ConsumeIntInRange(0, 11)
    if kind == 0:
        return fdp.ConsumeIntInRange(-4, 300)
    if kind == 1:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 40))  # up to 320 bits
    if kind == 2:
        return fdp.ConsumeFloat()  # NaN, ±inf, subnormals included
    if kind == 3:
        return fdp.PickValueInList([0, -1, 2**31 - 1, 2**31, 2**63, 10**400, -(2**63), 0.0, -0.0, math.nan, math.inf])
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(40)
    if kind == 5:
        return fdp.PickValueInList([True, False, None])
    if kind == 6 and depth < 4:
        return [value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 6))]
    if kind == 7 and depth < 4:
        return {fdp.PickValueInList(KEYS): value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))}
    if kind == 8:
        return fdp.PickValueInList(["M-M*-", "M" * 64, "mamba", "attention", "relu2", "silu", "*" * 3000, ""])
    if kind == 9:
        return ["mamba", "attention", "mlp", "moe", "linear_attention", "full_attention"][: fdp.ConsumeIntInRange(0, 6)]
    return fdp.ConsumeIntInRange(1, 1 << 20)


def mutate(fdp: atheris.FuzzedDataProvider) -> dict[str, Any]:
    config = dict(SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)])
    for _ in range(fdp.ConsumeIntInRange(1, 6)):
        action = fdp.ConsumeIntInRange(0, 3)
        key = fdp.PickValueInList(sorted(config)) if config and action < 3 else fdp.PickValueInList(KEYS)
        if action == 0 and key in config:
            del config[key]
        else:
            config[key] = value(fdp)
    return config


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:
        FILE.write_bytes(fdp.ConsumeBytes(1 << 16))
    else:
        config = mutate(fdp)
        text = json.dumps(config, indent=None if mode == 1 else 2)
        if mode == 2 and fdp.ConsumeBool():  # a duplicate key, spelled twice in the text
            text = text[:1] + json.dumps(fdp.PickValueInList(KEYS)) + ": 1, " + text[1:] if len(text) > 2 else text
        FILE.write_text(text, encoding="utf-8")
    outcome = check_config(str(FILE))
    if fdp.ConsumeIntInRange(0, 7) == 0:  # the canonical map (networkx, ~50 ms) and target profiles, 1 in 8
        outcome = answer(outcome, CheckRequest(str(FILE), all_targets=fdp.ConsumeBool()))
    spec = outcome.spec
    if spec is None:
        assert outcome.analysis.diagnostics, "no spec and no diagnostic"
        tally("config", COUNTS, f"mode{mode}-rejected")
        return
    tally("config", COUNTS, f"mode{mode}-accepted")
    with contextlib.suppress(CostError):
        model_stats(spec)
    assert model_bytes(spec, 4) >= 0


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
