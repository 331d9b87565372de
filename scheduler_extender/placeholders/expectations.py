"""Expectations: what the controller wrote that its watch has not shown yet.

Writes race with the watch: a pod just created is not in the informer yet, a pod just deleted
still is.  As in kube-controller-manager's ReplicaSet controller, created pods count as existing
and deleted ones as gone until the watch has caught up with them, so a burst of events never
creates duplicates.  A create expectation is met by *observation*: the watch shows the pod, or
the informer's resourceVersion reaches the one the create returned (it has then seen every
change up to it, so a pod it does not show was deleted again).  Time is only the last resort,
for resourceVersions that are not integers.  Thread-safe: watch threads and the reconcile loop
both call it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from scheduler_extender.kube.client import Obj


@dataclass(frozen=True, slots=True)
class Expectation:
    """A pod we created that the informer has not shown yet."""

    pool: str
    obj: Obj
    #: The create's resourceVersion as an integer (None when it is not one).
    resource_version: int | None
    deadline: float


def rv_int(value: object) -> int | None:
    """A resourceVersion as an integer, or None.  The API treats them as opaque strings, but
    every etcd-backed one is etcd's revision, an integer that only grows, and kube-apiserver's
    own watch cache compares them as such (ref: staging/src/k8s.io/apiserver/pkg/storage/
    cacher); when one is not an integer the expectation falls back to its timeout."""
    try:
        return int(str(value))
    except ValueError:
        return None


class Expectations:
    """Pods created and deleted by us, until the placeholder watch shows the outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: uid -> a pod created but not yet seen by the watch.
        self._create: dict[str, Expectation] = {}
        #: uid -> deadline: deleted by us, not yet gone from the watch.
        self._delete: dict[str, float] = {}

    def created(self, uid: str, expectation: Expectation) -> None:
        with self._lock:
            self._create[uid] = expectation

    def deleting(self, uid: str, deadline: float) -> None:
        with self._lock:
            self._delete[uid] = deadline

    def delete_failed(self, uid: str) -> None:
        with self._lock:
            self._delete.pop(uid, None)

    def observed(self, uid: str, *, deleted: bool) -> bool:
        """The watch showed ``uid`` (``deleted``: its DELETED event).  Returns whether we are
        the ones deleting it (so its removal is not someone else's preemption)."""
        with self._lock:
            self._create.pop(uid, None)
            ours = uid in self._delete
            if deleted:
                self._delete.pop(uid, None)
        return ours

    def settle(self, seen: set[str], view_rv: int | None, now: float) -> None:
        """Drop what the view (pod UIDs ``seen``, listed at ``view_rv``) has caught up with,
        and what timed out by ``now``."""
        with self._lock:
            for uid, deadline in list(self._delete.items()):
                if deadline < now or uid not in seen:
                    del self._delete[uid]
            for uid, expect in list(self._create.items()):
                caught_up = (
                    view_rv is not None
                    and expect.resource_version is not None
                    and view_rv >= expect.resource_version
                )
                if uid in seen or caught_up or expect.deadline < now:
                    del self._create[uid]

    def deleting_uids(self) -> set[str]:
        with self._lock:
            return set(self._delete)

    def pending_creates(self, pool: str | None = None) -> list[Obj]:
        """Pods created (of ``pool``, or of every pool) that the watch has not shown yet."""
        with self._lock:
            return [e.obj for e in self._create.values() if pool is None or e.pool == pool]
