"""The published hub configs build with the torch backend on the meta device, tensor for tensor the
model transformers instantiates from the same config (names mapped, shapes equal, nothing missing)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.weights import check_names, to_backend_names  # noqa: E402

import patternc  # noqa: E402

HUB = Path(__file__).resolve().parents[2] / "fixtures" / "hub"
CONFIGS = sorted(HUB.glob("*/config.json"))


def test_every_hub_fixture_is_built() -> None:
    assert len(CONFIGS) == 3


def _super_shaped() -> dict[str, Any]:
    """tests/benchmarks/meta_build.py's config: Nemotron 3 Super's sizes (a script, loaded by path)."""
    spec = importlib.util.spec_from_file_location(
        "meta_build", Path(__file__).parents[2] / "benchmarks" / "meta_build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.SUPER)


@pytest.mark.parametrize("path", [*CONFIGS, None], ids=lambda p: p.parent.name if p else "super-shaped")
def test_hub_config_builds_the_transformers_model_on_meta(path: Path | None) -> None:
    raw = json.loads(path.read_text(encoding="utf-8")) if path is not None else _super_shaped()
    ours = patternc.torch_model(path if path is not None else raw, device="meta", dtype=torch.bfloat16)
    raw.pop("auto_map", None)  # never remote code: the installed NemotronH class
    config = transformers.NemotronHConfig(**{k: v for k, v in raw.items() if k != "model_type"})
    with torch.device("meta"):
        reference = transformers.NemotronHForCausalLM(config)
    theirs = to_backend_names(dict(reference.state_dict()), ours.spec)
    mine = {name: t for name, t in ours.state_dict().items() if not name.startswith("mtp.")}
    missing, unexpected, mismatched = check_names(theirs, mine, ours.spec.tie_embeddings)
    assert (missing, unexpected, mismatched) == ([], [], [])
    assert sum(t.numel() for t in mine.values()) == sum(t.numel() for t in theirs.values())
    if path is None:  # Super without its MTP depth: NVIDIA reports 120.6B in total
        assert 120.6e9 <= sum(t.numel() for t in mine.values()) < 120.7e9


RELEASED = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "hub2").glob("*/config.json"))
REMOTE_CODE_ONLY = {
    "MiniMax-M1": "minimax_m1 is remote code: transformers has no class for it (never trust_remote_code)"
}
"""Released configs whose ``model_type`` transformers does not ship: there is no reference to build."""
NOT_A_MODEL = {"Kimi-K3": "its `hidden_act: situ` is not an activation transformers has: `check` exits 1 (P906)"}
"""Released configs patternc refuses to read (tested in tests/families/)."""


def _released_reference(raw: dict[str, Any]) -> Any:
    """transformers' causal LM for a released config, on meta (its own class: never remote code)."""
    raw = {k: v for k, v in raw.items() if k not in ("auto_map", "quantization_config")}
    config = transformers.AutoConfig.for_model(**raw)
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("path", RELEASED, ids=lambda p: p.parent.name)
def test_released_config_builds_the_transformers_model_on_meta(path: Path) -> None:
    """Every released config of every family builds on meta with exactly the tensors transformers'
    class has (names mapped by the loader, shapes equal, the same count): what a checkpoint of the
    family must give the model, checked at the released sizes."""
    from patternc_torch.support import unsupported

    from patternc.config import read_config

    name = path.parent.name
    if name in NOT_A_MODEL:
        assert read_config(json.loads(path.read_text(encoding="utf-8"))).spec is None, NOT_A_MODEL[name]
        return
    raw = json.loads(path.read_text(encoding="utf-8"))
    spec = read_config(raw).spec
    assert spec is not None
    assert [d.message for d in unsupported(spec)] == []
    if name in REMOTE_CODE_ONLY:
        patternc.torch_model(path, device="meta", dtype=torch.bfloat16)
        return
    ours = patternc.torch_model(path, device="meta", dtype=torch.bfloat16)
    reference = _released_reference(raw)
    theirs = to_backend_names(dict(reference.state_dict()), ours.spec)
    mine = {n: t for n, t in ours.state_dict().items() if not n.startswith("mtp.")}
    missing, unexpected, mismatched = check_names(theirs, mine, ours.spec.tie_embeddings)
    assert (missing, unexpected, mismatched) == ([], [], [])
    assert sum(t.numel() for t in mine.values()) == sum(t.numel() for t in theirs.values())
