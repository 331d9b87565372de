"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does it.

Two replicas run so a node failure does not stop the controller; only the Lease holder acts, so
they never fight over pods.  The protocol (ref: kubernetes/client-go
tools/leaderelection/leaderelection.go, ``tryAcquireOrRenew``):

- read the Lease; if absent, create it holding it (``holderIdentity`` = this replica,
  ``acquireTime`` = ``renewTime`` = now, ``leaseTransitions`` 0);
- if another replica holds it, take it over only after a full ``leaseDurationSeconds`` without
  seeing the record change, measured on *this* process's monotonic clock from when the change
  was seen, never from the timestamps in the object (tolerates clock skew between replicas);
- otherwise write it (renew, or take over with ``leaseTransitions`` + 1) with a PUT carrying the
  resourceVersion that was read: if anyone wrote in between, the API server answers 409
  Conflict and this round is lost (optimistic concurrency, no lock);
- a leader that has not renewed for ``renewDeadlineSeconds`` stops acting at once, before the
  lease it holds can expire (lease duration > renew deadline) and someone else take over;
- on shutdown the leader releases the Lease (empty holder), so the other replica need not wait
  out the lease.

Leadership gives no fencing: a leader that stalls longer than the lease may act once more after
it was taken over.  The controller therefore also tolerates a racing writer (deletes carry UID
preconditions, creations converge on the next reconcile).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scheduler_extender.kube.client import ApiError, KubeClient, Obj, resource_version

log = logging.getLogger(__name__)

#: client-go's JitterFactor for the retry period.
JITTER = 1.2


def micro_time(at: float) -> str:
    """A ``metav1.MicroTime`` (RFC 3339 with six fractional digits, UTC).

    The ``kubernetes`` client (v34+) validates a dict body into its pydantic models and writes
    datetimes back with ``isoformat()``, which drops the fraction when it is zero; the API
    server parses MicroTime with a fixed six-digit layout and would refuse that.  A whole second
    is therefore nudged by one microsecond.
    """
    stamp = datetime.fromtimestamp(at, UTC)
    if not stamp.microsecond:
        stamp = stamp.replace(microsecond=1)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Record:
    """The part of a Lease spec that changes hands."""

    holder: str
    duration: int
    acquire_time: str
    renew_time: str
    transitions: int

    @classmethod
    def of(cls, lease: Obj) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            str(spec.get("holderIdentity") or ""),
            int(spec.get("leaseDurationSeconds") or 0),
            str(spec.get("acquireTime") or ""),
            str(spec.get("renewTime") or ""),
            int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> Obj:
        out: Obj = {
            "leaseDurationSeconds": self.duration,
            "leaseTransitions": self.transitions,
        }
        if self.holder:
            out["holderIdentity"] = self.holder
        if self.acquire_time:
            out["acquireTime"] = self.acquire_time
        if self.renew_time:
            out["renewTime"] = self.renew_time
        return out


class LeaderElector:
    """Acquires and renews one Lease in a thread; ``is_leader()`` answers from any thread."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        request_timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.request_timeout = request_timeout
        self.monotonic = monotonic
        self.wall = wall
        self.rng = rng or random.Random()
        self.on_change = on_change
        self.observed: Record | None = None
        self.observed_at = 0.0
        self._renewed_at: float | None = None
        self._leading = False
        self.transitions_seen = 0
        self._lock = threading.Lock()

    # --- one round ---

    def _body(self, record: Record, resource_version: str = "") -> Obj:
        meta: Obj = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": record.spec(),
        }

    def _observe(self, record: Record) -> None:
        if record != self.observed:
            self.observed = record
            self.observed_at = self.monotonic()

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards."""
        now = micro_time(self.wall())
        duration = max(1, round(self.lease_duration))
        try:
            lease = self.kube.get_lease(self.namespace, self.name, timeout=self.request_timeout)
        except ApiError as exc:
            if exc.code != 404:
                log.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, exc)
                return False
            mine = Record(self.identity, duration, now, now, 0)
            try:
                self.kube.create_lease(
                    self.namespace, self._body(mine), timeout=self.request_timeout
                )
            except ApiError as exc2:
                log.info("lost the race to create Lease %s: %s", self.name, exc2)
                return False
            self._observe(mine)
            return True
        old = Record.of(lease)
        self._observe(old)
        mine_now = old.holder == self.identity
        # The holder's own leaseDurationSeconds, as client-go does (observedTime +
        # LeaseDurationSeconds of the record): a holder configured with a longer lease than ours
        # must not be taken over early.
        expired = self.monotonic() >= self.observed_at + (old.duration or self.lease_duration)
        if old.holder and not mine_now and not expired:
            return False  # held by someone else and not expired
        if mine_now:
            new = Record(self.identity, duration, old.acquire_time or now, now, old.transitions)
        else:
            new = Record(self.identity, duration, now, now, old.transitions + 1)
        rv = resource_version(lease)
        try:
            self.kube.replace_lease(
                self.namespace, self.name, self._body(new, rv), timeout=self.request_timeout
            )
        except ApiError as exc:
            if exc.code == 409:
                log.info("Lease %s changed while writing it (409 Conflict)", self.name)
            else:
                log.warning("cannot write Lease %s: %s", self.name, exc)
            return False
        if not mine_now:
            self.transitions_seen += 1
        self._observe(new)
        return True

    # --- state ---

    def is_leader(self) -> bool:
        """Leading, and renewed within the renew deadline (a stalled renewer stops acting)."""
        with self._lock:
            renewed = self._renewed_at
            return (
                self._leading
                and renewed is not None
                and self.monotonic() - renewed < self.renew_deadline
            )

    def _set(self, leading: bool, renewed: float | None) -> None:
        with self._lock:
            changed = leading != self._leading
            self._leading = leading
            if renewed is not None:
                self._renewed_at = renewed
        if changed:
            log.info(
                "%s leadership of Lease %s/%s as %s",
                "acquired" if leading else "lost",
                self.namespace,
                self.name,
                self.identity,
            )
            self.on_change(leading)

    # --- the loop ---

    def run(self, stop: threading.Event) -> None:
        """Try every retry period (jittered while waiting to acquire) until ``stop``."""
        while not stop.is_set():
            started = self.monotonic()
            try:
                ok = self.try_acquire_or_renew()
            except Exception:  # a bug or a broken connection must not end the thread
                log.exception("leader election round failed")
                ok = False
            if ok:
                self._set(True, started)
            elif self._leading and self.monotonic() - (self._renewed_at or 0) >= (
                self.renew_deadline
            ):
                self._set(False, None)
            elif self._leading and self.observed and self.observed.holder != self.identity:
                self._set(False, None)  # someone else holds it now
            wait = self.retry_period
            if not self._leading:
                wait *= 1 + self.rng.random() * (JITTER - 1)
            stop.wait(wait)

    def release(self) -> bool:
        """Give the Lease up if held (empty holder), so another replica takes over at once."""
        if not self._leading:
            return True
        self._set(False, None)
        try:
            lease = self.kube.get_lease(self.namespace, self.name, timeout=self.request_timeout)
            old = Record.of(lease)
            if old.holder != self.identity:
                return True
            now = micro_time(self.wall())
            rv = resource_version(lease)
            gone = Record("", 1, now, now, old.transitions)
            self.kube.replace_lease(
                self.namespace, self.name, self._body(gone, rv), timeout=self.request_timeout
            )
        except ApiError as exc:
            log.warning("cannot release Lease %s: %s", self.name, exc)
            return False
        return True


def describe(lease: dict[str, Any]) -> str:
    record = Record.of(lease)
    return f"held by {record.holder or 'nobody'} (transitions {record.transitions})"
