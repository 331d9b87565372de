"""The simulator runs the controller's planner and reconcile: modes, node-sized placeholders,
the same observation the controller builds, and preemption steering through the preempt verb."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_extender.core.placeholders import plan_placeholders
from scheduler_extender.sim.cli import main as simulate
from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.model import PodState
from scheduler_extender.sim.scenario import ScenarioError, scenario_from_data
from scheduler_extender.sim.scheduler import PreemptCall, parse_policy
from tests.sim.test_engine import TINY

WINDOW = {"days": ["Mon"], "start": "01:00", "end": "02:00", "count": 4}


def tiny(**placeholders: Any) -> Any:
    return scenario_from_data({**TINY, "placeholders": placeholders}, "tiny")


def placeholders_at(sim: Simulation, t: float) -> int:
    """Placeholder count right after the plan at ``t``."""
    counts: list[int] = []
    original = sim._on_plan

    def spy(obj: object) -> None:
        original(obj)
        if not counts and sim.now >= t:
            counts.append(len(sim.placeholder_pods))

    sim._on_plan = spy  # type: ignore[method-assign]
    sim.run()
    return counts[0]


@pytest.mark.parametrize(
    ("placeholders", "at", "expected"),
    [
        pytest.param({"mode": "none", "count": 5}, 1800, 0, id="none"),
        pytest.param({"count": 3}, 1800, 3, id="static"),
        pytest.param({"mode": "schedule", "windows": [WINDOW]}, 1800, 0, id="schedule-before"),
        pytest.param({"mode": "schedule", "windows": [WINDOW]}, 4000, 4, id="schedule-inside"),
        pytest.param({"mode": "adaptive", "min": 2, "max": 2}, 1800, 2, id="adaptive-clamped"),
    ],
)
def test_modes_plan_the_count(placeholders: dict, at: float, expected: int) -> None:
    sim = Simulation(tiny(**placeholders), parse_policy("extender"), 1)
    assert placeholders_at(sim, at) == expected


def test_node_sized_placeholders_request_a_node() -> None:
    sim = Simulation(tiny(count=1, size="node"), parse_policy("extender"), 1)
    sim.run()
    alloc = sim.template_node("x", 0).allocatable
    assert (sim.placeholder_requests.cpu, sim.placeholder_requests.memory) == (
        alloc.cpu,
        alloc.memory,
    )


def test_the_simulator_plans_with_the_controller_planner() -> None:
    sim = Simulation(tiny(mode="adaptive", max=50), parse_policy("extender"), 3)
    seen: list[tuple[Any, Any]] = []
    planner = sim.planner

    def spy(observation: Any) -> Any:
        plans = planner(observation)
        seen.append((observation, plans))
        return plans

    sim.planner = spy
    sim.run()
    assert len(seen) > 100
    assert any(plans["user"].desired > 0 for _, plans in seen)
    for observation, plans in seen[::25]:
        assert plan_placeholders([sim.pool_spec], observation) == plans
        pool = observation.pools["user"]
        assert all(t <= observation.time for t in pool.arrivals)
        assert pool.nodes, "the pool's nodes are observed"


CLASS = {
    **TINY,
    "duration": "3h",
    "pool": {"cpu": "2", "memory": "4Gi", "pods": 20, "initial_nodes": 1, "max_nodes": 30},
    "users": {
        "arrivals": {"rate_per_minute": 0.1},
        "bursts": [{"at": "90m", "count": 120, "over": "15m"}],
        "profiles": [{"cpu": "100m", "memory": "300Mi", "activity": {"median": "40m"}}],
    },
    "images": {"default_pull": {"min": 300, "max": 600}},
    "placeholders": {"mode": "schedule", "size": "node",
                     "windows": [{"days": ["Mon"], "start": "01:00", "end": "03:00",
                                  "count": 6}]},
}  # fmt: skip


def test_preempt_verb_keeps_image_ready_placeholders() -> None:
    """Every preemption goes through the extender's preempt verb, and when any candidate node
    holds the user's image, the node kept holds it too."""
    calls: list[PreemptCall] = []
    scenario = scenario_from_data(CLASS, "class")
    sim = Simulation(scenario, parse_policy("extender"), 1, on_preempt=calls.append)
    sim.run()
    assert sim.stats.preemptions >= 3
    assert len(calls) == sim.stats.preemptions
    mixed = 0
    for call in calls:
        image = call.pod.images[0]
        holding = [
            c.node for c in call.candidates if image in call.snapshot.nodes[c.node].node.images
        ]
        if holding:
            assert set(call.kept) <= set(holding)
        mixed += 0 < len(holding) < len(call.candidates)
    assert mixed >= 3, "some preemptions had an image-less candidate to avoid"
    assert all(sp.state is not PodState.PENDING or sp.placeholder for sp in sim.pods.values())


def test_cli_placeholder_options(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "duration": "1h"}), encoding="utf-8")
    code = simulate(["--scenario", str(path), "--policies", "extender", "--seeds", "1",
                     "--placeholder-mode", "adaptive", "--placeholder-size", "node",
                     "--out", str(tmp_path / "out"), "--quiet", "--no-plots"])  # fmt: skip
    assert code == 0
    bad = [
        "--scenario",
        str(path),
        "--set",
        'placeholders.windows=[{days: [Mon], start: "25:00", end: "26:00", count: 1}]',
    ]
    assert simulate(bad) == 2
    assert "placeholders.windows.0" in capsys.readouterr().err


def test_scenario_rejects_min_above_max() -> None:
    with pytest.raises(ScenarioError, match="min must be <= max"):
        tiny(mode="adaptive", min=5, max=2)
