"""Pods seen in Prometheus -> user sessions -> the simulator's trace rows.

Pure: no HTTP, no clock, no files.  The importer (``prometheus.py``) feeds one ``Observation``
per pod and time window; this module merges them and decides each session's arrival, end and
requests.  A pod is identified by ``(namespace, pod, uid)``: KubeSpawner gives a user's server the
same name every time (``jupyter-<user>``), so a server stopped and started again is a new pod
under the same name and only its uid (and creation time) tells the two sessions apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: The trace columns this module writes.  The simulator reads the first seven (see
#: ``sim/workload.py``); ``namespace``, ``pod``, ``uid`` and ``created`` are for the reader.
TRACE_COLUMNS = (
    "arrival",
    "end",
    "cpu",
    "memory",
    "image",
    "profile",
    "open",
    "namespace",
    "pod",
    "uid",
    "created",
)

PodKey = tuple[str, str, str]  # (namespace, pod, uid)


@dataclass(slots=True)
class Observation:
    """What one time window said about one pod; every field may be missing."""

    created: float | None = None  # kube_pod_created (unix seconds)
    last_seen: float | None = None  # timestamp of the pod's last kube_pod_created sample
    deleted: float | None = None  # kube_pod_deletion_timestamp (unix seconds)
    cpu: float | None = None  # cores, summed over containers
    memory: float | None = None  # bytes, summed over containers
    image: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    namespace: str
    pod: str
    uid: str
    created: float
    arrival: float  # max(created, since)
    end: float
    open: bool
    cpu: float | None
    memory: float | None
    image: str | None


@dataclass(slots=True)
class Summary:
    sessions: int = 0
    open: int = 0
    started_before: int = 0  # created before --since: arrival clipped to --since
    by_deletion_timestamp: int = 0
    by_last_sample: int = 0
    missing_cpu: int = 0
    missing_memory: int = 0
    recreated_names: int = 0  # pod names that appear with more than one uid
    dropped: list[str] = field(default_factory=list)  # pods without a creation time


def merge(into: Observation, new: Observation) -> None:
    """Fold a later window's observation of the same pod into ``into``."""
    if new.created is not None:
        into.created = new.created if into.created is None else min(into.created, new.created)
    if new.last_seen is not None:
        into.last_seen = (
            new.last_seen if into.last_seen is None else max(into.last_seen, new.last_seen)
        )
    if new.deleted is not None:
        into.deleted = new.deleted if into.deleted is None else min(into.deleted, new.deleted)
    # Requests of a running pod do not change (in-place resize aside): keep the largest seen.
    if new.cpu is not None:
        into.cpu = new.cpu if into.cpu is None else max(into.cpu, new.cpu)
    if new.memory is not None:
        into.memory = new.memory if into.memory is None else max(into.memory, new.memory)
    if new.image:
        into.image = new.image


def assemble(
    pods: Mapping[PodKey, Observation],
    *,
    since: float,
    until: float,
    present_at_end: Iterable[PodKey],
) -> tuple[list[Session], Summary]:
    """Sessions from merged observations, sorted by arrival.

    A session ends at its deletion timestamp when kube-state-metrics exported one (the pod was
    seen terminating), else at its last sample.  A pod still exported at ``until``
    (``present_at_end``) and not terminating is open: it ends at ``until`` and is marked."""
    still_there = set(present_at_end)
    summary = Summary()
    sessions: list[Session] = []
    names: dict[tuple[str, str], int] = {}
    for key in sorted(pods):
        obs = pods[key]
        namespace, pod, uid = key
        if obs.created is None or obs.last_seen is None:
            summary.dropped.append(f"{namespace}/{pod}")
            continue
        names[(namespace, pod)] = names.get((namespace, pod), 0) + 1
        arrival = max(obs.created, since)
        if obs.deleted is not None and obs.deleted <= until:
            end, is_open = obs.deleted, False
            summary.by_deletion_timestamp += 1
        elif key in still_there:
            end, is_open = until, True
        else:
            end, is_open = min(obs.last_seen, until), False
            summary.by_last_sample += 1
        end = max(end, arrival)
        summary.sessions += 1
        summary.open += is_open
        summary.started_before += obs.created < since
        summary.missing_cpu += obs.cpu is None
        summary.missing_memory += obs.memory is None
        sessions.append(
            Session(namespace, pod, uid, obs.created, arrival, end, is_open,
                    obs.cpu, obs.memory, obs.image)
        )  # fmt: skip
    summary.recreated_names = sum(1 for n in names.values() if n > 1)
    sessions.sort(key=lambda s: (s.arrival, s.namespace, s.pod, s.uid))
    return sessions, summary


def iso(t: float) -> str:
    """A unix time as ISO 8601 UTC with a ``Z`` (what the trace reader accepts)."""
    moment = datetime.fromtimestamp(t, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if t % 1 else "seconds")
    return text.replace("+00:00", "Z")


def cpu_quantity(cores: float) -> str:
    return f"{math.ceil(round(cores * 1000, 6))}m"


def memory_quantity(size: float) -> str:
    return str(math.ceil(size))


def trace_row(session: Session) -> dict[str, str]:
    return {
        "arrival": iso(session.arrival),
        "end": iso(session.end),
        "cpu": "" if session.cpu is None else cpu_quantity(session.cpu),
        "memory": "" if session.memory is None else memory_quantity(session.memory),
        "image": session.image or "",
        "profile": "",
        "open": "true" if session.open else "",
        "namespace": session.namespace,
        "pod": session.pod,
        "uid": session.uid,
        "created": iso(session.created),
    }
