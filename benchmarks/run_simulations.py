"""Regenerate benchmarks/results/ from the simulator: every table and plot the docs cite.

Run: ``.venv/bin/python benchmarks/run_simulations.py [--jobs 2] [--only NAME ...]``.

Each experiment runs every listed policy on the same scenario and seeds (so on the same users),
and writes ``results/<name>/table.md``, ``results.json``, ``nodes.png`` and ``waits.png``;
``results/summary.md`` collects the tables.  Nothing here is tuned per policy: the scenario,
autoscaler and seeds are shared, only the scheduler profile changes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from scheduler_extender.sim.cli import run_all
from scheduler_extender.sim.report import markdown, plot_nodes, plot_waits, write_json
from scheduler_extender.sim.scenario import load_scenario, with_overrides
from scheduler_extender.sim.scheduler import parse_policy
from scheduler_extender.sim.workload import generate_users

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    scenario: str
    policies: tuple[str, ...]
    seeds: tuple[int, ...] = (1, 2, 3)
    overrides: tuple[str, ...] = ()


EXPERIMENTS = (
    Experiment(
        "mybinder-week",
        "Headline: node-hours and wait over a mybinder-like week, realistic autoscaler. "
        "`oracle` is a clairvoyant reference (it knows when every user will leave), not a "
        "policy anyone can deploy.",
        "mybinder-week",
        ("default", "z2jh", "extender", "oracle"),
    ),
    Experiment(
        "anchor-day-ideal",
        "Anchor: the 12-hour day with an ideal autoscaler (real kube-scheduler + z2jh: 1.45).",
        "anchor-day",
        ("default", "z2jh", "extender", "oracle"),
        seeds=(1, 2, 3, 4, 5),
    ),
    Experiment(
        "classroom-spike",
        "300 users in 5 minutes: waits with and without placeholders.",
        "classroom-spike",
        ("default", "z2jh", "extender"),
        seeds=(1, 2, 3, 4, 5),
    ),
    Experiment(
        "classroom-spike-placeholders",
        "The same class with 50 static placeholders.",
        "classroom-spike",
        ("default", "z2jh", "extender", "extender[placeholders_as_load=true]"),
        seeds=(1, 2, 3, 4, 5),
        overrides=("placeholders.count=50",),
    ),
    Experiment(
        "workshop",
        "Two groups of 100 at once.",
        "workshop",
        ("default", "z2jh", "extender"),
        seeds=(1, 2, 3, 4, 5),
    ),
    Experiment(
        "bind-assume",
        "Bind-assume vs a stale extender cache: the class of 300 on a pool scaled up for it "
        "(8 nodes kept ready), the extender's watch 2 s behind.",
        "classroom-spike",
        ("z2jh", "extender", "extender-bind"),
        seeds=(1, 2, 3, 4, 5),
        overrides=("scheduler.watch_delay=2", "pool.min_nodes=8", "pool.initial_nodes=8"),
    ),
    Experiment(
        "bind-assume-slow-watch",
        "The same with the watch 10 s behind (an API server under load).",
        "classroom-spike",
        ("z2jh", "extender", "extender-bind"),
        seeds=(1, 2, 3, 4, 5),
        overrides=("scheduler.watch_delay=10", "pool.min_nodes=8", "pool.initial_nodes=8"),
    ),
    Experiment(
        "mybinder-week-placeholders",
        "The week with 20 static placeholders (headroom for scale-ups).",
        "mybinder-week",
        ("z2jh", "extender", "extender[placeholders_as_load=true]"),
        overrides=("placeholders.count=20",),
    ),
    Experiment(
        "course-day-trace",
        "Trace replay: the shipped example trace of a course hub's day (same users every seed).",
        "course-day",
        ("default", "z2jh", "extender"),
    ),
    Experiment(
        "preempt-steering",
        "Does the extender's preempt verb (placeholder-only victims, image present, most "
        "packed) change anything? Three days of the week with 20 placeholders.",
        "mybinder-week",
        ("z2jh", "extender", "extender[preempt=false]"),
        seeds=(1, 2),
        overrides=("duration=72h", "placeholders.count=20"),
    ),
    Experiment(
        "anchor-sensitivity",
        "How much the anchor's unknown session shape moves z2jh's ratio: heavier tails.",
        "anchor-day",
        ("default", "z2jh", "extender", "oracle"),
        seeds=(1, 2, 3, 4, 5),
        overrides=("users.profiles.0.activity.sigma=1.5", "users.profiles.0.activity.median=5m"),
    ),
    Experiment(
        "policy-questions-week",
        "Open policy questions over three days of the mybinder-like week (realistic autoscaler).",
        "mybinder-week",
        (
            "z2jh",
            "extender",
            "extender[weight=5]",
            "extender[prefer_older_nodes=false]",
            "extender[normalization=linear]",
            "extender[image_weight=0]",
        ),
        seeds=(1, 2),
        overrides=("duration=72h",),
    ),
    Experiment(
        "policy-questions-ideal",
        "Open policy questions on the anchor day (ideal autoscaler isolates packing).",
        "anchor-day",
        (
            "z2jh",
            "extender",
            "extender[weight=5]",
            "extender[prefer_older_nodes=false]",
            "extender[normalization=linear]",
        ),
        seeds=(1, 2, 3, 4, 5),
    ),
)


def run(experiment: Experiment, jobs: int) -> str:
    scenario = load_scenario(experiment.scenario)
    if experiment.overrides:
        scenario = with_overrides(scenario, experiment.overrides)
    profiles = [parse_policy(p) for p in experiment.policies]
    start = time.perf_counter()
    results = run_all(scenario, profiles, experiment.seeds, jobs=jobs, console=None)
    wall = time.perf_counter() - start
    out = RESULTS / experiment.name
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(scenario, results)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    write_json(out / "results.json", scenario, results)
    plot_nodes(out / "nodes.png", scenario, results, generate_users(scenario, experiment.seeds[0]))
    plot_waits(out / "waits.png", scenario, results)
    settings = ", ".join(experiment.overrides) or "scenario defaults"
    section = (
        f"## {experiment.name}\n\n{experiment.question} Scenario `{experiment.scenario}` "
        f"({settings}); {len(results)} runs in {wall:.0f} s wall.\n\n{table}\n\n"
        f"![nodes]({experiment.name}/nodes.png) ![waits]({experiment.name}/waits.png)\n"
    )
    (out / "section.md").write_text(section, encoding="utf-8")
    return section


def write_summary() -> None:
    """results/summary.md: every experiment's section, in the order above."""
    sections = [
        (RESULTS / e.name / "section.md").read_text(encoding="utf-8")
        for e in EXPERIMENTS
        if (RESULTS / e.name / "section.md").is_file()
    ]
    head = (
        "# Simulation results\n\nGenerated by `benchmarks/run_simulations.py`; method and "
        "sources in `benchmarks/README.md`.\n\n"
    )
    (RESULTS / "summary.md").write_text(head + "\n".join(sections), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="experiment names to run")
    args = parser.parse_args()
    chosen = [e for e in EXPERIMENTS if not args.only or e.name in args.only]
    for experiment in chosen:
        print(f"running {experiment.name} ...", flush=True)
        print(run(experiment, args.jobs), flush=True)
    write_summary()


if __name__ == "__main__":
    main()
