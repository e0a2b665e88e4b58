"""The process exit codes every ``patternc`` command uses (``docs/cli.md`` states the rule).

A module of its own, with no imports, so that ``cli.py``, ``cli_common.py`` and each module of
``patternc/commands/`` take them from below instead of from ``patternc.cli`` (which imports the
commands: a cycle).

- ``EXIT_OK`` (0): no error; warnings and notes allowed.
- ``EXIT_ERRORS`` (1): the input was read and has errors, or a question asked of it got "no"
  (``check --target``).
- ``EXIT_USAGE`` (2): the command line itself is wrong (an unknown option, choice or name, a value
  of the wrong form); patternc did not start reading the input.
- ``EXIT_INTERNAL`` (101): an internal error, a bug in patternc.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 101
