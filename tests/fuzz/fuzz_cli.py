"""Coverage-guided fuzzing of the command line: argv and stdin (docs/reliability.md).

    .venv/bin/python tests/fuzz/fuzz_cli.py -runs=20000 -max_total_time=280 -timeout=20 -rss_limit_mb=3072

Each input is an argv for one sub-command (``check``, ``fmt``, ``convert``, ``explain``, ``schema``,
``backends``, ``stats``, ``split``, ``gen``, and 1 in 16 a ``build`` into a scratch directory),
drawn from the real option names and hostile values (huge, negative, NaN, Unicode, paths to a
hostile config), plus the bytes on stdin.  The exit code must be 0, 1 or 2: anything else (the
101 of an internal error, an exception escaping click) is a crash.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["patternc"]):
    from patternc.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _seeds import PATTERN_ALPHABET, tally

SCRATCH = Path(tempfile.mkdtemp(prefix="patternc-fuzz-cli-"))
CONFIG = SCRATCH / "config.json"
OPTIONS = {
    "check": [
        "-d",
        "--json",
        "--max-layers",
        "--max-chars",
        "--max-diagnostics",
        "-t",
        "--targets",
        "--pp",
        "--vpp",
        "--color",
    ],
    "fmt": ["-d", "--max-layers"],
    "convert": ["--to", "-d", "--from-list"],
    "explain": [],
    "schema": [],
    "backends": [],
    "stats": ["--seq-len", "--batch", "--dtype", "--json", "-d"],
    "split": ["--pp", "--vpp", "--cost", "--seq-len", "-d", "--as-written"],
    "gen": ["--layers", "--attention", "--mlp", "--moe", "--megatron-compatible"],
    "build": ["-t", "--set", "-d", "--max-shard-size", "--pp", "--vpp", "--force"],
}
VALUES = [
    "0",
    "1",
    "2",
    "-1",
    "3",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "99999999999999999999999",
    "hf",
    "megatron",
    "patternc",
    "vllm",
    "auto",
    "torch",
    "megatron-bridge",
    "flat",
    "fmt",
    "layers_block_type",
    "P001",
    "empty-mtp-part",
    "ir",
    "check-output",
    "bf16",
    "flops",
    "params",
    "always",
    "never",
    "hidden_size=0",
    "vocab_size=2147483647",
    "hidden_size=nan",
    "x=",
    "=",
    "2GB",
    "0B",
    "-",
    "",
    "\x00",
    "config.json",
    str(CONFIG),
    str(SCRATCH),
    "/nonexistent/x.json",
]
COUNTS: dict[str, int] = {}


def _token(fdp: atheris.FuzzedDataProvider) -> str:
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return fdp.PickValueInList(VALUES)
    if kind == 1:
        raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
        return "".join(PATTERN_ALPHABET[b % len(PATTERN_ALPHABET)] for b in raw)
    if kind == 2:
        return fdp.ConsumeUnicodeNoSurrogates(24).replace("\x00", "")
    return str(fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 12)))


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    command = fdp.PickValueInList(sorted(OPTIONS))
    if command == "build" and fdp.ConsumeIntInRange(0, 15):
        command = "check"
    argv = [command]
    if command not in ("backends", "gen"):
        argv.append(_token(fdp))
    for _ in range(fdp.ConsumeIntInRange(0, 5)):
        if OPTIONS[command] and fdp.ConsumeIntInRange(0, 4):
            argv.append(fdp.PickValueInList(OPTIONS[command]))
        argv.append(_token(fdp))
    if command == "build":
        argv += ["-o", str(SCRATCH / "out"), "--force"]
    if fdp.ConsumeIntInRange(0, 5) == 0:
        CONFIG.write_bytes(fdp.ConsumeBytes(512))
    stdin = io.TextIOWrapper(io.BytesIO(fdp.ConsumeBytes(1024)), encoding="utf-8")
    code: object = 0
    saved = sys.stdin
    sys.stdin = stdin
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            app(argv, prog_name="patternc", standalone_mode=True)
    except SystemExit as exit_:
        code = exit_.code if exit_.code is not None else 0
    finally:
        sys.stdin = saved
    assert code in (0, 1, 2), f"exit {code!r} for {argv!r}"
    tally("cli", COUNTS, f"{command}-exit{code}")


def main() -> None:
    CONFIG.write_text('{"model_type": "nemotron_h", "hybrid_override_pattern": "M-M*-"}', encoding="utf-8")
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
