"""Running scenarios: one (scenario, policy, seed) at a time, or a whole comparison.

Every policy of a comparison runs on the same scenario, the same seeds and therefore the same
users; only the scheduler profile differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.metrics import RunResult, result_of
from scheduler_extender.sim.scenario import Scenario
from scheduler_extender.sim.scheduler import Profile
from scheduler_extender.sim.workload import UserSpec, generate_users


def run_one(
    scenario: Scenario,
    profile: Profile,
    seed: int,
    *,
    users: Sequence[UserSpec] | None = None,
    progress: Callable[[float], None] | None = None,
) -> RunResult:
    start = time.perf_counter()
    sim = Simulation(scenario, profile, seed, users=users).run(progress)
    return result_of(sim, time.perf_counter() - start)


def run_comparison(
    scenario: Scenario,
    profiles: Sequence[Profile],
    seeds: Sequence[int],
    *,
    progress: Callable[[str, int, float], None] | None = None,
) -> list[RunResult]:
    """Every profile on every seed; ``progress(policy, seed, simulated_seconds)``."""
    results = []
    for seed in seeds:
        users = generate_users(scenario, seed)
        for profile in profiles:

            def tick(t: float, _p: str = profile.name, _s: int = seed) -> None:
                if progress is not None:
                    progress(_p, _s, t)

            results.append(run_one(scenario, profile, seed, users=users, progress=tick))
    return results
