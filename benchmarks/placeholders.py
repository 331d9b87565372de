"""Placeholder modes in the simulator: user wait against node-hours (issue 5's benchmark).

Run: ``.venv/bin/python benchmarks/placeholders.py [--jobs 2] [--seeds N] [--only NAME ...]``.

Every variant runs the shipped scheduler profile (``extender``: z2jh's user-scheduler plus our
extender with prioritize, preempt and bind) on the same scenario and seeds, so on the same users;
only the placeholder controller's configuration (``placeholders.*`` of the scenario, planned by
the controller's own ``core.placeholders``) changes.  ``steering`` compares the preempt verb on
and off.  Waits count a failed spawn as the whole start timeout (300 s): a percentile over the
users who started would hide the worst waits.  Tables go to ``benchmarks/results/placeholders/``.

The machine has 2 shared cores; simulations are deterministic, so only the wall time varies.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.metrics import percentile
from scheduler_extender.sim.scenario import load_scenario, with_overrides
from scheduler_extender.sim.scheduler import parse_policy

RESULTS = Path(__file__).parent / "results" / "placeholders"

#: The class of classroom-spike starts Monday 01:00 (simulated time 0 is a Monday 00:00): the
#: operator knows it and opens a window 20 minutes before (node provisioning 2-5 min plus the
#: puller's 5-10 min image pull), until an hour after it starts.  300 students at 512M on
#: n1-highmem-4 (~47 per node): 7 node-sized placeholders.
CLASS_WINDOW = 'placeholders.windows=[{days: [Mon], start: "00:40", end: "02:00", count: 7}]'
ADAPTIVE = ("placeholders.mode=adaptive",)
NODE = ("placeholders.size=node",)
PULLS = ("placeholders.learn_pulls=true",)
NO_MAX = ("placeholders.max=1000",)
TAINT = ("startup_taint.enabled=true",)
FORECAST_NODE = ("placeholders.mode=forecast", *NODE, *NO_MAX, *PULLS)


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...]
    policy: str = "extender"
    note: str = ""


@dataclass(frozen=True)
class Study:
    name: str
    scenario: str
    question: str
    variants: tuple[Variant, ...]
    seeds: int


STUDIES = (
    Study(
        "classroom-spike",
        "classroom-spike",
        "300 users within 5 minutes at 01:00 on a quiet hub: which placeholder mode keeps the "
        "p95 wait under 30 s?",
        (
            Variant("none", ("placeholders.mode=none",)),
            Variant(
                "static-3",
                ("placeholders.mode=static", "placeholders.count=3"),
                note="z2jh-style: 3 user-sized",
            ),
            Variant("adaptive", ADAPTIVE, note="shipped defaults: user-sized, max 20"),
            Variant("adaptive-node", ADAPTIVE + NODE + NO_MAX, note="node-sized, no max"),
            Variant(
                "adaptive-node-pulls",
                ADAPTIVE + NODE + NO_MAX + PULLS,
                note="node-sized, learned pulls",
            ),
            Variant(
                "schedule-node",
                ("placeholders.mode=schedule", CLASS_WINDOW, *NODE),
                note="a window 00:40-02:00 of 7 node-sized",
            ),
            Variant(
                "adaptive+window",
                (*ADAPTIVE, CLASS_WINDOW.replace("count: 7", "count: 300")),
                note="shipped defaults, the window as a floor (300 user-sized)",
            ),
            Variant(
                "adaptive-node+window",
                ADAPTIVE + NODE + (CLASS_WINDOW,),
                note="adaptive, the window as a floor",
            ),
        ),
        seeds=5,
    ),
    Study(
        "classroom-window-taint",
        "classroom-spike",
        "Issue 12: with the class's calendar window, p95 wait <= 5 s at no more node-hours than "
        "adaptive-node + the window (the first row, re-measured)? The window with the startup "
        "taint, and the frontier's forecast-node + taint with the window as a floor.",
        (
            Variant(
                "adaptive-node+window",
                ADAPTIVE + NODE + (CLASS_WINDOW,),
                note="today's window result: adaptive, the window as a floor",
            ),
            Variant(
                "adaptive-node+window+taint",
                ADAPTIVE + NODE + (CLASS_WINDOW,) + TAINT,
                note="the same, startup taint on",
            ),
            Variant(
                "forecast-node+taint",
                (*FORECAST_NODE, "placeholders.safety=1.5", *TAINT),
                note="the frontier's point, safety 1.5, no window",
            ),
            Variant(
                "forecast-node+taint+window",
                (*FORECAST_NODE, "placeholders.safety=1.0", CLASS_WINDOW, *TAINT),
                note="forecast-node safety 1, taint, the window as a floor",
            ),
            Variant(
                "forecast-node+taint+window/1.5",
                (*FORECAST_NODE, "placeholders.safety=1.5", CLASS_WINDOW, *TAINT),
                note="forecast-node safety 1.5, taint, the window as a floor",
            ),
        ),
        seeds=5,
    ),
    Study(
        "mybinder-week",
        "mybinder-week",
        "A week at ~11 launches/min with a daily cycle: node-hours over the no-placeholder run, "
        "and what the waits gain.",
        (
            Variant("none", ("placeholders.mode=none",)),
            Variant(
                "static-3",
                ("placeholders.mode=static", "placeholders.count=3"),
                note="z2jh-style: 3 user-sized",
            ),
            Variant("adaptive", ADAPTIVE, note="shipped defaults: user-sized, max 20"),
            Variant("adaptive-user-nomax", ADAPTIVE + NO_MAX, note="user-sized, no max"),
            Variant("adaptive-node", ADAPTIVE + NODE + NO_MAX, note="node-sized, no max"),
            Variant(
                "adaptive-node-nostab",
                (*ADAPTIVE, *NODE, *NO_MAX, "placeholders.scale_down_delay=0"),
                note="node-sized, no scale-down stabilization",
            ),
            Variant(
                "adaptive-node-safety1",
                ADAPTIVE + NODE + NO_MAX + ("placeholders.safety=1",),
                note="node-sized, safety 1",
            ),
            Variant(
                "adaptive-node-pulls",
                ADAPTIVE + NODE + NO_MAX + PULLS,
                note="node-sized, learned pulls",
            ),
        ),
        seeds=3,
    ),
    Study(
        "steering",
        "classroom-spike",
        "Preemption steering (the preempt verb) on the classroom with the window: which "
        "placeholder a user evicts (image-holding packed node vs the newest, image-less one).",
        (
            Variant(
                "extender",
                ("placeholders.mode=schedule", CLASS_WINDOW, *NODE),
                note="preempt verb on",
            ),
            Variant(
                "extender[preempt=false]",
                ("placeholders.mode=schedule", CLASS_WINDOW, *NODE),
                policy="extender[preempt=false]",
                note="preempt verb off",
            ),
            Variant(
                "z2jh",
                ("placeholders.mode=schedule", CLASS_WINDOW, *NODE),
                policy="z2jh",
                note="no extender",
            ),
            Variant(
                "extender/user-sized",
                ("placeholders.mode=schedule", CLASS_WINDOW.replace("count: 7", "count: 300")),
                note="the window as 300 user-sized, preempt on",
            ),
            Variant(
                "extender[preempt=false]/user-sized",
                ("placeholders.mode=schedule", CLASS_WINDOW.replace("count: 7", "count: 300")),
                policy="extender[preempt=false]",
                note="300 user-sized, preempt off",
            ),
        ),
        seeds=5,
    ),
)


@dataclass(frozen=True)
class Row:
    variant: str
    seed: int
    node_hours: float
    placeholder_node_hours: float
    placeholder_only_node_hours: float
    users: int
    failed: int
    waited_over_60s: int
    p50: float
    p95: float
    max_wait: float
    pull_waits: int
    preemptions: int
    wall: float


def run(task: tuple[str, Variant, int]) -> Row:
    scenario_name, variant, seed = task
    scenario = with_overrides(load_scenario(scenario_name), variant.overrides)
    started = time.perf_counter()
    sim = Simulation(scenario, parse_policy(variant.policy), seed).run()
    wall = time.perf_counter() - started
    stats = sim.stats
    end = scenario.duration
    waits = list(stats.waits) + [scenario.spawner.start_timeout] * stats.failed_spawns
    node_hours = sum(min(n.deleted_at, end) - n.created for n in sim.nodes_log) / 3600
    return Row(
        variant=variant.name,
        seed=seed,
        node_hours=node_hours,
        placeholder_node_hours=stats.placeholder_node_seconds / 3600,
        placeholder_only_node_hours=sum(n.placeholder_only_s for n in sim.nodes_log) / 3600,
        users=stats.users,
        failed=stats.failed_spawns,
        waited_over_60s=sum(1 for w in stats.waits if w > 60) + stats.failed_spawns,
        p50=percentile(waits, 50),
        p95=percentile(waits, 95),
        max_wait=max(waits, default=0.0),
        pull_waits=stats.pull_waits,
        preemptions=stats.preemptions,
        wall=wall,
    )


def _mean(rows: Sequence[Row], attr: str) -> float:
    return statistics.fmean(float(getattr(r, attr)) for r in rows)


def _fmt(rows: Sequence[Row], attr: str, digits: int = 1) -> str:
    values = [float(getattr(r, attr)) for r in rows]
    mean = statistics.fmean(values)
    if len(values) > 1 and statistics.stdev(values) > 0:
        return f"{mean:,.{digits}f} ± {statistics.stdev(values):,.{digits}f}"
    return f"{mean:,.{digits}f}"


def table(study: Study, rows: Sequence[Row]) -> str:
    by: dict[str, list[Row]] = {}
    for r in rows:
        by.setdefault(r.variant, []).append(r)
    base_name = study.variants[0].name
    base = _mean(by[base_name], "node_hours")
    lines = [
        f"### {study.name} ({study.scenario}, seeds 1..{study.seeds})",
        "",
        study.question,
        "",
        "| variant | what | node-hours | vs first row | placeholder node-h | p50 s | p95 s | "
        "max s | waited > 60 s | failed spawns | users | waited on a pull | preemptions |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in study.variants:
        rs = by[v.name]
        extra = (_mean(rs, "node_hours") / base - 1) * 100 if base else math.nan
        lines.append(
            f"| `{v.name}` | {v.note or v.policy} | {_fmt(rs, 'node_hours')} | {extra:+.1f} % | "
            f"{_fmt(rs, 'placeholder_node_hours')} | {_fmt(rs, 'p50')} | {_fmt(rs, 'p95')} | "
            f"{_fmt(rs, 'max_wait')} | {_fmt(rs, 'waited_over_60s')} | {_fmt(rs, 'failed')} | "
            f"{_fmt(rs, 'users', 0)} | {_fmt(rs, 'pull_waits')} | {_fmt(rs, 'preemptions', 0)} |"
        )
    lines.append("")
    lines.append(
        "Mean ± standard deviation over seeds. Waits count a failed spawn as 300 s. "
        "Placeholder node-h: node-hours held by placeholders (their share of a node's cpu, "
        "memory or pods, whichever is largest)."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seeds", type=int, help="override every study's seed count")
    p.add_argument("--only", nargs="*", help="study names")
    args = p.parse_args(argv)
    studies = [s for s in STUDIES if not args.only or s.name in args.only]
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for study in studies:
        seeds = range(1, (args.seeds or study.seeds) + 1)
        tasks = [(study.scenario, v, s) for v in study.variants for s in seeds]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(run, tasks))
        shown = Study(study.name, study.scenario, study.question, study.variants, len(seeds))
        text = table(shown, rows)
        print(text, "\n", flush=True)
        (RESULTS / f"{study.name}.md").write_text(text + "\n", encoding="utf-8")
        (RESULTS / f"{study.name}.json").write_text(
            json.dumps([r.__dict__ for r in rows], indent=1) + "\n", encoding="utf-8"
        )
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{args.jobs} jobs, {time.perf_counter() - started:.0f} s wall"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
