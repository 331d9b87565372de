"""Import speed and memory of ``scheduler-extender trace prometheus`` on a month of a big hub.

Generates 30 days of kube-state-metrics series for a 3,000-user hub (seeded; weekday/weekend
and daytime shape, lognormal session lengths), backfills them into a real Prometheus (Debian's
package) with ``promtool tsdb create-blocks-from openmetrics``, then runs the import in a child
process, which reports its wall time and peak RSS (``resource.getrusage``), so neither the
generator nor Prometheus inflates the figures.

    .venv/bin/python benchmarks/trace_import.py                 # 3,000 users, 30 days
    .venv/bin/python benchmarks/trace_import.py --users 300 --days 3   # a quick look

Prints: pods in the data, samples, backfill time, import wall time, pods/s, Prometheus queries,
window splits, and the importer's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.trace.promserver import MISSING, backfill, prometheus_server

DAY = 86400.0
GIB = 2**30


def sessions(users: int, days: int, start: float, seed: int) -> Iterator[tuple[int, float, float]]:
    """(user, created, gone) for every server start: weekdays busier than weekends, arrivals
    mostly 8:00-20:00, lengths lognormal (median 50 min, capped at 8 h)."""
    rng = random.Random(seed)
    for day in range(days):
        weekend = (day % 7) in (5, 6)
        for user in range(users):
            starts = 0
            p = 0.25 if weekend else 0.7
            while rng.random() < p and starts < 3:
                starts += 1
                p *= 0.4
            for _ in range(starts):
                hour = min(23.9, max(0.0, rng.gauss(14, 3.5)))
                created = start + day * DAY + hour * 3600 + rng.random() * 60
                length = min(8 * 3600, math.exp(rng.gauss(math.log(3000), 0.9)))
                yield user, created, created + max(120.0, length)


def write_history(
    path: Path, users: int, days: int, start: float, scrape: float
) -> tuple[int, int]:
    """OpenMetrics text of every pod's series, sample every ``scrape`` seconds; returns
    (pods, samples).  One metric family at a time, as the format wants."""
    pods = sorted(sessions(users, days, start, seed=1), key=lambda s: s[1])
    families = [
        ("kube_pod_created", None),
        ("kube_pod_labels", None),
        ("kube_pod_container_resource_requests", "cpu"),
        ("kube_pod_container_resource_requests", "memory"),
        ("kube_pod_container_info", None),
    ]
    samples = 0
    with path.open("w", encoding="utf-8") as out:
        written: set[str] = set()
        for name, resource_name in families:
            if name not in written:
                out.write(f"# TYPE {name} gauge\n")
                written.add(name)
            for n, (user, created, gone) in enumerate(pods):
                key = f'namespace="hub",pod="jupyter-user{user}",uid="u{n}"'
                if name == "kube_pod_created":
                    head, value = f"{name}{{{key}}}", f"{created:.0f}"
                elif name == "kube_pod_labels":
                    head, value = f'{name}{{{key},label_component="singleuser-server"}}', "1"
                elif name == "kube_pod_container_info":
                    image = "quay.io/jupyter/scipy-notebook:2024-01-15"
                    head = f'{name}{{{key},container="notebook",image="{image}"}}'
                    value = "1"
                elif resource_name == "cpu":
                    head = (f'{name}{{{key},container="notebook",resource="cpu",'
                            'unit="core"}')  # fmt: skip
                    value = "0.05"
                else:
                    head = (f'{name}{{{key},container="notebook",resource="memory",'
                            'unit="byte"}')  # fmt: skip
                    value = str(GIB if n % 7 else 4 * GIB)
                # Scrapes on a fixed grid, as Prometheus's own are.
                t = math.ceil(created / scrape) * scrape
                lines = []
                while t < gone:
                    lines.append(f"{head} {value} {t:.0f}\n")
                    t += scrape
                out.writelines(lines)
                samples += len(lines)
        out.write("# EOF\n")
    return len(pods), samples


def child(url: str, since: str, until: str, out: str, extra: list[str]) -> None:
    """The measured part: the CLI's import in a fresh process."""
    from scheduler_extender.trace.cli import main

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    code = main(
        ["prometheus", "--url", url, "--since", since, "--until", until, "--out", out, *extra]
    )
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "seconds": seconds, "rss_kib": peak,
                      "rss_before_kib": base_rss}))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--scrape", type=float, default=240.0, help="seconds between samples (default: %(default)s)"
    )
    parser.add_argument("--data", help="keep the backfilled data here (reused when present)")
    parser.add_argument(
        "extra", nargs="*", help="more `trace prometheus` options, after --, e.g. -- --step 5m"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.extra)
        return 0
    if MISSING:
        print(MISSING)
        return 1
    with tempfile.TemporaryDirectory(prefix="trace-bench-") as tmp:
        root = Path(args.data) if args.data else Path(tmp)
        # Whole days, ending two days ago: in the past, as the backfill needs.
        start = (time.time() // DAY) * DAY - (args.days + 2) * DAY
        stamp = root / "start"
        if (root / "data").is_dir() and stamp.is_file():
            start = float(stamp.read_text())
            print(f"reusing the backfilled data in {root}")
        else:
            root.mkdir(parents=True, exist_ok=True)
            text = root / "history.om"
            t0 = time.perf_counter()
            pods, samples = write_history(text, args.users, args.days, start, args.scrape)
            generated = time.perf_counter() - t0
            size = text.stat().st_size
            print(f"{args.users} users, {args.days} days: {pods} pods, {samples:,} samples "
                  f"every {args.scrape:g} s ({size / 2**20:.0f} MiB OpenMetrics, "
                  f"{generated:.0f} s to write)", flush=True)  # fmt: skip
            t0 = time.perf_counter()
            backfill(text, root / "data", max_block="486h")
            print(f"promtool backfill: {time.perf_counter() - t0:.0f} s", flush=True)
            text.unlink()
            stamp.write_text(repr(start))
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + args.days * DAY))
        with prometheus_server(root / "data") as url:
            out = root / "trace.csv"
            command = [sys.executable, __file__, "--child", url, since, until, str(out)]
            proc = subprocess.run(
                [*command, "--", *args.extra], check=False, capture_output=True, text=True
            )
        *report, last = proc.stdout.strip().splitlines() or [""]
        print("\n".join(report))
        if proc.returncode or not last.startswith("{"):
            print(f"import failed: {proc.stderr.strip() or last}")
            return 1
        figures = json.loads(last)
        if figures["code"]:
            print(f"import failed (exit {figures['code']}): {proc.stderr.strip()}")
            return 1
        rows = sum(1 for _ in out.open(encoding="utf-8")) - 1
        print(
            f"import: {figures['seconds']:.1f} s for {rows} sessions = "
            f"{rows / figures['seconds']:.0f} pods/s; importer peak RSS "
            f"{figures['rss_kib'] / 1024:.0f} MiB (interpreter with modules loaded: "
            f"{figures['rss_before_kib'] / 1024:.0f} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
