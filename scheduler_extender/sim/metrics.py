"""The reported figures of a run, and their mean and spread over seeds.

Node-hours are billed from the moment the autoscaler asks for a node until it is deleted, and are
split into where the time went: provisioning (requested, not ready), occupied (at least one user
pod), placeholder-only, and empty (no pods: waiting out ``scale-down-unneeded-time``, cool-downs
or the pool minimum).  The lower bound (``workload.lower_bound_node_hours``) is the same for
every policy of a seed.  Occupied node-hours minus the lower bound is what packing can still
win; the other parts are what the autoscaler's timers and provisioning cost whatever the
scheduler does (a scheduler changes them only by emptying nodes sooner or later).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.workload import lower_bound_node_hours


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class RunResult:
    scenario: str
    policy: str
    seed: int
    autoscaler: str
    #: Hours simulated: ``duration``, plus the drain tail when the scenario counts it.
    hours: float
    node_hours: float
    #: The drain tail: hours after arrivals stopped until the last server was gone, and the
    #: node-hours billed in it (both part of ``hours`` and ``node_hours``).
    tail_hours: float
    tail_node_hours: float
    lower_bound: float
    ratio: float
    occupied_node_hours: float
    provisioning_node_hours: float
    placeholder_only_node_hours: float
    empty_node_hours: float
    placeholder_node_hours: float
    peak_nodes: int
    scale_ups: int
    nodes_added: int
    nodes_removed: int
    users: int
    started: int
    failed_spawns: int
    waited_over_60s: int
    wait_p50: float
    wait_p95: float
    wait_p99: float
    wait_max: float
    image_pull_waits: int
    preemptions: int
    user_preemptions: int
    cycles: int
    binds: int
    wall_seconds: float
    waits: tuple[float, ...] = field(default=(), repr=False)
    timeline: tuple[tuple[float, int], ...] = field(default=(), repr=False)

    def summary(self) -> dict[str, Any]:
        """Everything but the raw series (for JSON)."""
        data = asdict(self)
        data.pop("waits")
        data.pop("timeline")
        return data


def result_of(sim: Simulation, wall_seconds: float) -> RunResult:
    scenario = sim.scenario
    end = sim.end
    stats = sim.stats
    lifetimes = [min(n.deleted_at, end) - n.created for n in sim.nodes_log]
    node_hours = sum(lifetimes) / 3600
    arrivals_end = scenario.duration
    tail = sum(
        max(0.0, min(n.deleted_at, end) - max(n.created, arrivals_end)) for n in sim.nodes_log
    )
    bound = lower_bound_node_hours(sim.users, scenario)
    waits = stats.waits
    over = sum(1 for w in waits if w > 60) + stats.failed_spawns
    # A failed spawn waited (at least) the whole start timeout: count it so, or percentiles over
    # started users alone would hide the worst waits.
    censored = waits + [scenario.spawner.start_timeout] * stats.failed_spawns

    def total(attr: str) -> float:
        return float(sum(getattr(n, attr) for n in sim.nodes_log)) / 3600

    return RunResult(
        scenario=scenario.name,
        policy=sim.profile.name,
        seed=sim.seed,
        autoscaler=scenario.autoscaler.mode,
        hours=end / 3600,
        node_hours=node_hours,
        tail_hours=max(0.0, end - arrivals_end) / 3600,
        tail_node_hours=tail / 3600,
        lower_bound=bound,
        ratio=node_hours / bound if bound else math.nan,
        occupied_node_hours=total("occupied_s"),
        provisioning_node_hours=total("provisioning_s"),
        placeholder_only_node_hours=total("placeholder_only_s"),
        empty_node_hours=total("empty_s"),
        placeholder_node_hours=stats.placeholder_node_seconds / 3600,
        peak_nodes=stats.peak_nodes,
        scale_ups=stats.scale_ups,
        nodes_added=stats.nodes_added,
        nodes_removed=stats.nodes_removed,
        users=stats.users,
        started=len(waits),
        failed_spawns=stats.failed_spawns,
        waited_over_60s=over,
        wait_p50=percentile(censored, 50),
        wait_p95=percentile(censored, 95),
        wait_p99=percentile(censored, 99),
        wait_max=max(censored, default=0.0),
        image_pull_waits=stats.pull_waits,
        preemptions=stats.preemptions,
        user_preemptions=stats.user_victims,
        cycles=stats.cycles,
        binds=stats.binds,
        wall_seconds=wall_seconds,
        waits=tuple(waits),
        timeline=tuple(stats.timeline),
    )


NUMERIC = tuple(
    f.name
    for f in fields(RunResult)
    if f.name not in ("scenario", "policy", "seed", "autoscaler", "waits", "timeline")
)


@dataclass(frozen=True, slots=True)
class Spread:
    mean: float
    sd: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        mean = statistics.fmean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(mean, sd, min(values), max(values))


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """One policy over all seeds of a scenario."""

    scenario: str
    policy: str
    seeds: tuple[int, ...]
    figures: dict[str, Spread]

    def mean(self, name: str) -> float:
        return self.figures[name].mean

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seeds": list(self.seeds),
            "figures": {k: asdict(v) for k, v in self.figures.items()},
        }


def summarize(results: Sequence[RunResult]) -> list[PolicySummary]:
    """Group by policy (in first-seen order) and take the mean and spread of every figure."""
    by_policy: dict[str, list[RunResult]] = {}
    for r in results:
        by_policy.setdefault(r.policy, []).append(r)
    out = []
    for policy, runs in by_policy.items():
        figures = {name: Spread.of([float(getattr(r, name)) for r in runs]) for name in NUMERIC}
        out.append(PolicySummary(runs[0].scenario, policy, tuple(r.seed for r in runs), figures))
    return out
