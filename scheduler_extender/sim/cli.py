"""``scheduler-extender simulate``: compare scheduling policies on a simulated hub.

Examples::

    scheduler-extender simulate --scenario mybinder-week --policies default,z2jh,extender
    scheduler-extender simulate --scenario classroom-spike --seeds 5 --placeholders 50
    scheduler-extender simulate --scenario mybinder-week --placeholder-mode adaptive
    scheduler-extender simulate --scenario my-hub.yaml --trace last-week.csv --out results/
    scheduler-extender simulate --scenario anchor-day --set autoscaler.mode=ideal

Prints a markdown table (mean ± sd over seeds) and writes ``results.json``, ``table.md``,
``nodes.png`` and ``waits.png`` under ``--out``.  A bad argument or scenario field exits with
status 2 and a message naming it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from scheduler_extender.sim.metrics import RunResult
from scheduler_extender.sim.report import (
    PlottingUnavailableError,
    markdown,
    plot_nodes,
    plot_waits,
    write_json,
)
from scheduler_extender.sim.runner import run_one
from scheduler_extender.sim.scenario import (
    Scenario,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    with_overrides,
)
from scheduler_extender.sim.scheduler import POLICIES, PolicyError, Profile, parse_policy
from scheduler_extender.sim.workload import generate_users

DEFAULT_POLICIES = "default,z2jh,extender"


def split_policies(text: str) -> list[str]:
    """Split on commas outside ``[...]``: ``a,b[x=1,y=2]`` -> ``a``, ``b[x=1,y=2]``."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scheduler-extender simulate",
        description="Simulate a hub under several scheduling policies and compare node-hours "
        "and user wait. Policies: "
        + ", ".join(POLICIES)
        + "; variants as name[key=value,...], e.g. 'extender[weight=5]'.",
    )
    p.add_argument("--scenario", default="mybinder-week", help="built-in name or YAML path")
    p.add_argument("--policies", default=DEFAULT_POLICIES, help="comma-separated policies")
    p.add_argument("--seeds", type=int, default=3, help="run seeds 1..N (default 3)")
    p.add_argument("--seed-list", help="explicit comma-separated seeds (overrides --seeds)")
    p.add_argument("--hours", type=float, help="override the scenario's duration")
    p.add_argument("--autoscaler", choices=["realistic", "ideal"], help="autoscaler model")
    p.add_argument("--placeholders", type=int, help="static placeholder count")
    p.add_argument(
        "--placeholder-mode",
        choices=["none", "static", "adaptive", "schedule"],
        help="how the placeholder controller sizes its pool (docs/placeholders.md)",
    )
    p.add_argument(
        "--placeholder-size", choices=["user", "node"], help="one user's guarantee or a node"
    )
    p.add_argument("--trace", help="CSV trace of users (replaces generated arrivals)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any scenario field, e.g. autoscaler.provisioning.max=10m",
    )
    p.add_argument("--out", default="sim-results", help="output directory")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--list-scenarios", action="store_true", help="list built-in scenarios")
    return p


def build_scenario(args: argparse.Namespace) -> Scenario:
    scenario = load_scenario(args.scenario)
    overrides = list(args.set)
    if args.hours is not None:
        if not 0 < args.hours <= 366 * 24:
            raise ScenarioError("--hours: must be > 0 and at most a year (8784)")
        overrides.append(f"duration={args.hours * 3600}")
    if args.autoscaler:
        overrides.append(f"autoscaler.mode={args.autoscaler}")
    if args.placeholders is not None:
        overrides.append(f"placeholders.count={args.placeholders}")
    if args.placeholder_mode:
        overrides.append(f"placeholders.mode={args.placeholder_mode}")
    if args.placeholder_size:
        overrides.append(f"placeholders.size={args.placeholder_size}")
    if args.trace:
        trace = Path(args.trace).resolve()
        if not trace.is_file():
            raise ScenarioError(f"--trace: file not found: {args.trace}")
        overrides.append(f"users.trace={trace}")
    return with_overrides(scenario, overrides) if overrides else scenario


def seeds_of(args: argparse.Namespace) -> list[int]:
    if args.seed_list:
        try:
            seeds = [int(s) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise ScenarioError(f"--seed-list: not a list of integers: {args.seed_list}") from None
        if not seeds:
            raise ScenarioError("--seed-list: no seeds")
        return seeds
    if args.seeds < 1:
        raise ScenarioError("--seeds: must be >= 1")
    return list(range(1, args.seeds + 1))


def _run(task: tuple[Scenario, Profile, int]) -> RunResult:
    scenario, profile, seed = task
    return run_one(scenario, profile, seed)


def run_all(
    scenario: Scenario,
    profiles: Sequence[Profile],
    seeds: Sequence[int],
    *,
    jobs: int = 1,
    console: Console | None = None,
) -> list[RunResult]:
    """Every profile on every seed, with a progress bar on ``console`` (None: silent)."""
    tasks = [(scenario, profile, seed) for seed in seeds for profile in profiles]
    results: list[RunResult] = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
        transient=False,
    ) as progress:
        bar = progress.add_task(
            f"{scenario.name}: {len(profiles)} policies x {len(seeds)} seeds",
            total=len(tasks) * scenario.duration,
        )
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for result in pool.map(_run, tasks):
                    results.append(result)
                    progress.advance(bar, scenario.duration)
            return results
        users_by_seed = {seed: generate_users(scenario, seed) for seed in seeds}
        for scen, profile, seed in tasks:
            done = 0.0

            def tick(t: float) -> None:
                nonlocal done
                progress.advance(bar, t - done)
                done = t

            progress.update(bar, description=f"{scenario.name}: {profile.name}, seed {seed}")
            results.append(run_one(scen, profile, seed, users=users_by_seed[seed], progress=tick))
        progress.update(bar, description=f"{scenario.name}: done")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    console = Console(stderr=True)
    if args.list_scenarios:
        for name in builtin_scenarios():
            print(f"{name}: {load_scenario(name).description}")
        return 0
    try:
        scenario = build_scenario(args)
        profiles = [parse_policy(p) for p in split_policies(args.policies)]
        if not profiles:
            raise PolicyError("--policies: no policy given")
        if len({p.name for p in profiles}) != len(profiles):
            raise PolicyError("--policies: a policy is listed twice")
        seeds = seeds_of(args)
        if args.jobs < 1:
            raise ScenarioError("--jobs: must be >= 1")
        generate_users(scenario, seeds[0])  # validate a trace before the long part
    except (ScenarioError, PolicyError) as exc:
        print(f"scheduler-extender simulate: error: {exc}", file=sys.stderr)
        return 2
    results = run_all(
        scenario, profiles, seeds, jobs=args.jobs, console=None if args.quiet else console
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(scenario, results)
    print(table)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    write_json(out / "results.json", scenario, results)
    written = [out / "results.json", out / "table.md"]
    if not args.no_plots:
        users = generate_users(scenario, min(seeds))
        try:
            plot_nodes(out / "nodes.png", scenario, results, users)
            plot_waits(out / "waits.png", scenario, results)
            written += [out / "nodes.png", out / "waits.png"]
        except PlottingUnavailableError as exc:
            print(f"scheduler-extender simulate: no plots: {exc}", file=sys.stderr)
    print()
    for path in written:
        print(f"wrote {path}")
    return 0
