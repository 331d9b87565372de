"""Fixtures for the live cache: a fake API server, the real client, the live state, the real app.

Timing is shortened through ``CacheOptions`` (backoff, staleness, watch timeouts) and every wait
is a condition polled against a deadline, never a fixed sleep.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from scheduler_extender.cache.live import LiveBinder, LiveState
from scheduler_extender.cache.options import CacheOptions
from scheduler_extender.cache.store import snapshot_pods
from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.settings import Settings
from scheduler_extender.kube.client import KubeClient, connect
from scheduler_extender.kube.convert import is_terminal
from tests.fakeapi import NODES, PODS, FakeApiServer, populate

FAST = CacheOptions(
    page_size=4,
    watch_timeout_seconds=5,
    watch_read_timeout_seconds=3.0,
    request_timeout_seconds=3.0,
    backoff_initial_seconds=0.05,
    backoff_max_seconds=0.3,
    staleness_seconds=1.0,
    assume_ttl_seconds=5.0,
    bind_timeout_seconds=3.0,
)


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.02)


def truth(server: FakeApiServer) -> dict[str, frozenset[str]]:
    """Pod UIDs per node as the API server has them: non-terminal pods on existing nodes."""
    nodes = {n["metadata"]["name"] for n in server.store.items(NODES)}
    out: dict[str, set[str]] = {name: set() for name in nodes}
    for pod in server.store.items(PODS):
        node = (pod.get("spec") or {}).get("nodeName")
        if node in out and not is_terminal(pod):
            out[node].add(pod["metadata"]["uid"])
    return {name: frozenset(uids) for name, uids in out.items()}


def cache_matches(server: FakeApiServer, state: LiveState) -> bool:
    return snapshot_pods(state.snapshot()) == truth(server) and not state.assumed_uids()


def assert_cache_matches(server: FakeApiServer, state: LiveState, timeout: float = 10.0) -> None:
    """The cache converges to the server's truth: no lost pods, no ghosts, nothing assumed."""
    deadline = time.monotonic() + timeout
    while not cache_matches(server, state):
        if time.monotonic() > deadline:
            have, want = snapshot_pods(state.snapshot()), truth(server)
            lost = {n: want[n] - have.get(n, frozenset()) for n in want} if want else {}
            ghosts = {n: have[n] - want.get(n, frozenset()) for n in have}
            pytest.fail(
                f"cache != truth: nodes {sorted(set(have) ^ set(want))} differ; "
                f"lost { ({k: v for k, v in lost.items() if v}) }; "
                f"ghosts { ({k: v for k, v in ghosts.items() if v}) }"
            )
        time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer(bookmark_interval=0.2, too_large_wait=0.2)
    populate(fake.store, 4, 10)
    with fake:
        yield fake


@pytest.fixture
def kubeconfig(server: FakeApiServer, tmp_path: Path) -> Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    client = connect(kubeconfig=kubeconfig)
    assert client is not None
    yield client
    client.close()


@pytest.fixture
def live(kube: KubeClient) -> Iterator[LiveState]:
    state = LiveState(kube, FAST, registry=CollectorRegistry()).start()
    assert state.wait_synced(10), state.readiness()
    yield state
    state.stop()


@dataclass
class Probe:
    """Posts ``/prioritize`` to the real app over loopback in a loop, recording each answer."""

    port: int
    nodes: list[str]
    results: list[tuple[float, int, float]] = field(default_factory=list)  # (t, status, seconds)
    stop: threading.Event = field(default_factory=threading.Event)

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            reply = conn.getresponse()
            return reply.status, reply.read().decode()
        finally:
            conn.close()

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})
            reply = conn.getresponse()
            return reply.status, orjson.loads(reply.read())
        finally:
            conn.close()

    def run(self) -> None:
        from tests.factories import pod_json

        body = orjson.dumps({"Pod": pod_json(), "NodeNames": self.nodes})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                conn.request("POST", "/prioritize", body, {"Content-Type": "application/json"})
                reply = conn.getresponse()
                reply.read()
                status = reply.status
            except OSError:
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            self.results.append((start, status, time.monotonic() - start))
            self.stop.wait(0.01)
        conn.close()

    def answered_between(self, start: float, end: float) -> list[tuple[float, int, float]]:
        return [r for r in self.results if start <= r[0] <= end]


@pytest.fixture
def app_server(live: LiveState, kube: KubeClient) -> Iterator[Probe]:
    """The extender app on a real uvicorn over loopback, with a prioritize prober running."""
    registry = CollectorRegistry()
    app = create_app(Settings(), state=live, binder=LiveBinder(live, kube), registry=registry)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    eventually(lambda: uv.started, 10, "uvicorn to start")
    probe = Probe(port, sorted(live.snapshot().nodes))
    prober = threading.Thread(target=probe.run, daemon=True)
    prober.start()
    yield probe
    probe.stop.set()
    prober.join(5)
    uv.should_exit = True
    thread.join(10)
    sock.close()
