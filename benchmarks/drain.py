"""Drain-aware scoring (issue 11): node-hours counted to the last session's end, per scenario.

Run: ``nice -n 10 .venv/bin/python benchmarks/drain.py [--seeds 5] [--only NAME ...]``.

Every experiment runs every listed policy on the same scenario and seeds (so on the same users).
Scenarios run past their arrival window until the last user's server is gone (``drain_tail``),
so the node-hours include the drain tail; the table also shows the tail on its own.

Printed and written to ``results/drain/``: ``table.md`` (all experiments), one
``<name>.json`` per experiment (every run's figures), and ``<name>-nodes.png`` (nodes over time,
first seed, the tail to the right of the dotted line).

Columns: node-hours mean ± sd over seeds; ``Δ vs z2jh``: the mean ± sd of the per-seed paired
difference (negative saves; a difference within about one sd of zero is seed noise);
``gap closed``: ``(z2jh - policy) / (z2jh - oracle)`` on the means.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scheduler_extender.sim.metrics import RunResult
from scheduler_extender.sim.report import plot_nodes
from scheduler_extender.sim.runner import run_one
from scheduler_extender.sim.scenario import load_scenario, with_overrides
from scheduler_extender.sim.scheduler import parse_policy
from scheduler_extender.sim.workload import generate_users

RESULTS = Path(__file__).parent / "results" / "drain"
MAIN = ("default", "z2jh", "extender", "extender-drain", "oracle")
BIMODAL = (
    "users.profiles=[{name: short, weight: 0.7, cpu: 50m, memory: 512Mi, "
    "image: 'gcr.io/binderhub/r2d-example:2024.01', activity: {median: 5m, sigma: 0.2, max: 6h}},"
    " {name: long, weight: 0.3, cpu: 50m, memory: 512Mi, "
    "image: 'gcr.io/binderhub/r2d-example:2024.01', activity: {median: 2h, sigma: 0.2, max: 6h}}]"
)


#: Issue 11's real-scheduler test as a scenario: 500 empty 32-CPU/128-GiB nodes, 2,000 pods of
#: 100m/500Mi at once; kube-scheduler v1.36 stock z2jh used 157-177 nodes, 20 at 100 %.
LARGE_BURST = (
    "duration=1h",
    "pool.cpu=32",
    "pool.memory=128Gi",
    "pool.min_nodes=0",
    "pool.max_nodes=600",
    "pool.initial_nodes=500",
    "users.arrivals.peak_per_minute=0",
    "users.bursts=[{at: 10m, count: 2000, over: 2m}]",
    "users.profiles.0.cpu=100m",
    "users.profiles.0.memory=500Mi",
    "users.profiles.0.activity={median: 1h, sigma: 0.5, max: 4h}",
)


@dataclass(frozen=True)
class Experiment:
    name: str
    scenario: str
    policies: tuple[str, ...] = MAIN
    overrides: tuple[str, ...] = ()
    group: str = "main"
    note: str = ""
    #: Seeds 1..N for this experiment whatever ``--seeds`` says (small scenarios need more
    #: seeds to show a difference of a few percent).
    seeds: int | None = None


NO_DEFAULT = ("z2jh", "extender", "extender-drain", "oracle")
#: The same scorer fed more and more knowledge of lifetimes (benchmarks/README.md, "Why ages
#: are not enough"): learned from the watch, the true distribution, the exact departures.
INFORMATION = (
    "z2jh",
    "extender",
    "extender-drain",
    "extender-survival",
    "survival-distribution",
    "survival-exact",
    "oracle-ages",
    "oracle",
)
EXPERIMENTS = (
    Experiment("anchor-day", "anchor-day", note="the 12-hour day with its drain tail"),
    Experiment("classroom-spike", "classroom-spike"),
    Experiment("workshop", "workshop"),
    Experiment("course-day-trace", "course-day", note="one trace: seeds vary only the cluster"),
    Experiment(
        "anchor-day-exponential",
        "anchor-day",
        NO_DEFAULT,
        ("users.profiles.0.activity.distribution=exponential",),
        group="sensitivity",
        note="memoryless session lengths, same median",
    ),
    Experiment(
        "anchor-day-bimodal",
        "anchor-day",
        NO_DEFAULT,
        (BIMODAL,),
        group="sensitivity",
        note="70 % 5-minute and 30 % 2-hour sessions (classroom-like)",
    ),
    Experiment(
        "mybinder-week",
        "mybinder-week",
        NO_DEFAULT,
        note="default left out for time: 1.69 x z2jh in results/mybinder-week",
    ),
    Experiment(
        "mybinder-3days",
        "mybinder-week",
        ("z2jh", "extender-drain", "oracle"),
        ("duration=3d",),
        note="Monday to Wednesday of mybinder-week and their tail (a whole week per seed and "
        "policy did not fit the time on a shared 2-core machine); `extender` equals `z2jh` "
        "on the week (results/mybinder-week)",
    ),
    Experiment(
        "anchor-day-information",
        "anchor-day",
        INFORMATION,
        group="information",
        note="what each estimate knows",
        seeds=20,
    ),
    Experiment(
        "anchor-day-bimodal-information",
        "anchor-day",
        (
            "z2jh",
            "extender",
            "extender-survival",
            "survival-distribution",
            "survival-exact",
            "oracle",
        ),
        (BIMODAL,),
        group="information",
        note="70 % 5-minute and 30 % 2-hour sessions, where a session's age says which kind it is",
        seeds=10,
    ),
    Experiment(
        "mybinder-week-information",
        "mybinder-week",
        ("z2jh", "extender-survival", "survival-distribution", "survival-exact", "oracle"),
        group="information",
        note="what each estimate knows",
    ),
    Experiment(
        "large-burst",
        "large-hub",
        ("z2jh", "z2jh[percentage=100]", "extender"),
        LARGE_BURST,
        group="large",
        note="2,000 users within 2 minutes onto 500 ready 32-CPU nodes (issue 11's real test)",
    ),
    Experiment(
        "large-hub",
        "large-hub",
        ("z2jh", "z2jh[percentage=100]", "extender", "extender-drain"),
        group="large",
        note="kube-scheduler's node sampling modelled; z2jh[percentage=100] isolates its cost",
    ),
)


def fmt(values: Sequence[float], digits: int = 1) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(name: str, note: str, results: list[RunResult]) -> str:
    by_policy: dict[str, list[RunResult]] = {}
    for r in results:
        by_policy.setdefault(r.policy, []).append(r)
    seeds = sorted({r.seed for r in results})
    base = {r.seed: r.node_hours for r in by_policy.get("z2jh", [])}
    oracle = by_policy.get("oracle")
    z2jh_mean = statistics.fmean(base.values()) if base else None
    gap = None
    if oracle and z2jh_mean is not None:
        gap = z2jh_mean - statistics.fmean(r.node_hours for r in oracle)
    lines = [
        f"#### {name} ({len(seeds)} seeds{'; ' + note if note else ''})",
        "",
        "| policy | node-hours | × lower bound | Δ vs z2jh | gap closed | drain tail h "
        "| tail node-h | wait p95 s | failed spawns | peak nodes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for policy, runs in by_policy.items():
        hours = [r.node_hours for r in runs]
        delta = [r.node_hours - base[r.seed] for r in runs if r.seed in base]
        closed = ""
        if gap and z2jh_mean is not None and policy not in ("z2jh", "oracle"):
            closed = f"{100 * (z2jh_mean - statistics.fmean(hours)) / gap:.0f} %"
        lines.append(
            f"| `{policy}` | {fmt(hours)} | {fmt([r.ratio for r in runs], 2)} "
            f"| {fmt(delta) if delta and policy != 'z2jh' else ''} | {closed} "
            f"| {fmt([r.tail_hours for r in runs])} | {fmt([r.tail_node_hours for r in runs])} "
            f"| {fmt([r.wait_p95 for r in runs], 0)} | {fmt([r.failed_spawns for r in runs])} "
            f"| {fmt([r.peak_nodes for r in runs], 0)} |"
        )
    return "\n".join(lines)


def run(experiment: Experiment, seeds: Sequence[int], plots: bool) -> str:
    scenario = with_overrides(load_scenario(experiment.scenario), experiment.overrides)
    scenario = scenario.model_copy(update={"name": experiment.name})
    profiles = [parse_policy(p) for p in experiment.policies]
    results: list[RunResult] = []
    first_users = None
    start = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        users = generate_users(scenario, seed)
        first_users = first_users or users
        for profile in profiles:
            results.append(run_one(scenario, profile, seed, users=users))
            print(f"  {experiment.name} seed {seed} {profile.name}: "
                  f"{results[-1].node_hours:.1f} node-h", file=sys.stderr, flush=True)  # fmt: skip
        # Written after every seed, so a long experiment's finished seeds survive an interrupt.
        payload = {
            "experiment": experiment.name,
            "scenario": experiment.scenario,
            "overrides": list(experiment.overrides),
            "seeds": sorted({r.seed for r in results}),
            "wall_seconds": time.perf_counter() - start,
            "runs": [r.summary() for r in results],
        }
        (RESULTS / f"{experiment.name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    if plots and first_users is not None:
        plot_nodes(RESULTS / f"{experiment.name}-nodes.png", scenario, results, first_users)
    return table(experiment.name, experiment.note, results)


def from_json(experiment: Experiment) -> str | None:
    path = RESULTS / f"{experiment.name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    results = [RunResult(**run) for run in data["runs"]]
    return table(experiment.name, experiment.note, results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N (default 5)")
    parser.add_argument("--only", nargs="*", help="experiment names to run")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--table-only", action="store_true", help="rebuild table.md from the stored JSON"
    )
    args = parser.parse_args(argv)
    seeds = list(range(1, args.seeds + 1))
    sections: dict[str, list[str]] = {}
    for experiment in EXPERIMENTS:
        chosen = not args.only or experiment.name in args.only
        own = list(range(1, experiment.seeds + 1)) if experiment.seeds else seeds
        text = run(experiment, own, not args.no_plots) if chosen and not args.table_only else None
        text = text or from_json(experiment)
        if text is not None:
            sections.setdefault(experiment.group, []).append(text)
            print(text + "\n", flush=True)
    titles = {
        "main": "Node-hours to the last session's end",
        "large": "Large hub: kube-scheduler's node sampling",
        "sensitivity": "Sensitivity: session lengths that are not lognormal",
        "information": "What the estimate knows: learned, true distribution, exact departures",
    }
    out = ["# Drain-aware scoring: simulator results", ""]
    for group, texts in sections.items():
        out += [f"### {titles[group]}", "", *("\n\n".join(texts).split("\n")), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "table.md").write_text("\n".join(out))
    print(f"wrote {RESULTS / 'table.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
