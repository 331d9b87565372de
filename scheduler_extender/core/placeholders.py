"""How many placeholder pods each pool should hold, and how big they are: a pure plan.

The placeholder controller and the simulator both build a ``PlaceholderObservation`` (times in
seconds since the Unix epoch, recent user pod creations, the pool's nodes with when they were
created, became Ready and had the user images) and call ``plan_placeholders``; the controller
then creates or deletes pods to match, the simulator does the same to its model.  So what the
benchmark measures is the production planner.  Nothing here reads a clock, draws a random number
or knows the Kubernetes JSON shape.

Count modes (per pool):

- ``static``: ``N = static``, as z2jh's ``userPlaceholder.replicas``.
- ``adaptive``: spare room for the users who will arrive while a new node is being made ready.
  ``lead`` = node-ready time (median creation -> Ready over the pool's most recent nodes) + the
  image pull (median Ready -> images present, when learned; else ``image_pull_seconds``) +
  ``boot_seconds``; ``demand`` = arrival rate x ``lead`` x ``safety`` users;
  ``N = ceil(demand / users per placeholder)`` clamped to ``[min, max]``, and the largest such
  estimate over the last ``scale_down_delay`` seconds (it rises at once and falls slowly).
  Calendar windows, when given, act as floors (a known class at 17:00 is not something a rate
  can foresee).
- ``schedule``: the largest ``count`` of the windows active now, else ``min``.
- ``forecast``: ``demand = (expected + unforeseen rate x lead) x safety``, where ``expected``
  is what a learned time-of-week profile (``core.forecast.ArrivalProfile``, in the
  observation) expects over the lead time, looking one lead time ahead (``forecast_demand``),
  and the unforeseen rate is adaptive's rate less what the profile expected over the same
  windows (``unforeseen_rate``): a burst the profile did not foresee is met as adaptive meets
  it, one it foresaw is not counted twice.  The same stabilization, ``min``/``max`` and
  calendar-window floors apply.  Without a profile, or when the buckets ahead have been seen
  fewer than ``forecast_min_weeks`` weeks, it is adaptive, and the plan's reason says why.

Window counts are the operator's explicit intent and are never clamped by ``max``; ``max`` caps
only the estimate.  The arrival rate is the larger of a long-window rate (the hub's level) and a
short-window rate (a burst), the short one only when it has seen ``burst_min_arrivals`` pods, so a
quiet hub's single arrival does not look like a burst.  Both are plain counts over windows: an
estimator of a Poisson rate, not a forecast.

Sizes: ``user`` placeholders request one user's guarantee and hold room for one user; ``node``
placeholders fill a node: the smallest ``allocatable - overhead`` among the pool's ready nodes
(times ``node_fraction``), or ``node_requests`` when given.  One preemption then frees a whole
node's room and the recreated placeholder makes the Cluster Autoscaler add a whole node, and a
new node leaves no room where a user could land before its images are pulled.  ``overhead`` is
what the node's DaemonSet and static pods request: the autoscaler puts those on its template
node too, and a placeholder that fits no template node never triggers a scale-up.  When the
overhead of a node is unknown, ``overhead_guess`` of its allocatable is assumed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from scheduler_extender.core.forecast import (
    ArrivalProfile,
    covered,
    expected_arrivals,
    forecast_demand,
)
from scheduler_extender.core.matching import affinity_matches, first_untolerated
from scheduler_extender.core.types import Node, Pod, Resources

#: Weekday names as windows spell them, Monday first (index = weekday number).
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: 1970-01-01 (Unix time 0) was a Thursday: weekday 3 with Monday = 0.
_EPOCH_WEEKDAY = 3
DAY = 86400.0
#: Seconds between the past instants the scale-down stabilization looks at.
STABILIZATION_STEP = 60.0
MINUTES_PER_DAY = 1440


class SizeMode(StrEnum):
    USER = "user"
    NODE = "node"


class CountMode(StrEnum):
    STATIC = "static"
    ADAPTIVE = "adaptive"
    SCHEDULE = "schedule"
    FORECAST = "forecast"


@dataclass(frozen=True, slots=True)
class Window:
    """``count`` placeholders on ``days`` (0 = Monday) from minute ``start`` to minute ``end``
    of the day, local time.  ``end <= start`` wraps past midnight into the next day (a window
    starting Friday 22:00 and ending 02:00 covers Saturday 00:00-02:00 too)."""

    days: frozenset[int]
    start: int
    end: int
    count: int

    def active(self, weekday: int, minute: int) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        if weekday in self.days and minute >= self.start:
            return True
        return (weekday - 1) % 7 in self.days and minute < self.end


@dataclass(frozen=True, slots=True)
class CountSpec:
    """How a pool's count is decided.  Durations are seconds."""

    mode: CountMode = CountMode.STATIC
    static: int = 0
    min: int = 0
    max: int = 20
    safety: float = 1.5
    windows: tuple[Window, ...] = ()
    #: The long window: the hub's arrival level.
    rate_window: float = 900.0
    #: The short window: a burst, trusted once it holds ``burst_min_arrivals`` creations.
    burst_window: float = 120.0
    burst_min_arrivals: int = 5
    #: The estimate is the largest over this many past seconds (sampled every minute), so the
    #: count falls slowly and rises at once, like the HorizontalPodAutoscaler's scale-down
    #: stabilization.  A placeholder whose preemption made the autoscaler add a node must still
    #: be there when the node is ready, or the node comes up empty and the next users land on it
    #: before its images are pulled.
    scale_down_delay: float = 600.0
    #: Node-ready time to assume until a node of the pool has been seen becoming Ready.
    ready_default: float = 300.0
    #: How many of the pool's most recently created nodes the learned times look at.
    ready_samples: int = 10
    #: Added to the learned node-ready time: cloud VM boot before the kubelet registers the
    #: Node object (its creationTimestamp), which the controller cannot observe.
    boot_seconds: float = 0.0
    #: Image pull time to assume when it is not learned (no pool images configured, or no node
    #: has been seen getting them); 0 with a continuous puller that is fast enough to ignore.
    image_pull_seconds: float = 0.0
    #: ``forecast``: weeks of history each bucket ahead needs before the profile is trusted.
    forecast_min_weeks: int = 1


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """One pool: ``template`` is the placeholder pod as the core sees it (its requests are one
    user's guarantee, plus its node selector, required affinity and tolerations, which decide
    which nodes belong to the pool)."""

    name: str
    template: Pod
    size: SizeMode = SizeMode.USER
    count: CountSpec = field(default_factory=CountSpec)
    #: Node-sized placeholders request this share of what the smallest ready node has left
    #: after its DaemonSet and static pods.
    node_fraction: float = 1.0
    #: The share of allocatable assumed taken by DaemonSet and static pods when unknown.
    overhead_guess: float = 0.1
    #: Explicit requests of a node-sized placeholder (pools that scale from zero have no node to
    #: learn the size from).
    node_requests: Resources | None = None


@dataclass(frozen=True, slots=True)
class NodeSample:
    """One node of a pool as the planner needs it.  ``ready`` is when its Ready condition last
    became True (None while not Ready); ``images_ready`` when it was first seen holding every
    image of the pool (None when unknown).  ``overhead`` is what its DaemonSet and static pods
    request (None when unknown)."""

    name: str
    created: float
    allocatable: Resources
    ready: float | None = None
    images_ready: float | None = None
    schedulable: bool = True
    overhead: Resources | None = None


@dataclass(frozen=True, slots=True)
class PoolObservation:
    """What was observed for one pool: creation times of its user pods (recent ones at least)
    and its nodes."""

    arrivals: tuple[float, ...] = ()
    nodes: tuple[NodeSample, ...] = ()
    #: The learned arrivals by time of week (``forecast`` mode); None when there is none.
    profile: ArrivalProfile | None = None


_NO_POOLS: Mapping[str, PoolObservation] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PlaceholderObservation:
    """Everything a plan depends on.  ``time`` is seconds since the Unix epoch;
    ``utc_offset`` (seconds) turns it into the local time windows are written in."""

    time: float
    pools: Mapping[str, PoolObservation] = field(default_factory=lambda: _NO_POOLS)
    utc_offset: float = 0.0


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """The decision for one pool, with the figures behind it (for logs and metrics).

    ``requests`` is None when a node-sized pool has no size to use (no ready node observed and
    no ``node_requests``): the controller then leaves the pool's pods as they are.
    """

    pool: str
    desired: int
    requests: Resources | None
    users_per_placeholder: int
    arrival_rate: float = 0.0
    ready_seconds: float = 0.0
    pull_seconds: float = 0.0
    demand: float = 0.0
    reason: str = ""
    #: ``forecast``: the arrivals the profile expects over the lead time, looking ahead.
    forecast: float = 0.0


# --- windows from text (shared by the controller's config and the simulator's scenarios) --


def parse_clock(text: str) -> int:
    """Minutes since midnight from ``"HH:MM"`` (00:00 to 24:00); ValueError otherwise."""
    hours, sep, minutes = text.partition(":")
    if (
        not sep
        or len(hours) != 2
        or len(minutes) != 2
        or not (hours + minutes).isascii()
        or not (hours + minutes).isdigit()
    ):
        raise ValueError(f"expected HH:MM, got {text!r}")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > MINUTES_PER_DAY:
        raise ValueError(f"not a time of day: {text!r}")
    return value


def make_window(days: Iterable[str], start: str, end: str, count: int) -> Window:
    """A ``Window`` from its text form (``days: [Mon, Tue]``, ``start: "17:00"``); ValueError
    naming the part that is wrong."""
    numbers: set[int] = set()
    for day in days:
        if day not in WEEKDAYS:
            raise ValueError(f"unknown day {day!r}; use {', '.join(WEEKDAYS)}")
        numbers.add(WEEKDAYS.index(day))
    if not numbers:
        raise ValueError("a window needs at least one day")
    first, last = parse_clock(start), parse_clock(end)
    if first == MINUTES_PER_DAY:
        raise ValueError("start must be before 24:00")
    if first == last:
        raise ValueError("start and end are equal: an empty window")
    if count < 0:
        raise ValueError("count must be >= 0")
    return Window(frozenset(numbers), first, last % MINUTES_PER_DAY or MINUTES_PER_DAY, count)


# --- time ---------------------------------------------------------------------------------


def local_weekday_minute(time: float, utc_offset: float = 0.0) -> tuple[int, int]:
    """(weekday with Monday = 0, minute of the day) of a Unix time shifted by ``utc_offset``."""
    local = time + utc_offset
    day = math.floor(local / DAY)
    minute = int((local - day * DAY) // 60)
    return (day + _EPOCH_WEEKDAY) % 7, min(minute, MINUTES_PER_DAY - 1)


def window_count(windows: Iterable[Window], time: float, utc_offset: float = 0.0) -> int | None:
    """The largest count of the windows active at ``time``, or None when none is."""
    weekday, minute = local_weekday_minute(time, utc_offset)
    counts = [w.count for w in windows if w.active(weekday, minute)]
    return max(counts) if counts else None


# --- estimators ---------------------------------------------------------------------------


def arrival_rate(
    arrivals: Sequence[float],
    now: float,
    *,
    window: float,
    burst_window: float,
    burst_min_arrivals: int,
    latest: bool = True,
) -> float:
    """User pod creations per second at ``now`` from sorted creation times:
    ``max(long-window rate, short-window rate)``, the short one counted only with at least
    ``burst_min_arrivals`` creations in it.  With ``latest`` (``now`` is the present),
    creations stamped after ``now`` (clock skew between the API server and this process)
    count as now; otherwise (a past instant) they are not there yet."""
    end = len(arrivals) if latest else bisect_right(arrivals, now)
    long_n = end - bisect_right(arrivals, now - window, 0, end)
    short_n = end - bisect_right(arrivals, now - burst_window, 0, end)
    rate = long_n / window if window > 0 else 0.0
    if burst_window > 0 and short_n >= max(1, burst_min_arrivals):
        rate = max(rate, short_n / burst_window)
    return rate


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _recent(nodes: Iterable[NodeSample], samples: int) -> list[NodeSample]:
    ordered = sorted(nodes, key=lambda n: (-n.created, n.name))
    return ordered[: max(0, samples)]


def node_ready_seconds(nodes: Iterable[NodeSample], *, samples: int, default: float) -> float:
    """Median creation -> Ready over the ``samples`` most recently created Ready nodes, or
    ``default`` when there are none.  A median, because a node that flapped NotReady -> Ready
    long after it was created carries a late transition time; one such node must not move the
    estimate."""
    spans = [
        n.ready - n.created
        for n in _recent((n for n in nodes if n.ready is not None), samples)
        if n.ready is not None and n.ready >= n.created
    ]
    return _median(spans) if spans else default


def image_pull_seconds(nodes: Iterable[NodeSample], *, samples: int, default: float) -> float:
    """Median Ready -> images present over the most recent nodes where both are known, or
    ``default``."""
    spans = [
        max(0.0, n.images_ready - n.ready)
        for n in _recent(
            (n for n in nodes if n.ready is not None and n.images_ready is not None), samples
        )
        if n.ready is not None and n.images_ready is not None
    ]
    return _median(spans) if spans else default


def unforeseen_rate(
    arrivals: Sequence[float],
    profile: ArrivalProfile,
    now: float,
    spec: CountSpec,
    *,
    latest: bool = True,
) -> float:
    """Arrivals per second beyond what ``profile`` expected, over the long and the short
    window (the short one only with ``burst_min_arrivals`` creations in it): the burst
    reaction of ``forecast`` mode, so a class the profile foresaw is not counted twice, and one
    it did not foresee is met as adaptive meets it."""
    end = len(arrivals) if latest else bisect_right(arrivals, now)
    best = 0.0
    for window, needed in ((spec.rate_window, 0), (spec.burst_window, spec.burst_min_arrivals)):
        if window <= 0:
            continue
        seen = end - bisect_right(arrivals, now - window, 0, end)
        if needed and seen < max(1, needed):
            continue
        best = max(best, (seen - expected_arrivals(profile, now - window, now)) / window)
    return best


# --- sizes --------------------------------------------------------------------------------


def node_belongs(template: Pod, node: Node) -> bool:
    """Whether a node is one of the pool's: the placeholder's node selector and required
    affinity match it and every NoSchedule/NoExecute taint on it is tolerated."""
    return (
        affinity_matches(template, node)
        and first_untolerated(node.taints, template.tolerations) is None
    )


def _is_extended(name: str) -> bool:
    """Extended resources (``nvidia.com/gpu``) are whole devices; ``ephemeral-storage`` and
    ``hugepages-*`` are not, and a node placeholder does not hold them."""
    return "/" in name and not name.startswith(("kubernetes.io/", "requests."))


def node_placeholder_requests(pool: PoolSpec, nodes: Iterable[NodeSample]) -> Resources | None:
    """What one node-sized placeholder requests: ``node_requests`` if given, else, per resource,
    the smallest ``(allocatable - overhead) * node_fraction`` among the pool's ready,
    schedulable nodes, plus every device of the extended resources the users request (a GPU
    placeholder must hold the GPUs).  None when no node can tell the size."""
    if pool.node_requests is not None:
        given = pool.node_requests
        return Resources(given.cpu, given.memory, 1, given.scalar)
    ready = [n for n in nodes if n.ready is not None and n.schedulable]
    if not ready:
        return None
    frac = pool.node_fraction

    def room(n: NodeSample) -> tuple[int, int]:
        alloc = n.allocatable
        if n.overhead is None:
            keep = 1.0 - pool.overhead_guess
            return math.floor(alloc.cpu * keep), math.floor(alloc.memory * keep)
        return alloc.cpu - n.overhead.cpu, alloc.memory - n.overhead.memory

    rooms = [room(n) for n in ready]
    cpu = max(0, math.floor(min(r[0] for r in rooms) * frac))
    memory = max(0, math.floor(min(r[1] for r in rooms) * frac))
    wanted = {k for k, v in pool.template.requests.scalar.items() if v > 0 and _is_extended(k)}
    scalar = {k: min(n.allocatable.scalar.get(k, 0) for n in ready) for k in sorted(wanted)}
    return Resources(cpu, memory, 1, MappingProxyType({k: v for k, v in scalar.items() if v}))


def users_per_placeholder(user: Resources, held: Resources, pods: int | None = None) -> int:
    """How many users' guarantees fit in what one placeholder holds (at least 1).  ``pods`` caps
    it by the node's pod count, less the placeholder's own slot."""
    counts: list[int] = []
    if user.cpu > 0:
        counts.append(held.cpu // user.cpu)
    if user.memory > 0:
        counts.append(held.memory // user.memory)
    for name, amount in user.scalar.items():
        if amount > 0:
            counts.append(held.scalar.get(name, 0) // amount)
    if pods is not None and pods > 0:
        counts.append(pods)
    return max(1, min(counts)) if counts else 1


# --- the plan -----------------------------------------------------------------------------


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def plan_pool(
    pool: PoolSpec, observed: PoolObservation, time: float, utc_offset: float = 0.0
) -> PoolPlan:
    """The plan for one pool (see the module docstring for the rules)."""
    spec = pool.count
    nodes = tuple(observed.nodes)
    if pool.size is SizeMode.NODE:
        requests = node_placeholder_requests(pool, nodes)
        ready_pods = [n.allocatable.pods for n in nodes if n.ready is not None]
        pods = min(ready_pods) - 1 if ready_pods else None
        per = 1
        if requests is not None:
            per = users_per_placeholder(pool.template.requests, requests, pods)
    else:
        requests = pool.template.requests
        per = 1
    windowed = window_count(spec.windows, time, utc_offset)

    if spec.mode is CountMode.STATIC:
        plan = PoolPlan(pool.name, max(0, spec.static), requests, per, reason="static")
    elif spec.mode is CountMode.SCHEDULE:
        desired = max(spec.min, windowed if windowed is not None else 0)
        reason = "window" if windowed is not None else "outside windows: min"
        plan = PoolPlan(pool.name, max(0, desired), requests, per, reason=reason)
    else:
        ready = node_ready_seconds(nodes, samples=spec.ready_samples, default=spec.ready_default)
        pull = image_pull_seconds(
            nodes, samples=spec.ready_samples, default=spec.image_pull_seconds
        )
        lead = ready + pull + spec.boot_seconds
        arrivals = sorted(observed.arrivals)
        profile = observed.profile
        use_profile = spec.mode is CountMode.FORECAST
        degraded = ""
        if use_profile and profile is None:
            use_profile, degraded = False, "forecast: no learned profile, adaptive only"
        elif (
            use_profile
            and profile is not None
            and not covered(
                profile, time - spec.scale_down_delay, time + 2 * lead, spec.forecast_min_weeks
            )
        ):
            use_profile = False
            degraded = "forecast: too little history for this time of week, adaptive only"

        def estimate_at(at: float, latest: bool) -> tuple[float, float, int, float]:
            if use_profile and profile is not None:
                rate = unforeseen_rate(arrivals, profile, at, spec, latest=latest)
                expected = forecast_demand(profile, at, lead)
            else:
                expected = 0.0
                rate = arrival_rate(
                    arrivals,
                    at,
                    window=spec.rate_window,
                    burst_window=spec.burst_window,
                    burst_min_arrivals=spec.burst_min_arrivals,
                    latest=latest,
                )
            demand = (expected + rate * lead) * spec.safety
            # An epsilon keeps float noise (0.1 * 3 * 10 = 3.0000000000000004) from adding a pod.
            count = _clamp(math.ceil(demand / per - 1e-9), spec.min, spec.max)
            return rate, demand, count, expected

        rate, demand, estimate, expected = estimate_at(time, True)
        steps = math.ceil(max(0.0, spec.scale_down_delay) / STABILIZATION_STEP)
        for k in range(1, steps + 1):
            back = min(k * STABILIZATION_STEP, spec.scale_down_delay)
            estimate = max(estimate, estimate_at(time - back, False)[2])
        desired = estimate
        if use_profile:
            reason = "(forecast + unforeseen rate x lead) x safety"
        else:
            reason = degraded or "rate x lead x safety"
        if windowed is not None and windowed > desired:
            desired, reason = windowed, "window floor"
        plan = PoolPlan(
            pool.name, max(0, desired), requests, per, rate, ready, pull, demand, reason, expected
        )
    if requests is None:
        return replace(
            plan, reason="node size unknown: no ready node of the pool and no nodeRequests"
        )
    return plan


def plan_placeholders(
    pools: Sequence[PoolSpec], observation: PlaceholderObservation
) -> dict[str, PoolPlan]:
    """The plan of every pool, by pool name; a pool with no observation plans from nothing
    (no arrivals, no nodes)."""
    empty = PoolObservation()
    return {
        pool.name: plan_pool(
            pool, observation.pools.get(pool.name, empty), observation.time, observation.utc_offset
        )
        for pool in pools
    }


def desired_counts(plans: Mapping[str, PoolPlan]) -> dict[str, int]:
    return {name: plan.desired for name, plan in plans.items()}


# --- reconciling --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Existing:
    """One of the pool's placeholder pods as the controller sees it."""

    name: str
    uid: str
    created: float
    node: str = ""
    spec_hash: str = ""
    terminating: bool = False
    #: Succeeded or Failed (evicted by the kubelet, say): holds nothing, to be cleaned up.
    finished: bool = False


@dataclass(frozen=True, slots=True)
class Actions:
    """What to do for a pool: create ``create`` pods, delete ``delete`` (names)."""

    create: int = 0
    delete: tuple[str, ...] = ()


def reconcile_pool(desired: int, spec_hash: str | None, pods: Sequence[Existing]) -> Actions:
    """Pods to create and delete so the pool holds ``desired`` current placeholders.

    - Terminating pods count for nothing and are left alone (a preempted placeholder is
      replaced at once: its replacement going Pending is what makes the autoscaler add a node).
      Finished pods (Succeeded, Failed) count for nothing and are deleted.
    - Pods built from another spec (``spec_hash`` differs: new requests, image, placement) are
      deleted and replaced.  ``spec_hash`` None means the size is unknown: nothing is created
      and no pod counts as stale.
    - A Pending pod is never deleted for being Pending.  Only a surplus is deleted: Pending ones
      first (they hold nothing), then bound ones on the nodes holding the most of this pool's
      placeholders (most likely to empty and be removed), newest first.
    """
    live = [p for p in pods if not p.terminating and not p.finished]
    finished = sorted(p.name for p in pods if p.finished and not p.terminating)
    if spec_hash is None:
        current, stale = live, []
    else:
        current = [p for p in live if p.spec_hash == spec_hash]
        stale = [p for p in live if p.spec_hash != spec_hash]
    delete = finished + [p.name for p in sorted(stale, key=lambda p: (p.created, p.name))]
    surplus = len(current) - max(0, desired)
    create = 0
    if surplus > 0:
        per_node: dict[str, int] = {}
        for p in current:
            if p.node:
                per_node[p.node] = per_node.get(p.node, 0) + 1

        def order(p: Existing) -> tuple[int, int, float, str]:
            if not p.node:
                return (0, 0, -p.created, p.name)
            return (1, -per_node[p.node], -p.created, p.name)

        delete += [p.name for p in sorted(current, key=order)[:surplus]]
    elif surplus < 0 and spec_hash is not None:
        create = -surplus
    return Actions(create, tuple(delete))
