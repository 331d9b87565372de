"""The kube-scheduler model against upstream's formulas and rules (values worked by hand from
the upstream sources cited in sim/plugins.py and sim/scheduler.py)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from scheduler_extender.core.snapshot import build_snapshot
from scheduler_extender.core.types import Node, Pod, Resources, Taint
from scheduler_extender.sim import plugins
from scheduler_extender.sim.scheduler import (
    EXTENDER_WEIGHT,
    ClusterView,
    KubeScheduler,
    PolicyError,
    num_feasible_nodes_to_find,
    parse_policy,
)
from tests.factories import node, placeholder, pod

MB = 1024 * 1024


def _node(cpu: int, memory: int, pods: int = 110, **kw: object) -> Node:
    return Node("n", Resources(cpu, memory, pods), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("most", "node_nonzero", "pod_req", "expected"),
    [
        (True, (2000, 4000), (1000, 1000), 62),  # cpu 75, memory 50
        (False, (2000, 4000), (1000, 1000), 37),  # cpu 25, memory 50
        (True, (5000, 20000), (0, 0), 100),  # over capacity clamps to 100
        (False, (5000, 20000), (0, 0), 0),  # over capacity scores 0
    ],
    ids=["most", "least", "most-over", "least-over"],
)
def test_fit_score(
    most: bool, node_nonzero: tuple[int, int], pod_req: tuple[int, int], expected: int
) -> None:
    info = build_snapshot([_node(4000, 10000)], []).nodes["n"]
    p = Pod("p", requests=Resources(pod_req[0], pod_req[1], 1))
    assert plugins.fit_score(p, info, most, (1, 1), node_nonzero) == expected


def test_fit_score_counts_missing_requests_as_the_non_zero_defaults() -> None:
    info = build_snapshot([_node(4000, 400 * MB)], []).nodes["n"]
    best_effort = Pod("p", requests=Resources(0, 0, 1))
    # cpu 100m of 4000m -> 2; memory 200Mi of 400Mi -> 50; (2 + 50) // 2 = 26
    assert plugins.fit_score(best_effort, info, True, (1, 1), (0, 0)) == 26
    assert plugins.nonzero(0, 0) == (100, 200 * MB)
    assert plugins.nonzero(50, MB) == (50, MB)


def test_balanced_allocation() -> None:
    n = _node(4000, 10000)
    info = build_snapshot([n], [Pod("a", node_name="n", requests=Resources(2000, 4000, 1))]).nodes[
        "n"
    ]
    p = Pod("p", requests=Resources(1000, 1000, 1))
    assert plugins.balanced_score(p, info) == 87  # fractions 0.75 / 0.5, std 0.125
    assert plugins.best_effort(Pod("b", requests=Resources(0, 0, 1)))


def test_image_locality() -> None:
    image = "docker.io/library/img:1"
    n = _node(4000, 10000, images=frozenset({image}))
    info = build_snapshot([n], []).nodes["n"]
    p = Pod("p", images=(image,))
    # 500 MB on 1 of 2 nodes -> 250 MB; 100 * (250 - 23) // 977 = 23
    got = plugins.image_locality_score(
        p, info, sizes={image: 500 * MB}, counts={image: 1}, total_nodes=2, default_size=0
    )
    assert got == 23
    absent = build_snapshot([_node(4000, 10000)], []).nodes["n"]
    assert (
        plugins.image_locality_score(
            p, absent, sizes={image: 500 * MB}, counts={image: 1}, total_nodes=2, default_size=0
        )
        == 0
    )


@pytest.mark.parametrize(
    ("raw", "reverse", "expected"),
    [([0, 1, 2], True, [100, 50, 0]), ([0, 0], True, [100, 100]), ([1, 3], False, [33, 100])],
    ids=["reverse", "all-zero-reverse", "forward"],
)
def test_default_normalize(raw: list[int], reverse: bool, expected: list[int]) -> None:
    assert plugins.default_normalize(raw, reverse) == expected


def test_prefer_no_schedule_taint_is_counted() -> None:
    soft = Taint("DeletionCandidateOfClusterAutoscaler", "", "PreferNoSchedule")
    a = build_snapshot([_node(1, 1, taints=(soft,))], []).nodes["n"]
    b = build_snapshot([_node(1, 1)], []).nodes["n"]
    assert plugins.taint_toleration_scores(Pod("p"), [a, b]) == [0, 100]


@pytest.mark.parametrize(
    ("percentage", "nodes", "expected"),
    [(0, 50, 50), (0, 100, 100), (0, 1000, 420), (0, 5000, 500), (0, 10000, 500),
     (100, 5000, 5000), (30, 1000, 300), (10, 200, 100)],
    ids=["small", "hundred", "adaptive-1000", "adaptive-5000", "floor-5pct", "all", "set-30",
         "at-least-100"],
)  # fmt: skip
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def _view(nodes: list[Node], pods: list[Pod]) -> ClusterView:
    snap = build_snapshot(nodes, pods)
    return ClusterView(cache=snap, order=[n.name for n in nodes], nominated={}, image_counts={})


def test_preemption_takes_the_fewest_lowest_priority_victims() -> None:
    # Room for 4 pods of 1000m each; node a: 2 users + 2 placeholders; node b: 3 users + 1
    # placeholder.  A user needs one slot: one placeholder victim on either node (the other
    # placeholder on a is reprieved), so pickOneNodeForPreemption's last criterion decides: the
    # node whose victim started latest.
    a, b = node("a", cpu=4000, pods=110), node("b", cpu=4000, pods=110)
    pods = [pod(cpu=1000, node_name="a") for _ in range(2)]
    pods += [pod(cpu=1000, node_name="b") for _ in range(3)]
    ph_a = [placeholder("a", cpu=1000) for _ in range(2)]
    ph_b = [replace(placeholder("b", cpu=1000), created=99.0)]
    view = _view([a, b], pods + ph_a + ph_b)
    sched = KubeScheduler(parse_policy("z2jh"), random.Random(1))
    attempt = sched.schedule(pod(cpu=1000), view)
    assert attempt.node == ""
    assert attempt.preempt_node == "b"
    assert [v.uid for v in attempt.victims] == [ph_b[0].uid]


def test_no_preemption_of_equal_priority_users() -> None:
    a = node("a", cpu=2000)
    view = _view([a], [pod(cpu=1000, node_name="a"), pod(cpu=1000, node_name="a")])
    attempt = KubeScheduler(parse_policy("z2jh"), random.Random(1)).schedule(pod(cpu=1000), view)
    assert (
        attempt.node == "" and attempt.preempt_node == "" and "Insufficient cpu" in attempt.reason
    )


def test_policies_and_variants() -> None:
    ext = parse_policy("extender")
    assert ext.extender is not None and ext.extender.weight == EXTENDER_WEIGHT
    assert ext.percentage_of_nodes_to_score == 100
    assert not ext.extender.bind_assume  # the shipped chart has no bindVerb
    bind = parse_policy("extender-bind")
    assert bind.extender is not None and bind.extender.bind_assume
    variant = parse_policy("extender[weight=5,normalization=linear,assume=true,cycle_ms=2]")
    assert variant.name == "extender[weight=5,normalization=linear,assume=true,cycle_ms=2]"
    assert variant.extender is not None and variant.extender.weight == 5
    assert variant.extender.policy.normalization == "linear"
    assert variant.extender.bind_assume and variant.cycle_seconds == 0.002
    assert parse_policy("z2jh").most_allocated and not parse_policy("default").most_allocated
    with pytest.raises(PolicyError, match="unknown key 'colour'"):
        parse_policy("extender[colour=red]")
    with pytest.raises(PolicyError, match="assume: expected true or false"):
        parse_policy("extender[assume=maybe]")
