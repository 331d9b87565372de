"""The wait-cost frontier: what each placeholder configuration costs in node-hours and buys in
user wait, on one scenario, over seeds.

A *family* is one way of keeping spare capacity with one knob (or a few) swept: z2jh's only knob
is the number of user-sized static placeholders under its stock user-scheduler; ours are the
adaptive and forecast count modes, user- or node-sized, with and without the startup taint, all
under the shipped extender profile.  Every point of every family runs on the same seeds, so on
the same users.  A point is *dominated* when another point has no more node-hours and no more
users waiting over 60 s, and fewer of one; the undominated points are the Pareto front.

Public API (the ``recommend`` command builds on it):

- ``default_families()``: the sweep of issue 12 (z2jh static N, our modes over their knobs).
- ``run_frontier(scenario, families, seeds, jobs, progress=None) -> list[FrontierPoint]``
- ``pareto_front(points)``: the undominated points, cheapest first.
- ``dominance(points)``: for each z2jh point, our cheapest point no worse on both axes (or
  None); ``dominance_table(points)`` writes it as Markdown.
- ``recommend_point(points, budget=0.10)``: the rule used to pick a setting (below), and
  ``cheapest_meeting(points, p95_s=60)``: the cheapest point with a p95 wait under a target.
- ``write_frontier(points, out_dir)``: ``frontier.json`` (``points_to_json``) and
  ``frontier.png``; ``read_frontier(path)`` / ``points_from_json`` read it back, validated.

``frontier.json`` is a JSON list, one object per point: ``family``, ``policy``, ``knobs`` (the
scenario overrides of the point, dotted path -> value), ``seeds``, and for each figure ``F`` of
``FIGURES`` its mean over seeds as ``F``, its standard deviation as ``F_sd`` and its values per
seed under ``per_seed.F``; ``pareto`` says
whether the point is on the front of all points, ``scenario`` names the scenario.

Node-hours are a run's (``RunResult.node_hours``): they include the drain tail when the scenario
counts it (its default); with ``drain_tail=false`` they are over the scenario's duration (as
``benchmarks/placeholders.py`` counts them), which is how the issue's table was measured.
Waits count a failed spawn as the whole start timeout, and ``waited_over_60s`` counts failed
spawns too.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scheduler_extender.sim.metrics import RunResult
from scheduler_extender.sim.report import _pyplot
from scheduler_extender.sim.runner import run_one
from scheduler_extender.sim.scenario import Scenario, with_overrides
from scheduler_extender.sim.scheduler import parse_policy

#: Figures of a point, each reported as mean (``name``) and standard deviation (``name_sd``).
FIGURES = ("node_hours", "waited_over_60s", "failed_spawns", "wait_p95_s", "pull_waits")
#: Bumped when the JSON shape changes.
SCHEMA_VERSION = 1

Knobs = tuple[tuple[str, Any], ...]
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class Family:
    """A way of keeping spare capacity: ``policy`` (a ``parse_policy`` name), the scenario
    overrides every point shares (``base``), and the swept ``points`` (each a tuple of
    ``(dotted.path, value)``)."""

    name: str
    policy: str
    base: tuple[str, ...]
    points: tuple[Knobs, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class FrontierPoint:
    """One configuration's figures over seeds (means, and standard deviations in ``sd``)."""

    family: str
    policy: str
    knobs: Mapping[str, Any]
    seeds: tuple[int, ...]
    node_hours: float
    waited_over_60s: float
    failed_spawns: float
    wait_p95_s: float
    pull_waits: float
    sd: Mapping[str, float] = field(default_factory=dict)
    scenario: str = ""
    #: Each figure per seed, in ``seeds`` order (so a reader can take a subset of seeds).
    per_seed: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def figure(self, name: str) -> float:
        return float(getattr(self, name))

    def label(self) -> str:
        knobs = ", ".join(f"{k.removeprefix('placeholders.')}={v}" for k, v in self.knobs.items())
        return f"{self.family}({knobs})" if knobs else self.family


class FrontierError(ValueError):
    """A frontier file that cannot be read; the message names the field."""


# --- the sweep ----------------------------------------------------------------------------


def _knobs(**values: Any) -> Knobs:
    return tuple((f"placeholders.{k}", v) for k, v in values.items())


TAINT = ("startup_taint.enabled=true",)


def default_families(*, startup_taint: bool = True, forecast: bool = True) -> list[Family]:
    """Issue 12's sweep: z2jh's static N, and each of our modes over its knobs, with and
    without the startup taint.  Our modes include ``static``: z2jh's own N (0: no
    placeholders) under the extender, so our frontier holds every configuration z2jh has."""
    z2jh = Family(
        "z2jh-static",
        "z2jh",
        ("placeholders.mode=static", "placeholders.size=user"),
        tuple(_knobs(count=n) for n in (0, 1, 2, 3, 5, 10, 20, 40)),
        "z2jh's user-scheduler, N user-sized placeholders",
    )
    ours = [
        Family(
            "static",
            "extender",
            z2jh.base,
            z2jh.points,
            "z2jh's N user-sized placeholders under the extender (preemption steering); "
            "N = 0 is the extender alone",
        ),
        Family(
            "adaptive",
            "extender",
            ("placeholders.mode=adaptive", "placeholders.size=user"),
            tuple(_knobs(safety=s, max=m) for s, m in ((1.0, 10), (1.5, 20), (3.0, 80))),
            "user-sized, rate x lead x safety, capped at max",
        ),
        Family(
            "adaptive-node",
            "extender",
            ("placeholders.mode=adaptive", "placeholders.size=node", "placeholders.max=1000"),
            tuple(_knobs(safety=s) for s in (0.5, 1.0)),
            "node-sized, rate x lead x safety",
        ),
    ]
    if forecast:
        # The forecast must see a lead time that includes the image pull (a node is no room
        # for users before it has the image), so it learns the pull time.
        learn = "placeholders.learn_pulls=true"
        ours += [
            Family(
                "forecast",
                "extender",
                ("placeholders.mode=forecast", "placeholders.size=user", learn),
                tuple(_knobs(safety=s, max=m) for s, m in ((1.0, 50), (1.5, 200))),
                "user-sized, (learned arrivals ahead + unforeseen rate x lead) x safety",
            ),
            Family(
                "forecast-node",
                "extender",
                (
                    "placeholders.mode=forecast",
                    "placeholders.size=node",
                    "placeholders.max=1000",
                    learn,
                ),
                tuple(_knobs(safety=s) for s in (1.0, 1.5)),
                "node-sized, (learned arrivals ahead + unforeseen rate x lead) x safety",
            ),
        ]
    families = [z2jh, *ours]
    if startup_taint:
        families += [
            Family(
                f"{f.name}+taint", f.policy, f.base + TAINT, f.points, f"{f.note}, startup taint"
            )
            for f in ours
        ]
    return families


def _overrides(knobs: Knobs) -> list[str]:
    return [f"{path}={json.dumps(value)}" for path, value in knobs]


def point_scenario(scenario: Scenario, family: Family, knobs: Knobs) -> Scenario:
    """The scenario of one point: ``family.base`` then the knobs, as ``--set`` overrides."""
    return with_overrides(scenario, [*family.base, *_overrides(knobs)])


def _run_task(task: tuple[Scenario, Family, Knobs, int]) -> RunResult:
    scenario, family, knobs, seed = task
    return run_one(point_scenario(scenario, family, knobs), parse_policy(family.policy), seed)


def _aggregate(
    scenario: Scenario, family: Family, knobs: Knobs, runs: Sequence[RunResult]
) -> FrontierPoint:
    series = {
        "node_hours": [r.node_hours for r in runs],
        "waited_over_60s": [float(r.waited_over_60s) for r in runs],
        "failed_spawns": [float(r.failed_spawns) for r in runs],
        "wait_p95_s": [r.wait_p95 for r in runs],
        "pull_waits": [float(r.image_pull_waits) for r in runs],
    }
    means = {k: statistics.fmean(v) for k, v in series.items()}
    sds = {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in series.items()}
    return FrontierPoint(
        family=family.name,
        policy=family.policy,
        knobs=dict(knobs),
        seeds=tuple(r.seed for r in runs),
        sd=sds,
        scenario=scenario.name,
        per_seed={k: tuple(v) for k, v in series.items()},
        **means,
    )


def run_frontier(
    scenario: Scenario,
    families: Sequence[Family],
    seeds: Sequence[int],
    jobs: int = 1,
    progress: Progress | None = None,
) -> list[FrontierPoint]:
    """Every point of every family on every seed; ``progress(done, total, label)`` after each
    run.  ``jobs > 1`` runs that many worker processes."""
    if not seeds:
        raise ValueError("seeds: at least one seed is needed")
    if jobs < 1:
        raise ValueError("jobs must be >= 1")
    # Fail on a bad override before any simulation runs.
    for family in families:
        for knobs in family.points:
            point_scenario(scenario, family, knobs)
    tasks = [(scenario, f, k, s) for f in families for k in f.points for s in seeds]
    total = len(tasks)
    results: list[RunResult] = []

    def note(i: int, task: tuple[Scenario, Family, Knobs, int]) -> None:
        if progress is not None:
            _, family, knobs, seed = task
            progress(i + 1, total, f"{family.name} {dict(knobs)} seed {seed}")

    if jobs == 1:
        for i, task in enumerate(tasks):
            results.append(_run_task(task))
            note(i, task)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for i, (task, result) in enumerate(zip(tasks, pool.map(_run_task, tasks), strict=True)):
                results.append(result)
                note(i, task)
    points: list[FrontierPoint] = []
    it = iter(results)
    for family in families:
        for knobs in family.points:
            runs = [next(it) for _ in seeds]
            points.append(_aggregate(scenario, family, knobs, runs))
    return points


def restrict_seeds(point: FrontierPoint, seeds: Sequence[int]) -> FrontierPoint:
    """The point's figures over a subset of its seeds (from ``per_seed``), so runs made with
    different seed counts compare on the same users."""
    if tuple(seeds) == point.seeds:
        return point
    missing = sorted(set(seeds) - set(point.seeds))
    if missing or not seeds:
        raise ValueError(f"{point.label()}: seeds {missing or '[]'} were not run")
    where = [point.seeds.index(s) for s in seeds]
    per: dict[str, tuple[float, ...]] = {}
    for name in FIGURES:
        values = point.per_seed.get(name)
        if values is None:
            raise ValueError(f"{point.label()}: no per-seed values of {name}")
        per[name] = tuple(values[i] for i in where)
    return _recompute(replace(point, seeds=tuple(seeds), per_seed=per))


def combine_seeds(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """Pool the runs of the same point (family and knobs) made on different seeds into one
    point over all of them, recomputed from ``per_seed`` (first appearance order kept).

    Raises ``ValueError`` naming the point and seed when a seed was run twice for a point.
    """
    groups: dict[tuple[str, str], list[FrontierPoint]] = {}
    for p in points:
        groups.setdefault((p.scenario, p.label()), []).append(p)
    out: list[FrontierPoint] = []
    for runs in groups.values():
        if len(runs) == 1:
            out.append(runs[0])
            continue
        per: dict[int, dict[str, float]] = {}
        for run in runs:
            for i, seed in enumerate(run.seeds):
                if seed in per:
                    raise ValueError(f"{run.label()}: seed {seed} was run twice")
                per[seed] = {name: run.per_seed[name][i] for name in FIGURES}
        seeds = tuple(sorted(per))
        first = runs[0]
        pooled = replace(
            first,
            seeds=seeds,
            per_seed={name: tuple(per[s][name] for s in seeds) for name in FIGURES},
        )
        out.append(_recompute(pooled))
    return out


def _recompute(point: FrontierPoint) -> FrontierPoint:
    """``point`` with its means and sds recomputed from ``per_seed`` over all its seeds."""
    means = {name: statistics.fmean(point.per_seed[name]) for name in FIGURES}
    sds = {
        name: statistics.stdev(point.per_seed[name]) if len(point.seeds) > 1 else 0.0
        for name in FIGURES
    }
    return FrontierPoint(
        family=point.family,
        policy=point.policy,
        knobs=point.knobs,
        seeds=point.seeds,
        sd=sds,
        scenario=point.scenario,
        per_seed=point.per_seed,
        **means,
    )


# --- reading the results ------------------------------------------------------------------


def dominates(a: FrontierPoint, b: FrontierPoint) -> bool:
    """``a`` has no more node-hours and no more users waiting over 60 s than ``b``, and fewer
    of one."""
    no_worse = a.node_hours <= b.node_hours and a.waited_over_60s <= b.waited_over_60s
    better = a.node_hours < b.node_hours or a.waited_over_60s < b.waited_over_60s
    return no_worse and better


def pareto_front(points: Iterable[FrontierPoint]) -> list[FrontierPoint]:
    """The undominated points, cheapest first (ties: fewer waits first)."""
    pts = list(points)
    front = [p for p in pts if not any(dominates(q, p) for q in pts)]
    return sorted(front, key=lambda p: (p.node_hours, p.waited_over_60s, p.label()))


def baseline_point(points: Iterable[FrontierPoint]) -> FrontierPoint | None:
    """No placeholders: z2jh's static N = 0 (None when the sweep did not include it)."""
    for p in points:
        if p.family == "z2jh-static" and p.knobs.get("placeholders.count") == 0:
            return p
    return None


def recommend_point(
    points: Sequence[FrontierPoint], budget: float = 0.10, *, ours_only: bool = True
) -> FrontierPoint | None:
    """The recommended setting, by one rule for every scenario: among the points (ours only,
    by default: not z2jh's) whose mean node-hours stay within ``budget`` over no placeholders,
    the one with the fewest users waiting over 60 s; ties go to fewer failed spawns, then fewer
    node-hours.  None without a baseline or when no point fits the budget."""
    base = baseline_point(points)
    if base is None:
        return None
    limit = base.node_hours * (1 + budget)
    fits = [
        p
        for p in points
        if p.node_hours <= limit and (not ours_only or not p.family.startswith("z2jh"))
    ]
    if not fits:
        return None
    return min(fits, key=lambda p: (p.waited_over_60s, p.failed_spawns, p.node_hours, p.label()))


def cheapest_meeting(
    points: Sequence[FrontierPoint], p95_s: float = 60.0, *, ours_only: bool = True
) -> FrontierPoint | None:
    """The cheapest point (node-hours) whose mean p95 wait is at most ``p95_s``: the rule for a
    spike, where "no placeholders" is cheap only because most users never start, so a budget
    over it means nothing.  None when no point meets it."""
    fits = [
        p
        for p in points
        if p.wait_p95_s <= p95_s and (not ours_only or not p.family.startswith("z2jh"))
    ]
    if not fits:
        return None
    return min(fits, key=lambda p: (p.node_hours, p.waited_over_60s, p.label()))


def dominance(
    points: Sequence[FrontierPoint],
) -> list[tuple[FrontierPoint, FrontierPoint | None]]:
    """Issue 12's "our frontier dominates z2jh's": for each z2jh point (in the order given),
    our cheapest point (fewest node-hours; ties: fewer waits) with no more node-hours and no
    more users waiting over 60 s (means), equal counting, or None when we have none."""
    ours = [p for p in points if not p.family.startswith("z2jh")]
    rows: list[tuple[FrontierPoint, FrontierPoint | None]] = []
    for z in points:
        if not z.family.startswith("z2jh"):
            continue
        fits = [
            p
            for p in ours
            if p.node_hours <= z.node_hours and p.waited_over_60s <= z.waited_over_60s
        ]
        best = min(fits, key=lambda p: (p.node_hours, p.waited_over_60s, p.label()), default=None)
        rows.append((z, best))
    return rows


def dominance_table(points: Sequence[FrontierPoint]) -> str:
    """``dominance`` as Markdown: a table, one row per z2jh point, and a one-line verdict."""
    rows = dominance(points)
    lines = [
        "### Does ours dominate z2jh's?",
        "",
        "| z2jh point | node-hours | waited > 60 s | our cheapest point no worse on both "
        "| node-hours | waited > 60 s |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for z, ours in rows:
        mine = (
            f"`{ours.label()}` | {ours.node_hours:,.1f} | {ours.waited_over_60s:,.1f}"
            if ours is not None
            else "none | |"
        )
        lines.append(f"| `{z.label()}` | {z.node_hours:,.1f} | {z.waited_over_60s:,.1f} | {mine} |")
    missed = [z.label() for z, ours in rows if ours is None]
    verdict = f"{len(rows) - len(missed)} of {len(rows)} z2jh points dominated (or equalled)"
    if missed:
        verdict += "; not dominated: " + ", ".join(f"`{m}`" for m in missed)
    lines += ["", verdict + " (means over seeds)."]
    return "\n".join(lines)


def best_static_within(points: Sequence[FrontierPoint], node_hours: float) -> FrontierPoint | None:
    """The z2jh static point with the fewest users waiting over 60 s among those using no more
    than ``node_hours`` (the issue's comparison)."""
    fits = [p for p in points if p.family == "z2jh-static" and p.node_hours <= node_hours]
    if not fits:
        return None
    return min(fits, key=lambda p: (p.waited_over_60s, p.failed_spawns, p.node_hours))


# --- JSON ---------------------------------------------------------------------------------


def points_to_json(points: Sequence[FrontierPoint]) -> list[dict[str, Any]]:
    front = {id(p) for p in pareto_front(points)}
    out: list[dict[str, Any]] = []
    for p in points:
        item: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "scenario": p.scenario,
            "family": p.family,
            "policy": p.policy,
            "knobs": dict(p.knobs),
            "seeds": list(p.seeds),
        }
        for name in FIGURES:
            item[name] = round(p.figure(name), 4)
            item[f"{name}_sd"] = round(float(p.sd.get(name, 0.0)), 4)
        item["per_seed"] = {k: [round(x, 4) for x in p.per_seed.get(k, ())] for k in FIGURES}
        item["pareto"] = id(p) in front
        out.append(item)
    return out


def _number(item: Mapping[str, Any], key: str, where: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FrontierError(f"{where}.{key}: expected a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise FrontierError(f"{where}.{key}: expected a finite number >= 0, got {value!r}")
    return float(value)


def points_from_json(data: Any) -> list[FrontierPoint]:
    """Points from ``points_to_json``'s shape; ``FrontierError`` naming the field otherwise."""
    if not isinstance(data, list):
        raise FrontierError("frontier: expected a JSON list of points")
    points = []
    for i, item in enumerate(data):
        where = f"[{i}]"
        if not isinstance(item, dict):
            raise FrontierError(f"{where}: expected an object")
        if item.get("schema") != SCHEMA_VERSION:
            raise FrontierError(
                f"{where}.schema: expected {SCHEMA_VERSION}, got {item.get('schema')!r}"
            )
        for key in ("family", "policy", "scenario"):
            if not isinstance(item.get(key), str):
                raise FrontierError(f"{where}.{key}: expected a string")
        knobs = item.get("knobs")
        if not isinstance(knobs, dict) or not all(isinstance(k, str) for k in knobs):
            raise FrontierError(f"{where}.knobs: expected an object of dotted paths")
        seeds = item.get("seeds")
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        ):
            raise FrontierError(f"{where}.seeds: expected a non-empty list of integers")
        means = {name: _number(item, name, where) for name in FIGURES}
        sds = {name: _number(item, f"{name}_sd", where) for name in FIGURES}
        raw = item.get("per_seed", {})
        if not isinstance(raw, dict):
            raise FrontierError(f"{where}.per_seed: expected an object")
        per_seed: dict[str, tuple[float, ...]] = {}
        for name, values in raw.items():
            if (
                name not in FIGURES
                or not isinstance(values, list)
                or len(values) != len(seeds)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            ):
                raise FrontierError(
                    f"{where}.per_seed.{name}: expected one number per seed of a known figure"
                )
            per_seed[name] = tuple(float(v) for v in values)
        points.append(
            FrontierPoint(
                family=item["family"],
                policy=item["policy"],
                knobs=knobs,
                seeds=tuple(seeds),
                sd=sds,
                scenario=item["scenario"],
                per_seed=per_seed,
                **means,
            )
        )
    return points


def read_frontier(path: Path) -> list[FrontierPoint]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FrontierError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise FrontierError(f"{path}: not JSON: {exc}") from None
    return points_from_json(data)


# --- output -------------------------------------------------------------------------------


def plot_frontier(points: Sequence[FrontierPoint], path: Path, title: str = "") -> None:
    """Node-hours (x) against users waiting over 60 s (y), one line per family, the Pareto front
    as a dashed step line with circled points."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    families: dict[str, list[FrontierPoint]] = {}
    for p in points:
        families.setdefault(p.family, []).append(p)
    # One colour per mode, shared by its +taint family (dashed): the default cycle's 10
    # colours would repeat across 11 or more families.
    colours = plt.get_cmap("tab10").colors
    modes: dict[str, int] = {}
    for name, members in families.items():
        colour = colours[modes.setdefault(name.removesuffix("+taint"), len(modes)) % 10]
        pts = sorted(members, key=lambda p: p.node_hours)
        style = "s-" if name.startswith("z2jh") else ("o--" if "+taint" in name else "o-")
        ax.errorbar(
            [p.node_hours for p in pts],
            [p.waited_over_60s for p in pts],
            xerr=[p.sd.get("node_hours", 0.0) for p in pts],
            yerr=[p.sd.get("waited_over_60s", 0.0) for p in pts],
            fmt=style,
            color=colour,
            label=name,
            capsize=2,
            markersize=4,
            linewidth=1.2,
            alpha=0.85,
        )
    front = pareto_front(points)
    if front:
        ax.step(
            [p.node_hours for p in front],
            [p.waited_over_60s for p in front],
            where="post",
            color="black",
            linestyle=":",
            linewidth=1,
            label="Pareto front",
        )
        ax.scatter(
            [p.node_hours for p in front],
            [p.waited_over_60s for p in front],
            s=140,
            facecolors="none",
            edgecolors="black",
            zorder=5,
        )
    ax.set_xlabel("node-hours (mean over seeds)")
    ax.set_ylabel("users waiting > 60 s (incl. failed spawns)")
    ax.set_yscale("symlog", linthresh=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_frontier(
    points: Sequence[FrontierPoint], out_dir: Path, *, plot: bool = True, title: str = ""
) -> list[Path]:
    """``out_dir/frontier.json`` and, with ``plot``, ``out_dir/frontier.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "frontier.json"
    path.write_text(json.dumps(points_to_json(points), indent=1) + "\n", encoding="utf-8")
    written = [path]
    if plot:
        png = out_dir / "frontier.png"
        plot_frontier(points, png, title)
        written.append(png)
    return written
