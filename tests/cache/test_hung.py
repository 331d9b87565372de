"""A hung API server (connections open, nothing answered) versus a healthy but quiet one.

The fake API server sits behind ``FreezingProxy``; freezing it is what a hung API server or a
black-holing load balancer looks like to the client.  The cache must notice (``/readyz`` 503,
counted from the last sign of life, not from when the read timeout fired), every call must make
one attempt only (no urllib3 retries multiplying the timeout), and a quiet cluster whose watches
simply end and reconnect must stay ready.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scheduler_extender.cache.live import KINDS, LiveState
from scheduler_extender.kube.client import KubeClient, connect
from tests.cache.conftest import FAST, assert_cache_matches, eventually
from tests.cache.proxy import FreezingProxy
from tests.fakeapi import PODS, FakeApiServer, pod_json


def _not_ready(state: LiveState) -> str:
    """Why the state is not ready, or "" while it is."""
    ready = state.readiness()
    return "" if ready.ready else ready.reason


@pytest.fixture
def proxy(server: FakeApiServer) -> Iterator[FreezingProxy]:
    with FreezingProxy(server.port) as running:
        yield running


@pytest.fixture
def proxied(server: FakeApiServer, proxy: FreezingProxy, tmp_path: Path) -> Iterator[KubeClient]:
    """A client whose kubeconfig points at the proxy."""
    config = server.kubeconfig()
    config["clusters"][0]["cluster"]["server"] = proxy.url
    path = tmp_path / "kubeconfig-proxy"
    path.write_text(json.dumps(config))
    kube = connect(kubeconfig=path)
    assert kube is not None
    yield kube
    kube.close()


CALLS: dict[str, tuple[str, Callable[[KubeClient], Any]]] = {
    "list": ("/api/v1/pods", lambda k: k.list("pods", limit=4, continue_token="", timeout=0.5)),
    "watch": (
        "/api/v1/pods",
        lambda k: k.watch("pods", resource_version="1", timeout_seconds=60, read_timeout=0.5),
    ),
    "get-pod": (
        "/api/v1/namespaces/jhub/pods/jupyter-user000000",
        lambda k: k.get_pod("jhub", "jupyter-user000000", timeout=0.5),
    ),
    "bind": (
        "/api/v1/namespaces/jhub/pods/jupyter-x/binding",
        lambda k: k.bind("jhub", "jupyter-x", "uid", "user-node-00000", timeout=0.5),
    ),
}


@pytest.mark.parametrize(("path", "call"), list(CALLS.values()), ids=list(CALLS))
def test_a_call_to_a_hung_api_server_is_one_attempt(
    proxy: FreezingProxy, proxied: KubeClient, path: str, call: Callable[[KubeClient], Any]
) -> None:
    proxied.list("nodes", limit=1, continue_token="", timeout=5)  # a pooled, working connection
    proxy.freeze()
    mark = len(proxy.requests)
    with pytest.raises(Exception, match=r"(?i)timed out"):
        call(proxied)
    # urllib3's default would have sent it four times, each waiting for the read timeout.
    sent = proxy.requests_since(mark)
    assert len(sent) == 1 and sent[0][1].startswith(path), sent


def test_hung_api_server_turns_readyz_503_counted_from_the_last_sign_of_life(
    server: FakeApiServer, proxy: FreezingProxy, proxied: KubeClient
) -> None:
    options = dataclasses.replace(FAST, watch_read_timeout_seconds=2.0, staleness_seconds=1.0)
    state = LiveState(proxied, options, registry=CollectorRegistry()).start()
    try:
        assert state.wait_synced(10)
        eventually(
            lambda: all(r.status.last_event for r in state.reflectors.values()),
            10,
            "bookmarks on both watches",
        )
        assert state.readiness().ready
        proxy.freeze()
        frozen_at = time.monotonic()
        server.store.create(PODS, "jhub", pod_json("jupyter-unseen", node="user-node-00000"))
        reason = eventually(lambda: _not_ready(state), 15, "readyz to fail")
        assert "watch broken, no sign of life for" in reason
        eventually(
            lambda: all(r.status.broken_since is not None for r in state.reflectors.values()),
            15,
            "both watches to time out",
        )
        for kind in KINDS:
            status = state.reflectors[kind].status
            assert status.broken_since is not None
            assert not state.readiness().ready
            # Broken since the last bookmark before the freeze, not since the read timeout
            # (2 s later) noticed it; the slack only covers thread scheduling.
            assert status.broken_since <= frozen_at + 0.5, (kind, status.broken_since - frozen_at)
            assert status.restarts.get("idle", 0) >= 1
        proxy.thaw()
        eventually(lambda: state.readiness().ready, 15, "readyz to recover after the thaw")
        assert_cache_matches(server, state)
    finally:
        proxy.thaw()
        state.stop()


def test_quiet_cluster_stays_ready_while_watches_end_and_reconnect(
    server: FakeApiServer, kube: KubeClient
) -> None:
    """No writes and no bookmarks: every watch ends on its server-side timeout having delivered
    nothing, and is opened again.  That is a healthy cluster, and readiness must say so."""
    server.bookmark_interval = 3600.0
    options = dataclasses.replace(
        FAST, watch_timeout_seconds=1, watch_read_timeout_seconds=5.0, staleness_seconds=0.5
    )
    state = LiveState(kube, options, registry=CollectorRegistry()).start()
    try:
        assert state.wait_synced(10)
        deadline = time.monotonic() + 20
        polls = 0
        while min(r.status.restarts.get("closed", 0) for r in state.reflectors.values()) < 3:
            assert time.monotonic() < deadline, "watches did not restart three times"
            ready = state.readiness()
            assert ready.ready, ready.reason
            polls += 1
            time.sleep(0.02)
        assert polls > 10
        assert all(set(r.status.restarts) == {"closed"} for r in state.reflectors.values())
    finally:
        state.stop()
