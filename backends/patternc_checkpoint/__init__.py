"""Safetensors checkpoints, read and written one tensor at a time.

Reading: ``open_checkpoint(path)`` finds a single ``*.safetensors`` file, a directory holding one,
or a sharded checkpoint (``model.safetensors.index.json``), and returns every tensor's file, shape
and dtype from the headers alone (``safetensors.safe_open``, memory-mapped; no data is read).
Pickled checkpoints (``.bin``, ``.pt``, ``.pth``, ``.ckpt``) are never opened.

Writing: ``ShardWriter`` writes the safetensors format itself (an 8-byte header length, the JSON
header, then the raw bytes), so a shard's header is written from the plan before any tensor is
produced and each tensor is appended and freed as soon as it is made: peak memory follows the
largest tensor, not the shard or the model.  The index (``model.safetensors.index.json``) is
the one transformers reads.

Shared by the backends that read or write checkpoints (``patternc_transformers`` converts weights,
``patternc_torch`` loads them): it is no backend itself (no entry point) and imports nothing heavy
at module level (safetensors and torch inside the functions that need them), so neither backend
has to import the other for it, and a bad file is the same diagnostic (``P510``) through both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import torch

INDEX_NAME = "model.safetensors.index.json"
MAX_INDEX_BYTES = 64 * 2**20
"""Largest ``model.safetensors.index.json`` read (64 MiB; the index of a 1T-parameter model is a few MiB)."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

ITEMSIZE: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "F64": 8,
    "I64": 8,
    "U64": 8,
}
"""Bytes per element of each safetensors dtype string."""
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
"""The checkpoint dtypes read as model weights (by ``build --weights`` and the torch backend alike):
integers, bool and complex hold no weights, and fp8 tensors mean nothing without the scales a plain
copy would drop."""


class CheckpointError(Exception):
    """A checkpoint that cannot be read: ``code`` is the diagnostic to report, ``help`` a hint."""

    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help


@dataclass(frozen=True, slots=True)
class TensorInfo:
    file: Path
    shape: tuple[int, ...]
    dtype: str
    """The safetensors dtype string (``F32``, ``BF16``, …)."""

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count * ITEMSIZE.get(self.dtype, 1)


@dataclass
class Checkpoint:
    root: Path
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _pickles(paths: list[Path]) -> list[Path]:
    return sorted(p for p in paths if p.suffix in PICKLE_SUFFIXES)


def _refuse_pickles(found: list[Path]) -> CheckpointError:
    names = ", ".join(p.name for p in found[:5]) + (", …" if len(found) > 5 else "")
    return CheckpointError(
        "P503",
        f"the checkpoint holds pickled weights ({names}): patternc never loads pickles",
        help="convert them to safetensors first, in an environment you trust: "
        "`transformers` `save_pretrained(..., safe_serialization=True)` or `safetensors.torch.save_file`",
    )


def contained(path: Path, root: Path) -> bool:
    """Whether ``path``, every symbolic link followed, stays inside the directory ``root``.

    One exception: a Hugging Face cache snapshot (``…/snapshots/<revision>/``) holds links into its
    repository's ``blobs/`` directory, which is where the files of that checkpoint live.
    """
    try:
        target = path.resolve(strict=False)
        base = root.resolve(strict=False)
    except (OSError, RuntimeError, ValueError):  # a link loop, a name the OS refuses
        return False
    if target.is_relative_to(base):
        return True
    return base.parent.name == "snapshots" and target.is_relative_to(base.parent.parent / "blobs")


def _target(path: Path) -> str:
    try:
        return str(path.resolve(strict=False))
    except (OSError, RuntimeError, ValueError):
        return "an unresolvable link"


def _escaping(root: Path, files: list[Path]) -> CheckpointError | None:
    outside = [p for p in files if not contained(p, root)]
    if not outside:
        return None
    shown = ", ".join(f"`{p.name}` -> `{_target(p)}`" for p in outside[:3])
    return CheckpointError(
        "P510",
        f"files lead out of the checkpoint directory `{root}`: {shown}",
        help="copy the files into the checkpoint directory; patternc reads nothing outside it",
    )


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Every tensor of a checkpoint (headers only); raises ``CheckpointError``.

    A directory's files (and an index's shards) must stay inside it, symbolic links followed.
    """
    root = Path(path)
    if root.is_file():
        if root.suffix in PICKLE_SUFFIXES:
            raise _refuse_pickles([root])
        if root.name == INDEX_NAME:
            return _from_index(root)
        return _from_files(root.parent, [root])
    if not root.is_dir():
        raise CheckpointError("P504", f"no checkpoint at `{root}`: no such file or directory")
    index = root / INDEX_NAME
    if index.is_file():
        escaping = _escaping(root, [index])
        if escaping is not None:
            raise escaping
        return _from_index(index)
    entries = sorted(root.iterdir())
    shards = [p for p in entries if p.suffix == ".safetensors" and p.is_file()]
    if shards:
        escaping = _escaping(root, shards)
        if escaping is not None:
            raise escaping
        return _from_files(root, shards)
    pickles = _pickles(entries)
    if pickles:
        raise _refuse_pickles(pickles)
    raise CheckpointError(
        "P504",
        f"no safetensors weights in `{root}`",
        help=f"expected `model.safetensors`, or shards listed by `{INDEX_NAME}`",
    )


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the filesystem, a permission problem: not a usable shard
        return False


def _from_index(index: Path) -> Checkpoint:
    try:
        size = index.stat().st_size
        if size > MAX_INDEX_BYTES:
            raise CheckpointError(
                "P510", f"`{index}` has {size:,} bytes, above the limit of {MAX_INDEX_BYTES:,} for an index"
            )
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError("P510", f"`{index}` is not a readable JSON index: {error}") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError("P510", f"`{index}` has no `weight_map` of tensor name -> shard file")
    names = sorted(set(weight_map.values()))
    bad = [n for n in names if Path(n).name != n or not n]
    if bad:
        raise CheckpointError("P510", f"`{index}` names shard files outside its directory: {', '.join(bad[:5])}")
    pickles = [n for n in names if Path(n).suffix in PICKLE_SUFFIXES]
    if pickles:
        raise _refuse_pickles([index.parent / n for n in pickles])
    escaping = _escaping(index.parent, [index.parent / n for n in names])
    if escaping is not None:
        raise escaping
    missing = [n for n in names if not _is_file(index.parent / n)]
    if missing:
        raise CheckpointError("P504", f"`{index.name}` lists shard files that do not exist: {', '.join(missing[:5])}")
    checkpoint = _from_files(index.parent, [index.parent / n for n in names])
    listed = set(weight_map)
    stray = sorted(set(checkpoint.tensors) - listed)
    absent = sorted(listed - set(checkpoint.tensors))
    if absent:
        raise CheckpointError(
            "P510",
            f"`{index.name}` lists tensors its shards do not hold: {', '.join(absent[:5])}"
            + (" …" if len(absent) > 5 else ""),
        )
    for name in stray:  # a shard holding more than the index says: follow the index
        del checkpoint.tensors[name]
    return checkpoint


def _from_files(root: Path, files: list[Path]) -> Checkpoint:
    from safetensors import safe_open

    checkpoint = Checkpoint(root, files=list(files))
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                    piece = handle.get_slice(name)
                    info = TensorInfo(file, tuple(int(s) for s in piece.get_shape()), str(piece.get_dtype()))
                    if name in checkpoint.tensors:
                        raise CheckpointError(
                            "P510",
                            f"tensor `{name}` is in both `{checkpoint.tensors[name].file.name}` and `{file.name}`",
                        )
                    checkpoint.tensors[name] = info
        except CheckpointError:
            raise
        except Exception as error:  # safetensors raises its own error types for a bad header
            raise CheckpointError(
                "P510",
                f"`{file.name}` is not a valid safetensors file: {error}",
                help="the file is truncated or not safetensors; fetch or convert it again",
            ) from None
    return checkpoint


class TensorReader:
    """Reads tensors (or a slice along one dimension) from a checkpoint's files, one at a time.

    Each read opens the file and closes it again: safetensors memory-maps the file, and the pages
    a read touches count towards the resident set as long as the mapping lives, so a handle kept
    open across a whole shard would make peak memory follow the shard instead of the tensor.
    """

    def read(self, info: TensorInfo, name: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(info.file), framework="pt") as handle:
            tensor: torch.Tensor = handle.get_tensor(name)
        return tensor

    def read_chunk(self, info: TensorInfo, name: str, dim: int, part: int, parts: int) -> torch.Tensor:
        """Part ``part`` of ``parts`` equal pieces of the tensor along ``dim``, reading only that piece."""
        from safetensors import safe_open

        size = info.shape[dim] // parts
        index = tuple([slice(None)] * dim + [slice(part * size, (part + 1) * size)])
        with safe_open(str(info.file), framework="pt") as handle:
            tensor: torch.Tensor = handle.get_slice(name)[index]
        return tensor

    def close(self) -> None:
        """Nothing stays open between reads; kept so callers can treat it as a resource."""


_TORCH_NAMES = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3",
    "int16": "I16",
    "uint16": "U16",
    "float16": "F16",
    "bfloat16": "BF16",
    "int32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "float64": "F64",
    "int64": "I64",
    "uint64": "U64",
}


def dtype_name(tensor: torch.Tensor) -> str:
    name = str(tensor.dtype).removeprefix("torch.")
    return _TORCH_NAMES.get(name, name)  # a dtype safetensors names otherwise: reported, never a KeyError


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return TensorInfo(Path(), self.shape, self.dtype).nbytes


def plan_shards(entries: list[Entry], max_bytes: int) -> list[list[Entry]]:
    """Consecutive groups of at most ``max_bytes`` (a larger tensor gets a shard of its own)."""
    shards: list[list[Entry]] = []
    size = 0
    for entry in entries:
        if not shards or (size + entry.nbytes > max_bytes and shards[-1]):
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += entry.nbytes
    return shards or [[]]


def shard_name(index: int, count: int) -> str:
    return f"model-{index + 1:05d}-of-{count:05d}.safetensors"


class ShardWriter:
    """One safetensors file whose header is written first, from the planned entries."""

    def __init__(self, path: Path, entries: list[Entry], metadata: dict[str, str] | None = None) -> None:
        header: dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
        offset = 0
        for entry in entries:
            header[entry.name] = {
                "dtype": entry.dtype,
                "shape": list(entry.shape),
                "data_offsets": [offset, offset + entry.nbytes],
            }
            offset += entry.nbytes
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors writes it
        self._expected = [(e.name, e.shape, e.dtype) for e in entries]
        self._position = 0
        self._file: BinaryIO = path.open("wb")
        self._file.write(len(text).to_bytes(8, "little"))
        self._file.write(text)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        expected = self._expected[self._position]
        actual = (name, tuple(tensor.shape), dtype_name(tensor))
        if actual != expected:
            raise RuntimeError(f"shard writer: got {actual}, planned {expected}")
        self._position += 1
        flat = tensor.detach().contiguous().reshape(-1)
        if flat.numel():
            import torch

            self._file.write(flat.view(torch.uint8).numpy().data)

    def close(self) -> None:
        self._file.close()
        if self._position != len(self._expected):
            raise RuntimeError("shard writer closed before every planned tensor was written")

    def abort(self) -> None:
        self._file.close()


@dataclass
class Tally:
    """A ``patternc.backends.Progress`` that only counts: what was announced and what was done (tests, JSON reports)."""

    tensors: int = 0
    total_bytes: int = 0
    done_tensors: int = 0
    done_bytes: int = 0
    finished: bool = False

    def start(self, tensors: int, total_bytes: int) -> None:
        self.tensors, self.total_bytes = tensors, total_bytes

    def advance(self, nbytes: int) -> None:
        self.done_tensors += 1
        self.done_bytes += nbytes

    def finish(self) -> None:
        self.finished = True


def write_index(path: Path, weight_map: dict[str, str], total_size: int) -> None:
    data = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
