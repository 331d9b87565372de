"""How many placeholder pods to keep: a pluggable, pure decision.

The simulator asks a ``PlaceholderPlanner`` for the desired count per pool at the start and then
every ``PLAN_INTERVAL`` seconds, and reconciles (creates missing placeholders, deletes surplus
ones, pending ones first).  ``static`` is z2jh's ``userPlaceholder.replicas``; an adaptive planner
(arrival rate x node-ready time) plugs in as another function of the same observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: Seconds between two planner calls.
PLAN_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class PlaceholderObservation:
    """What a planner may look at: one pool's state at ``time``."""

    time: float
    pool: str
    nodes_ready: int
    nodes_provisioning: int
    users_running: int
    users_pending: int
    placeholders_bound: int
    placeholders_pending: int
    #: User arrivals per minute over the last ``window`` seconds.
    arrivals_per_minute: float
    window: float
    #: How many user pods of the pool's first profile fit on one empty node.
    users_per_node: int


PlaceholderPlanner = Callable[[PlaceholderObservation], Mapping[str, int]]


def static_planner(count: int) -> PlaceholderPlanner:
    """Always ``count`` placeholders in the observed pool."""

    def plan(observation: PlaceholderObservation) -> Mapping[str, int]:
        return {observation.pool: count}

    return plan
