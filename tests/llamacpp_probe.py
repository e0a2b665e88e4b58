"""Run by tests/backends/transformers/test_llamacpp.py with the converter's Python.

It prints the transformers version the converter would use.
"""

import torch  # noqa: F401  (the converter needs it)
import transformers

print(transformers.__version__)
