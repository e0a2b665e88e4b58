"""Sub-commands that live outside ``patternc/cli.py``, one module each.

Each module defines ``register(app)`` and must stay cheap to import: heavy dependencies (torch,
transformers, networkx, safetensors) are imported inside the command functions, so that
``patternc check`` keeps its cold start.  ``register_all`` registers them in help order.  The
commands take what they share from ``patternc.cli_common`` and ``patternc.exit_codes``, never from
``patternc.cli`` (which imports this package).
"""

from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    """Add every command of this package to ``app``, in the order ``--help`` lists them."""
    from patternc.commands import build, draw, gen, run, split, stats

    for module in (build, run, stats, split, gen, draw):
        module.register(app)
