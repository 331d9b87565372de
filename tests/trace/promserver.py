"""A real Prometheus on 127.0.0.1 for tests and benchmarks, backfilled from OpenMetrics text.

Debian's ``prometheus`` package ships both binaries (``/usr/bin/prometheus``,
``/usr/bin/promtool``).  ``promtool tsdb create-blocks-from openmetrics`` turns the text into
TSDB blocks (ref: prometheus docs/storage.md, "Backfilling from OpenMetrics format"); the blocks
go into the storage directory before the server starts, so it loads them like its own.  The data
must lie in the past, and outside the default 15 days retention unless that is raised (it is).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
MISSING = (
    None
    if PROMETHEUS and PROMTOOL
    else "prometheus/promtool not installed (Debian: apt-get install prometheus; .ci/run does)"
)


@dataclass
class Series:
    name: str
    labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]] = field(default_factory=list)  # (unix time, value)


def _labels(labels: Mapping[str, str]) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + inner + "}"


def write_openmetrics(out: IO[str], series: Iterable[Series]) -> int:
    """OpenMetrics text, one metric family at a time (a family must be contiguous); returns
    the number of samples written."""
    by_name: dict[str, list[Series]] = {}
    for s in series:
        by_name.setdefault(s.name, []).append(s)
    count = 0
    for name, family in by_name.items():
        out.write(f"# TYPE {name} gauge\n")
        for s in family:
            head = name + _labels(s.labels)
            for t, v in s.samples:
                out.write(f"{head} {v!r} {t:.3f}\n")
            count += len(s.samples)
    out.write("# EOF\n")
    return count


def backfill(openmetrics: Path, storage: Path, max_block: str = "24h") -> None:
    assert PROMTOOL is not None, MISSING
    storage.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics",
         f"--max-block-duration={max_block}", str(openmetrics), str(storage)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def prometheus_server(
    storage: Path, *, max_samples: int | None = None, extra: Sequence[str] = ()
) -> Iterator[str]:
    """Run Prometheus over ``storage`` on a free loopback port; yields its base URL."""
    assert PROMETHEUS is not None, MISSING
    config = storage.parent / f"{storage.name}.yml"
    config.write_text("global:\n  scrape_interval: 1h\n", encoding="utf-8")
    port = free_port()
    args = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        *extra,
    ]
    if max_samples is not None:
        args.append(f"--query.max-samples={max_samples}")
    log = storage.parent / f"{storage.name}.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready in 30 s: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
