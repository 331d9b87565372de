"""Workloads: generated arrivals, trace replay, culling and the lower bound."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from scheduler_extender.sim.scenario import ScenarioError, scenario_from_data
from scheduler_extender.sim.workload import (
    UserSpec,
    cull_time,
    departure,
    generate_users,
    lower_bound_node_hours,
    read_trace,
)

BASE = {"name": "w", "pool": {"cpu": "4", "memory": "4Gi", "pods": 10}}


def scenario(**changes: object) -> object:
    return scenario_from_data({**BASE, **changes}, "w")


def test_poisson_rate_and_daily_shape() -> None:
    sc = scenario_from_data(
        {**BASE, "duration": "7d",
         "users": {"arrivals": {"rate_per_minute": 5, "hourly": [0] * 12 + [2] * 12}}},
        "w",
    )  # fmt: skip
    users = generate_users(sc, 1)
    assert len(users) == pytest.approx(5 * 60 * 24 * 7, rel=0.03)
    assert all((u.arrival // 3600) % 24 >= 12 for u in users)
    assert users == generate_users(sc, 1) != generate_users(sc, 2)


def test_peak_rate_is_the_busiest_hour() -> None:
    sc = scenario_from_data(
        {**BASE, "duration": "1d",
         "users": {"arrivals": {"peak_per_minute": 6, "hourly": [1] * 23 + [3]}}},
        "w",
    )  # fmt: skip
    users = generate_users(sc, 3)
    last_hour = sum(1 for u in users if u.arrival >= 23 * 3600)
    assert last_hour == pytest.approx(360, rel=0.2)
    assert len(users) == pytest.approx(360 + 23 * 120, rel=0.1)


@pytest.mark.parametrize(
    ("last_activity", "started", "timeout", "every", "max_age", "expected"),
    [
        (100.0, 0.0, 600, 300, 0, 900.0),
        (300.0, 0.0, 600, 300, 0, 900.0),
        (301.0, 0.0, 600, 300, 0, 1200.0),
        (5000.0, 0.0, 600, 660, 3600, 3960.0),
    ],
    ids=["rounds-up", "on-a-pass", "just-after", "max-age"],
)
def test_cull_time(
    last_activity: float, started: float, timeout: int, every: int, max_age: int, expected: float
) -> None:
    sc = scenario_from_data(
        {**BASE, "culler": {"timeout": timeout, "every": every, "max_age": max_age}}, "w"
    )
    assert cull_time(last_activity, sc, started) == expected


def test_explicit_stop_is_not_culled() -> None:
    sc = scenario_from_data(BASE, "w")
    user = UserSpec(0, 0.0, "p", 0, 1, "i", activity=50.0, stop_after=50.0)
    assert departure(user, sc, 10.0) == 60.0


def test_lower_bound_counts_the_tightest_resource() -> None:
    # 4 cpu / 4Gi / 10 pods per node; users of 1 cpu and 1Mi: cpu-bound, 4 per node.
    sc = scenario_from_data({**BASE, "duration": "2h", "culler": {"timeout": 0, "every": 1}}, "w")
    users = [UserSpec(i, 0.0, "p", 1000, 2**20, "i", activity=3600.0) for i in range(5)]
    assert lower_bound_node_hours(users, sc) == pytest.approx(2.0)
    users = [UserSpec(i, 0.0, "p", 0, 2**20, "i", activity=3600.0) for i in range(11)]
    assert lower_bound_node_hours(users, sc) == pytest.approx(2.0)  # 11 pods > 10 per node


def test_trace_replay(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "arrival,last_activity,end,cpu,memory,image,profile\n"
        "2024-01-01T10:00:30Z,2024-01-01T10:20:30Z,,100m,1Gi,jupyter/base-notebook,a\n"
        "2024-01-01T10:00:00Z,,2024-01-01T11:00:00Z,,,,\n",
        encoding="utf-8",
    )
    sc = scenario_from_data(BASE, "w")
    users = read_trace(path, sc)
    assert [u.arrival for u in users] == [0.0, 30.0]
    assert users[0].stop_after == 3600.0 and users[0].memory == 512 * 2**20
    assert users[1].activity == 1200.0 and users[1].stop_after is None
    assert users[1].cpu == 100 and users[1].memory == 2**30
    assert users[1].image == "docker.io/jupyter/base-notebook:latest"


def test_open_sessions_stay_until_the_run_ends(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("arrival,end,open\n0,600,true\n0,600,\n0,600,no\n", encoding="utf-8")
    users = read_trace(path, scenario_from_data(BASE, "w"))
    assert [u.open for u in users] == [True, False, False]
    sc = scenario_from_data({**BASE, "duration": "1h"}, "w")
    # Its end is after the trace and unknown: it holds its node to the end of the trace (the
    # drain tail, which waits for the last known departure, cannot wait for it).
    assert departure(users[0], sc, 100.0) == 3600.0
    assert departure(users[1], sc, 100.0) == 700.0
    # The culler's age limit still removes an open session (on its next pass).
    aged = scenario_from_data({**BASE, "culler": {"max_age": 1000, "every": 600}}, "w")
    assert departure(users[0], aged, 100.0) == 1200.0
    # The lower bound counts it until the end of the run.
    sc = scenario_from_data({**BASE, "duration": "2h", "culler": {"timeout": 0, "every": 1}}, "w")
    assert lower_bound_node_hours(users[:1], sc) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arrival,last_activity\n,5\n", "line 2: arrival is required"),
        ("arrival,last_activity,end\n0,5,6\n", "exactly one of last_activity or end"),
        ("arrival,end\n10,5\n", "ends before it arrives"),
        ("arrival,end\nsoon,5\n", "expected seconds or an ISO 8601 time"),
        ("arrival,end,memory\n0,5,lots\n", "invalid quantity"),
        ("arrival,end\n", "the trace has no rows"),
        ("arrival,end,open\n0,5,maybe\n", "line 2 open: expected true or false"),
    ],
    ids=["no-arrival", "both-ends", "backwards", "bad-time", "bad-memory", "empty", "bad-open"],
)
def test_bad_traces_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=message):
        read_trace(path, scenario_from_data(BASE, "w"))


def test_scenario_errors_name_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"culler.every: every must be > 0|culler: "):
        scenario_from_data({**BASE, "culler": {"every": 0}}, "w")
    with pytest.raises(ScenarioError, match=r"pool\.memory: invalid quantity"):
        scenario_from_data({**BASE, "pool": {"memory": "many"}}, "w")
    with pytest.raises(ScenarioError, match="duration"):
        scenario_from_data({**BASE, "duration": "soon"}, "w")
    assert not math.isnan(scenario_from_data(BASE, "w").duration)


def test_every_builtin_scenario_loads() -> None:
    from scheduler_extender.sim.scenario import builtin_scenarios, load_scenario

    names = builtin_scenarios()
    assert {"mybinder-week", "classroom-spike", "workshop", "anchor-day", "course-day"} <= set(
        names
    )
    for name in names:
        assert load_scenario(name).name == name


def test_the_shipped_trace_replays_the_same_users_for_every_seed() -> None:
    from scheduler_extender.sim.scenario import load_scenario

    scenario = load_scenario("course-day")
    users = generate_users(scenario, 1)
    assert len(users) == 910
    assert users == generate_users(scenario, 2)
    assert {u.memory for u in users} == {2**30, 4 * 2**30}
