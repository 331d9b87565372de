"""Snapshots: incremental updates equal a rebuild from scratch, and never mutate their inputs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.snapshot import build_snapshot, node_info, with_pod, without_pod
from scheduler_extender.core.types import Pod, Resources
from tests.factories import node, placeholder, pod


def test_node_info_totals() -> None:
    info = node_info(node("n"), [pod(cpu=100, memory=10), placeholder(cpu=50, memory=5)])
    assert info.requested == Resources(150, 15, 2)
    assert info.placeholder_requested == Resources(50, 5, 1)
    assert (info.terms.user_cpu, info.terms.user_memory) == (100, 10)
    assert (info.terms.requested_cpu, info.terms.requested_memory) == (150, 15)


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


ops = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.integers(0, 7), st.integers(0, 1000), st.booleans()),
        st.tuples(st.just("delete"), st.integers(0, 7)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=ops)
def test_incremental_updates_equal_a_rebuild(ops: list[tuple[Any, ...]]) -> None:
    info = node_info(node("n0"))
    truth: dict[str, Pod] = {}
    for op in ops:
        uid = f"p{op[1]}"
        if op[0] == "upsert":
            p = replace(pod(uid=uid, cpu=int(op[2]), node_name="n0"), placeholder=bool(op[3]))
            info = with_pod(info, p)
            truth[uid] = p
        else:
            info = without_pod(info, uid)
            truth.pop(uid, None)
    rebuilt = node_info(node("n0"), truth.values())
    assert (info.requested, info.placeholder_requested) == (
        rebuilt.requested,
        rebuilt.placeholder_requested,
    )
    assert dict(info.pods) == dict(rebuilt.pods)
    assert info.terms == rebuilt.terms
