"""``/bind`` through the real app: assume before the POST, confirm by watch, forget on failure,
expire on timeout."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from scheduler_extender.cache.live import LiveBinder, LiveState
from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.settings import Settings
from scheduler_extender.kube.client import KubeClient, connect
from tests.cache.conftest import FAST, assert_cache_matches, eventually
from tests.fakeapi import PODS, FakeApiServer, StatusError, pod_json

NODE = "user-node-00001"


@pytest.fixture
def recorded(live: LiveState, kube: KubeClient, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Where the cache had the pod at the moment each Binding POST went out."""
    seen: list[Any] = []
    real_bind = kube.bind

    def bind(namespace: str, name: str, uid: str, node: str, *, timeout: float) -> None:
        seen.append(live.snapshot().pod_nodes.get(uid))
        real_bind(namespace, name, uid, node, timeout=timeout)

    monkeypatch.setattr(kube, "bind", bind)
    return seen


@pytest.fixture
def client(live: LiveState, kube: KubeClient) -> Iterator[TestClient]:
    app = create_app(
        Settings(), state=live, binder=LiveBinder(live, kube), registry=CollectorRegistry()
    )
    with TestClient(app) as test_client:
        yield test_client


def _pending(server: FakeApiServer, name: str) -> str:
    obj = server.store.create(PODS, "jhub", pod_json(name, cpu="1", memory="1Gi"))
    return str(obj["metadata"]["uid"])


def _bind(client: TestClient, name: str, uid: str, node: str = NODE) -> str:
    reply = client.post(
        "/bind", json={"PodName": name, "PodNamespace": "jhub", "PodUID": uid, "Node": node}
    )
    assert reply.status_code == 200
    return str(reply.json()["Error"])


def test_bind_assumes_before_the_post_and_the_watch_confirms(
    server: FakeApiServer, live: LiveState, client: TestClient, recorded: list[Any]
) -> None:
    uid = _pending(server, "jupyter-bob")
    eventually(lambda: live.reflectors["pods"].status.resource_version == str(server.store.rv))
    before = live.snapshot().nodes[NODE].requested.cpu
    server.paused.set()  # the watch lags: only the assumption can put the pod on the node
    assert _bind(client, "jupyter-bob", uid) == ""
    assert recorded == [NODE]  # assumed before the Binding was even sent
    snap = live.snapshot()  # what the very next prioritize call reads
    assert snap.pod_nodes[uid] == NODE
    assert snap.nodes[NODE].requested.cpu == before + 1000
    assert live.assumed_uids() == {uid}
    assert server.store.get(PODS, "jhub", "jupyter-bob")["spec"]["nodeName"] == NODE
    server.paused.clear()
    eventually(lambda: not live.assumed_uids(), 10, "the watch to confirm the binding")
    assert live.snapshot().pod_nodes[uid] == NODE
    assert_cache_matches(server, live)


@pytest.mark.parametrize(
    ("failure", "expect"),
    [
        pytest.param(
            StatusError(403, "Forbidden", 'admission webhook "deny" denied the request'),
            "denied the request",
            id="denied",
        ),
        pytest.param(
            StatusError(500, "InternalError", "etcdserver: request timed out"),
            "etcdserver: request timed out",
            id="server-error",
        ),
    ],
)
def test_failed_binding_replies_with_the_error_and_forgets(
    *,
    server: FakeApiServer,
    live: LiveState,
    client: TestClient,
    recorded: list[Any],
    failure: StatusError,
    expect: str,
) -> None:
    uid = _pending(server, "jupyter-carol")
    eventually(lambda: live.snapshot().pod_nodes.get(uid) is None and uid in live._store.pods)
    server.store.hooks.fail_bind = failure
    error = _bind(client, "jupyter-carol", uid)
    assert expect in error
    assert error.startswith(f"binding pod jhub/jupyter-carol to node {NODE} failed")
    assert recorded == [NODE]  # it was assumed while the POST was in flight ...
    assert live.snapshot().pod_nodes.get(uid) is None  # ... and is gone with the reply
    assert not live.assumed_uids()


def test_already_bound_pod_is_not_assumed_and_conflict_is_reported(
    server: FakeApiServer, live: LiveState, client: TestClient
) -> None:
    pod = server.store.items(PODS)[0]
    uid, name = pod["metadata"]["uid"], pod["metadata"]["name"]
    current = pod["spec"]["nodeName"]
    other = next(n for n in live.snapshot().nodes if n != current)
    error = _bind(client, name, uid, other)
    assert "already assigned" in error
    assert live.snapshot().pod_nodes[uid] == current


def test_pod_the_watch_has_not_delivered_is_read_and_assumed(
    server: FakeApiServer, live: LiveState, client: TestClient
) -> None:
    server.paused.set()
    uid = _pending(server, "jupyter-dave")
    assert uid not in live._store.pods
    assert _bind(client, "jupyter-dave", uid) == ""
    assert live.snapshot().pod_nodes[uid] == NODE
    server.paused.clear()
    assert_cache_matches(server, live)


def test_assumption_expires_when_never_confirmed(server: FakeApiServer, kubeconfig: Path) -> None:
    now = [1000.0]
    kube = connect(kubeconfig=kubeconfig)
    assert kube is not None
    registry = CollectorRegistry()
    state = LiveState(kube, FAST, registry=registry, clock=lambda: now[0]).start()
    try:
        assert state.wait_synced(10)
        uid = _pending(server, "jupyter-erin")
        eventually(lambda: uid in state._store.pods)
        assert state.assume(uid, NODE).result(5) == ""  # assumed, but never bound on the server
        assert state.snapshot().pod_nodes[uid] == NODE
        now[0] += FAST.assume_ttl_seconds - 0.5
        state.forget("nothing").result(5)  # one applier pass
        assert state.snapshot().pod_nodes.get(uid) == NODE
        now[0] += 1.0
        state.forget("nothing").result(5)
        assert state.snapshot().pod_nodes.get(uid) is None
        assert registry.get_sample_value("scheduler_extender_cache_assumptions_expired_total") == 1
    finally:
        state.stop()
        kube.close()


@pytest.mark.parametrize(
    ("held", "watch_lags"),
    [
        pytest.param("POST /api/v1/namespaces/jhub/pods/jupyter-slow/binding", False, id="binding"),
        pytest.param("GET /api/v1/namespaces/jhub/pods/jupyter-slow", True, id="read-pod"),
    ],
)
def test_bind_has_one_deadline_against_a_slow_api_server(
    server: FakeApiServer, kubeconfig: Path, held: str, watch_lags: bool
) -> None:
    """The API server holds the request and never answers in time: the reply is an error within
    ``bind_timeout_seconds``, the request was sent once (no retries), nothing stays assumed."""
    kube = connect(kubeconfig=kubeconfig)
    assert kube is not None
    options = dataclasses.replace(FAST, bind_timeout_seconds=0.5)
    state = LiveState(kube, options, registry=CollectorRegistry()).start()
    release = threading.Event()
    seen: list[str] = []

    def hold(method: str, path: str) -> None:
        if f"{method} {path}".split("?")[0] == held:
            seen.append(path)
            release.wait(10)

    app = create_app(
        Settings(), state=state, binder=LiveBinder(state, kube), registry=CollectorRegistry()
    )
    try:
        assert state.wait_synced(10)
        if watch_lags:
            server.paused.set()  # the pod watch has not delivered the pod: bind must read it
        uid = _pending(server, "jupyter-slow")
        if not watch_lags:
            eventually(lambda: uid in state._store.pods, 10, "the watch to deliver the pod")
        server.before_request = hold
        with TestClient(app) as client:
            error = _bind(client, "jupyter-slow", uid)
        assert not release.is_set()  # answered while the API server still held the request
        assert error == (
            f"binding pod jhub/jupyter-slow to node {NODE} failed: no answer within "
            "bind_timeout_seconds=0.5 (the API server or the cache is too slow)"
        )
        assert seen == [held.split(" ", 1)[1]]
        eventually(lambda: uid not in state.snapshot().pod_nodes, 5, "the assumption to go")
        assert not state.assumed_uids()
    finally:
        release.set()
        server.before_request = None
        server.paused.clear()
        state.stop()
        kube.close()
