"""``python -m patternc``."""

from patternc.cli import main

main()
