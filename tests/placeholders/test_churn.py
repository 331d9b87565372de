"""Node-sized placeholders do not churn (review finding I3): requests a few percent below the
plan are kept, and stale ones are replaced one at a time."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_extender.core.placeholders import (
    NODE_SIZE_TOLERANCE,
    Actions,
    Existing,
    rolling_actions,
    within_tolerance,
)
from scheduler_extender.core.types import Resources
from scheduler_extender.placeholders.pods import build_pod, spec_hash
from tests.placeholders.conftest import Factory, config

GiB = 1024**3


@pytest.mark.parametrize(
    ("old", "new", "kept"),
    [
        pytest.param(Resources(3900, 14 * GiB), Resources(3900, 14 * GiB), True, id="same"),
        pytest.param(Resources(3900, 14 * GiB), Resources(4000, 14 * GiB), True,
                     id="2.5pct-more-room"),
        pytest.param(Resources(3900, 14 * GiB), Resources(4200, 14 * GiB), False,
                     id="7pct-more-room"),
        pytest.param(Resources(3900, 14 * GiB), Resources(3890, 14 * GiB), False,
                     id="less-room-never-kept"),
        pytest.param(Resources(3900, 14 * GiB, 1, {"nvidia.com/gpu": 1}),
                     Resources(3900, 14 * GiB, 1, {"nvidia.com/gpu": 2}), False, id="gpus"),
        pytest.param(Resources(3900, 14 * GiB), Resources(3900, 14 * GiB, 1,
                     {"nvidia.com/gpu": 1}), False, id="new-extended-resource"),
    ],
)  # fmt: skip
def test_within_tolerance(old: Resources, new: Resources, kept: bool) -> None:
    assert within_tolerance(old, new, NODE_SIZE_TOLERANCE) is kept


def pod(name: str, h: str, node: str = "n", created: float = 0.0, **kw: Any) -> Existing:
    return Existing(name=name, uid=name, created=created, node=node, spec_hash=h, **kw)


@pytest.mark.parametrize(
    ("desired", "pods", "expected"),
    [
        pytest.param(3, [pod("a", "old", created=1), pod("b", "old", created=2),
                         pod("c", "old", created=3)], Actions(1, ("a",)),
                     id="three-stale-bound-one-at-a-time"),
        pytest.param(3, [pod("a", "new", node=""), pod("b", "old"), pod("c", "old")],
                     Actions(0, ()), id="wait-for-the-replacement-to-bind"),
        pytest.param(3, [pod("a", "new"), pod("b", "old", created=1),
                         pod("c", "old", created=2, terminating=True)],
                     Actions(1, ()), id="wait-while-one-terminates"),
        pytest.param(3, [pod("a", "new"), pod("b", "old", created=2),
                         pod("c", "old", created=1)], Actions(1, ("c",)),
                     id="next-once-landed"),
        pytest.param(2, [pod("a", "old", node=""), pod("b", "old"), pod("c", "new")],
                     Actions(0, ("a",)), id="pending-stale-goes-first"),
        pytest.param(1, [pod("a", "old", created=1), pod("b", "old", created=2),
                         pod("c", "old", created=3)], Actions(0, ("a", "b")),
                     id="surplus-goes-at-once"),
        pytest.param(2, [pod("a", "new"), pod("b", "new")], Actions(0, ()), id="nothing-stale"),
        pytest.param(2, [pod("a", "new"), pod("b", "new", finished=True)],
                     Actions(1, ("b",)), id="finished-replaced"),
    ],
)  # fmt: skip
def test_rolling_actions(desired: int, pods: list[Existing], expected: Actions) -> None:
    assert rolling_actions(desired, "new", pods) == expected


def node_pool(**pool: Any) -> dict[str, Any]:
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0].update({"size": "node", "count": {"mode": "static", "static": 2}, **pool})
    return {"pools": pools}


@pytest.mark.parametrize(
    ("old_cpu", "kept"),
    [pytest.param(3900, True, id="within-5pct"), pytest.param(3000, False, id="25pct-below")],
)
def test_existing_pods_within_tolerance_keep_their_hash(
    make_controller: Factory, old_cpu: int, kept: bool
) -> None:
    c = make_controller(config(**node_pool()), start=False)
    runtime = c.pools["default"]
    old = Resources(old_cpu, 14 * GiB, 1)
    obj = build_pod(c.config, runtime.model, old, None)
    obj["metadata"].update({"name": "ph-1", "uid": "u1"})
    c.placeholders._items = {"jhub/ph-1": obj}
    old_hash = obj["metadata"]["annotations"]["scheduler-extender.jupyter.org/spec-hash"]
    new = Resources(4000, 14 * GiB, 1)
    want = spec_hash(obj["spec"]) + "-planned"  # the plan's hash differs from the pods'
    pods = [pod("ph-1", old_hash)]
    assert c._tolerated_hash(runtime, new, want, pods) == (old_hash if kept else want)
