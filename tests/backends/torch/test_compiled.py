"""The compiled decode step (``patternc_torch.compiled``): exact against the eager step, and every
fallback to the eager step (no compiler, a compile failure, a disagreement, no compilable layer).

One model is compiled for the whole module (Inductor takes tens of seconds even for a tiny stack: those
tests are marked slow); the fallback tests replace the compiler and compile nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from patternc_torch import compiled, write_model_dir  # noqa: E402
from patternc_torch.io import build, torch_model  # noqa: E402

from patternc.cli import app  # noqa: E402
from patternc.kinds import LayerKind  # noqa: E402
from tests.backends.torch.test_model import spec_for  # noqa: E402
from tests.backends.torch.test_parity import _randomize  # noqa: E402

NEEDS_COMPILER = pytest.mark.skipif(
    compiled.compiler_missing(torch.device("cpu")) is not None, reason="no C++ compiler for Inductor"
)


def compiles(test: Any) -> Any:
    """A test that runs Inductor: tens of seconds of CPU for the module's one model (minutes on a busy
    machine), so marked slow; skipped without a C++ compiler."""
    return pytest.mark.slow(NEEDS_COMPILER(test))


PATTERN = "M*E-"
"""Two compiled runs around an eager one: ``M*`` | ``E`` (MoE picks experts by value) | ``-``."""


def _model(pattern: str = PATTERN, seed: int = 0) -> Any:
    model = build(spec_for(pattern))
    _randomize(model, seed)
    return model.eval()


def _prompt(batch: int = 2, length: int = 9) -> Any:
    return torch.randint(0, 64, (batch, length), generator=torch.Generator().manual_seed(1))


def _steps(model: Any, plan_of: Any, prompt: Any, new: int) -> Any:
    """Logits of ``new`` one-token steps after ``prompt`` (greedy), through the plan ``plan_of(state)``."""
    with torch.no_grad():
        state = model.new_state(prompt.shape[0], 4)  # small: the KV buffers grow while compiled
        out = model(prompt, state=state, logits_to_keep=1)
        assert model._can_step(state)
        plan = plan_of(state)
        logits = [out.logits]
        for _ in range(new):
            nxt = logits[-1][:, -1].argmax(-1, keepdim=True)
            logits.append(model._step(nxt, state, plan).logits)
        return torch.cat(logits, dim=1)


@pytest.fixture(scope="module")
def compiled_model() -> Iterator[Any]:
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback: this model compiles
        model.generate(_prompt(), 2, compile=True)
    yield model


@compiles
def test_compiled_steps_equal_the_eager_steps(compiled_model: Any) -> None:
    model = compiled_model
    decision = model._compiled
    assert decision.reason is None and len(decision.compiled) == 2 and decision.compiled_layers == 3
    prompt = _prompt()
    eager = _steps(model, lambda state: model._decode_plan(), prompt, 12)
    fast = _steps(model, lambda state: compiled.compiled_plan(model, model._decode_plan(), state), prompt, 12)
    assert float((fast - eager).abs().max()) <= 1e-5
    # the plan really runs compiled regions for M* and -, and MoE's eager step in between
    with torch.no_grad():
        state = model.new_state(2, 16)
        model(prompt, state=state)
        steps, _ = compiled.compiled_plan(model, model._decode_plan(), state)
    assert len(steps) == 3 and [s.__name__ for s in steps] == ["region", "step", "region"]


@compiles
def test_compiled_generate_picks_the_eager_tokens(compiled_model: Any) -> None:
    model = compiled_model
    prompt = _prompt()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fast = model.generate(prompt, 10, compile=True)
    assert torch.equal(fast, model.generate(prompt, 10, compile=False))
    assert torch.equal(fast, model.generate(prompt, 10))  # the default is the eager step


@compiles
def test_new_weights_reach_the_compiled_step(compiled_model: Any) -> None:
    """The compiled regions are kept, the closures over the weights are rebuilt on every generate."""
    model = compiled_model
    prompt = _prompt()
    with torch.no_grad():
        model.backbone.layers[1].mixer.o_proj.weight.mul_(-2.0)
    try:
        assert torch.equal(model.generate(prompt, 8, compile=True), model.generate(prompt, 8, compile=False))
    finally:
        with torch.no_grad():
            model.backbone.layers[1].mixer.o_proj.weight.div_(-2.0)


def _fallback(model: Any, match: str) -> None:
    prompt = _prompt()
    want = model.generate(prompt, 6, compile=False)
    with pytest.warns(RuntimeWarning, match=match):
        got = model.generate(prompt, 6, compile=True)
    assert torch.equal(got, want)
    assert model._compiled is not None and not model._compiled.compiled
    with warnings.catch_warnings():  # warned once per model
        warnings.simplefilter("error", RuntimeWarning)
        assert torch.equal(model.generate(prompt, 6, compile=True), want)


def test_no_compiler_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "compiler_missing", lambda device: "no C++ compiler (test)")
    _fallback(_model(), "no C\\+\\+ compiler")


def test_compile_failure_falls_back_with_the_state_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fn: Any, **kwargs: Any) -> Any:
        def run(steps: Any, h: Any, state: Any, start: int, rope: Any) -> Any:
            steps[0](h, state, start, rope)  # updates the (rehearsal) state, then fails like Inductor
            raise RuntimeError("C++ compile error (test)")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    _fallback(_model(), "compiling the decode step failed .*C\\+\\+ compile error")


def test_disagreeing_compiled_step_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(fn: Any, **kwargs: Any) -> Any:
        return lambda steps, h, state, start, rope: fn(steps, h, state, start, rope) * 1.001

    monkeypatch.setattr(torch, "compile", wrong)
    _fallback(_model(), "disagrees with the eager step")


def test_eager_only_kinds_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in (LayerKind.MAMBA2, LayerKind.ATTENTION, LayerKind.MLP):
        monkeypatch.setitem(compiled.EAGER_KINDS, kind, f"{kind} kept eager (test)")
    _fallback(_model(), "no layer of this model compiles")


def test_regions_cut_at_eager_kinds() -> None:
    cut = compiled.regions(list("M*E-EEG"), [f"step{i}" for i in range(7)])  # type: ignore[misc]
    assert [(c, len(run)) for c, run in cut] == [(True, 2), (False, 1), (True, 1), (False, 2), (True, 1)]


def test_a_single_new_token_or_a_padded_batch_compiles_nothing() -> None:
    """One new token needs no decode step; a padded batch takes the full forward (no step at all)."""
    model = _model()
    model.generate(_prompt(), 1, compile=True)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, :3] = False
    model.generate(_prompt(), 4, attention_mask=mask, compile=True)
    assert model._compiled is None


def test_run_compile_option_reaches_generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``patternc run --compile`` decodes through ``compiled_plan`` (here without a compiler: the eager
    tokens, the fallback warned); ``--no-compile`` and no option never ask for it."""
    write_model_dir(spec_for("M*-"), tmp_path)
    asked: list[bool] = []
    real = compiled.compiled_plan

    def spy(model: Any, plan: Any, state: Any) -> Any:
        asked.append(True)
        return real(model, plan, state)

    monkeypatch.setattr(compiled, "compiled_plan", spy)
    monkeypatch.setattr(compiled, "compiler_missing", lambda device: "no C++ compiler (test)")
    runner = CliRunner()
    args = ["run", str(tmp_path), "--ids", "5 6 7", "-n", "4", "--device", "cpu"]
    plain = runner.invoke(app, args)
    off = runner.invoke(app, [*args, "--no-compile"])
    assert plain.exit_code == off.exit_code == 0 and not asked
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        on = runner.invoke(app, [*args, "--compile"])
    assert on.exit_code == 0, on.output
    assert asked and on.stdout.strip() == plain.stdout.strip()
    expected = torch_model(tmp_path).generate(torch.tensor([[5, 6, 7]]), 4)[0, 3:].tolist()
    assert plain.stdout.strip() == " ".join(map(str, expected))
