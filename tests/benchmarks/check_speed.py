"""Speed of ``patternc check``: cold start, what it imports, and growth with the layer count.

Run it with the project's interpreter (not collected by pytest)::

    .venv/bin/python tests/benchmarks/check_speed.py [--runs 15] [--ref-runs 5]

Figures, each printed with PASS or FAIL; the exit status is 1 when any target is missed:

(a) cold ``patternc check`` of the real 52-layer Nemotron-H-8B pattern: median wall time of fresh
    runs of the installed console script (target <= 0.35 s);
(b) the reference, measured in the same run: a fresh interpreter that imports transformers and
    builds ``NemotronHConfig(hybrid_override_pattern=..., num_hidden_layers=52)``; the ratio (a)/(b)
    (target: (a) faster than (b));
(c) the modules ``python -X importtime -m patternc check ...`` imports: none of torch,
    transformers, networkx;
(d) ``check`` of flat patterns of 1k, 10k and 100k layers (``M-`` repeated, and the patternc
    repetition form ``(M-){n}``): in-process after a warm-up, and cold through the console script
    with the pattern on stdin (target: 100k layers <= 1 s cold, and t(100k)/t(10k) <= 15, i.e.
    linear growth; quadratic growth would give about 100).
(e) cold ``python -m patternc check`` of the same pattern and of the Nemotron-H-8B hub config.json
    (the config path: family detection, the reader, the canonical map), this checkout against an older commit
    (``--baseline REF``, default the last commit before the one-home redesign of issue 13), both
    from a git worktree on ``PYTHONPATH`` with this interpreter, runs interleaved so that machine
    load hits both alike (target: this checkout's median at or under the baseline's, within 5 %
    measurement noise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

NEMOTRON_H_8B = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"
COLD_CHECK_TARGET_S = 0.35
CLI_100K_TARGET_S = 1.0
GROWTH_RATIO_TARGET = 15.0
FORBIDDEN_IMPORTS = ("torch", "transformers", "networkx")
SIZES = (1_000, 10_000, 100_000)
BASELINE_REF = "4bd8913"
"""The commit that stored the golden outputs, before the one-home redesign (issue 13) began."""
BASELINE_NOISE = 1.05
ROOT = Path(__file__).resolve().parents[2]

PATTERNC = Path(sys.executable).with_name("patternc")

USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""The environment every timed process runs in.  This machine sets ``PYTHONDONTWRITEBYTECODE=1``,
which makes every fresh process compile patternc (an editable install) from source: ~0.5 s that a
user's install does not pay (``pip install`` compiles site-packages; an editable checkout writes its
``__pycache__`` on first import).  The warm-up run of each command writes the bytecode."""

failures: list[str] = []


def verdict(name: str, ok: bool, detail: str) -> None:
    print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    if not ok:
        failures.append(name)


def wall(argv: Sequence[str], stdin: bytes | None = None, expect_ok: bool = True) -> float:
    """Wall time of one fresh process, checked to have succeeded."""
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False, env=USER_ENV)
    elapsed = time.perf_counter() - start
    if expect_ok and (done.returncode != 0 or (argv[:1] == [str(PATTERNC)] and b"ok: 0 errors" not in done.stdout)):
        sys.exit(
            f"command failed ({done.returncode}): {' '.join(argv)[:200]}\n"
            f"{done.stdout.decode()[-2000:]}{done.stderr.decode()[-2000:]}"
        )
    return elapsed


def median_wall(argv: Sequence[str], runs: int, stdin: bytes | None = None) -> tuple[float, list[float]]:
    wall(argv, stdin)  # discarded: fills the OS file cache and writes bytecode, so "cold" means a fresh process only
    times = [wall(argv, stdin) for _ in range(runs)]
    return statistics.median(times), times


def fmt_times(times: Sequence[float]) -> str:
    return f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs"


def figure_a_b(runs: int, ref_runs: int) -> None:
    print(f"(a) cold `patternc check` of the 52-layer Nemotron-H-8B pattern ({PATTERNC})")
    cold, times = median_wall([str(PATTERNC), "check", NEMOTRON_H_8B], runs)
    print(f"    median {cold:.3f} s ({fmt_times(times)})")
    verdict("cold check <= 0.35 s", cold <= COLD_CHECK_TARGET_S, f"{cold:.3f} s")

    print("(b) reference: fresh interpreter, `import transformers` + NemotronHConfig(...)")
    code = (
        "from transformers import NemotronHConfig\n"
        f"c = NemotronHConfig(hybrid_override_pattern={NEMOTRON_H_8B!r}, num_hidden_layers=52)\n"
        "assert len(c.layers_block_type) == 52\n"
    )
    try:
        reference, ref_times = median_wall([sys.executable, "-c", code], ref_runs)
    except SystemExit as error:
        print(f"    skipped: transformers is not usable here ({str(error).splitlines()[-1][:120]})")
        return
    print(f"    median {reference:.3f} s ({fmt_times(ref_times)})")
    print(
        f"    ratio patternc / transformers = {cold / reference:.3f} (transformers is {reference / cold:.1f}x slower)"
    )
    verdict("cold check faster than the transformers reference", cold < reference, f"{cold:.3f} s vs {reference:.3f} s")


def imported_modules(argv: Sequence[str], stdin: bytes | None = None) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) for every import ``-X importtime`` reports."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], input=stdin, capture_output=True, check=False)
    rows = []
    for line in done.stderr.decode().splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        rows.append((name.strip(), int(self_us), int(cumulative_us)))
    if done.returncode != 0 or not rows:
        sys.exit(f"importtime run failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return rows


def figure_c() -> None:
    print("(c) modules imported by `python -X importtime -m patternc check <Nemotron-H-8B>`")
    rows = imported_modules(["-m", "patternc", "check", NEMOTRON_H_8B])
    names = {name for name, _, _ in rows}
    tops = sorted({name.split(".")[0] for name in names} - set(sys.stdlib_module_names))
    print(
        f"    {len(names)} modules; outside the standard library: {', '.join(t for t in tops if not t.startswith('_'))}"
    )
    heaviest = sorted((row for row in rows if "." not in row[0]), key=lambda row: -row[2])[:8]
    print("    heaviest top-level imports (cumulative): " + ", ".join(f"{n} {c / 1000:.0f} ms" for n, _, c in heaviest))
    for forbidden in FORBIDDEN_IMPORTS:
        hits = sorted(n for n in names if n == forbidden or n.startswith(forbidden + "."))
        verdict(f"check does not import {forbidden}", not hits, ", ".join(hits[:5]) or "not imported")


def patterns(n: int) -> dict[str, str]:
    return {"flat": "M-" * (n // 2), "repeat": f"(M-){{{n // 2}}}"}


def best_of(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def figure_d(cold_runs: int) -> None:
    from typer.testing import CliRunner

    from patternc.api import analyze
    from patternc.cli import app
    from patternc.summary import render_summary

    runner = CliRunner()

    def check_in_process(text: str) -> None:
        result = runner.invoke(app, ["check", "-", "--color", "never"], input=text)
        if result.exit_code != 0 or "ok: 0 errors" not in result.output:
            sys.exit(f"in-process check failed ({result.exit_code}): {result.output[-2000:]}")

    print("(d) `patternc check` on long flat patterns")
    print("    in-process (typer CliRunner, after one warm-up), median; analyze/render split alongside")
    in_process: dict[tuple[str, int], float] = {}
    for form in ("flat", "repeat"):
        for n in SIZES:
            text = patterns(n)[form]
            check_in_process(text)  # warm-up
            runs = 5 if n < 100_000 else 3
            total = best_of(lambda text=text: check_in_process(text), runs)
            analysis = analyze(text)
            front = best_of(lambda text=text: analyze(text), runs)
            render = best_of(lambda analysis=analysis: render_summary(analysis), runs)
            in_process[form, n] = total
            print(
                f"    {form:<6} {n:>7,} layers ({len(text):>7,} chars): check {total * 1000:8.1f} ms"
                f"  (analyze {front * 1000:7.1f} ms, render_summary {render * 1000:6.1f} ms)"
            )
        ratio = in_process[form, 100_000] / in_process[form, 10_000]
        verdict(
            f"in-process growth t(100k)/t(10k), {form}",
            ratio <= GROWTH_RATIO_TARGET,
            f"{ratio:.1f} (linear: about 10 or less; quadratic: about 100)",
        )

    print(f"    cold (fresh `patternc check -`, pattern on stdin), median of {cold_runs}")
    cold: dict[tuple[str, int], float] = {}
    for form in ("flat", "repeat"):
        for n in SIZES:
            text = patterns(n)[form]
            median, times = median_wall([str(PATTERNC), "check", "-"], cold_runs, stdin=text.encode())
            cold[form, n] = median
            print(f"    {form:<6} {n:>7,} layers: {median:.3f} s ({fmt_times(times)})")
        verdict(
            f"cold CLI, 100k layers, {form} <= 1 s",
            cold[form, 100_000] <= CLI_100K_TARGET_S,
            f"{cold[form, 100_000]:.3f} s",
        )
        print(
            f"    cold ratio t(100k)/t(10k), {form}: {cold[form, 100_000] / cold[form, 10_000]:.2f} (startup included)"
        )


HUB_CONFIG = "tests/fixtures/hub/Nemotron-H-8B-Base-8K/config.json"
"""A released config present in every compared commit (figure (e)'s config input)."""


def _worktree_check(tree: Path, source: str) -> list[str]:
    """The argv of a cold ``python -m patternc check SOURCE`` that imports patternc from ``tree``."""
    return [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(tree)!r}); sys.argv[0] = 'patternc'; "
        "from patternc.cli import main; main()",
        "check",
        source,
    ]


def figure_e(ref: str, runs: int) -> None:
    print(f"(e) cold check, this checkout against {ref} (git worktrees, interleaved runs)")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"now": Path(tmp) / "now", "baseline": Path(tmp) / "baseline"}
        for name, rev in (("now", "HEAD"), ("baseline", ref)):
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(trees[name]), rev],
                check=True,
                capture_output=True,
            )
        if subprocess.run(
            ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "patternc"], check=False
        ).returncode:
            print("    note: patternc/ has uncommitted changes; 'now' measures HEAD")
        inputs = {"pattern": lambda tree: NEMOTRON_H_8B, "config": lambda tree: str(tree / HUB_CONFIG)}
        times: dict[tuple[str, str], list[float]] = {}
        try:
            for what, source in inputs.items():
                argv = {name: _worktree_check(tree, source(tree)) for name, tree in trees.items()}
                for name in argv:
                    wall(argv[name])  # warm the file cache, write the bytecode
                for _ in range(runs):
                    for name in ("baseline", "now"):
                        times.setdefault((what, name), []).append(wall(argv[name]))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    for what in inputs:
        now, base = statistics.median(times[what, "now"]), statistics.median(times[what, "baseline"])
        print(f"    {what}: now      median {now:.3f} s ({fmt_times(times[what, 'now'])})")
        print(f"    {what}: baseline median {base:.3f} s ({fmt_times(times[what, 'baseline'])})")
        print(f"    {what}: ratio now / baseline = {now / base:.3f}")
        verdict(
            f"cold check of a {what} at or under {ref}'s", now <= base * BASELINE_NOISE, f"{now:.3f} s vs {base:.3f} s"
        )


def load_note() -> str:
    """The load average: medians of wall times are only meaningful on an otherwise idle machine."""
    load = os.getloadavg()[0]
    busy = load > 0.5 * (os.cpu_count() or 1)
    return f"load average {load:.2f}" + (" (busy machine: wall times are inflated; rerun when idle)" if busy else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh runs for figure (a)")
    parser.add_argument("--ref-runs", type=int, default=5, help="fresh runs for the transformers reference (b)")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh runs per size in figure (d)")
    parser.add_argument("--baseline", default=BASELINE_REF, help="the commit figure (e) compares against")
    args = parser.parse_args()
    if not PATTERNC.exists():
        print(f"no console script at {PATTERNC}: install the project (pip install -e .) into this interpreter")
        return 2
    print(f"python {sys.version.split()[0]} at {sys.executable}; {os.cpu_count()} CPUs, {load_note()}")
    figure_a_b(args.runs, args.ref_runs)
    figure_c()
    figure_d(args.cold_runs)
    figure_e(args.baseline, args.runs)
    print(f"\nafter the run: {load_note()}")
    print(f"{'FAIL: ' + ', '.join(failures) if failures else 'PASS: every target met'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
