"""Golden outputs of every command on a fixed corpus, stored before the one-home redesign (issue 13).

``python -m tests.golden.record --write`` re-records them; ``tests/cli/test_golden.py`` fails on any
byte of difference.  Re-record only for a deliberate behaviour change, and say why in the commit.
"""
