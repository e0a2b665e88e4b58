"""Coverage-guided fuzzing of the pattern front end, every dialect (docs/reliability.md).

    .venv/bin/python tests/fuzz/fuzz_pattern.py -runs=50000 -max_total_time=280 -timeout=10 -rss_limit_mb=2048

Each input picks a dialect and either raw Unicode or text over the patterns' alphabet; ``analyze``
must return an IR or diagnostics (never raise), and a valid IR must survive ``fmt`` and the
Megatron spelling round trip unchanged.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["patternc"]):
    from patternc.api import analyze, parse
    from patternc.convert import to_megatron
    from patternc.fmt import fmt
    from patternc.limits import Limits

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _seeds import PATTERN_ALPHABET, tally

DIALECTS = ("hf", "megatron", "patternc")
LIMITS = Limits(max_layers=20_000, max_chars=20_000)
COUNTS: dict[str, int] = {}


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    dialect = DIALECTS[fdp.ConsumeIntInRange(0, 2)]
    if fdp.ConsumeBool():
        text = fdp.ConsumeUnicodeNoSurrogates(4096)
    else:
        text = "".join(PATTERN_ALPHABET[b % len(PATTERN_ALPHABET)] for b in fdp.ConsumeBytes(4096))
    analysis = analyze(text, dialect, limits=LIMITS)
    if analysis.pattern is None:
        assert analysis.diagnostics, "no IR and no diagnostic"
        tally("pattern", COUNTS, f"{dialect}-rejected")
        return
    tally("pattern", COUNTS, f"{dialect}-accepted")
    pattern = analysis.pattern
    again = parse(fmt(pattern), "patternc", limits=LIMITS)
    assert again.flat == pattern.flat, (text, fmt(pattern))
    assert parse(to_megatron(pattern), "megatron", limits=LIMITS).flat == pattern.flat


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
