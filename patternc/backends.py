"""Backends, found only through the ``patternc.backends`` entry-point group, and the contract they keep.

The core never imports a backend package: backends pull in torch, transformers or safetensors, and
``patternc check`` must start fast.  ``patternc build`` picks the backend that writes its ``--target``
(``for_target``), ``patternc run`` and ``patternc.torch_model`` load a runnable one (``runnable``), and
``patternc backends`` lists them (``listing``).  A backend is an object (the entry point's value)
with what those commands use, and nothing else (xdsl's ``Target`` is the model):

- ``name`` and ``description``: what ``patternc backends`` prints;
- ``targets``: the ``build --target`` values it writes, each with one line saying what it is;
- ``check(spec, target)``: why it cannot build ``spec`` for ``target`` (diagnostics with reasons;
  empty when it can), without writing anything;
- ``write(spec, out, target=, weights=, options=)``: the output directory, published atomically
  (``patternc.outdir``), or the diagnostics saying why nothing was written; what ``check`` finds is
  among them;
- a runnable backend also has ``load(source, device=, dtype=)`` (its model object: ``patternc.torch_model``)
  and ``session(device=, dtype=, parallel=)`` (what ``patternc run`` drives: ids in, ids out, no tensor
  types; ``parallel``: how ``run --tp/--pp/--fsdp`` shards the model over a distributed launch).

Third-party packages register their own under the same group.  Two distributions registering one
name is an error naming both (xdsl's ``Universe`` refuses duplicates too), not a silent first pick.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from patternc.diagnostics import Diagnostic, has_errors

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from patternc.model import ModelSpec

GROUP = "patternc.backends"

DEFAULT_MAX_SHARD_SIZE = 2 * 10**9
"""Largest safetensors shard ``build`` writes unless ``--max-shard-size`` says otherwise (2 GB)."""


class Progress(Protocol):
    """Told how a conversion advances, so that a caller can show it (``patternc build --weights`` draws a
    bar on a terminal); the writer calls ``start`` once, ``advance`` after each tensor, ``finish`` once.

    The converter knows nothing of terminals: a 60 GB conversion runs for minutes, and whether to
    show that (and how) is the command line's choice, not the backend's.
    """

    def start(self, tensors: int, total_bytes: int) -> None:
        """The work ahead: ``tensors`` tensors holding ``total_bytes`` bytes."""

    def advance(self, nbytes: int) -> None:
        """One more tensor of ``nbytes`` bytes written."""

    def finish(self) -> None:
        """Every tensor written (not called when the conversion fails)."""


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """What ``patternc build`` tells every backend besides the spec, the target and the weights.

    A backend reads the options that concern it and ignores the rest (the Megatron arguments have no
    shards; a transformers directory has no pipeline split).
    """

    force: bool = False
    """Replace an existing output directory (atomically); without it an existing one is ``P502``."""
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE
    """Largest safetensors shard, in bytes."""
    source_config: Mapping[str, Any] = field(default_factory=dict)
    """The source config's keys (``ConfigReading.values``): each reaches the output or is reported."""
    protected: tuple[Path, ...] = ()
    """Directories holding the build's input, which the output may not replace (``P502``)."""
    set_keys: frozenset[str] = frozenset()
    """Keys the user gave with ``--set`` (asked for explicitly: not writing one is an error)."""
    default_keys: frozenset[str] = frozenset()
    """Keys patternc filled in for a bare pattern (its defaults: no word about them when dropped)."""
    pipeline_ranks: int = 1
    """``--pp``: pipeline-parallel ranks, for outputs that split the layers."""
    virtual_stages: int = 1
    """``--vpp``: virtual stages per pipeline rank."""
    progress: Progress | None = None
    """Told how a weight conversion advances (``None``: nobody watches)."""


@dataclass
class BuildResult:
    """What ``write`` did: the diagnostics, and what was written (nothing when ``out_dir`` is None)."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    out_dir: Path | None = None
    """Where the output was written; None when nothing was written."""
    architecture: str | None = None
    """What was written: a transformers ``model_type``, ``torch`` or ``megatron``."""
    canonical: str | None = None
    """The canonical architecture of the spec, when the backend asked for it."""
    files: list[str] = field(default_factory=list)
    """The files written, relative to ``out_dir``."""
    tensors: int = 0
    total_bytes: int = 0
    num_parameters: int | None = None
    """Parameters of the model transformers builds from the written config (meta device)."""
    stored_elements: int | None = None
    """Elements of its state dict (parameters and persistent buffers such as a router's score-correction
    bias, tied weights once): what ``patternc stats`` counts as the parameter total."""
    layout: str | None = None
    """``llama.cpp`` when the directory is in the layout llama.cpp's converter reads (hub names)."""
    hybrid_layer_pattern: str | None = None
    """The Megatron-Core pattern written (``--target megatron``), else None."""
    how: str | None = None
    """What the summary says of the architecture written, when not how it relates to the canonical one."""
    next_step: str | None = None
    """What to do with the output next, added to the summary's first line (a converter to run)."""
    config_keys: dict[str, str] = field(default_factory=dict)
    """Each source config key written -> the output key that holds it."""
    dropped_keys: dict[str, str] = field(default_factory=dict)
    """Each source config key not written -> why (also reported: P512 for ``--set`` keys, else P513)."""

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


@runtime_checkable
class Backend(Protocol):
    """What ``patternc build`` uses of a backend (see the module docstring)."""

    name: str
    description: str
    targets: Mapping[str, str]
    """``build --target`` name -> one line saying what is written for it."""

    def check(self, spec: ModelSpec, target: str) -> list[Diagnostic]:
        """Why ``spec`` cannot be built for ``target`` (empty when it can); writes nothing."""
        ...

    def write(
        self, spec: ModelSpec, out: Path, *, target: str, weights: str | None, options: BuildOptions
    ) -> BuildResult:
        """Write ``out`` for ``target``, converting the checkpoint ``weights`` (a path as the user wrote it,
        which messages quote) when given; never raises for user errors."""
        ...


@dataclass(frozen=True)
class Parallel:
    """How ``patternc run`` shards the model over the processes of a ``torchrun`` launch (issue 16)."""

    tp: int = 1
    """Tensor-parallel ranks (``--tp``)."""
    pp: int = 1
    """Pipeline stages (``--pp``)."""
    fsdp: bool = False
    """FSDP2 over every rank of the launch (``--fsdp``)."""


class Session(Protocol):
    """A model as ``patternc run`` drives it: plain ids in and out, so that the core needs no tensor type.

    ``open`` reads the source (a missing or broken one is reported before the tokenizer), then the
    tokenizer when text is asked for, then builds the model; every refusal is a ``PatternError``.
    """

    def open(self, source: ModelSpec | str, *, origin: str, text: bool, tokenizer: Path | None) -> None:
        """Load ``source`` (``origin``: how the user named it); with ``text``, a tokenizer too: the one in
        ``tokenizer``, else the model's own.  The properties below describe the model opened."""
        ...

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def primary(self) -> bool:
        """Whether this process reports the outcome: rank 0 of a distributed launch, else always."""
        ...

    @property
    def device(self) -> str:
        """Where the model runs (``cpu``, ``cuda:0``)."""
        ...

    @property
    def weights_from(self) -> str | None:
        """The directory the weights were read from; None for a random initialisation."""
        ...

    @property
    def dtype(self) -> str:
        """The dtype of the model's first parameter (``float32``, ``bfloat16``)."""
        ...

    @property
    def sync(self) -> Callable[[], None] | None:
        """Waits for the device to finish what was queued (timings of an asynchronous device), or None."""
        ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def generate(
        self,
        rows: list[list[int]],
        max_new_tokens: int,
        *,
        sample: bool,
        temperature: float,
        top_k: int,
        top_p: float,
        eos: int | None,
        seed: int,
        on_token: Callable[[int], None],
    ) -> list[list[int]]:
        """Each row's new ids (rows left-padded to one width); ``on_token`` is called after each step."""
        ...


@runtime_checkable
class Runnable(Backend, Protocol):
    """A backend that runs what it builds (``patternc run``, ``patternc.torch_model``)."""

    def load(self, source: Any, /, *, device: Any = None, dtype: Any = None) -> Any:
        """The backend's model object for ``source`` (a ModelSpec, a config dict, a file or directory)."""
        ...

    def session(
        self, *, device: str | None, dtype: str | None, compile: bool | None = None, parallel: Parallel | None = None
    ) -> Session:
        """A session on ``device`` (None: the backend's choice) in ``dtype``; bad ones raise ``PatternError``.
        ``compile``: run the decode step compiled (the backend falls back to its eager step when it cannot;
        None: the backend's default).  ``parallel``: shard the model over a distributed launch (None: one
        process)."""
        ...


class UnknownBackendError(LookupError):
    pass


class BackendClashError(RuntimeError):
    """Two distributions register one backend name: which one is meant cannot be decided."""


def _entry_points() -> list[EntryPoint]:
    from importlib.metadata import entry_points

    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def _owner(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def _unique(eps: list[EntryPoint]) -> dict[str, EntryPoint]:
    """Name -> entry point; ``BackendClashError`` naming both distributions when a name is taken twice."""
    found: dict[str, EntryPoint] = {}
    for ep in eps:
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise BackendClashError(
                f"two distributions register the backend {ep.name!r}: {_owner(other)} ({other.value}) and "
                f"{_owner(ep)} ({ep.value}); uninstall one of them"
            )
        found[ep.name] = ep
    return found


def available() -> dict[str, str]:
    """Backend name -> ``module:attr`` of every installed backend, sorted by name (nothing is imported)."""
    return {name: ep.value for name, ep in _unique(_entry_points()).items()}


def load(name: str) -> Backend:
    """Import and return one backend (only now is its package imported)."""
    eps = _unique(_entry_points())
    ep = eps.get(name)
    if ep is None:
        close = difflib.get_close_matches(name, list(eps), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownBackendError(f"no backend named {name!r} (installed: {', '.join(eps) or 'none'}){hint}")
    backend = ep.load()
    if not isinstance(backend, Backend):
        raise TypeError(f"entry point {ep.value} is not a patternc backend")
    return backend


def registered() -> list[Backend]:
    """Every installed backend, sorted by name (each package imported: light, by the contract)."""
    return [load(name) for name in available()]


def listing() -> list[str]:
    """``patternc backends``: one line per backend, ``name<TAB>targets<TAB>description``."""
    return [f"{b.name}\t{', '.join(b.targets)}\t{b.description}" for b in registered()]


def build_targets() -> dict[str, Backend]:
    """``build --target`` name -> the backend that writes it; a name two backends claim is an error."""
    owners: dict[str, Backend] = {}
    for backend in registered():
        for target in backend.targets:
            other = owners.get(target)
            if other is not None:
                raise BackendClashError(
                    f"the backends {other.name!r} and {backend.name!r} both write `--target {target}`"
                )
            owners[target] = backend
    return owners


def for_target(target: str) -> Backend:
    """The backend that writes ``build --target target`` (a canonical name, as ``patternc.target_names`` gives)."""
    owners = build_targets()
    if target not in owners:
        raise UnknownBackendError(
            f"no installed backend writes `--target {target}` (written: {', '.join(owners) or 'none'})"
        )
    return owners[target]


def runnable(name: str = "torch") -> Runnable:
    """The runnable backend ``name`` (``patternc run``, ``patternc.torch_model``)."""
    backend = load(name)
    if not isinstance(backend, Runnable):
        raise TypeError(f"the backend {name!r} builds outputs but does not run them")
    return backend


def target_help(names: Collection[str]) -> str:
    """The ``build --target`` help text for these names (in this order)."""
    return (
        "What to write: "
        + ", ".join(names)
        + " (what each is: `patternc backends`; aliases as for check: docs/cli.md)."
    )
