"""The pure cache store: event rules, assumptions, and incremental publish == rebuild."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.cache.store import Store, snapshot_pods
from scheduler_extender.core.snapshot import build_snapshot
from scheduler_extender.core.types import Pod, Resources
from tests.factories import node, pod

N1, N2 = node("n1"), node("n2")


def _pod(uid: str, where: str = "", cpu: int = 100) -> object:
    return pod(uid=uid, node_name=where, cpu=cpu)


def placed(store: Store) -> dict[str, set[str]]:
    return {name: set(uids) for name, uids in snapshot_pods(store.publish()).items()}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            [("node", N1), ("pod", _pod("a", "n1"))], {"n1": {"a"}}, id="pod-on-known-node"
        ),
        pytest.param(
            [("pod", _pod("a", "n1")), ("node", N1)], {"n1": {"a"}}, id="pod-before-its-node"
        ),
        pytest.param(
            [("node", N1), ("pod", _pod("a", "n1")), ("delete_pod", "a")],
            {"n1": set()},
            id="deleted-pod-frees-node",
        ),
        pytest.param(
            [("node", N1), ("node", N2), ("pod", _pod("a", "n1")), ("pod", _pod("a", "n2"))],
            {"n1": set(), "n2": {"a"}},
            id="pod-moves",
        ),
        pytest.param(
            [("node", N1), ("pod", _pod("a", "n1")), ("delete_node", "n1"), ("node", N1)],
            {"n1": {"a"}},
            id="node-comes-back-with-its-pods",
        ),
        pytest.param(
            [("node", N1), ("pod", _pod("a", ""))], {"n1": set()}, id="pending-pod-is-nowhere"
        ),
    ],
)
def test_events_place_pods(steps: list[tuple[str, object]], expected: dict[str, set[str]]) -> None:
    store = Store()
    for action, value in steps:
        if action == "node":
            store.upsert_node(value)  # type: ignore[arg-type]
        elif action == "pod":
            store.upsert_pod(value)  # type: ignore[arg-type]
        elif action == "delete_pod":
            store.delete_pod(value)  # type: ignore[arg-type]
        elif action == "delete_node":
            store.delete_node(value)  # type: ignore[arg-type]
        store.publish()  # publish after every step: the incremental path
    assert placed(store) == expected


def test_assumed_pod_counts_until_confirmed_then_truth_takes_over() -> None:
    store = Store()
    store.upsert_node(N1)
    store.upsert_pod(_pod("a"))  # pending
    before = store.publish()
    assert store.assume("a", "n1", expires=10.0) == ""
    after = store.publish()
    assert before.nodes["n1"].requested.cpu == 0  # old snapshot untouched
    assert after.nodes["n1"].requested.cpu == 100
    store.upsert_pod(_pod("a", "n1", cpu=100))  # the watch confirms
    assert not store.assumed
    assert placed(store) == {"n1": {"a"}}


@pytest.mark.parametrize(
    ("end", "now"),
    [
        pytest.param("forget", 0.0, id="binding-failed"),
        pytest.param("expire", 10.0, id="timeout"),
        pytest.param("delete", 0.0, id="pod-deleted"),
    ],
)
def test_assumption_is_dropped(end: str, now: float) -> None:
    store = Store()
    store.upsert_node(N1)
    store.upsert_pod(_pod("a"))
    store.assume("a", "n1", expires=10.0)
    assert placed(store) == {"n1": {"a"}}
    if end == "forget":
        assert store.forget("a")
    elif end == "expire":
        assert store.expire(now - 0.001) == 0
        assert store.expire(now) == 1
    else:
        store.delete_pod("a")
    assert placed(store) == {"n1": set()}
    assert not store.assumed


@pytest.mark.parametrize(
    ("known", "given_pod", "why"),
    [
        pytest.param(None, None, "unknown pod", id="unknown"),
        pytest.param(_pod("a", "n2"), None, "already bound to n2", id="already-bound"),
        pytest.param(None, _pod("a"), "", id="unknown-but-read"),
    ],
)
def test_assume_refusals(known: object, given_pod: object, why: str) -> None:
    store = Store()
    store.upsert_node(N1)
    if known is not None:
        store.upsert_pod(known)  # type: ignore[arg-type]
    assert store.assume("a", "n1", 1.0, given_pod) == why  # type: ignore[arg-type]


def test_relist_keeps_assumptions_and_drops_vanished_pods() -> None:
    store = Store()
    store.replace_nodes([N1])
    store.replace_pods([_pod("a", "n1"), _pod("b", "n1"), _pod("c")])
    store.assume("c", "n1", 10.0)
    store.publish()
    store.replace_pods([_pod("a", "n1")])  # b and c are gone from the list; c stays assumed
    assert placed(store) == {"n1": {"a", "c"}}


# --- property: incremental publish equals a rebuild from the truth ---------------------------

NODE_NAMES = ["n0", "n1", "n2", "n3"]
UIDS = [f"p{i}" for i in range(12)]
actions = st.one_of(
    st.tuples(st.just("node"), st.sampled_from(NODE_NAMES), st.integers(1000, 4000)),
    st.tuples(st.just("delete_node"), st.sampled_from(NODE_NAMES), st.just(0)),
    st.tuples(st.just("pod"), st.sampled_from(UIDS), st.sampled_from(["", *NODE_NAMES, "gone"])),
    st.tuples(st.just("delete_pod"), st.sampled_from(UIDS), st.just(0)),
    st.tuples(st.just("assume"), st.sampled_from(UIDS), st.sampled_from(NODE_NAMES)),
    st.tuples(st.just("forget"), st.sampled_from(UIDS), st.just(0)),
    st.tuples(st.just("publish"), st.just(""), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(actions, max_size=60))
def test_incremental_publish_equals_rebuild(steps: list[tuple[str, str, object]]) -> None:
    store = Store()
    for action, key, arg in steps:
        if action == "node":
            store.upsert_node(replace(node(key), allocatable=Resources(int(arg), 0, 110)))  # type: ignore[call-overload]
        elif action == "delete_node":
            store.delete_node(key)
        elif action == "pod":
            store.upsert_pod(_pod(key, str(arg), cpu=100 + UIDS.index(key)))  # type: ignore[arg-type]
        elif action == "delete_pod":
            store.delete_pod(key)
        elif action == "assume":
            store.assume(key, str(arg), 1.0)
        elif action == "forget":
            store.forget(key)
        else:
            store.publish()
    got = store.publish()
    effective = [p for uid in UIDS if (p := store.effective(uid)) is not None]
    want = build_snapshot(store.nodes.values(), effective)
    assert dict(got.pod_nodes) == dict(want.pod_nodes)
    assert {n: (i.node, dict(i.pods), i.requested) for n, i in got.nodes.items()} == {
        n: (i.node, dict(i.pods), i.requested) for n, i in want.nodes.items()
    }


# --- relists arrive page by page ------------------------------------------------------------


def _fresh(uid: str, where: str = "", cpu: int = 100) -> Pod:
    """An equal but distinct object, as converting the same JSON again produces."""
    return pod(uid, uid=uid, node_name=where, cpu=cpu)


def test_paged_relist_keeps_held_objects_and_changes_nothing_until_it_ends() -> None:
    store = Store()
    store.replace_nodes([N1])
    held = {u: _fresh(u, "n1") for u in ("a", "b", "c")}
    store.replace_pods(held.values())
    before = store.publish()
    store.begin_relist("pods")
    store.relist_page("pods", [_fresh("a", "n1"), _fresh("b", "n1", cpu=300)])
    assert store.pending == 0 and store.publish() is before  # nothing visible mid-list
    store.relist_page("pods", [_fresh("d", "n1")])
    store.end_relist("pods")
    assert placed(store) == {"n1": {"a", "b", "d"}}
    assert store.pods["a"] is held["a"]  # unchanged: the copy from the list was dropped
    assert store.pods["b"].requests.cpu == 300


def test_aborted_relist_leaves_the_truth_alone() -> None:
    store = Store()
    store.replace_nodes([N1])
    store.replace_pods([_fresh("a", "n1")])
    store.publish()
    store.begin_relist("pods")
    store.relist_page("pods", [_fresh("b", "n1")])
    store.abort_relist("pods")
    assert placed(store) == {"n1": {"a"}}
    with pytest.raises(KeyError):
        store.end_relist("pods")  # the aborted list is gone, not applied as if complete
    assert placed(store) == {"n1": {"a"}}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(UIDS), st.sampled_from(["", *NODE_NAMES])), max_size=12),
    st.lists(st.tuples(st.sampled_from(UIDS), st.sampled_from(["", *NODE_NAMES])), max_size=12),
    st.integers(1, 5),
)
def test_paged_relist_equals_replace_pods(
    first: list[tuple[str, str]], second: list[tuple[str, str]], page: int
) -> None:
    nodes = [node(n) for n in NODE_NAMES]
    paged, whole = Store(), Store()
    for store in (paged, whole):
        store.replace_nodes(nodes)
        store.replace_pods(_fresh(u, w) for u, w in dict(first).items())
        store.publish()
    listed = [_fresh(u, w) for u, w in dict(second).items()]
    whole.replace_pods(listed)
    paged.begin_relist("pods")
    for i in range(0, len(listed), page):
        paged.relist_page("pods", listed[i : i + page])
    paged.end_relist("pods")
    assert placed(paged) == placed(whole)
    assert paged.pods == whole.pods
