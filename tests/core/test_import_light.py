"""``import patternc`` and ``patternc check`` stay light: no torch, transformers or networkx."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "networkx")

PROGRAM = """
import sys
import patternc, patternc.cli
from typer.testing import CliRunner

heavy = {heavy!r}
assert not [m for m in heavy if m in sys.modules], "imported by import patternc"
patternc.analyze("M-M*X-")
patternc.fmt(patternc.parse("(M-){{4}}M*-/*E"))
for args in (["check", "M-M*-"], ["check", "--json", "MEME/*E/*E"], ["check", "M-M*X-"], ["fmt", "M-M-"],
             ["convert", "--to", "layers_block_type", "M*-E"], ["explain", "P001"], ["schema", "ir"]):
    result = CliRunner().invoke(patternc.cli.app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print("LOADED:" + ",".join(loaded))
"""


def test_check_path_imports_nothing_heavy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "LOADED:", done.stdout
