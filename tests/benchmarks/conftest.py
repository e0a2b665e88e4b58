"""The benchmarks are scripts (``python tests/benchmarks/check_speed.py``), never pytest tests."""

collect_ignore_glob = ["*.py"]
