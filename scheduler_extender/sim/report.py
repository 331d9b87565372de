"""Outputs of a comparison: markdown tables, a JSON file and PNG plots.

Tables show the mean over seeds and, with several seeds, the standard deviation (``mean ± sd``).
Plots use matplotlib's non-interactive Agg backend (no display needed): nodes over time per
policy (first seed) against the lower bound, and the wait distribution as a complementary CDF
(all seeds), which shows the tail that matters.  matplotlib is the ``sim`` extra
(``pip install 'scheduler-extender[sim]'``), imported only when a plot is drawn, so the
service's image does not carry it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scheduler_extender.sim.metrics import PolicySummary, RunResult, summarize
from scheduler_extender.sim.scenario import Scenario
from scheduler_extender.sim.workload import UserSpec, lower_bound_series


class PlottingUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlottingUnavailableError(
            "plots need matplotlib: pip install 'scheduler-extender[sim]', or pass --no-plots"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt(value: float, digits: int) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def cell(summary: PolicySummary, name: str, digits: int = 1) -> str:
    spread = summary.figures[name]
    if len(summary.seeds) > 1 and spread.sd > 0:
        return f"{_fmt(spread.mean, digits)} ± {_fmt(spread.sd, digits)}"
    return _fmt(spread.mean, digits)


def comparison_table(summaries: Sequence[PolicySummary]) -> str:
    """The main table: node-hours, the lower-bound ratio, autoscaling and user wait."""
    head = (
        "| policy | node-hours | × lower bound | peak nodes | scale-ups | nodes removed "
        "| wait p50 s | p95 s | p99 s | max s | waited > 60 s | failed spawns "
        "| placeholder node-h | waited on a pull | preemptions |"
    )
    lines = [head, "|" + "---|" * 15]
    for s in summaries:
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{s.policy}`",
                    cell(s, "node_hours"),
                    cell(s, "ratio", 2),
                    cell(s, "peak_nodes"),
                    cell(s, "scale_ups"),
                    cell(s, "nodes_removed"),
                    cell(s, "wait_p50"),
                    cell(s, "wait_p95"),
                    cell(s, "wait_p99"),
                    cell(s, "wait_max"),
                    cell(s, "waited_over_60s"),
                    cell(s, "failed_spawns"),
                    cell(s, "placeholder_node_hours"),
                    cell(s, "image_pull_waits"),
                    cell(s, "preemptions"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def breakdown_table(summaries: Sequence[PolicySummary]) -> str:
    """Where the node-hours went (means over seeds)."""
    lines = [
        "| policy | node-hours | lower bound | occupied (≥ 1 user) | of which above the bound "
        "| provisioning | placeholders only | empty | drain tail (h) | in the tail |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        above = s.mean("occupied_node_hours") - s.mean("lower_bound")
        lines.append(
            f"| `{s.policy}` | {_fmt(s.mean('node_hours'), 1)} | {_fmt(s.mean('lower_bound'), 1)} "
            f"| {_fmt(s.mean('occupied_node_hours'), 1)} | {_fmt(above, 1)} "
            f"| {_fmt(s.mean('provisioning_node_hours'), 1)} "
            f"| {_fmt(s.mean('placeholder_only_node_hours'), 1)} "
            f"| {_fmt(s.mean('empty_node_hours'), 1)} "
            f"| {_fmt(s.mean('tail_hours'), 1)} | {_fmt(s.mean('tail_node_hours'), 1)} |"
        )
    return "\n".join(lines)


def markdown(scenario: Scenario, results: Sequence[RunResult]) -> str:
    summaries = summarize(results)
    seeds = sorted({r.seed for r in results})
    users = sorted({r.users for r in results})
    tail = " and the drain tail" if scenario.drain_tail else ""
    title = (
        f"### {scenario.name}: {scenario.duration / 3600:g} h{tail}, {scenario.autoscaler.mode} "
        f"autoscaler, seeds {', '.join(map(str, seeds))}"
    )
    note = (
        f"Users per seed: {', '.join(map(str, users))}. Mean"
        + (" ± standard deviation" if len(seeds) > 1 else "")
        + " over seeds. Node-hours are billed from the scale-up request to the deletion. "
        "Waits count a failed spawn as the whole start timeout. The lower bound assumes every "
        "user runs from arrival, so it exceeds node-hours when many spawns fail."
    )
    return "\n\n".join(
        [title, note, comparison_table(summaries), "Where the node-hours went:",
         breakdown_table(summaries)]
    )  # fmt: skip


def to_json(scenario: Scenario, results: Sequence[RunResult]) -> dict[str, Any]:
    return {
        "scenario": scenario.model_dump(mode="json", exclude={"base_dir"}),
        "runs": [r.summary() for r in results],
        "summary": [s.as_dict() for s in summarize(results)],
    }


def write_json(path: Path, scenario: Scenario, results: Sequence[RunResult]) -> None:
    path.write_text(json.dumps(to_json(scenario, results), indent=2) + "\n", encoding="utf-8")


def plot_nodes(
    path: Path, scenario: Scenario, results: Sequence[RunResult], users: Sequence[UserSpec]
) -> None:
    """Nodes over time for each policy (first seed), with the lower bound's node count."""
    first = min(r.seed for r in results)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    hours = max([scenario.duration / 3600, *(r.hours for r in results if r.seed == first)])
    for r in results:
        if r.seed != first:
            continue
        xs = [t / 3600 for t, _ in r.timeline] + [r.hours]
        ys = [n for _, n in r.timeline] + [r.timeline[-1][1] if r.timeline else 0]
        ax.step(xs, ys, where="post", label=f"{r.policy} ({r.node_hours:,.0f} node-h)")
    bound = lower_bound_series(users, scenario)
    ax.fill_between(
        [t / 3600 for t, _ in bound],
        [n for _, n in bound],
        step="post",
        color="grey",
        alpha=0.25,
        linewidth=0,
        label="lower bound",
    )
    if hours > scenario.duration / 3600:
        ax.axvline(scenario.duration / 3600, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            "arrivals stop: drain tail",
            (scenario.duration / 3600, 0),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=8,
            color="grey",
        )
    ax.set_xlabel("hours")
    ax.set_ylabel("nodes")
    ax.set_xlim(0, hours)
    ax.set_title(f"{scenario.name}: nodes over time (seed {first}, {scenario.autoscaler.mode})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_waits(path: Path, scenario: Scenario, results: Sequence[RunResult]) -> None:
    """The wait distribution as a complementary CDF: the share of users (all seeds) still
    waiting after x seconds, on a log scale so the tail shows.  Failed spawns never start: they
    stay in the curve to its right end, past the start timeout."""
    timeout = scenario.spawner.start_timeout
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    by_policy: dict[str, tuple[list[float], int]] = {}
    for r in results:
        waits, failed = by_policy.get(r.policy, ([], 0))
        waits.extend(r.waits)
        by_policy[r.policy] = (waits, failed + r.failed_spawns)
    right = timeout * 1.2
    floor = 1.0
    for policy, (waits, failed) in by_policy.items():
        total = len(waits) + failed
        if total == 0:
            continue
        ordered = sorted(waits)
        xs = [0.0]
        ys = [1.0]
        for i, w in enumerate(ordered):
            xs.append(min(w, right))
            ys.append(max((total - i - 1) / total, 0.0))
        xs.append(right)
        ys.append(failed / total)
        floor = min(floor, min((y for y in ys if y > 0), default=1.0))
        ax.step(xs, [max(y, 1e-7) for y in ys], where="post", label=f"{policy}")
    ax.axvline(60, color="grey", linestyle=":", linewidth=1, label="60 s")
    ax.axvline(timeout, color="red", linestyle=":", linewidth=1, label="start timeout")
    ax.set_yscale("log")
    ax.set_ylim(max(floor / 2, 1e-6), 1.05)
    ax.set_xlim(0, right)
    ax.set_xlabel("seconds since arrival")
    ax.set_ylabel("share of users not yet running (log)")
    ax.set_title(f"{scenario.name}: user wait, complementary CDF (all seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
