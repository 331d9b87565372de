"""Extender latency: what one call costs kube-scheduler's scheduling cycle.

For each cluster size, a server process runs the real app (``create_app`` under uvicorn on
127.0.0.1, as ``scheduler-extender serve`` does) over a synthetic state of N nodes with ~30 pods
each; this process plays kube-scheduler: one keep-alive connection, one call at a time, the
realistic user pod from tests/extender/golden/pod.json, all N nodes as candidates (the worst
case: the scheduler sends only the feasible ones).  Modes: names (``nodeCacheCapable: true``,
what we ship) and full-node (``Nodes`` with realistic Node objects, ~40 images each).

Prints p50/p99 latency and requests/s per verb, mode and size, the HTTP floor (GET /healthz on
the same connection) and the in-process time of the core alone and of the whole handler.

    .venv/bin/python benchmarks/extender_latency.py              # 100, 500, 1000, 5000 nodes
    .venv/bin/python benchmarks/extender_latency.py --sizes 500 --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POD = json.loads((ROOT / "tests" / "extender" / "golden" / "pod.json").read_text())
PODS_PER_NODE = 30
#: When the synthetic cluster's sessions are dated from (pods are up to 10 h older).
STARTED = time.time()
IMAGES_PER_NODE = 40


def node_name(i: int) -> str:
    return f"gke-hub-user-pool-8a1c2f-{i:05d}"


def node_object(i: int) -> dict[str, Any]:
    """A Node about the size the API server returns for a GKE user node."""
    images = [
        {
            "names": [
                f"quay.io/jupyter/scipy-notebook@sha256:{i:064x}",
                f"quay.io/jupyter/scipy-notebook:2024-07-{k:02d}",
            ],
            "sizeBytes": 3_000_000_000 + k,
        }
        for k in range(IMAGES_PER_NODE)
    ]
    return {
        "metadata": {
            "name": node_name(i),
            "uid": f"node-uid-{i}",
            "resourceVersion": str(1000 + i),
            "creationTimestamp": f"2026-11-25T{(i // 60) % 24:02d}:{i % 60:02d}:00Z",
            "labels": {
                "hub.jupyter.org/node-purpose": "user",
                "kubernetes.io/hostname": node_name(i),
                "node.kubernetes.io/instance-type": "n1-highmem-8",
                "topology.kubernetes.io/zone": "us-central1-b",
                "cloud.google.com/gke-nodepool": "user-pool",
            },
        },
        "spec": {
            "podCIDR": "10.4.0.0/24",
            "providerID": f"gce://project/us-central1-b/node-{i}",
            "taints": [
                {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}
            ],
        },
        "status": {
            "capacity": {"cpu": "8", "memory": "53588972Ki", "pods": "110"},
            "allocatable": {"cpu": "7910m", "memory": "47060012Ki", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "images": images,
            "nodeInfo": {
                "kubeletVersion": "v1.36.0",
                "containerRuntimeVersion": "containerd://2.1",
            },
        },
    }


def build_snapshot(nodes: int) -> Any:
    """The server's state: N nodes, ~30 user pods each (core values, built directly)."""
    from scheduler_extender.core.snapshot import build_snapshot as build
    from scheduler_extender.core.types import Pod, Resources
    from scheduler_extender.kube.convert import node_from_json

    core_nodes = [node_from_json(node_object(i)) for i in range(nodes)]
    pods = []
    for i in range(nodes):
        for k in range((i * 7) % (2 * PODS_PER_NODE)):  # 0..59 pods: mean ~30, varied load
            pods.append(
                Pod(
                    uid=f"pod-{i}-{k}",
                    name=f"jupyter-u{i}-{k}",
                    namespace="jhub",
                    requests=Resources(50, 450 * 1024**2, 1),
                    node_name=node_name(i),
                    images=("quay.io/jupyter/scipy-notebook:2024-07-29",),
                    # Sessions of varied age (up to 10 h), for the drain term.
                    created=STARTED - 60.0 * ((i * 13 + k * 7) % 600),
                )
            )
    return build(core_nodes, pods)


# --- server side ----------------------------------------------------------------------------


def serve(nodes: int, port: int, freeze: bool) -> None:
    import uvicorn

    from scheduler_extender.extender.app import create_app
    from scheduler_extender.extender.settings import Settings
    from scheduler_extender.extender.state import StaticState

    state = StaticState(build_snapshot(nodes), f"synthetic {nodes} nodes")
    app = create_app(Settings(max_body_bytes=1 << 30), state=state)
    if freeze:  # as `scheduler-extender serve` does after loading its state
        gc.collect()
        gc.freeze()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- client side ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(nodes: int, freeze: bool = True) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(nodes), "--port", str(port)]
        + ([] if freeze else ["--no-gc-freeze"]),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server for {nodes} nodes did not start")


def timed_calls(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
                count: int) -> list[float]:  # fmt: skip
    headers = {"Content-Type": "application/json"} if body is not None else {}
    out = []
    for _ in range(count):
        start = time.perf_counter()
        conn.request(method, path, body, headers)
        reply = conn.getresponse()
        data = reply.read()
        out.append(time.perf_counter() - start)
        if reply.status != 200:
            raise RuntimeError(f"{path}: HTTP {reply.status}: {data[:200]!r}")
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(nodes: int, count: int) -> dict[str, float]:
    """Median ms of the core alone and of the whole handler (no HTTP), names mode."""

    from scheduler_extender.core.drain import Drain, prior_of
    from scheduler_extender.core.lifetime import LIFETIME_GRID, fit
    from scheduler_extender.core.scoring import score_nodes
    from scheduler_extender.extender.app import create_app
    from scheduler_extender.extender.settings import Settings
    from scheduler_extender.extender.state import StaticState
    from scheduler_extender.kube.convert import pod_from_json

    snap = build_snapshot(nodes)
    names = [node_name(i) for i in range(nodes)]
    pod = pod_from_json(POD)
    config = Settings().policy()  # SCHEDULER_EXTENDER_DRAIN_WEIGHT (--drain-weight) applies
    drain = Drain(time.time(), fit([0] * len(LIFETIME_GRID), prior_of(config)))
    core = []
    for _ in range(count):
        start = time.perf_counter()
        score_nodes(pod, names, snap, config, drain if config.drain_weight else None)
        core.append(time.perf_counter() - start)
    app = create_app(Settings(max_body_bytes=1 << 30), state=StaticState(snap))
    ext = app.state.extender
    body = json.dumps({"Pod": POD, "Nodes": None, "NodeNames": names}).encode()
    handler = []
    loop = asyncio.new_event_loop()
    for _ in range(count):
        start = time.perf_counter()
        loop.run_until_complete(ext.prioritize(body))
        handler.append(time.perf_counter() - start)
    loop.close()
    return {"core_ms": statistics.median(core) * 1e3,
            "handler_ms": statistics.median(handler) * 1e3}  # fmt: skip


def run(sizes: list[int], requests: int, freeze: bool = True) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for nodes in sizes:
        count = max(50, requests if nodes <= 1000 else requests // 4)
        proc, port = start_server(nodes, freeze)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            names = [node_name(i) for i in range(nodes)]
            bodies = {
                "names": json.dumps({"Pod": POD, "Nodes": None, "NodeNames": names}).encode(),
                "full": json.dumps({"Pod": POD, "Nodes": {"metadata": {}, "items": [
                    node_object(i) for i in range(nodes)]}, "NodeNames": None}).encode(),
            }  # fmt: skip
            timed_calls(conn, "GET", "/healthz", None, 50)  # warm up
            floor = timed_calls(conn, "GET", "/healthz", None, count)
            rows.append({"nodes": nodes, "verb": "GET /healthz", "mode": "-", "body_kib": 0,
                         "p50_ms": pct(floor, 0.5) * 1e3, "p99_ms": pct(floor, 0.99) * 1e3,
                         "rps": len(floor) / sum(floor)})  # fmt: skip
            for mode, body in bodies.items():
                full_count = count if mode == "names" else max(20, count // 10)
                for verb in ("prioritize", "filter"):
                    timed_calls(conn, "POST", f"/{verb}", body, 10)
                    times = timed_calls(conn, "POST", f"/{verb}", body, full_count)
                    rows.append({
                        "nodes": nodes, "verb": verb, "mode": mode,
                        "body_kib": len(body) / 1024,
                        "p50_ms": pct(times, 0.5) * 1e3, "p99_ms": pct(times, 0.99) * 1e3,
                        "rps": len(times) / sum(times),
                    })  # fmt: skip
            conn.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        rows.append({"nodes": nodes, "verb": "in-process", "mode": "names",
                     **in_process(nodes, min(count, 200))})  # fmt: skip
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"Python {platform.python_version()}")  # fmt: skip
    print("| nodes | call | mode | body KiB | p50 ms | p99 ms | req/s |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for r in rows:
        if r["verb"] == "in-process":
            continue
        print(f"| {r['nodes']} | {r['verb']} | {r['mode']} | {r['body_kib']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps']:.0f} |")  # fmt: skip
    print("\nIn-process medians, names mode prioritize (no HTTP):")
    print("| nodes | core score_nodes ms | whole handler ms (parse + convert + core + encode) |")
    print("|---:|---:|---:|")
    for r in rows:
        if r["verb"] == "in-process":
            print(f"| {r['nodes']} | {r['core_ms']:.3f} | {r['handler_ms']:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,500,1000,5000")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-gc-freeze", action="store_true", help="serve without gc.freeze() (for comparison)"
    )
    parser.add_argument(
        "--drain-weight",
        type=float,
        help="serve with this drain_weight (the drain term on; default: the shipped setting)",
    )
    args = parser.parse_args()
    if args.drain_weight is not None:
        # The server subprocess and the in-process Settings() both read it.
        os.environ["SCHEDULER_EXTENDER_DRAIN_WEIGHT"] = str(args.drain_weight)
    if args.serve is not None:
        serve(args.serve, args.port, not args.no_gc_freeze)
        return 0
    rows = run([int(s) for s in args.sizes.split(",")], args.requests, not args.no_gc_freeze)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
