"""The Cluster Autoscaler model's rules, each on a tiny cluster."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scheduler_extender.sim.autoscaler import ClusterAutoscaler
from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.scenario import scenario_from_data
from scheduler_extender.sim.scheduler import parse_policy

QUIET: dict[str, Any] = {
    "name": "ca",
    "duration": "1h",
    "pool": {"cpu": "2", "memory": "8Gi", "pods": 20, "min_nodes": 1, "initial_nodes": 1},
    "users": {"profiles": [{"cpu": "1", "memory": "1Gi"}]},
    "autoscaler": {"provisioning": {"min": 120, "max": 120}},
}


def run(**changes: Any) -> Simulation:
    data = {**QUIET, **changes}
    return Simulation(scenario_from_data(data, "ca"), parse_policy("z2jh"), 1).run()


@pytest.mark.parametrize(
    ("priority", "scales_up"),
    [(-10, True), (-11, False)],
    ids=["at-cutoff-triggers", "below-cutoff-is-expendable"],
)
def test_pending_placeholders_trigger_scale_up_down_to_the_cutoff(
    priority: int, scales_up: bool
) -> None:
    sim = run(placeholders={"count": 3, "priority": priority}, duration="5m")
    assert (sim.stats.scale_ups > 0) is scales_up
    if scales_up:
        added = sim.nodes_log[1]
        assert added.ready_at - added.created == 120


def test_empty_nodes_go_after_ten_unneeded_minutes_down_to_the_minimum() -> None:
    sim = run(pool={**QUIET["pool"], "initial_nodes": 3})
    gone = sorted(n.deleted_at for n in sim.nodes_log if math.isfinite(n.deleted_at))
    assert len(gone) == 2  # min_nodes 1 keeps one
    assert all(600 <= t <= 620 for t in gone)


def test_no_scale_down_within_ten_minutes_of_a_scale_up() -> None:
    data = {**QUIET, "pool": {**QUIET["pool"], "initial_nodes": 3}}
    sim = Simulation(scenario_from_data(data, "ca"), parse_policy("z2jh"), 1)
    ca = sim.autoscaler
    assert isinstance(ca, ClusterAutoscaler)
    ca.last_scale_up = 300.0  # as if a scale-up had happened at 5 minutes
    sim.run()
    gone = sorted(n.deleted_at for n in sim.nodes_log if math.isfinite(n.deleted_at))
    # Unneeded since 0 (10 minutes are up at 600 s), but the cool-down lasts until 900 s.
    assert len(gone) == 2 and all(900 <= t <= 910 for t in gone)


def test_user_pods_block_scale_down() -> None:
    long_session = {"cpu": "100m", "memory": "1Gi", "activity": {"median": "2h", "sigma": 0}}
    sim = run(
        users={"bursts": [{"at": 0, "count": 1, "over": 1}], "profiles": [long_session]},
        pool={**QUIET["pool"], "min_nodes": 0},
    )
    assert sim.stats.nodes_removed == 0
