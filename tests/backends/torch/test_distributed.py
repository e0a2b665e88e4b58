"""Tensor parallel, FSDP2 and pipeline parallel on the CPU with gloo (issue 16).

The launches run ``dist_worker.py`` under ``torchrun`` with 2 and 4 processes: every rank compares its
sharded model against the one-process model (logits within 1e-5, the same greedy tokens, the decode
through the sharded inference state) and raises on a mismatch; the test then reads each rank's resident
weights.  The plan's refusals are checked in this process, without a process group.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from patternc_torch.distributed import Split, _mixer_plan, problems, tp_plan  # noqa: E402
from patternc_torch.pipeline import stage_bounds  # noqa: E402

import patternc  # noqa: E402
from patternc.diagnostics import PatternError  # noqa: E402
from patternc.ir import make_pattern  # noqa: E402
from patternc.model import ShortConvSpec  # noqa: E402
from tests.backends.torch.dist_worker import spec_for  # noqa: E402

WORKER = Path(__file__).with_name("dist_worker.py")
ROOT = Path(__file__).resolve().parents[3]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "backends"), str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"
    return env


def launch(world: int, out: Path, modes: str, configs: str) -> list[dict[str, object]]:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world)]
    command += ["--standalone", str(WORKER), str(out), modes, configs, "5"]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]


@pytest.mark.parametrize("world", [2, 4])
def test_sharded_models_equal_the_one_process_model(world: int, tmp_path: Path) -> None:
    modes = "tp,fsdp,pp,load" if world == 2 else "tp,fsdp,pp"
    results = launch(world, tmp_path, modes, "dense,moe,mtp,gdn")
    seen = {(r["mode"], r["config"]) for r in results}
    configs = ("dense", "moe", "mtp", "gdn")
    expected = {(m, c) for m in ("tp", "fsdp", "pp") for c in configs}
    if world == 2:
        expected |= {(f"load-{k}", c) for k in ("tp", "pp", "dp") for c in configs} | {("load-dp", "uneven")}
    assert seen == expected
    assert len(results) == len(seen) * world
    for r in results:
        if str(r["mode"]).startswith("load-"):
            continue
        assert float(r["logits_diff"]) <= 1e-5  # type: ignore[arg-type]
        fraction = float(r["fraction"])  # type: ignore[arg-type]
        if r["mode"] == "fsdp":
            assert fraction == pytest.approx(1 / world, abs=0.01)
        elif r["mode"] == "tp":  # norms, the router and MTP's fusion projection are replicated
            assert 1 / world <= fraction < 1 / world + 0.06
    for config in configs:  # each stage holds its own layers: the shares add up to one, plus MTP's table replica
        ranks = [r for r in results if r["mode"] == "pp" and r["config"] == config]
        shares = [float(r["fraction"]) for r in ranks]  # type: ignore[arg-type]
        replica = float(ranks[0]["table_bytes"]) / float(ranks[0]["full_bytes"]) if config == "mtp" else 0.0  # type: ignore[arg-type]
        assert max(shares) < 0.75 and sum(shares) == pytest.approx(1.0 + replica, abs=0.02)
        for r in ranks:  # decoding through each stage's state: the prompt once, then one position per token
            assert r["closures"] is True and r["tokens_seen"] == 2 * (11 + 5 - 1), r
            assert float(r["step_diff"]) <= 1e-5  # type: ignore[arg-type]
            assert (config == "mtp") == ("mtp_diff_1" in r) and float(r.get("mtp_diff_1", 0.0)) <= 1e-5  # type: ignore[arg-type]
    # loading a model directory: a tensor-parallel rank reads its slices, a stage its layers, an FSDP rank
    # its rows of every parameter (and the small unsharded buffers whole), no more
    for r in results:
        if r["mode"] in ("load-tp", "load-pp"):
            assert 0.3 < float(r["read_fraction"]) < 0.6, r  # type: ignore[arg-type]
        elif r["mode"] == "load-dp":
            assert float(r["read_fraction"]) == pytest.approx(1 / world, abs=0.01), r  # type: ignore[arg-type]


def test_torchrun_runs_patternc_run_sharded(tmp_path: Path) -> None:
    from patternc_torch import write_model_dir

    write_model_dir(spec_for("moe", stages=True), tmp_path / "model")
    model = patternc.torch_model(tmp_path / "model")
    want = model.generate(torch.tensor([[5, 9, 2, 7]]), 5)[0, 4:].tolist()
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"]
    command += ["-m", "patternc", "run", str(tmp_path / "model"), "--ids", "5 9 2 7", "-n", "5", "--tp", "2", "--json"]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(done.stdout)  # rank 0 alone prints
    assert data["ok"] and data["rows"][0]["ids"] == want and data["weights"] == str(tmp_path / "model")
    # the pipeline: prompts of two lengths (left-padded), sampled on the last stage with the seed's generator
    from typer.testing import CliRunner

    from patternc.cli import app

    args = ["run", str(tmp_path / "model"), "--ids", "5 9 2 7", "--ids", "3 1", "-n", "5", "--sample", "--seed", "3"]
    one = CliRunner().invoke(app, [*args, "--json"])
    assert one.exit_code == 0, one.output
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", "-m", "patternc"]
    done = subprocess.run(
        [*command, *args, "--pp", "2", "--json"], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = json.loads(done.stdout)["rows"]
    assert [r["ids"] for r in rows] == [r["ids"] for r in json.loads(one.stdout)["rows"]]


def test_run_outside_torchrun_is_a_diagnostic(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from patternc.cli import app

    for args, code in [(["--tp", "2"], "P421"), (["--tp", "3"], "P420"), (["--tp", "2", "--fsdp"], "P421")]:
        result = CliRunner().invoke(app, ["run", "*-", "--ids", "1 2", *args, "--json"])
        assert result.exit_code == 1, result.output
        codes = [d["code"] for d in json.loads(result.stdout)["diagnostics"]]
        assert codes and set(codes) == {code}, codes


def test_the_plan_cuts_mamba_in_proj_stream_by_stream() -> None:
    model = patternc.torch_model(spec_for("dense"))  # Mamba: 8 heads of 8, 4 groups of state 8
    plan = tp_plan(model, 1, 2)
    inner, gn = 64, 32
    assert plan.splits["backbone.layers.0.mixer.in_proj.weight"].ranges == (
        (32, 64),  # z: the second half
        (inner + 32, inner + 64),  # x
        (2 * inner + 16, 2 * inner + 32),  # B: groups 2 and 3
        (2 * inner + gn + 16, 2 * inner + gn + 32),  # C
        (2 * inner + 2 * gn + 4, 2 * inner + 2 * gn + 8),  # dt: heads 4..7
    )
    assert plan.sizes["backbone.layers.0.mixer"] == {"heads": 4, "groups": 2, "inner": 32, "conv_dim": 64}
    # 2 KV heads over 4 ranks: ranks 0, 1 keep head 0, ranks 2, 3 head 1
    kv = [tp_plan(model, r, 4).splits["backbone.layers.3.mixer.k_proj.weight"] for r in range(4)]
    assert [s.ranges for s in kv] == [((0, 8),), ((0, 8),), ((8, 16),), ((8, 16),)]
    assert {s.kind for s in kv} == {"expanded"}
    full = torch.arange(12.0).view(6, 2)
    assert Split(0, ((0, 2), (4, 5))).take(full, 1).tolist() == [[0, 1], [2, 3], [8, 9]]
    assert Split(0, (), "partial").take(full, 1).abs().sum() == 0


def test_what_does_not_split_is_one_diagnostic_each() -> None:
    model = patternc.torch_model(spec_for("dense"))
    found = problems(model, 8)  # 4 attention heads, 4 Mamba groups, vocabulary 64
    messages = [d.message for d in found]
    assert {d.code for d in found} == {"P420"}
    assert any("4 attention heads do not split over 8" in m for m in messages)
    assert any("Mamba2's 8 heads in 4 group(s) do not split over 8" in m for m in messages)
    assert problems(model, 2) == [] and problems(model, 4) == []
    with pytest.raises(PatternError) as raised:
        tp_plan(model, 0, 3)
    assert "the vocabulary of 64 does not split over 3 ranks" in str(raised.value.diagnostics[0].message)


def test_a_kind_without_a_plan_is_refused_by_name() -> None:
    spec = spec_for("dense").model_copy(
        update={"pattern": make_pattern("C-"), "short_conv": ShortConvSpec(conv_kernel=3)}
    )
    found = problems(patternc.torch_model(spec), 2)
    assert len(found) == 1 and "layer `C` (backbone.layers.0)" in found[0].message
    # OLMo's query/key norm over all heads at once has no per-rank share
    base = spec_for("dense")
    assert base.attention is not None
    attention = base.attention.model_copy(update={"qk_norm": True, "qk_norm_whole": True})
    found = problems(patternc.torch_model(base.model_copy(update={"attention": attention})), 2)
    assert [d.code for d in found] == ["P420"] and "spans all heads" in found[0].message


def _shard(mixer: torch.nn.Module, rank: int, size: int) -> torch.nn.Module:
    """Rank ``rank``'s copy of ``mixer`` cut by its plan, without a process group."""
    plan, problem = _mixer_plan(mixer, rank, size)
    assert plan is not None, problem
    local = copy.deepcopy(mixer)
    with torch.no_grad():
        for name, split in plan.splits.items():
            owner_path, _, leaf = name.rpartition(".")
            owner = local.get_submodule(owner_path) if owner_path else local
            setattr(owner, leaf, torch.nn.Parameter(split.take(getattr(owner, leaf).detach(), rank)))
    for attr, value in plan.sizes.items():
        setattr(local, attr, value)
    if hasattr(local, "experts"):
        local.experts.intermediate //= size
    return local


@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize(
    ("config", "layer", "layout"),
    [
        ("dense", 0, "fused"),
        ("dense", 3, "fused"),
        ("dense", 4, "fused"),
        ("moe", 1, "fused"),
        ("gdn", 0, "fused"),
        ("gdn", 0, "split"),
        ("gdn", 0, "separate"),
    ],
)
def test_the_shards_of_each_mixer_sum_to_its_output(config: str, layer: int, layout: str, size: int) -> None:
    """Each plan in one process: the ranks' partial outputs (what the all-reduce adds) sum to the mixer's."""
    spec = spec_for(config, layout=layout)
    model = patternc.torch_model(spec)
    mixer = model.backbone.layers[layer].mixer
    x = torch.randn(2, 9, spec.hidden_size, generator=torch.Generator().manual_seed(layer))
    ctx = model._context(torch.zeros(2, 9, dtype=torch.long), None, None, None)
    with torch.no_grad():
        want = mixer(x, ctx)
        got = sum(_shard(mixer, r, size)(x, ctx) for r in range(size))
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)


def test_stages_come_from_the_pattern_or_the_split() -> None:
    assert stage_bounds(spec_for("dense", stages=True)) == [(0, 2), (2, 5)]
    four = stage_bounds(spec_for("dense"), 4)
    assert len(four) == 4 and four[0][0] == 0 and four[-1][1] == 5
    assert all(b > a for a, b in four) and all(x[1] == y[0] for x, y in itertools.pairwise(four))
    assert stage_bounds(spec_for("dense"), bounds=[1, 3]) == [(0, 1), (1, 3), (3, 5)]
    with pytest.raises(PatternError):
        stage_bounds(spec_for("dense"), 6)
