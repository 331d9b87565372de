"""Simulator speed: scheduled pods per wall-second on a 100-node cluster, and one simulated week.

Run: ``.venv/bin/python benchmarks/sim_speed.py [--repeat 3]``.  Prints, per policy, the median
over repeats of scheduled pods (binds) per wall-second on a fixed pool of 100 nodes kept about
three-quarters full, then the wall time of one simulated ``mybinder-week`` per policy.  The
machine has 2 cores shared with other work: figures are medians; re-run when they look noisy.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.scenario import load_scenario, scenario_from_data
from scheduler_extender.sim.scheduler import parse_policy

POLICIES = ["default", "z2jh", "extender"]

# 100 fixed nodes of 4 cpu / 16 GiB / 110 pods; users of 50m / 512Mi (32 per node by memory),
# arriving at 60/min with ~40 minute sessions: about 2,400 concurrent users, 75% of the
# memory, so every scheduling cycle filters and scores all 100 nodes.
HUNDRED_NODES = {
    "name": "hundred-nodes",
    "duration": "6h",
    "pool": {"cpu": "4", "memory": "16Gi", "pods": 110, "min_nodes": 100, "max_nodes": 100,
             "initial_nodes": 100},
    "users": {
        "arrivals": {"rate_per_minute": 60},
        "profiles": [
            {"cpu": "50m", "memory": "512Mi", "activity": {"median": "30m", "sigma": 0.5}}
        ],
    },
    "culler": {"timeout": 300, "every": 60},
}  # fmt: skip


def pods_per_second(policy: str, repeat: int) -> tuple[float, int]:
    scenario = scenario_from_data(HUNDRED_NODES, "hundred-nodes")
    rates = []
    binds = 0
    for seed in range(1, repeat + 1):
        start = time.perf_counter()
        sim = Simulation(scenario, parse_policy(policy), seed).run()
        wall = time.perf_counter() - start
        binds = sim.stats.binds
        rates.append(binds / wall)
    return statistics.median(rates), binds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-week", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print("\n100 nodes, ~2,400 concurrent users: scheduled pods per wall-second (median)")
    print("| policy | pods/s | pods per run |")
    print("|---|---|---|")
    for policy in POLICIES:
        rate, binds = pods_per_second(policy, args.repeat)
        print(f"| {policy} | {rate:,.0f} | {binds:,} |", flush=True)
    if args.skip_week:
        return
    print("\nmybinder-week, one seed: wall seconds per simulated week")
    print("| policy | wall s | pods |")
    print("|---|---|---|")
    scenario = load_scenario("mybinder-week")
    for policy in POLICIES:
        start = time.perf_counter()
        sim = Simulation(scenario, parse_policy(policy), 1).run()
        print(f"| {policy} | {time.perf_counter() - start:.1f} | {sim.stats.binds:,} |", flush=True)


if __name__ == "__main__":
    main()
