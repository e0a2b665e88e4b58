"""The published hub configs build with the torch backend on the meta device, tensor for tensor the
model transformers instantiates from the same config (names mapped, shapes equal, nothing missing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from patternc_torch.weights import check_names, to_backend_names  # noqa: E402

import patternc  # noqa: E402

HUB = Path(__file__).resolve().parent / "fixtures" / "hub"
CONFIGS = sorted(HUB.glob("*/config.json"))


def test_every_hub_fixture_is_built() -> None:
    assert len(CONFIGS) == 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_hub_config_builds_the_transformers_model_on_meta(path: Path) -> None:
    ours = patternc.torch_model(path, device="meta", dtype=torch.bfloat16)
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.pop("auto_map", None)  # never remote code: the installed NemotronH class
    config = transformers.NemotronHConfig(**{k: v for k, v in raw.items() if k != "model_type"})
    with torch.device("meta"):
        reference = transformers.NemotronHForCausalLM(config)
    theirs = to_backend_names(dict(reference.state_dict()), ours.spec)
    mine = {name: t for name, t in ours.state_dict().items() if not name.startswith("mtp.")}
    missing, unexpected, mismatched = check_names(theirs, mine, ours.spec.tie_embeddings)
    assert (missing, unexpected, mismatched) == ([], [], [])
    assert sum(t.numel() for t in mine.values()) == sum(t.numel() for t in theirs.values())
