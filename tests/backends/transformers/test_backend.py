"""The transformers backend, found through the entry point, keeping the registry's contract against
transformers' real config classes."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import patternc
from patternc import families
from patternc.backends import BuildOptions, available, for_target, load
from patternc.model import ModelSpec
from patternc.presets import spec_for_pattern


def _spec(text: str) -> ModelSpec:
    analysis = patternc.analyze(text)
    assert analysis.pattern is not None
    sized = spec_for_pattern(analysis.pattern, analysis.source_map)
    assert sized.reading is not None and sized.reading.spec is not None
    return sized.reading.spec


def test_backend_is_discovered_through_the_entry_point_group() -> None:
    assert available()["transformers"] == "patternc_transformers:backend"
    backend = load("transformers")
    assert backend.name == "transformers"
    # one target per model family (the backend's targets derive from the family list), plus its own
    assert {"auto", *families.names(), "vllm", "llama.cpp"} == set(backend.targets)
    older = {"nemotron_h", "bamba", "granitemoehybrid", "mamba2", "jamba", "qwen3_next", "zamba2"}
    assert older <= set(families.names())
    assert for_target("vllm") is backend


def test_listing_backends_does_not_import_them() -> None:
    code = (
        "import sys; from patternc.backends import available; available(); "
        "print('patternc_transformers' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_wheel_holds_only_namespaced_top_level_packages(tmp_path: Path) -> None:
    """Nothing generic (``backends``, ``schemas``, ``tests``) may land at the top of site-packages."""
    root = Path(__file__).resolve().parents[3]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(root),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("patternc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert {t for t in tops if not t.endswith(".dist-info")} == {
        "patternc",
        "patternc_torch",
        "patternc_transformers",
        "patternc_checkpoint",
    }
    assert "patternc/grammar/pattern.lark" in names
    assert "patternc/py.typed" in names


def test_check_says_what_a_target_cannot_express_without_writing(tmp_path: Path) -> None:
    backend = load("transformers")
    spec = _spec("M-M*-")
    assert backend.check(spec, "nemotron_h") == [] and backend.check(spec, "auto") == []
    refused = backend.check(_spec("M*E"), "mamba2")
    assert [d.code for d in refused] == ["P501"] and refused[0].notes
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("text", ["M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-", "MEMEM*EMEMEM*EME/*E", "M-ME*/*E/*E"])
def test_written_directory_builds_the_same_stack_in_transformers(text: str, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from transformers import AutoConfig

    spec = _spec(text)
    result = load("transformers").write(
        spec, tmp_path / "out", target="nemotron_h", weights=None, options=BuildOptions()
    )
    assert result.ok and result.out_dir == tmp_path / "out" and result.files == ["config.json"]
    config = AutoConfig.from_pretrained(tmp_path / "out")
    assert config.hybrid_override_pattern == spec.pattern.flat
    assert config.num_hidden_layers == spec.pattern.num_layers
    if spec.pattern.mtp is not None:
        assert config.mtp_hybrid_override_pattern == spec.pattern.mtp.flat
        assert config.num_nextn_predict_layers == spec.pattern.mtp.depths


def test_write_refuses_with_diagnostics_and_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    backend = load("transformers")
    refused = backend.write(_spec("M*E"), tmp_path / "m", target="mamba2", weights=None, options=BuildOptions())
    assert not refused.ok and refused.out_dir is None and [d.code for d in refused.diagnostics] == ["P501"]
    assert not (tmp_path / "m").exists()
