"""The `falcon_h1` family: configs built by transformers' `FalconH1Config` read into `[*M]-` per decoder
layer (attention and Mamba2 in parallel, then the MLP) with every multiplier; each maps to `falcon_h1`,
`build --target falcon_h1` loads back into the same class with the same meta-device state_dict, and
`stats` counts that state_dict exactly; the released Falcon-H1-0.5B-Instruct config; defaults drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from patternc.analysis import model_stats
from patternc.canonical import canonical_map
from patternc.cli import app
from patternc.config import read_config
from patternc.convert import to_layers_block_type, to_megatron
from patternc.diagnostics import PatternError
from patternc.families import get
from patternc.kinds import LayerKind
from tests.families.drift import check_defaults, errors
from tests.families.meta import meta_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

RELEASED = Path(__file__).resolve().parents[1] / "fixtures" / "hub2" / "Falcon-H1-0.5B-Instruct"
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
MULTIPLIERS = st.sampled_from([0.25, 0.5, 1.0, 1.25])


@st.composite
def falcon_h1_configs(draw: st.DrawFn) -> Any:
    """A small ``FalconH1Config``: every size, bias, norm and multiplier drawn."""
    kv = draw(st.sampled_from([1, 2]))
    heads = kv * draw(st.integers(1, 2))
    m_heads = draw(st.sampled_from([2, 4]))
    groups = draw(st.sampled_from([g for g in (1, 2) if m_heads % g == 0]))
    d_head = draw(st.sampled_from([4, 8]))
    kwargs: dict[str, Any] = {
        "num_hidden_layers": draw(st.integers(1, 3)),
        "hidden_size": heads * draw(st.sampled_from([4, 8])),
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "vocab_size": draw(st.integers(8, 64)),
        "intermediate_size": draw(st.integers(4, 48)),
        "mamba_n_heads": m_heads,
        "mamba_d_head": d_head,
        "mamba_d_ssm": m_heads * d_head,
        "mamba_n_groups": groups,
        "mamba_d_state": draw(st.sampled_from([4, 8])),
        "mamba_d_conv": draw(st.integers(2, 4)),
        "mamba_chunk_size": draw(st.sampled_from([16, 256])),
        "mamba_conv_bias": draw(st.booleans()),
        "mamba_proj_bias": draw(st.booleans()),
        "projectors_bias": draw(st.booleans()),
        "mamba_rms_norm": draw(st.booleans()),
        "mamba_norm_before_gate": draw(st.booleans()),
        "attention_bias": draw(st.booleans()),
        "mlp_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
        "embedding_multiplier": draw(MULTIPLIERS),
        "lm_head_multiplier": draw(MULTIPLIERS),
        "key_multiplier": draw(MULTIPLIERS),
        "attention_in_multiplier": draw(MULTIPLIERS),
        "attention_out_multiplier": draw(MULTIPLIERS),
        "ssm_in_multiplier": draw(MULTIPLIERS),
        "ssm_out_multiplier": draw(MULTIPLIERS),
        "ssm_multipliers": draw(st.lists(MULTIPLIERS, min_size=5, max_size=5)),
        "mlp_multipliers": draw(st.lists(MULTIPLIERS, min_size=2, max_size=2)),
    }
    if draw(st.booleans()):
        kwargs["head_dim"] = draw(st.sampled_from([4, 8]))
    if draw(st.booleans()):  # the inner size from `mamba_expand` instead
        kwargs["mamba_d_ssm"] = None
        kwargs["mamba_expand"] = 1
        kwargs["mamba_d_head"] = "auto"
        kwargs["mamba_n_heads"] = m_heads = draw(
            st.sampled_from([h for h in (1, 2, 4) if kwargs["hidden_size"] % h == 0])
        )
        kwargs["mamba_n_groups"] = 1
    return transformers.FalconH1Config(**kwargs)


@SETTINGS
@given(falcon_h1_configs())
def test_drawn_configs_map_build_and_count_exactly(config: Any) -> None:
    data = config.to_dict()
    reading = read_config(data)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.source == "falcon_h1"
    assert spec.pattern.spelled == ("[*M]", "-") * config.num_hidden_layers
    assert spec.mup is not None and spec.mup.key == config.key_multiplier
    assert spec.mup.ssm == tuple(config.ssm_multipliers) and spec.mup.mlp == tuple(config.mlp_multipliers)
    assert spec.embedding_multiplier == config.embedding_multiplier
    assert canonical_map(spec).architecture == "falcon_h1"
    reference = meta_model(config)
    assert model_stats(spec).params.total == reference.stored
    written = get("falcon_h1").express(spec).config
    loaded = transformers.AutoConfig.for_model(
        "falcon_h1", **{k: v for k, v in written.items() if k not in ("model_type", "architectures")}
    )
    assert type(loaded) is transformers.FalconH1Config
    assert meta_model(loaded).shapes == reference.shapes
    again = read_config(loaded.to_dict())
    assert again.spec is not None and again.spec.model_dump() == spec.model_dump()  # every multiplier kept


def test_build_target_falcon_h1_writes_a_config_autoconfig_loads(tmp_path: Path) -> None:
    config = transformers.FalconH1Config(
        num_hidden_layers=2,
        hidden_size=32,
        intermediate_size=48,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=50,
        mamba_d_ssm=64,
        mamba_n_heads=8,
        mamba_d_state=8,
        key_multiplier=0.5,
        ssm_multipliers=[0.5, 1.0, 1.0, 2.0, 1.0],
    )
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["build", str(source), "--target", "falcon_h1", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    loaded = transformers.AutoConfig.from_pretrained(tmp_path / "out")
    assert type(loaded) is transformers.FalconH1Config
    assert meta_model(loaded).shapes == meta_model(config).shapes
    assert loaded.key_multiplier == 0.5 and list(loaded.ssm_multipliers) == [0.5, 1.0, 1.0, 2.0, 1.0]


def test_released_falcon_h1_0_5b_instruct() -> None:
    """tiiuae/Falcon-H1-0.5B-Instruct: 36 layers of attention (8 heads, 2 KV, head 64) beside Mamba2
    (24 heads of 64, state 128, no norm), MLP 2048, vocabulary 32784, untied: 521,411,104 elements."""
    reading = read_config(RELEASED)
    assert reading.ok and reading.spec is not None, errors(reading)
    spec = reading.spec
    assert spec.pattern.spelled == ("[*M]", "-") * 36
    assert spec.attention is not None and spec.attention.head_dim == 64 and spec.attention.num_kv_heads == 2
    assert spec.attention.rope is not None and spec.attention.rope.theta == 1e11
    assert spec.mamba is not None and spec.mamba.inner_size == 1536 and not spec.mamba.gated_norm
    assert spec.mup is not None and spec.mup.key == 0.390625 and spec.mup.lm_head == 0.0390625
    config = transformers.AutoConfig.from_pretrained(RELEASED)
    assert model_stats(spec).params.total == meta_model(config).stored == 521_411_104
    result = CliRunner().invoke(app, ["check", str(RELEASED)])
    assert result.exit_code == 0, result.output
    assert "[*M]-[*M]-" in result.output
    assert "canonical  falcon_h1" in result.output
    assert "36 decoder layers" in result.output


def test_other_families_refuse_falcon_h1_with_reasons() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    result = canonical_map(reading.spec)
    assert list(result.matched) == ["falcon_h1"]
    for family, reasons in result.reasons.items():
        if family != "falcon_h1":
            assert reasons, family


def test_a_multiplier_changes_the_math_so_the_map_compares_it() -> None:
    """Two specs that differ in one multiplier are different models: the expression of one does not
    match the other (the canonical map compares the graphs, where each multiplier is a node)."""
    reading = read_config({"model_type": "falcon_h1", "num_hidden_layers": 1, "key_multiplier": 0.5})
    assert reading.spec is not None and reading.spec.mup is not None
    other = reading.spec.model_copy(update={"mup": reading.spec.mup.model_copy(update={"key": 0.25})})
    assert canonical_map(reading.spec).architecture == "falcon_h1"
    assert canonical_map(other).architecture == "falcon_h1"
    written = get("falcon_h1").express(other).config
    assert written["key_multiplier"] == 0.25


def test_parallel_layers_have_no_megatron_or_list_spelling() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    with pytest.raises(PatternError) as raised:
        to_megatron(reading.spec.pattern)
    assert {d.code for d in raised.value.diagnostics} == {"P018"}
    with pytest.raises(PatternError):
        to_layers_block_type(reading.spec.pattern.spelled)
    result = CliRunner().invoke(app, ["check", "--json", str(RELEASED)])
    assert json.loads(result.output)["megatron"] is None
    result = CliRunner().invoke(app, ["convert", "--to", "fmt", "[*M]-[*M]-[*M]-[*M]-"])
    assert result.output.strip() == "([*M]-){4}"


def test_a_parallel_layer_costs_its_mixers_with_one_norm() -> None:
    reading = read_config({"model_type": "falcon_h1", "num_hidden_layers": 1})
    assert reading.spec is not None
    stats = model_stats(reading.spec)
    row = stats.layers[0]
    assert (row.symbol, row.kind) == ("[*M]", "attention&mamba2")
    from patternc.analysis.costs import attention_cost, mamba_cost

    spec = reading.spec
    assert spec.attention is not None and spec.mamba is not None
    h = spec.hidden_size
    both = attention_cost(h, spec.attention).params + mamba_cost(h, spec.mamba).params
    assert row.params == both - h
    assert row.kv_cache_bytes > 0 and row.state_bytes > 0


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"mamba_d_ssm": 100, "mamba_n_heads": 8, "mamba_d_head": 16}, "P908"),
        ({"mamba_d_ssm": 96, "mamba_n_heads": 8, "mamba_n_groups": 3}, "P908"),
        ({"mamba_d_ssm": 1024, "mamba_expand": 4}, "P913"),
    ],
)
def test_contradictions_are_diagnostics(data: dict[str, Any], code: str) -> None:
    reading = read_config({"model_type": "falcon_h1", "num_hidden_layers": 1, **data})
    assert code in {d.code for d in reading.diagnostics}, [d.code for d in reading.diagnostics]


def test_torch_backend_builds_parallel_layers() -> None:
    """Parallel layers, µP and this Mamba2 flavour are built (tests/backends/torch/test_falcon_h1.py
    checks them against transformers); only an MTP block's parallel layer is refused, with its reason."""
    from patternc_torch.support import unsupported  # type: ignore[import-not-found]

    from patternc.ir import make_pattern

    reading = read_config(RELEASED)
    assert reading.spec is not None
    assert unsupported(reading.spec) == []
    pattern = make_pattern("*-", parallel={0: "M"}, mtp="*-", depths=1, mtp_parallel={0: "M"})
    found = unsupported(reading.spec.model_copy(update={"pattern": pattern}))
    assert [d.message for d in found] == [
        "the torch backend cannot build parallel layers in the MTP block (`[*M]`): "
        "the MTP block's layers run one mixer each (the main stack's parallel layers are built)"
    ]


def test_defaults_match_transformers() -> None:
    check_defaults("falcon_h1", transformers.FalconH1Config)


def test_kinds_of_the_family() -> None:
    reading = read_config(RELEASED)
    assert reading.spec is not None
    assert reading.spec.pattern.kinds() == {LayerKind.ATTENTION, LayerKind.MAMBA2, LayerKind.MLP}


def test_split_refuses_parallel_layers_and_a_bare_pattern_has_no_preset() -> None:
    """`split` proposes Megatron-Core's layout (no parallel layers there: P018); a bare `[*M]-` has no
    preset sizes (the Nemotron-H preset has no parallel layer: P601 at the bracket), not a crash."""
    result = CliRunner().invoke(app, ["split", str(RELEASED), "--pp", "2"])
    assert result.exit_code == 1 and "P018" in result.output
    result = CliRunner().invoke(app, ["stats", "-[*M]-"])
    assert result.exit_code == 1 and "P601" in result.output and "`[*M]`" in result.output


def test_draw_refuses_rather_than_draw_a_parallel_layer_as_one_mixer(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["draw", "([*M]-){2}", "-o", str(tmp_path / "x.svg")])
    assert result.exit_code == 1 and "P018" in result.output
    assert not (tmp_path / "x.svg").exists()
