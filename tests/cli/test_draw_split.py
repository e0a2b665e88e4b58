"""``patternc split --draw FILE``: the picture of the split that ``split`` prints, segments and costs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from patternc.analysis.pipeline import split_model, stage_costs
from patternc.cli import app
from patternc.inputs import load_source
from tests.core.test_draw import SVG, cells, layer_counts, svg_root

ROOT = Path(__file__).resolve().parents[2]
NANO = ROOT / "tests" / "fixtures" / "hub" / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"


def table(root: object) -> list[str]:
    assert hasattr(root, "iter")
    return [" ".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == "table-row"]


def test_the_balanced_split_is_drawn_with_its_costs(tmp_path: Path) -> None:
    out = tmp_path / "split.html"
    result = CliRunner().invoke(app, ["split", str(NANO), "--pp", "4", "--vpp", "2", "--draw", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"drew 52 layers · 8 segments into {out}\n")
    loaded = load_source(str(NANO))
    assert loaded.spec is not None
    split = split_model(loaded.spec, 4, 2)
    root = svg_root(out.read_text(encoding="utf-8"))
    assert layer_counts(root, "main") == Counter(loaded.spec.pattern.flat)
    rows = table(root)
    assert len(rows) == 8
    start = 0
    for index, (row, size, cost) in enumerate(zip(rows, split.partition.sizes, split.partition.costs, strict=True)):
        assert row.startswith(f"segment {index} rank {index % 4}  vp {index // 4} layers {start}-{start + size - 1}")
        assert f" {cost:,}" in row
        start += size
    assert "(+352,321,536 embedding)" in rows[0] and "head/MTP" in rows[-1]
    values = [int(g.get("data-value", "-1")) for g in cells(root, "main")]
    assert values == list(split.layer_costs)


def test_as_written_draws_the_written_stages(tmp_path: Path) -> None:
    out = tmp_path / "written.svg"
    pattern = "M-M-M-M*-M-M-M-|M*-M-M-M-M-M*-"
    result = CliRunner().invoke(
        app, ["split", pattern, "--pp", "2", "--as-written", "--cost", "flops", "--draw", str(out)]
    )
    assert result.exit_code == 0, result.output
    root = svg_root(out.read_text(encoding="utf-8"))
    loaded = load_source(pattern)
    assert loaded.spec is not None
    split = split_model(loaded.spec, 2, cost="flops")
    costs = stage_costs(split.layer_costs, (15, 14), split.first, split.last)
    rows = table(root)
    assert [r.split(" layers ")[1].split(" ")[0] for r in rows] == ["0-14", "15-28"]
    assert all(f" {c:,}" in r for r, c in zip(rows, costs, strict=True))


def test_a_bad_draw_file_is_refused_before_any_work(tmp_path: Path) -> None:
    taken = tmp_path / "taken.svg"
    taken.write_text("mine\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["split", "M-M*-M-M*-", "--pp", "2", "--draw", str(taken)])
    assert result.exit_code == 1 and "error[P620]" in result.output
    assert result.stdout == "" and taken.read_text(encoding="utf-8") == "mine\n"
    result = CliRunner().invoke(app, ["split", "M-M*-M-M*-", "--pp", "2", "--draw", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "error[P622]" in result.output and "--format" not in result.output
    result = CliRunner().invoke(app, ["split", "M-M*-M-M*-", "--pp", "2", "--draw", str(taken), "--force"])
    assert result.exit_code == 0, result.output
    assert taken.read_text(encoding="utf-8").startswith("<?xml")


def test_json_stays_json_with_a_drawing(tmp_path: Path) -> None:
    out = tmp_path / "j.svg"
    result = CliRunner().invoke(app, ["split", "M-M*-M-M*-", "--pp", "2", "--json", "--draw", str(out)])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    assert out.exists()
