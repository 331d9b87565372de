"""Engine invariants: exact reproducibility, node-hour accounting, no overcommitment."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler_extender.sim.engine import EPOCH, Simulation
from scheduler_extender.sim.metrics import result_of
from scheduler_extender.sim.scenario import Scenario, scenario_from_data
from scheduler_extender.sim.scheduler import parse_policy

TINY: dict[str, Any] = {
    "name": "tiny",
    "duration": "4h",
    "pool": {"cpu": "2", "memory": "4Gi", "pods": 20, "initial_nodes": 1, "max_nodes": 30},
    "users": {
        "arrivals": {"rate_per_minute": 2, "hourly": [1, 3, 1, 0.5] * 6},
        "bursts": [{"at": "90m", "count": 25, "over": "3m"}],
        "profiles": [{"cpu": "100m", "memory": "300Mi", "activity": {"median": "20m"}}],
    },
    "culler": {"timeout": 600, "every": 300},
    "images": {"default_pull": {"min": 20, "max": 60}},
    "placeholders": {"count": 3},
    "autoscaler": {"provisioning": {"min": 60, "max": 180}},
}


def tiny(**changes: Any) -> Scenario:
    data = {**TINY, **changes}
    return scenario_from_data(data, "tiny")


POLICIES = [
    "default",
    "z2jh",
    "extender",
    "extender-bind",
    "oracle",
    "extender-drain",
    "oracle-ages",
    "extender-survival",
    "survival-distribution",
    "survival-exact",
]


@pytest.mark.parametrize("policy", POLICIES, ids=POLICIES)
def test_same_seed_same_run(policy: str) -> None:
    profile = parse_policy(policy)
    a = result_of(Simulation(tiny(), profile, 5).run(), 0.0)
    b = result_of(Simulation(tiny(), profile, 5).run(), 0.0)
    assert a == b
    assert a.binds > 50


def test_every_policy_sees_the_same_users() -> None:
    runs = [Simulation(tiny(), parse_policy(p), 9) for p in POLICIES]
    assert all(r.users == runs[0].users for r in runs)
    assert len(runs[0].users) > 100


@pytest.mark.parametrize("mode", ["realistic", "ideal"], ids=["realistic", "ideal"])
@pytest.mark.parametrize("policy", POLICIES, ids=POLICIES)
def test_node_hours_are_fully_accounted(policy: str, mode: str) -> None:
    scenario = tiny(autoscaler={**TINY["autoscaler"], "mode": mode})
    result = result_of(Simulation(scenario, parse_policy(policy), 2).run(), 0.0)
    parts = (
        result.occupied_node_hours
        + result.provisioning_node_hours
        + result.placeholder_only_node_hours
        + result.empty_node_hours
    )
    assert parts == pytest.approx(result.node_hours, rel=1e-9)
    assert result.started + result.failed_spawns <= result.users
    if mode == "ideal":
        assert result.provisioning_node_hours == 0
        # Nodes exist only while users run; users run at least from start to their departure.
        assert result.node_hours >= 0.95 * result.lower_bound


class Checked(Simulation):
    """Fails the moment a bind overcommits a node in the scheduler's cache."""

    binds = 0

    def _bind(self, sp: Any, node_name: str) -> None:
        super()._bind(sp, node_name)
        self.binds += 1
        info = self.cache.nodes[node_name]
        alloc = info.node.allocatable
        req = info.requested
        assert req.cpu <= alloc.cpu and req.memory <= alloc.memory and req.pods <= alloc.pods


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    policy=st.sampled_from(POLICIES),
    placeholders=st.integers(0, 8),
    rate=st.floats(0.5, 6),
)
def test_never_overcommits(seed: int, policy: str, placeholders: int, rate: float) -> None:
    scenario = tiny(
        duration="2h",
        placeholders={"count": placeholders},
        users={**TINY["users"], "arrivals": {"rate_per_minute": rate}},
    )
    checked = Checked(scenario, parse_policy(policy), seed)
    checked.run()
    # The check lives in the _bind override: make sure it ran (a renamed method would skip it).
    assert checked.binds > 0


@pytest.mark.parametrize("policy", ["z2jh", "extender-drain"])
def test_the_run_lasts_until_the_last_session_ends(policy: str) -> None:
    """With ``drain_tail`` (the default) node-hours include the tail after arrivals stop."""
    long_sessions = {
        **TINY["users"],
        "profiles": [{"cpu": "100m", "memory": "300Mi", "activity": {"median": "90m"}}],
    }
    sim = Simulation(tiny(users=long_sessions), parse_policy(policy), 4).run()
    cut = Simulation(tiny(users=long_sessions, drain_tail=False), parse_policy(policy), 4).run()
    full, short = result_of(sim, 0.0), result_of(cut, 0.0)
    assert sim.end > sim.scenario.duration
    assert sim.end == sim.last_user_gone
    assert sim.users_running == sim.users_waiting == 0
    assert full.hours == pytest.approx(sim.end / 3600)
    assert full.tail_hours == pytest.approx(full.hours - 4)
    assert 0 < full.tail_node_hours < full.node_hours
    assert full.node_hours > short.node_hours
    # The lower bound is counted over the same span: the tail included.
    assert full.lower_bound > short.lower_bound
    assert short.hours == 4 and short.tail_hours == 0 and short.tail_node_hours == 0
    assert cut.users_running > 0


def test_oracle_ages_extension_is_the_expected_added_time() -> None:
    """``oracle-ages`` scores by E[(T - r)+] over the workload's true session lengths."""
    sim = Simulation(tiny(), parse_policy("oracle-ages"), 3)
    assert sim.view.extension is not None
    spans = sim._spans
    sim.now = 5000.0
    for remaining in (0.0, 300.0, 1800.0, 7200.0, 1e9):
        brute = sum(max(0.0, t - remaining) for t in spans) / len(spans)
        assert sim.view.extension(sim.now + remaining) == pytest.approx(brute)
    assert sim.view.extension(0.0) == pytest.approx(sum(spans) / len(spans))


def test_survival_references_know_the_distribution_and_the_departures() -> None:
    """``survival-distribution`` fits the true session lengths once and keeps them;
    ``survival-exact`` also passes each placed user's departure; ``extender-survival`` learns."""
    learned = Simulation(tiny(), parse_policy("extender-survival"), 3)
    assert learned._drain().model.observations == 0
    assert learned._drain().known_leave is None
    known = Simulation(tiny(), parse_policy("survival-distribution"), 3)
    drain = known._drain()
    assert drain.model.observations == len(known.users)
    assert drain.known_leave is None
    exact = Simulation(tiny(), parse_policy("survival-exact"), 3)
    checked: list[int] = []

    def check(_: float) -> None:
        # Mid-run: every placed user's known departure is its simulated one (Unix seconds).
        drain = exact._drain()
        assert drain.known_leave is not None
        assert drain.model.observations >= len(exact.users)
        for uid, leave in exact._placed_leave.items():
            assert drain.known_leave[uid] == EPOCH + leave
        checked.append(len(drain.known_leave))

    exact.run(check)
    assert max(checked) > 20
