"""The filter: only what the in-tree plugins (and so the Cluster Autoscaler) check."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.filtering import check_node, filter_nodes, insufficient
from scheduler_extender.core.policy import NodePurpose, PolicyConfig
from scheduler_extender.core.snapshot import node_info
from scheduler_extender.core.types import (
    Node,
    Pod,
    Requirement,
    Resources,
    SelectorTerm,
    Taint,
    Toleration,
)
from tests.factories import GI, MI, USER_TOLERATIONS, node, placeholder, pod, snapshot

CFG = PolicyConfig()
TO_BE_DELETED = Taint("ToBeDeletedByClusterAutoscaler", "1764061800", "NoSchedule")
DELETION_CANDIDATE = Taint("DeletionCandidateOfClusterAutoscaler", "1", "PreferNoSchedule")


def _purpose_term(value: str) -> tuple[SelectorTerm, ...]:
    return (SelectorTerm((Requirement("hub.jupyter.org/node-purpose", "In", (value,)),)),)


@pytest.mark.parametrize(
    ("the_node", "the_pod", "pods_there", "config", "fits", "unresolvable", "reason"),
    [
        pytest.param(node("n"), pod(), [], CFG, True, False, "", id="empty-user-node"),
        pytest.param(node("n", unschedulable=True), pod(), [], CFG, False, True,
                     "node(s) were unschedulable", id="cordoned"),
        pytest.param(node("n", unschedulable=True),
                     pod(tolerations=[*USER_TOLERATIONS, Toleration(
                         "node.kubernetes.io/unschedulable", "Exists", "", "NoSchedule")]),
                     [], CFG, True, False, "", id="cordoned-but-tolerated"),
        pytest.param(node("n", taints=[TO_BE_DELETED]), pod(), [], CFG, False, True,
                     "node(s) had untolerated taint {ToBeDeletedByClusterAutoscaler: 1764061800}",
                     id="to-be-deleted"),
        pytest.param(node("n", taints=[DELETION_CANDIDATE]), pod(), [], CFG, True, False, "",
                     id="deletion-candidate-is-only-a-preference"),
        pytest.param(node("n"), pod(tolerations=[]), [], CFG, False, True,
                     "node(s) had untolerated taint {hub.jupyter.org/dedicated: user}",
                     id="user-taint-not-tolerated"),
        pytest.param(node("n", taints=[Taint("gpu", "", "NoExecute")]),
                     pod(tolerations=[Toleration("", "Exists")]), [], CFG, True, False, "",
                     id="tolerate-everything"),
        pytest.param(node("n", user=False), pod(required_terms=_purpose_term("user")), [], CFG,
                     False, True, "node(s) didn't match Pod's node affinity/selector",
                     id="required-affinity"),
        pytest.param(node("n"), pod(node_selector={"disk": "ssd"}), [], CFG, False, True,
                     "node(s) didn't match Pod's node affinity/selector", id="node-selector"),
        pytest.param(node("n", user=False), pod(), [],
                     replace(CFG, match_node_purpose=NodePurpose.REQUIRE), False, True,
                     "node(s) didn't have label hub.jupyter.org/node-purpose=user",
                     id="match-node-purpose-require"),
        pytest.param(node("n", user=False), pod(), [],
                     replace(CFG, match_node_purpose=NodePurpose.PREFER), True, False, "",
                     id="match-node-purpose-prefer-does-not-filter"),
        pytest.param(node("n", cpu=1000), pod(cpu=1500), [], CFG, False, True,
                     "Insufficient cpu", id="never-fits-cpu"),
        pytest.param(node("n", memory=GI), pod(memory=2 * GI), [], CFG, False, True,
                     "Insufficient memory", id="never-fits-memory"),
        pytest.param(node("n", cpu=1000), pod(cpu=600), [pod(cpu=600, node_name="n")], CFG,
                     False, False, "Insufficient cpu", id="full-cpu-resolvable"),
        pytest.param(node("n", memory=GI), pod(memory=600 * MI),
                     [placeholder("n", memory=600 * MI)], CFG, False, False,
                     "Insufficient memory", id="placeholder-holds-room-until-preempted"),
        pytest.param(node("n", pods=2), pod(), [pod(node_name="n"), pod(node_name="n")], CFG,
                     False, False, "Too many pods", id="pod-count"),
        pytest.param(node("n", pods=0), pod(), [], CFG, False, True, "Too many pods",
                     id="no-pods-allowed"),
        pytest.param(node("n", pods=1, cpu=1000), pod(cpu=2000), [pod(node_name="n")], CFG,
                     False, True, "Insufficient cpu", id="full-but-also-never-fits"),
        pytest.param(node("n"), replace(pod(), requests=Resources(0, 0, 1, {"nvidia.com/gpu": 1})),
                     [], CFG, False, True, "Insufficient nvidia.com/gpu", id="missing-gpu"),
        pytest.param(node("n", scalar={"nvidia.com/gpu": 1}),
                     replace(pod(), requests=Resources(0, 0, 1, {"nvidia.com/gpu": 1})),
                     [], CFG, True, False, "", id="gpu-present"),
        pytest.param(node("n", cpu=1000), pod(cpu=0, memory=0),
                     [pod(cpu=1000, node_name="n")], CFG, True, False, "",
                     id="zero-request-pod-only-needs-a-pod-slot"),
    ],
)  # fmt: skip
def test_check_node(
    the_node: Node,
    the_pod: Pod,
    pods_there: list[Pod],
    config: PolicyConfig,
    fits: bool,
    unresolvable: bool,
    reason: str,
) -> None:
    verdict = check_node(the_pod, node_info(the_node, pods_there), config)
    assert (verdict.fits, verdict.unresolvable, verdict.reason) == (fits, unresolvable, reason)


def test_filter_nodes_splits_and_fails_open_on_unknown_nodes() -> None:
    snap = snapshot(
        [node("ok"), node("full", cpu=100), node("tainted", taints=[TO_BE_DELETED])],
        [pod(cpu=100, node_name="full")],
    )
    outcome = filter_nodes(pod(cpu=50), ["ok", "full", "ghost", "tainted"], snap, CFG)
    assert outcome.passed == ("ok", "ghost")
    assert outcome.unknown == ("ghost",)
    assert dict(outcome.failed) == {"full": "Insufficient cpu"}
    assert set(outcome.unresolvable) == {"tainted"}


def test_insufficient_reports_the_first_short_resource() -> None:
    assert insufficient(Resources(10, 10, 1), Resources(5, 5, 5)) == "Insufficient cpu"
    assert insufficient(Resources(10, 10, 1), Resources(50, 50, 0)) == "Too many pods"
    assert insufficient(Resources(10, 10, 1), Resources(10, 10, 1)) == ""


# --- invariants -----------------------------------------------------------------------------

nodes_strategy = st.lists(
    st.builds(
        lambda i, cpu, mem, pods, tainted, cordoned, user: node(
            f"n{i}", cpu=cpu, memory=mem, pods=pods, unschedulable=cordoned, user=user,
            taints=[TO_BE_DELETED] if tainted else None,
        ),
        st.integers(0, 10**6), st.integers(0, 8000), st.integers(0, 64 * GI),
        st.integers(0, 110), st.booleans(), st.booleans(), st.booleans(),
    ),
    max_size=12,
    unique_by=lambda n: n.name,
)  # fmt: skip
pod_strategy = st.builds(
    lambda cpu, mem, tolerate: pod(
        cpu=cpu, memory=mem, tolerations=USER_TOLERATIONS if tolerate else ()
    ),
    st.integers(0, 9000),
    st.integers(0, 70 * GI),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    nodes=nodes_strategy,
    the_pod=pod_strategy,
    load=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 4000), st.integers(0, 30 * GI))),
    unknown=st.lists(st.sampled_from(["x1", "x2", "x3"]), unique=True),
    purpose=st.sampled_from(list(NodePurpose)),
)
def test_filter_partitions_its_input_and_never_passes_a_node_that_cannot_fit(
    nodes: list[Node],
    the_pod: Pod,
    load: list[tuple[int, int, int]],
    unknown: list[str],
    purpose: NodePurpose,
) -> None:
    names = [n.name for n in nodes]
    pods = [
        pod(cpu=cpu, memory=mem, node_name=names[i % len(names)]) for i, cpu, mem in load if names
    ]
    snap = snapshot(nodes, pods)
    config = replace(CFG, match_node_purpose=purpose)
    outcome = filter_nodes(the_pod, names + unknown, snap, config)

    # passed + failed + unresolvable is exactly the input, with no overlap
    seen = list(outcome.passed) + list(outcome.failed) + list(outcome.unresolvable)
    assert sorted(seen) == sorted(names + unknown)
    assert set(outcome.unknown) == set(unknown)
    # never pass a known node where the pod does not fit
    for name in outcome.passed:
        info = snap.nodes.get(name)
        if info is None:
            continue
        free = info.node.allocatable - info.requested
        req = the_pod.requests
        assert req.pods <= free.pods
        assert req.cpu == 0 or req.cpu <= free.cpu
        assert req.memory == 0 or req.memory <= free.memory
        assert not info.node.unschedulable
        assert all(t.key != "ToBeDeletedByClusterAutoscaler" for t in info.node.taints)
    # unresolvable exactly when the node would refuse the pod even if it were empty
    for name in names:
        empty = check_node(the_pod, node_info(snap.nodes[name].node), config)
        assert (name in outcome.unresolvable) == (not empty.fits)
