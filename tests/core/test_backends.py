"""The backend registry (``patternc.backends``): discovery, clashes, the build targets, the contract."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import pytest

from patternc import backends
from patternc.backends import (
    Backend,
    BackendClashError,
    BuildOptions,
    BuildResult,
    UnknownBackendError,
    available,
    build_targets,
    for_target,
    load,
)


def _entry(name: str, value: str, dist: str) -> EntryPoint:
    ep = EntryPoint(name, value, backends.GROUP)
    return ep._for(SimpleNamespace(name=dist, version="1.0"))  # type: ignore[no-any-return]


class _Toy:
    name = "toy"
    description = "a toy backend"
    targets: Mapping[str, str] = MappingProxyType({"toy": "a toy output", "megatron": "another backend's target"})

    def check(self, spec: object, target: str) -> list[object]:
        return []

    def write(self, spec: object, out: Path, *, target: str, weights: str | None, options: BuildOptions) -> BuildResult:
        return BuildResult()


toy = _Toy()
solo = SimpleNamespace(name="solo", description="", targets={"toy": "a toy output"}, check=toy.check, write=toy.write)


def test_the_installed_backends_are_found_and_keep_the_contract() -> None:
    assert list(available()) == ["megatron", "torch", "transformers"]
    for name in available():
        backend = load(name)
        assert isinstance(backend, Backend) and backend.name == name and backend.targets


def test_every_build_target_has_one_backend() -> None:
    owners = {target: backend.name for target, backend in build_targets().items()}
    assert owners["megatron"] == "megatron" and owners["torch"] == "torch"
    assert {owners[t] for t in ("auto", "nemotron_h", "bamba", "vllm", "llama.cpp")} == {"transformers"}
    assert for_target("torch").name == "torch"
    with pytest.raises(UnknownBackendError, match="no installed backend writes `--target sglang`"):
        for_target("sglang")


def test_unknown_backend_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownBackendError, match="did you mean 'transformers'"):
        load("transformer")


def test_two_distributions_registering_one_name_is_an_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = [
        _entry("torch", "patternc_torch:backend", "patternc"),
        _entry("torch", "other_torch:backend", "other-dist"),
    ]
    monkeypatch.setattr(backends, "_entry_points", lambda: fakes)
    with pytest.raises(BackendClashError) as raised:
        load("torch")
    message = str(raised.value)
    assert "patternc 1.0 (patternc_torch:backend)" in message and "other-dist 1.0 (other_torch:backend)" in message
    with pytest.raises(BackendClashError):
        available()


def test_two_backends_writing_one_target_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = [
        _entry("megatron", "patternc.megatron_backend:backend", "patternc"),
        _entry("toy", f"{__name__}:toy", "toy-dist"),
    ]
    monkeypatch.setattr(backends, "_entry_points", lambda: fakes)
    with pytest.raises(BackendClashError, match="'megatron' and 'toy' both write `--target megatron`"):
        build_targets()


def test_a_third_party_target_is_a_build_target(monkeypatch: pytest.MonkeyPatch) -> None:
    from patternc.target_names import names_for, resolve_for

    monkeypatch.setattr(backends, "_entry_points", lambda: [_entry("solo", f"{__name__}:solo", "solo-dist")])
    assert names_for("build") == ["toy"]
    assert resolve_for("toy", "build").name == "toy"


def test_listing_names_targets_and_description() -> None:
    lines = backends.listing()
    assert lines[0].split("\t") == ["megatron", "megatron", load("megatron").description]
    assert lines[1].split("\t")[:2] == ["torch", "torch"]


def test_finding_backends_imports_no_heavy_library() -> None:
    code = (
        "import sys; from patternc.backends import build_targets; build_targets(); "
        "print(sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
