"""Faults: a controller killed mid-reconcile, two replicas racing from a cold start, a leader
that loses the API server.  In every case the pool converges to exactly its count: no
duplicates, no pod deleted by a replica that is not the leader."""

from __future__ import annotations

import threading
from typing import Any

from scheduler_extender.kube.client import ApiError, KubeClient
from tests.fakeapi import LEASES, PODS, FakeApiServer
from tests.placeholders.conftest import (
    NS,
    Factory,
    config,
    count_is,
    crash,
    eventually,
    metric,
    placeholder_pods,
)

PREFIX = "scheduler_extender_placeholders"


class Flaky:
    """A client that behaves like ``kube`` until told otherwise: after ``creates_ok`` pod
    creations it runs ``on_limit`` (e.g. kill the controller); with ``lose_response`` the
    create reaches the API server but the caller sees an error (a response lost on the way);
    ``cut`` makes every call fail as if the network to the API server were gone."""

    def __init__(self, kube: KubeClient, *, creates_ok: int = 10**9) -> None:
        self.kube = kube
        self.creates_ok = creates_ok
        self.creates = 0
        self.lose_response = False
        self.on_limit: Any = None
        self.cut = threading.Event()
        self.writes_after_cut = 0

    def create_pod(self, namespace: str, body: dict, *, timeout: float) -> dict:
        if self.cut.is_set():
            self.writes_after_cut += 1
            raise ApiError(0, "", "connection refused")
        if self.creates >= self.creates_ok:
            if self.on_limit is not None:
                self.on_limit()
            raise ApiError(0, "", "the process died here")
        self.creates += 1
        made = self.kube.create_pod(namespace, body, timeout=timeout)
        if self.lose_response and self.creates == self.creates_ok:
            raise ApiError(0, "", "response lost")
        return made

    def delete_pod(self, *args: Any, **kwargs: Any) -> dict:
        if self.cut.is_set():
            self.writes_after_cut += 1
            raise ApiError(0, "", "connection refused")
        return self.kube.delete_pod(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.kube, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.cut.is_set():
                raise ApiError(0, "", "connection refused")
            return attr(*args, **kwargs)

        return call


def holder(server: FakeApiServer) -> str:
    return str(server.store.get(LEASES, NS, "hub-placeholders")["spec"].get("holderIdentity"))


def static(n: int) -> dict:
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"]["static"] = n
    return {"pools": pools}


def test_killed_mid_reconcile_then_a_new_replica_converges(
    server: FakeApiServer, kube: KubeClient, make_controller: Factory
) -> None:
    flaky = Flaky(kube, creates_ok=2)
    a = make_controller(config(**static(4)), identity="a", client=flaky, start=False)
    flaky.on_limit = a.stop.set  # dies right after its second creation
    a.start()
    eventually(a.stop.is_set, what="a to die")
    crash(a)
    assert len(placeholder_pods(server)) == 2
    assert holder(server) == "a", "a died holding the Lease"
    b = make_controller(config(**static(4)), identity="b")
    eventually(count_is(server, 4), what="b to finish the job after a's lease expired")
    assert holder(server) == "b"
    assert server.store.get(LEASES, NS, "hub-placeholders")["spec"]["leaseTransitions"] == 1
    eventually(lambda: metric(b, f"{PREFIX}_reconciles_total") >= 5)
    assert len(placeholder_pods(server)) == 4, "no duplicates"
    assert metric(b, f"{PREFIX}_created_total", pool="default") == 2


def test_a_lost_create_response_makes_no_duplicate(
    server: FakeApiServer, kube: KubeClient, make_controller: Factory
) -> None:
    flaky = Flaky(kube, creates_ok=2)
    flaky.lose_response = True  # the 2nd create happens, but the controller sees an error
    a = make_controller(config(**static(3)), identity="a", client=flaky, start=False)
    flaky.on_limit = a.stop.set
    a.start()
    eventually(a.stop.is_set)
    crash(a)
    assert len(placeholder_pods(server)) == 2, "the 'failed' create exists"
    make_controller(config(**static(3)), identity="b")
    eventually(count_is(server, 3))
    assert len(placeholder_pods(server)) == 3


def test_two_replicas_racing_from_a_cold_start_never_fight(
    server: FakeApiServer, make_controller: Factory
) -> None:
    a = make_controller(config(**static(5)), identity="a", start=False)
    b = make_controller(config(**static(5)), identity="b", start=False)
    go = [threading.Thread(target=c.start) for c in (a, b)]
    for t in go:
        t.start()
    for t in go:
        t.join()
    eventually(count_is(server, 5))
    leader = holder(server)
    assert leader in ("a", "b")
    follower = b if leader == "a" else a
    eventually(lambda: metric(a if leader == "a" else b, f"{PREFIX}_reconciles_total") >= 5)
    assert len(placeholder_pods(server)) == 5
    created = sum(metric(c, f"{PREFIX}_created_total", pool="default") for c in (a, b))
    deleted = sum(metric(c, f"{PREFIX}_deleted_total", pool="default") for c in (a, b))
    assert (created, deleted) == (5, 0)
    assert metric(follower, f"{PREFIX}_reconciles_total") == 0
    assert metric(follower, f"{PREFIX}_leader") == 0


def test_a_leader_cut_off_stops_and_the_other_takes_over(
    server: FakeApiServer, kube: KubeClient, make_controller: Factory
) -> None:
    flaky = Flaky(kube)
    a = make_controller(config(**static(3)), identity="a", client=flaky)
    eventually(count_is(server, 3))
    assert holder(server) == "a"
    b = make_controller(config(**static(3)), identity="b")
    flaky.cut.set()  # a can no longer reach the API server: no renewals, no writes
    eventually(lambda: not a.elector.is_leader(), timeout=3.0, what="a to stop leading")
    eventually(lambda: holder(server) == "b", timeout=5.0, what="b to take over")
    # b does the work now: a placeholder removed by someone else is replaced by b.
    victim = placeholder_pods(server)[0]
    server.store.delete(PODS, NS, victim["metadata"]["name"], {})
    eventually(count_is(server, 3))
    eventually(lambda: metric(b, f"{PREFIX}_created_total", pool="default") == 1)
    assert flaky.writes_after_cut == 0, "a never tried to write once cut off"
    flaky.cut.clear()  # a comes back: it must not fight b
    eventually(lambda: metric(b, f"{PREFIX}_reconciles_total") >= 5)
    assert holder(server) == "b" and not a.elector.is_leader()
    assert len(placeholder_pods(server)) == 3


def test_shutdown_releases_the_lease_for_a_fast_handover(
    server: FakeApiServer, make_controller: Factory
) -> None:
    a = make_controller(config(**static(2)), identity="a")
    eventually(count_is(server, 2))
    b = make_controller(config(**static(2)), identity="b")
    a.shutdown()
    # Released: no holder, or already b (which may take it within its 0.2 s retry period
    # before this line reads the Lease; it could not before a's 1.5 s lease expired otherwise).
    holder = server.store.get(LEASES, NS, "hub-placeholders")["spec"].get("holderIdentity")
    assert holder in (None, "b")
    eventually(b.elector.is_leader, timeout=1.0, what="b leads well within 1.5 s")
