"""Leader election on a coordination.k8s.io/v1 Lease through the real client and the fake API
server: the record's fields, expiry on the observer's clock, optimistic concurrency, release."""

from __future__ import annotations

import re

import pytest

from scheduler_extender.kube.client import KubeClient
from scheduler_extender.placeholders.leader import LeaderElector, Record
from tests.fakeapi import LEASES, FakeApiServer
from tests.placeholders.conftest import NS

#: What the API server accepts for a MicroTime: six fractional digits (the client writes the
#: offset as +00:00).
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|\+00:00)$")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StaleReads:
    """A client whose Lease read returns an old copy (the read happened before a rival's
    write); everything else goes to the real client."""

    def __init__(self, kube: KubeClient, lease: dict) -> None:
        self.kube = kube
        self.lease = lease

    def get_lease(self, namespace: str, name: str, *, timeout: float) -> dict:
        return self.lease

    def __getattr__(self, name: str) -> object:
        return getattr(self.kube, name)


def elector(kube: KubeClient, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(
        kube, NS, "lease", identity, lease_duration=15, renew_deadline=10, retry_period=2,
        monotonic=clock,
    )  # fmt: skip


def lease(server: FakeApiServer) -> dict:
    return server.store.get(LEASES, NS, "lease")


def test_first_replica_creates_the_lease(server: FakeApiServer, kube: KubeClient) -> None:
    clock = Clock()
    a = elector(kube, "a", clock)
    assert a.try_acquire_or_renew()
    spec = lease(server)["spec"]
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["acquireTime"]) and MICRO_TIME.match(spec["renewTime"])
    rv = lease(server)["metadata"]["resourceVersion"]
    assert a.try_acquire_or_renew(), "the holder renews"
    assert lease(server)["metadata"]["resourceVersion"] != rv
    assert lease(server)["spec"]["acquireTime"] == spec["acquireTime"], "renewing keeps it"


def test_others_wait_a_full_lease_on_their_own_clock(
    server: FakeApiServer, kube: KubeClient
) -> None:
    clock_a, clock_b = Clock(), Clock()
    a, b = elector(kube, "a", clock_a), elector(kube, "b", clock_b)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew(), "held and fresh"
    clock_b.now += 14.9
    assert not b.try_acquire_or_renew(), "not yet expired for b"
    clock_b.now += 0.2
    assert b.try_acquire_or_renew(), "expired: b takes over"
    spec = lease(server)["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    # a sees the change and is not the leader any more
    assert not a.try_acquire_or_renew()
    assert a.observed is not None and a.observed.holder == "b"


def test_a_renewal_seen_resets_the_expiry(server: FakeApiServer, kube: KubeClient) -> None:
    clock_a, clock_b = Clock(), Clock()
    a, b = elector(kube, "a", clock_a), elector(kube, "b", clock_b)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock_b.now += 10
    assert a.try_acquire_or_renew()  # renewed: the record changed
    assert not b.try_acquire_or_renew()  # b sees the change now
    clock_b.now += 10
    assert not b.try_acquire_or_renew(), "only 10 s since b saw the renewal"


def test_a_concurrent_takeover_loses_with_409(server: FakeApiServer, kube: KubeClient) -> None:
    clock = Clock()
    a = elector(kube, "a", clock)
    assert a.try_acquire_or_renew()
    clock_b, clock_c = Clock(), Clock()
    b, c = elector(kube, "b", clock_b), elector(kube, "c", clock_c)
    assert not b.try_acquire_or_renew() and not c.try_acquire_or_renew()
    clock_b.now += 16
    clock_c.now += 16
    # Both read the same expired record; b writes first; c's PUT carries the resourceVersion
    # it read and gets 409 Conflict.
    snapshot = kube.get_lease(NS, "lease", timeout=3)
    assert b.try_acquire_or_renew()
    c.kube = StaleReads(kube, snapshot)  # type: ignore[assignment]
    assert not c.try_acquire_or_renew()
    assert lease(server)["spec"]["holderIdentity"] == "b"


def test_release_lets_the_next_replica_in_at_once(server: FakeApiServer, kube: KubeClient):
    clock_a, clock_b = Clock(), Clock()
    a, b = elector(kube, "a", clock_a), elector(kube, "b", clock_b)
    assert a.try_acquire_or_renew()
    a._set(True, clock_a.now)
    assert a.release()
    assert "holderIdentity" not in lease(server)["spec"]
    assert b.try_acquire_or_renew(), "an empty holder is free without waiting"
    assert lease(server)["spec"]["leaseTransitions"] == 1


def test_a_stalled_leader_stops_acting_at_the_renew_deadline(kube: KubeClient) -> None:
    clock = Clock()
    a = elector(kube, "a", clock)
    assert a.try_acquire_or_renew()
    a._set(True, clock.now)
    assert a.is_leader()
    clock.now += 9.9
    assert a.is_leader()
    clock.now += 0.2
    assert not a.is_leader(), "past renewDeadline without a renewal"


@pytest.mark.parametrize(
    "at", [1e9, 1e9 + 0.5, 1_767_634_200.000001], ids=["whole", "half", "micro"]
)
def test_micro_time_always_has_six_digits(server: FakeApiServer, kube: KubeClient, at: float):
    clock = Clock()
    a = elector(kube, "a", clock)
    a.wall = lambda: at
    assert a.try_acquire_or_renew()
    assert MICRO_TIME.match(lease(server)["spec"]["renewTime"])


@pytest.mark.parametrize(
    ("spec", "record"),
    [
        pytest.param({}, Record("", 0, "", "", 0), id="empty"),
        pytest.param(
            {"holderIdentity": "x", "leaseDurationSeconds": 15, "leaseTransitions": 3,
             "acquireTime": "t1", "renewTime": "t2"},
            Record("x", 15, "t1", "t2", 3), id="full",
        ),
    ],
)  # fmt: skip
def test_record_round_trip(spec: dict, record: Record) -> None:
    assert Record.of({"spec": spec}) == record
    assert Record.of({"spec": record.spec()}) == record


@pytest.mark.parametrize(
    ("holder_duration", "waited", "taken"),
    [
        pytest.param(60, 15.1, False, id="holder-60s-not-expired-after-our-15s"),
        pytest.param(60, 60.1, True, id="holder-60s-expired-after-60s"),
        pytest.param(5, 5.1, True, id="holder-5s-expired-after-5s"),
    ],
)
def test_expiry_uses_the_holders_lease_duration(
    server: FakeApiServer, kube: KubeClient, holder_duration: float, waited: float, taken: bool
) -> None:
    """As client-go: observed time + the record's leaseDurationSeconds, not our own."""
    clock_a, clock_b = Clock(), Clock()
    a = LeaderElector(
        kube, NS, "lease", "a", lease_duration=holder_duration, renew_deadline=4,
        retry_period=1, monotonic=clock_a,
    )  # fmt: skip
    b = elector(kube, "b", clock_b)  # our own lease duration: 15 s
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock_b.now += waited
    assert b.try_acquire_or_renew() is taken
