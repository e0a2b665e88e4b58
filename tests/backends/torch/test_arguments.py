"""Hostile arguments and directories for the torch API: every one is a diagnostic, never torch's own error.

Found by an audit of the public API (2026-11-30): weights a directory held under other names were
ignored (a random model), integer tensors were cast silently, two names for one tensor were a silent
pick, and bad ids, devices or dtypes surfaced as IndexError, AssertionError or AttributeError.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from patternc_torch import write_model_dir  # noqa: E402
from patternc_torch.io import spec_to_config  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import patternc  # noqa: E402
from patternc import Limits  # noqa: E402
from patternc.diagnostics import PatternError  # noqa: E402
from tests.backends.torch.test_model import spec_for  # noqa: E402

IDS = torch.tensor([[1, 2, 3]])


def codes(error: pytest.ExceptionInfo[PatternError]) -> list[str]:
    return [d.code for d in error.value.diagnostics]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "m"
    model = patternc.torch_model(spec_for("M-M*-E"))
    model.init_weights(seed=5)  # not the weights a model without a checkpoint gets
    write_model_dir(model.spec, out, model.state_dict())
    return out


def copy_of(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


# -- directories -----------------------------------------------------------------------------------


def test_unindexed_shards_are_loaded_not_ignored(saved: Path, tmp_path: Path) -> None:
    directory = copy_of(saved, tmp_path)
    tensors = load_file(directory / "model.safetensors")
    names = sorted(tensors)
    (directory / "model.safetensors").unlink()
    save_file({n: tensors[n] for n in names[::2]}, directory / "model-00001-of-00002.safetensors")
    save_file({n: tensors[n] for n in names[1::2]}, directory / "model-00002-of-00002.safetensors")
    reference, loaded = patternc.torch_model(saved), patternc.torch_model(directory)
    fresh = patternc.torch_model(spec_for("M-M*-E"))
    with torch.no_grad():
        assert torch.equal(reference(IDS).logits, loaded(IDS).logits)
        assert not torch.equal(fresh(IDS).logits, loaded(IDS).logits)


@pytest.mark.parametrize(
    ("name", "code"), [("pytorch_model.bin", "P503"), ("model.gguf", "P504"), ("pytorch_model.bin.index.json", "P504")]
)
def test_weights_in_other_formats_are_refused_not_replaced_by_random_ones(
    saved: Path, tmp_path: Path, name: str, code: str
) -> None:
    directory = copy_of(saved, tmp_path)
    (directory / "model.safetensors").unlink()
    (directory / name).write_bytes(b"not read")
    with pytest.raises(PatternError) as error:
        patternc.torch_model(directory)
    assert codes(error) == [code]


def test_a_model_safetensors_that_is_a_directory_is_not_a_checkpoint(saved: Path, tmp_path: Path) -> None:
    directory = copy_of(saved, tmp_path)
    (directory / "model.safetensors").unlink()
    (directory / "model.safetensors").mkdir()
    with pytest.raises(PatternError) as error:
        patternc.torch_model(directory)
    assert codes(error) == ["P504"]


def test_a_config_file_ignores_unrelated_files_beside_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(spec_to_config(spec_for("M-"))))
    (tmp_path / "notes.bin").write_bytes(b"someone else's file")
    assert patternc.torch_model(tmp_path / "config.json")(IDS).logits.shape == (1, 3, 64)


def test_integer_and_fp8_tensors_are_refused_by_dtype(saved: Path, tmp_path: Path) -> None:
    directory = copy_of(saved, tmp_path)
    tensors = load_file(directory / "model.safetensors")
    tensors["backbone.norm_f.weight"] = tensors["backbone.norm_f.weight"].long()
    tensors["lm_head.weight"] = tensors["lm_head.weight"].to(torch.float8_e4m3fn)
    save_file(tensors, directory / "model.safetensors")
    with pytest.raises(PatternError) as error:
        patternc.torch_model(directory)
    assert codes(error) == ["P405"]
    notes = "\n".join(error.value.diagnostics[0].notes)
    assert "backbone.norm_f.weight: I64" in notes and "lm_head.weight: F8_E4M3" in notes


def test_two_names_for_one_tensor_are_reported(saved: Path, tmp_path: Path) -> None:
    directory = copy_of(saved, tmp_path)
    tensors = load_file(directory / "model.safetensors")
    tensors["model.norm_f.weight"] = tensors["backbone.norm_f.weight"].clone()
    save_file(tensors, directory / "model.safetensors")
    with pytest.raises(PatternError) as error:
        patternc.torch_model(directory)
    assert codes(error) == ["P404"]
    assert (
        "`backbone.norm_f.weight` and `model.norm_f.weight` both give `backbone.norm_f.weight`"
        in (error.value.diagnostics[0].notes[0])
    )


def test_experts_of_different_shapes_are_reported_by_name(saved: Path, tmp_path: Path) -> None:
    directory = copy_of(saved, tmp_path)
    tensors = load_file(directory / "model.safetensors")
    stacked = next(n for n in tensors if n.endswith(".experts.up_proj"))
    prefix = stacked.removesuffix(".up_proj")
    for e, expert in enumerate(tensors.pop(stacked)):  # hub layout, one tensor per expert; expert 0 too short
        tensors[f"{prefix}.{e}.up_proj.weight"] = expert if e else expert[:-1].clone()
    save_file(tensors, directory / "model.safetensors")
    with pytest.raises(PatternError) as error:
        patternc.torch_model(directory)
    assert set(codes(error)) == {"P403", "P404"}


# -- sources, devices, dtypes -----------------------------------------------------------------------


@pytest.mark.parametrize("source", [None, 5, b"/tmp", "", "   ", "/tmp/" + "a" * 5000])
def test_sources_that_are_no_model_are_p402(source: object) -> None:
    with pytest.raises(PatternError) as error:
        patternc.torch_model(source)  # type: ignore[arg-type]
    assert codes(error) == ["P402"]


def test_config_files_are_read_within_the_config_limits(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(PatternError) as error:
        patternc.torch_model(deep)
    assert codes(error) == ["P903"]
    large = tmp_path / "large.json"
    with large.open("wb") as handle:
        handle.truncate(17 * 2**20)
    with pytest.raises(PatternError) as error:
        patternc.torch_model(large)
    assert codes(error) == ["P902"]


@pytest.mark.parametrize("dtype", ["float16", "bf16", torch.float64])
def test_dtype_names_and_float_dtypes_build(dtype: object) -> None:
    model = patternc.torch_model(spec_for("M*-"), dtype=dtype)  # type: ignore[arg-type]
    assert model.lm_head.weight.dtype == (
        torch.float64 if dtype is torch.float64 else torch.float16 if dtype == "float16" else torch.bfloat16
    )


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float8_e4m3fn, "float8", 3])
def test_dtypes_a_model_cannot_compute_in_are_p407(dtype: object) -> None:
    with pytest.raises(PatternError) as error:
        patternc.torch_model(spec_for("M*-"), dtype=dtype)  # type: ignore[arg-type]
    assert codes(error) == ["P407"]


@pytest.mark.parametrize("device", ["abacus", 5.5, "xla"])
def test_devices_that_are_not_here_are_p407(device: object) -> None:
    with pytest.raises(PatternError) as error:
        patternc.torch_model(spec_for("M*-"), device=device)  # type: ignore[arg-type]
    assert codes(error) == ["P407"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_p407_in_the_api_and_the_cli(saved: Path) -> None:
    from typer.testing import CliRunner

    from patternc.cli import app

    with pytest.raises(PatternError) as error:
        patternc.torch_model(spec_for("M*-"), device="cuda")
    assert codes(error) == ["P407"]
    result = CliRunner().invoke(app, ["run", str(saved), "--ids", "1 2", "--device", "cuda"])
    assert result.exit_code == 1 and "error[P407]" in result.output and "Traceback" not in result.output


# -- inputs -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> object:
    return patternc.torch_model(spec_for("M-M*-E"))


BAD_IDS = {
    "beyond the vocabulary": torch.tensor([[1, 64]]),
    "negative": torch.tensor([[-1, 2]]),
    "float": torch.tensor([[1.0, 2.0]]),
    "bool": torch.tensor([[True, False]]),
    "one-dimensional": torch.tensor([1, 2]),
    "three-dimensional": torch.ones(1, 2, 2, dtype=torch.long),
    "empty row": torch.zeros(1, 0, dtype=torch.long),
    "no rows": torch.zeros(0, 3, dtype=torch.long),
    "a list": [[1, 2]],
}


@pytest.mark.parametrize("name", list(BAD_IDS))
def test_bad_ids_are_p407_in_forward_and_generate(model: object, name: str) -> None:
    for call in (lambda ids: model(ids), lambda ids: model.generate(ids, 2)):  # type: ignore[operator, attr-defined]
        with pytest.raises(PatternError) as error:
            call(BAD_IDS[name])
        assert codes(error) == ["P407"]


@pytest.mark.parametrize(
    "settings",
    [
        {"max_new_tokens": -1},
        {"max_new_tokens": 2.5},
        {"max_new_tokens": None},
        {"top_p": 1.5},
        {"top_k": -2},
        {"attention_mask": torch.ones(1, 4)},
    ],
)
def test_bad_generation_settings_are_p407(model: object, settings: dict[str, object]) -> None:
    arguments = {"max_new_tokens": 2} | settings
    with pytest.raises(PatternError) as error:
        model.generate(IDS, **arguments)  # type: ignore[attr-defined]
    assert codes(error) == ["P407"]


def test_a_state_of_another_batch_and_a_meta_model_are_p407(model: object) -> None:
    with pytest.raises(PatternError) as error:
        model(IDS, state=model.new_state(2))  # type: ignore[operator, attr-defined]
    assert codes(error) == ["P407"]
    with pytest.raises(PatternError) as error:
        patternc.torch_model(spec_for("M*-"), device="meta")(IDS)
    assert codes(error) == ["P407"]


def test_sampling_from_nan_logits_is_a_diagnostic() -> None:
    broken = patternc.torch_model(spec_for("M*-"))
    with torch.no_grad():
        broken.lm_head.weight.fill_(float("nan"))
    with pytest.raises(PatternError) as error:
        broken.generate(IDS, 2, do_sample=True)
    assert codes(error) == ["P407"]


def test_a_huge_max_new_tokens_allocates_only_what_it_uses(model: object) -> None:
    first = int(model.generate(IDS, 1)[0, -1])  # type: ignore[attr-defined]
    out = model.generate(IDS, 10**12, eos_token_id=first)  # type: ignore[attr-defined]
    assert out.tolist() == [[1, 2, 3, first]]


# -- writing ----------------------------------------------------------------------------------------


def test_write_model_dir_refuses_what_torch_model_would_refuse(tmp_path: Path) -> None:
    spec = spec_for("M*-")
    state = patternc.torch_model(spec).state_dict()
    cases = (
        (state | {"junk": torch.zeros(1)}, "P404"),
        ({"backbone.norm_f.weight": torch.zeros(1)}, "P403"),
        (state | {"backbone.norm_f.weight": "not a tensor"}, "P405"),
    )
    for broken, code in cases:
        with pytest.raises(PatternError) as error:
            write_model_dir(spec, tmp_path / "out", broken)
        assert code in codes(error)
        assert not (tmp_path / "out").exists()


def test_tensors_sharing_memory_are_written_apart(tmp_path: Path) -> None:
    spec = spec_for("M*-")
    state = dict(patternc.torch_model(spec).state_dict())
    shared = state["backbone.layers.1.mixer.q_proj.weight"]
    state["backbone.layers.1.mixer.k_proj.weight"] = shared[: state["backbone.layers.1.mixer.k_proj.weight"].shape[0]]
    write_model_dir(spec, tmp_path / "out", state)
    loaded = patternc.torch_model(tmp_path / "out")
    assert torch.equal(loaded.backbone.layers[1].mixer.k_proj.weight, state["backbone.layers.1.mixer.k_proj.weight"])


# -- the pattern API --------------------------------------------------------------------------------


def test_pattern_api_edges() -> None:
    with pytest.raises(PatternError) as error:
        patternc.to_layers_block_type("MX")
    assert codes(error) == ["P001"]
    with pytest.raises(PatternError) as error:
        patternc.from_layers_block_type("mamba")  # type: ignore[arg-type]
    assert codes(error) == ["P014"]
    with pytest.raises(PatternError) as error:
        patternc.from_layers_block_type(["mamba"] * 100_001)
    assert codes(error) == ["P011"]
    with pytest.raises(ValueError):
        Limits(max_chars=-1)
    assert "torch_model" in dir(patternc) and "torch_model" in patternc.__all__


def test_a_directory_that_cannot_be_listed_is_p510(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = copy_of(saved, tmp_path)
    (directory / "model.safetensors").rename(directory / "weights.safetensors")
    real = Path.iterdir

    def denied(self: Path):  # type: ignore[no-untyped-def]
        if self == directory:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(PatternError) as error:
        patternc.torch_model(directory)
    assert codes(error) == ["P510"]
