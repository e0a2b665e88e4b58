"""The sequence every family's parity test runs against transformers, on the same weights.

``compare_to_reference``: the full forward, step-by-step decoding (a prefill of ``split`` tokens,
then one token at a time), a left-padded batch (the mask and the positions ``generate`` passes) and
its continuation token by token, greedy tokens.  What differs between families comes in as
parameters and hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from patternc_torch.io import build, load_weights
from patternc_torch.support import unsupported

from patternc.config import read_config


def build_pair(
    model_cls: Any, config: Any, randomize: Callable[[Any, int], None], seed: int, raw: dict[str, Any] | None = None
) -> tuple[Any, Any, Any]:
    """transformers' model of ``config`` (``randomize(model, seed)``'s weights) and the backend's, read
    from ``raw`` (the config's dict by default) by its family and loaded from transformers' state dict."""
    reading = read_config(raw if raw is not None else config.to_dict())
    assert reading.ok and reading.spec is not None, [d.message for d in reading.diagnostics]
    spec = reading.spec
    assert unsupported(spec) == [], [d.message for d in unsupported(spec)]
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    hf = model_cls(config).eval()
    randomize(hf, seed)
    ours = build(spec)
    load_weights(ours, dict(hf.state_dict()), "<transformers>")
    return hf, ours, spec


def ids(vocab: int, seed: int, batch: int, seq: int) -> Any:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))


def generate_reference(hf: Any, prompt: Any, new: int) -> Any:
    """transformers' greedy tokens with an explicit all-ones mask (a prompt id equal to
    ``pad_token_id`` is no padding)."""
    mask = torch.ones_like(prompt)
    return hf.generate(prompt, attention_mask=mask, max_new_tokens=new, do_sample=False, pad_token_id=0)


def greedy_reference(layer_types: list[str], hf: Any, prompt: Any, new: int) -> Any:
    """``generate_reference``; by full forwards when no layer is ``full_attention`` (transformers'
    cache cannot generate without an attention layer).  ``partial(greedy_reference, layer_types)``: a
    ``greedy`` hook of ``compare_to_reference``."""
    if "full_attention" in layer_types:
        return generate_reference(hf, prompt, new)
    out = prompt
    for _ in range(new):
        out = torch.cat([out, hf(out, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return out


def _gap(a: Any, b: Any) -> float:
    return float((a - b).abs().max())


def compare_to_reference(
    hf: Any,
    ours: Any,
    *,
    vocab: int,
    seed: int,
    tol: float,
    seq: int,
    padded_seq: int = 12,
    split: int | None = None,
    label: Any = None,
    can_step: bool = True,
    after_steps: Callable[[Any], None] | None = None,
    cached_reference: Callable[..., Any] | None = None,
    padded_reference: Callable[[Any, Any, int], Any] | None = None,
    greedy: Callable[[Any, Any, int], Any] = generate_reference,
    eos_token_id: int | None = None,
) -> None:
    """The full forward over ``seq`` tokens; step-by-step decoding (``split`` tokens, 1 + seed % 7 by
    default, then one at a
    time; ``can_step``: the one-token decode path serves the steps; ``after_steps(state)``: the
    family's checks of the state); a left-padded batch of ``padded_seq`` tokens and its last three
    token by token; 8 greedy tokens after a 6-token prompt: all within ``tol`` of transformers.

    ``cached_reference(hf, tokens, split, mask=None)``: the steps are compared with its logits (the
    reference's own decoding through its cache) instead of its full forward.  ``padded_reference(ids,
    mask, pad)``: the padded batch's reference logits instead of transformers' padded forward.
    ``greedy(hf, prompt, new)``: the reference tokens; ``eos_token_id``: where ours stops too."""
    split = 1 + seed % 7 if split is None else split
    tokens = ids(vocab, seed, 2, seq)
    with torch.no_grad():
        ref = hf(tokens, use_cache=False).logits
        assert torch.isfinite(ref).all()
        full = ours(tokens).logits
        assert _gap(full, ref) <= tol, (label, "full", _gap(full, ref))
        state = ours.new_state(2, 4)  # small on purpose: the caches must grow
        steps = [ours(tokens[:, :split], state=state).logits]
        if can_step:
            assert ours._can_step(state), (label, "the one-token decode path must serve the steps")
        steps += [ours(tokens[:, i : i + 1], state=state).logits for i in range(split, seq)]
        if cached_reference is not None:
            ref = cached_reference(hf, tokens, split)
        assert _gap(torch.cat(steps, dim=1), ref) <= tol, (label, "step")
        if after_steps is not None:
            after_steps(state)

        n, pad = padded_seq, 1 + seed % 5
        tokens = ids(vocab, seed + 1, 2, n)
        mask = torch.ones(2, n, dtype=torch.long)
        mask[1, :pad] = 0
        tokens[1, :pad] = 0
        positions = (mask.cumsum(1) - 1).clamp(min=0)  # what transformers' generate passes for left padding
        if padded_reference is not None:
            ref = padded_reference(tokens, mask, pad)
        else:
            ref = hf(tokens, attention_mask=mask, position_ids=positions, use_cache=False).logits
        padded = ours(tokens, attention_mask=mask).logits
        assert float((padded - ref)[mask.bool()].abs().max()) <= tol, (label, "left-padded")
        state = ours.new_state(2, 4)
        ours(tokens[:, :-3], attention_mask=mask[:, :-3], state=state)
        tail = [ours(tokens[:, i : i + 1], state=state).logits for i in range(n - 3, n)]
        if cached_reference is not None:
            ref = cached_reference(hf, tokens, n - 3, mask)
        assert _gap(torch.cat(tail, dim=1), ref[:, -3:]) <= tol, (label, "padded decode")

        prompt = tokens[:1, :6]
        expected = greedy(hf, prompt, 8)
        got = ours.generate(prompt, max_new_tokens=8, eos_token_id=eos_token_id)
    assert torch.equal(got, expected), (label, got, expected)
