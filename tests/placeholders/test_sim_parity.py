"""The simulator and the placeholder controller make every placeholder decision with the same
core functions on the same specs, so a benchmark of a mode measures what the controller does.

- The pool-to-spec mapping: a scenario's ``placeholders:`` block and the controller's ``count:``
  block with the same numbers give the same ``CountSpec``, field by field (a key one side
  forgets to map fails here; keys only the controller has keep the core's defaults in both).
- The decisions: both shells reach the planner, the ready-time clamp, the arrival horizon and
  the reconcile (``pool_actions``: rolling replacement of node-sized pools) through ``core``;
  spies on each shell's import of those functions see calls from a real run of each shell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from scheduler_extender.core import placeholders as core
from scheduler_extender.placeholders import controller as controller_module
from scheduler_extender.placeholders import observation as observation_module
from scheduler_extender.placeholders.config import count_spec
from scheduler_extender.sim import engine as engine_module
from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.placeholders import pool_spec
from scheduler_extender.sim.scenario import scenario_from_data
from scheduler_extender.sim.scheduler import parse_policy
from tests.cache.conftest import eventually
from tests.placeholders.conftest import Factory, config
from tests.sim.test_engine import TINY

#: The same pool written both ways, every number away from its default.
SCENARIO_POOL: dict[str, Any] = {
    "mode": "adaptive", "min": 1, "max": 7, "safety": 1.25,
    "windows": [{"days": ["Mon", "Tue"], "start": "08:00", "end": "10:00", "count": 3}],
    "rate_window": 1200, "burst_window": 90, "burst_min_arrivals": 4, "scale_down_delay": 450,
    "ready_default": 240, "boot_seconds": 20, "image_pull_seconds": 60,
    "forecast_min_weeks": 2,
}  # fmt: skip
CONTROLLER_COUNT: dict[str, Any] = {
    "mode": "adaptive", "min": 1, "max": 7, "safety": 1.25,
    "windows": [{"days": ["Mon", "Tue"], "start": "08:00", "end": "10:00", "count": 3}],
    "rateWindowSeconds": 1200, "burstWindowSeconds": 90, "burstMinArrivals": 4,
    "scaleDownDelaySeconds": 450, "nodeReadySeconds": 240, "bootSeconds": 20,
    "imagePullSeconds": 60, "forecastMinWeeks": 2,
}  # fmt: skip


def test_scenario_and_controller_config_give_the_same_count_spec() -> None:
    scenario = scenario_from_data({**TINY, "placeholders": SCENARIO_POOL}, "parity")
    sim_count = pool_spec(scenario, "default", (), -10).count
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"] = CONTROLLER_COUNT
    controller_count = count_spec(config(pools=pools).pools[0].count)
    differ = [
        f.name
        for f in dataclasses.fields(core.CountSpec)
        if getattr(sim_count, f.name) != getattr(controller_count, f.name)
    ]
    assert differ == []


def spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[Any]:
    """Record each call of ``module.name`` (the shell's own reference to a core function)."""
    calls: list[Any] = []
    real: Callable[..., Any] = getattr(core, name)

    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, record)
    return calls


def test_the_simulator_decides_through_core(monkeypatch: pytest.MonkeyPatch) -> None:
    actions = spy(monkeypatch, engine_module, "pool_actions")
    clamps = spy(monkeypatch, engine_module, "clamp_ready")
    horizons = spy(monkeypatch, engine_module, "arrival_horizon")
    scenario = scenario_from_data(
        {**TINY, "placeholders": {"mode": "adaptive", "size": "node", "min": 1, "max": 2}}, "p"
    )
    Simulation(scenario, parse_policy("extender"), 1).run()
    assert actions and clamps and horizons
    assert all(call[0] is core.SizeMode.NODE for call in actions)


def test_the_controller_decides_through_core(
    monkeypatch: pytest.MonkeyPatch, make_controller: Factory
) -> None:
    actions = spy(monkeypatch, controller_module, "pool_actions")
    plans = spy(monkeypatch, controller_module, "plan_placeholders")
    clamps = spy(monkeypatch, observation_module, "clamp_ready")
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"] = {"mode": "static", "static": 2}
    controller = make_controller(config(pools=pools))
    eventually(lambda: bool(actions) and bool(plans), what="a reconcile pass")
    controller.observe()
    assert all(call[0] is core.SizeMode.USER for call in actions)
    assert clamps, "the controller's node samples go through core.clamp_ready"
