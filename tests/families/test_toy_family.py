"""A toy model family, defined inside the test through the same ``Family`` the real ones use.

Registered for one test at a time, without any file of the package edited, it is read from a config
dict, counted by ``stats``, placed by the canonical map (it expresses itself exactly, every other
candidate refuses with reasons), checked by its own target profile and refused by every profile
that lacks it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc import families
from patternc.canonical import candidates, canonical_map
from patternc.canonical.archs import Expression, common_fields, kind_findings, model_blocks, mtp_findings
from patternc.canonical.graph import BlockGraph, Frame, layer_label, lower_gated_deltanet, lower_mlp
from patternc.cli import app
from patternc.codes import Severity
from patternc.config import read_config
from patternc.config.models import Activation, ConfigModel, Eps, PosInt
from patternc.config.readers import Built, Ctx
from patternc.families import Family
from patternc.kinds import LayerKind, symbol_of
from patternc.model import GatedDeltaNetSpec, MlpSpec, ModelSpec, NormSpec
from patternc.schemas import SCHEMAS
from patternc.targets import PROFILES, check_target
from patternc.targets.rules import Profile, Rule, main_alphabet

KINDS = (LayerKind.GATED_DELTANET, LayerKind.MLP)
G, MLP = (symbol_of(kind) for kind in KINDS)


class ToyInput(ConfigModel):
    """``model_type: toy``: every layer a gated DeltaNet mixer, then a plain (non-gated) tanh MLP."""

    vocab_size: PosInt = 1000
    hidden_size: PosInt = 64
    num_hidden_layers: PosInt = 3
    intermediate_size: PosInt = 128
    toy_act: Activation = "tanh"
    heads: PosInt = 2
    head_size: PosInt = 16
    toy_conv: PosInt = 4
    toy_eps: Eps = 1e-6
    toy_layers: int | None = None
    """The alias target: ``toy_layers`` is also spelled ``depth``."""


def read_toy(ctx: Ctx) -> Built:
    n = ctx.get("num_hidden_layers")
    heads, size = ctx.get("heads"), ctx.get("head_size")
    return Built(
        main=(G + MLP) * n,
        main_key="num_hidden_layers",
        specs={
            "gated_deltanet": GatedDeltaNetSpec(
                num_k_heads=heads, num_v_heads=heads, head_k_dim=size, head_v_dim=size, conv_kernel=ctx.get("toy_conv")
            ),
            "mlp": MlpSpec(intermediate_size=ctx.get("intermediate_size"), activation=ctx.get("toy_act"), gated=False),
            "norm": NormSpec(eps=ctx.get("toy_eps")),
        },
    )


def express_toy(spec: ModelSpec) -> Expression:
    structural = kind_findings(spec, KINDS, "toy") + mtp_findings(spec, "toy")
    cfg = common_fields(spec, "toy_eps")
    frame = Frame(spec.hidden_size, NormSpec(eps=spec.norm.eps))
    embed, head = model_blocks(spec, cfg, frame, tied=spec.tie_embeddings)
    blocks: list[tuple[int | None, BlockGraph]] = [embed]
    for layer in spec.pattern.layers:
        label = layer_label(layer.index, layer.symbol)
        if layer.symbol == G and spec.gated_deltanet is not None:
            blocks.append((layer.index + 1, lower_gated_deltanet(frame, spec.gated_deltanet, label)))
        elif layer.symbol == MLP and spec.mlp is not None:
            blocks.append((layer.index + 1, lower_mlp(frame, spec.mlp, label)))
    blocks.append(head)
    return Expression("toy", cfg, structural, blocks)


def toy_profile() -> Profile:
    return Profile(
        name="transformers-toy",
        consumer="the toy family of this test",
        description="gated DeltaNet + MLP layers",
        versions=(),
        rules=(Rule("P301", "alphabet G -", "this test", main_alphabet("toy", KINDS, "no {symbol} in toy")),),
    )


TOY = Family(
    name="toy",
    input_model=ToyInput,
    read=read_toy,
    express=express_toy,
    canonical_rank=-1000,  # before every built-in family (those of issue 14 have negative ranks too)
    architectures=("ToyForCausalLM",),
    aliases={"depth": "toy_layers"},
    layout_keys=(("num_hidden_layers",),),
    profile=toy_profile,
)

CONFIG = {"model_type": "toy", "num_hidden_layers": 3, "hidden_size": 64, "vocab_size": 1000, "toy_eps": 1e-6}


@pytest.fixture
def toy() -> Iterator[Family]:
    with families.registered_family(TOY) as family:
        yield family


def test_toy_is_read_from_a_config_dict(toy: Family) -> None:
    reading = read_config(CONFIG)
    assert reading.ok, [d.message for d in reading.diagnostics]
    assert reading.family == "toy" and reading.spec is not None
    assert reading.spec.source == "toy" and reading.spec.pattern.flat == (G + MLP) * 3
    by_architecture = read_config({"architectures": ["ToyForCausalLM"], "num_hidden_layers": 2})
    assert by_architecture.family == "toy" and by_architecture.spec is not None


def test_toy_uses_the_shared_config_checks(toy: Family) -> None:
    missing = read_config({"model_type": "toy"})
    assert [d.code for d in missing.diagnostics if d.severity is Severity.ERROR] == ["P917"]
    aliased = read_config({**CONFIG, "depth": 5})
    assert aliased.ok and "P915" in [d.code for d in aliased.diagnostics]
    unknown = read_config({**CONFIG, "toy_epz": 1e-5})
    assert "P918" not in [d.code for d in unknown.diagnostics]  # toy_eps is present: an extra, not a misspelling


def test_toy_is_counted_by_stats(toy: Family, tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")
    result = CliRunner().invoke(app, ["stats", "--json", str(path)])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["dialect"] == "toy" and stats["pattern"] == (G + MLP) * 3  # the published key keeps its name
    assert [(row["kind"], row["layers"]) for row in stats["params"]["per_kind"]] == [
        (LayerKind.GATED_DELTANET, 3),
        (LayerKind.MLP, 3),
    ]
    assert stats["params"]["total"] > 0 and stats["memory_bytes"]["ssm_state"] > 0


def test_toy_is_placed_by_the_canonical_map(toy: Family) -> None:
    spec = read_config(CONFIG).spec
    assert spec is not None
    assert candidates()[0] == "toy"
    result = canonical_map(spec)
    assert result.architecture == "toy" and result.matched == ["toy"]
    assert set(result.reasons) == set(families.names()) - {"toy"}
    assert all(result.reasons[name] for name in result.reasons), "every other family says why it refuses"


def test_toy_profile_accepts_it_and_every_other_profile_refuses_it(toy: Family) -> None:
    spec = read_config(CONFIG).spec
    assert spec is not None
    assert "transformers-toy" in PROFILES
    assert not check_target("transformers-toy", spec.pattern, spec)
    for name in PROFILES:
        if name != "transformers-toy":
            found = check_target(name, spec.pattern, spec)
            assert any(d.severity is Severity.ERROR for d in found), f"{name} does not refuse the toy model"


def test_toy_leaves_no_trace() -> None:
    with families.registered_family(TOY):
        assert "toy" in families.names()
    assert "toy" not in families.names() and "transformers-toy" not in PROFILES
    assert read_config(CONFIG).family is None
    assert "config-toy" not in SCHEMAS  # the published schemas are the built-in families' only
    with families.registered_family(TOY), pytest.raises(ValueError, match="already registered"):
        families.register(TOY)
