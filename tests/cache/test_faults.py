"""Fault tests: the live cache against the fake API server, with the real client and app.

After every fault the cache must equal the API server's truth (no lost pods, no ghost pods) and
the extender must have kept answering ``/prioritize`` over loopback throughout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from scheduler_extender.cache.live import LiveState
from tests.cache.conftest import FAST, Probe, assert_cache_matches, eventually
from tests.fakeapi import NODES, PODS, FakeApiServer, node_json, pod_json


@dataclass
class Writer:
    """Changes the cluster in a deterministic cycle: add a pod, bind it, finish one, delete one."""

    server: FakeApiServer
    step: int = 0

    def once(self) -> None:
        store = self.server.store
        i = self.step
        self.step += 1
        nodes = sorted(n["metadata"]["name"] for n in store.items(NODES))
        name = f"jupyter-w{i:04d}"
        store.create(PODS, "jhub", pod_json(name, node=nodes[i % len(nodes)] if nodes else ""))
        if i % 3 == 0:
            victims = sorted(p["metadata"]["name"] for p in store.items(PODS))
            store.delete(PODS, "jhub", victims[0])
        if i % 4 == 1:
            store.patch(PODS, "jhub", name, {"status": {"phase": "Succeeded"}})
        if i % 5 == 2:
            store.patch(PODS, "jhub", name, {"metadata": {"labels": {"touched": str(i)}}})

    def many(self, n: int) -> None:
        for _ in range(n):
            self.once()


def _run_writer(writer: Writer, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            writer.once()
            time.sleep(0.003)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _check_kept_answering(probe: Probe, start: float, end: float, stale: bool) -> None:
    """Every call was answered; with 200 and scores, except that once the outage outlasts the
    staleness bound the answer is a prompt 503 (the app steps aside while its view is stale, and
    the ignorable extender lets kube-scheduler decide with its own cache)."""
    during = probe.answered_between(start, end)
    assert during, "no prioritize call was made during the fault"
    allowed = {200, 503} if stale else {200}
    bad = [r for r in during if r[1] not in allowed]
    assert not bad, f"unexpected answers during the fault: {bad[:5]}"
    assert any(r[1] == 200 for r in during), "never answered with scores during the fault"
    # How fast is the benchmark's business (benchmarks/cache_sync.py, latency per phase).


def _relists(state: LiveState, reason: str) -> int:
    return sum(r.status.relists.get(reason, 0) for r in state.reflectors.values())


# --- the faults -----------------------------------------------------------------------------


def cut_mid_stream(server: FakeApiServer, state: LiveState, writer: Writer) -> None:
    """Connections dropped mid-event while pods change: resume from the last event, no relist."""
    stop = threading.Event()
    thread = _run_writer(writer, stop)
    pods = state.reflectors["pods"].status

    def delivered_since(seen: str) -> Callable[[], bool]:
        return lambda: pods.resource_version != seen

    for _ in range(3):
        eventually(lambda: server.active_watches(PODS) >= 1, 5, "a pods watch")
        eventually(delivered_since(pods.resource_version), 5, "the watch to deliver writes")
        server.cut_watches(partial=True)
    stop.set()
    thread.join()
    assert_cache_matches(server, state)
    assert _relists(state, "expired") == 0
    assert sum(r.status.restarts.get("error", 0) for r in state.reflectors.values()) >= 3


def compaction_410(server: FakeApiServer, state: LiveState, writer: Writer) -> None:
    """History compacted past the cache's resourceVersion: the watch gets 410, the cache relists."""
    server.stop()
    writer.many(12)
    server.store.delete(NODES, "", "user-node-00003")
    server.store.compact()
    server.start()
    eventually(lambda: _relists(state, "expired") >= 2, 10, "both kinds to relist after 410")
    assert_cache_matches(server, state)


def server_down(server: FakeApiServer, state: LiveState, writer: Writer) -> None:
    """The API server is down for several seconds while the cluster changes; not ready once the
    outage passes the staleness bound, ready again after."""
    server.stop()
    writer.many(8)
    eventually(lambda: not state.readiness().ready, 10, "readiness to drop")
    assert "broken" in state.readiness().reason
    # Stay down while both reflectors fail and back off twice more, still not ready.
    failed = {k: r.status.restarts.get("error", 0) for k, r in state.reflectors.items()}
    eventually(
        lambda: all(
            r.status.restarts.get("error", 0) >= failed[k] + 2 for k, r in state.reflectors.items()
        ),
        10,
        "two more failed attempts per kind",
    )
    assert not state.readiness().ready
    server.start()
    eventually(lambda: state.readiness().ready, 10, "readiness to return")
    assert_cache_matches(server, state)


def _restart(lower: bool) -> Callable[[FakeApiServer, LiveState, Writer], None]:
    def restart(server: FakeApiServer, state: LiveState, writer: Writer) -> None:
        """The API server comes back with its data renumbered (a restored etcd): resource
        versions below the cache's ("Too large resource version") or above it with no history
        (410).  Either way the cache must relist."""
        writer.many(15)  # enough history that the renumbered store ends below it
        eventually(
            lambda: all(
                r.status.resource_version == str(server.store.rv) for r in state.reflectors.values()
            ),
            10,
            "bookmarks to bring both kinds to the current resourceVersion",
        )
        seen = server.store.rv
        server.stop()
        writer.many(6)
        server.store.delete(NODES, "", "user-node-00002")
        server.store.create(NODES, "", node_json("user-node-new"))
        server.store.reset_versions(1 if lower else seen + 100_000)
        assert (server.store.rv < seen) == lower
        reason = "too_large_resource_version" if lower else "expired"
        server.start()
        eventually(lambda: _relists(state, reason) >= 2, 10, f"both kinds to relist ({reason})")
        assert_cache_matches(server, state)

    return restart


def events_during_relist(server: FakeApiServer, state: LiveState, writer: Writer) -> None:
    """Writes land between the pages of a relist: the list is a consistent snapshot and the
    watch from its resourceVersion delivers the rest."""
    pages: list[int] = []

    def during(rt: object, page: int) -> None:
        if rt == PODS and len(pages) < 3:
            pages.append(page)
            writer.many(2)

    server.stop()
    writer.many(4)
    server.store.compact()
    server.store.hooks.after_list_page = during
    server.start()
    eventually(lambda: len(pages) >= 3, 10, "a paged relist")
    assert_cache_matches(server, state)
    server.store.hooks.after_list_page = None


FAULTS = {
    "cut-mid-stream": cut_mid_stream,
    "410-after-compaction": compaction_410,
    "server-down-seconds": server_down,
    "restart-rv-lower": _restart(lower=True),
    "restart-rv-higher": _restart(lower=False),
    "events-during-relist": events_during_relist,
}


@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
def test_cache_equals_truth_after_fault_and_extender_keeps_answering(
    fault: Callable[[FakeApiServer, LiveState, Writer], None],
    server: FakeApiServer,
    live: LiveState,
    app_server: Probe,
) -> None:
    writer = Writer(server)
    writer.many(5)
    assert_cache_matches(server, live)
    start = time.monotonic()
    fault(server, live, writer)
    # However quick the fault, some probes ran inside it (the prober never stops).
    eventually(lambda: len(app_server.answered_between(start, time.monotonic())) >= 3, 10)
    end = time.monotonic()
    _check_kept_answering(app_server, start, end, stale=fault is server_down)
    # And the cache keeps following the server afterwards.
    writer.many(5)
    assert_cache_matches(server, live)
    status, body = app_server.get("/readyz")
    assert (status, body) == (200, "ok\n")


def test_readyz_is_503_until_both_kinds_listed(server: FakeApiServer, kube: object) -> None:
    from prometheus_client import CollectorRegistry

    from scheduler_extender.cache.readiness import Readiness
    from scheduler_extender.kube.client import KubeClient

    assert isinstance(kube, KubeClient)
    release = threading.Event()

    def hold_node_list(method: str, path: str) -> None:
        if path.startswith("/api/v1/nodes?") and "watch=true" not in path:
            release.wait(10)

    server.before_request = hold_node_list  # the node list answers only when the test says so
    state = LiveState(kube, FAST, registry=CollectorRegistry())
    assert state.readiness() == Readiness(False, "waiting for the first list of nodes and pods")
    state.start()
    try:
        eventually(lambda: "pods" in state.listed, 10, "pods listed")
        assert "nodes" not in state.listed
        assert state.readiness() == Readiness(False, "waiting for the first list of nodes")
        release.set()
        assert state.wait_synced(10)
        assert state.readiness().ready
    finally:
        release.set()
        server.before_request = None
        state.stop()


@contextmanager
def pods_list_held(
    server: FakeApiServer, kube: object, clock: Callable[[], float] = time.monotonic, **opts: Any
) -> Iterator[tuple[LiveState, threading.Event]]:
    """A live state with ``freeze_gc_after_sync`` whose pod list is held until the yielded
    event is set; afterwards the collector is unfrozen and must be enabled again."""
    import dataclasses
    import gc

    from prometheus_client import CollectorRegistry

    from scheduler_extender.kube.client import KubeClient

    assert isinstance(kube, KubeClient)
    assert gc.isenabled()
    gate = threading.Event()
    server.store.hooks.after_list_page = lambda rt, page: gate.wait(10) if rt == PODS else None
    options = dataclasses.replace(FAST, freeze_gc_after_sync=True, **opts)
    state = LiveState(kube, options, registry=CollectorRegistry(), clock=clock).start()
    try:
        eventually(lambda: "nodes" in state.listed, 10, "nodes listed")
        yield state, gate
    finally:
        gate.set()
        state.stop()
        gc.unfreeze()
    assert gc.isenabled()


def test_gc_is_paused_until_the_first_sync_then_the_cache_is_frozen(
    server: FakeApiServer, kube: object
) -> None:
    import gc

    frozen_before = gc.get_freeze_count()
    with pods_list_held(server, kube) as (state, gate):
        assert not gc.isenabled()  # still syncing pods: no automatic collections
        gate.set()
        assert state.wait_synced(10)
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before


def test_gc_comes_back_when_the_first_sync_never_comes(server: FakeApiServer, kube: object) -> None:
    """A pod list that never completes (an RBAC 403 loop looks the same to the cache) must not
    leave the process without a cyclic collector: after ``gc_pause_max_seconds`` it is back,
    and the cache is still frozen once the sync finally comes."""
    import gc

    frozen_before = gc.get_freeze_count()
    now = [1000.0]
    with pods_list_held(server, kube, lambda: now[0], gc_pause_max_seconds=60.0) as (state, gate):
        assert not gc.isenabled()
        now[0] += 61.0  # the applier checks at least once a second
        eventually(gc.isenabled, 10, "the collector back on without a sync")
        gate.set()
        assert state.wait_synced(10)
        assert gc.get_freeze_count() > frozen_before


def test_readyz_says_why_the_first_list_fails(server: FakeApiServer, tmp_path: object) -> None:
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    from scheduler_extender.kube.client import connect

    assert isinstance(tmp_path, Path)
    server.token = "another-token"  # our kubeconfig's token is now rejected: 401
    kube = connect(kubeconfig=server.write_kubeconfig(tmp_path / "kc"))
    server.token = "fake-token"
    assert kube is not None
    state = LiveState(kube, FAST, registry=CollectorRegistry()).start()
    try:
        reason = eventually(
            lambda: "last error" in state.readiness().reason and state.readiness().reason, 10
        )
        assert reason.startswith("waiting for the first list of nodes and pods (last error: 401")
    finally:
        state.stop()
        kube.close()
