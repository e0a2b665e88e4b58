"""The torch backend's API: sources, strict loading, inference state, padding, generation, CLI, CUDA."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from patternc_torch import write_model_dir  # noqa: E402
from patternc_torch.io import spec_to_config  # noqa: E402
from patternc_torch.ssd import ssd_chunk_scan  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import patternc  # noqa: E402
from patternc.cli import app  # noqa: E402
from patternc.diagnostics import PatternError  # noqa: E402
from patternc.ir import make_pattern  # noqa: E402
from patternc.model import AttentionSpec, MambaSpec, MlpSpec, ModelSpec, MoeSpec, NormSpec, RopeSpec  # noqa: E402


def spec_for(pattern: str, *, rope: bool = True, mtp: str = "", moe_router: str = "sigmoid") -> ModelSpec:
    return ModelSpec(
        source="pattern",
        pattern=make_pattern(pattern, mtp=mtp, depths=1 if mtp else 0),
        hidden_size=32,
        vocab_size=64,
        norm=NormSpec(eps=1e-5),
        attention=AttentionSpec(
            num_heads=4, num_kv_heads=2, head_dim=8, rope=RopeSpec(theta=10000.0, partial_factor=0.5) if rope else None
        ),
        mamba=MambaSpec(
            num_heads=4, head_dim=16, state_size=8, n_groups=2, conv_kernel=4, chunk_size=8, norm_group_size=32
        ),
        mlp=MlpSpec(intermediate_size=48, activation="relu2", gated=False),
        moe=MoeSpec(
            num_experts=8,
            top_k=2,
            intermediate_size=16,
            router=moe_router,  # type: ignore[arg-type]
            score_correction_bias=moe_router == "sigmoid",
            expert_gated=moe_router == "softmax",
            expert_activation="silu",
            shared_experts=1,
            shared_intermediate_size=24,
        ),
    )


def test_ssd_scan_matches_the_recurrence() -> None:
    gen = torch.Generator().manual_seed(0)
    b, seq, h, p, g, n = 2, 23, 4, 3, 2, 5
    x = torch.randn(b, seq, h, p, generator=gen)
    dt = torch.rand(b, seq, h, generator=gen)
    A = -torch.rand(h, generator=gen) - 0.1
    B, C = torch.randn(b, seq, g, n, generator=gen), torch.randn(b, seq, g, n, generator=gen)
    init = torch.randn(b, h, p, n, generator=gen)
    y, final = ssd_chunk_scan(x, dt, A, B, C, 5, init)
    state = init.clone()
    heads_b, heads_c = B.repeat_interleave(h // g, dim=2), C.repeat_interleave(h // g, dim=2)
    for t in range(seq):
        decay = torch.exp(dt[:, t] * A).view(b, h, 1, 1)
        state = state * decay + (dt[:, t].view(b, h, 1, 1) * x[:, t].unsqueeze(-1)) * heads_b[:, t].unsqueeze(2)
        expected = (state * heads_c[:, t].unsqueeze(2)).sum(-1)
        torch.testing.assert_close(y[:, t], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final, state, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pattern", ["M-M*-E", "M*E-M", "*-", "MM"])
def test_decode_equals_forward_and_mixes_transformers_lacks(pattern: str) -> None:
    model = patternc.torch_model(spec_for(pattern))  # `-` and `E` in one model: no transformers class has it
    ids = torch.randint(0, 64, (3, 17), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids).logits
        state = model.new_state(3, 2)
        parts = [model(ids[:, :6], state=state).logits, model(ids[:, 6:9], state=state).logits]
        parts += [model(ids[:, i : i + 1], state=state).logits for i in range(9, 17)]
    assert full.shape == (3, 17, 64)
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pattern", ["M-M*-E", "*-M"])
def test_left_padding_gives_the_unpadded_logits(pattern: str) -> None:
    model = patternc.torch_model(spec_for(pattern, moe_router="softmax"))
    gen = torch.Generator().manual_seed(2)
    rows = [torch.randint(1, 64, (n,), generator=gen) for n in (9, 4, 1)]
    width = 9
    ids = torch.zeros(3, width, dtype=torch.long)
    mask = torch.zeros(3, width, dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :], mask[i, width - len(row) :] = row, True
    with torch.no_grad():
        padded = model(ids, mask).logits
        batch = model.generate(ids, 5, attention_mask=mask)
        for i, row in enumerate(rows):
            alone = model(row.unsqueeze(0)).logits[0]
            torch.testing.assert_close(padded[i, width - len(row) :], alone, atol=1e-5, rtol=1e-5)
            assert batch[i, width:].tolist() == model.generate(row.unsqueeze(0), 5)[0, len(row) :].tolist()


def test_generate_greedy_and_sampling() -> None:
    model = patternc.torch_model(spec_for("M*-"))
    ids = torch.tensor([[1, 2, 3]])
    greedy = model.generate(ids, max_new_tokens=6)
    assert greedy.shape == (1, 9) and greedy[0, :3].tolist() == [1, 2, 3]
    with torch.no_grad():
        logits = model(greedy[:, :-1]).logits
    assert greedy[0, 3:].tolist() == logits[0, 2:].argmax(-1).tolist()
    one = model.generate(ids, 6, do_sample=True, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(3))
    two = model.generate(ids, 6, do_sample=True, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(3))
    assert one.tolist() == two.tolist()


def test_meta_device_builds_any_size() -> None:
    big = ModelSpec(
        source="pattern",
        pattern=make_pattern("M-M*E" * 40, mtp="*E", depths=1),
        hidden_size=8192,
        vocab_size=262144,
        norm=NormSpec(eps=1e-5),
        attention=AttentionSpec(num_heads=64, num_kv_heads=8, head_dim=128),
        mamba=MambaSpec(num_heads=256, head_dim=64, state_size=128, n_groups=8, conv_kernel=4, norm_group_size=2048),
        mlp=MlpSpec(intermediate_size=32768, activation="relu2", gated=False),
        moe=MoeSpec(
            num_experts=512,
            top_k=22,
            intermediate_size=2688,
            router="sigmoid",
            score_correction_bias=True,
            expert_gated=False,
            expert_activation="relu2",
            shared_experts=1,
            shared_intermediate_size=5376,
            latent_size=1024,
        ),
    )
    model = patternc.torch_model(big, device="meta", dtype=torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) > 100e9
    assert all(p.is_meta for p in model.parameters())


def test_built_from_meta_nothing_is_left_behind() -> None:
    """Models are built on meta then given memory: ties, buffers and every tensor must survive that."""
    spec = spec_for("M*E-").model_copy(update={"tie_embeddings": True})
    model = patternc.torch_model(spec)
    assert model.lm_head.weight is model.backbone.embeddings.weight
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    inv_freq = model.rope_inv_freq
    assert isinstance(inv_freq, torch.Tensor) and inv_freq[0] == 1.0 and bool((inv_freq > 0).all())
    biases = [b for n, b in model.named_buffers() if n.endswith("e_score_correction_bias")]
    assert biases and all(bool((b == 0).all()) for b in biases)


def test_a_bf16_model_is_built_in_its_final_dtypes() -> None:
    spec = spec_for("M*E-").model_copy(update={"tie_embeddings": True})
    model = patternc.torch_model(spec, dtype=torch.bfloat16)
    kept = {name for name, p in model.named_parameters() if p.dtype == torch.float32}
    assert kept and all(name.endswith(("A_log", "D", "dt_bias", "gate.weight")) for name in kept)
    assert model.lm_head.weight is model.backbone.embeddings.weight
    assert model.backbone.embeddings.weight.dtype == torch.bfloat16
    with torch.no_grad():
        assert bool(torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all())


def test_write_model_dir_round_trip_and_run(tmp_path: Path) -> None:
    spec = spec_for("M-M*E", mtp="*E")
    write_model_dir(spec, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["patternc_format"] == "patternc.torch.v1"
    model = patternc.torch_model(tmp_path)
    again = patternc.torch_model(tmp_path / "config.json")
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, again(ids).logits)
    expected = " ".join(str(t) for t in model.generate(ids, 4)[0, 3:].tolist())
    result = CliRunner().invoke(app, ["run", str(tmp_path), "--ids", "5 6 7", "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected
    assert math.isinf(model.spec.mamba.time_step_limit[1]) if model.spec.mamba else True


def test_write_model_dir_is_atomic_and_never_overwrites_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_for("M-")
    out = write_model_dir(spec, tmp_path / "model")
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(PatternError) as error:
        write_model_dir(spec, out, patternc.torch_model(spec).state_dict())
    assert [d.code for d in error.value.diagnostics] == ["P502"]
    assert (out / "model.safetensors").read_bytes() == before

    import safetensors.torch

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError):
        write_model_dir(spec, tmp_path / "other")
    with pytest.raises(OSError):
        write_model_dir(spec, out, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging sibling, no `other`
    assert (out / "model.safetensors").read_bytes() == before
    monkeypatch.undo()
    other = {name: t * 2 for name, t in patternc.torch_model(spec).state_dict().items()}
    write_model_dir(spec, out, other, force=True)
    assert (out / "model.safetensors").read_bytes() != before


def _tokenizer(directory: Path, words: int) -> Any:
    """A local word-level tokenizer (no download): ``w0 … w{words-1}``, saved the transformers way."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({f"w{i}": i for i in range(words)}, unk_token="w0"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="w0")
    fast.save_pretrained(str(directory))
    return fast


def test_run_with_a_local_tokenizer_prints_text(tmp_path: Path) -> None:
    spec = spec_for("M-*")
    model_dir = write_model_dir(spec, tmp_path / "model")
    tok = _tokenizer(tmp_path / "tok", 64)
    lm = patternc.torch_model(model_dir)
    ids = tok("w5 w6 w7")["input_ids"]
    assert ids == [5, 6, 7]
    new = lm.generate(torch.tensor([ids]), 4)[0, 3:].tolist()
    runner = CliRunner()
    args = ["run", str(model_dir), "--prompt", "w5 w6 w7", "-n", "4"]
    result = runner.invoke(app, [*args, "--tokenizer", str(tmp_path / "tok")])
    assert result.exit_code == 0, result.output
    assert result.output == tok.decode(new) + "\n"
    full = runner.invoke(app, [*args, "--tokenizer", str(tmp_path / "tok"), "--full"])
    assert full.output == tok.decode([*ids, *new]) + "\n"
    # the model's own directory is searched when --tokenizer is not given
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_dir / name).write_bytes((tmp_path / "tok" / name).read_bytes())
    assert runner.invoke(app, args).output == result.output


def test_run_prompt_failures_are_diagnostics(tmp_path: Path) -> None:
    model_dir = write_model_dir(spec_for("M-"), tmp_path / "model")
    runner = CliRunner()
    base = ["run", str(model_dir), "--prompt", "w1"]
    none = runner.invoke(app, base)
    assert none.exit_code == 1 and "error[P406]" in none.output and "holds none" in none.output
    no_model = runner.invoke(app, ["run", str(tmp_path / "absent"), "--prompt", "w1"])
    assert no_model.exit_code == 1 and "error[P402]" in no_model.output  # the model, not the tokenizer
    missing = runner.invoke(app, [*base, "--tokenizer", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "error[P406]" in missing.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer.json").write_text("{not json", encoding="utf-8")
    bad = runner.invoke(app, [*base, "--tokenizer", str(broken)])
    assert bad.exit_code == 1 and "error[P406]" in bad.output and "Traceback" not in bad.output
    both = runner.invoke(app, [*base, "--ids", "1 2", "--tokenizer", str(broken)])
    assert both.exit_code == 2
    _tokenizer(tmp_path / "big", 100)  # ids beyond the model's vocabulary of 64
    beyond = runner.invoke(app, ["run", str(model_dir), "--prompt", "w99", "--tokenizer", str(tmp_path / "big")])
    assert beyond.exit_code == 2 and "vocabulary" in beyond.output


def test_run_picks_cuda_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patternc_torch import io

    model_dir = write_model_dir(spec_for("M-"), tmp_path / "model")
    seen: list[object] = []
    real = io.torch_model

    def spy(source: Any, *, device: Any = None, dtype: Any = None) -> Any:
        seen.append(device)
        return real(source, device="cpu", dtype=dtype)

    monkeypatch.setattr(io, "torch_model", spy)
    runner = CliRunner()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runner.invoke(app, ["run", str(model_dir), "--ids", "1 2", "-n", "1"]).exit_code == 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runner.invoke(app, ["run", str(model_dir), "--ids", "1 2", "-n", "1"]).exit_code == 0
    assert runner.invoke(app, ["run", str(model_dir), "--ids", "1", "-n", "1", "--device", "cpu"]).exit_code == 0
    assert seen == ["cuda", "cpu", "cpu"]


def test_text_output_stays_on_one_line_per_prompt() -> None:
    from patternc.commands.run import _escape_lines

    assert _escape_lines("a\nb\\n\r") == "a\\nb\\\\n\\r"


def test_checkpoints_are_read_one_layer_at_a_time(tmp_path: Path) -> None:
    """Loading holds the model and one layer of the checkpoint, never the whole checkpoint."""
    from patternc_torch.weights import layer_groups, open_weights

    spec = spec_for("M-M*E")
    directory = write_model_dir(spec, tmp_path / "m")
    checkpoint = open_weights(directory)
    assert checkpoint is not None
    groups = list(layer_groups(checkpoint, directory))
    layered = [g for g in groups if any(".layers." in name for name in g)]
    assert len(layered) == spec.pattern.num_layers
    for group in layered:
        assert len({name.split(".")[2] for name in group}) == 1  # one layer index per group
    assert max(len(g) for g in groups if not any(".layers." in name for name in g)) == 1


def test_hub_names_sharded_and_strict(tmp_path: Path) -> None:
    """Nemotron-H hub layout (``backbone.``, one tensor per expert), sharded; then a broken checkpoint."""
    spec = spec_for("M-M*E")
    source = patternc.torch_model(spec)
    hub: dict[str, torch.Tensor] = {}
    for name, tensor in source.state_dict().items():
        if name.endswith("experts.up_proj") or name.endswith("experts.down_proj"):
            for e in range(tensor.shape[0]):
                hub[f"{name.rsplit('.', 1)[0]}.{e}.{name.rsplit('.', 1)[1]}.weight"] = tensor[e].clone()
        elif name.endswith("experts.gate_up_proj"):
            gate, up = tensor.chunk(2, dim=1)
            for e in range(tensor.shape[0]):
                prefix = name.rsplit(".", 1)[0]
                hub[f"{prefix}.{e}.gate_proj.weight"], hub[f"{prefix}.{e}.up_proj.weight"] = gate[e], up[e]
        else:
            hub[name] = tensor.clone()
    names = sorted(hub)
    shards = {
        "model-00001-of-00002.safetensors": names[: len(names) // 2],
        "model-00002-of-00002.safetensors": names[len(names) // 2 :],
    }
    for shard, keys in shards.items():
        save_file({k: hub[k].contiguous() for k in keys}, str(tmp_path / shard))
    index = {"weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_text(json.dumps(spec_to_config(spec)))
    loaded = patternc.torch_model(tmp_path)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, source(ids).logits)

    broken = dict(hub)
    del broken["backbone.layers.0.mixer.A_log"]
    broken["backbone.layers.9.mixer.bogus"] = torch.zeros(1)
    broken["backbone.norm_f.weight"] = torch.zeros(3)
    (tmp_path / "model.safetensors.index.json").unlink()
    for shard in shards:
        (tmp_path / shard).unlink()
    save_file({k: v.contiguous() for k, v in broken.items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(PatternError) as raised:
        patternc.torch_model(tmp_path)
    codes = {d.code: d for d in raised.value.diagnostics}
    assert sorted(codes) == ["P403", "P404", "P405"]
    assert codes["P403"].notes == ("`backbone.layers.0.mixer.A_log`",)
    assert codes["P404"].notes == ("`backbone.layers.9.mixer.bogus`",)
    assert "backbone.norm_f.weight" in codes["P405"].notes[0]


def test_unsupported_kinds_are_diagnostics(tmp_path: Path) -> None:
    spec = spec_for("MG-D")
    with pytest.raises(PatternError) as raised:
        patternc.torch_model(spec)
    assert [d.code for d in raised.value.diagnostics] == ["P401", "P401"]
    with pytest.raises(PatternError) as missing:
        patternc.torch_model(tmp_path / "nowhere")
    assert [d.code for d in missing.value.diagnostics] == ["P402"]


def test_bfloat16_keeps_ssm_and_router_in_float32() -> None:
    model = patternc.torch_model(spec_for("M*E"), dtype=torch.bfloat16)
    params = dict(model.named_parameters())
    assert params["backbone.layers.0.mixer.A_log"].dtype == torch.float32
    assert params["backbone.layers.2.mixer.gate.weight"].dtype == torch.float32
    assert params["backbone.layers.1.mixer.q_proj.weight"].dtype == torch.bfloat16
    out = model.generate(torch.tensor([[1, 2]]), 3)
    assert out.shape == (1, 5)


def test_import_patternc_does_not_import_torch() -> None:
    code = "import sys, patternc; patternc.torch_model; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_backend_entry_point() -> None:
    """The registry serves the torch backend: its target, its capability check, and ``load``."""
    from patternc.backends import Runnable, for_target, runnable

    backend = runnable("torch")
    assert isinstance(backend, Runnable) and for_target("torch") is backend
    assert backend.check(spec_for("M-*E"), "torch") == []
    assert [d.code for d in backend.check(spec_for("MG-D"), "torch")] == ["P401", "P401"]
    assert patternc.torch_model == backend.load


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_cuda_fused_kernels_match_the_pytorch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from patternc_torch import ssd

    model = patternc.torch_model(spec_for("M-M*E"), device="cuda")
    ids = torch.randint(0, 64, (2, 40), device="cuda")
    with torch.no_grad():
        fused = model(ids).logits
        fused_gen = model.generate(ids, 8)
        ssd.fused_kernels.cache_clear()
        monkeypatch.setenv("PATTERNC_TORCH_NO_FUSED", "1")
        plain = model(ids).logits
        plain_gen = model.generate(ids, 8)
    ssd.fused_kernels.cache_clear()
    torch.testing.assert_close(fused, plain, atol=2e-3, rtol=2e-3)
    assert fused_gen.shape == plain_gen.shape


@cuda
def test_cuda_decode_equals_forward() -> None:
    model = patternc.torch_model(spec_for("M-M*E"), device="cuda")
    ids = torch.randint(0, 64, (2, 20), device="cuda")
    with torch.no_grad():
        full = model(ids).logits
        state = model.new_state(2)
        parts = [model(ids[:, :5], state=state).logits]
        parts += [model(ids[:, i : i + 1], state=state).logits for i in range(5, 20)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-3, rtol=1e-3)
