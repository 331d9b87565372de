"""The wait-cost frontier: the Pareto front, the recommendation rule, the JSON schema (round
trip and validation), and a real sweep on a tiny scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler_extender.sim.frontier import (
    FIGURES,
    Family,
    FrontierError,
    FrontierPoint,
    cheapest_meeting,
    combine_seeds,
    default_families,
    dominance,
    dominance_table,
    pareto_front,
    point_scenario,
    points_from_json,
    points_to_json,
    read_frontier,
    recommend_point,
    restrict_seeds,
    run_frontier,
    write_frontier,
)
from scheduler_extender.sim.scenario import scenario_from_data
from tests.sim.test_engine import TINY


def point(family: str, nh: float, waited: float, count: int | None = None) -> FrontierPoint:
    knobs: dict[str, Any] = {} if count is None else {"placeholders.count": count}
    return FrontierPoint(family, "extender", knobs, (1,), nh, waited, 0.0, 0.0, 0.0)


def test_pareto_front_drops_dominated_points() -> None:
    a, b, c, d = point("x", 10, 50), point("x", 12, 20), point("y", 12, 30), point("y", 15, 20)
    e = point("y", 20, 0)
    assert pareto_front([d, c, b, a, e]) == [a, b, e]


def test_equal_points_both_stay_on_the_front() -> None:
    a, b = point("x", 10, 5), point("y", 10, 5)
    assert len(pareto_front([a, b])) == 2


def test_recommendation_is_fewest_waits_within_the_budget() -> None:
    none = point("z2jh-static", 100, 400, count=0)
    cheap = point("adaptive", 104, 300)
    good = point("forecast", 109, 50)
    dear = point("adaptive-node", 130, 5)
    static = point("z2jh-static", 105, 30, count=40)
    pts = [none, cheap, good, dear, static]
    assert recommend_point(pts, 0.10) == good
    assert recommend_point(pts, 0.50) == dear
    # z2jh's own points are not what we recommend, unless asked.
    assert recommend_point(pts, 0.10, ours_only=False) == static
    assert recommend_point([cheap, good]) is None  # no baseline


def test_cheapest_meeting_a_p95_target() -> None:
    fast_dear = FrontierPoint("forecast-node", "extender", {}, (1,), 30.0, 0.0, 0.0, 0.2, 0.0)
    fast_cheap = FrontierPoint("forecast", "extender", {}, (1,), 25.0, 3.0, 1.0, 59.0, 0.0)
    slow = FrontierPoint("adaptive", "extender", {}, (1,), 9.0, 260.0, 250.0, 300.0, 0.0)
    static = FrontierPoint("z2jh-static", "z2jh", {}, (1,), 20.0, 5.0, 2.0, 10.0, 0.0)
    pts = [fast_dear, fast_cheap, slow, static]
    assert cheapest_meeting(pts, 60.0) == fast_cheap
    assert cheapest_meeting(pts, 1.0) == fast_dear
    assert cheapest_meeting(pts, 60.0, ours_only=False) == static
    assert cheapest_meeting([slow], 60.0) is None


def test_restrict_seeds_recomputes_from_per_seed_values() -> None:
    p = FrontierPoint(
        "x", "extender", {}, (1, 2, 3), 2.0, 2.0, 2.0, 2.0, 2.0,
        per_seed={name: (1.0, 2.0, 3.0) for name in FIGURES},
    )  # fmt: skip
    two = restrict_seeds(p, [1, 3])
    assert two.seeds == (1, 3) and two.node_hours == 2.0 and two.sd["node_hours"] > 1.4
    with pytest.raises(ValueError, match="seeds"):
        restrict_seeds(p, [4])


def test_combine_seeds_pools_runs_of_the_same_point_on_other_seeds() -> None:
    def run(
        seeds: tuple[int, ...], values: tuple[float, ...], knobs: dict[str, int]
    ) -> FrontierPoint:
        return restrict_seeds(
            FrontierPoint(
                "static", "extender", knobs, seeds, 0.0, 0.0, 0.0, 0.0, 0.0,
                per_seed={name: values for name in FIGURES},
            ),
            seeds,
        )  # fmt: skip

    first = run((1, 2, 3), (1.0, 2.0, 3.0), {"placeholders.count": 5})
    more = run((4, 5), (4.0, 5.0), {"placeholders.count": 5})
    other = run((1, 2, 3), (7.0, 7.0, 7.0), {"placeholders.count": 10})
    pooled = combine_seeds([first, other, more])
    assert [p.label() for p in pooled] == [first.label(), other.label()]
    five = pooled[0]
    assert five.seeds == (1, 2, 3, 4, 5)
    assert five.per_seed["node_hours"] == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert five.node_hours == 3.0
    assert five.sd["waited_over_60s"] == pytest.approx(1.5811, abs=1e-4)
    assert pooled[1] == other  # a point run once is unchanged
    # A seed run twice for the same point is a mistake, not something to average.
    with pytest.raises(ValueError, match="seed 3"):
        combine_seeds([first, run((3, 4), (1.0, 1.0), {"placeholders.count": 5})])


TINY_FAMILIES = [
    Family(
        "z2jh-static",
        "z2jh",
        ("placeholders.mode=static",),
        (((("placeholders.count", 0)),), (("placeholders.count", 3),)),
    ),
    Family(
        "adaptive+taint",
        "extender",
        ("placeholders.mode=adaptive", "startup_taint.enabled=true"),
        ((("placeholders.safety", 1.0),),),
    ),
]


def test_a_real_sweep_writes_a_valid_frontier(tmp_path: Path) -> None:
    scenario = scenario_from_data({**TINY, "duration": "2h"}, "tiny")
    seen: list[tuple[int, int]] = []
    points = run_frontier(scenario, TINY_FAMILIES, [1, 2], 1, lambda d, t, _: seen.append((d, t)))
    assert seen[-1] == (6, 6)
    assert [p.label() for p in points] == [
        "z2jh-static(count=0)",
        "z2jh-static(count=3)",
        "adaptive+taint(safety=1.0)",
    ]
    assert all(p.seeds == (1, 2) and p.node_hours > 0 for p in points)
    written = write_frontier(points, tmp_path, plot=False)
    assert written == [tmp_path / "frontier.json"]
    data = json.loads((tmp_path / "frontier.json").read_text())
    assert isinstance(data, list) and len(data) == 3
    for item in data:
        for key in (
            "family",
            "knobs",
            "seeds",
            "node_hours",
            "waited_over_60s",
            "failed_spawns",
            "wait_p95_s",
            "node_hours_sd",
            "waited_over_60s_sd",
            "per_seed",
            "pareto",
        ):
            assert key in item, key  # fmt: skip
        assert len(item["per_seed"]["node_hours"]) == 2
    assert any(item["pareto"] for item in data)
    back = read_frontier(tmp_path / "frontier.json")
    assert points_to_json(back) == data


def test_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pts = [point("z2jh-static", 10, 5, count=0), point("adaptive", 11, 2)]
    write_frontier(pts, tmp_path)
    assert (tmp_path / "frontier.png").stat().st_size > 1000


def _item() -> dict[str, Any]:
    return points_to_json([point("adaptive", 10.0, 3.0)])[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"schema": 0}, r"\[0\]\.schema: expected 1", id="schema"),
        pytest.param({"family": 3}, r"\[0\]\.family: expected a string", id="family"),
        pytest.param({"knobs": []}, r"\[0\]\.knobs", id="knobs"),
        pytest.param({"seeds": []}, r"\[0\]\.seeds", id="no-seeds"),
        pytest.param({"node_hours": "many"}, r"\[0\]\.node_hours: expected a number", id="nh"),
        pytest.param({"wait_p95_s_sd": -1}, r"\[0\]\.wait_p95_s_sd", id="negative-sd"),
        pytest.param({"per_seed": {"node_hours": [1, 2]}}, r"per_seed\.node_hours", id="per-seed"),
    ],
)
def test_bad_json_names_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(FrontierError, match=message):
        points_from_json([{**_item(), **change}])


def test_not_a_list() -> None:
    with pytest.raises(FrontierError, match="list"):
        points_from_json({"points": []})


def test_default_families_cover_the_issue_sweep() -> None:
    families = {f.name: f for f in default_families()}
    static = [dict(k)["placeholders.count"] for k in families["z2jh-static"].points]
    assert static == [0, 1, 2, 3, 5, 10, 20, 40]
    assert families["z2jh-static"].policy == "z2jh"
    for name in ("static", "adaptive", "adaptive-node", "forecast", "forecast-node"):
        assert families[name].policy == "extender"
        assert "startup_taint.enabled=true" in families[f"{name}+taint"].base
        assert "startup_taint.enabled=true" not in families[name].base


def test_our_static_family_is_z2jhs_under_the_extender() -> None:
    """z2jh's N (0: no placeholders, the extender alone) under our extender, with and without
    the startup taint: the same user-sized static placeholders, so a dominance check compares
    like with like."""
    families = {f.name: f for f in default_families()}
    z2jh = families["z2jh-static"]
    for name, taint in (("static", False), ("static+taint", True)):
        ours = families[name]
        assert ours.policy == "extender"
        assert [dict(k)["placeholders.count"] for k in ours.points] == [0, 1, 2, 3, 5, 10, 20, 40]
        assert z2jh.points == ours.points
        assert "placeholders.mode=static" in ours.base
        assert "placeholders.size=user" in ours.base
        assert ("startup_taint.enabled=true" in ours.base) is taint
    # The scenario each point runs: static N user-sized, the taint only in +taint.
    scenario = scenario_from_data(TINY, "tiny")
    for name, taint in (("static", False), ("static+taint", True)):
        fam = families[name]
        sc = point_scenario(scenario, fam, fam.points[-1])
        assert (sc.placeholders.mode, sc.placeholders.size, sc.placeholders.count) == (
            "static", "user", 40,
        )  # fmt: skip
        assert sc.startup_taint.enabled is taint
    # Without the taint families (the recommend/benchmark switch) only "static" stays.
    names = {f.name for f in default_families(startup_taint=False)}
    assert "static" in names and "static+taint" not in names


def test_dominance_finds_our_cheapest_point_no_worse_on_both() -> None:
    none = point("z2jh-static", 10.0, 100.0, count=0)
    forty = point("z2jh-static", 20.0, 50.0, count=40)
    five = point("z2jh-static", 12.0, 80.0, count=5)
    cheap = point("adaptive", 9.0, 100.0)  # dominates N=0 (fewer node-hours, as many waits)
    equal = point("static", 12.0, 80.0, count=5)  # equals N=5: counts
    mid = point("forecast", 11.0, 90.0)  # no: more waits than N=5
    dear = point("forecast-node", 19.0, 10.0)  # dominates N=5 and N=40, but dearer than equal
    rows = dominance([none, cheap, five, mid, forty, equal, dear])
    # One row per z2jh point, in the order given; our cheapest point that is no worse on both.
    assert rows == [(none, cheap), (five, equal), (forty, dear)]


def test_dominance_says_none_when_nothing_dominates() -> None:
    forty = point("z2jh-static", 13.7, 240.0, count=40)
    cheaper_more_waits = point("forecast+taint", 12.2, 240.6)
    fewer_waits_dearer = point("adaptive-node", 15.7, 220.0)
    other_z2jh = point("z2jh-static", 13.0, 200.0, count=20)  # z2jh's own points never count
    rows = dominance([forty, cheaper_more_waits, fewer_waits_dearer, other_z2jh])
    assert rows == [(forty, None), (other_z2jh, None)]
    assert dominance([cheaper_more_waits]) == []  # no z2jh point: nothing to answer


def test_the_dominance_table_answers_the_question() -> None:
    pts = [
        point("z2jh-static", 10.0, 100.0, count=0),
        point("z2jh-static", 13.7, 60.0, count=40),
        point("adaptive", 9.0, 100.0),  # cheaper than N=40, but more waits
    ]
    text = dominance_table(pts)
    assert text.startswith("### Does ours dominate z2jh's?")
    rows = [line for line in text.splitlines() if line.startswith("| `z2jh")]
    assert rows == [
        "| `z2jh-static(count=0)` | 10.0 | 100.0 | `adaptive` | 9.0 | 100.0 |",
        "| `z2jh-static(count=40)` | 13.7 | 60.0 | none | | |",
    ]
    assert "1 of 2 z2jh points dominated" in text
    assert "not dominated: `z2jh-static(count=40)`" in text
    assert "dominated: all" not in text
    every = dominance_table(pts[:1] + pts[2:])
    assert "1 of 1 z2jh points dominated" in every and "not dominated" not in every
