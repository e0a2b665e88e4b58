"""The fuzz harnesses are scripts run by hand (docs/reliability.md), not pytest modules."""

collect_ignore_glob = ["*.py"]
