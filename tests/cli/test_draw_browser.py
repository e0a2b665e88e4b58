"""``patternc draw``'s pictures open in a real browser: Chromium, headless, driven over the DevTools protocol.

Each test writes a picture through the CLI, opens it in Chromium and checks, in the browser's
own DOM and layout: no console error, no uncaught exception, no XML parse error; the cells'
``data-layers`` add up to every layer of the model (collapsed runs counted ``×k``), kind by
kind; no two cells overlap and every cell lies inside the picture (readable, not a smear); and
it takes a full-page screenshot (kept in ``$PATTERNC_SCREENSHOTS`` when that names a directory,
for a person to look at).

The browser is Debian's ``chromium`` (``.ci/run`` installs it), or the one ``$PATTERNC_CHROMIUM``
names.  It is driven with ``--remote-debugging-pipe`` (JSON messages on file descriptors 3
and 4, each ended by a NUL byte), so the test needs nothing beyond the standard library: no
Playwright, no websocket client.  Without a browser the module is skipped.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import random
import select
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patternc.cli import app


def _chromium() -> str | None:
    named = os.environ.get("PATTERNC_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
TIMEOUT = 60.0


class BrowserError(RuntimeError):
    pass


class Chromium:
    """A headless Chromium and a blocking DevTools-protocol client over its pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def fds() -> None:  # in the child: the protocol's fixed descriptors 3 (in) and 4 (out)
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=fds,  # dup2 onto the fixed numbers must happen in the child
            close_fds=False,  # os.pipe's descriptors are not inheritable; dup2 makes 3 and 4 so
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.out = to_browser_w
        self.inp = from_browser_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for Chromium")
            ready, _, _ = select.select([self.inp], [], [], left)
            if ready:
                chunk = os.read(self.inp, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed the pipe")
                self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return
            seen = len(self.events)
            self.events.append(self._read_message(deadline))

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.out)
        os.close(self.inp)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    assert CHROMIUM is not None
    chromium = Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        chromium.send("Browser.getVersion")
    except (BrowserError, OSError) as error:  # installed but broken: a failure, not a skip (CI must not pass silently)
        chromium.close()
        pytest.fail(f"{CHROMIUM} did not answer on the DevTools pipe: {error}")
    yield chromium
    chromium.close()


MEASURE = """(() => {
  const root = document.documentElement;
  const svg = root.tagName.toLowerCase() === 'svg' ? root : document.querySelector('svg');
  const box = svg.getBoundingClientRect();
  const cells = [...document.querySelectorAll('g.cell')].map(g => {
    const r = g.querySelector('rect:not(.bar)').getBoundingClientRect();
    return {part: g.getAttribute('data-part'), symbol: g.getAttribute('data-symbol'),
            layers: Number(g.getAttribute('data-layers')), x: r.x, y: r.y, w: r.width, h: r.height};
  });
  return {
    parseErrors: document.getElementsByTagName('parsererror').length,
    scripts: document.getElementsByTagName('script').length,
    svgLayers: Number(svg.getAttribute('data-layers')),
    width: Math.ceil(box.width), height: Math.ceil(box.height), left: box.x, top: box.y,
    title: (document.querySelector('text.title') || {}).textContent,
    repeats: [...document.querySelectorAll('text.repeat')].map(t => t.textContent),
    groups: [...document.querySelectorAll('rect.group')].map(r => r.getAttribute('data-repeat')),
    cells,
  };
})()"""


def open_page(browser: Chromium, path: Path, shots: Path) -> dict[str, Any]:
    """Load ``path`` in a new tab; the page's measurements, its problems, and a screenshot."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    start = len(browser.events)
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", session)
        page = browser.send("Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session=session)[
            "result"
        ]["value"]
        clip = {"x": 0, "y": 0, "width": page["width"], "height": page["height"], "scale": 1}
        shot = browser.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
            session=session,
        )
        png = base64.b64decode(shot["data"])
        (shots / f"{path.name}.png").write_bytes(png)
        keep = os.environ.get("PATTERNC_SCREENSHOTS")
        if keep and Path(keep).is_dir():
            (Path(keep) / f"{path.name}.png").write_bytes(png)
        page["png"] = png
        problems = []
        for event in browser.events[start:]:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                problems.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                problems.append(str(params.get("args")))
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                problems.append(params["entry"].get("text", ""))
        page["problems"] = problems
        return page
    finally:
        browser.send("Target.closeTarget", {"targetId": target})


def draw(tmp_path: Path, name: str, source: str, *options: str) -> Path:
    out = tmp_path / name
    result = CliRunner().invoke(app, ["draw", "-o", str(out), *options, "--", source])
    assert result.exit_code == 0, result.output
    return out


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def check_page(page: dict[str, Any], main: str, mtp: str = "", depths: int = 0) -> None:
    """Every layer drawn (kind by kind, runs counted), nothing overlapping, nothing outside, no error."""
    assert page["problems"] == []
    assert page["parseErrors"] == 0
    assert page["scripts"] == 0
    cells = page["cells"]
    drawn_main: Counter[str] = Counter()
    drawn_mtp: Counter[str] = Counter()
    for cell in cells:
        (drawn_main if cell["part"] == "main" else drawn_mtp)[cell["symbol"]] += cell["layers"]
    assert drawn_main == Counter(main)
    assert drawn_mtp == Counter({s: n * depths for s, n in Counter(mtp).items()})
    assert page["svgLayers"] == len(main) + len(mtp) * depths
    assert sorted(int(r) for r in page["groups"]) == sorted(int(t[1:].replace(",", "")) for t in page["repeats"])
    for cell in cells:  # inside the picture, at a readable size
        assert cell["w"] >= 12 and cell["h"] >= 16, cell
        assert page["left"] <= cell["x"] and cell["x"] + cell["w"] <= page["left"] + page["width"], cell
        assert page["top"] <= cell["y"] and cell["y"] + cell["h"] <= page["top"] + page["height"], cell
    rows: dict[float, list[tuple[float, float]]] = {}
    for cell in cells:
        rows.setdefault(cell["y"], []).append((cell["x"], cell["x"] + cell["w"]))
    for spans in rows.values():  # cells in one row never overlap
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    tops = sorted(rows)
    assert all(b - a >= 20 for a, b in itertools.pairwise(tops)), "rows overlap"
    assert _png_size(page["png"]) == (page["width"], page["height"])


NEMOTRON_100 = "(M-M-M-M*-){5} M-M-M*-M- | (M-M-M-M*-){5} M-M-M*-M- / *E / *E"


@pytest.mark.parametrize("suffix", ["svg", "html"])
def test_100_layers_with_stages_mtp_and_bars(browser: Chromium, tmp_path: Path, suffix: str) -> None:
    out = draw(tmp_path, f"nemotron-100.{suffix}", NEMOTRON_100, "--bars", "params")
    page = open_page(browser, out, tmp_path)
    main = ("M-M-M-M*-" * 5 + "M-M-M*-M-") * 2
    assert len(main) == 108
    check_page(page, main, "*E", 2)
    assert len(page["cells"]) == 108 + 4  # every layer its own cell below the collapse threshold


def test_10000_layers_collapse_to_a_readable_picture(browser: Chromium, tmp_path: Path) -> None:
    generated = CliRunner().invoke(app, ["gen", "--layers", "10000", "--attention", "0.08", "--mlp", "0.5"])
    assert generated.exit_code == 0, generated.output
    pattern = generated.output.strip()
    out = draw(tmp_path, "gen-10000.html", pattern, "--bars", "flops")
    page = open_page(browser, out, tmp_path)
    check_page(page, pattern)
    assert len(page["cells"]) <= 100  # a periodic stack collapses to its repeated block
    assert page["height"] < 1000


def test_10000_random_layers_every_cell_drawn(browser: Chromium, tmp_path: Path) -> None:
    rng = random.Random(12)
    pattern = "".join(rng.choice("M*-E") for _ in range(10_000))
    out = draw(tmp_path, "random-10000.svg", pattern)
    page = open_page(browser, out, tmp_path)
    check_page(page, pattern)
    assert len(page["cells"]) > 9000  # little repeats: nearly every layer is its own cell


def test_input_text_is_shown_not_run(browser: Chromium, tmp_path: Path) -> None:
    """A pattern's comment holding markup is text in the picture: no script element, no parse error."""
    source = "M-M*- # </text><script>alert(1)</script> & \u202e \x01"
    out = draw(tmp_path, "hostile.html", source)
    page = open_page(browser, out, tmp_path)
    check_page(page, "M-M*-")
    assert "<script>alert(1)</script> &" in page["title"]
    assert "\\x01" in page["title"] and "\\u202e" in page["title"]
    svg_out = draw(tmp_path, "hostile.svg", source)
    check_page(open_page(browser, svg_out, tmp_path), "M-M*-")
