"""Live cache at the upstream scalability envelope: initial sync, peak RSS, events/s applied.

Runs the fake API server (tests/fakeapi) in its own process on 127.0.0.1 with N nodes and M running
user pods (default 5,000 / 150,000: the Kubernetes scalability envelope, ref:
https://kubernetes.io/docs/setup/best-practices/cluster-large/), then in this process:

1. **decode**: one list page of 500 pods decoded two ways, side by side: raw JSON (orjson) +
   ``convert.pod_from_json`` (what the cache does) vs the client's model deserialization
   (``V1PodList``) + ``sanitize_for_serialization`` + ``pod_from_json``;
2. **initial sync**: ``LiveState`` lists nodes and pods (pages of 500) through the real
   ``kubernetes`` client until both are applied; wall time and RSS;
3. **sustained events**: the server appends E pod MODIFIED events while the watch is held back,
   then releases it; the time to apply all E gives the cache's events/s (client-bound), and a
   second round with the watch live shows the rate when events arrive as they are written;
4. **relist**: the server compacts its history past both watches and drops them, so both kinds
   get 410 Expired and relist everything while the cache keeps serving; wall time, and the peak
   RSS during the relist (the kernel's high-water mark, reset just before it).

Meanwhile the real app runs under uvicorn in this same process (as ``serve`` runs it beside the
cache) and a separate prober process posts ``/prioritize`` in a loop: its latency per phase shows
what the cache's threads cost the hot path.

Targets (issue 3): sync <= 60 s, peak RSS <= 2 GiB, >= 5,000 events/s; and the peak during a
relist must stay well inside the chart's 1 GiB memory limit for the extender.  Not a test: prints
figures.  The machine has 2 cores shared with other work; the server process uses one of them.

    .venv/bin/python benchmarks/cache_sync.py                 # full envelope
    .venv/bin/python benchmarks/cache_sync.py --quick         # 1,000 nodes / 30,000 pods
"""

from __future__ import annotations

import argparse
import gc
import http.client
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler_extender.cache.live import LiveState
from scheduler_extender.cache.options import CacheOptions
from scheduler_extender.extender.serve import SWITCH_INTERVAL
from scheduler_extender.kube.client import KubeClient, connect
from scheduler_extender.kube.convert import pod_from_json

GIB = 1024**3


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> int:
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """The high-water mark of RSS (since the start, or since ``reset_peak_rss``)."""
    return _status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def control(port: int, path: str, body: Any = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    if body is None:
        conn.request("GET", path)
    else:
        conn.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})
    data = orjson.loads(conn.getresponse().read())
    conn.close()
    return data


def start_server(nodes: int, pods: int, workdir: Path) -> tuple[subprocess.Popen[str], int, Path]:
    kubeconfig = workdir / "kubeconfig"
    cmd = [sys.executable, "-m", "tests.fakeapi", "--nodes", str(nodes), "--pods", str(pods),
           "--kubeconfig", str(kubeconfig)]  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"fake API server did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1]), kubeconfig


def compare_decoding(kube: KubeClient, reps: int) -> dict[str, float]:
    """Median seconds to turn one 500-pod page into core Pods, raw vs model."""
    response = kube.core.list_pod_for_all_namespaces(limit=500, _preload_content=False)
    raw = response.data
    response.release_conn()
    api = kube.api_client
    times: dict[str, list[float]] = {"raw": [], "model": []}
    for _ in range(reps):
        start = time.perf_counter()
        items = orjson.loads(raw)["items"]
        [pod_from_json(item) for item in items]
        times["raw"].append(time.perf_counter() - start)
        start = time.perf_counter()
        model = api.deserialize(raw.decode(), "V1PodList", "application/json")
        dicts = [api.sanitize_for_serialization(p) for p in model.items]
        [pod_from_json(item) for item in dicts]
        times["model"].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()} | {"bytes": float(len(raw))}


PROBE_NODES = 100


def probe(port: int, names: list[str]) -> None:
    """Prober process: POST /prioritize (100 candidate nodes) in a loop, printing
    "start_time seconds status" per call until killed."""
    from tests.factories import pod_json

    body = orjson.dumps({"Pod": pod_json(), "NodeNames": names})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    while True:
        start = time.time()
        t0 = time.perf_counter()
        conn.request("POST", "/prioritize", body, headers)
        reply = conn.getresponse()
        reply.read()
        print(f"{start:.6f} {time.perf_counter() - t0:.6f} {reply.status}", flush=True)
        time.sleep(0.002)


def serve_app(state: LiveState) -> tuple[int, Any]:
    """The real app under uvicorn in this process (as serve runs it beside the cache)."""
    import socket
    import threading

    import uvicorn

    from scheduler_extender.extender.app import create_app
    from scheduler_extender.extender.settings import Settings

    app = create_app(Settings(), state=state, registry=CollectorRegistry())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return sock.getsockname()[1], server


class GcTimer:
    """Durations of the cyclic GC's collections in this process, by generation."""

    def __init__(self) -> None:
        self.started = 0.0
        self.durations: dict[int, list[float]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.durations[info["generation"]].append(time.perf_counter() - self.started)

    def report(self) -> str:
        full = self.durations[2]
        longest = max(full, default=0.0) * 1e3
        return f"{len(full)} full collections (longest {longest:.0f} ms)"


def latency(samples: list[tuple[float, float, int]], start: float, end: float) -> str:
    inside = [s for s in samples if start <= s[0] <= end]
    if not inside:
        return "no calls"
    ms = sorted(s[1] * 1e3 for s in inside)
    bad = sum(1 for s in inside if s[2] != 200)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"{len(ms)} calls, p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, "
        f"max {ms[-1]:.1f} ms, non-200: {bad}"
    )


def applied(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value(
        "scheduler_extender_cache_events_applied_total", {"kind": "pods", "type": "MODIFIED"}
    )
    return value or 0.0


def churn_rate(
    port: int, registry: CollectorRegistry, events: int, *, held: bool
) -> dict[str, float]:
    base = applied(registry)
    if held:
        control(port, "/_fake/pause", {})
    start = time.perf_counter()
    made = control(port, "/_fake/churn", {"count": events})
    if held:
        start = time.perf_counter()
        control(port, "/_fake/resume", {})
    while applied(registry) - base < events:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    return {"events": events, "seconds": elapsed, "rate": events / elapsed,
            "server_seconds": made["seconds"]}  # fmt: skip


def relist_after_expiry(port: int, state: LiveState) -> dict[str, float]:
    """Force a 410 relist of both kinds; seconds until the relist is applied and published, and
    RSS before, at the peak during, and after it."""
    before = {kind: r.status.relists.get("expired", 0) for kind, r in state.reflectors.items()}
    whole_run_peak = peak_rss_bytes()
    rss_before = rss_bytes()
    reset = reset_peak_rss()
    start = time.perf_counter()
    control(port, "/_fake/expire", {})
    while any(r.status.relists.get("expired", 0) <= before[k] for k, r in state.reflectors.items()):
        time.sleep(0.01)
    state.forget("").result(600)  # applied: the applier answers after everything queued before
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    return {
        "seconds": seconds,
        "rss_before": rss_before,
        "peak": peak if reset else float("nan"),
        "rss_after": rss_bytes(),
        "whole_run_peak_before": whole_run_peak,
        "nodes": len(state.snapshot().nodes),
        "pods": len(state.snapshot().pod_nodes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument(
        "--quick", action="store_true", help="1,000 nodes, 30,000 pods, 20,000 events"
    )
    parser.add_argument("--page-size", type=int, default=CacheOptions().page_size)
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=SWITCH_INTERVAL,
        help="sys.setswitchinterval for this process (serve sets %(default)s with live state)",
    )
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe, [f"user-node-{i:05d}" for i in range(PROBE_NODES)])
        return 0
    if args.quick:
        args.nodes, args.pods, args.events = 1000, 30_000, 20_000
    with tempfile.TemporaryDirectory() as tmp:
        print(f"starting fake API server with {args.nodes} nodes, {args.pods} pods ...", flush=True)
        proc, port, kubeconfig = start_server(args.nodes, args.pods, Path(tmp))
        try:
            kube = connect(kubeconfig=kubeconfig)
            assert kube is not None
            dec = compare_decoding(kube, args.reps)
            rss_start = rss_bytes()
            registry = CollectorRegistry()
            state = LiveState(
                kube, CacheOptions(page_size=500, freeze_gc_after_sync=True), registry=registry
            )
            gc_timer = GcTimer()
            app_port, app_server = serve_app(state)
            probe_log = Path(tmp) / "probe.log"
            prober = subprocess.Popen(
                [sys.executable, __file__, "--probe", str(app_port)],
                stdout=probe_log.open("w"),  # a file, not a pipe nobody drains meanwhile
            )
            time.sleep(1.0)
            phases = {"before sync (empty cache)": (time.time() - 1.0, time.time())}
            start = time.perf_counter()
            t_sync = time.time()
            state.start()
            if not state.wait_synced(600):
                raise SystemExit("initial sync did not finish in 600 s")
            sync = time.perf_counter() - start
            phases["during initial sync"] = (t_sync, time.time())
            snap = state.snapshot()
            rss_synced = rss_bytes()
            t_idle = time.time()
            time.sleep(3.0)
            phases["synced, idle"] = (t_idle, time.time())
            t_churn = time.time()
            held = churn_rate(port, registry, args.events, held=True)
            phases["applying the event backlog"] = (t_churn, time.time())
            live = churn_rate(port, registry, args.events, held=False)
            t_relist = time.time()
            relist = relist_after_expiry(port, state)
            phases["relist after 410 (both kinds)"] = (t_relist, time.time())
            prober.terminate()
            prober.wait(30)
            out = probe_log.read_text()
            samples = [
                (float(a), float(b), int(c))
                for a, b, c in (line.split() for line in out.splitlines() if line.count(" ") == 2)
            ]
            app_server.should_exit = True
            stats = control(port, "/_fake/stats")
            peak = max(peak_rss_bytes(), relist["whole_run_peak_before"])
            state.stop()
            kube.close()
        finally:
            proc.terminate()
            proc.wait(30)

    ok_counts = len(snap.nodes) == args.nodes and len(snap.pod_nodes) == args.pods
    ok_counts &= relist["nodes"] == args.nodes and relist["pods"] == args.pods
    cache = rss_synced - rss_start
    relist_extra = relist["peak"] - relist["rss_before"]
    counts = stats["counts"]
    print()
    print(
        f"cluster: {args.nodes} nodes, {args.pods} pods (server: {counts['nodes']} / "
        f"{counts['pods']}); cache holds {len(snap.nodes)} nodes, {len(snap.pod_nodes)} pods: "
        + ("match" if ok_counts else "MISMATCH")
    )
    print()
    print(f"page size {args.page_size}, switch interval {args.switch_interval * 1e3:g} ms")
    print(f"decode one page of 500 pods ({dec['bytes'] / 1024:.0f} KiB), median of {args.reps}:")
    print(f"  raw JSON (orjson) + convert          {dec['raw'] * 1e3:8.1f} ms")
    print(
        f"  client models + sanitize + convert   {dec['model'] * 1e3:8.1f} ms"
        f"   ({dec['model'] / dec['raw']:.1f}x slower)"
    )
    rows = [
        ("initial sync (list + apply)", f"{sync:.1f} s ({args.pods / sync:,.0f} pods/s)",
         "<= 60 s"),
        ("RSS after sync", f"{rss_synced / 2**20:,.0f} MiB (start: {rss_start / 2**20:,.0f} MiB)",
         ""),
        ("peak RSS (whole run)", f"{peak / 2**20:,.0f} MiB", "<= 2048 MiB"),
        ("events applied, backlog",
         f"{held['rate']:,.0f} events/s ({held['events']:,.0f} in {held['seconds']:.1f} s)",
         ">= 5,000/s"),
        ("events applied, live stream",
         f"{live['rate']:,.0f} events/s (server wrote them in {live['server_seconds']:.1f} s)",
         ""),
        ("relist after 410 (list + apply)", f"{relist['seconds']:.1f} s", ""),
        ("RSS before / peak during / after relist",
         f"{relist['rss_before'] / 2**20:,.0f} / {relist['peak'] / 2**20:,.0f} / "
         f"{relist['rss_after'] / 2**20:,.0f} MiB", "peak < 1024 MiB"),
        ("relist peak over the synced process",
         f"+{relist_extra / 2**20:,.0f} MiB ({relist_extra / cache:.2f}x the cache's "
         f"{cache / 2**20:,.0f} MiB)", ""),
    ]  # fmt: skip
    print()
    print(f"prioritize ({PROBE_NODES} candidate nodes) served from this process meanwhile:")
    for name, (begin, end) in phases.items():
        print(f"  {name:28s} {latency(samples, begin, end)}")
    print(f"  cyclic GC in this process: {gc_timer.report()}")
    print()
    print("| figure | measured | target |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    verdicts = [sync <= 60, peak <= 2 * GIB, held["rate"] >= 5000, ok_counts]
    verdicts.append(not relist["peak"] >= GIB)  # NaN (peak not measurable) does not fail it
    print()
    print("all targets met" if all(verdicts) else "TARGET MISSED")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
