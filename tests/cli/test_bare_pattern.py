"""A bare pattern with a kind the defaults do not size: one code and one caret, whichever command reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from patternc.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        ["stats", "MG*-"],
        ["split", "MG*-", "--pp", "1"],
        ["build", "MG*-", "-o", "out"],
        ["build", "MG*-", "-o", "out", "--target", "megatron"],
    ],
    ids=lambda args: " ".join(args[:1] + args[2:]),
)
def test_the_same_p601_with_a_caret_under_the_layer(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "error[P601]: `G` (gated_deltanet) has no default hyper-parameters" in result.output
    assert "1 | MG*-\n  |  ^ no sizes for this layer" in result.output
    assert "P015" not in result.output
    assert not (tmp_path / "out").exists()


def test_convert_keeps_p015_for_a_kind_without_a_list_name() -> None:
    result = runner.invoke(app, ["convert", "--to", "layers_block_type", "MG*-"])
    assert result.exit_code == 1 and result.output.startswith("error[P015]")
