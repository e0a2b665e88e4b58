"""Run by tests/test_llamacpp.py with the converter's Python: prints the transformers version it would use."""

import torch  # noqa: F401  (the converter needs it)
import transformers

print(transformers.__version__)
