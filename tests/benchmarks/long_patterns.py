"""Reading and formatting patterns at the text limit (a script, not a test).

    python tests/benchmarks/long_patterns.py

For inputs at the text limit (the default ``--max-chars``, 100,000 characters): a periodic pattern, a
"staircase" ``M-MM-MMM-…`` whose repeats are far apart, random symbols, and ``M/M/…`` (one
multi-token-prediction part per two characters, the slowest shape for the parser), it prints the time
``analyze`` takes (lark's parse and the passes: the reference, what ``check`` pays for the same text)
and the time ``fmt`` takes on the parsed pattern, with their ratio, best of three in this run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import patternc
from patternc.limits import DEFAULT_LIMITS


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    size = DEFAULT_LIMITS.max_chars
    rng = random.Random(1)
    inputs = {
        "periodic": ("M-M*-" * size)[:size],
        "staircase": "".join("M" * i + "-" for i in range(1, 446))[:size],
        "random": "".join(rng.choice("M-*") for _ in range(size)),
        "slashes": ("M/" * size)[: size - 1],
    }
    for name, text in inputs.items():
        t_analyze = best(lambda text=text: patternc.analyze(text))
        pattern = patternc.analyze(text).pattern
        if pattern is None:  # an input with errors has no IR to format
            print(f"{name:10s} {len(text):,} chars: analyze {t_analyze:6.2f} s  (no pattern to format)", flush=True)
            continue
        t_fmt = best(lambda pattern=pattern: patternc.fmt(pattern))
        assert patternc.parse(patternc.fmt(pattern)) == pattern
        print(
            f"{name:10s} {len(text):,} chars: analyze {t_analyze:6.2f} s  fmt {t_fmt:6.2f} s  "
            f"fmt/analyze {t_fmt / t_analyze:5.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
