"""How many placeholder pods to keep in the simulation: the production planner, plugged in.

The simulator builds the same ``PlaceholderObservation`` the controller builds (Unix times of
recent user pod creations, the pool's nodes with their creation, Ready and images-present
times), asks a ``PlaceholderPlanner`` for a ``PoolPlan`` per pool at the start and every
``placeholders.plan_interval`` seconds, and reconciles with the controller's own
``core.placeholders.reconcile_pool``.  The default planner is ``core.placeholders.
plan_placeholders`` on the scenario's pool, so a benchmark of a mode measures what the controller
would do.  Tests may plug in any other function of the observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from scheduler_extender.core.forecast import (
    WEEK,
    ArrivalProfile,
    empty_profile,
    fold_arrivals,
)
from scheduler_extender.core.placeholders import (
    CountMode,
    CountSpec,
    PlaceholderObservation,
    PoolPlan,
    PoolSpec,
    SizeMode,
    make_window,
    plan_placeholders,
)
from scheduler_extender.core.types import Pod, Resources, Toleration
from scheduler_extender.sim.scenario import Scenario
from scheduler_extender.sim.workload import generate_users

PlaceholderPlanner = Callable[[PlaceholderObservation], Mapping[str, PoolPlan]]

__all__ = [
    "PlaceholderObservation",
    "PlaceholderPlanner",
    "PoolPlan",
    "core_planner",
    "history_profile",
    "pool_spec",
    "static_planner",
]


def pool_spec(
    scenario: Scenario, pool: str, tolerations: tuple[Toleration, ...], priority: int
) -> PoolSpec:
    """The scenario's one placeholder pool as the controller's config would describe it: one
    user's guarantee (the first profile's requests), the user tolerations, and the count.
    ``mode: none`` is a static count of 0."""
    ph = scenario.placeholders
    first = scenario.users.profiles[0]
    template = Pod(
        uid="template",
        requests=Resources(first.cpu, first.memory, 1),
        priority=priority,
        placeholder=True,
        tolerations=tolerations,
    )
    mode = CountMode.STATIC if ph.mode == "none" else CountMode(ph.mode)
    count = CountSpec(
        mode=mode,
        static=0 if ph.mode == "none" else ph.count,
        min=ph.min,
        max=ph.max,
        safety=ph.safety,
        windows=tuple(make_window(w.days, w.start, w.end, w.count) for w in ph.windows),
        rate_window=ph.rate_window,
        burst_window=ph.burst_window,
        burst_min_arrivals=ph.burst_min_arrivals,
        scale_down_delay=ph.scale_down_delay,
        ready_default=ph.ready_default,
        boot_seconds=ph.boot_seconds,
        image_pull_seconds=ph.image_pull_seconds,
        forecast_min_weeks=ph.forecast_min_weeks,
    )
    return PoolSpec(pool, template, SizeMode(ph.size), count, node_fraction=ph.node_fraction)


def core_planner(pools: Sequence[PoolSpec]) -> PlaceholderPlanner:
    """The production planner over ``pools``."""

    def plan(observation: PlaceholderObservation) -> Mapping[str, PoolPlan]:
        return plan_placeholders(pools, observation)

    return plan


def static_planner(pool: str, count: int, requests: Resources) -> PlaceholderPlanner:
    """Always ``count`` placeholders of ``requests`` in ``pool`` (a fixed plan for tests)."""
    fixed = {pool: PoolPlan(pool, count, requests, 1, reason="fixed")}

    def plan(observation: PlaceholderObservation) -> Mapping[str, PoolPlan]:
        return fixed

    return plan


def history_profile(scenario: Scenario, seed: int, start: float) -> ArrivalProfile | None:
    """The profile a controller would have learned before the run (Unix time ``start``, a
    Monday 00:00): the scenario's users of ``forecast_history_weeks`` earlier weeks, drawn on
    other seeds (a trace repeats itself), folded oldest first with the controller's own
    ``core.forecast.fold_arrivals``.  Only the simulated span of each week is observed; other
    times of the week stay unseen.  None when the mode is not ``forecast`` or there is no
    history."""
    ph = scenario.placeholders
    if ph.mode != "forecast" or ph.forecast_history_weeks == 0:
        return None
    profile = empty_profile(int(ph.forecast_bucket))
    span = min(scenario.duration, WEEK)
    for k in range(ph.forecast_history_weeks, 0, -1):
        week = start - k * WEEK
        users = generate_users(scenario, seed + 100_003 * k)
        arrivals = sorted(week + u.arrival for u in users if u.arrival < span)
        profile = fold_arrivals(
            profile, arrivals, observed_since=week, until=week + span, alpha=ph.forecast_alpha
        )
    return profile
