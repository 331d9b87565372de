"""``scheduler-extender simulate`` end to end on a tiny scenario, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from scheduler_extender.cli import main as top_main
from scheduler_extender.sim.cli import main, split_policies
from tests.sim.test_engine import TINY


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "duration": "2h"}), encoding="utf-8")
    return path


def test_simulate_writes_table_json_and_plots(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = top_main(
        ["simulate", "--scenario", str(scenario_file), "--policies", "z2jh,extender[weight=5]",
         "--seeds", "2", "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| `z2jh` |" in printed and "| `extender[weight=5]` |" in printed
    assert f"wrote {out / 'nodes.png'}" in printed
    data = json.loads((out / "results.json").read_text())
    assert {(r["policy"], r["seed"]) for r in data["runs"]} == {
        (p, s) for p in ("z2jh", "extender[weight=5]") for s in (1, 2)
    }
    assert data["summary"][0]["figures"]["node_hours"]["mean"] > 0
    for png in ("nodes.png", "waits.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--policies", "spread"], "unknown policy 'spread'"),
        (["--policies", "z2jh[weight=3]"], "needs a policy with the extender"),
        (["--policies", "extender[weight=0]"], "weight: must be > 0"),
        (["--policies", "extender[normalization=cubic]"], "normalization: invalid value"),
        (["--policies", "z2jh,z2jh"], "listed twice"),
        (["--seeds", "0"], "--seeds: must be >= 1"),
        (["--set", "pool.cpu=lots"], "pool.cpu: invalid quantity"),
        (["--set", "pool.colour=red"], "no field 'colour'"),
        (["--hours", "-1"], "--hours: must be > 0"),
        (["--trace", "/no/such.csv"], "--trace: file not found"),
    ],
    ids=["scenario", "policy", "key-without-extender", "weight-zero", "enum", "twice", "seeds",
         "quantity", "field", "hours", "trace"],
)  # fmt: skip
def test_bad_arguments_name_the_problem(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--quiet", "--no-plots"]) == 2
    assert message in capsys.readouterr().err


def test_split_policies_keeps_bracketed_commas() -> None:
    assert split_policies("default, extender[weight=5,assume=false],z2jh") == [
        "default",
        "extender[weight=5,assume=false]",
        "z2jh",
    ]
