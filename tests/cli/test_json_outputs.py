"""Every ``--json`` output is valid against its published schema, in every outcome (issue 12, defect 8).

One table, ``CASES``, runs each command that prints JSON through its successes *and* its failures
(input errors, refused targets, pipeline rules, missing or broken configs, notes, filters) and
validates stdout against ``schemas/<name>.v1.schema.json`` with ``jsonschema``.  The rule it also
enforces: exit 0 or 1 means stdout is exactly one JSON document whose ``ok`` agrees with the exit
code; exit 2 (the command line is wrong) means stdout is empty.  A command that gains ``--json`` adds
its rows here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patternc.cli import app

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "tests" / "fixtures" / "hub"
NEMOTRON_H = str(HUB / "Nemotron-H-8B-Base-8K" / "config.json")
NANO_MOE = str(HUB / "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")

# (id, schema, argv, files written in the scratch directory first, expected exit code)
Case = tuple[str, str, list[str], dict[str, str], int]
CASES: list[Case] = [
    # check: every kind of outcome
    ("check-ok", "check-output", ["check", "--json", "M-M*-"], {}, 0),
    ("check-warning", "check-output", ["check", "--json", "E"], {}, 0),
    ("check-syntax", "check-output", ["check", "--json", "M-M*X-"], {}, 1),
    ("check-unbalanced", "check-output", ["check", "--json", "(M-"], {}, 1),
    ("check-capped", "check-output", ["check", "--json", "--max-diagnostics", "1", "Mxyz"], {}, 1),
    ("check-too-long", "check-output", ["check", "--json", "--max-chars", "2", "M-M*-"], {}, 1),
    ("check-mtp", "check-output", ["check", "--json", "MEM*E/*E/*E"], {}, 0),
    ("check-target-no", "check-output", ["check", "--json", "-t", "vllm", "MEM*E/*E/*E"], {}, 1),
    ("check-targets-table", "check-output", ["check", "--json", "--targets", "M-M*-"], {}, 0),
    ("check-pp-bad", "check-output", ["check", "--json", "--pp", "3", "M-|M-"], {}, 1),
    ("check-pp-ok", "check-output", ["check", "--json", "--pp", "2", "M-M*-|M-M*-"], {}, 0),
    ("check-dash", "check-output", ["check", "--json", "-M*-"], {}, 0),
    ("check-p016", "check-output", ["check", "--json", "E"], {"E": "{}"}, 0),
    ("check-p017", "check-output", ["check", "--json", "M-/"], {"M-/notes.txt": "x"}, 1),
    ("check-ignored", "check-output", ["check", "--json", "--ignore", "P2", "E"], {}, 0),
    ("check-config", "check-output", ["check", "--json", "--targets", NEMOTRON_H], {}, 0),
    ("check-config-moe", "check-output", ["check", "--json", "-t", "llama.cpp", NANO_MOE], {}, 0),
    ("check-config-missing", "check-output", ["check", "--json", "missing.json"], {}, 1),
    ("check-config-not-json", "check-output", ["check", "--json", "bad.json"], {"bad.json": "{"}, 1),
    ("check-config-no-type", "check-output", ["check", "--json", "c.json"], {"c.json": "{}"}, 1),
    (
        "check-config-bad-value",
        "check-output",
        ["check", "--json", "c.json"],
        {"c.json": '{"model_type": "nemotron_h", "hidden_size": "big"}'},
        1,
    ),
    ("check-dialect-error", "check-output", ["check", "--json", "-d", "hf", "M-M*|M-M*"], {}, 1),
    # usage errors: nothing on stdout
    ("check-usage-target", "check-output", ["check", "--json", "-t", "vlm", "M-"], {}, 2),
    ("check-usage-dialect", "check-output", ["check", "--json", "-d", "klingon", "M-"], {}, 2),
    ("check-usage-ignore", "check-output", ["check", "--json", "--ignore", "P99", "M-"], {}, 2),
    ("check-usage-vpp", "check-output", ["check", "--json", "--vpp", "2", "M-"], {}, 2),
    # the other commands' --json (schemas owned by their commands; the rule is the same)
    ("stats-ok", "stats-output", ["stats", "--json", "M-M*-"], {}, 0),
    ("stats-error", "stats-output", ["stats", "--json", "M-X"], {}, 1),
    ("stats-config-missing", "stats-output", ["stats", "--json", "missing.json"], {}, 1),
    ("stats-usage", "stats-output", ["stats", "--json", "M-", "--set", "hidden_size=abc"], {}, 2),
    ("split-ok", "split-output", ["split", "--json", "M-M*-M-M*-", "--pp", "2"], {}, 0),
    ("split-error", "split-output", ["split", "--json", "M-X", "--pp", "2"], {}, 1),
    ("gen-ok", "gen-output", ["gen", "--json", "--layers", "8", "--attention", "0.25"], {}, 0),
    ("build-error", "build-output", ["build", "--json", "M-X", "-o", "out"], {}, 1),
    ("build-usage-target", "build-output", ["build", "--json", "M-", "-o", "out", "-t", "sglang"], {}, 2),
]


def _validator(name: str) -> Any:
    path = ROOT / "schemas" / f"{name}.v1.schema.json"
    if not path.is_file():
        pytest.skip(f"{path.name} is not published")
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_json_output_follows_its_schema_in_every_outcome(case: Case, scratch: Path) -> None:
    _, name, argv, files, expected = case
    if "--json" not in _help(argv[0]):
        pytest.skip(f"`{argv[0]}` has no --json yet")
    validator = _validator(name)
    for relative, text in files.items():
        (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
        (scratch / relative).write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == expected, result.stdout + result.stderr
    if expected == 2:
        assert result.stdout == "", "a usage error prints nothing on stdout"
        return
    document = json.loads(result.stdout)  # exactly one document, nothing else on stdout
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    assert document["schema_version"] == 1
    assert document["ok"] is (expected == 0)


def _help(command: str) -> str:
    return CliRunner().invoke(app, [command, "--help"]).stdout


def test_every_published_output_schema_is_exercised() -> None:
    """A new ``*-output`` schema must get rows in ``CASES`` (its successes and its failures)."""
    published = {p.name.split(".")[0] for p in (ROOT / "schemas").glob("*-output.v1.schema.json")}
    covered = {case[1] for case in CASES}
    assert published - covered <= {"run-output"}, published - covered  # run needs a model: tests/test_run*.py
