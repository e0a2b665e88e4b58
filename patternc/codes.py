"""The diagnostic code table: every code patternc can emit, its name, severity and summary.

Codes are stable: never renumbered, never reused.  Ranges: ``P0xx`` lexical and syntax,
``P1xx`` structure of the parsed pattern, ``P2xx`` family and mixing rules, ``P3xx`` target profiles,
``P4xx`` the torch backend, ``P5xx`` ``patternc build``, ``P6xx`` analysis, ``P7xx`` resource limits
(memory a model would need) and ``P9xx`` configuration files.
The long explanation of each code lives in ``patternc/explain/<code>.md`` (printed by ``patternc explain``), and a test
keeps that directory, this table and ``docs/diagnostics.md`` in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


USAGE_CODES = frozenset({"P313", "P622", "P930"})
"""Codes the CLI reports as usage errors: the command line is wrong, nothing was read, exit code 2."""


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    severity: Severity
    summary: str
    example: tuple[str, ...] = ()
    """``patternc`` arguments that trigger this code (run by the docs test and ``explain``).  The files an
    example reads are package data, ``patternc/explain/examples/<code>/`` (``patternc.explain.example_files``)."""


_E, _W, _N = Severity.ERROR, Severity.WARNING, Severity.NOTE


_TABLE: tuple[Code, ...] = (
    Code("P001", "unknown-symbol", _E, "a character that is no layer symbol", ("check", "M-M*X-")),
    Code(
        "P002",
        "symbol-not-in-dialect",
        _E,
        "a layer symbol that the chosen dialect does not admit",
        ("check", "--dialect", "hf", "M-G*-"),
    ),
    Code(
        "P003",
        "whitespace-not-allowed",
        _E,
        "whitespace in a strict dialect",
        ("check", "--dialect", "megatron", "M- M*-"),
    ),
    Code(
        "P004",
        "comment-not-allowed",
        _E,
        "a `#` comment in a strict dialect",
        ("check", "--dialect", "megatron", "M-M*- # attention"),
    ),
    Code(
        "P005",
        "repetition-not-allowed",
        _E,
        "a group or repetition in a strict dialect",
        ("check", "--dialect", "megatron", "(M-){2}M*-"),
    ),
    Code(
        "P006",
        "pipe-not-allowed",
        _E,
        "a `|` pipeline separator in a dialect without pipeline stages",
        ("check", "--dialect", "hf", "M-M*|M-M*"),
    ),
    Code(
        "P007",
        "mtp-not-allowed",
        _E,
        "a `/` multi-token-prediction part in a dialect without MTP",
        ("check", "--dialect", "hf", "MEME/*E"),
    ),
    Code(
        "P008", "unbalanced-group", _E, "a `(` or `[` without its closing bracket, or the reverse", ("check", "(M-M*-")
    ),
    Code(
        "P009",
        "unexpected-token",
        _E,
        "a structural character where the grammar does not allow it",
        ("check", "M-{3}}"),
    ),
    Code("P010", "repetition-count-zero", _E, "a repetition count of 0", ("check", "(M-){0}M*-")),
    Code(
        "P011",
        "too-many-layers",
        _E,
        "the pattern expands to more layers than the configured limit",
        ("check", "(M-){60000}"),
    ),
    Code(
        "P012",
        "input-too-large",
        _E,
        "the input text is longer than the configured limit",
        ("check", "--max-chars", "4", "M-M*-"),
    ),
    Code(
        "P013",
        "too-many-diagnostics",
        _N,
        "further diagnostics were suppressed",
        ("check", "--max-diagnostics", "2", "Mxyz"),
    ),
    Code(
        "P014",
        "unknown-layer-type",
        _E,
        "a name in a `layers_block_type` list that is no layer type",
        ("convert", "--from-list", "mamba,mlp,mamba2"),
    ),
    Code(
        "P015",
        "no-list-name",
        _E,
        "a layer kind that transformers' `layers_block_type` cannot name",
        ("convert", "--to", "layers_block_type", "MG*-"),
    ),
    Code(
        "P016",
        "pattern-also-a-path",
        _N,
        "an argument that is a valid pattern and also the name of a file or directory: read as the pattern",
        ("check", "E"),
    ),
    Code(
        "P017",
        "read-as-path",
        _N,
        "an argument made of pattern characters that names a file or directory and is no valid pattern: "
        "read as a config path",
        ("check", "M-/"),
    ),
    Code(
        "P018",
        "parallel-not-allowed",
        _E,
        "a parallel layer `[...]` in a dialect that cannot spell one",
        ("check", "--dialect", "megatron", "[*M]-[*M]-"),
    ),
    Code(
        "P019",
        "bad-parallel-layer",
        _E,
        "a parallel layer `[...]` that is not two or more distinct token mixers",
        ("check", "[*M-]-[*M]-"),
    ),
    Code("P101", "empty-pattern", _E, "the main pattern has no layer", ("check", "/*E")),
    Code("P102", "empty-pipeline-stage", _W, "a pipeline stage with no layer", ("check", "M-M*-||M-M*-")),
    Code("P103", "pipe-in-mtp", _E, "a `|` inside a multi-token-prediction part", ("check", "M-M*-/*E|*E")),
    Code(
        "P104",
        "empty-mtp-part",
        _E,
        "an empty multi-token-prediction part (a trailing or doubled `/`)",
        ("check", "M-M*-/"),
    ),
    Code("P105", "mtp-depth-mismatch", _E, "multi-token-prediction parts that differ", ("check", "MEME/*E/ME")),
    Code(
        "P106",
        "attention-mla-mix",
        _E,
        "standard attention `*` together with DSA `D` or MLA `+`",
        ("check", "M*M*/MD"),
    ),
    Code(
        "P107",
        "segments-on-one-rank",
        _E,
        "several `|` segments with pp=1: Megatron-Core's training refuses them, its model builder keeps the first",
        ("check", "--pp", "1", "M-M*-|M-M*-"),
    ),
    Code(
        "P108",
        "pattern-read-as-option-end",
        _E,
        "the pattern `--`, which Megatron's argparse command line reads as the end of options",
        ("build", "(-){2}", "-o", "out", "--target", "megatron"),
    ),
    Code("P201", "mixed-dense-moe", _W, "dense MLP `-` and MoE `E` layers in one model", ("check", "M-M*EM-")),
    Code(
        "P202",
        "no-sequence-mixer",
        _W,
        "no Mamba, DeltaNet or attention layer: tokens never interact",
        ("check", "EEEE"),
    ),
    # P3xx: target profiles (patternc/targets/).
    Code(
        "P301",
        "symbol-not-in-target",
        _E,
        "a layer kind the chosen target cannot build",
        ("check", "--target", "vllm", "M-G*-"),
    ),
    Code(
        "P302",
        "mtp-symbol-not-in-target",
        _E,
        "a multi-token-prediction layer kind the chosen target cannot build",
        ("check", "--target", "vllm", "M*M*/MM"),
    ),
    Code(
        "P303",
        "mtp-depth-unsupported",
        _E,
        "more multi-token-prediction depths than the chosen target supports",
        ("check", "--target", "vllm", "MEM*E/*E/*E"),
    ),
    Code(
        "P304",
        "mtp-layout-unsupported",
        _E,
        "a multi-token-prediction block other than the one the chosen target hard-codes",
        ("check", "--target", "llama.cpp", "MEM*E/E*"),
    ),
    Code(
        "P305",
        "mtp-dropped",
        _W,
        "the chosen target loads the model without its multi-token-prediction block",
        ("check", "--target", "transformers-nemotron_h", "MEM*E/*E"),
    ),
    Code(
        "P306",
        "no-attention-for-cache",
        _E,
        "no attention layer: the chosen target raises in forward whenever its cache is on",
        ("check", "--target", "transformers-nemotron_h", "M-M-M-"),
    ),
    Code(
        "P307",
        "target-version-required",
        _N,
        "a layer kind that needs a newer release of the chosen target",
        ("check", "--target", "transformers-nemotron_h", "M-M*-"),
    ),
    Code(
        "P308",
        "unpaired-layer",
        _E,
        "the chosen target pairs every sequence mixer with one FFN, and a layer cannot be paired",
        ("check", "--target", "transformers-bamba", "M-MM*-"),
    ),
    Code(
        "P309",
        "one-ffn-kind-per-model",
        _E,
        "dense MLP and MoE layers in one model, for a target that builds one FFN kind",
        ("check", "--target", "llama.cpp", "M-M*EM-"),
    ),
    Code(
        "P310",
        "sglang-drops-mlp",
        _N,
        "SGLang's transformers patch drops `-` layers from transformers-side configs",
        ("check", "--target", "sglang", "M-M*-"),
    ),
    Code(
        "P311",
        "mamba-size-not-expressible",
        _E,
        "Mamba heads x head_dim is no integer multiple of hidden_size, as the chosen target requires",
        ("check", "--target", "transformers-bamba", "config.json"),
    ),
    Code(
        "P312",
        "mtp-depth-exported-wrong",
        _W,
        "Megatron-Bridge exports the logical MTP depth where the checkpoint has one physical depth",
        ("check", "--target", "megatron-bridge", "MEM*E/*E/*E"),
    ),
    Code(
        "P313",
        "unknown-target",
        _E,
        "a target name that no profile has",
        ("check", "--target", "tensorrt", "M-M*-"),
    ),
    # P317-P319: the llama.cpp profile (patternc/targets/), from llama.cpp's source and runs of it.
    Code(
        "P317",
        "llama-cpp-no-attention",
        _E,
        "no attention layer: llama.cpp's Nemotron-H aborts at the first decode step",
        ("check", "--target", "llama.cpp", "M-M-M-"),
    ),
    Code(
        "P318",
        "llama-cpp-activation",
        _E,
        "an activation llama.cpp does not compute (it hard-codes relu² for MLPs and experts, SiLU in Mamba)",
        ("check", "--target", "llama.cpp", "config.json"),
    ),
    Code(
        "P319",
        "llama-cpp-setting-unsupported",
        _E,
        "a setting llama.cpp's converter refuses, its loader rejects or its graph ignores",
        ("check", "--target", "llama.cpp", "config.json"),
    ),
    Code(
        "P314",
        "megatron-ffn-activation",
        _E,
        "FFN activations Megatron-Core cannot set: one activation (relu², SwiGLU or GELU) for every MLP and expert",
        ("check", "--target", "megatron-core", "config.json"),
    ),
    Code(
        "P315",
        "megatron-mamba-mixer",
        _E,
        "a Mamba2 mixer other than Megatron-Core's MambaMixer (4-wide convolution with bias, no projection bias)",
        ("check", "--target", "megatron-core", "config.json"),
    ),
    Code(
        "P316",
        "megatron-not-expressible",
        _E,
        "hyper-parameters no Megatron-Core argument reproduces (bias layout, router normalisation, multipliers)",
        ("check", "--target", "megatron-core", "config.json"),
    ),
    # P320-P321: a config of another family, judged by that family's architecture (patternc/targets/support_facts.py).
    Code(
        "P320",
        "family-not-in-target",
        _E,
        "the chosen target has no code for this config's model family (its architecture)",
        ("check", "--target", "llama.cpp", "config.json"),
    ),
    Code(
        "P321",
        "family-in-target",
        _N,
        "the chosen target builds this config's model family by its own architecture, with the source of that fact",
        ("check", "--target", "vllm", "config.json"),
    ),
    # P4xx: the torch backend (backends/patternc_torch/).
    Code(
        "P401",
        "torch-cannot-build",
        _E,
        "a layer kind or flavour the torch backend has no module for",
        ("run", "tests/fixtures/torch/P401", "--ids", "1 2"),
    ),
    Code(
        "P402",
        "model-source-unreadable",
        _E,
        "the model to load is neither a model directory nor a readable config",
        ("run", "no-such-model", "--ids", "1 2"),
    ),
    Code(
        "P403",
        "weights-missing",
        _E,
        "tensors of the model that the checkpoint does not hold",
        ("run", "tests/fixtures/torch/P403", "--ids", "1 2"),
    ),
    Code(
        "P404",
        "weights-unexpected",
        _E,
        "tensors of the checkpoint that the model has no place for",
        ("run", "tests/fixtures/torch/P404", "--ids", "1 2"),
    ),
    Code(
        "P405",
        "weight-shape-mismatch",
        _E,
        "a checkpoint tensor whose shape is not the model's, or whose dtype is not a floating-point one it can take",
        ("run", "tests/fixtures/torch/P405", "--ids", "1 2"),
    ),
    Code(
        "P406",
        "tokenizer-unavailable",
        _E,
        "`run --prompt` without a usable local tokenizer (none given, none beside the model, or unloadable)",
        ("run", "tests/fixtures/torch/P406", "--prompt", "hello"),
    ),
    Code(
        "P407",
        "model-argument-invalid",
        _E,
        "an argument of the torch API that cannot be used: device, dtype, input ids, mask or generation settings",
        ("run", "tests/fixtures/torch/P407", "--ids", "1 2", "--device", "abacus"),
    ),
    Code(
        "P408",
        "random-weights",
        _N,
        "`run` was given a model without weights and runs a random initialisation",
        ("run", "tests/fixtures/torch/P408", "--ids", "1 2", "-n", "2"),
    ),
    Code(
        "P420",
        "parallel-plan-impossible",
        _E,
        "a model that cannot be split as asked: heads, groups, sizes or vocabulary that do not divide by the"
        " ranks, a kind without a tensor-parallel plan, pipeline stages that are not the ranks",
        ("run", "M*-", "--ids", "1 2", "--tp", "3"),
    ),
    Code(
        "P421",
        "parallel-launch-invalid",
        _E,
        "`run --tp/--pp/--fsdp` outside a torchrun launch, with another number of processes, or combined",
        ("run", "*-", "--ids", "1 2", "--tp", "2"),
    ),
    # P9xx: configuration files (patternc/config/).
    Code(
        "P930",
        "unknown-code",
        _E,
        "a `--select`/`--ignore` value that is no diagnostic code, code prefix or code name",
        ("check", "--ignore", "P99", "M-M*-"),
    ),
    Code(
        "P901",
        "config-unreadable",
        _E,
        "a config path that does not exist, is a dangling link, or is a directory without config.json",
        ("check", "ckpt"),
    ),
    Code(
        "P902",
        "config-too-large",
        _E,
        "a config file larger than the size limit (16 MiB), refused before reading",
        ("check", "--max-chars", "64", "config.json"),
    ),
    Code(
        "P903",
        "config-not-json",
        _E,
        "a config that is not UTF-8 JSON, nests too deeply, or is not a JSON object",
        ("check", "config.json"),
    ),
    Code(
        "P904",
        "duplicate-config-key",
        _W,
        "a key that appears twice in one JSON object (the last value is used)",
        ("check", "config.json"),
    ),
    Code(
        "P905",
        "unsupported-model-type",
        _E,
        "a config whose `model_type` is missing or not a hybrid family patternc reads",
        ("check", "config.json"),
    ),
    Code(
        "P906",
        "invalid-config-value",
        _E,
        "a config value of the wrong type or out of range (zero, negative, NaN, infinite, too large)",
        ("check", "config.json"),
    ),
    Code(
        "P907",
        "missing-config-value",
        _E,
        "a value that a layer kind of the model needs is null or empty",
        ("check", "config.json"),
    ),
    Code(
        "P908",
        "inconsistent-config-values",
        _E,
        "config values that contradict each other (divisibility, sizes, layer counts)",
        ("check", "config.json"),
    ),
    Code(
        "P909",
        "mamba-inner-size-mismatch",
        _W,
        "Mamba heads x head size differs from expand x hidden_size (the heads win)",
        ("check", "config.json"),
    ),
    Code(
        "P910",
        "layer-count-mismatch",
        _W,
        "`num_hidden_layers` differs from the number of layers in the pattern",
        ("check", "config.json"),
    ),
    Code(
        "P911",
        "config-defaults-used",
        _N,
        "keys the config omits, filled with the defaults of transformers' config class",
        ("check", "config.json"),
    ),
    Code(
        "P912",
        "unknown-config-keys",
        _N,
        "keys the dialect does not define, kept but not used",
        ("check", "config.json"),
    ),
    Code(
        "P913",
        "vestigial-config-key",
        _N,
        "keys that have no effect on this model (MoE keys in a dense model, …)",
        ("check", "config.json"),
    ),
    Code(
        "P914",
        "not-expressible",
        _E,
        "a config whose layers patternc cannot express (shared blocks, scaled RoPE)",
        ("check", "config.json"),
    ),
    Code(
        "P915",
        "config-spelling",
        _N,
        "an alternative spelling was read (an alias key, legacy layer names, a nested config)",
        ("check", "config.json"),
    ),
    Code(
        "P916",
        "value-ignored",
        _W,
        "a config value that transformers ignores or overrides when it builds the model",
        ("check", "config.json"),
    ),
    Code(
        "P917",
        "layout-key-missing",
        _E,
        "a config without the key(s) that carry its layer stack, or with one misspelled (transformers would build its default stack)",
        ("check", "config.json"),
    ),
    Code(
        "P918",
        "misspelled-config-key",
        _W,
        "an unknown key that looks like a known one the config leaves out (its default is used instead)",
        ("check", "config.json"),
    ),
    # P5xx: patternc build (patternc/commands/build.py, backends/patternc_transformers/).
    Code(
        "P501",
        "target-not-exact",
        _E,
        "the build target cannot express the model exactly (or no standard architecture can)",
        ("build", "M-M*-", "-o", "out", "--target", "mamba2"),
    ),
    Code(
        "P502",
        "output-exists",
        _E,
        "the output directory exists (without `--force`) or holds the build's own input",
        ("build", "MM", "-o", "out"),
    ),
    Code(
        "P503",
        "pickle-refused",
        _E,
        "pickled weights (`.bin`, `.pt`, `.pth`, `.ckpt`): patternc never loads pickles",
        ("build", "MM", "-o", "out", "--weights", "ckpt"),
    ),
    Code(
        "P504",
        "weights-not-found",
        _E,
        "no safetensors weights where `--weights` points, or an index that names absent shards",
        ("build", "MM", "-o", "out", "--weights", "ckpt"),
    ),
    Code(
        "P505",
        "missing-tensors",
        _E,
        "tensors the source model needs are not in the checkpoint",
        ("build", "M", "-o", "out", "--weights", "ckpt"),
    ),
    Code(
        "P506",
        "unexpected-tensors",
        _W,
        "tensors in the checkpoint that are no part of the source model (not written)",
        (
            "build",
            "M",
            "-o",
            "out",
            "--weights",
            "ckpt",
            "--set",
            "hidden_size=2",
            "--set",
            "vocab_size=2",
            "--set",
            "mamba_num_heads=1",
            "--set",
            "mamba_head_dim=2",
            "--set",
            "ssm_state_size=1",
            "--set",
            "conv_kernel=2",
        ),
    ),
    Code(
        "P507",
        "tensor-shape-mismatch",
        _E,
        "a checkpoint tensor whose shape (or dtype) disagrees with the config",
        ("build", "M", "-o", "out", "--weights", "ckpt"),
    ),
    Code(
        "P508",
        "build-unsupported",
        _E,
        "a build patternc cannot do here: weights of an architecture it does not convert, a missing backend",
        ("build", "config.json", "-o", "out", "--weights", "ckpt"),
    ),
    Code(
        "P509",
        "write-failed",
        _E,
        "the output directory could not be written (nothing is left behind)",
        ("build", "MM", "-o", "blocker/out"),
    ),
    Code(
        "P511",
        "engine-unsupported-source",
        _E,
        "a model family that has no Megatron-Core recipe in patternc",
        ("build", "config.json", "-o", "out", "--target", "megatron"),
    ),
    Code(
        "P510",
        "bad-checkpoint",
        _E,
        "a checkpoint file that is not valid safetensors, or an unreadable index",
        ("build", "MM", "-o", "out", "--weights", "ckpt"),
    ),
    # P516-P517: build --target llama.cpp (backends/patternc_transformers/llamacpp.py).
    Code(
        "P516",
        "llama-cpp-no-tokenizer",
        _W,
        "no tokenizer files beside the source to copy: llama.cpp's converter reads them from the directory",
        ("build", "M-M*-", "-o", "out", "--target", "llama.cpp"),
    ),
    Code(
        "P517",
        "llama-cpp-incomplete",
        _W,
        "weights the converter reads are absent: a config-only build, or an MTP block without `mtp.*` tensors",
        ("build", "M-M*-", "-o", "out", "--target", "llama.cpp"),
    ),
    Code(
        "P512",
        "set-key-not-written",
        _E,
        "a `--set` key that the config being written cannot hold (nothing is written)",
        ("build", "MM", "-o", "out", "--set", "sliding_window=4"),
    ),
    Code(
        "P513",
        "source-key-not-written",
        _N,
        "keys of the source config that the written config does not hold, each with the reason",
        ("build", "config.json", "-o", "out"),
    ),
    # P6xx: model analysis (patternc/analysis/: stats, split, gen, pipeline rules).
    Code(
        "P601",
        "no-layer-hyperparameters",
        _E,
        "a layer kind without hyper-parameters (a bare pattern's G, D, +): it cannot be counted",
        ("stats", "M-G-"),
    ),
    Code(
        "P602",
        "pipe-segments-not-divisible",
        _E,
        "the number of `|` segments is not divisible by the pipeline-parallel size",
        ("split", "M-M-|M*-M-|M-", "--pp", "2"),
    ),
    Code(
        "P603",
        "vpp-segment-mismatch",
        _E,
        "the `|` segments are not pp x vpp (Megatron-Core derives vpp from the pattern)",
        ("split", "M-|M-|M*-|M-", "--pp", "2", "--vpp", "3"),
    ),
    Code(
        "P604",
        "pipeline-without-pipes",
        _W,
        "pp > 1 for a pattern without `|`: Megatron-Core's deprecated automatic even split",
        ("split", "M-M-M*-M", "--pp", "2", "--as-written"),
    ),
    Code(
        "P605",
        "uneven-automatic-split",
        _E,
        "pp > 1, no `|`, and a layer count that pp does not divide (Megatron-Core raises)",
        ("split", "M-M-M*-M-", "--pp", "2", "--as-written"),
    ),
    Code(
        "P606",
        "vpp-without-pipes",
        _E,
        "virtual pipeline stages for a pattern without `|` (Megatron-Core raises)",
        ("split", "M-M-M*-M", "--pp", "2", "--vpp", "2", "--as-written"),
    ),
    Code(
        "P607",
        "ratio-infeasible",
        _E,
        "layer ratios whose rounded counts do not fit in the layers, or out of range",
        ("gen", "--layers", "3", "--attention", "0.5", "--mlp", "0.5"),
    ),
    Code(
        "P608",
        "megatron-ratio-miscount",
        _E,
        "Megatron-Core's pattern_from_ratios would return a pattern with other counts than asked",
        ("gen", "--layers", "3", "--attention", "0.5", "--mlp", "0.5", "--megatron-compatible"),
    ),
    Code(
        "P609",
        "ratio-rounds-to-zero",
        _W,
        "a non-zero ratio that rounds to no layer at all",
        ("gen", "--layers", "2", "--attention", "0.25"),
    ),
    # P610-P619: split and gen (patternc/commands/split.py, gen.py; patternc/analysis/).
    Code(
        "P610",
        "more-segments-than-layers",
        _E,
        "`split` asked for more pipeline segments (pp x vpp) than the model has decoder layers",
        ("split", "M-M*-", "--pp", "8"),
    ),
    Code(
        "P611",
        "pipe-inside-decoder-layer",
        _E,
        "a written `|` falls between a mixer and its FFN, which one decoder layer of the --like family holds",
        ("split", "M|-M-", "--pp", "2", "--like", "bamba.json"),
    ),
    Code(
        "P612",
        "moe-without-ffn",
        _W,
        "`gen --moe` with no FFN share (--mlp 0): no layer becomes a mixture of experts",
        ("gen", "--layers", "8", "--attention", "0.25", "--moe"),
    ),
    Code(
        "P613",
        "ffn-without-mixer",
        _E,
        "`gen` asked for more FFN layers than mixers, so some FFN has no mixer of its own before it",
        ("gen", "--layers", "10", "--attention", "0.1", "--mlp", "0.6"),
    ),
    # P620-P624: patternc draw (patternc/draw.py, patternc/commands/draw.py).
    Code(
        "P620",
        "picture-exists",
        _E,
        "the picture's file exists and `--force` was not given (it is never replaced silently)",
        ("draw", "M-M*-", "-o", "picture.svg"),
    ),
    Code(
        "P621",
        "picture-unwritable",
        _E,
        "the picture cannot be written there (a missing directory, a directory in its place, no permission)",
        ("draw", "M-M*-", "-o", "missing/picture.svg"),
    ),
    Code(
        "P622",
        "picture-format-unknown",
        _E,
        "the output file name ends in neither `.svg` nor `.html`/`.htm`, and `--format` was not given",
        ("draw", "M-M*-", "-o", "picture.png"),
    ),
    # P7xx: resource limits (patternc/footprint.py).
    Code(
        "P701",
        "model-too-large",
        _E,
        "the model's parameters would need more bytes than the limit or the memory available (nothing allocated)",
        ("build", "M-M*-", "-o", "out", "--set", "hidden_size=2147483647", "--set", "vocab_size=2147483647"),
    ),
)

CODES: tuple[Code, ...] = tuple(sorted(_TABLE, key=lambda c: c.code))
"""Every code, in code order (each range is declared where its owner module's entries live)."""

BY_CODE: dict[str, Code] = {c.code: c for c in CODES}
BY_NAME: dict[str, Code] = {c.name: c for c in CODES}


def lookup(code_or_name: str) -> Code | None:
    """Find a code by ``P001``, ``p001`` or its name ``unknown-symbol``."""
    key = code_or_name.strip()
    return BY_CODE.get(key.upper()) or BY_NAME.get(key.lower())
