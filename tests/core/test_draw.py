"""``patternc draw`` and ``patternc.draw``: what the picture holds, how it is written, and its failures.

The pictures are read back with the standard library's XML parser (the SVG is well-formed XML;
the HTML page holds the same ``<svg>`` element), so every check here is about the document, not
its pixels; ``tests/cli/test_draw_browser.py`` opens the same files in Chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import patternc
from patternc.cli import app
from patternc.draw import (
    COLLAPSE_ABOVE,
    Collapse,
    Format,
    Picture,
    PublishError,
    Segment,
    draw,
    factor,
    picture_of,
    publish_file,
    render_html,
    render_svg,
)
from tests.strategies import Generated, any_pattern

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "tests" / "fixtures" / "hub"
SVG = "{http://www.w3.org/2000/svg}"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def svg_root(text: str) -> ET.Element:
    """The ``<svg>`` element of an SVG file or of the HTML page that holds one."""
    if text.startswith("<!DOCTYPE html>"):
        start, end = text.index("<svg"), text.index("</svg>") + len("</svg>")
        text = text[start:end]
    return ET.fromstring(text)


def cells(root: ET.Element, part: str | None = None) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "cell" and part in (None, g.get("data-part"))]


def layer_counts(root: ET.Element, part: str) -> Counter[str]:
    """Layers per symbol, each cell counted for the layers it stands for (``×k`` runs)."""
    counts: Counter[str] = Counter()
    for g in cells(root, part):
        counts[g.get("data-symbol", "")] += int(g.get("data-layers", "0"))
    return counts


def texts(root: ET.Element, cls: str) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == cls]


# -- what is drawn ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(generated=any_pattern, collapse=st.sampled_from(list(Collapse)))
def test_every_layer_is_drawn_once(generated: Generated, collapse: Collapse) -> None:
    """Whatever the pattern and the collapse mode: the cells add up to its layers, kind by kind,
    one boundary per stage when there are several, and the document is well-formed XML."""
    pattern = patternc.parse(generated.text, dialect=generated.dialect)
    root = svg_root(render_svg(picture_of(pattern, generated.text), collapse).split("\n", 1)[1])
    assert layer_counts(root, "main") == Counter(generated.flat)
    assert layer_counts(root, "mtp") == Counter({s: n * generated.depths for s, n in Counter(generated.mtp).items()})
    assert root.get("data-layers") == str(len(generated.flat) + len(generated.mtp) * generated.depths)
    boundaries = [e for e in root.iter(f"{SVG}line") if e.get("class") == "boundary"]
    assert len(boundaries) == (len(generated.stages) if len(generated.stages) > 1 else 0)
    separators = [e for e in root.iter(f"{SVG}text") if e.get("class") == "mtp-separator"]
    assert (len(separators) > 0) == (generated.depths > 0)
    assert_inside(root)


def assert_inside(root: ET.Element) -> None:
    """Every cell lies inside the picture's width and height (nothing cut off)."""
    width, height = int(root.get("width", "0")), int(root.get("height", "0"))
    for g in cells(root):
        rect = next(r for r in g.iter(f"{SVG}rect") if r.get("class") != "bar")
        x, y = float(rect.get("x", "-1")), float(rect.get("y", "-1"))
        assert x >= 0 and x + float(rect.get("width", "0")) <= width, g.attrib
        assert y >= 0 and y + float(rect.get("height", "0")) <= height, g.attrib


def test_long_mtp_blocks_and_runs_wrap_inside_the_picture() -> None:
    for text in ("M-/" + "*E" * 70, "M-" + ("/*E-" + "M" * 60) * 3, "(M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-M-M-M-M-*E){30}"):
        pattern = patternc.parse(text)
        for collapse in Collapse:
            root = svg_root(draw(picture_of(pattern, text), collapse).svg)
            assert_inside(root)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="M-*E", max_size=300))
def test_factor_covers_the_text_in_order(text: str) -> None:
    items = factor(text, 7)
    assert "".join(item.unit * item.repeat for item in items) == text
    position = 7
    for item in items:
        assert item.start == position
        assert item.repeat == 1 or len(item.unit) * (item.repeat - 1) >= 4
        position += item.layers


def test_factor_collapses_a_periodic_stack() -> None:
    assert [(i.unit, i.repeat) for i in factor("M-M-M-M*-" * 1111 + "M")] == [("M-M-M-M*-", 1111), ("M", 1)]
    assert [(i.unit, i.repeat) for i in factor("MMMMMM*")] == [("M", 6), ("*", 1)]
    assert [(i.unit, i.repeat) for i in factor("M-M-*")] == [("M", 1), ("-", 1), ("M", 1), ("-", 1), ("*", 1)]


@pytest.mark.parametrize(
    "fields",
    [
        {"main": "MX"},
        {"segments": (Segment(0, 1),)},
        {"segments": (Segment(0, 1), Segment(2, 3))},
        {"bars": (1, 2)},
        {"bars": (1, -2, 3)},
        {"mtp": "*E"},
        {"mtp": "*E", "depths": 1, "mtp_bars": (1,)},
    ],
)
def test_an_inconsistent_picture_is_refused(fields: dict[str, object]) -> None:
    base: dict[str, object] = {"title": "t", "main": "M-*", "segments": (Segment(0, 3),)}
    with pytest.raises(ValueError):
        Picture(**{**base, **fields})  # type: ignore[arg-type]


def test_runs_collapse_only_above_the_threshold() -> None:
    small = patternc.parse("M-" * (COLLAPSE_ABOVE // 2))
    assert draw(picture_of(small, "small")).cells == COLLAPSE_ABOVE
    large = patternc.parse("M-" * (COLLAPSE_ABOVE // 2 + 1))
    drawing = draw(picture_of(large, "large"))
    assert (drawing.cells, drawing.layers) == (2, COLLAPSE_ABOVE + 2)
    root = svg_root(drawing.svg)
    assert texts(root, "repeat") == [f"×{COLLAPSE_ABOVE // 2 + 1}"]
    assert draw(picture_of(large, "large"), Collapse.NEVER).cells == COLLAPSE_ABOVE + 2
    assert draw(picture_of(small, "small"), Collapse.ALWAYS).cells == 2


def test_many_mtp_depths_are_drawn_once_when_collapsed() -> None:
    pattern = patternc.parse("M*-" + "/*E-M-M-M-M-M-M-M" * 6)
    root = svg_root(draw(picture_of(pattern, "mtp")).svg)
    assert len(cells(root, "mtp")) == 16 and {g.get("data-layers") for g in cells(root, "mtp")} == {"6"}
    assert "×6 depths" in texts(root, "stage-label")
    root = svg_root(draw(picture_of(pattern, "mtp"), Collapse.NEVER).svg)
    assert len(cells(root, "mtp")) == 96


def test_stages_are_marked_and_listed() -> None:
    pattern = patternc.parse("M-M-|M*-|E", dialect="megatron")
    root = svg_root(draw(picture_of(pattern, "x", bars=[1, 2, 3, 4, 5, 6, 7, 8])).svg)
    assert texts(root, "stage-label") == ["s0", "s1", "s2"]
    rows = [" ".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == "table-row"]
    assert rows == [
        "stage 0 layers 0-3 (4) 10",
        "stage 1 layers 4-6 (3) 18",
        "stage 2 layers 7-7 (1) 8",
    ]


def test_output_is_deterministic_across_processes(tmp_path: Path) -> None:
    """Byte-identical files for the same input: twice in this process, and in processes with other
    hash seeds (nothing may depend on set or dict iteration order)."""
    source = "(M-M-M-M*-){30} | M-M*-E / *E / *E"
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed{seed}.html"
        program = (
            "import sys; from typer.testing import CliRunner; from patternc.cli import app; "
            "r = CliRunner().invoke(app, sys.argv[1:]); sys.exit(r.exit_code)"
        )
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", program, "draw", "-o", str(out), "--bars", "state", "--", source],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(out.read_bytes())
    code, _ = run("draw", "-o", str(tmp_path / "here.html"), "--bars", "state", "--", source)
    assert code == 0
    assert outputs[0] == outputs[1] == (tmp_path / "here.html").read_bytes()


# -- bars ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bars", "key"), [("params", "params"), ("flops", "flops_prefill"), ("state", None)])
def test_bars_are_the_stats_figures(tmp_path: Path, bars: str, key: str | None) -> None:
    """Each cell's bar value is ``stats --json``'s per-layer row: the picture and the table agree."""
    config = str(HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16" / "config.json")
    out = tmp_path / "bars.svg"
    code, output = run("draw", config, "-o", str(out), "--bars", bars, "--seq-len", "1024")
    assert code == 0, output
    result = CliRunner().invoke(app, ["stats", config, "--json", "--seq-len", "1024"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["layers"]
    expected = [row[key] if key else row["kv_cache_bytes"] + row["state_bytes"] for row in rows]
    root = svg_root(out.read_text(encoding="utf-8"))
    drawn = {int(g.get("data-index", "-1")): int(g.get("data-value", "-1")) for g in cells(root, "main")}
    assert [drawn[i] for i in range(len(rows))] == expected
    assert len(set(expected)) > 1
    bars_drawn = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(bars_drawn) == sum(1 for v in expected if v > 0)


def test_a_config_is_drawn_with_its_path_and_family(tmp_path: Path) -> None:
    config = HUB / "Nemotron-H-8B-Base-8K" / "config.json"
    out = tmp_path / "h8b.html"
    code, output = run("draw", str(config), "-o", str(out))
    assert code == 0, output
    assert output == f"drew 52 layers into {out}\n"
    root = svg_root(out.read_text(encoding="utf-8"))
    assert texts(root, "title") == [str(config)]
    assert "config: model_type nemotron_h" in texts(root, "subtitle")
    flat = json.loads(config.read_text(encoding="utf-8"))["hybrid_override_pattern"]
    assert layer_counts(root, "main") == Counter(flat)


def test_set_and_like_size_the_bars_as_in_stats(tmp_path: Path) -> None:
    """``--set`` and ``--like`` size a bare pattern for the bars exactly as ``stats`` sizes it."""
    like = str(HUB / "Nemotron-H-8B-Base-8K")
    for options in (["--set", "hidden_size=128"], ["--like", like]):
        out = tmp_path / f"sized{len(list(tmp_path.iterdir()))}.svg"
        code, output = run("draw", "M-M*-", "-o", str(out), "--bars", "params", *options)
        assert code == 0, output
        result = CliRunner().invoke(app, ["stats", "M-M*-", "--json", *options])
        assert result.exit_code == 0, result.output
        expected = [row["params"] for row in json.loads(result.stdout)["layers"]]
        root = svg_root(out.read_text(encoding="utf-8"))
        assert [int(g.get("data-value", "-1")) for g in cells(root, "main")] == expected
        assert any(options[-1] in line for line in texts(root, "subtitle"))
    code, output = run("draw", like, "-o", str(tmp_path / "config.svg"), "--set", "hidden_size=3")
    assert code == 2 and "bare pattern SOURCE only" in output


def test_kinds_without_default_sizes_draw_without_bars(tmp_path: Path) -> None:
    """A picture needs no sizes: `G` draws; asking for bars of it is P601, as in `stats`."""
    code, output = run("draw", "M-G-", "-o", str(tmp_path / "g.svg"))
    assert code == 0, output
    assert layer_counts(svg_root((tmp_path / "g.svg").read_text(encoding="utf-8")), "main") == Counter("M-G-")
    code, output = run("draw", "M-G-", "-o", str(tmp_path / "g2.svg"), "--bars", "params")
    assert code == 1 and "P601" in output and not (tmp_path / "g2.svg").exists()


def test_a_bad_pattern_is_reported_and_nothing_written(tmp_path: Path) -> None:
    code, output = run("draw", "M-M*X-", "-o", str(tmp_path / "bad.svg"))
    assert code == 1 and "error[P001]" in output and "nothing written" in output
    assert list(tmp_path.iterdir()) == []


# -- escaping -----------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_any_title_text_gives_well_formed_xml(title: str) -> None:
    """Markup, quotes, control characters, lone surrogates (undecodable argv bytes): still XML."""
    svg = render_svg(picture_of(patternc.parse("M*"), title))
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    html_page = render_html(picture_of(patternc.parse("M*"), title))
    html_page.encode("utf-8")


def test_markup_in_the_source_is_text(tmp_path: Path) -> None:
    source = 'M-M*- # <script>alert("x")</script> & \u202e\x1b'
    out = tmp_path / "hostile.html"
    code, output = run("draw", "-o", str(out), "--", source)
    assert code == 0, output
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "\x1b" not in page and "\u202e" not in page
    assert texts(svg_root(page), "title") == ['M-M*- # <script>alert("x")</script> & \\u202e\\x1b']


# -- writing ------------------------------------------------------------------------------------------


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    out = tmp_path / "picture.svg"
    out.write_text("mine\n", encoding="utf-8")
    code, output = run("draw", "M-M*-", "-o", str(out))
    assert code == 1 and "error[P620]" in output and "--force" in output
    assert out.read_text(encoding="utf-8") == "mine\n"
    code, output = run("draw", "M-M*-", "-o", str(out), "--force")
    assert code == 0, output
    assert out.read_text(encoding="utf-8").startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["picture.svg"]  # no temporary file left


def test_a_file_that_appears_while_drawing_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The no-clobber rule holds at the moment of writing, not only at the first check."""
    out = tmp_path / "late.svg"
    real_link = os.link

    def racing_link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        Path(dst).write_text("someone else's\n", encoding="utf-8")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(PublishError) as caught:
        publish_file(out, b"<svg/>", force=False)
    assert caught.value.exists
    assert out.read_text(encoding="utf-8") == "someone else's\n"
    assert [p.name for p in tmp_path.iterdir()] == ["late.svg"]


def test_the_file_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        publish_file(tmp_path / "p.svg", b"<svg/>")
    finally:
        os.umask(old)
    assert (tmp_path / "p.svg").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("target", "reason"),
    [("missing/p.svg", "the directory `{tmp}/missing` does not exist"), ("adir.svg", "is a directory")],
)
def test_unwritable_places_are_p621(tmp_path: Path, target: str, reason: str) -> None:
    (tmp_path / "adir.svg").mkdir()
    code, output = run("draw", "M-M*-", "-o", str(tmp_path / target), "--force")
    assert code == 1 and "error[P621]" in output, output
    assert reason.format(tmp=tmp_path) in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.svg"]


def test_the_format_comes_from_the_suffix_or_format(tmp_path: Path) -> None:
    code, output = run("draw", "M-M*-", "-o", str(tmp_path / "p.png"))
    assert code == 2 and "error[P622]" in output and "--format" in output  # the command line is wrong
    assert list(tmp_path.iterdir()) == []
    code, output = run("draw", "M-M*-", "-o", str(tmp_path / "p.png"), "--format", "html")
    assert code == 0, output
    assert (tmp_path / "p.png").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code, output = run("draw", "M-M*-", "-o", str(tmp_path / "P.HTM"))
    assert code == 0 and (tmp_path / "P.HTM").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_dash_prints_the_picture(tmp_path: Path) -> None:
    code, output = run("draw", "M-M*-", "-o", "-")
    assert code == 0
    assert output.startswith("<?xml") and output.endswith("</svg>\n")
    code, output = run("draw", "M-M*-", "-o", "-", "--format", Format.HTML.value)
    assert code == 0 and output.startswith("<!DOCTYPE html>")


def test_draw_imports_nothing_heavy() -> None:
    program = (
        "import sys, tempfile, os; from typer.testing import CliRunner; from patternc.cli import app\n"
        "d = tempfile.mkdtemp()\n"
        "r = CliRunner().invoke(app, ['draw', 'M-M*-E', '-o', os.path.join(d, 'p.svg'), '--bars', 'flops'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'networkx')))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
