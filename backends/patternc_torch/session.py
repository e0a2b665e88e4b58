"""``patternc run`` on the torch backend: a model and its tokenizer behind plain ids (``patternc.backends.Session``).

The command line speaks in lists of ints and strings; tensors, devices and generators stay here, so the
core's ``run`` command imports neither torch nor transformers.  With text prompts the tokenizer is read
from a local directory (``--tokenizer DIR``, else the model's own directory when it holds one); nothing
is ever downloaded and no tokenizer code from the directory is run (``trust_remote_code`` stays off).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from patternc.backends import Parallel
from patternc.diagnostics import PatternError, diag
from patternc.model import ModelSpec
from patternc.source import Source
from patternc_torch import io
from patternc_torch.arguments import invalid, model_device
from patternc_torch.model import HybridLM

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class TorchSession:
    """One ``patternc run``: the device chosen at once, then ``open`` (model and tokenizer), then ``generate``."""

    def __init__(
        self, device: str | None, dtype: str | None, *, compile: bool | None = None, parallel: Parallel | None = None
    ) -> None:
        """``device`` None: cuda when this torch sees one, else cpu.  The meta device computes nothing: P407.
        ``compile``: ``HybridLM.generate``'s (the compiled decode step, ``patternc_torch.compiled``).
        ``parallel``: shard the model over a ``torchrun`` launch (``patternc_torch.launch``)."""
        self._device = device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        if model_device(self._device) == torch.device("meta"):
            raise invalid("`run` computes, and the meta device holds no values", help="use --device cpu or cuda")
        self._dtype = dtype
        self._compile = compile
        self._model: HybridLM | None = None
        self._tokenizer: Any = None
        self._parallel = parallel
        self._launched: Any = None
        """The sharded model of a distributed launch (a ``HybridLM`` shard or a ``PipelinedLM``)."""

    def open(self, source: ModelSpec | str, *, origin: str, text: bool, tokenizer: Path | None) -> None:
        if isinstance(source, str):
            io.read_spec(source)  # a missing or broken model is reported as such (P402), before the tokenizer
        if text:
            self._tokenizer = _load_tokenizer(_tokenizer_dir(origin, tokenizer), origin)
        from patternc_torch.launch import requested

        if requested(self._parallel):
            self._open_parallel(source)
            return
        self._model = io.torch_model(source, device=self._device, dtype=self._dtype)

    def _open_parallel(self, source: ModelSpec | str) -> None:
        """The model sharded over the launch: the plan checked first (P420, no process group needed),
        then the launch (P421), then each rank's shard loaded."""
        from patternc_torch import launch
        from patternc_torch.distributed import tp_plan
        from patternc_torch.pipeline import pipeline_stages

        assert self._parallel is not None
        kind = launch.check_options(self._parallel)
        if self._compile:
            raise launch.misuse(
                "--compile with --tp, --pp or --fsdp: the compiled decode step is not checked with collectives",
                help="leave --compile out: the sharded model decodes with the eager step",
            )
        skeleton = launch._meta_model(source, self._dtype)
        if kind == "tp":
            tp_plan(skeleton, 0, self._parallel.tp)
        elif kind == "pp":
            pipeline_stages(skeleton.spec, self._parallel.pp)
        mesh, self._device = launch.start(self._parallel, kind, self._device)
        model = launch.parallel_model(source, mesh, device=self._device, dtype=self._dtype)
        self._launched = model
        self._model = model if isinstance(model, HybridLM) else None

    @property
    def primary(self) -> bool:
        import torch.distributed as dist

        return self._launched is None or dist.get_rank() == 0

    @property
    def model(self) -> HybridLM:
        if self._model is None:
            raise RuntimeError("the session has no model yet: call open() first")
        return self._model

    def _parameters(self) -> Iterator[torch.nn.Parameter]:
        """This rank's parameters: the model's, or its pipeline stage's."""
        if self._launched is not None and self._model is None:
            return iter(self._launched.module.parameters())
        return iter(self.model.parameters())

    @property
    def spec(self) -> ModelSpec:
        return self._launched.spec if self._launched is not None else self.model.spec

    @property
    def weights_from(self) -> str | None:
        return self._launched.weights_from if self._launched is not None else self.model.weights_from

    @property
    def device(self) -> str:
        return str(next(self._parameters()).device)

    @property
    def dtype(self) -> str:
        return str(next(self._parameters()).dtype).removeprefix("torch.")

    @property
    def sync(self) -> Callable[[], None] | None:
        target = next(self._parameters()).device
        return (lambda: torch.cuda.synchronize(target)) if target.type == "cuda" else None

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer(text)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

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
        """Rows left-padded to one width (masked), decoded together; each row's new ids."""
        width = max(len(row) for row in rows)
        pipelined = self._launched is not None and self._model is None
        target = next(self._parameters()).device
        input_ids = torch.zeros(len(rows), width, dtype=torch.long, device=target)
        mask = torch.zeros(len(rows), width, dtype=torch.bool, device=target)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = True
        generator = torch.Generator(device=target).manual_seed(seed)
        settings: dict[str, Any] = {"do_sample": sample, "temperature": temperature, "top_k": top_k, "top_p": top_p}
        settings |= {"eos_token_id": eos, "generator": generator, "on_token": on_token}
        if pipelined:  # the stages decode through their inference state; the last stage picks (patternc_torch.pipeline)
            out = self._launched.generate(input_ids, max_new_tokens, attention_mask=mask, **settings)
        else:
            out = self.model.generate(input_ids, max_new_tokens, attention_mask=mask, compile=self._compile, **settings)
        return [out[i, width:].tolist() for i in range(len(rows))]


def _tokenizer_dir(model: str, explicit: Path | None) -> Path | None:
    """``--tokenizer``, else the model's directory when it holds tokenizer files, else None."""
    if explicit is not None:
        return explicit
    path = Path(model)
    directory = path if path.is_dir() else path.parent
    return directory if any((directory / name).is_file() for name in TOKENIZER_FILES) else None


def _load_tokenizer(directory: Path | None, model: str) -> Any:
    """A transformers tokenizer from a local directory, offline; P406 when there is none or it fails."""

    def fail(message: str) -> PatternError:
        return PatternError(
            [
                diag(
                    "P406",
                    message,
                    None,
                    help="pass --tokenizer DIR (a local directory with "
                    "tokenizer.json; patternc downloads nothing), or give --ids",
                )
            ],
            Source("", str(directory or model)),
        )

    if directory is None:
        raise fail(f"--prompt needs a tokenizer, and `{model}` holds none")
    if not directory.is_dir() or not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise fail(f"`{directory}` is no directory with {' or '.join(TOKENIZER_FILES)}")
    os.environ["HF_HUB_OFFLINE"] = "1"  # belt and braces: local_files_only below already forbids downloads
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise fail("reading a tokenizer needs transformers, which is not installed") from None
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True, trust_remote_code=False)
    except Exception as error:  # transformers raises many kinds: a bad file, a class needing remote code
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise fail(f"cannot load the tokenizer in `{directory}`: {reason}") from None
