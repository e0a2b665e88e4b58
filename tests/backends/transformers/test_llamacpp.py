"""llama.cpp: the `llama.cpp` profile's verdicts and `build --target llama.cpp`, with llama.cpp where present.

Three layers, each skipped cleanly when its tools are absent:

1. The profile's spec rules (P317-P319) and the layout ``build --target llama.cpp`` writes: hub names,
   one tensor per expert, ``hybrid_override_pattern``, no MoE keys on a dense config, the tokenizer
   copied.  transformers loads the directory back to the source's logits, so the layout is the same
   model.  Needs torch and transformers only.
2. llama.cpp's own converter (``convert_hf_to_gguf.py``, from llama-cpp-python 0.3.36's source
   package) turns dense, MoE and MTP directories into GGUFs, while the transformers-layout
   directories of the same models do not convert.  The converter is found through
   ``PATTERNC_LLAMA_CPP_CONVERTER`` (else ``<cache>/patternc/llama.cpp/llama.cpp/convert_hf_to_gguf.py``, where
   ``.ci/run`` puts it) and run by ``PATTERNC_LLAMA_CPP_PYTHON`` (else ``<cache>/patternc/llama.cpp/venv/bin/python``),
   a Python with the transformers the converter pins (4.57.6): under transformers >= 5.3 the
   converter reads every Nemotron-H config through ``NemotronHConfig``, whose MoE defaults make any
   dense model (NVIDIA's too) convert as ``nemotron_h_moe``, so such a Python is skipped.
3. llama.cpp's runtime (``llama_cpp``, llama-cpp-python 0.3.36, which compiles llama.cpp: CI does
   not install it): logits of each GGUF match ``patternc.torch_model`` of the directory (f32 cache),
   and the profile's refusals are what llama.cpp does (aborts, load failures, another model).

The converter reads the tokenizer, and only tokenizers whose pre-tokenizer it recognises: the
tests rebuild GPT-2's from ``models/ggml-vocab-gpt-2.gguf`` beside the converter (so vocab 50264).
Sources set ``time_step_min: 0``: transformers and patternc clamp dt at it and llama.cpp does not,
which docs/targets.md reports; without the clamp the outputs agree to float rounding.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patternc.config import read_config
from patternc.targets import check_target

# --- 1a. the profile's rules that read a config (no heavy dependency) ------------------------------

BASE: dict[str, Any] = {
    "model_type": "nemotron_h",
    "hybrid_override_pattern": "M-M*-",
    "vocab_size": 256,
    "hidden_size": 64,
    "mamba_num_heads": 4,
    "mamba_head_dim": 16,
    "expand": 1,
    "n_groups": 1,
    "ssm_state_size": 16,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
}
MOE: dict[str, Any] = {
    "hybrid_override_pattern": "MEM*E",
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 32,
    "moe_shared_expert_intermediate_size": 64,
}


def _llama_codes(**changes: Any) -> list[str]:
    reading = read_config({**BASE, **changes}, origin="<test>")
    assert reading.spec is not None, reading.diagnostics
    return [d.code for d in check_target("llama.cpp", reading.spec.pattern, reading.spec)]


def test_a_relu2_nemotron_h_config_is_ok() -> None:
    assert _llama_codes() == [] and _llama_codes(**MOE) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"mlp_hidden_act": "silu"},
        {"mlp_hidden_act": "gelu", **MOE},
        {"mamba_hidden_act": "gelu"},
    ],
    ids=["mlp", "experts", "mamba"],
)
def test_p318_activation_llama_cpp_does_not_compute(changes: dict[str, Any]) -> None:
    assert _llama_codes(**changes) == ["P318"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"mamba_num_heads": 3}, "multiple of 64"),
        ({"use_conv_bias": False}, "convolution bias"),
        ({"use_bias": True}, "projection biases"),
        ({"vocab_size": 260}, "multiple of 8"),
    ],
    ids=["inner-size", "conv-bias", "proj-bias", "vocab"],
)
def test_p319_setting_llama_cpp_refuses(changes: dict[str, Any], words: str) -> None:
    reading = read_config({**BASE, **changes}, origin="<test>")
    assert reading.spec is not None
    found = check_target("llama.cpp", reading.spec.pattern, reading.spec)
    assert [d.code for d in found] == ["P319"] and words in found[0].message, found


def test_p317_pure_mamba_is_pointed_at_the_mamba2_architecture() -> None:
    from patternc.api import parse

    (pure,) = check_target("llama.cpp", parse("MMM"))
    (mixed,) = check_target("llama.cpp", parse("MEME"))
    assert pure.code == mixed.code == "P317"
    assert "--target mamba2" in (pure.help or "") and "add an attention" in (mixed.help or "")


def test_spec_rules_are_for_nemotron_h_only() -> None:
    """Bamba's gated SiLU MLP is Bamba's own (llama.cpp converts Bamba with another class)."""
    bamba = {
        "model_type": "bamba",
        "num_hidden_layers": 2,
        "attn_layer_indices": [1],
        "hidden_size": 64,
        "vocab_size": 260,
        "mamba_n_heads": 4,
        "mamba_d_head": 32,
        "mamba_expand": 2,
        "mamba_n_groups": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
    }
    reading = read_config(bamba, origin="<test>")
    assert reading.spec is not None, reading.diagnostics
    assert not [d for d in check_target("llama.cpp", reading.spec.pattern, reading.spec) if d.code in ("P318", "P319")]


# --- 1b. the layout build --target llama.cpp writes (torch, transformers) --------------------------

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from typer.testing import CliRunner  # noqa: E402

from patternc.cli import app  # noqa: E402

LAYERS = {
    "dense": ["mamba", "mlp", "mamba", "attention", "mlp", "mamba"],
    "moe": ["mamba", "moe", "mamba", "attention", "moe", "mamba"],
    "mtp": ["mamba", "moe", "attention", "moe"],
}


def _config(kind: str, vocab: int, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": 64,
        "layers_block_type": LAYERS[kind],
        "mamba_num_heads": 4,
        "mamba_head_dim": 16,
        "expand": 1,
        "ssm_state_size": 16,
        "n_groups": 2,
        "conv_kernel": 4,
        "head_dim": 16,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 96,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "moe_shared_expert_intermediate_size": 48,
        "routed_scaling_factor": 1.5,
    }
    if kind == "mtp":
        fields |= {"mtp_layers_block_type": ["attention", "moe"], "num_nextn_predict_layers": 1}
    return transformers.NemotronHConfig(**(fields | overrides))


def _tiny_tokenizer(directory: Path) -> None:
    """A byte-level BPE of 40 tokens, saved by transformers 5.x (``tokenizer_class: TokenizersBackend``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())[:40]
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok).save_pretrained(directory)


def _mtp_tensors(config_path: Path) -> dict[str, Any]:
    """Random MTP weights in the hub layout (one tensor per expert), from the torch backend's own model."""
    from patternc_torch.io import build

    reading = read_config(config_path)
    assert reading.spec is not None
    out: dict[str, Any] = {}
    for name, tensor in build(reading.spec).state_dict().items():
        if not name.startswith("mtp."):
            continue
        value = tensor + 0.2 * torch.randn_like(tensor)
        if value.dim() == 3 and name.endswith(("up_proj", "down_proj")):
            prefix, proj = name.rsplit(".", 1)
            out.update({f"{prefix}.{e}.{proj}.weight": value[e].contiguous() for e in range(value.shape[0])})
        else:
            out[name] = value.contiguous()
    return out


def make_source(
    root: Path, kind: str, vocab: int, tokenizer: Callable[[Path], None], state_dict: bool = False, **overrides: Any
) -> tuple[Path, Any]:
    """A perturbed random Nemotron-H saved by transformers (hub names), or as its 5.x state dict."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(len(kind))
    model = transformers.AutoModelForCausalLM.from_config(_config(kind, vocab, **overrides)).eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.2 * torch.randn_like(tensor))
    directory = root / (kind + ("-state" if state_dict else ""))
    model.save_pretrained(directory)
    config = json.loads((directory / "config.json").read_text())
    config.pop("time_step_limit", None)  # transformers' {"__float__": "Infinity"}; Nemotron-H never reads it
    config["time_step_min"] = 0.0  # no dt clamp (llama.cpp has none); the weights were made with the default
    (directory / "config.json").write_text(json.dumps(config))
    tensors = load_file(str(directory / "model.safetensors"))
    if state_dict:
        tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    if kind == "mtp":
        tensors.update(_mtp_tensors(directory / "config.json"))
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    tokenizer(directory)
    return directory, model


def build(source: str | Path, out: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["build", str(source), "-o", str(out), "--target", "llama.cpp", *extra])


def _names(directory: Path) -> set[str]:
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    return set(index["weight_map"])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    root = tmp_path_factory.mktemp("llamacpp-small")
    sources = {kind: make_source(root, kind, 64, _tiny_tokenizer) for kind in LAYERS}
    sources["moe-state"] = make_source(root, "moe", 64, _tiny_tokenizer, state_dict=True)
    return sources


def _logits(model: Any, ids: Any) -> Any:
    with torch.no_grad():
        return model(ids, use_cache=False).logits


@pytest.mark.parametrize("kind", ["dense", "moe", "moe-state"])
def test_layout_is_the_hub_layout_and_the_same_model(
    kind: str, small: dict[str, tuple[Path, Any]], tmp_path: Path
) -> None:
    source, _ = small[kind]
    out = tmp_path / "out"
    result = build(source, out, "--weights", str(source))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    flat = "M-M*-M" if kind == "dense" else "MEM*EM"
    assert config["hybrid_override_pattern"] == flat and config["num_hidden_layers"] == 6
    assert "layers_block_type" not in config and "time_step_limit" not in config
    moe_keys = {"num_experts_per_tok", "n_routed_experts", "moe_intermediate_size"} & set(config)
    assert moe_keys == (
        set() if kind == "dense" else {"num_experts_per_tok", "n_routed_experts", "moe_intermediate_size"}
    )
    if kind == "dense":  # transformers wrote its MoE defaults into the source: left out, and said so
        assert "[P513]" in result.output and "`num_experts_per_tok`" in result.output, result.output
    names = _names(out)
    assert all(n.startswith(("backbone.", "lm_head.")) for n in names), names
    assert not [n for n in names if re.search(r"experts\.(up|down)_proj$", n)]
    if kind != "dense":
        assert {f"backbone.layers.1.mixer.experts.{e}.up_proj.weight" for e in range(4)} <= names
    built, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    ids = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(3))
    reference = transformers.AutoModelForCausalLM.from_pretrained(source).eval()  # its time_step_min: 0
    assert (_logits(reference, ids) - _logits(built.eval(), ids)).abs().max().item() <= 1e-5
    # the tokenizer came along, in a spelling the converter's transformers (4.57.6) reads
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast" and (out / "tokenizer.json").is_file()
    assert json.loads((source / "tokenizer_config.json").read_text())["tokenizer_class"] == "TokenizersBackend"


def test_mtp_layout_keeps_the_draft_head_per_expert(small: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    import patternc

    source, _ = small["mtp"]
    out = tmp_path / "out"
    result = build(source, out, "--weights", str(source))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["mtp_hybrid_override_pattern"] == "*E" and config["num_nextn_predict_layers"] == 1
    assert "mtp_layers_block_type" not in config
    names = _names(out)
    assert {f"mtp.layers.1.mixer.experts.{e}.down_proj.weight" for e in range(4)} <= names
    assert {"mtp.layers.0.eh_proj.weight", "mtp.layers.1.final_layernorm.weight"} <= names
    model = patternc.torch_model(out)
    assert model.mtp is not None


def test_dense_model_with_mtp_drops_it_as_the_converter_would(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = build("M-M*-/*E", out)
    assert result.exit_code == 0, result.output
    assert "[P305]" in result.output
    config = json.loads((out / "config.json").read_text())
    assert not {"mtp_hybrid_override_pattern", "num_nextn_predict_layers", "num_experts_per_tok"} & set(config)


def test_mtp_without_its_weights_is_p517_and_left_out(small: dict[str, tuple[Path, Any]], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    source, _ = small["mtp"]
    weights = tmp_path / "weights"
    weights.mkdir()
    tensors = {k: v for k, v in load_file(str(source / "model.safetensors")).items() if not k.startswith("mtp.")}
    save_file(tensors, str(weights / "model.safetensors"))
    out = tmp_path / "out"
    result = build(source, out, "--weights", str(weights))
    assert result.exit_code == 0, result.output
    assert "[P517]" in result.output and "mtp" in result.output
    assert "num_nextn_predict_layers" not in json.loads((out / "config.json").read_text())


def test_bare_pattern_warns_about_tokenizer_and_weights(tmp_path: Path) -> None:
    result = build("M-M*-", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "[P516]" in result.output and "[P517]" in result.output
    assert json.loads((tmp_path / "out" / "config.json").read_text())["hybrid_override_pattern"] == "M-M*-"


@pytest.mark.parametrize(("source", "code"), [("M-M-", "P317"), ("M-M*E", "P309"), ("MEM*E/E*", "P304")])
def test_what_llama_cpp_cannot_run_is_not_written(source: str, code: str, tmp_path: Path) -> None:
    result = build(source, tmp_path / "out")
    assert result.exit_code == 1 and f"[{code}]" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_check_target_llama_cpp_refuses_a_silu_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**BASE, "mlp_hidden_act": "silu"}))
    result = CliRunner().invoke(app, ["check", str(path), "--target", "llama.cpp"])
    assert result.exit_code == 1 and "[P318]" in result.output, result.output


# --- 2. llama.cpp's converter ----------------------------------------------------------------------

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "patternc" / "llama.cpp"
CONVERTER = Path(os.environ.get("PATTERNC_LLAMA_CPP_CONVERTER") or CACHE / "llama.cpp" / "convert_hf_to_gguf.py")
PYTHON = os.environ.get("PATTERNC_LLAMA_CPP_PYTHON") or str(CACHE / "venv" / "bin" / "python")
GPT2_VOCAB = CONVERTER.parent / "models" / "ggml-vocab-gpt-2.gguf"
VOCAB = 50264
"""GPT-2's 50257 tokens, padded to the multiple of 8 llama.cpp's Nemotron-H converter pads to."""


BOOT = (
    "import os, runpy, site, sys; site.addsitedir(sys.argv[1]); script = sys.argv[2]; "
    "sys.argv = sys.argv[2:]; sys.path[0] = os.path.dirname(os.path.abspath(script)); "
    "runpy.run_path(script, run_name='__main__')"
)
"""Runs a script with the converter's Python, this interpreter's site-packages appended after its own: its
transformers (4.57.6) wins, and torch comes from here when it has none (``.ci/run`` installs none there)."""


def _with_converter_python(*argv: str) -> list[str]:
    import sysconfig

    return [PYTHON, "-c", BOOT, sysconfig.get_paths()["purelib"], *argv]


def _gguf() -> Any:
    """gguf-py: the installed package, else the copy in the converter's own tree (which the converter uses)."""
    try:
        import gguf
    except ImportError:
        sys.path.insert(0, str(CONVERTER.parent / "gguf-py"))
        import gguf
    return gguf


@functools.cache
def _converter_problem() -> str | None:
    if not CONVERTER.is_file() or not GPT2_VOCAB.is_file():
        return f"llama.cpp's converter is not at {CONVERTER} (set PATTERNC_LLAMA_CPP_CONVERTER)"
    if not Path(PYTHON).is_file():
        return f"no Python for the converter at {PYTHON} (set PATTERNC_LLAMA_CPP_PYTHON)"
    probe_script = Path(__file__).parents[2] / "llamacpp_probe.py"
    probe = subprocess.run(_with_converter_python(str(probe_script)), capture_output=True, text=True, timeout=300)
    if probe.returncode:
        return f"{PYTHON} cannot import torch and transformers"
    major, minor = (int(x) for x in probe.stdout.strip().split(".")[:2])
    if (major, minor) >= (5, 3):
        return (
            f"{PYTHON} has transformers {probe.stdout.strip()}; the converter pins 4.57.6 "
            "(with >= 5.3 it reads configs through NemotronHConfig and every dense model turns MoE)"
        )
    return None


needs_converter = pytest.mark.skipif("_converter_problem() is not None", reason="llama.cpp's converter is absent")


def _gpt2_tokenizer(directory: Path) -> None:
    """GPT-2's tokenizer rebuilt from llama.cpp's own vocab file: a pre-tokenizer the converter recognises."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    fields = _gguf().GGUFReader(str(GPT2_VOCAB)).fields

    def strings(key: str) -> list[str]:
        field = fields[key]
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]

    tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
    tok = Tokenizer(
        models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ", 1)) for m in merges])
    )  # type: ignore[misc]
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    fast.save_pretrained(directory)


def convert(directory: Path, gguf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _with_converter_python(str(CONVERTER), str(directory), "--outfile", str(gguf), "--outtype", "f32"),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """(the llama.cpp-layout directory, its GGUF) for dense, MoE and MTP sources; conversion asserted."""
    if _converter_problem() is not None:
        pytest.skip(_converter_problem() or "")
    root = tmp_path_factory.mktemp("llamacpp-gguf")
    out: dict[str, tuple[Path, Path]] = {}
    for kind in LAYERS:
        source, _ = make_source(root / "src", kind, VOCAB, _gpt2_tokenizer)
        directory = root / kind
        result = build(source, directory, "--weights", str(source))
        assert result.exit_code == 0, result.output
        done = convert(directory, root / f"{kind}.gguf")
        assert done.returncode == 0, done.stderr[-3000:]
        out[kind] = (directory, root / f"{kind}.gguf")
    return out


def _metadata(gguf: Path) -> dict[str, Any]:
    reader = _gguf().GGUFReader(str(gguf))
    return {key: field.contents() for key, field in reader.fields.items() if not key.startswith("tokenizer.")}


@needs_converter
@pytest.mark.parametrize(
    ("kind", "arch", "ffn", "kv", "blocks"),
    [
        ("dense", "nemotron_h", [0, 96, 0, 0, 96, 0], [0, 0, 0, 2, 0, 0], 6),
        ("moe", "nemotron_h_moe", [0, 32, 0, 0, 32, 0], [0, 0, 0, 2, 0, 0], 6),
        ("mtp", "nemotron_h_moe", [0, 32, 0, 32, 32], [0, 0, 2, 0, 2], 5),
    ],
)
def test_converter_reads_each_layer_as_the_pattern_says(
    kind: str, arch: str, ffn: list[int], kv: list[int], blocks: int, converted: dict[str, tuple[Path, Path]]
) -> None:
    meta = _metadata(converted[kind][1])
    assert meta["general.architecture"] == arch
    assert meta[f"{arch}.block_count"] == blocks
    assert meta[f"{arch}.feed_forward_length"] == ffn
    assert meta[f"{arch}.attention.head_count_kv"] == kv
    assert meta.get(f"{arch}.nextn_predict_layers", 0) == (1 if kind == "mtp" else 0)


@needs_converter
@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_the_transformers_layout_does_not_convert(kind: str, tmp_path: Path) -> None:
    """The regression: what `build` writes for transformers fails in the converter (or converts wrongly)."""
    source, _ = make_source(tmp_path / "src", kind, VOCAB, _gpt2_tokenizer)
    plain = tmp_path / "plain"
    result = CliRunner().invoke(
        app, ["build", str(source), "-o", str(plain), "--target", "nemotron_h", "--weights", str(source)]
    )
    assert result.exit_code == 0, result.output
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, plain / name)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    (plain / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "PreTrainedTokenizerFast"}))
    done = convert(plain, tmp_path / "plain.gguf")
    if kind == "moe":
        assert done.returncode != 0 and "Unprocessed experts" in done.stderr, done.stderr[-2000:]
    else:  # converts, as nemotron_h_moe with no FFN anywhere: llama.cpp cannot load it
        assert done.returncode == 0, done.stderr[-2000:]
        meta = _metadata(tmp_path / "plain.gguf")
        assert meta["general.architecture"] == "nemotron_h_moe"
        assert meta["nemotron_h_moe.feed_forward_length"] == [0] * 6


# --- 3. llama.cpp's runtime ------------------------------------------------------------------------

RUNNER = r"""
import json, sys
import llama_cpp
path, ids = sys.argv[1], json.loads(sys.argv[2])
llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, logits_all=True, verbose=False, n_threads=2,
                      type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
llm.eval(ids)
print(json.dumps([list(map(float, row)) for row in llm.scores[: len(ids)]]))
"""
"""llama.cpp runs in a child process: what the profile refuses may abort or crash the process."""

IDS = [15, 2000, 7, 31337, 42, 9, 100, 5000, 123, 77, 8, 50000]


def _has_llama_cpp() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


needs_runtime = pytest.mark.skipif(
    "not _has_llama_cpp() or _converter_problem() is not None",
    reason="llama.cpp's runtime (llama-cpp-python) or converter is absent",
)


def run_llama_cpp(gguf: Path, ids: list[int]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(gguf), json.dumps(ids)], capture_output=True, text=True, timeout=600
    )


def _torch_logits(directory: Path, ids: list[int]) -> Any:
    import patternc

    model = patternc.torch_model(directory)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].double()


@needs_runtime
@pytest.mark.parametrize("kind", list(LAYERS))
def test_llama_cpp_logits_match_the_torch_model(kind: str, converted: dict[str, tuple[Path, Path]]) -> None:
    directory, gguf = converted[kind]
    # greedy continuation by the torch model, then the whole sequence through llama.cpp
    ids = list(IDS)
    for _ in range(6):
        ids.append(int(_torch_logits(directory, ids)[-1].argmax()))
    done = run_llama_cpp(gguf, ids)
    assert done.returncode == 0, done.stderr[-3000:]
    ours = torch.tensor(json.loads(done.stdout), dtype=torch.float64)
    reference = _torch_logits(directory, ids)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().max().item() <= 1e-4
    assert ours.argmax(-1).tolist()[len(IDS) - 1 : -1] == ids[len(IDS) :]  # the same greedy tokens


def _unchecked_build(monkeypatch: pytest.MonkeyPatch, source: Path, out: Path) -> None:
    """Build past the profile's refusal, to show what llama.cpp does with what it refuses."""
    import patternc_transformers.llamacpp as llamacpp

    monkeypatch.setattr(llamacpp, "profile_verdict", lambda spec: [])
    result = build(source, out, "--weights", str(source))
    assert result.exit_code == 0, result.output


def _variant(tmp_path: Path, kind: str, vocab: int = VOCAB, **overrides: Any) -> Path:
    return make_source(tmp_path / "src", kind, vocab, _gpt2_tokenizer, **overrides)[0]


@needs_runtime
def test_p317_no_attention_aborts_llama_cpp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAYERS, "noattn", ["mamba", "mlp", "mamba", "mlp"])
    source = _variant(tmp_path, "noattn")
    _unchecked_build(monkeypatch, source, tmp_path / "out")
    assert convert(tmp_path / "out", tmp_path / "m.gguf").returncode == 0
    done = run_llama_cpp(tmp_path / "m.gguf", IDS)
    assert done.returncode < 0 and "GGML_ASSERT(buffer)" in done.stderr, (done.returncode, done.stderr[-2000:])


@needs_runtime
@pytest.mark.parametrize("change", [{"mlp_hidden_act": "silu"}, {"mamba_hidden_act": "gelu"}], ids=["mlp", "mamba"])
def test_p318_llama_cpp_runs_another_model(
    change: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _variant(tmp_path, "dense", **change)
    _unchecked_build(monkeypatch, source, tmp_path / "out")
    assert convert(tmp_path / "out", tmp_path / "m.gguf").returncode == 0
    done = run_llama_cpp(tmp_path / "m.gguf", IDS)
    assert done.returncode == 0, done.stderr[-2000:]
    ours = torch.tensor(json.loads(done.stdout), dtype=torch.float64)
    assert (ours - _torch_logits(tmp_path / "out", IDS)).abs().max().item() > 0.5


@needs_runtime
@pytest.mark.parametrize(
    ("change", "vocab", "stage", "evidence"),
    [
        ({"mamba_num_heads": 3, "n_groups": 1}, VOCAB, "convert", "not a multiple of head dim 64"),
        ({"use_conv_bias": False}, VOCAB, "run", None),
        ({"use_bias": True}, VOCAB, "load", None),
        ({}, 50260, "load", None),
    ],
    ids=["inner-size", "conv-bias", "proj-bias", "vocab"],
)
def test_p319_llama_cpp_refuses_or_crashes(
    change: dict[str, Any],
    vocab: int,
    stage: str,
    evidence: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = _variant(tmp_path, "dense", vocab, **change)
    _unchecked_build(monkeypatch, source, tmp_path / "out")
    done = convert(tmp_path / "out", tmp_path / "m.gguf")
    if stage == "convert":
        assert done.returncode != 0 and evidence in done.stderr, done.stderr[-2000:]
        return
    assert done.returncode == 0, done.stderr[-2000:]
    ran = run_llama_cpp(tmp_path / "m.gguf", IDS)
    if stage == "load":
        assert ran.returncode > 0 and "Failed to load model" in ran.stderr, ran.stderr[-2000:]
    else:
        assert ran.returncode < 0, (ran.returncode, ran.stderr[-2000:])  # killed by a signal
