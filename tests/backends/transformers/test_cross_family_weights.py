"""``build --target G --weights`` of a checkpoint of family F ≠ G: every pair the canonical map finds exact.

Each family's tiny config (``test_same_family_weights.tiny_config``, plus an all-dense LFM2-MoE) is
read by patternc and mapped; every *other* family the canonical map finds exact for it is a pair
whose weights must convert through ``layouts.py``'s logical weights: built from the source's
``save_pretrained`` directory, loaded with ``AutoModelForCausalLM`` into the target's class, and run
on the same tokens, the logits equal the source model's (max |Δ| ≤ 1e-5 in fp32).

``EXACT_PAIRS`` is what the map finds on these configs; a change to the map that adds or removes a
pair fails ``test_the_map_finds_these_exact_pairs`` until the pair is listed (and so converted here)
or the reason is understood.  docs/backends/transformers.md lists the same pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from patternc_transformers.layouts import WEIGHT_ARCHS  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from patternc.canonical import canonical_map  # noqa: E402
from patternc.cli import app  # noqa: E402
from patternc.config import read_config  # noqa: E402
from tests.backends.transformers.test_same_family_weights import COVERED, _readable, tiny_config  # noqa: E402

TOLERANCE = 1e-5


def _sources() -> dict[str, Any]:
    out: dict[str, Any] = {name: (lambda name=name: tiny_config(name)) for name in COVERED}

    # LFM2-MoE whose every layer is dense (num_dense_layers = all): exactly LFM2
    def dense() -> Any:
        config = tiny_config("lfm2_moe")
        config.num_dense_layers = config.num_hidden_layers
        return config

    out["lfm2_moe-dense"] = dense
    return out


SOURCES = _sources()

EXACT_PAIRS: set[tuple[str, str]] = {
    ("lfm2", "lfm2_moe"),  # LFM2-MoE with every layer dense is LFM2
    ("lfm2_moe-dense", "lfm2"),
    ("mamba2", "nemotron_h"),  # a Nemotron-H of Mamba2 layers only (the reverse: test_build.py)
}
"""(source, other exact family) the canonical map finds on these tiny configs."""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    root = tmp_path_factory.mktemp("cross")
    out: dict[str, tuple[Path, Any]] = {}
    for index, (name, make) in enumerate(sorted(SOURCES.items())):
        torch.manual_seed(100 + index)
        model = transformers.AutoModelForCausalLM.from_config(make()).eval()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.add_(0.2 * torch.randn_like(tensor))
        model.save_pretrained(root / name)
        _readable(root / name)
        out[name] = (root / name, model)
    return out


def _exact_others(name: str, directory: Path) -> list[str]:
    reading = read_config(directory)
    assert reading.spec is not None, (name, reading.diagnostics)
    return [arch for arch in canonical_map(reading.spec).matched if arch != reading.spec.source]


def test_the_map_finds_these_exact_pairs(saved: dict[str, tuple[Path, Any]]) -> None:
    found = {(name, other) for name, (directory, _) in saved.items() for other in _exact_others(name, directory)}
    assert found == EXACT_PAIRS


@pytest.mark.parametrize(("name", "target"), sorted(EXACT_PAIRS))
def test_an_exact_pair_converts_with_equal_logits(
    name: str, target: str, saved: dict[str, tuple[Path, Any]], tmp_path: Path
) -> None:
    directory, model = saved[name]
    source_family = read_config(directory).spec.source  # type: ignore[union-attr]
    assert source_family in WEIGHT_ARCHS and target in WEIGHT_ARCHS, "an exact pair needs a layout on both sides"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["build", str(directory), "-o", str(out), "--target", target, "--weights", str(directory)]
    )
    assert result.exit_code == 0, result.output
    built, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert built.config.model_type == target
    ids = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        diff = (model(ids, use_cache=False).logits - built.eval()(ids, use_cache=False).logits).abs().max().item()
    assert diff <= TOLERANCE, f"{name} -> {target}: max |Δlogits| = {diff}"
