"""The ``patternc check`` report: one pydantic model for the summary and the ``--json`` output.

The JSON Schema of ``CheckReport`` is published as ``schemas/check-output.v1.schema.json``
and documented in ``docs/cli.md``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from patternc.api import Analysis
from patternc.check import CheckOutcome
from patternc.convert import attention_indices, megatron_lacks, to_megatron
from patternc.diagnostics import Diagnostic, has_errors
from patternc.passes.classify import FAMILY_DESCRIPTIONS
from patternc.render import diagnostic_json

REPORT_SCHEMA_VERSION: Literal[1] = 1


class _Out(BaseModel, frozen=True, extra="forbid"):
    pass


class SpanOut(_Out):
    start: int
    """0-based offset of the first character."""
    end: int
    """0-based offset just past the last character."""
    line: int
    """1-based line of ``start``."""
    column: int
    """1-based column of ``start``."""


class LabelOut(_Out):
    span: SpanOut | None
    message: str


class DiagnosticOut(_Out):
    code: str
    """Stable code such as ``P001`` (see ``patternc explain CODE``)."""
    name: str
    """Stable kebab-case name of the code."""
    severity: Literal["error", "warning", "note"]
    message: str
    span: SpanOut | None
    """Where the problem is; null only for inputs that have no text."""
    label: str
    """Short text printed beside the caret."""
    help: str | None
    labels: list[LabelOut]
    """Secondary spans."""
    notes: list[str]


class MtpOut(_Out):
    pattern: str
    """The layers of one MTP depth."""
    depths: int


class TargetOut(_Out):
    ok: bool
    """True when the target loads and runs the model (warnings and notes allowed)."""
    diagnostics: list[DiagnosticOut]


class CanonicalOut(_Out):
    architecture: str | None
    """The transformers ``model_type`` that expresses the model exactly, or null when none does."""
    reasons: dict[str, list[str]]
    """Candidate -> why it is not exact (empty: exact too, but later in the preference order)."""
    matched: list[str]
    """Every exact candidate, in preference order."""


class CheckReport(_Out):
    schema_version: Literal[1] = REPORT_SCHEMA_VERSION
    ok: bool
    """True when there is no error (warnings allowed)."""
    dialect: Literal["hf", "megatron", "patternc"]
    pattern: str | None
    """The flat main pattern (no ``|``, no MTP; a parallel layer spelled ``[*M]``)."""
    megatron: str | None
    """The unified Megatron-Core string, with ``|`` and ``/``; None when a layer kind has no symbol in
    Megatron's alphabet (a short convolution): there is no Megatron spelling to print."""
    layers: int | None
    """Number of main layers."""
    counts: dict[str, int] | None
    """Symbol -> number of main layers (each mixer of a parallel layer counted for its own kind)."""
    attention_layers: list[int] | None
    """0-based indices of main layers with a KV cache."""
    family: str | None
    family_description: str | None
    stages: list[str] | None
    """Each pipeline stage as a flat string (a parallel layer spelled ``[*M]``)."""
    mtp: MtpOut | None
    diagnostics: list[DiagnosticOut]
    targets: dict[str, TargetOut] | None = None
    """Profile -> verdict, for ``--target``/``--targets`` (null when not asked)."""
    canonical: CanonicalOut | None = None
    """The canonical-architecture map (configs only; null for a bare pattern)."""
    model_type: str | None = None
    """The config's model family (``nemotron_h``, ``bamba``, …); null for a bare pattern."""
    hyperparameters: dict[str, Any] | None = None
    """The per-kind hyper-parameters read from a config (``schemas/model.v1``, without the pattern)."""


def _diagnostics(found: list[Diagnostic], analysis: Analysis) -> list[DiagnosticOut]:
    return [DiagnosticOut.model_validate(diagnostic_json(d, analysis.source)) for d in found]


def build_report(outcome: CheckOutcome | Analysis) -> CheckReport:
    if isinstance(outcome, Analysis):
        outcome = CheckOutcome(outcome)
    report = _pattern_report(outcome.analysis)
    extra: dict[str, object] = {}
    if outcome.targets:
        extra["targets"] = {
            name: TargetOut(ok=not has_errors(found), diagnostics=_diagnostics(found, outcome.analysis))
            for name, found in outcome.targets.items()
        }
    if outcome.canonical is not None:
        extra["canonical"] = CanonicalOut.model_validate(outcome.canonical.to_json())
    if outcome.config is not None:
        extra["model_type"] = outcome.config.family
    if outcome.spec is not None:
        extra["hyperparameters"] = outcome.spec.model_dump(mode="json", exclude={"pattern"})
    if extra:
        report = report.model_copy(update={**extra, "ok": report.ok and outcome.ok})
    return report


def _pattern_report(analysis: Analysis) -> CheckReport:
    diagnostics = _diagnostics(analysis.diagnostics, analysis)
    pattern = analysis.pattern
    if pattern is None:
        return CheckReport(
            ok=False,
            dialect=analysis.dialect.value,
            pattern=None,
            megatron=None,
            layers=None,
            counts=None,
            attention_layers=None,
            family=None,
            family_description=None,
            stages=None,
            mtp=None,
            diagnostics=diagnostics,
        )
    family = analysis.family
    return CheckReport(
        ok=analysis.ok,
        dialect=analysis.dialect.value,
        pattern="".join(pattern.spelled),
        megatron=None if megatron_lacks(pattern) or pattern.has_parallel else to_megatron(pattern),
        layers=pattern.num_layers,
        counts=pattern.counts(),
        attention_layers=attention_indices(pattern),
        family=family.value if family else None,
        family_description=FAMILY_DESCRIPTIONS[family] if family else None,
        stages=["".join(stage) for stage in pattern.stage_spellings()],
        mtp=MtpOut(pattern="".join(pattern.mtp.spelled), depths=pattern.mtp.depths) if pattern.mtp else None,
        diagnostics=diagnostics,
    )
