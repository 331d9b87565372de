"""The startup taint in the simulator: users never land on a node that still has it,
placeholders do, the taint comes off once the images are there, and the scenario refuses a taint
that could never come off."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.model import SimPod
from scheduler_extender.sim.scenario import ScenarioError, scenario_from_data
from scheduler_extender.sim.scheduler import parse_policy
from tests.sim.test_engine import TINY


def scenario(taint: bool, **changes: Any) -> Any:
    data = {
        **TINY,
        "placeholders": {"mode": "adaptive", "size": "node", "max": 1000},
        "startup_taint": {"enabled": taint},
        "duration": "2h",
        **changes,
    }
    return scenario_from_data(data, "tiny")


class Recording(Simulation):
    """Notes, at every bind, whether the node still carried the startup taint."""

    binds: list[tuple[bool, bool]]

    def _bind(self, sp: SimPod, node_name: str) -> None:
        self.binds.append((sp.placeholder, self.startup_tainted(self.nodes[node_name])))
        super()._bind(sp, node_name)


def run(taint: bool, seed: int) -> Recording:
    sim = Recording(scenario(taint), parse_policy("extender"), seed)
    sim.binds = []
    return sim.run()  # type: ignore[return-value]


@pytest.mark.parametrize("seed", [1, 2])
def test_users_never_land_on_a_tainted_node_placeholders_do(seed: int) -> None:
    sim = run(True, seed)
    users_on_tainted = sum(1 for ph, tainted in sim.binds if not ph and tainted)
    placeholders_on_tainted = sum(1 for ph, tainted in sim.binds if ph and tainted)
    assert sim.stats.binds > 100
    assert users_on_tainted == 0
    assert placeholders_on_tainted > 0
    # Nobody waits on a pull: a user only ever lands on a node that has the image.
    assert sim.stats.pull_waits == 0
    assert sim.stats.startup_taints_removed > 0


def test_without_the_taint_users_land_on_nodes_still_pulling() -> None:
    """The comparison that makes the previous test mean something: the same users, no taint."""
    waits = [run(False, seed).stats.pull_waits for seed in (1, 2, 3)]
    assert sum(waits) > 0


def test_the_taint_comes_off_every_node_that_got_its_images() -> None:
    sim = run(True, 1)
    images = {p.image for p in sim.scenario.users.profiles}
    for node in sim.nodes.values():
        if node.ready and images <= node.node.images:
            # removal lands startup_taint.removal_delay after the last pull
            assert not sim.startup_tainted(node) or node.untaint_due
    assert sim.stats.startup_taint_seconds > 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"images": {"continuous_puller": False}},
            "startup_taint.enabled needs images.continuous_puller",
            id="no-puller",
        ),
        pytest.param(
            {"startup_taint": {"enabled": True, "key": "example.com/warming"}},
            "startup_taint.key: must start with startup-taint",
            id="not-a-ca-startup-key",
        ),
    ],
)
def test_scenario_rejects_a_taint_that_cannot_work(changes: dict[str, Any], message: str) -> None:
    data = {**TINY, "startup_taint": {"enabled": True}, **changes}
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        scenario_from_data(data, "tiny")
