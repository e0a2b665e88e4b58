"""Megatron-Core builds the model `build --target megatron` describes: every tensor, by name, shape and count.

The arguments come from ``patternc build PATTERN --target megatron --pp N`` (its
``megatron_args.json`` command line); Megatron-Core 0.19.2's own ``HybridModelBuilder`` builds
``HybridModel`` from them on the CPU, one pipeline stage at a time (how, and what stands in for
the CUDA-only pieces: ``tests/megatron_model.py`` and ``docs/backends/megatron.md``).  Each
tensor Megatron's checkpoint would hold is mapped through the name table (``hf_sources``) to the
transformers tensors it holds, and compared with patternc's torch model (``patternc.torch_model``
on the meta device): every tensor of one is exactly once in the other, shapes equal, and the element
count equals ``patternc stats``'s parameter total (main model + MTP).  Then both models get the same
random weights (converted to Megatron's names) and Megatron's forward pass gives patternc's logits
within 1e-4 (mamba_ssm's scan kernel answered by a plain recurrence on the CPU).  Skipped where megatron-core,
triton or einops is missing; the build with Megatron's own Transformer Engine spec runs only on a GPU.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patternc.cli import app
from patternc.config import read_config
from tests.core.test_megatron_validation import _pattern_spec

megatron = pytest.importorskip(
    "tests.megatron_model",
    reason="megatron-core 0.19.2 (with triton and einops) is not installed",
    exc_type=ImportError,
)
torch = pytest.importorskip("torch")
patternc_torch = pytest.importorskip("patternc_torch")


@pytest.fixture(autouse=True, scope="module")
def _parallel_state() -> Iterator[None]:
    """torch.distributed and Megatron's parallel state live for this module only."""
    yield
    megatron.teardown_parallel_state()


# (id, pattern, pp): dense, MoE, MTP (one and two depths), pipeline-split (with MoE and MTP on the last stage)
CASES = [
    ("dense", "M-M*-", 1),
    ("moe", "MEM*E", 1),
    ("mtp", "M*-E/*E", 1),
    ("mtp-two-depths", "M-M*-/*-/*-", 1),
    ("pp2-dense-mtp", "(M-M*-){2}/*-", 2),
    ("pp2-moe", "(MEM*E){2}", 2),
]


def _written_command_line(source: str, pp: int, out: Path) -> list[str]:
    """What ``patternc build SOURCE --target megatron --pp N`` writes for Megatron's command line."""
    result = CliRunner().invoke(app, ["build", source, "--target", "megatron", "--pp", str(pp), "-o", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "megatron_args.json").read_text(encoding="utf-8"))
    command_line: list[str] = document["command_line"]
    return command_line


def _stats_total(source: str) -> int:
    """``patternc stats SOURCE --json``: the checkpoint's elements, main model and MTP block."""
    result = CliRunner().invoke(app, ["stats", source, "--json"])
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["params"]  # warnings (P909 on published configs) go to stderr
    total: int = params["total"] + params["mtp"]
    return total


def _expected_shape(sources: list[tuple[str, int | None]], reference: dict[str, Any]) -> tuple[int, ...]:
    """The shape of the Megatron tensor that holds ``sources``: dim-0 concatenation, or one expert's slice."""
    shapes = [
        tuple(reference[name].shape[1:] if expert is not None else reference[name].shape) for name, expert in sources
    ]
    rest = {shape[1:] for shape in shapes}
    assert len(rest) == 1, f"{sources}: {shapes} do not concatenate on dim 0"
    return (sum(shape[0] for shape in shapes), *rest.pop())


@pytest.mark.parametrize(("pattern", "pp"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_megatron_builds_every_tensor_of_patternc_model(pattern: str, pp: int, tmp_path: Path) -> None:
    out = tmp_path / "megatron"
    _assert_same_tensors(_pattern_spec(pattern), _written_command_line(pattern, pp, out), pp, pattern, meta=False)


HUB = Path(__file__).parents[1] / "fixtures" / "hub"


@pytest.mark.parametrize(
    ("fixture", "pp"),
    [("Nemotron-H-8B-Base-8K", 4), ("NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", 1)],
)
def test_megatron_builds_published_configs_at_full_size_on_meta(fixture: str, pp: int, tmp_path: Path) -> None:
    """Published configs at their real size (8.1B, 31.6B elements) on the meta device, as Megatron's
    ``--init-model-with-meta-device`` builds them: a dense model split over 4 stages, a 128-expert MoE."""
    config = str(HUB / fixture / "config.json")
    spec = read_config(Path(config)).spec
    assert spec is not None
    argv = _written_command_line(config, pp, tmp_path / "megatron")
    _assert_same_tensors(spec, argv, pp, config, meta=True)


def _assert_same_tensors(spec: Any, argv: list[str], pp: int, source: str, *, meta: bool) -> None:
    """Megatron's model from ``argv``, stage by stage: the layers of each `|` segment, and every tensor
    of patternc's torch model once, shapes equal, element counts equal to ``stats SOURCE``'s."""
    reference = patternc_torch.torch_model(spec, device="meta").state_dict()
    mtp_layers = len(spec.pattern.mtp.flat) if spec.pattern.mtp else 0
    gated = bool(spec.mlp and spec.mlp.gated)
    unified = next(a.split("=", 1)[1] for a in argv if a.startswith("--hybrid-layer-pattern="))
    segments = unified.split("/")[0].split("|")
    assert len(segments) == pp

    covered: Counter[tuple[str, int | None]] = Counter()
    megatron_elements = 0
    for rank in range(pp):
        stage = megatron.build(argv, pp_rank=rank, meta=meta)
        model = stage.model
        # the stage holds the layers of patternc's `|` segment, with the embedding first and the head last
        assert "".join(model.decoder.layer_type_list) == segments[rank]
        assert stage.layer_offset == sum(len(s) for s in segments[:rank])
        tensors = megatron.stored_tensors(model)
        assert all(t.device.type == ("meta" if meta else "cpu") for t in tensors.values())
        has_mtp = rank == pp - 1 and mtp_layers > 0
        assert ("embedding.word_embeddings.weight" in tensors) == (rank == 0 or has_mtp)  # MTP embeds too
        assert ("output_layer.weight" in tensors) == (rank == pp - 1)
        assert any(name.startswith("mtp.") for name in tensors) == has_mtp
        for name, tensor in tensors.items():
            if megatron.is_replica(model, name):  # the last stage's copy of the first stage's embedding
                assert rank > 0 and tuple(tensor.shape) == tuple(reference["backbone.embeddings.weight"].shape)
                continue
            sources = megatron.hf_sources(name, stage.layer_offset, mtp_layers, gated_mlp=gated)
            missing = [source for source, _ in sources if source not in reference]
            assert not missing, f"{name}: patternc's model has no {missing}"
            assert tuple(tensor.shape) == _expected_shape(sources, reference), name
            covered.update(sources)
            megatron_elements += tensor.numel()

    assert all(count == 1 for count in covered.values()), [k for k, c in covered.items() if c > 1]
    by_name: dict[str, set[int | None]] = {}
    for name, expert in covered:
        by_name.setdefault(name, set()).add(expert)
    assert set(by_name) == set(reference), (set(reference) - set(by_name), set(by_name) - set(reference))
    for name, experts in by_name.items():  # a stacked expert tensor: every expert, each once
        if experts != {None}:
            assert experts == set(range(reference[name].shape[0])), name
    assert megatron_elements == sum(t.numel() for t in reference.values()) == _stats_total(source)


def test_name_table_refuses_an_unknown_tensor() -> None:
    """A Megatron tensor the table does not know fails loudly (a new Megatron module must be mapped, not skipped)."""
    with pytest.raises(KeyError, match=r"linear_qkv\.layer_norm_weight"):
        megatron.hf_sources("decoder.layers.0.self_attention.linear_qkv.layer_norm_weight", 0, 0)
    assert megatron.hf_sources("mtp.layers.1.final_layernorm.weight", 0, 2) == [
        ("mtp.layers.3.final_layernorm.weight", None)
    ]
    assert megatron.hf_sources("decoder.layers.1.mlp.experts.local_experts.3.linear_fc2.weight", 4, 0) == [
        ("backbone.layers.5.mixer.experts.down_proj", 3)
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("transformer_engine") is not None, reason="Transformer Engine is installed"
)
def test_the_written_spec_needs_transformer_engine(tmp_path: Path) -> None:
    """Why the CPU build uses Megatron's local spec: the spec the arguments name builds TE modules only.

    Without Transformer Engine, ``megatron.core.extensions.transformer_engine`` puts a MagicMock in
    place of the ``transformer_engine`` module, so its ``TE*`` layer classes are mocks, not classes:
    the first layer fails (``AttributeError: Mock object has no attribute 'module' when instantiating
    MambaMixer``), and ``TENorm`` raises ``ImportError: Transformer Engine is not installed``.
    """
    argv = _written_command_line("M-M*-", 1, tmp_path / "megatron")
    index = argv.index("--spec")
    module, attribute = argv[index + 1 : index + 3]
    written = getattr(importlib.import_module(module), attribute)
    megatron.init_parallel_state()
    _, config = megatron.oracle.validate([*argv, *megatron.CPU_RUN_FLAGS])
    config.hybrid_stack_spec = written
    pg = megatron.ProcessGroupCollection.use_mpu_process_groups()
    from megatron.core.extensions import transformer_engine as te

    assert not isinstance(te.TELayerNormColumnParallelLinear, type)
    with megatron.cpu_build(), pytest.raises(AttributeError, match="Mock object has no attribute 'module'"):
        megatron.HybridModelBuilder(config).build_model(pg)
    with pytest.raises(ImportError, match="Transformer Engine is not installed"):
        te.TENorm(config=config.transformer, hidden_size=64)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA torch allocates on the device")
def test_megatron_allocates_on_cuda_whatever_use_cpu_initialization_says(tmp_path: Path) -> None:
    """Why ``cpu_build`` answers ``torch.cuda.current_device()``: the MoE router's expert bias is put there."""
    argv = _written_command_line("*E", 1, tmp_path / "megatron")
    megatron.init_parallel_state()
    _, config = megatron.oracle.validate([*argv, *megatron.CPU_RUN_FLAGS])
    config.hybrid_stack_spec = megatron.cpu_stack_spec()
    pg = megatron.ProcessGroupCollection.use_mpu_process_groups()
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        megatron.HybridModelBuilder(config).build_model(pg)


@pytest.mark.skipif(
    not torch.cuda.is_available()
    or importlib.util.find_spec("transformer_engine") is None
    or importlib.util.find_spec("mamba_ssm") is None,
    reason="Megatron's own TE spec needs CUDA, Transformer Engine and mamba_ssm",
)
@pytest.mark.parametrize(("pattern", "pp"), [c[1:] for c in CASES if c[2] == 1], ids=[c[0] for c in CASES if c[2] == 1])
def test_on_gpu_the_written_spec_builds_the_same_tensors(pattern: str, pp: int, tmp_path: Path) -> None:
    """The spec ``--spec`` names, unmodified, on CUDA: the same tensors as the CPU build (TE names mapped)."""
    megatron.init_parallel_state()
    argv = _written_command_line(pattern, pp, tmp_path / "megatron")
    cpu = {k: tuple(v.shape) for k, v in megatron.stored_tensors(megatron.build(argv).model).items()}
    index = argv.index("--spec")
    module, attribute = argv[index + 1 : index + 3]
    _, config = megatron.oracle.validate(argv)
    config.hybrid_stack_spec = getattr(importlib.import_module(module), attribute)
    megatron.tp_random.model_parallel_cuda_manual_seed(0)
    model = megatron.HybridModelBuilder(config).build_model(megatron.ProcessGroupCollection.use_mpu_process_groups())
    gpu = {megatron.te_to_local(k): tuple(v.shape) for k, v in megatron.stored_tensors(model).items()}
    assert gpu == cpu


def _overrides(sets: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as the config values ``patternc build`` reads (JSON, else a string)."""
    out: dict[str, Any] = {}
    for item in sets:
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _random_weights(model: Any, seed: int) -> dict[str, Any]:
    """Every tensor of patternc's torch model drawn at random (norms near 1, Mamba's A and dt in their ranges).

    Initialisation leaves norms at 1 and some Mamba tensors constant, which would hide a swapped
    or misplaced tensor; the time steps stay within [0.01, 0.1] after softplus, away from any clamp.
    """
    generator = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("A_log"):
                tensor.copy_(torch.log(1 + 15 * torch.rand(tensor.shape, generator=generator)))
            elif name.endswith("dt_bias"):
                dt = 0.01 + 0.09 * torch.rand(tensor.shape, generator=generator)
                tensor.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹
            elif name.rsplit(".", 2)[-2].endswith(("norm", "norm_f")):
                tensor.copy_(1 + 0.1 * noise)
            else:
                tensor.copy_(0.1 * noise)
    return state


# (id, pattern, --set overrides, pp): the Mamba mixer with one and two groups (its gated norm per group),
# attention with grouped KV heads, MLP (relu² and GELU), MoE with a shared expert and expert bias, an MTP
# config, two stages
LOGIT_CASES = [
    ("dense", "M-M*-", [], 1),
    ("moe-mtp", "MEM*E/*E", [], 1),
    ("mamba-groups", "M*M-", ["n_groups=2"], 1),
    ("gelu", "M*-", ["mlp_hidden_act=gelu"], 1),
    ("pp2", "(M*-E){2}", [], 2),
]


@pytest.mark.parametrize(("pattern", "sets", "pp"), [c[1:] for c in LOGIT_CASES], ids=[c[0] for c in LOGIT_CASES])
def test_megatron_logits_equal_patternc_torch_model(pattern: str, sets: list[str], pp: int, tmp_path: Path) -> None:
    """The same random weights in both (converted to Megatron's names): logits within 1e-4 (fp32, CPU).

    Megatron runs its own modules except mamba_ssm's scan kernel, answered by a plain recurrence
    (``chunk_scan_reference``), on its inference path for Mamba (``--disable-mamba-mem-eff-path``).
    """
    options = [arg for item in sets for arg in ("--set", item)]
    result = CliRunner().invoke(
        app, ["build", pattern, *options, "--target", "megatron", "--pp", str(pp), "-o", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    argv = json.loads((tmp_path / "m" / "megatron_args.json").read_text(encoding="utf-8"))["command_line"]
    spec = _pattern_spec(pattern, **_overrides(sets))
    reference = patternc_torch.torch_model(spec, device="cpu", dtype=torch.float32)
    weights = _random_weights(reference, seed=len(pattern))
    stages = [megatron.build([*argv, *megatron.FORWARD_RUN_FLAGS], pp_rank=rank) for rank in range(pp)]
    attention = spec.attention
    assert attention is not None
    for stage in stages:
        megatron.load(
            stage,
            megatron.to_megatron(
                weights,
                stage,
                len(spec.pattern.mtp.flat) if spec.pattern.mtp else 0,
                heads=attention.num_heads,
                kv_heads=attention.num_kv_heads,
                gated_mlp=bool(spec.mlp and spec.mlp.gated),
            ),
        )
    input_ids = torch.randint(0, spec.vocab_size, (2, 19), generator=torch.Generator().manual_seed(1))
    reference.eval()
    with torch.no_grad():
        want = reference(input_ids).logits
    got = megatron.logits(stages, input_ids)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()


@pytest.mark.skipif(
    not torch.cuda.is_available()
    or importlib.util.find_spec("transformer_engine") is None
    or importlib.util.find_spec("mamba_ssm") is None,
    reason="Megatron's own TE spec and Mamba kernels need CUDA, Transformer Engine and mamba_ssm",
)
@pytest.mark.parametrize(("pattern", "sets", "pp"), [c[1:] for c in LOGIT_CASES if c[3] == 1])
def test_on_gpu_megatron_logits_with_its_own_kernels(pattern: str, sets: list[str], pp: int, tmp_path: Path) -> None:
    """The unmodified spec and Megatron's default (fused, memory-efficient) Mamba path on CUDA, fp32, no TF32."""
    options = [arg for item in sets for arg in ("--set", item)]
    result = CliRunner().invoke(app, ["build", pattern, *options, "--target", "megatron", "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    argv = json.loads((tmp_path / "m" / "megatron_args.json").read_text(encoding="utf-8"))["command_line"]
    spec = _pattern_spec(pattern, **_overrides(sets))
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    reference = patternc_torch.torch_model(spec, device="cpu", dtype=torch.float32)
    weights = _random_weights(reference, seed=len(pattern))
    megatron.init_parallel_state()
    megatron.tp_random.model_parallel_cuda_manual_seed(0)
    _, config = megatron.oracle.validate(argv)
    index = argv.index("--spec")
    config.hybrid_stack_spec = getattr(importlib.import_module(argv[index + 1]), argv[index + 2])
    model = megatron.HybridModelBuilder(config).build_model(megatron.ProcessGroupCollection.use_mpu_process_groups())
    stage = megatron.Stage(model.cuda(), 0)
    attention = spec.attention
    assert attention is not None
    converted = megatron.to_megatron(
        weights,
        stage,
        len(spec.pattern.mtp.flat) if spec.pattern.mtp else 0,
        heads=attention.num_heads,
        kv_heads=attention.num_kv_heads,
        gated_mlp=bool(spec.mlp and spec.mlp.gated),
        local_name=megatron.te_to_local,
    )
    megatron.load(stage, converted)
    input_ids = torch.randint(0, spec.vocab_size, (2, 19), generator=torch.Generator().manual_seed(1))
    reference.cuda().eval()
    with torch.no_grad():
        want = reference(input_ids.cuda()).logits
    got = megatron.logits([stage], input_ids.cuda())
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()


def test_a_torch_dist_checkpoint_written_by_torch_loads_into_megatron(tmp_path: Path) -> None:
    """The checkpoint format a ``build --target megatron --weights`` writer has to produce, end to end.

    patternc's torch model's random weights, converted to Megatron's names, are written as a
    ``torch_dist`` checkpoint by torch's own DCP writer (keys and layout: ``checkpoint_tensors``;
    Megatron's own saver calls ``torch.cuda.synchronize()``); Megatron-Core's ``dist_checkpointing.load``
    reads it into a freshly built model, which then gives patternc's logits.
    """
    pattern = "MEM*E/*E"
    argv = _written_command_line(pattern, 1, tmp_path / "m")
    spec = _pattern_spec(pattern)
    attention = spec.attention
    assert attention is not None
    reference = patternc_torch.torch_model(spec, device="cpu", dtype=torch.float32)
    weights = _random_weights(reference, seed=7)
    source = megatron.build([*argv, *megatron.FORWARD_RUN_FLAGS])
    megatron.load(
        source,
        megatron.to_megatron(
            weights,
            source,
            len(spec.pattern.mtp.flat),
            heads=attention.num_heads,
            kv_heads=attention.num_kv_heads,
            gated_mlp=False,
        ),
    )
    tensors = megatron.checkpoint_tensors(source)
    assert "decoder.layers.0.mixer.in_proj.layer_norm_weight" in tensors  # the TE spec's key
    assert {f"decoder.layers.0.mixer.in_proj.weight.{part}" for part in ("z", "x", "B", "C", "dt")} <= set(tensors)
    experts = tensors["decoder.layers.1.mlp.experts.experts.linear_fc1.weight"]
    assert torch.equal(experts, weights["backbone.layers.1.mixer.experts.up_proj"])  # transformers' own stacking
    assert sum(t.numel() for t in tensors.values()) == _stats_total(pattern)
    megatron.write_torch_dist(tensors, tmp_path / "ckpt")

    target = megatron.build([*argv, *megatron.FORWARD_RUN_FLAGS])
    megatron.load_torch_dist(target, tmp_path / "ckpt")
    loaded, written = megatron.stored_tensors(target.model), megatron.stored_tensors(source.model)
    assert all(torch.equal(loaded[k], written[k]) for k in written)
    input_ids = torch.randint(0, spec.vocab_size, (1, 11), generator=torch.Generator().manual_seed(3))
    reference.eval()
    with torch.no_grad():
        want = reference(input_ids).logits
    assert torch.allclose(megatron.logits([target], input_ids), want, atol=1e-4, rtol=0)
