"""``split``, ``stats`` and ``gen`` for design work: whole decoder layers, no empty segment, one set of
bare-pattern defaults with ``--set``/``--like``, mixer-then-FFN generation, and JSON valid in every outcome."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.analysis import generate, optimal_partition
from patternc.analysis.pipeline import decoder_layers, split_model, stage_costs
from patternc.analysis.ratios import block_pattern, even_pattern
from patternc.check import CheckRequest, Pipeline, check
from patternc.cli import app
from patternc.config import read_config
from patternc.dialects import Dialect
from patternc.inputs import load_source
from patternc.limits import DEFAULT_LIMITS
from patternc.schemas import schema_text
from tests.cli.test_analysis import brute_force

runner = CliRunner()
HUB = Path(__file__).resolve().parents[1] / "fixtures" / "hub"
H8B = str(HUB / "Nemotron-H-8B-Base-8K")
NANO = str(HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
SCRATCH = Path(tempfile.mkdtemp(prefix="patternc-design-"))


def _config(name: str, data: dict[str, Any]) -> str:
    path = SCRATCH / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


GRANITE = {
    "model_type": "granitemoehybrid",
    "num_hidden_layers": 4,
    "layer_types": ["mamba", "mamba", "mamba", "attention"],
    "vocab_size": 32,
    "hidden_size": 16,
    "intermediate_size": 8,
    "shared_intermediate_size": 8,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "mamba_n_heads": 4,
    "mamba_n_groups": 1,
    "mamba_d_state": 8,
    "mamba_d_conv": 4,
}


def _json(args: list[str]) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, args)
    return result.exit_code, json.loads(result.stdout)


def _validate(name: str, data: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.loads(schema_text(name)))


# -- the partition ----------------------------------------------------------------------------------


@given(
    st.lists(st.integers(0, 50), max_size=8),
    st.integers(1, 4),
    st.integers(0, 60),
    st.integers(0, 60),
)
@settings(max_examples=300, deadline=None)
def test_nonempty_split_is_optimal_against_brute_force(costs: list[int], stages: int, first: int, last: int) -> None:
    if len(costs) < stages:
        with pytest.raises(ValueError, match="fewer units"):
            optimal_partition(costs, stages, first=first, last=last, nonempty=True)
        return
    result = optimal_partition(costs, stages, first=first, last=last, nonempty=True)
    assert min(result.sizes) >= 1 and sum(result.sizes) == len(costs)
    assert result.costs == stage_costs(costs, result.sizes, first, last)
    assert result.max_cost == brute_force(costs, stages, first, last, nonempty=True)


# -- defect 5: whole decoder layers, no empty segment ------------------------------------------------


def test_split_keeps_a_granite_decoder_layer_whole() -> None:
    """Issue 12 defect 5: `MEM|EME*E` cut the second decoder layer (`ME`) of a GraniteMoeHybrid model."""
    path = _config("granite", GRANITE)
    spec = read_config(path).spec
    assert spec is not None and spec.pattern.flat == "MEMEME*E"
    assert decoder_layers(spec) == (2, 2, 2, 2)
    per_symbol = split_model(spec, 3)  # the optimum over single symbols cuts inside decoder layers: ME|MEM|E*E
    assert optimal_partition(per_symbol.layer_costs, 3, first=per_symbol.first, last=per_symbol.last).sizes == (2, 3, 3)
    code, data = _json(["split", path, "--pp", "3", "--json"])
    assert code == 0, data
    assert data["layers_per_decoder_layer"] == 2
    assert [(s["layers"], s["decoder_layers"]) for s in data["balanced"]["segments"]] == [(2, 1), (2, 1), (4, 2)]
    assert data["balanced"]["pattern"] == "ME|ME|ME*E"
    text = runner.invoke(app, ["split", path, "--pp", "2"]).stdout
    assert "a granitemoehybrid decoder layer is a mixer and its FFN" in text
    code, data = _json(["split", path, "--pp", "5", "--json"])
    assert code == 1 and [d["code"] for d in data["diagnostics"]] == ["P610"]
    _validate("split-output", data)


def test_split_flops_leaves_no_empty_last_segment() -> None:
    """Issue 12 defect 5: with --cost flops the LM head alone outweighed the layers, and the last segment
    came out empty, which `check --pp` then warned about (P102)."""
    loaded = load_source("M-M*-M-M*-", like=H8B)
    assert loaded.spec is not None
    per_symbol = split_model(loaded.spec, 4, cost="flops")  # unconstrained, the LM head sits alone on the last
    assert optimal_partition(per_symbol.layer_costs, 4, first=per_symbol.first, last=per_symbol.last).sizes[-1] == 0
    code, data = _json(["split", "M-M*-M-M*-", "--pp", "4", "--cost", "flops", "--like", H8B, "--json"])
    assert code == 0, data
    assert all(s["layers"] > 0 for s in data["balanced"]["segments"])
    assert data["balanced"]["pattern"] == "M-M*-|M-M|*|-"
    assert _warnings(data["balanced"]["pattern"], (4, None)) == set()


def test_split_refuses_more_segments_than_layers() -> None:
    result = runner.invoke(app, ["split", "M-M*-", "--pp", "8"])
    assert result.exit_code == 1 and "[P610]" in result.output and "3 segments would be empty" in result.output


BAMBA = _config(
    "bamba",
    {
        "model_type": "bamba",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "intermediate_size": 64,
        "vocab_size": 32,
        "mamba_n_heads": 4,
        "mamba_d_head": 32,
        "attn_layer_indices": [],
    },
)


def test_a_written_pipe_inside_a_paired_decoder_layer_is_p611() -> None:
    result = runner.invoke(app, ["split", "M|-M-", "--pp", "2", "--like", BAMBA])
    assert result.exit_code == 1 and "[P611]" in result.output
    result = runner.invoke(app, ["split", "M-|M-", "--pp", "2", "--like", BAMBA])
    assert result.exit_code == 0, result.output


SYMBOLS = st.text(alphabet="M*-E", min_size=1, max_size=14)


@st.composite
def split_requests(draw: st.DrawFn) -> tuple[list[str], int, int]:
    """A SOURCE for split (a bare pattern, maybe with MTP, or a paired-family config) and pp, vpp."""
    if draw(st.booleans()):
        text = draw(SYMBOLS) + draw(st.sampled_from(["", "/*E", "/*-/*-"]))
        source = [text, "--dialect", "megatron"]
    else:
        n = draw(st.integers(1, 5))
        mixers = draw(st.lists(st.sampled_from(["mamba", "attention"]), min_size=n, max_size=n))
        experts = draw(st.sampled_from([0, 4]))
        data = {**GRANITE, "num_hidden_layers": n, "layer_types": mixers, "num_local_experts": experts}
        source = [_config(f"granite-{n}-{''.join(m[0] for m in mixers)}-{experts}", data)]
    return source, draw(st.integers(1, 4)), draw(st.integers(1, 2))


def _warnings(pattern: str, pipeline: tuple[int, int | None] | None = None) -> set[str]:
    """What ``patternc check PATTERN --dialect megatron [--pp K [--vpp V]]`` reports (its library call)."""
    split = Pipeline(*pipeline) if pipeline is not None else None
    outcome = check(CheckRequest(pattern, Dialect.MEGATRON, DEFAULT_LIMITS, pipeline=split))
    assert outcome.ok, [d.message for d in outcome.analysis.diagnostics]
    return {d.code for d in outcome.analysis.diagnostics if d.severity.value != "note"}


@given(split_requests(), st.sampled_from(["params", "flops"]))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_proposed_split_passes_check_and_keeps_decoder_layers(
    request: tuple[list[str], int, int], cost: str
) -> None:
    source, pp, vpp = request
    # Options first and SOURCE after `--`: a pattern such as `--` (two MLPs) is itself click's separator.
    text, *options = source
    argv = ["split", *options, "--pp", str(pp), "--vpp", str(vpp), "--cost", cost, "--json", "--", text]
    code, data = _json(argv)
    _validate("split-output", data)
    if code == 1 and data["diagnostics"][0]["code"] != "P610":  # Megatron-Core's rules, as `check --pp` has them
        assert pp == 1 and vpp > 1 and all(d["severity"] == "error" for d in data["diagnostics"])
        return
    if code == 1:
        assert [d["code"] for d in data["diagnostics"]] == ["P610"]
        units = 2 if len(source) == 1 else 1
        layers = (
            len(source[0].split("/")[0])
            if len(source) > 1
            else 2 * json.loads(Path(source[0]).read_text())["num_hidden_layers"]
        )
        assert pp * vpp > layers // units
        return
    assert code == 0
    plan = data["balanced"]
    assert len(plan["segments"]) == pp * vpp and all(s["layers"] > 0 for s in plan["segments"])
    if len(source) == 1:  # a GraniteMoeHybrid config: every segment is whole (mixer, FFN) decoder layers
        assert data["layers_per_decoder_layer"] == 2
        assert all(re.fullmatch(r"(?:[M*][-E])+", s["pattern"]) for s in plan["segments"]), plan["pattern"]
        assert all(s["layers"] == 2 * s["decoder_layers"] for s in plan["segments"])
    before = _warnings(plan["pattern"].replace("|", ""))
    after = _warnings(plan["pattern"], (pp, vpp if vpp > 1 else None))
    assert after <= before, (plan["pattern"], after - before)


# -- one set of defaults, --set and --like ------------------------------------------------------------


@pytest.mark.parametrize("sets", [[], ["--set", "hidden_size=128", "--set", "vocab_size=1000"]])
def test_stats_sizes_a_bare_pattern_as_build_does(tmp_path: Path, sets: list[str]) -> None:
    """Issue 12: `stats "M-M*-"` sized it at hidden 4096 while `build` used 64."""
    code, data = _json(["stats", "M-M*E", "--json", *sets])
    assert code == 0, data
    assert data["defaults"] is True
    out = tmp_path / "model"
    built = runner.invoke(app, ["build", "M-M*E", "-o", str(out), "--json", *sets])
    assert built.exit_code == 0, built.output
    config = json.loads((out / "config.json").read_text())
    assert config["hidden_size"] == data["params"]["embedding"] // config["vocab_size"]
    assert json.loads(built.stdout)["stored_elements"] == data["params"]["total"]


def test_like_takes_every_hyperparameter_of_a_config() -> None:
    """The 8B model's own pattern sized --like its config gives the config's exact figures."""
    spec = read_config(H8B).spec
    assert spec is not None
    code, direct = _json(["stats", H8B, "--json"])
    assert code == 0
    code, like = _json(["stats", spec.pattern.flat, "--like", H8B, "--json"])
    assert code == 0, like
    assert like["params"] == direct["params"] and like["flops_per_token"] == direct["flops_per_token"]
    assert like["like"] == H8B and like["defaults"] is False
    code, wider = _json(["stats", "M-M*-", "--like", H8B, "--set", "intermediate_size=1024", "--json"])
    assert code == 0 and wider["overrides"] == {"intermediate_size": 1024}
    mlp = next(k for k in wider["params"]["per_kind"] if k["symbol"] == "-")
    assert mlp["params"] == 2 * (2 * 4096 * 1024 + 4096)  # up + down (relu2, no bias) and the pre-norm
    code, split = _json(["split", "M-M*-M-M*-", "--pp", "2", "--like", H8B, "--json"])
    assert code == 0 and split["like"] == H8B and split["balanced"]["pattern"].count("|") == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["stats", NANO, "--set", "hidden_size=8"], "applies to a bare pattern SOURCE only"),
        (["split", NANO, "--pp", "2", "--like", H8B], "applies to a bare pattern SOURCE only"),
        (["stats", "M-M*-", "--set", "hiden_size=8"], "did you mean `hidden_size`"),
        (["stats", "M-M*-", "--set", "num_hidden_layers=8"], "change the pattern instead"),
        (["stats", "M-M*-", "--like", BAMBA, "--set", "attn_layer_indices=[1]"], "change the pattern instead"),
        (["stats", "M-M*-", "--like", BAMBA, "--set", "mamba_n_head=8"], "did you mean `mamba_n_heads`"),
    ],
)
def test_set_and_like_usage_errors(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and needle in result.output


def test_like_without_the_layer_kind_is_p601() -> None:
    mamba = _config(
        "mamba2",
        {
            "model_type": "mamba2",
            "num_hidden_layers": 2,
            "hidden_size": 16,
            "expand": 2,
            "num_heads": 4,
            "head_dim": 8,
            "n_groups": 1,
            "vocab_size": 32,
        },
    )
    code, data = _json(["stats", "M*M", "--like", mamba, "--json"])
    assert code == 1 and [d["code"] for d in data["diagnostics"]] == ["P601"]
    assert data["diagnostics"][0]["span"]["start"] == 1
    _validate("stats-output", data)


# -- JSON: one object, valid against the published schema, in every outcome ----------------------------


@pytest.mark.parametrize(
    ("name", "args", "exit_code"),
    [
        ("stats-output", ["stats", "M-M*-", "--json"], 0),
        ("stats-output", ["stats", "M-M*X", "--json"], 1),
        ("stats-output", ["stats", "M-G-", "--json"], 1),
        ("stats-output", ["stats", "MEM*E/*E", "--like", NANO, "--json"], 0),
        ("split-output", ["split", NANO, "--pp", "4", "--json"], 0),
        ("split-output", ["split", "M-M*-|M-M*-", "--pp", "2", "--json"], 0),
        ("split-output", ["split", "M-M*-|M-M*-|M-", "--pp", "2", "--json"], 1),
        ("split-output", ["split", "M-M*-M-", "--pp", "2", "--as-written", "--json"], 1),
        ("split-output", ["split", "M-X", "--pp", "2", "--json"], 1),
        ("gen-output", ["gen", "--layers", "12", "--attention", "0.25", "--mlp", "0.5", "--json"], 0),
        ("gen-output", ["gen", "--layers", "8", "--attention", "0.25", "--moe", "--json"], 0),
        ("gen-output", ["gen", "--layers", "3", "--attention", "0.5", "--mlp", "0.5", "--json"], 1),
        (
            "gen-output",
            ["gen", "--layers", "4", "--attention", "0.25", "--mtp", "1", "--mtp-pattern", "*X", "--json"],
            1,
        ),
    ],
)
def test_json_outputs_validate_against_their_schemas(name: str, args: list[str], exit_code: int) -> None:
    code, data = _json(args)
    assert code == exit_code, data
    _validate(name, data)
    assert data["schema_version"] == 1 and data["ok"] is (exit_code == 0)


# -- gen: mixer-then-FFN blocks ---------------------------------------------------------------------


@given(st.integers(1, 120), st.floats(0, 1), st.floats(0, 0.6), st.booleans())
@settings(max_examples=300, deadline=None)
def test_gen_blocks(n: int, attention: float, mlp: float, moe: bool) -> None:
    result = generate(n, attention, mlp, moe=moe)
    a, f = round(n * attention), round(n * mlp)
    codes = {d.code for d in result.diagnostics if d.severity.value == "error"}
    if result.pattern is None:
        assert codes & {"P607", "P613"}
        assert attention + mlp > 1 or a + f > n or f > n - f
        return
    ffn = "E" if moe else "-"
    text = result.pattern
    assert len(text) == n and text.count("*") == a and text.count(ffn) == f
    assert not text.startswith(ffn) and ffn * 2 not in text
    if f >= a:  # every attention layer is followed by an FFN
        assert text.count("*" + ffn) == a


def test_gen_examples() -> None:
    assert block_pattern(12, 3, 6) == "M-*-M-*-M-*-"
    assert even_pattern(12, 3, 6) == "-M*--M*--M*-"  # --layout spread keeps the earlier placement
    nemotron_h_8b = read_config(H8B).spec
    assert nemotron_h_8b is not None
    generated = generate(52, 4 / 52, 24 / 52).pattern
    assert generated is not None and generated.count("*-") == 4 and len(generated) == 52
    out = runner.invoke(app, ["gen", "--layers", "12", "--attention", "0.25", "--mlp", "0.5", "--moe", "--mtp", "2"])
    assert out.stdout.strip() == "ME*EME*EME*E/*E/*E"
    out = runner.invoke(app, ["gen", "--layers", "12", "--attention", "0.25", "--mlp", "0.5", "--layout", "spread"])
    assert out.stdout.strip() == "-M*--M*--M*-"
    out = runner.invoke(app, ["gen", "--layers", "8", "--attention", "0.25", "--moe"])
    assert out.exit_code == 0 and "warning[P612]" in out.output and out.stdout.strip() == "MM*MMM*M"
    out = runner.invoke(app, ["gen", "--layers", "10", "--attention", "0.1", "--mlp", "0.6"])
    assert out.exit_code == 1 and "error[P613]" in out.output


def test_run_takes_a_bare_pattern_as_build_sizes_it(tmp_path: Path) -> None:
    """`run "M-M*-"` runs the very model `build "M-M*-"` writes: same sizes, same seeded initialisation."""
    pytest.importorskip("torch")
    built = runner.invoke(app, ["build", "M-M*-", "-o", str(tmp_path / "m")])
    assert built.exit_code == 0, built.output
    from_dir = runner.invoke(app, ["run", str(tmp_path / "m"), "--ids", "1 2 3", "-n", "6", "--quiet"])
    from_pattern = runner.invoke(app, ["run", "M-M*-", "--ids", "1 2 3", "-n", "6", "--quiet"])
    assert from_dir.exit_code == 0 and from_pattern.exit_code == 0, from_pattern.output
    assert from_pattern.stdout == from_dir.stdout and len(from_pattern.stdout.split()) == 6
    bad = runner.invoke(app, ["run", "M-G", "--ids", "1"])
    assert bad.exit_code == 1 and "[P601]" in bad.output
