"""The ``--json`` outputs of ``patternc build`` and ``patternc run``.

Each command prints exactly one JSON object on stdout whatever the outcome, valid against its published
schema (``schemas/build-output.v1.schema.json``, ``schemas/run-output.v1.schema.json``, generated from
these models through ``patternc.schemas``): ``ok`` says whether it worked, ``diagnostics`` says why not
(each as in ``check --json``), and the result's fields are null or empty when there is no result.  One
model per command, rather than a result/failure union, so that a consumer reads the same keys in every
outcome.  A usage error (exit 2: a bad option or value) is still reported by the command line on
stderr, before anything is read, and prints no JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from patternc.diagnostics import Diagnostic
from patternc.report import DiagnosticOut
from patternc.source import Source

OUTPUT_SCHEMA_VERSION: Literal[1] = 1


class _Out(BaseModel, frozen=True, extra="forbid"):
    """Base of the output models."""


def diagnostics_out(found: list[Diagnostic], source: Source) -> list[DiagnosticOut]:
    """Diagnostics as ``check --json`` prints them."""
    from patternc.render import diagnostic_json

    return [DiagnosticOut.model_validate(diagnostic_json(d, source)) for d in found]


class WeightsOut(_Out):
    tensors: int
    """Tensors written."""
    bytes: int
    """Bytes of tensor data written (headers excluded)."""


class BuildOutput(_Out):
    """``patternc build --json``."""

    schema_version: Literal[1] = OUTPUT_SCHEMA_VERSION
    ok: bool
    """True when the directory was written (exit 0); false when nothing was written (exit 1)."""
    source: str
    """SOURCE as given: a config path or the pattern text."""
    source_dialect: str | None
    """The model_type read from SOURCE (``nemotron_h`` for a bare pattern); null when it could not be read."""
    target: str
    """``--target`` as given (``auto`` by default)."""
    architecture: str | None
    """What was written: a transformers model_type, ``torch`` or ``megatron``; null when nothing was."""
    canonical: str | None
    """The canonical architecture of the model (``patternc check``'s verdict); null when unknown."""
    layout: str | None = None
    """``llama.cpp`` when the directory is in the layout llama.cpp's converter reads; else null."""
    out_dir: str | None
    """The directory written; null when nothing was written."""
    files: list[str]
    """The files written, relative to ``out_dir``."""
    weights: WeightsOut | None
    """The converted weights (``--weights``); null for a config-only build."""
    parameters: int | None
    """Trainable parameters of the model the written config builds."""
    stored_elements: int | None
    """Elements of its state dict: the parameters plus persistent buffers (a MoE router's score-correction
    bias); ``patternc stats`` counts these as its parameter total."""
    layers: int | None
    """Layers of the main pattern (one symbol each)."""
    decoder_layers: int | None
    """The config's decoder layers where one is a mixer and its FFN (Bamba, GraniteMoeHybrid, Jamba,
    Qwen3-Next: half of ``layers``); null for families where every pattern layer is a decoder layer."""
    hybrid_layer_pattern: str | None = None
    """``--target megatron``: the pattern Megatron-Core is given; else null."""
    diagnostics: list[DiagnosticOut]
    """The errors and warnings, each as in ``check --json`` (the notes of reading a config, such as the
    defaults it leaves to transformers, are left out, as in the text output: ``check`` shows them)."""


class RowOut(_Out):
    prompt_ids: list[int]
    """The prompt's token ids (unpadded)."""
    ids: list[int]
    """The generated ids (``--full``: the prompt's ids first), as the text output prints them."""
    text: str | None
    """The decoded text (``--prompt``, unescaped); null with ``--ids``."""


class TimingOut(_Out):
    prompt_tokens: int
    """Prompt positions processed per row (the longest prompt; shorter ones are left-padded)."""
    new_tokens: int
    """Tokens generated per row (fewer than ``--max-new-tokens`` when every row stopped at ``--eos``)."""
    rows: int
    prefill_seconds: float | None
    """Wall time from the start to the first new token (the prompt's forward pass); null when none was made."""
    decode_seconds: float | None
    """Wall time of the remaining decode steps."""
    decode_tokens_per_second: float | None
    """New tokens per second over every row after the first token; null with fewer than two new tokens."""


class RunOutput(_Out):
    """``patternc run --json``."""

    schema_version: Literal[1] = OUTPUT_SCHEMA_VERSION
    ok: bool
    """True when tokens were generated (exit 0); false when the model could not be loaded or run (exit 1)."""
    model: str
    """MODEL as given."""
    device: str | None
    """The device it ran on (``cpu``, ``cuda:0``); null when it did not run."""
    dtype: str | None
    """The dtype of its weights (``float32``, ``bfloat16``, ``float16``); null when it did not run."""
    weights: str | None
    """Where the weights were read from; null for a random initialisation (a config without weights)."""
    rows: list[RowOut]
    """One per prompt, in order; empty on failure."""
    timing: TimingOut | None
    """Measured wall times (they vary from run to run); null on failure."""
    diagnostics: list[DiagnosticOut]
    """Every error, warning and note (``P408``: random weights), as in ``check --json``."""
