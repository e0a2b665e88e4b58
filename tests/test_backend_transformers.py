"""The transformers backend, found through the entry point, against transformers' real config class."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import patternc
from patternc.backends import UnknownBackendError, available, load


def test_backend_is_discovered_through_the_entry_point_group() -> None:
    assert available()["transformers"] == "patternc_transformers:backend"
    assert load("transformers").name == "transformers"


def test_unknown_backend_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownBackendError, match="did you mean 'transformers'"):
        load("transformer")


def test_listing_backends_does_not_import_them() -> None:
    code = (
        "import sys; from patternc.backends import available; available(); "
        "print('patternc_transformers' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_wheel_holds_only_namespaced_top_level_packages(tmp_path: Path) -> None:
    """Nothing generic (``backends``, ``schemas``, ``tests``) may land at the top of site-packages."""
    root = Path(__file__).resolve().parent.parent
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
    assert {t for t in tops if not t.endswith(".dist-info")} == {"patternc", "patternc_torch", "patternc_transformers"}
    assert "patternc/grammar/pattern.lark" in names
    assert "patternc/py.typed" in names


@pytest.mark.parametrize(
    "text",
    ["M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-", "MEMEM*EMEMEM*EME/*E", "MMMM", "M-ME*/*E/*E"],
)
def test_emitted_fields_build_the_same_stack_in_transformers(text: str) -> None:
    pytest.importorskip("transformers")
    pattern = patternc.parse(text)
    config = load("transformers").config(pattern)
    assert config.hybrid_override_pattern == pattern.flat
    assert config.num_hidden_layers == pattern.num_layers
    if pattern.mtp is not None:
        assert config.mtp_hybrid_override_pattern == pattern.mtp.flat
        assert config.num_nextn_predict_layers == pattern.mtp.depths


def test_legacy_vocabulary_is_remapped_by_transformers() -> None:
    pytest.importorskip("transformers")
    from transformers import NemotronHConfig

    pattern = patternc.parse("M-M*-/*E")
    fields = load("transformers").emit(pattern, vocabulary="legacy")
    assert fields["layers_block_type"][:4] == ["mamba", "mlp", "mamba", "attention"]
    config = NemotronHConfig(mtp_layers_block_type=fields["mtp_layers_block_type"])
    assert config.mtp_layers_block_type == ["full_attention", "moe"]


def test_kinds_transformers_lacks_are_refused_with_a_diagnostic() -> None:
    with pytest.raises(patternc.PatternError) as error:
        load("transformers").emit(patternc.parse("MG*-"))
    assert [d.code for d in error.value.diagnostics] == ["P015"]
