"""The learned node-ready time is clamped to ``[nodeReadyMinSeconds, nodeReadyMaxSeconds]``
(review finding I2): one node whose Ready condition changed hours after its creation (it
flapped or was repaired) must not make an adaptive pool plan for hours of arrivals."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_extender.core.placeholders import plan_placeholders
from scheduler_extender.kube.convert import node_stub
from tests.placeholders.conftest import Factory, config, node_obj


def adaptive(**count: Any) -> dict[str, Any]:
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"] = {"mode": "adaptive", "min": 0, "max": 20, **count}
    return {"pools": pools}


@pytest.mark.parametrize(
    ("ready_at", "count", "learned"),
    [
        pytest.param("2026-01-05T10:01:40Z", {}, 100.0, id="in-range-kept"),
        pytest.param("2026-01-05T15:00:00Z", {}, 1800.0, id="five-hours-capped-at-30-min"),
        pytest.param("2026-01-05T10:00:05Z", {}, 30.0, id="five-seconds-raised-to-30"),
        pytest.param("2026-01-05T15:00:00Z", {"nodeReadyMaxSeconds": 600}, 600.0,
                     id="configured-cap"),
    ],
)  # fmt: skip
def test_learned_node_ready_time_is_clamped(
    make_controller: Factory, ready_at: str, count: dict[str, Any], learned: float
) -> None:
    c = make_controller(config(**adaptive(**count)), start=False)
    nodes = {}
    for i in range(3):
        obj = node_obj(f"user-node-{i}")  # created 2026-01-05T10:00:00Z
        for cond in obj["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond["lastTransitionTime"] = ready_at
        nodes[f"/user-node-{i}"] = node_stub(obj, images=False)
    c.nodes._items = nodes
    runtime = c.pools["default"]
    samples = c.observer.samples(runtime)
    assert [s.ready - s.created for s in samples if s.ready is not None] == [learned] * 3
    plan = plan_placeholders([runtime.spec], c.observe())["default"]
    assert plan.ready_seconds == learned
