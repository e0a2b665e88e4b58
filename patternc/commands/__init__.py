"""Sub-commands that live outside ``patternc/cli.py``, one module each.

Each module defines ``register(app)`` and must stay cheap to import: heavy dependencies (torch,
transformers, networkx, safetensors) are imported inside the command functions, so that
``patternc check`` keeps its cold start.  ``COMMAND_MODULES`` lists them in help order.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

import typer

COMMAND_MODULES: tuple[str, ...] = ("build", "run", "stats", "split", "gen", "draw")


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        module_name = f"{__name__}.{name}"
        if find_spec(module_name) is None:  # a command whose module has not landed yet
            continue
        import_module(module_name).register(app)
