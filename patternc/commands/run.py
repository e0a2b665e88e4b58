"""``patternc run MODEL --ids "1 2 3"``: generate token ids with the torch backend (no tokenizer)."""

from __future__ import annotations

from typing import Annotated

import typer

EXIT_ERRORS, EXIT_USAGE = 1, 2


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


def run(
    model: Annotated[str, typer.Argument(help="A model directory (config.json + safetensors) or a config file.")],
    ids: Annotated[
        list[str], typer.Option("--ids", help='Prompt token ids, e.g. "1 2 3"; repeat for a batch (left-padded).')
    ],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=0, help="Tokens to generate.")] = 16,
    sample: Annotated[bool, typer.Option("--sample", help="Sample instead of greedy decoding.")] = False,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 1.0,
    top_k: Annotated[int, typer.Option("--top-k", min=0)] = 0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0)] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler.")] = 0,
    eos: Annotated[int | None, typer.Option("--eos", help="Stop a row at this id.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1…")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="float32, bfloat16 or float16.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Print the prompt ids too.")] = False,
) -> None:
    """Load MODEL with the torch backend and print the generated ids, one line per prompt."""
    rows = _parse_ids(ids)
    dtypes = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
              "float16": "float16", "fp16": "float16"}
    if dtype is not None and dtype not in dtypes:
        raise typer.BadParameter(f"unknown dtype {dtype!r}", param_hint="--dtype")

    import torch
    from patternc_torch import torch_model

    from patternc.diagnostics import PatternError
    from patternc.render import render_text

    try:
        lm = torch_model(model, device=device, dtype=getattr(torch, dtypes[dtype]) if dtype else None)
    except PatternError as error:
        typer.echo(render_text(error.diagnostics, error.source), nl=False)
        raise typer.Exit(EXIT_ERRORS) from None
    vocab = lm.spec.vocab_size
    if max(max(row) for row in rows) >= vocab:
        raise typer.BadParameter(f"ids must be below the vocabulary size {vocab}", param_hint="--ids")
    width = max(len(row) for row in rows)
    target = next(lm.parameters()).device
    input_ids = torch.zeros(len(rows), width, dtype=torch.long, device=target)
    mask = torch.zeros(len(rows), width, dtype=torch.bool, device=target)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = True
    generator = torch.Generator(device=target).manual_seed(seed)
    out = lm.generate(input_ids, max_new_tokens, attention_mask=mask, do_sample=sample, temperature=temperature,
                      top_k=top_k, top_p=top_p, eos_token_id=eos, generator=generator)
    for i, row in enumerate(rows):
        new = out[i, width:].tolist()
        typer.echo(" ".join(str(t) for t in ([*row, *new] if full else new)))


def register(app: typer.Typer) -> None:
    app.command(name="run")(run)
