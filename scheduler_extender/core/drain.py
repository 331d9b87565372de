"""Drain-aware scoring: put a new user where it adds the least expected node time.

Packing by MostAllocated decides by load alone.  After the daily peak that leaves many nodes each
holding a few long sessions, and none of them empties (the *drain tail*).  Clairvoyant placement
(the simulator's ``oracle``) shows the room: put short sessions where long ones keep the node up
anyway.  Nobody knows when a session will end, but its age says a lot (``core.lifetime``): this
term subtracts from a node's raw score ``drain_weight * cost``, where ``cost`` in 0..1 is the
expected share of the new session's life that it would add to the node's busy time given the age
of the node's oldest user session (1 for a node without users).  It is the non-invasive scoring
idea of Google's LAVA/NILAS work (Ling et al., MLSys 2025, arXiv:2412.09840): re-predicted host
exit times added to an existing scorer, here kube-scheduler's extender priority.

Why static packing stays exactly MostAllocated: when every session has the same age, every
occupied node has the same cost and an empty node the highest; MostAllocated also ranks any
occupied node above an empty one, so the order among candidates is unchanged (the property
tests hold this).

The clock is an argument (``Drain.now``, Unix seconds); the same snapshot, clock and model give
the same scores.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass

from scheduler_extender.core.lifetime import (
    MIDPOINTS,
    LifetimeModel,
    LifetimePrior,
    added_cost,
)
from scheduler_extender.core.policy import PolicyConfig
from scheduler_extender.core.types import NodeInfo

#: The cost of a node without user sessions: the new session alone keeps it up.
EMPTY_COST = 1.0


@dataclass(frozen=True, slots=True)
class Drain:
    """What the drain term needs besides the snapshot: the clock and the lifetime estimate."""

    now: float
    model: LifetimeModel
    #: The simulator's reference policies only: when each user pod will actually leave (pod
    #: uid -> Unix seconds).  No real extender knows this; ``survival-exact`` feeds it to the
    #: same scorer to measure how much of the drain term's shortfall is missing information.
    known_leave: Mapping[str, float] | None = None


def drain_cost(info: NodeInfo, drain: Drain, cohorts: bool = True) -> float:
    """The drain cost of putting one more user session on ``info``'s node, in 0..1: the cost of
    its oldest user session's age, or with ``cohorts`` the smaller of that and its youngest's."""
    oldest = info.terms.oldest_user
    if oldest == math.inf:
        return EMPTY_COST
    cost = drain.model.cost(drain.now - oldest)
    if cohorts:
        cost = min(cost, drain.model.cost(drain.now - info.terms.youngest_user))
    return cost


def all_sessions_cost(info: NodeInfo, drain: Drain) -> float:
    """The drain cost of one more user session on ``info``'s node from *every* user session's
    age (``core.lifetime.added_cost``; ``drain_all_sessions``), in 0..1."""
    now = drain.now
    model = drain.model
    known = drain.known_leave
    counts: dict[int, int] = {}
    steps: dict[int, int] = {}
    for pod in info.pods.values():
        if pod.placeholder:
            continue
        leave = known.get(pod.uid) if known is not None else None
        if leave is not None:
            k = bisect_left(MIDPOINTS, leave - now)
            steps[k] = steps.get(k, 0) + 1
        else:
            c = model.age_class(now - pod.created)
            counts[c] = counts.get(c, 0) + 1
    rows = [(model.ended_log[c], n) for c, n in counts.items()]
    rows.extend((_ended_by(k), n) for k, n in steps.items())
    return added_cost(rows, model.weights)


@functools.cache
def _ended_by(k: int) -> tuple[float, ...]:
    """``log P(R <= t)`` at each ``MIDPOINTS`` point for a session known to end between
    point ``k - 1`` and point ``k``: impossible before, certain from ``k`` on."""
    return tuple(-math.inf if i < k else 0.0 for i in range(len(MIDPOINTS)))


def prior_of(config: PolicyConfig) -> LifetimePrior:
    """The lifetime prior the policy's settings describe."""
    return LifetimePrior(
        median=config.session_median_seconds,
        sigma=config.session_sigma,
        timeout=config.culler_timeout_seconds,
        every=config.culler_every_seconds,
        max_age=config.culler_max_age_seconds,
        weight=config.lifetime_prior_weight,
    )
