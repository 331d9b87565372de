"""The wait-cost frontier of one scenario: node-hours against users waiting over 60 s.

Run: ``nice -n 10 .venv/bin/python benchmarks/frontier.py --scenario mybinder-week --seeds 5
--out benchmarks/results/frontier/mybinder-week [--jobs 2] [--families z2jh-static adaptive]``.

It sweeps issue 12's families (``scheduler_extender.sim.frontier.default_families``: z2jh's
static N under its stock user-scheduler; our adaptive, node-sized and forecast modes under the
extender, each with and without the startup taint, and z2jh's static N under the extender) over
seeds 1..N, writes ``OUT/frontier.json`` and ``OUT/frontier.png``, and prints a table, the Pareto
front, the recommended point (the rule of ``recommend_point``: fewest users waiting over 60 s
within +10 % node-hours of no placeholders) and, for each z2jh point, our cheapest point that
dominates it (``dominance``); ``OUT/frontier.md`` holds the same text.

Node-hours run until the last server is gone when the scenario counts its drain tail (the
default); ``--set drain_tail=false`` counts them over the scenario's duration, as the results
in ``benchmarks/results/frontier/`` and ``benchmarks/placeholders.py`` do.  ``--set`` overrides
are named in ``frontier.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from scheduler_extender.sim.frontier import (
    FIGURES,
    FrontierError,
    FrontierPoint,
    baseline_point,
    best_static_within,
    cheapest_meeting,
    combine_seeds,
    default_families,
    dominance_table,
    pareto_front,
    read_frontier,
    recommend_point,
    restrict_seeds,
    run_frontier,
    write_frontier,
)
from scheduler_extender.sim.scenario import ScenarioError, load_scenario, with_overrides


def _cell(p: FrontierPoint, name: str) -> str:
    sd = p.sd.get(name, 0.0)
    mean = p.figure(name)
    return f"{mean:,.1f} ± {sd:,.1f}" if sd > 0 else f"{mean:,.1f}"


def table(points: Sequence[FrontierPoint]) -> str:
    front = {id(p) for p in pareto_front(points)}
    base = baseline_point(points)
    lines = [
        "| point | node-hours | vs none | waited > 60 s | failed spawns | p95 wait s "
        "| waited on a pull | front |",
        "|---|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for p in points:
        extra = f"{(p.node_hours / base.node_hours - 1) * 100:+.1f} %" if base else "n/a"
        lines.append(
            f"| `{p.label()}` | {_cell(p, 'node_hours')} | {extra} | "
            f"{_cell(p, 'waited_over_60s')} | {_cell(p, 'failed_spawns')} | "
            f"{_cell(p, 'wait_p95_s')} | {_cell(p, 'pull_waits')} | "
            f"{'*' if id(p) in front else ''} |"
        )
    return "\n".join(lines)


def verdict(points: Sequence[FrontierPoint], budget: float) -> str:
    base = baseline_point(points)
    rec = recommend_point(points, budget)
    if base is None or rec is None:
        return "no recommendation: the sweep has no baseline or no point within the budget"
    lines = [
        f"recommended (fewest waiting > 60 s within +{budget:.0%} node-hours of none): "
        f"`{rec.label()}`: {rec.node_hours:,.1f} node-h "
        f"({(rec.node_hours / base.node_hours - 1) * 100:+.1f} %), waited > 60 s "
        f"{rec.waited_over_60s:,.1f}, failed {rec.failed_spawns:,.1f}, p95 {rec.wait_p95_s:,.1f} s,"
        f" waited on a pull {rec.pull_waits:,.1f} (none: {base.pull_waits:,.1f})"
    ]
    slo = cheapest_meeting(points, 60.0)
    if slo is not None:
        lines.append(
            f"cheapest with p95 wait <= 60 s: `{slo.label()}`: {slo.node_hours:,.1f} node-h, "
            f"waited > 60 s {slo.waited_over_60s:,.1f}, failed {slo.failed_spawns:,.1f}, "
            f"p95 {slo.wait_p95_s:,.1f} s"
        )
    static = best_static_within(points, rec.node_hours)
    if static is not None:
        ratio_w = rec.waited_over_60s / static.waited_over_60s if static.waited_over_60s else 0.0
        ratio_f = rec.failed_spawns / static.failed_spawns if static.failed_spawns else 0.0
        lines.append(
            f"best z2jh static within its node-hours: `{static.label()}`: waited > 60 s "
            f"{static.waited_over_60s:,.1f}, failed {static.failed_spawns:,.1f}; ratios "
            f"{ratio_w:.2f} / {ratio_f:.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", help="a shipped scenario name or a YAML path")
    p.add_argument("--seeds", type=int, default=5, help="how many seeds (default 5)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=1,
        help="run seeds FIRST..FIRST+SEEDS-1 (default 1): add seeds to a stored run, then --merge",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--families", nargs="*", help="only these family names")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        help="scenario override path=value (with --merge: the runs' own, named in frontier.md)",
    )
    p.add_argument("--budget", type=float, default=0.10)
    p.add_argument("--no-plot", action="store_true")
    p.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="FAMILY=I,J",
        help="run only these points (0-based) of a family (repeatable; others run whole)",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="no simulation: combine the frontier.json of these directories into --out",
    )
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, args.budget, not args.no_plot, args.set)
    if not args.scenario:
        p.error("--scenario is required (unless --merge)")
    try:
        scenario = with_overrides(load_scenario(args.scenario), args.set)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    families = default_families()
    if args.families:
        known = {f.name for f in families}
        unknown = sorted(set(args.families) - known)
        if unknown:
            print(f"error: unknown families {unknown}; known: {sorted(known)}", file=sys.stderr)
            return 2
        families = [f for f in families if f.name in args.families]
    for item in args.select:
        name, _, picks = item.partition("=")
        try:
            chosen = [int(i) for i in picks.split(",")]
            families = [
                replace(f, points=tuple(f.points[i] for i in chosen)) if f.name == name else f
                for f in families
            ]
        except (ValueError, IndexError):
            print(
                f"error: --select {item!r}: expected FAMILY=I,J with valid indices", file=sys.stderr
            )
            return 2
    started = time.perf_counter()

    def progress(done: int, total: int, label: str) -> None:
        print(f"[{done}/{total}] {time.perf_counter() - started:6.0f} s  {label}", flush=True)

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    points = run_frontier(scenario, families, seeds, args.jobs, progress)
    written = report(points, args.out, args.budget, not args.no_plot, args.set)
    print(
        f"wrote {', '.join(str(w) for w in written)}; {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.machine()}, {args.jobs} jobs, "
        f"{time.perf_counter() - started:.0f} s wall"
    )
    return 0


def report(
    points: Sequence[FrontierPoint],
    out: Path,
    budget: float,
    plot: bool,
    overrides: Sequence[str] = (),
) -> list[Path]:
    """frontier.json, frontier.png and frontier.md (the table, the front, the verdict, the
    dominance of z2jh's points); ``overrides``, the scenario's ``--set``, are named."""
    name = points[0].scenario if points else "?"
    seeds = sorted({s for p in points for s in p.seeds})
    written = write_frontier(points, out, plot=plot, title=name)
    sets = (
        "Scenario overrides: " + ", ".join(f"`{o}`" for o in overrides) + ".\n\n"
        if overrides
        else ""
    )
    text = (
        f"## {name}: wait-cost frontier, seeds {', '.join(map(str, seeds))}\n\n"
        + sets
        + table(points)
        + "\n\nMean ± sd over seeds; `*` = on the Pareto front (node-hours, waited > 60 s). "
        + "Figures: "
        + ", ".join(FIGURES)
        + ".\n\n"
        + verdict(points, budget)
        + "\n\n"
        + dominance_table(points)
        + "\n"
    )
    md = out / "frontier.md"
    md.write_text(text, encoding="utf-8")
    print(text)
    return [*written, md]


def merge(
    dirs: Sequence[Path], out: Path, budget: float, plot: bool, overrides: Sequence[str] = ()
) -> int:
    """Points of several runs of the same scenario: the same point's runs on different seeds
    pooled, then every point on the seeds they all share (``overrides``:
    the ``--set`` the runs were made with, named in frontier.md)."""
    try:
        groups = [read_frontier(d / "frontier.json") for d in dirs]
    except FrontierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    points = [p for g in groups for p in g]
    if len({p.scenario for p in points}) > 1:
        print("error: --merge: the runs are of different scenarios", file=sys.stderr)
        return 2
    try:
        # The same point run on other seeds (--first-seed) is pooled first.
        points = combine_seeds(points)
    except ValueError as exc:
        print(f"error: --merge: {exc}", file=sys.stderr)
        return 2
    common = set.intersection(*(set(p.seeds) for p in points)) if points else set()
    if not common:
        print("error: --merge: the runs share no seed", file=sys.stderr)
        return 2
    points = [restrict_seeds(p, sorted(common)) for p in points]
    written = report(points, out, budget, plot, overrides)
    print(f"merged {len(points)} points on seeds {sorted(common)}: {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
