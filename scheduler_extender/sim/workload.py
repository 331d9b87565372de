"""Users as data: generated from a scenario, or replayed from a CSV trace.

The workload is drawn from its own seeded stream, *before* any policy runs, so every policy of a
seed sees exactly the same users (same arrivals, requests, images and activity).  What a policy
changes is only when each user starts running and therefore when the culler removes them.

Trace format (CSV with a header; extra columns are ignored)::

    arrival,last_activity,cpu,memory,image,profile
    0,1260,50m,512Mi,jupyter/scipy-notebook:2024-01-01,default
    35.5,,,,,

``arrival`` is seconds from the start of the run or an ISO 8601 timestamp (then counted from the
earliest arrival).  Give either ``last_activity`` (the culler then removes the server after
``timeout``, on its next pass) or ``end`` (the user stopped the server then), in the same form;
the activity length is measured from arrival.  Empty cells take the first profile's value.

An optional ``open`` column (``true``/``1``/``yes``; empty or ``false``/``0``/``no`` otherwise)
marks a session that was still running when the trace was taken (``scheduler-extender trace``
writes it): its ``end`` is only the moment it was last seen, so the replay keeps the server
until the end of the run (or until the culler's ``max_age``) instead of stopping it there.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scheduler_extender.kube.convert import ConversionError, base_units, millicores, normalize_image
from scheduler_extender.sim.scenario import Profile, Scenario, ScenarioError

WEEK = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class UserSpec:
    """One user's visit.  ``activity`` counts from the moment their server runs; ``stop_after``
    (trace ``end`` column) is an explicit stop instead of culling, also from server start."""

    index: int
    arrival: float
    profile: str
    cpu: int
    memory: int
    image: str
    activity: float
    stop_after: float | None = None
    #: Still running when the trace ended: stays until the run ends (or max_age culls it).
    open: bool = False


def workload_rng(seed: int) -> random.Random:
    """The stream users are drawn from; independent of the simulation's own streams."""
    return random.Random(seed * 7919 + 17)


def _rate_factor(t: float, hourly: Sequence[float], weekly: Sequence[float]) -> float:
    hour = int(t // 3600) % 24
    day = int(t // 86400) % 7
    return hourly[hour] * weekly[day]


def _poisson_arrivals(scenario: Scenario, rng: random.Random) -> list[float]:
    spec = scenario.users.arrivals
    if spec.peak_per_minute > 0:
        scale = spec.peak_per_minute / 60.0 / (max(spec.hourly) * max(spec.weekly))
    elif spec.rate_per_minute > 0:
        mean_h = sum(spec.hourly) / 24
        mean_w = sum(spec.weekly) / 7
        scale = spec.rate_per_minute / 60.0 / (mean_h * mean_w)
    else:
        return []
    peak = scale * max(spec.hourly) * max(spec.weekly)
    out: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= scenario.duration:
            return out
        # Thinning (Lewis and Shedler): accept with probability rate(t) / peak.
        if rng.random() * peak < scale * _rate_factor(t, spec.hourly, spec.weekly):
            out.append(t)


def _pick(profiles: Sequence[Profile], rng: random.Random) -> Profile:
    if len(profiles) == 1:
        return profiles[0]
    return rng.choices(list(profiles), weights=[p.weight for p in profiles])[0]


def _activity(profile: Profile, rng: random.Random) -> float:
    spec = profile.activity
    if spec.distribution == "exponential":
        median = max(spec.median, 1e-9)
        return min(spec.max, rng.expovariate(math.log(2) / median))
    if spec.sigma == 0:
        return min(spec.median, spec.max)
    return min(spec.max, math.exp(rng.gauss(math.log(max(spec.median, 1e-9)), spec.sigma)))


def generate_users(scenario: Scenario, seed: int) -> list[UserSpec]:
    """The users of ``scenario`` for ``seed``: Poisson arrivals plus bursts, or the trace."""
    if scenario.users.trace:
        base = Path(scenario.base_dir) if scenario.base_dir else Path.cwd()
        path = Path(scenario.users.trace)
        return read_trace(path if path.is_absolute() else base / path, scenario)
    rng = workload_rng(seed)
    profiles = scenario.users.profiles
    by_name = {p.name: p for p in profiles}
    drawn: list[tuple[float, Profile]] = [
        (t, _pick(profiles, rng)) for t in _poisson_arrivals(scenario, rng)
    ]
    for burst in scenario.users.bursts:
        for _ in range(burst.count):
            t = burst.at + rng.random() * burst.over
            if t < scenario.duration:
                prof = by_name[burst.profile] if burst.profile else _pick(profiles, rng)
                drawn.append((t, prof))
    drawn.sort(key=lambda item: item[0])
    users = []
    for i, (t, prof) in enumerate(drawn):
        users.append(
            UserSpec(i, t, prof.name, prof.cpu, prof.memory, normalize_image(prof.image),
                     _activity(prof, rng))
        )  # fmt: skip
    return users


def _time(value: str, where: str) -> float | datetime:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(
            f"{where}: expected seconds or an ISO 8601 time, got {value!r}"
        ) from None


def read_trace(path: Path, scenario: Scenario) -> list[UserSpec]:
    """Users from a CSV trace (format in the module docstring)."""
    if not path.is_file():
        raise ScenarioError(f"trace file not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return users_from_rows(rows, scenario, str(path))


def users_from_rows(
    rows: Iterable[dict[str, str]], scenario: Scenario, source: str
) -> list[UserSpec]:
    default = scenario.users.profiles[0]
    parsed: list[tuple[float | datetime, float | datetime, bool, dict[str, str], str]] = []
    for n, row in enumerate(rows, start=2):
        where = f"{source} line {n}"
        if not (row.get("arrival") or "").strip():
            raise ScenarioError(f"{where}: arrival is required")
        stop = (row.get("end") or "").strip()
        last = (row.get("last_activity") or "").strip()
        if bool(stop) == bool(last):
            raise ScenarioError(f"{where}: give exactly one of last_activity or end")
        arrival = _time(row["arrival"].strip(), f"{where} arrival")
        finish = _time(stop or last, f"{where} {'end' if stop else 'last_activity'}")
        if type(arrival) is not type(finish):
            raise ScenarioError(f"{where}: arrival and end must both be seconds or both timestamps")
        parsed.append((arrival, finish, bool(stop), row, where))
    if not parsed:
        raise ScenarioError(f"{source}: the trace has no rows")
    origin = min(p[0] for p in parsed)  # type: ignore[type-var,unused-ignore]
    users: list[UserSpec] = []
    for arrival, finish, explicit, row, where in parsed:
        if (
            isinstance(arrival, datetime)
            and isinstance(finish, datetime)
            and isinstance(origin, datetime)
        ):
            t0, t1 = (arrival - origin).total_seconds(), (finish - origin).total_seconds()
        else:
            t0, t1 = float(arrival), float(finish)  # type: ignore[arg-type]
        if t1 < t0:
            raise ScenarioError(f"{where}: the session ends before it arrives")
        try:
            cpu = millicores(row["cpu"], "cpu") if row.get("cpu") else default.cpu
            mem = base_units(row["memory"], "memory") if row.get("memory") else default.memory
        except ConversionError as exc:
            raise ScenarioError(f"{where}: {exc.problem}") from None
        image = normalize_image(row.get("image") or default.image)
        profile = row.get("profile") or default.name
        is_open = _flag(row.get("open"), f"{where} open")
        length = t1 - t0
        users.append(
            UserSpec(0, t0, profile, cpu, mem, image,
                     activity=length, stop_after=length if explicit else None, open=is_open)
        )  # fmt: skip
    users.sort(key=lambda u: u.arrival)
    return [
        UserSpec(i, u.arrival, u.profile, u.cpu, u.memory, u.image, u.activity, u.stop_after,
                 u.open)
        for i, u in enumerate(users)
    ]  # fmt: skip


_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"", "0", "false", "no"})


def _flag(value: str | None, where: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ScenarioError(f"{where}: expected true or false, got {value!r}")


def cull_time(last_activity: float, scenario: Scenario, started: float) -> float:
    """When jupyterhub-idle-culler removes a server whose last activity was at
    ``last_activity``: on the first pass (every ``every`` seconds from the start of the run) at
    which it has been idle for ``timeout`` seconds, or has lived ``max_age`` seconds."""
    culler = scenario.culler
    due = last_activity + culler.timeout
    if culler.max_age > 0:
        due = min(due, started + culler.max_age)
    return math.ceil(due / culler.every - 1e-9) * culler.every


def departure(user: UserSpec, scenario: Scenario, started: float) -> float:
    """When the server of ``user``, running since ``started``, is removed."""
    if user.open:
        # Its real end is after the trace, unknown: it runs to the end of the trace (``duration``;
        # the drain tail cannot wait for it) unless the culler's age limit removes it first.
        end = max(started, scenario.duration)
        if scenario.culler.max_age > 0:
            return min(end, cull_time(math.inf, scenario, started))
        return end
    if user.stop_after is not None:
        end = started + user.stop_after
        if scenario.culler.max_age > 0:
            return min(end, cull_time(math.inf, scenario, started))
        return end
    return cull_time(started + user.activity, scenario, started)


def lower_bound_node_hours(users: Sequence[UserSpec], scenario: Scenario) -> float:
    """Node-hours no scheduler and no autoscaler can beat: at each instant the max over cpu,
    memory and pods of ceil(total user requests / per-node allocatable), integrated over the run.
    Users are taken to run from arrival (zero wait) to their departure, so the bound is the same
    for every policy; with ``drain_tail`` it includes the tail after ``duration``."""
    series = lower_bound_series(users, scenario)
    total = 0.0
    for (t0, need), (t1, _) in itertools.pairwise(series):
        total += need * (t1 - t0)
    return total / 3600.0


def lower_bound_series(users: Sequence[UserSpec], scenario: Scenario) -> list[tuple[float, int]]:
    """The lower bound's node count as a step function: ``(time, nodes)`` from each change on,
    ending with a point at the end of the run."""
    pool = scenario.pool
    events: list[tuple[float, int, int, int]] = []
    for user in users:
        end = departure(user, scenario, user.arrival)
        if not scenario.drain_tail:
            end = min(end, scenario.duration)
        if end <= user.arrival:
            continue
        events.append((user.arrival, user.cpu, user.memory, 1))
        events.append((end, -user.cpu, -user.memory, -1))
    events.sort(key=lambda e: (e[0], e[3]))
    cpu = mem = pods = 0
    series: list[tuple[float, int]] = [(0.0, 0)]
    for t, dc, dm, dp in events:
        cpu, mem, pods = cpu + dc, mem + dm, pods + dp
        need = max(
            math.ceil(cpu / pool.cpu) if pool.cpu else 0,
            math.ceil(mem / pool.memory) if pool.memory else 0,
            math.ceil(pods / pool.pods),
        )
        if series[-1][0] == t:
            series[-1] = (t, need)
        elif series[-1][1] != need:
            series.append((t, need))
    series.append((max(scenario.duration, series[-1][0]), series[-1][1]))
    return series
