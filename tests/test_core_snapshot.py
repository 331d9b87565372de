"""Snapshots: incremental updates equal a rebuild from scratch, and never mutate their inputs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.snapshot import (
    apply_changes,
    build_snapshot,
    node_info,
    user_load,
    with_pod,
    without_pod,
)
from scheduler_extender.core.types import Pod, Resources, Snapshot
from tests.factories import node, placeholder, pod

NODES = ["n0", "n1", "n2"]


def _canon(snap: Snapshot) -> dict[str, tuple[Resources, Resources, frozenset[str]]]:
    return {
        name: (info.requested, info.placeholder_requested, frozenset(info.pods))
        for name, info in snap.nodes.items()
    }


def test_node_info_totals() -> None:
    info = node_info(node("n"), [pod(cpu=100, memory=10), placeholder(cpu=50, memory=5)])
    assert info.requested == Resources(150, 15, 2)
    assert info.placeholder_requested == Resources(50, 5, 1)
    assert user_load(info, placeholders_as_load=False) == Resources(100, 10, 1)
    assert user_load(info, placeholders_as_load=True) == Resources(150, 15, 2)


def test_with_and_without_pod_do_not_mutate() -> None:
    before = node_info(node("n"), [pod(uid="a", cpu=100)])
    after = with_pod(before, pod(uid="b", cpu=200))
    assert before.requested.cpu == 100 and set(before.pods) == {"a"}
    assert after.requested.cpu == 300 and set(after.pods) == {"a", "b"}
    replaced = with_pod(after, pod(uid="b", cpu=50))
    assert replaced.requested.cpu == 150
    assert without_pod(replaced, "missing") is replaced
    assert without_pod(replaced, "b").requested.cpu == 100


def test_pods_on_unknown_or_no_node_are_left_out() -> None:
    snap = build_snapshot([node("n0")], [pod(uid="a", node_name="zz"), pod(uid="b")])
    assert dict(snap.pod_nodes) == {}
    assert snap.pod("a") is None


def test_deleting_a_node_forgets_its_pods() -> None:
    snap = build_snapshot([node("n0")], [pod(uid="a", node_name="n0")])
    gone = apply_changes(snap, delete_nodes=["n0"])
    assert "n0" not in gone.nodes and "a" not in gone.pod_nodes
    assert "a" in snap.pod_nodes  # the old snapshot is untouched


def test_node_update_keeps_pods() -> None:
    snap = build_snapshot([node("n0")], [pod(uid="a", cpu=100, node_name="n0")])
    updated = apply_changes(snap, upsert_nodes=[node("n0", cpu=8000)])
    assert updated.nodes["n0"].node.allocatable.cpu == 8000
    assert updated.nodes["n0"].requested.cpu == 100


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("upsert"),
            st.integers(0, 7),
            st.sampled_from([*NODES, "", "nope"]),
            st.integers(0, 1000),
            st.booleans(),
        ),
        st.tuples(st.just("delete"), st.integers(0, 7)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=ops, batch=st.integers(1, 5))
def test_incremental_changes_equal_a_rebuild(ops: list[tuple[Any, ...]], batch: int) -> None:
    nodes = [node(n) for n in NODES]
    snap = build_snapshot(nodes, [])
    truth: dict[str, Pod] = {}
    for start in range(0, len(ops), batch):
        upserts: list[Pod] = []
        deletes: list[str] = []
        for op in ops[start : start + batch]:
            if op[0] == "upsert":
                _, i, where, cpu, is_ph = op
                p = pod(uid=f"p{i}", cpu=int(cpu), node_name=str(where))
                p = replace(p, placeholder=bool(is_ph))
                # within one batch the order is: deletions, then upserts
                deletes = [d for d in deletes if d != p.uid]
                upserts = [u for u in upserts if u.uid != p.uid] + [p]
            else:
                uid = f"p{op[1]}"
                upserts = [u for u in upserts if u.uid != uid]
                deletes.append(uid)
        for uid in deletes:
            truth.pop(uid, None)
        for p in upserts:
            truth[p.uid] = p
        snap = apply_changes(snap, upsert_pods=upserts, delete_pods=deletes)
    rebuilt = build_snapshot(nodes, truth.values())
    assert _canon(snap) == _canon(rebuilt)
    assert dict(snap.pod_nodes) == dict(rebuilt.pod_nodes)
