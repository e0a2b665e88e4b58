"""``tests/benchmarks/torch_vs_transformers.py --quick`` runs end to end and prints every column.

Only that it runs: the figures of a tiny model on a shared machine mean nothing, so nothing here
asserts a speed.  The table's other rows are checked to read (each family's transformers config at
each size goes through ``read_config``), and a row the backend cannot build prints its P401 reasons.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "torch_vs_transformers.py"
COLUMNS = (
    "== nemotron_h quick (NemotronHForCausalLM): `M*-M`",
    "max |logit diff|",
    "greedy ids equal: True",
    "prefill 1x32: transformers",
    "decode 8 after 16: transformers",
    "cpu ms/token transformers",
    "patternc without the head screen",
    "GEMV ceiling:",
    "peak RSS MiB:",
    "decode floor:",
    "inference state, batch 1:",
    "patternc         ",
    "transformers     ",
    "bytes per further token",
)


def test_quick_row_runs_and_prints_every_column() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--no-compile"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for column in COLUMNS:
        assert column in done.stdout, (column, done.stdout)


def test_every_row_reads_and_refusals_are_p401(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = importlib.util.spec_from_file_location("torch_vs_transformers", SCRIPT)
    assert loaded is not None and loaded.loader is not None
    bench = importlib.util.module_from_spec(loaded)
    monkeypatch.setitem(sys.modules, loaded.name, bench)  # dataclasses look their module up there
    loaded.loader.exec_module(bench)
    issue_15 = {"qwen3_next", "qwen3_5", "qwen3_5_moe", "olmo_hybrid", "kimi_linear", "bailing_hybrid"}
    issue_15 |= {"deepseek_v3", "deepseek_v32", "jamba", "lfm2", "lfm2_moe", "falcon_h1", "minimax"}
    assert set(bench.ROWS) == issue_15 | {"nemotron_h"}
    for family in bench.ROWS:
        for size in bench.SIZES:
            spec, why = bench.read_spec(family, bench.hf_config(family, size))
            if spec is None:  # the backend's refusals, never a reading error
                assert why and all(reason.startswith("P401 ") for reason in why), (family, size, why)
            else:
                assert not why and spec.source == family, (family, size)
