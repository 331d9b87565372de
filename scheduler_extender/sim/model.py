"""The simulation's mutable records: events, pods and nodes as the engine tracks them.

Core values (``Pod``, ``Node``, ``NodeInfo``) stay immutable; these records hold what only the
simulation needs around them (lifecycle state, queue bookkeeping, node-hour accounting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

from scheduler_extender.core.types import Node, Pod
from scheduler_extender.sim.workload import UserSpec


class Kind(IntEnum):
    """Event kinds; at equal times lower values run first (a pod that starts at its deadline
    has started; a node that is ready is visible before the pods that wait for it retry)."""

    NODE_READY = 0
    PULLED = 1
    RUNNING = 2
    TIMEOUT = 3
    DEPART = 4
    ARRIVE = 5
    RECREATE = 6
    REQUEUE = 7
    PLAN = 8
    AUTOSCALE = 9
    CYCLE = 10
    SAMPLE = 11
    UNTAINT = 12


class PodState(IntEnum):
    PENDING = 0
    BOUND = 1
    RUNNING = 2
    GONE = 3


@dataclass(slots=True, eq=False)
class SimPod:
    pod: Pod
    user: UserSpec | None
    state: PodState = PodState.PENDING
    node: str = ""
    nominated: str = ""
    attempts: int = 0
    unschedulable: bool = False
    eligible_at: float = 0.0
    queued: bool = False
    bound_at: float = 0.0
    waited_on_pull: bool = False

    @property
    def uid(self) -> str:
        return self.pod.uid

    @property
    def placeholder(self) -> bool:
        return self.pod.placeholder


@dataclass(slots=True, eq=False)
class SimNode:
    """One node's life, for the autoscaler and the node-hour accounting."""

    name: str
    node: Node
    created: float
    ready_at: float = math.inf
    deleted_at: float = math.inf
    ready: bool = False
    deleting: bool = False
    pulls: dict[str, float] = field(default_factory=dict)
    users: int = 0
    placeholders: int = 0
    unneeded_since: float | None = None
    #: The startup taint's removal is scheduled.
    untaint_due: bool = False
    # accounting: seconds spent in each state, integrated up to ``marked``
    marked: float = 0.0
    provisioning_s: float = 0.0
    occupied_s: float = 0.0
    placeholder_only_s: float = 0.0
    empty_s: float = 0.0

    def mark(self, now: float) -> None:
        span = now - self.marked
        if span <= 0:
            return
        if not self.ready:
            self.provisioning_s += span
        elif self.users:
            self.occupied_s += span
        elif self.placeholders:
            self.placeholder_only_s += span
        else:
            self.empty_s += span
        self.marked = now


@dataclass(slots=True)
class Sample:
    time: float
    nodes: int
    ready: int
    users_running: int
    users_pending: int
    placeholders_bound: int


@dataclass(slots=True)
class Stats:
    """Raw counters of one run (``metrics`` turns them into the reported figures)."""

    waits: list[float] = field(default_factory=list)
    failed_spawns: int = 0
    users: int = 0
    pull_waits: int = 0
    scale_ups: int = 0
    nodes_added: int = 0
    nodes_removed: int = 0
    preemptions: int = 0
    placeholder_victims: int = 0
    user_victims: int = 0
    cycles: int = 0
    binds: int = 0
    placeholder_node_seconds: float = 0.0
    #: Startup taints removed, and their total time from node Ready to removal.
    startup_taints_removed: int = 0
    startup_taint_seconds: float = 0.0
    peak_nodes: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
