"""``patternc run MODEL --ids "1 2 3"``: generate token ids with the torch backend.

With ``--prompt TEXT`` the prompt is text, encoded (and the output decoded) by a tokenizer read from a
local directory: ``--tokenizer DIR``, else the model's own directory when it holds one.  Nothing is
ever downloaded and no tokenizer code from the directory is run (``trust_remote_code`` stays off).
The backend is reached through the registry (``patternc.backends.runnable``) and driven through its
``Session``: ids in, ids out, so this module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from patternc.exit_codes import EXIT_ERRORS


def _parse_ids(texts: list[str]) -> list[list[int]]:
    rows = []
    for text in texts:
        try:
            row = [int(part) for part in text.replace(",", " ").split()]
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a list of integers", param_hint="--ids") from None
        if not row or min(row) < 0:
            raise typer.BadParameter(f"{text!r}: give at least one non-negative id", param_hint="--ids")
        rows.append(row)
    return rows


def _bare_pattern(argument: str) -> Any:
    """The ModelSpec of a bare pattern MODEL (the sizes ``build`` and ``stats`` give it), or None for a path.

    Raises ``PatternError`` with the pattern's errors, so that ``run`` reports them like a broken model.
    """
    from patternc.diagnostics import PatternError, has_errors
    from patternc.inputs import load_source, looks_like_config_path

    if looks_like_config_path(argument) or _names_a_path(argument):
        return None
    loaded = load_source(argument)
    if loaded.spec is None or has_errors(loaded.diagnostics):
        raise PatternError([d for d in loaded.diagnostics if d.severity.value == "error"], loaded.source)
    return loaded.spec


def _names_a_path(argument: str) -> bool:
    """Whether a MODEL that does not exist was meant as a path: it holds a lowercase letter, a dot, ``~`` or
    ``\\``, which no pattern does (layer symbols are uppercase or punctuation).  ``run modle-dir`` then says
    that there is no model there (P402), not that ``o``, ``d`` and ``l`` are no layer symbols."""
    return any(c.islower() or c in ".~\\" for c in argument)


def _escape_lines(text: str) -> str:
    """One output line per prompt, whatever the text holds."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def run(
    model: Annotated[
        str,
        typer.Argument(
            help="A model directory (config.json + safetensors), a config file, or a bare pattern (random weights)."
        ),
    ],
    ids: Annotated[
        list[str] | None,
        typer.Option("--ids", help='Prompt token ids, e.g. "1 2 3"; repeat for a batch (left-padded).'),
    ] = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", help="Prompt text (needs a tokenizer; prints text); repeat for a batch."),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option("--tokenizer", help="A local tokenizer directory (default: the model's, if it has one)."),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=0, help="Tokens to generate.")] = 16,
    sample: Annotated[bool, typer.Option("--sample", help="Sample instead of greedy decoding.")] = False,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 1.0,
    top_k: Annotated[int, typer.Option("--top-k", min=0)] = 0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0)] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler.")] = 0,
    eos: Annotated[int | None, typer.Option("--eos", help="Stop a row at this id.")] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, cuda:1… (default: cuda when available, else cpu)")
    ] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="float32, bfloat16 or float16.")] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="Decode with the compiled step (torch.compile; falls back to the eager step when it cannot). "
            "Default: the backend's (eager).",
            show_default=False,
        ),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Print the prompt too.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (schema run-output): ids, text, timings.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress, speed or notes on stderr: errors and the output only.")
    ] = False,
    tp: Annotated[
        int, typer.Option("--tp", min=1, help="Tensor-parallel ranks (inside torchrun --nproc-per-node N).")
    ] = 1,
    pp: Annotated[
        int,
        typer.Option("--pp", min=1, help="Pipeline stages, the pattern's `|` or a balanced split (inside torchrun)."),
    ] = 1,
    fsdp: Annotated[bool, typer.Option("--fsdp", help="FSDP2 over every rank of the torchrun launch.")] = False,
) -> None:
    """Load MODEL with the torch backend and print the generated ids (or text, with --prompt), one line per prompt.

    Text output escapes backslashes, newlines and carriage returns, so that every prompt's output stays
    on its line.  When stderr is a terminal, a progress line shows the tokens generated and the decode
    speed, and a last line says how long the prompt took and how many tokens per second followed.
    """
    from patternc.backends import runnable
    from patternc.diagnostics import PatternError

    if (ids is None) == (prompt is None):
        raise typer.BadParameter("give either --ids or --prompt", param_hint="--ids / --prompt")
    rows = _parse_ids(ids) if ids is not None else []
    dtypes = {
        "float32": "float32",
        "fp32": "float32",
        "bfloat16": "bfloat16",
        "bf16": "bfloat16",
        "float16": "float16",
        "fp16": "float16",
    }
    if dtype is not None and dtype not in dtypes:
        raise typer.BadParameter(f"unknown dtype {dtype!r}", param_hint="--dtype")

    report = RunReport(model, json_output, quiet)
    try:  # the torch backend, through the registry; every refusal is a PatternError with codes
        from patternc.backends import Parallel

        parallel = Parallel(tp=tp, pp=pp, fsdp=fsdp) if tp > 1 or pp > 1 or fsdp else None
        session = runnable("torch").session(
            device=device, dtype=dtypes[dtype] if dtype else None, compile=compile, parallel=parallel
        )
        loaded: Any = _bare_pattern(model)  # sized as `build` and `stats` size it, or None for a model
        session.open(
            model if loaded is None else loaded,
            origin=model,
            text=prompt is not None,
            tokenizer=Path(tokenizer) if tokenizer is not None else None,
        )
    except PatternError as error:
        report.fail(list(error.diagnostics), error.source)
    if not session.primary:  # another rank of a distributed launch: rank 0 reports
        quiet = report.quiet = report.silent = True
    if session.weights_from is None:
        from patternc.diagnostics import diag
        from patternc.source import Source

        report.note(
            diag(
                "P408",
                f"`{model}` holds no weights: running a random initialisation (seed 0)",
                None,
                help="convert trained weights into it: `patternc build … --weights CHECKPOINT`",
            ),
            Source("", model),
        )
    if prompt is not None:
        rows = [session.encode(text) for text in prompt]
        if not all(rows):
            raise typer.BadParameter("a prompt encodes to no tokens", param_hint="--prompt")
    vocab = session.spec.vocab_size
    if max(max(row) for row in rows) >= vocab:
        raise typer.BadParameter(
            f"ids must be below the vocabulary size {vocab}", param_hint="--prompt" if prompt is not None else "--ids"
        )
    width = max(len(row) for row in rows)
    from patternc.progress import TokenClock, watched

    clock = TokenClock(rows=len(rows), sync=session.sync, show=watched(quiet=quiet))
    clock.begin(max_new_tokens)
    try:
        new_ids = session.generate(
            rows,
            max_new_tokens,
            sample=sample,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            eos=eos,
            seed=seed,
            on_token=clock.tick,
        )
    except PatternError as error:  # sampling from logits that hold NaN (P407)
        report.fail(list(error.diagnostics), error.source)
    finally:
        clock.end()
    outputs: list[tuple[list[int], list[int], str | None]] = []
    for row, new in zip(rows, new_ids, strict=True):
        shown = [*row, *new] if full else new
        outputs.append((row, shown, session.decode(shown) if prompt is not None else None))
    if watched(quiet=quiet or json_output):
        typer.echo(clock.summary(width), err=True)
    report.done(outputs, clock, width, session.device, session.dtype, session.weights_from)


class RunReport:
    """How ``run`` tells its outcome: the output lines on stdout and diagnostics on stderr, or with ``--json``
    one ``RunOutput`` object on stdout whether it worked or not (``--quiet``: no notes on stderr)."""

    def __init__(self, model: str, json_output: bool, quiet: bool) -> None:
        self.model = model
        self.json_output = json_output
        self.quiet = quiet
        self.silent = False
        """Nothing on stdout: a rank other than 0 of a distributed launch (rank 0 prints the outcome)."""
        self.notes: list[Any] = []
        """(diagnostic, source) pairs: on stderr now, in the JSON object at the end."""

    def note(self, diagnostic: Any, source: Any) -> None:
        self.notes.append((diagnostic, source))
        if not (self.quiet or self.json_output):
            from patternc.render import render_text

            typer.echo(render_text([diagnostic], source), err=True, nl=False)

    def fail(self, diagnostics: list[Any], source: Any) -> NoReturn:
        if self.json_output:
            from patternc.commands.outputs import RunOutput, diagnostics_out

            payload = RunOutput(
                ok=False,
                model=self.model,
                device=None,
                dtype=None,
                weights=None,
                rows=[],
                timing=None,
                diagnostics=diagnostics_out(diagnostics, source),
            )
            typer.echo(json.dumps(payload.model_dump(mode="json"), indent=2, ensure_ascii=False))
        else:
            from patternc.render import render_text

            typer.echo(render_text(diagnostics, source), err=True, nl=False)
        raise typer.Exit(EXIT_ERRORS)

    def done(
        self,
        outputs: list[tuple[list[int], list[int], str | None]],
        clock: Any,
        width: int,
        device: str,
        dtype: str,
        weights: str | None,
    ) -> None:
        if self.silent:
            return
        if not self.json_output:
            for _, shown, text in outputs:
                typer.echo(_escape_lines(text) if text is not None else " ".join(str(t) for t in shown))
            return
        from patternc.commands.outputs import RowOut, RunOutput, TimingOut, diagnostics_out

        timing = TimingOut(
            prompt_tokens=width,
            new_tokens=clock.steps,
            rows=len(outputs),
            prefill_seconds=clock.prefill_seconds,
            decode_seconds=clock.decode_seconds,
            decode_tokens_per_second=clock.decode_rate(),
        )
        payload = RunOutput(
            ok=True,
            model=self.model,
            device=device,
            dtype=dtype,
            weights=weights,
            rows=[RowOut(prompt_ids=row, ids=shown, text=text) for row, shown, text in outputs],
            timing=timing,
            diagnostics=[d for diagnostic, source in self.notes for d in diagnostics_out([diagnostic], source)],
        )
        typer.echo(json.dumps(payload.model_dump(mode="json"), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.command(name="run")(run)
