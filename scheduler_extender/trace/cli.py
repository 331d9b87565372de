"""``scheduler-extender trace prometheus``: a hub's history as a simulator trace.

    scheduler-extender trace prometheus --url http://prometheus.example:9090 --since 14d \\
        --namespace jhub --out trace.csv
    scheduler-extender simulate --scenario my-hub.yaml --trace trace.csv

The output file appears only when the whole import succeeded (written beside it under a
temporary name, then renamed); any error is one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from scheduler_extender.trace.prometheus import (
    MIN_WINDOW,
    Importer,
    Prometheus,
    PrometheusError,
    Selection,
    parse_selector,
)
from scheduler_extender.trace.sessions import TRACE_COLUMNS, Summary, assemble, iso, trace_row
from scheduler_extender.validation import parse_duration

PROG = "scheduler-extender trace"


class TraceError(Exception):
    """Bad input or a failed import; ``str()`` is the one-line message."""


def parse_time(value: str, flag: str, *, now: float) -> float:
    """``now``, an ISO 8601 time, or a duration before ``now`` (``14d``)."""
    text = value.strip()
    if text == "now":
        return now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TraceError(
            f"{flag}: expected 'now', a duration (14d, 12h) or an ISO 8601 time, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _seconds(value: str, flag: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise TraceError(f"{flag}: {exc}") from None
    if seconds <= 0:
        raise TraceError(f"{flag}: must be > 0")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="A hub's history as a trace for `scheduler-extender simulate`."
    )
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    p = sources.add_parser(
        "prometheus",
        help="user pods from kube-state-metrics series in Prometheus",
        description="Read user pods' creation, deletion and requests from Prometheus "
        "(kube-state-metrics) and write the simulator's trace CSV.",
    )
    p.add_argument("--url", required=True, help="Prometheus base URL (http://host:9090)")
    p.add_argument(
        "--since", required=True, help="start: a duration before --until (14d) or an ISO time"
    )
    p.add_argument(
        "--until", default="now", help="end: 'now' (default), a duration ago or an ISO time"
    )
    p.add_argument(
        "--selector",
        default="component=singleuser-server",
        help="pod labels of user servers (default: %(default)s); '' selects by name only",
    )
    p.add_argument(
        "--pod-name-pattern",
        default="jupyter-.*",
        help="regex on pod names, used when kube_pod_labels lacks the selector's labels "
        "(KubeSpawner's default pod_name_template gives jupyter-<user>; default: %(default)s)",
    )
    p.add_argument("--namespace", help="only this namespace (default: all)")
    p.add_argument("--container", default="notebook", help="container whose image is recorded")
    p.add_argument("--bearer-token-file", help="send this file's token as Authorization: Bearer")
    p.add_argument("--ca-file", help="CA bundle to verify Prometheus's TLS certificate")
    p.add_argument("--timeout", default="30s", help="per-request timeout (default: %(default)s)")
    p.add_argument(
        "--window",
        default="1d",
        help="time asked per query (default: %(default)s); "
        "halved automatically when Prometheus finds it too large",
    )
    p.add_argument("--out", required=True, help="trace CSV to write")
    return parser  # fmt: skip


def write_atomically(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """Write the CSV under a temporary name beside ``path``, then rename it into place."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise TraceError(f"--out: directory not found: {directory}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=TRACE_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def report(path: Path, summary: Summary, why: str, described: str) -> list[str]:
    lines = [
        f"selected user pods by {described}: {why}",
        f"wrote {path}: {summary.sessions} sessions",
        f"  ended by deletion timestamp: {summary.by_deletion_timestamp}, "
        f"by last sample: {summary.by_last_sample}, still running at --until "
        f"(open=true): {summary.open}",
    ]
    if summary.started_before:
        lines.append(
            f"  {summary.started_before} already running at --since: arrival set to --since "
            "(true creation time in the 'created' column)"
        )
    if summary.recreated_names:
        lines.append(
            f"  {summary.recreated_names} pod names were reused by a new pod (new uid): "
            "one session each"
        )
    if summary.missing_cpu or summary.missing_memory:
        lines.append(
            f"  no requests exported: cpu for {summary.missing_cpu}, memory for "
            f"{summary.missing_memory} sessions; left empty, the simulator uses the scenario's "
            "first profile for them"
        )
    if summary.dropped:
        lines.append(
            f"  skipped {len(summary.dropped)} pods without kube_pod_created "
            f"(e.g. {summary.dropped[0]})"
        )
    return lines


def run(args: argparse.Namespace, *, now: float) -> list[str]:
    until = parse_time(args.until, "--until", now=now)
    since = parse_time(args.since, "--since", now=until)
    if since >= until:
        raise TraceError(f"--since ({iso(since)}) must be before --until ({iso(until)})")
    try:
        labels = parse_selector(args.selector)
    except ValueError as exc:
        raise TraceError(str(exc)) from None
    wanted = Selection(
        namespace=args.namespace or None,
        labels=labels or None,
        pod_pattern=args.pod_name_pattern,
        container=args.container,
    )
    token = None
    if args.bearer_token_file:
        try:
            token = Path(args.bearer_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TraceError(f"--bearer-token-file: {exc.strerror}: {exc.filename}") from None
    out = Path(args.out)
    timeout = _seconds(args.timeout, "--timeout")
    window = _seconds(args.window, "--window")
    if window < 2 * MIN_WINDOW:
        raise TraceError(f"--window: at least {2 * MIN_WINDOW:.0f} s")
    if args.ca_file and not Path(args.ca_file).is_file():
        raise TraceError(f"--ca-file: file not found: {args.ca_file}")
    console = Console(stderr=True)
    with contextlib.ExitStack() as stack:
        prom = stack.enter_context(
            Prometheus(args.url, timeout=timeout, token=token, ca_file=args.ca_file)
        )
        report_progress: Callable[[float], None] | None = None
        if console.is_terminal:  # a bar on a terminal only (rich 13.0 prints even when disabled)
            bar = stack.enter_context(
                Progress(
                    TextColumn("importing"), BarColumn(), TextColumn("{task.fields[day]}"),
                    TimeElapsedColumn(), console=console, transient=True,
                )
            )  # fmt: skip
            task = bar.add_task("import", total=until - since, day="")

            def report_progress(done_until: float) -> None:
                bar.update(task, completed=done_until - since, day=iso(done_until)[:16])

        result = Importer(prom, window=window, progress=report_progress).run(since, until, wanted)
    sessions, summary = assemble(
        result.pods, since=since, until=until, present_at_end=result.present_at_end
    )
    write_atomically(out, (trace_row(s) for s in sessions))
    lines = report(out, summary, result.why, result.selection.describe())
    lines.append(
        f"  {iso(since)} .. {iso(until)}: {result.windows} windows, {result.splits} split "
        f"(too large for Prometheus), {result.queries} queries"
    )
    return lines


def main(argv: Sequence[str], *, clock: Callable[[], float] = time.time) -> int:
    args = build_parser().parse_args(list(argv))
    try:
        lines = run(args, now=clock())
    except (TraceError, PrometheusError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: error: {exc.strerror or exc}: {exc.filename or args.out}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
