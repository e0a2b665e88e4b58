"""One rank of the distributed checks, launched by ``torchrun`` (test_distributed.py, benchmarks/distributed.py).

Every rank builds the same tiny Nemotron-H-style model (same seed), keeps a one-process copy as the
reference, shards the other (tensor parallel, FSDP2 or pipeline) and compares: logits of a prompt
within 1e-5, greedy tokens, and (tensor parallel, FSDP) the step-by-step decode through the sharded
inference state.  Each rank writes what it measured to ``OUT/MODE-CONFIG-RANK.json``; a mismatch
raises, so the launch fails.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from patternc_torch import write_model_dir
from patternc_torch.distributed import (
    dtensor_state_dict,
    fully_sharded,
    resident_bytes,
    tensor_parallel,
)
from patternc_torch.launch import parallel_model
from patternc_torch.pipeline import PipelinedLM
from torch.distributed.device_mesh import init_device_mesh

import patternc
from patternc.ir import make_pattern
from patternc.model import AttentionSpec, GatedDeltaNetSpec, MambaSpec, MlpSpec, ModelSpec, MoeSpec, NormSpec, RopeSpec

CONFIGS = {
    # name: (pattern, stage sizes for 2 ranks, MTP block)
    "dense": ("M-M*-", [2, 3], ""),
    "moe": ("ME*EM-", [3, 3], ""),
    "mtp": ("M*E-", None, "*E"),
    "gdn": ("G*G-", [2, 2], ""),
}


def spec_for(name: str, stages: bool = False, hidden: int = 32, layout: str = "fused") -> ModelSpec:
    """A tiny config; ``layout``: the gated DeltaNet's weights (``fused`` Qwen3-Next, ``split`` Qwen3.5,
    ``separate`` OLMo Hybrid)."""
    flat, sizes, mtp = CONFIGS[name]
    deltanet = GatedDeltaNetSpec(
        num_k_heads=4,
        num_v_heads=8,
        head_k_dim=8,
        head_v_dim=8,
        conv_kernel=4,
        split_projections=layout == "split",
        separate_projections=layout == "separate",
    )
    return ModelSpec(
        source="pattern",
        pattern=make_pattern(flat, stage_sizes=sizes if stages else None, mtp=mtp, depths=1 if mtp else 0),
        hidden_size=hidden,
        vocab_size=64,
        norm=NormSpec(eps=1e-5),
        attention=AttentionSpec(
            num_heads=4, num_kv_heads=2, head_dim=8, rope=RopeSpec(theta=10000.0, partial_factor=0.5)
        ),
        mamba=MambaSpec(
            num_heads=8, head_dim=8, state_size=8, n_groups=4, conv_kernel=4, chunk_size=8, norm_group_size=16
        ),
        gated_deltanet=deltanet if "G" in flat else None,
        mlp=MlpSpec(intermediate_size=48, activation="relu2", gated=False),
        moe=MoeSpec(
            num_experts=8,
            top_k=2,
            intermediate_size=16,
            router="sigmoid",
            score_correction_bias=True,
            expert_gated=True,
            expert_activation="silu",
            shared_experts=1,
            shared_intermediate_size=24,
        ),
    )


def prompt() -> torch.Tensor:
    return torch.randint(0, 64, (2, 11), generator=torch.Generator().manual_seed(3))


def close(name: str, got: torch.Tensor, want: torch.Tensor) -> float:
    diff = (got - want).abs().max().item()
    if not diff <= 1e-5:
        raise AssertionError(f"{name}: max |difference| {diff:.3g} > 1e-5")
    return diff


def decode_steps(model: torch.nn.Module, ids: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """Logits of ``steps`` tokens fed one at a time through the inference state after the prompt."""
    state = model.new_state(ids.shape[0])  # type: ignore[operator]
    out = model(ids, state=state)
    logits = [out.logits[:, -1]]
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(steps):
        out = model(nxt, state=state)
        logits.append(out.logits[:, -1])
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    return logits


def padded() -> tuple[torch.Tensor, torch.Tensor]:
    """The prompt left-padded: row 0 starts three positions late (its pads hold id 0)."""
    ids = prompt()
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[0, :3] = False
    return ids.masked_fill(~mask, 0), mask


def reference_steps(
    model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor | None, steps: int
) -> list[torch.Tensor]:
    """``decode_steps`` from a (possibly left-padded) prompt, all logits of the prompt first."""
    state = model.new_state(ids.shape[0])  # type: ignore[operator]
    out = model(ids, mask, state=state)
    logits = [out.logits]
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(steps):
        out = model(nxt, state=state)
        logits.append(out.logits)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    return logits


def pipeline_steps(pipe: PipelinedLM, ids: torch.Tensor, mask: torch.Tensor | None, steps: int) -> list[torch.Tensor]:
    """``reference_steps`` through the pipeline's per-stage inference state."""
    logits = [pipe.prefill(ids, mask)]
    nxt = logits[-1][:, -1].argmax(-1, keepdim=True)
    for _ in range(steps):
        logits.append(pipe.step(nxt))
        nxt = logits[-1][:, -1].argmax(-1, keepdim=True)
    return logits


def check_pipeline(pipe: PipelinedLM, reference: torch.nn.Module, new_tokens: int) -> dict[str, object]:
    """Everything the pipeline serves against the one-process model: logits (whole batch, two microbatches,
    left-padded, MTP heads), the step logits through the stages' states (unpadded: the decode closures;
    left-padded: the layers' forward), greedy tokens, and that decoding runs each token once per stage."""
    ids = prompt()
    pad_ids, mask = padded()
    full_out = reference(ids, return_mtp=True)
    result: dict[str, object] = {}
    if pipe.spec.pattern.mtp is not None:
        got, got_mtp = pipe.logits(ids, return_mtp=True)
        assert full_out.mtp_logits is not None and len(got_mtp) == len(full_out.mtp_logits) > 0
        for depth, (mine, ref) in enumerate(zip(got_mtp, full_out.mtp_logits, strict=True)):
            result[f"mtp_diff_{depth + 1}"] = close(f"pipeline MTP depth {depth + 1} logits", mine, ref)
    else:
        got = pipe.logits(ids)
    result["logits_diff"] = close("pipeline logits", got, full_out.logits)
    close("pipeline logits, 2 microbatches", pipe.logits(ids, 2), full_out.logits)
    close("pipeline left-padded logits", pipe.logits(pad_ids, attention_mask=mask), reference(pad_ids, mask).logits)
    diffs = []
    for name, x, m in (("", ids, None), ("left-padded ", pad_ids, mask)):
        want = reference_steps(reference, x, m, 4)
        for k, (mine, ref) in enumerate(zip(pipeline_steps(pipe, x, m, 4), want, strict=True)):
            diffs.append(close(f"pipeline {name}decode step {k}", mine, ref))
    result["step_diff"] = max(diffs)
    for x, m in ((pad_ids, mask), (ids, None)):  # the timed run last: the unpadded one
        want_tokens = reference.generate(x, new_tokens, attention_mask=m)  # type: ignore[operator]
        pipe.module.tokens_seen = 0
        start = time.perf_counter()
        tokens = pipe.generate(x, new_tokens, attention_mask=m)
        result["seconds"] = time.perf_counter() - start
        if not torch.equal(tokens, want_tokens):
            raise AssertionError(f"pipeline greedy tokens {tokens.tolist()} != {want_tokens.tolist()}")
        # the prompt once, then one position per row for each new token but the last: the state is used
        b, t = x.shape
        if pipe.module.tokens_seen != b * (t + new_tokens - 1):
            raise AssertionError(f"a stage ran {pipe.module.tokens_seen} positions, not {b * (t + new_tokens - 1)}")
    result["tokens_seen"] = pipe.module.tokens_seen
    result["closures"] = pipe.closures  # the unpadded run decoded through the stages' decode closures
    eos = int(want_tokens[0, ids.shape[1] + 1])  # row 0 stops after its second new token, row 1 goes on
    want_eos = reference.generate(ids, new_tokens, eos_token_id=eos, pad_token_id=5)  # type: ignore[operator]
    if not torch.equal(pipe.generate(ids, new_tokens, eos_token_id=eos, pad_token_id=5), want_eos):
        raise AssertionError("pipeline tokens with an eos differ")
    return result


def check(mode: str, config: str, out_dir: Path, new_tokens: int) -> dict[str, object]:
    rank, world = dist.get_rank(), dist.get_world_size()
    spec = spec_for(config, stages=mode == "pp" and world == 2)
    reference = patternc.torch_model(spec)
    model = copy.deepcopy(reference)
    full_bytes = resident_bytes(reference)
    ids = prompt()
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=(mode,))
    result: dict[str, object] = {"mode": mode, "config": config, "rank": rank, "world": world}
    with torch.no_grad():
        full_out = reference(ids, return_mtp=True)
        want, want_mtp = full_out.logits, full_out.mtp_logits
        want_tokens = reference.generate(ids, new_tokens)
        if mode == "pp":
            pipe = PipelinedLM(model, mesh)
            del model
            result |= check_pipeline(pipe, reference, new_tokens)
            tokens = want_tokens  # compared in check_pipeline
            resident = resident_bytes(pipe.module)
            result["table_bytes"] = resident_bytes(reference.backbone.embeddings)
        else:
            sharded = tensor_parallel(model, mesh) if mode == "tp" else fully_sharded(model, mesh)
            out = sharded(ids, return_mtp=True)
            result["logits_diff"] = close(f"{mode} logits", out.logits, want)
            if spec.pattern.mtp is not None:
                assert out.mtp_logits is not None and want_mtp is not None
                for depth, (got, ref) in enumerate(zip(out.mtp_logits, want_mtp, strict=True)):
                    close(f"{mode} MTP depth {depth + 1} logits", got, ref)
            steps = decode_steps(sharded, ids, 4)
            for k, (got, ref) in enumerate(zip(steps, decode_steps(reference, ids, 4), strict=True)):
                close(f"{mode} decode step {k}", got, ref)
            start = time.perf_counter()
            tokens = sharded.generate(ids, new_tokens)
            result["seconds"] = time.perf_counter() - start
            resident = resident_bytes(sharded)
            if mode == "tp":  # the DTensor view: every parameter cut in one range is the full one
                full = dict(reference.named_parameters())
                splits = sharded.tp_plan.splits  # type: ignore[union-attr]
                for name, tensor in dtensor_state_dict(sharded).items():  # type: ignore[arg-type]
                    split = splits.get(name)
                    if split is not None and (len(split.ranges) > 1 or split.kind == "expanded"):  # rank-major
                        continue
                    torch.testing.assert_close(tensor.full_tensor(), full[name], atol=0, rtol=0, msg=name)
        if not torch.equal(tokens, want_tokens):
            raise AssertionError(f"{mode} greedy tokens {tokens.tolist()} != {want_tokens.tolist()}")
    result |= {"resident_bytes": resident, "full_bytes": full_bytes, "fraction": resident / full_bytes}
    (out_dir / f"{mode}-{config}-{rank}.json").write_text(json.dumps(result))
    return result


def check_loading(config: str, out_dir: Path, new_tokens: int) -> None:
    """``parallel_model`` on a model directory: the same logits and tokens, each rank reading its share."""
    rank, world = dist.get_rank(), dist.get_world_size()
    directory = out_dir / f"model-{config}"
    spec = spec_for(config, stages=world == 2)
    if rank == 0:
        write_model_dir(spec, directory, force=True)
    dist.barrier()
    reference = patternc.torch_model(directory)
    total = sum(t.numel() for t in reference.state_dict().values())
    ids = prompt()
    with torch.no_grad():
        want, want_tokens = reference(ids).logits, reference.generate(ids, new_tokens)
        for kind in ("tp", "pp", "dp"):
            mesh = init_device_mesh("cpu", (world,), mesh_dim_names=(kind,))
            loaded = parallel_model(directory, mesh)
            if isinstance(loaded, PipelinedLM):
                got, tokens = loaded.logits(ids), loaded.generate(ids, new_tokens)
                # the last stage's MTP block and its replica of the table
                got_mtp = loaded.logits(ids, return_mtp=True)[1]
            else:
                assert loaded.weights_from == str(directory)
                got, tokens = loaded(ids).logits, loaded.generate(ids, new_tokens)
                got_mtp = loaded(ids, return_mtp=True).mtp_logits or []
            if spec.pattern.mtp is not None:
                want_mtp = reference(ids, return_mtp=True).mtp_logits
                assert want_mtp is not None and len(got_mtp) == len(want_mtp) > 0
                for depth, (mine, ref) in enumerate(zip(got_mtp, want_mtp, strict=True)):
                    close(f"loaded {kind} MTP depth {depth + 1} logits", mine, ref)
            close(f"loaded {kind} logits", got, want)
            assert torch.equal(tokens, want_tokens), f"loaded {kind}: {tokens.tolist()} != {want_tokens.tolist()}"
            read = getattr(loaded, "elements_read", None)
            result = {"mode": f"load-{kind}", "config": config, "rank": rank, "world": world}
            result["read_fraction"] = None if read is None else read / total
            (out_dir / f"load-{kind}-{config}-{rank}.json").write_text(json.dumps(result))


def check_uneven_rows(out_dir: Path, new_tokens: int) -> None:
    """FSDP2 from a model directory whose first dimensions do not divide by the ranks (a vocabulary of 63, an
    MLP of 47): each rank reads ``torch.chunk``'s rows, the last rank fewer, and the logits are one process's."""
    rank, world = dist.get_rank(), dist.get_world_size()
    base = spec_for("dense")
    assert base.mlp is not None
    spec = base.model_copy(update={"vocab_size": 63, "mlp": base.mlp.model_copy(update={"intermediate_size": 47})})
    directory = out_dir / "model-uneven"
    if rank == 0:
        write_model_dir(spec, directory, force=True)
    dist.barrier()
    reference = patternc.torch_model(directory)
    total = sum(t.numel() for t in reference.state_dict().values())
    ids = prompt() % 63
    with torch.no_grad():
        loaded = parallel_model(directory, init_device_mesh("cpu", (world,), mesh_dim_names=("dp",)))
        close("loaded dp logits, uneven rows", loaded(ids).logits, reference(ids).logits)
        tokens, want_tokens = loaded.generate(ids, new_tokens), reference.generate(ids, new_tokens)
        assert torch.equal(tokens, want_tokens), f"uneven rows: {tokens.tolist()} != {want_tokens.tolist()}"
    read = loaded.elements_read  # type: ignore[union-attr]
    assert read is not None
    result = {"mode": "load-dp", "config": "uneven", "rank": rank, "world": world, "read_fraction": read / total}
    (out_dir / f"load-dp-uneven-{rank}.json").write_text(json.dumps(result))


def main() -> None:
    out_dir = Path(sys.argv[1])
    modes = sys.argv[2].split(",")
    configs = sys.argv[3].split(",")
    new_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        for mode in modes:
            for config in configs:
                if mode == "load":
                    check_loading(config, out_dir, new_tokens)
                else:
                    check(mode, config, out_dir, new_tokens)
            if mode == "load":
                check_uneven_rows(out_dir, new_tokens)
    finally:
        dist.destroy_process_group()
    if os.environ.get("RANK") == "0":
        print("ok", modes, configs)


if __name__ == "__main__":
    main()
