"""Coverage-guided fuzzing of checkpoint reading: safetensors headers and index files (docs/reliability.md).

    .venv/bin/python tests/fuzz/fuzz_checkpoint.py -runs=20000 -max_total_time=280 -timeout=10 -rss_limit_mb=2048

Each input writes a small checkpoint directory: one or two ``.safetensors`` files whose header is
built from the input (lying lengths, offsets, dtypes and shapes, duplicate names across shards,
truncated data), and sometimes a ``model.safetensors.index.json`` whose ``weight_map`` names
shards inside, outside (``../``, absolute paths, links leading out) or nowhere.  Both readers —
``patternc build --weights``' ``open_checkpoint`` and the torch backend's ``read_safetensors`` —
must return tensors or raise their diagnostic (``CheckpointError`` / ``PatternError``), never
anything else, never read outside the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["patternc_transformers", "patternc_torch", "patternc_checkpoint"]):
    from patternc_checkpoint import CheckpointError, open_checkpoint
    from patternc_torch.weights import read_safetensors

from patternc.diagnostics import PatternError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _seeds import tally

BASE = Path(tempfile.mkdtemp(prefix="patternc-fuzz-ckpt-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
OUTSIDE = BASE / "outside.safetensors"
DTYPES = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "F64", "X9", "", "f32"]
NAMES = ["a", "b", "backbone.embeddings.weight", "lm_head.weight", "__metadata__", "a/../b", ""]
COUNTS: dict[str, int] = {}


def _header(fdp: atheris.FuzzedDataProvider) -> tuple[bytes, int]:
    header: dict[str, Any] = {}
    offset = 0
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        name = fdp.PickValueInList(NAMES) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(12)
        shape = [fdp.ConsumeIntInRange(0, 5) for _ in range(fdp.ConsumeIntInRange(0, 3))]
        if fdp.ConsumeIntInRange(0, 9) == 0:
            shape.append(fdp.PickValueInList([-1, 2**40, 2**63, 2**64 + 1]))
        dtype = fdp.PickValueInList(DTYPES)
        size = 4
        for dim in shape:
            size *= max(dim, 0)
        start, end = offset, offset + size
        if fdp.ConsumeIntInRange(0, 5) == 0:  # a header that lies about its offsets
            start, end = fdp.ConsumeIntInRange(-2, 64), fdp.ConsumeIntInRange(-2, 2**40)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}
        offset = max(offset, end if isinstance(end, int) and end < 4096 else offset)
    if fdp.ConsumeBool():
        header["__metadata__"] = {"format": fdp.PickValueInList(["pt", 1, None])}
    text = json.dumps(header).encode()
    return text, offset


def _safetensors(fdp: atheris.FuzzedDataProvider) -> bytes:
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512))  # anything at all
    text, data = _header(fdp)
    length = len(text)
    if mode == 1:
        length = fdp.PickValueInList([0, 1, length - 1, length + 1, 2**63, 2**64 - 1, 100 * 2**20])
    body = b"\0" * min(data, 4096)
    if mode == 2:  # truncated
        body = body[: fdp.ConsumeIntInRange(0, len(body))]
    return struct.pack("<Q", length % 2**64) + text + body


def _index(fdp: atheris.FuzzedDataProvider, shards: list[str]) -> bytes:
    if fdp.ConsumeIntInRange(0, 7) == 0:
        return fdp.ConsumeBytes(256)
    targets = [
        *shards,
        "../outside.safetensors",
        str(OUTSIDE),
        "missing.safetensors",
        "weights.bin",
        "sub/x.safetensors",
        "",
        ".",
        "..",
        "link.safetensors",
    ]
    weight_map: Any = {
        fdp.PickValueInList(NAMES): fdp.PickValueInList(targets) for _ in range(fdp.ConsumeIntInRange(0, 5))
    }
    if fdp.ConsumeIntInRange(0, 9) == 0:
        weight_map = fdp.PickValueInList([None, [], "x", {"a": 1}])
    return json.dumps({"metadata": {"total_size": 1}, "weight_map": weight_map}).encode()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    root = BASE / "ckpt"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    shards = (
        ["model.safetensors"]
        if fdp.ConsumeBool()
        else ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    )
    for shard in shards:
        (root / shard).write_bytes(_safetensors(fdp))
    if fdp.ConsumeIntInRange(0, 5) == 0:
        (root / "link.safetensors").symlink_to(OUTSIDE)
    if fdp.ConsumeIntInRange(0, 9) == 0:
        (root / "pytorch_model.bin").write_bytes(b"not a pickle, never read")
    with_index = fdp.ConsumeBool()
    if with_index:
        (root / "model.safetensors.index.json").write_bytes(_index(fdp, shards))
    outcome = "ok"
    try:
        checkpoint = open_checkpoint(root)
        for info in checkpoint.tensors.values():
            assert info.file.resolve().is_relative_to(root.resolve()), info.file
    except CheckpointError as error:
        assert error.code in {"P503", "P504", "P510"}, error.code
        outcome = "refused"
    try:
        read_safetensors(root)
    except PatternError as error:
        assert all(d.code in {"P503", "P504", "P510"} for d in error.diagnostics)
    tally("checkpoint", COUNTS, f"{'index' if with_index else 'files'}-{outcome}")


def main() -> None:
    OUTSIDE.write_bytes(struct.pack("<Q", 2) + b"{}")
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
