"""The fake API server follows the protocol a client can observe (raw HTTP and the real client)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kubernetes import client as k8s

from scheduler_extender.kube.client import ApiError, KubeClient
from tests.fakeapi import LEASES, NODES, PODS, FakeApiServer, pod_json


def raw(server: FakeApiServer, path: str, token: str | None = "fake-token") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", path, headers=headers)
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    return reply.status, orjson.loads(body)


def watch_lines(server: FakeApiServer, path: str) -> Iterator[dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", path, headers={"Authorization": "Bearer fake-token"})
    reply = conn.getresponse()
    assert reply.status == 200
    assert reply.getheader("Transfer-Encoding") == "chunked"
    try:
        for line in reply:
            if line.strip():
                yield orjson.loads(line)
    finally:
        conn.close()


def test_paged_list_is_a_consistent_snapshot(server: FakeApiServer, kube: KubeClient) -> None:
    first = kube.list("pods", limit=4, continue_token="", timeout=5)
    server.store.create(PODS, "jhub", pod_json("jupyter-late"))
    server.store.delete(PODS, "jhub", first.items[0]["metadata"]["name"])
    names = [p["metadata"]["name"] for p in first.items]
    token = first.continue_token
    while token:
        page = kube.list("pods", limit=4, continue_token=token, timeout=5)
        assert page.resource_version == first.resource_version
        names += [p["metadata"]["name"] for p in page.items]
        token = page.continue_token
    assert len(names) == 10 and "jupyter-late" not in names


def test_stale_continue_token_is_410(server: FakeApiServer, kube: KubeClient) -> None:
    first = kube.list("pods", limit=4, continue_token="", timeout=5)
    server.store.create(PODS, "jhub", pod_json("jupyter-x"))
    server.store.compact()
    with pytest.raises(ApiError) as caught:
        kube.list("pods", limit=4, continue_token=first.continue_token, timeout=5)
    assert caught.value.code == 410 and caught.value.expired


@pytest.mark.parametrize(
    ("query", "bookmark"),
    [
        pytest.param("&allowWatchBookmarks=true", True, id="bookmarks"),
        pytest.param("", False, id="no-bookmarks"),
    ],
)
def test_watch_streams_changes_in_order(server: FakeApiServer, query: str, bookmark: bool) -> None:
    status, listed = raw(server, "/api/v1/pods")
    assert status == 200 and listed["kind"] == "PodList"
    rv = listed["metadata"]["resourceVersion"]
    created = server.store.create(PODS, "jhub", pod_json("jupyter-w"))
    server.store.patch(PODS, "jhub", "jupyter-w", {"metadata": {"labels": {"x": "1"}}})
    server.store.delete(PODS, "jhub", "jupyter-w")
    events = list(
        watch_lines(server, f"/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1{query}")
    )
    changes = [
        (e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"
    ]
    assert changes == [("ADDED", "jupyter-w"), ("MODIFIED", "jupyter-w"), ("DELETED", "jupyter-w")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] == int(created["metadata"]["resourceVersion"])
    assert any(e["type"] == "BOOKMARK" for e in events) == bookmark  # fmt: skip


def test_field_selector_watch_reports_leaving_as_deleted(server: FakeApiServer) -> None:
    rv = raw(server, "/api/v1/pods")[1]["metadata"]["resourceVersion"]
    server.store.create(PODS, "jhub", pod_json("jupyter-f", phase="Pending"))
    server.store.patch(PODS, "jhub", "jupyter-f", {"status": {"phase": "Succeeded"}})
    selector = "status.phase%21%3DSucceeded"  # status.phase!=Succeeded
    path = f"/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1&fieldSelector={selector}"
    events = [(e["type"], e["object"]["status"]["phase"]) for e in watch_lines(server, path)]
    assert events == [("ADDED", "Pending"), ("DELETED", "Succeeded")]


@pytest.mark.parametrize(
    ("make_rv", "code", "reason"),
    [
        pytest.param(lambda s: s.store.compact() - 1, 410, "Expired", id="compacted"),
        pytest.param(lambda s: s.store.rv + 50, 504, "Timeout", id="too-large"),
    ],
)
def test_watch_error_events(server: FakeApiServer, make_rv: Any, code: int, reason: str) -> None:
    server.store.create(PODS, "jhub", pod_json("jupyter-e"))
    rv = make_rv(server)
    events = list(watch_lines(server, f"/api/v1/pods?watch=true&resourceVersion={rv}"))
    assert [e["type"] for e in events] == ["ERROR"]
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (code, reason)


@pytest.mark.parametrize(
    ("path", "token", "code"),
    [
        pytest.param("/api/v1/pods", None, 401, id="no-token"),
        pytest.param("/api/v1/namespaces/jhub/pods/nope", "fake-token", 404, id="not-found"),
        pytest.param("/api/v1/widgets", "fake-token", 404, id="unknown-resource"),
        pytest.param("/api/v1/pods?limit=x", "fake-token", 400, id="bad-limit"),
    ],
)
def test_errors_are_status_objects(
    server: FakeApiServer, path: str, token: str | None, code: int
) -> None:
    status, body = raw(server, path, token)
    assert status == code and body["kind"] == "Status" and body["code"] == code


def test_real_client_crud_on_leases_and_nodes(server: FakeApiServer, kube: KubeClient) -> None:
    leases = k8s.CoordinationV1Api(kube.api_client)
    body = k8s.V1Lease(
        metadata=k8s.V1ObjectMeta(name="placeholders", namespace="jhub"),
        spec=k8s.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
    )
    made = leases.create_namespaced_lease("jhub", body)
    assert made.metadata.resource_version and made.metadata.uid
    with pytest.raises(k8s.ApiException) as caught:
        leases.create_namespaced_lease("jhub", body)
    assert caught.value.status == 409
    made.spec.holder_identity = "b"
    assert leases.replace_namespaced_lease("placeholders", "jhub", made).spec.holder_identity == "b"
    with pytest.raises(k8s.ApiException) as stale:
        leases.replace_namespaced_lease("placeholders", "jhub", made)  # old resourceVersion
    assert stale.value.status == 409
    assert server.store.get(LEASES, "jhub", "placeholders")["spec"]["holderIdentity"] == "b"
    core = k8s.CoreV1Api(kube.api_client)
    core.patch_node("user-node-00000", {"spec": {"unschedulable": True}})
    assert server.store.get(NODES, "", "user-node-00000")["spec"]["unschedulable"] is True
    core.delete_namespaced_pod("jupyter-user000000", "jhub", grace_period_seconds=0)
    assert [
        p for p in server.store.items(PODS) if p["metadata"]["name"] == "jupyter-user000000"
    ] == []
