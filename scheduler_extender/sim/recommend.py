"""``scheduler-extender recommend``: chart values for a hub, from its own trace.

    scheduler-extender trace prometheus --url ... --since 14d --out trace.csv
    scheduler-extender recommend --trace trace.csv --max-wait-p95 30s
    helm upgrade ... -f recommend-results/values.yaml

It replays the trace under the wait-cost frontier's placeholder families (``sim/frontier.py``,
the machinery of ``benchmarks/frontier.py``), prints each candidate's node-hours and waits, picks
the point that meets the operator's target, and writes the chart values for it: the placeholder
count (static, adaptive or forecast, user- or node-sized, with the pool's ``images`` when the
point learns pull times) and the startup taint when the point uses it.  Only points the chart can
express are recommended; the others stay in the table for comparison.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scheduler_extender.sim.frontier import (
    Family,
    FrontierError,
    FrontierPoint,
    baseline_point,
    cheapest_meeting,
    default_families,
    pareto_front,
    point_scenario,
    read_frontier,
    recommend_point,
    run_frontier,
    write_frontier,
)
from scheduler_extender.sim.scenario import (
    Placeholders,
    Scenario,
    ScenarioError,
    StartupTaint,
    load_scenario,
    with_overrides,
)
from scheduler_extender.sim.workload import read_trace
from scheduler_extender.validation import parse_duration

PROG = "scheduler-extender recommend"
#: The shipped trace-replay scenario: its pool, culler and images are the base by default.
DEFAULT_SCENARIO = "course-day"
#: Scenario placeholder fields with a chart key (``scheduling.userPlaceholder`` count), by name.
_COUNT_KEYS = {
    "rate_window": "rateWindowSeconds",
    "burst_window": "burstWindowSeconds",
    "burst_min_arrivals": "burstMinArrivals",
    "scale_down_delay": "scaleDownDelaySeconds",
    "ready_default": "nodeReadySeconds",
    "boot_seconds": "bootSeconds",
    "image_pull_seconds": "imagePullSeconds",
}
#: Fields that are the simulator's model of the controller, not settings.
_MODEL_ONLY = {"priority", "recreate_delay", "plan_interval", "windows"}
#: Scenario sections whose overrides the values can carry (the rest model the cluster).
_CHART_SECTIONS = ("placeholders.", "startup_taint.")


class RecommendError(Exception):
    """Bad input; ``str()`` is the one-line message."""


@dataclass(frozen=True, slots=True)
class Candidate:
    point: FrontierPoint
    values: dict[str, Any] | None  # chart values; None when the chart cannot express it
    why_not: str = ""


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


Values = dict[str, Any]


def user_images(scenario: Scenario) -> list[str]:
    """The users' images as the simulated controller knows them (the profiles' images): what a
    node must hold before its pull counts as done and its startup taint comes off."""
    return sorted({p.image for p in scenario.users.profiles})


def chart_values(
    scenario: Scenario, family: Family, knobs: Mapping[str, Any]
) -> tuple[Values | None, str]:
    """The chart values of one frontier point, or None and why the chart cannot express it."""
    if family.policy != "extender":
        return None, f"policy {family.policy}: the chart installs the extender"
    paths = [item.partition("=")[0] for item in family.base] + list(knobs)
    other = sorted({p for p in paths if not p.startswith(_CHART_SECTIONS)})
    if other:
        return None, f"no chart key for {', '.join(other)}"
    point = point_scenario(scenario, family, tuple(knobs.items()))
    ph, taint = point.placeholders, point.startup_taint
    default = Placeholders()
    if ph.mode == "none":
        if taint.enabled:
            return None, "startup_taint.enabled: the placeholder controller removes the taint"
        return {"scheduling": {"userPlaceholder": {"enabled": False}}}, ""
    if ph.mode not in ("static", "adaptive", "forecast"):
        return None, f"placeholders.mode={ph.mode}: not set by recommend"
    if ph.mode == "forecast" and ph.forecast_bucket != default.forecast_bucket:
        return None, (
            f"placeholders.forecast_bucket={ph.forecast_bucket:g}: the controller's profile "
            f"has {default.forecast_bucket:g} s buckets"
        )
    count: dict[str, Any] = {"mode": ph.mode}
    if ph.mode == "static":
        count["static"] = ph.count
    else:
        count.update(min=ph.min, max=ph.max, safety=_plain(ph.safety))
        for field, key in _COUNT_KEYS.items():
            if getattr(ph, field) != getattr(default, field):
                count[key] = _plain(getattr(ph, field))
    if ph.mode == "forecast":
        # Always written: the mode's own knobs, as simulated.
        count.update(
            forecastMinWeeks=ph.forecast_min_weeks, forecastAlpha=_plain(ph.forecast_alpha)
        )
    images = user_images(point)
    placeholder: dict[str, Any] = {"enabled": True}
    if ph.size == "node" or ph.learn_pulls:
        # A pool's size and images are pool keys: the default pool, spelt out.
        pool: dict[str, Any] = {"name": "default", "size": ph.size, "count": count}
        if ph.size == "node" and ph.node_fraction != default.node_fraction:
            pool["nodeFraction"] = _plain(ph.node_fraction)
        if ph.learn_pulls:
            # The controller learns pull times from when a new node holds these images.
            pool["images"] = images
        placeholder["pools"] = [pool]
    else:
        placeholder.update(replicas=None, count=count)
    scheduling: dict[str, Any] = {
        "userScheduler": {"enabled": True, "extender": {"enabled": True}},
        "userPlaceholder": placeholder,
    }
    values: Values = {"scheduling": scheduling}
    if taint.enabled:
        # Off once a node holds the users' images, as simulated (the chart's default would be
        # whatever the pullers pull); the key only when the scenario names another.
        block: dict[str, Any] = {"enabled": True}
        if taint.key != StartupTaint().key:
            block["key"] = taint.key
        block["images"] = list(images)  # a copy: no YAML anchor shared with the pool's
        scheduling["startupTaint"] = block
        # The simulated nodes get the images from the continuous puller: without it no user pod
        # could pull on a tainted node and the taint would stay.
        values["prePuller"] = {"continuous": {"enabled": True}}
    return values, ""


def values_note(scenario: Scenario, family: Family, knobs: Mapping[str, Any]) -> str:
    """Comment lines for values.yaml about what the simulation assumed that a fresh install
    or the cluster must do ("" when nothing)."""
    point = point_scenario(scenario, family, tuple(knobs.items()))
    ph, taint = point.placeholders, point.startup_taint
    note = ""
    if ph.mode == "forecast":
        note += (
            f"# forecast: simulated with {ph.forecast_history_weeks} week(s) of learned arrivals; "
            f"the controller plans as adaptive\n# until it has seen {ph.forecast_min_weeks} "
            "week(s) of this hub (forecastMinWeeks).\n"
        )
    if taint.enabled:
        note += (
            "# startupTaint: simulated with new user nodes registering with the taint\n"
            f"#   {taint.key}=true:NoSchedule;\n"
            '# the node pool adds it (docs/install.md, "Startup taint").\n'
        )
    return note


def trace_duration(trace: Path, scenario: Scenario) -> float:
    """Seconds from the trace's first arrival until its last session ends (plus the culler's
    timeout and pass for sessions that end by culling), so node-hours run until then."""
    users = read_trace(trace, scenario)
    end = 0.0
    for user in users:
        if user.stop_after is not None:
            end = max(end, user.arrival + user.stop_after)
        else:
            last = user.arrival + user.activity + scenario.culler.timeout + scenario.culler.every
            end = max(end, last)
    return float(max(60, math.ceil(end / 60) * 60))


def parse_extra_cost(text: str) -> float:
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise RecommendError(
            f"--max-extra-cost: expected a percentage (10%), got {text!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise RecommendError("--max-extra-cost: must be >= 0")
    return value


def choose(
    candidates: Sequence[Candidate],
    points: Sequence[FrontierPoint],
    *,
    max_wait_p95: float | None,
    max_extra_cost: float | None,
) -> tuple[Candidate | None, str]:
    """The recommended candidate under the target, and the rule as a sentence: the frontier's
    own rules (``cheapest_meeting`` for ``--max-wait-p95``, ``recommend_point`` for
    ``--max-extra-cost``), applied to the points the chart can express."""
    usable = {id(c.point): c for c in candidates if c.values is not None}
    if max_wait_p95 is not None:
        rule = f"the cheapest setting whose p95 wait is <= {max_wait_p95:g} s"
        found = cheapest_meeting([c.point for c in usable.values()], max_wait_p95)
        return (usable[id(found)] if found is not None else None), rule
    budget = 0.10 if max_extra_cost is None else max_extra_cost
    rule = f"the fewest users waiting > 60 s within +{budget:.0%} node-hours of no placeholders"
    base = baseline_point(points)
    if base is None:
        return None, rule + " (the sweep has no baseline)"
    found = recommend_point([base, *(c.point for c in usable.values())], budget)
    return (usable[id(found)] if found is not None else None), rule


def _cell(p: FrontierPoint, name: str, digits: int = 1) -> str:
    sd = p.sd.get(name, 0.0)
    mean = p.figure(name)
    return f"{mean:,.{digits}f} ± {sd:,.{digits}f}" if sd > 0 else f"{mean:,.{digits}f}"


def candidates_table(
    candidates: Sequence[Candidate], points: Sequence[FrontierPoint], chosen: Candidate | None
) -> Table:
    front = {id(p) for p in pareto_front(points)}
    base = baseline_point(points)
    table = Table(title="Candidates (mean ± sd over seeds)", title_justify="left")
    for name, right in (
        ("setting", False), ("node-hours", True), ("vs none", True), ("waited > 60 s", True),
        ("p95 wait s", True), ("failed spawns", True), ("front", False), ("chart", False),
    ):  # fmt: skip
        table.add_column(name, justify="right" if right else "left")
    for c in candidates:
        p = c.point
        extra = f"{(p.node_hours / base.node_hours - 1) * 100:+.1f} %" if base else "n/a"
        mark = "<- recommended" if chosen is not None and c is chosen else ""
        table.add_row(
            f"{p.label()} {mark}".strip(),
            _cell(p, "node_hours"),
            extra,
            _cell(p, "waited_over_60s"),
            _cell(p, "wait_p95_s"),
            _cell(p, "failed_spawns"),
            "*" if id(p) in front else "",
            "yes" if c.values is not None else c.why_not,
        )
    return table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Chart values for a hub, from its own trace (wait-cost frontier)."
    )
    parser.add_argument("--trace", required=True, help="trace CSV (e.g. from `trace prometheus`)")
    parser.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help="base scenario: node pool, culler, images, profiles for missing requests "
        f"(a shipped name or a YAML file; default: {DEFAULT_SCENARIO})",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--max-wait-p95", help="target: p95 wait at most this (30s, 2m)")
    target.add_argument(
        "--max-extra-cost", help="target: node-hours at most this over no placeholders (10%%)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per point (default: 5)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument("--families", help="comma-separated frontier families (default: all)")
    parser.add_argument("--set", action="append", default=[], help="scenario override path=value")
    parser.add_argument("--out", default="recommend-results", help="directory for the results")
    parser.add_argument("--no-plot", action="store_true", help="skip frontier.png")
    parser.add_argument(
        "--frontier",
        help="reuse the frontier.json of an earlier run on the same trace (no simulation): "
        "another target in seconds",
    )
    return parser


def _families(scenario: Scenario, wanted: str | None) -> tuple[list[Family], list[str]]:
    """The families to sweep that this scenario accepts, plus the no-placeholder baseline."""
    families = default_families()
    if wanted:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        known = {f.name for f in families}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise RecommendError(
                f"--families: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        families = [f for f in families if f.name in names]
    usable, skipped = [], []
    for family in families:
        try:
            for knobs in family.points:
                point_scenario(scenario, family, knobs)
        except ScenarioError as exc:
            skipped.append(f"{family.name} ({exc})")
            continue
        usable.append(family)
    if not any(f.name == "z2jh-static" for f in usable):
        usable.insert(0, Family(
            "z2jh-static", "z2jh", ("placeholders.mode=static", "placeholders.size=user"),
            ((("placeholders.count", 0),),), "no placeholders (the baseline)",
        ))  # fmt: skip
    return usable, skipped


def run(args: argparse.Namespace, console: Console) -> int:
    if args.seeds < 1:
        raise RecommendError("--seeds: at least 1")
    if args.jobs < 1:
        raise RecommendError("--jobs: at least 1")
    max_wait = None
    if args.max_wait_p95 is not None:
        try:
            max_wait = parse_duration(args.max_wait_p95)
        except ValueError as exc:
            raise RecommendError(f"--max-wait-p95: {exc}") from None
    extra = parse_extra_cost(args.max_extra_cost) if args.max_extra_cost is not None else None
    trace = Path(args.trace).resolve()
    if not trace.is_file():
        raise RecommendError(f"--trace: file not found: {args.trace}")
    scenario = with_overrides(load_scenario(args.scenario), [*args.set, f"users.trace={trace}"])
    duration = trace_duration(trace, scenario)
    scenario = with_overrides(scenario, [f"duration={duration}"])
    families, skipped = _families(scenario, args.families)
    if args.frontier:
        # An earlier run's points: only the choice and the values are redone.
        try:
            points = read_frontier(Path(args.frontier))
        except FrontierError as exc:
            raise RecommendError(f"--frontier: {exc}") from None
        known = {f.name for f in families}
        missing = sorted({p.family for p in points} - known)
        if missing:
            raise RecommendError(f"--frontier: families not in this sweep: {', '.join(missing)}")
        console.print(f"[bold]{scenario.name}[/] with {trace.name}: {len(points)} settings "
                      f"read from {args.frontier}")  # fmt: skip
    else:
        console.print(
            f"[bold]{scenario.name}[/] with {trace.name}: {duration / 3600:.1f} h simulated, "
            f"{sum(len(f.points) for f in families)} settings x {args.seeds} seeds"
        )
        for note in skipped:
            console.print(f"skipped family {note}", style="yellow")
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[label]}"), console=console,
            transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task("simulating", total=None, label="")

            def progress(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, label=label)

            seeds = range(1, args.seeds + 1)
            points = run_frontier(scenario, families, seeds, args.jobs, progress)
    by_family = {f.name: f for f in families}
    candidates = []
    for p in points:
        values, why_not = chart_values(scenario, by_family[p.family], p.knobs)
        candidates.append(Candidate(p, values, why_not))
    chosen, rule = choose(candidates, points, max_wait_p95=max_wait, max_extra_cost=extra)
    console.print(candidates_table(candidates, points, chosen))
    out = Path(args.out)
    written = write_frontier(
        points, out, plot=not args.no_plot, title=f"{scenario.name}: {trace.name}"
    )
    console.print(f"wrote {', '.join(str(w) for w in written)}")
    if chosen is None:
        console.print(f"no setting the chart can express meets the target ({rule})", style="red")
        return 1
    p = chosen.point
    console.print(
        f"recommended ({rule}): [bold]{p.label()}[/]: {p.node_hours:,.1f} node-hours, "
        f"p95 wait {p.wait_p95_s:,.1f} s, {p.waited_over_60s:,.1f} users waited > 60 s"
    )
    text = (
        f"# scheduler-extender recommend: {p.label()} on {trace.name} ({rule}).\n"
        f"# Simulated: {p.node_hours:.1f} node-hours, p95 wait {p.wait_p95_s:.1f} s, "
        f"{p.waited_over_60s:.1f} users waited > 60 s (means over {len(p.seeds)} seeds).\n"
        + values_note(scenario, by_family[p.family], p.knobs)
        + yaml.safe_dump(chosen.values, sort_keys=False)
    )
    values_path = out / "values.yaml"
    values_path.write_text(text, encoding="utf-8")
    console.print(f"chart values ({values_path}; helm upgrade ... -f {values_path}):")
    console.file.flush()
    # Plain print: the console would wrap long comment lines.
    print(text, end="", flush=True)
    return 0


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    # Wide enough for the table when the output is a file or a pipe (rich assumes 80 then).
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    try:
        return run(args, console)
    except (RecommendError, ScenarioError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
