"""Megatron-Core 0.19.2's own argument validation and pipeline rules, called on an argv list.

Import this module through ``pytest.importorskip("tests.megatron_oracle")``: it raises
ImportError (so the test skips) where megatron-core is not installed.  What it takes to run
Megatron's code here, without GPUs or a distributed launch:

- Python 3.11: ``megatron/training/models/{gpt,hybrid}.py`` import ``typing.override`` (3.12);
  ``typing_extensions.override`` is the same decorator, installed into ``typing`` first.
- ``import megatron.core`` imports ``triton`` (the MoE paged-stash kernels); the README's
  Quickstart installs it beside megatron-core.
- ``parse_args()`` reads ``sys.argv`` and the ``RANK`` / ``WORLD_SIZE`` environment variables:
  ``sys.argv`` is replaced for the call, and the world size is set to the pipeline size (one
  data-parallel replica), since ``validate_args`` asserts that the world size divides by it.
- ``validate_args`` prints; its output is captured.  Nothing initialises torch.distributed.
- ``select_pipeline_segment`` asks torch.distributed for the pipeline rank and size of its
  group and logs through helpers that assert an initialised process group; a fake group
  answers the rank and size, and the two log helpers are replaced by no-ops for the call.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import sys
import typing
import warnings
from argparse import Namespace
from collections.abc import Iterator
from typing import Any
from unittest import mock

import typing_extensions

if not hasattr(typing, "override"):
    typing.override = typing_extensions.override  # type: ignore[attr-defined]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "Apex is not installed", TE missing: irrelevant to argument checks
    import torch
    from megatron.core.models.hybrid import hybrid_layer_allocation as allocation
    from megatron.training import arguments as megatron_arguments
    from megatron.training.argument_utils import hybrid_config_from_args

VERSION = "0.19.2"


class MegatronRefused(Exception):
    """Megatron-Core refused the arguments (an assertion or ValueError in its own code)."""


@contextlib.contextmanager
def _argv(argv: list[str], world_size: int) -> Iterator[None]:
    saved_argv, saved_env = sys.argv, {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE")}
    sys.argv = ["pretrain_hybrid.py", *argv]
    os.environ["RANK"], os.environ["WORLD_SIZE"] = "0", str(world_size)
    try:
        yield
    finally:
        sys.argv = saved_argv
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _pp(argv: list[str]) -> int:
    for i, item in enumerate(argv):
        if item.startswith("--pipeline-model-parallel-size="):
            return int(item.split("=", 1)[1])
        if item == "--pipeline-model-parallel-size":
            return int(argv[i + 1])
    return 1


_PARSER: list[argparse.ArgumentParser] = []
_ADD_ARGUMENTS = megatron_arguments.add_megatron_arguments


def _parser(fresh: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Megatron's parser, built once: building it parses TransformerConfig's source for the
    option help (0.6 s a call).  Each parse returns a deep copy, since ``validate_args`` mutates
    list defaults (``high_priority_stream_groups``) that argparse would otherwise share."""
    if not _PARSER:
        parser = _ADD_ARGUMENTS(fresh)
        parse = parser.parse_args

        def parse_copy(*args: Any, **kwargs: Any) -> Any:
            return copy.deepcopy(parse(*args, **kwargs))

        parser.parse_args = parse_copy  # type: ignore[method-assign]
        _PARSER.append(parser)
    return _PARSER[0]


def validate(argv: list[str]) -> tuple[Namespace, Any]:
    """``parse_args`` + ``validate_args`` + ``hybrid_config_from_args`` (the HybridModelConfig and
    its TransformerConfig, whose ``__post_init__`` checks run) on ``argv``; MegatronRefused if any refuses.

    argparse's own refusals (an unknown option, a value read as an option) exit; they become
    MegatronRefused with argparse's message.
    """
    err = io.StringIO()
    try:
        with (
            _argv(argv, _pp(argv)),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
            mock.patch.object(megatron_arguments, "add_megatron_arguments", _parser),
        ):
            warnings.simplefilter("ignore")
            args = megatron_arguments.parse_args()
            megatron_arguments.validate_args(args, {})
            config = hybrid_config_from_args(args)
    except SystemExit as exit_:
        raise MegatronRefused(f"argparse exited ({exit_.code}): {err.getvalue().strip()}") from None
    except (AssertionError, ValueError, TypeError, RuntimeError, ZeroDivisionError) as error:
        raise MegatronRefused(f"{type(error).__name__}: {error}") from error
    return args, config


class _Group:
    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size


def select_segments(main_pattern: str, pp: int, vpp: int | None) -> list[tuple[list[str], int]]:
    """``select_pipeline_segment`` for every (pp rank, virtual stage): what HybridModel builds on each.

    ``vpp`` is the virtual pipeline size Megatron's training passes (None when not interleaved).
    """
    out = []
    for vp_stage in range(vpp) if vpp is not None else [None]:
        for rank in range(pp):
            group = _Group(rank, pp)
            with (
                mock.patch.object(torch.distributed, "get_rank", lambda g=None: g.rank),
                mock.patch.object(torch.distributed, "get_world_size", lambda g=None: g.size),
                mock.patch.object(allocation, "log_on_each_pipeline_stage", lambda *a, **k: None),
                mock.patch.object(allocation, "log_single_rank", lambda *a, **k: None),
            ):
                out.append(allocation.select_pipeline_segment(main_pattern, group, vp_stage))  # type: ignore[arg-type]
    return out


def pipeline_verdict(pattern: str, pp: int, vpp: int | None) -> str | None:
    """Megatron's verdict on running ``pattern`` (unified string) with ``pp`` ranks, and ``vpp``
    virtual stages when the caller asks for them: None if accepted, else the reason.

    Training (``validate_args``) derives the virtual pipeline size from the ``|`` segments; the
    model builder then builds every (rank, virtual stage) with ``select_pipeline_segment``.  A
    requested ``vpp`` that is not the derived one is a refusal too: Megatron has no argument that
    sets it beside a pattern (``--num-virtual-stages-per-pipeline-rank`` is refused).
    """
    argv = [
        f"--hybrid-layer-pattern={pattern}",
        f"--pipeline-model-parallel-size={pp}",
        "--hidden-size=64",
        "--num-attention-heads=4",
        "--max-position-embeddings=128",
        "--position-embedding-type=none",
        "--seq-length=128",
        "--micro-batch-size=1",
        "--padded-vocab-size=128",
        "--mamba-num-heads=4",
        "--mamba-num-groups=1",
    ]
    try:
        args, _ = validate(argv)
    except MegatronRefused as refused:
        return f"training: {refused}"
    derived = args.virtual_pipeline_model_parallel_size
    if vpp is not None and (derived or 1) != vpp:
        return f"training derives vpp={derived or 1} from the pattern, not {vpp}"
    main = pattern.split("/")[0]
    try:
        select_segments(main, pp, derived)
    except ValueError as error:
        return f"model: {error}"
    return None
