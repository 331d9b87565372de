"""``scheduler-extender recommend``: the candidate -> chart values mapping (every count mode of
the frontier, with and without the startup taint: the values pass the chart's schema and the
real chart, and the controller gets what was simulated), the choice under a target, and one run
end to end on the shipped trace whose values go through the real chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scheduler_extender.cli import main as cli_main
from scheduler_extender.placeholders.config import parse_config
from scheduler_extender.sim.frontier import (
    Family,
    FrontierPoint,
    default_families,
    point_scenario,
    write_frontier,
)
from scheduler_extender.sim.recommend import Candidate, chart_values, choose, trace_duration
from scheduler_extender.sim.scenario import load_scenario
from tests.chart.conftest import one, render_values
from tests.chart.test_placeholders import placeholder_config
from tests.chart.test_startup_taint_chart import TOLERATION
from tests.chart.test_values import SCHEMA

TRACE = (
    Path(__file__).resolve().parents[2] / "scheduler_extender/data/scenarios/course-day-trace.csv"
)
PREFIX = "hub-sched-scheduler-extender"
#: The image of course-day's one profile: the users' image of every course-day point.
COURSE_IMAGE = "quay.io/jupyter/scipy-notebook:2024-01-15"


def family(name: str) -> Family:
    return next(f for f in default_families() if f.name == name)


def controller_pool(values: dict[str, Any]) -> Any:
    """The default pool as the placeholder controller parses the rendered chart's config."""
    cm = one(render_values(values), "ConfigMap", f"{PREFIX}-placeholders")
    config = parse_config(yaml.safe_load(cm["data"]["placeholders.yaml"]))
    (pool,) = config.pools
    return pool


def schema_errors(values: dict[str, Any]) -> list[str]:
    """What the chart's values.schema.json says against ``values`` (Helm checks the same
    schema when it renders; this names every error at once)."""
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(values)
    ]


@pytest.mark.parametrize(
    ("name", "knobs"),
    [
        ("adaptive", {"placeholders.safety": 2.0, "placeholders.max": 40}),
        ("adaptive-node", {"placeholders.safety": 0.5}),
    ],
    ids=["user-sized", "node-sized"],
)
def test_chart_values_reach_the_controller_as_simulated(name: str, knobs: dict[str, Any]) -> None:
    scenario = load_scenario("course-day")
    fam = family(name)
    values, why_not = chart_values(scenario, fam, knobs)
    assert values is not None, why_not
    simulated = point_scenario(scenario, fam, tuple(knobs.items())).placeholders
    pool = controller_pool(values)
    assert pool.size == simulated.size
    assert (pool.count.mode, pool.count.min, pool.count.max, pool.count.safety) == (
        simulated.mode, simulated.min, simulated.max, simulated.safety,
    )  # fmt: skip
    assert pool.count.rate_window_seconds == simulated.rate_window
    assert pool.count.node_ready_seconds == simulated.ready_default


@pytest.mark.parametrize(
    ("name", "knobs"),
    [
        ("forecast", {"placeholders.safety": 1.5, "placeholders.max": 200}),
        ("forecast", {"placeholders.safety": 1.0, "placeholders.max": 50,
                      "placeholders.forecast_alpha": 0.5, "placeholders.forecast_min_weeks": 2}),
        ("forecast-node", {"placeholders.safety": 1.0}),
        ("adaptive+taint", {"placeholders.safety": 3.0, "placeholders.max": 80}),
        ("adaptive-node+taint", {"placeholders.safety": 0.5}),
        ("forecast+taint", {"placeholders.safety": 1.0, "placeholders.max": 50}),
        ("forecast-node+taint", {"placeholders.safety": 1.5}),
    ],
    ids=["forecast", "forecast-knobs", "forecast-node", "adaptive-taint", "adaptive-node-taint",
         "forecast-taint", "forecast-node-taint"],
)  # fmt: skip
def test_forecast_and_taint_points_reach_the_controller_as_simulated(
    name: str, knobs: dict[str, Any]
) -> None:
    scenario = load_scenario("course-day")
    fam = family(name)
    values, why_not = chart_values(scenario, fam, knobs)
    assert values is not None, why_not
    assert schema_errors(values) == []
    simulated = point_scenario(scenario, fam, tuple(knobs.items()))
    ph = simulated.placeholders
    config = placeholder_config(render_values(values))  # the real chart, schema included
    parsed = parse_config(config, "rendered")  # the controller's own validation
    (pool,) = parsed.pools
    # The point's knobs (the sweep's, and any forecast_* set on it), as the controller reads them.
    for path, value in knobs.items():
        assert getattr(pool.count, path.removeprefix("placeholders.")) == value, path
    assert (pool.size, pool.count.mode, pool.count.min, pool.count.max, pool.count.safety) == (
        ph.size, ph.mode, ph.min, ph.max, ph.safety,
    )  # fmt: skip
    assert pool.node_fraction == ph.node_fraction
    if ph.mode == "forecast":
        assert (pool.count.forecast_alpha, pool.count.forecast_min_weeks) == (
            ph.forecast_alpha, ph.forecast_min_weeks,
        )  # fmt: skip
    # The simulated controller learns pull times from the users' images: the pool lists them.
    assert pool.images == ([COURSE_IMAGE] if ph.learn_pulls else [])
    taint = parsed.startup_taint
    if simulated.startup_taint.enabled:
        assert taint is not None
        assert taint.key == simulated.startup_taint.key
        # The simulated taint comes off once a node holds the users' images.
        assert taint.images == [COURSE_IMAGE]
        assert TOLERATION in config["pools"][0]["tolerations"]  # placeholders go on it
        assert values["prePuller"]["continuous"]["enabled"] is True  # what pulls them there
    else:
        assert taint is None and "startupTaint" not in values["scheduling"]


@pytest.mark.parametrize(
    ("name", "count"), [("static", 5), ("static+taint", 40)], ids=["static", "static-taint"]
)
def test_our_static_points_reach_the_controller_as_simulated(name: str, count: int) -> None:
    """The frontier's static family (z2jh's N under the extender) is a chart setting too:
    N user-sized placeholders in static mode, the startup taint only in +taint."""
    scenario = load_scenario("course-day")
    fam = family(name)
    values, why_not = chart_values(scenario, fam, {"placeholders.count": count})
    assert values is not None, why_not
    assert schema_errors(values) == []
    simulated = point_scenario(scenario, fam, (("placeholders.count", count),))
    assert (simulated.placeholders.mode, simulated.placeholders.count) == ("static", count)
    parsed = parse_config(placeholder_config(render_values(values)), "rendered")
    (pool,) = parsed.pools
    assert (pool.size, pool.count.mode, pool.count.static) == ("user", "static", count)
    assert (parsed.startup_taint is not None) is simulated.startup_taint.enabled
    assert simulated.startup_taint.enabled is name.endswith("+taint")


def test_a_scenario_taint_key_reaches_the_controller() -> None:
    scenario = load_scenario("course-day")
    key = "startup-taint.cluster-autoscaler.kubernetes.io/hub"
    fam = Family("adaptive+taint", "extender",
                 ("placeholders.mode=adaptive", "startup_taint.enabled=true",
                  f"startup_taint.key={key}", "startup_taint.removal_delay=5"),
                 ())  # fmt: skip
    values, why_not = chart_values(scenario, fam, {"placeholders.safety": 1.0})
    assert values is not None, why_not
    assert schema_errors(values) == []
    taint = parse_config(placeholder_config(render_values(values))).startup_taint
    assert taint is not None and taint.key == key


def test_what_the_chart_cannot_express_is_said() -> None:
    scenario = load_scenario("course-day")
    values, why_not = chart_values(scenario, family("z2jh-static"), {"placeholders.count": 3})
    assert values is None and "policy z2jh" in why_not
    scan = Family("adaptive", "extender", ("autoscaler.scan_interval=30",), ())
    values, why_not = chart_values(scenario, scan, {})
    assert values is None and why_not == "no chart key for autoscaler.scan_interval"
    # The controller's forecast profile has 5-minute buckets.
    values, why_not = chart_values(
        scenario, family("forecast"), {"placeholders.forecast_bucket": 600}
    )
    assert values is None and "forecast_bucket" in why_not


def point(name: str, knobs: dict[str, Any], hours: float, waited: float, p95: float) -> Candidate:
    p = FrontierPoint(name, "extender", knobs, (1,), hours, waited, 0.0, p95, 0.0)
    return Candidate(p, {"x": 1} if name != "z2jh-static" else None)


def test_choose_under_each_target() -> None:
    cands = [
        point("z2jh-static", {"placeholders.count": 0}, 100.0, 50.0, 300.0),
        point("adaptive", {"placeholders.safety": 1.0}, 105.0, 20.0, 60.0),
        point("adaptive", {"placeholders.safety": 2.0}, 109.0, 8.0, 25.0),
        point("adaptive", {"placeholders.safety": 3.0}, 130.0, 1.0, 5.0),
    ]
    points = [c.point for c in cands]
    best, rule = choose(cands, points, max_wait_p95=30.0, max_extra_cost=None)
    assert best is cands[2] and "p95 wait is <= 30 s" in rule
    best, _ = choose(cands, points, max_wait_p95=10.0, max_extra_cost=None)
    assert best is cands[3]
    best, rule = choose(cands, points, max_wait_p95=None, max_extra_cost=0.05)
    assert best is cands[1] and "+5%" in rule
    best, _ = choose(cands, points, max_wait_p95=None, max_extra_cost=None)  # default 10 %
    assert best is cands[2]
    best, _ = choose(cands, points, max_wait_p95=1.0, max_extra_cost=None)
    assert best is None


def test_the_run_lasts_until_the_last_session_ends(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("arrival,end,last_activity\n0,7200,\n100,,1000\n", encoding="utf-8")
    scenario = load_scenario("course-day")  # culler: timeout 3600, every 600
    assert trace_duration(trace, scenario) == 7200.0
    trace.write_text("arrival,end,last_activity\n0,600,\n100,,5000\n", encoding="utf-8")
    # Culled: last activity at 5000, timeout 3600, the next pass, rounded up to a minute.
    assert trace_duration(trace, scenario) == math.ceil((5000 + 3600 + 600) / 60) * 60


def test_recommend_end_to_end_on_the_shipped_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The shipped trace's first 300 sessions (its first ~3 hours), to keep the test fast.
    trace = tmp_path / "course-day-head.csv"
    lines = TRACE.read_text(encoding="utf-8").splitlines(keepends=True)
    trace.write_text("".join(lines[:301]), encoding="utf-8")
    out = tmp_path / "rec"
    code = cli_main(
        ["recommend", "--trace", str(trace), "--families", "adaptive", "--seeds", "1",
         "--max-extra-cost", "25%", "--out", str(out)]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    assert "Candidates" in text and "<- recommended" in text
    assert (out / "frontier.png").stat().st_size > 0
    frontier = json.loads((out / "frontier.json").read_text(encoding="utf-8"))
    base = next(p for p in frontier if p["family"] == "z2jh-static")
    assert base["knobs"] == {"placeholders.count": 0}
    ours = [p for p in frontier if p["family"] == "adaptive"]
    assert len(ours) == len(family("adaptive").points)
    # The recommended point: within +25 % of no placeholders, fewest users waiting > 60 s.
    header = (out / "values.yaml").read_text(encoding="utf-8").splitlines()[0]
    fits = [p for p in ours if p["node_hours"] <= base["node_hours"] * 1.25]
    assert fits, frontier
    best = min(fits, key=lambda p: (p["waited_over_60s"], p["failed_spawns"], p["node_hours"]))
    knobs = ", ".join(f"{k.removeprefix('placeholders.')}={v}" for k, v in best["knobs"].items())
    assert f"adaptive({knobs})" in header
    # Its values render through the chart, and the controller gets what was simulated.
    values = yaml.safe_load((out / "values.yaml").read_text(encoding="utf-8"))
    pool = controller_pool(values)
    assert (pool.count.mode, pool.count.safety, pool.count.max) == (
        "adaptive", best["knobs"]["placeholders.safety"], best["knobs"]["placeholders.max"],
    )  # fmt: skip
    # Another target on the same points, without simulating again: a p95 every point meets
    # picks the cheapest of ours.
    again = tmp_path / "again"
    code = cli_main(
        ["recommend", "--trace", str(trace), "--families", "adaptive", "--frontier",
         str(out / "frontier.json"), "--max-wait-p95", "1d", "--out", str(again), "--no-plot"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().out
    cheapest = min(ours, key=lambda p: (p["node_hours"], p["waited_over_60s"]))
    knobs = ", ".join(
        f"{k.removeprefix('placeholders.')}={v}" for k, v in cheapest["knobs"].items()
    )
    header = (again / "values.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert f"adaptive({knobs})" in header and "p95 wait is <= 86400 s" in header


def test_recommend_writes_forecast_and_taint_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forecast + taint point recommended (from a written frontier, so nothing is
    simulated): values.yaml passes the schema, renders, and holds the point's knobs."""

    def pt(
        name: str, policy: str, knobs: dict[str, Any], hours: float, p95: float
    ) -> FrontierPoint:
        figures = {"node_hours": hours, "waited_over_60s": 1.0, "failed_spawns": 0.0,
                   "wait_p95_s": p95, "pull_waits": 0.0}  # fmt: skip
        return FrontierPoint(name, policy, knobs, (1,), **figures, scenario="course-day",
                             per_seed={k: (v,) for k, v in figures.items()})  # fmt: skip

    points = [
        pt("z2jh-static", "z2jh", {"placeholders.count": 0}, 100.0, 300.0),
        pt("forecast+taint", "extender", {"placeholders.safety": 1.0, "placeholders.max": 50},
           110.0, 20.0),
        pt("forecast+taint", "extender", {"placeholders.safety": 1.5, "placeholders.max": 200},
           130.0, 5.0),
    ]  # fmt: skip
    written = write_frontier(points, tmp_path / "sweep", plot=False)
    out = tmp_path / "rec"
    code = cli_main(
        ["recommend", "--trace", str(TRACE), "--families", "forecast+taint", "--frontier",
         str(written[0]), "--max-wait-p95", "30s", "--out", str(out), "--no-plot"]
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    written_text = (out / "values.yaml").read_text(encoding="utf-8")
    assert "forecast+taint(safety=1.0, max=50)" in written_text.splitlines()[0]
    # What the simulation assumed that a fresh install lacks is said: history, the node taint.
    assert "plans as adaptive" in written_text
    assert "=true:NoSchedule" in written_text and "Startup taint" in written_text
    assert "*id" not in written_text  # plain YAML, no anchors
    values = yaml.safe_load(written_text)
    assert schema_errors(values) == []
    parsed = parse_config(placeholder_config(render_values(values)))
    (pool,) = parsed.pools
    assert (pool.count.mode, pool.count.safety, pool.count.max) == ("forecast", 1.0, 50)
    assert pool.images == [COURSE_IMAGE]
    assert parsed.startup_taint is not None and parsed.startup_taint.images == [COURSE_IMAGE]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "/nonexistent.csv"], "--trace: file not found"),
        (["--trace", str(TRACE), "--families", "nope"], "--families: unknown nope"),
        (["--trace", str(TRACE), "--max-extra-cost", "lots"], "--max-extra-cost: expected"),
        (["--trace", str(TRACE), "--max-wait-p95", "soon"], "--max-wait-p95: invalid duration"),
        (["--trace", str(TRACE), "--scenario", "nope"], "unknown scenario 'nope'"),
    ],
    ids=["trace", "family", "cost", "wait", "scenario"],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = cli_main(["recommend", *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()
