"""The HTTP shell: bad input is a clear 400, never a 500 or a crash; health, readiness, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from scheduler_extender.cache.readiness import Readiness
from scheduler_extender.core.types import Snapshot
from scheduler_extender.extender.app import BIND_DISABLED, create_app
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import StaticState
from tests.factories import node, pod, pod_json, snapshot

SNAP = snapshot([node("a"), node("b")], [pod(cpu=1000, node_name="b")])


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(Settings(max_body_bytes=64 * 1024), state=StaticState(SNAP)))


def _args(**override: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"Pod": pod_json(), "Nodes": None, "NodeNames": ["a", "b"]}
    args.update(override)
    return args


BAD = [
    pytest.param(b"{not json", "invalid JSON", id="malformed-json"),
    pytest.param(b"[]", "request body must be a JSON object, got array",
                 id="array-instead-of-object"),
    pytest.param(json.dumps({"NodeNames": ["a"]}).encode(), "Pod: Field required", id="no-pod"),
    pytest.param(json.dumps(_args(Pod=None)).encode(), "Pod: Input should be a valid dictionary",
                 id="null-pod"),
    pytest.param(json.dumps(_args(NodeNames=None)).encode(), "one of Nodes or NodeNames",
                 id="neither-nodes-form"),
    pytest.param(json.dumps(_args(Nodes={"items": []})).encode(), "mutually exclusive",
                 id="both-nodes-forms"),
    pytest.param(json.dumps(_args(NodeNames=["a", 3])).encode(), "NodeNames.1",
                 id="wrong-type-in-names"),
    pytest.param(json.dumps(_args(NodeNames="a")).encode(), "NodeNames", id="names-not-a-list"),
    pytest.param(json.dumps(_args(Pod={"spec": {"containers": [{"resources": {"requests":
                 {"cpu": "lots"}}}]}})).encode(),
                 "Pod.spec.containers[0].resources.requests.cpu: invalid quantity",
                 id="bad-quantity"),
    pytest.param(json.dumps(_args(Pod={"spec": {"priority": "high"}})).encode(),
                 "Pod.spec.priority", id="bad-priority"),
    pytest.param(json.dumps(_args(NodeNames=None, Nodes={"items": [{"metadata": {}}]})).encode(),
                 "Nodes.items.0.metadata.name", id="node-without-name"),
    pytest.param(b"", "empty request body", id="empty-body"),
]  # fmt: skip


@pytest.mark.parametrize("verb", ["filter", "prioritize"])
@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_input_is_a_400_naming_the_problem(
    client: TestClient, verb: str, body: bytes, message: str
) -> None:
    reply = client.post(f"/{verb}", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]


@pytest.mark.parametrize(
    ("verb", "body", "message"),
    [
        ("preempt", {"NodeNameToMetaVictims": {}}, "Pod: Field required"),
        ("preempt", {"Pod": pod_json(), "NodeNameToVictims": {}, "NodeNameToMetaVictims": {}},
         "mutually exclusive"),
        ("preempt", {"Pod": pod_json(), "NodeNameToMetaVictims": {"a": {"Pods": [{"ID": 1}]}}},
         "NodeNameToMetaVictims.a.Pods.0.UID"),
        ("preempt", {"Pod": pod_json(), "NodeNameToVictims": {"a": {"Pods": [
            {"spec": {"priority": "x"}}]}}}, "NodeNameToVictims.a.Pods.0.spec.priority"),
        ("bind", {"PodName": "p", "PodNamespace": "ns", "Node": "a"}, "PodUID: Field required"),
        ("bind", {"PodName": 1, "PodNamespace": "ns", "PodUID": "u", "Node": "a"}, "PodName"),
    ],
    ids=["preempt-no-pod", "preempt-both-forms", "preempt-bad-meta", "preempt-bad-victim",
         "bind-missing-uid", "bind-wrong-type"],
)  # fmt: skip
def test_bad_preempt_and_bind_input(
    client: TestClient, verb: str, body: dict[str, Any], message: str
) -> None:
    reply = client.post(f"/{verb}", json=body)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]


def test_body_over_the_limit_is_refused_by_content_length(client: TestClient) -> None:
    names = [f"node-{i:06d}" for i in range(10_000)]
    reply = client.post("/prioritize", json=_args(NodeNames=names))
    assert reply.status_code == 400
    assert "exceeds max_body_bytes=65536" in reply.json()["error"]


def test_body_over_the_limit_is_refused_when_streamed_without_length(client: TestClient) -> None:
    payload = json.dumps(_args(NodeNames=[f"n{i}" for i in range(20_000)])).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    reply = client.post("/prioritize", content=chunks())
    assert reply.status_code == 400
    assert "exceeds max_body_bytes" in reply.json()["error"]


def test_huge_node_name_lists_are_accepted_and_unknown_nodes_counted() -> None:
    app = create_app(Settings(), state=StaticState(SNAP))
    client = TestClient(app)
    names = ["a", "b"] + [f"ghost-{i}" for i in range(5000)]
    reply = client.post("/prioritize", json=_args(NodeNames=names))
    assert reply.status_code == 200
    body = reply.json()
    assert len(body) == len(names)
    assert {e["Host"]: e["Score"] for e in body[:2]} == {"a": 9, "b": 10}
    assert all(e["Score"] == 0 for e in body[2:])
    metrics = client.get("/metrics").text
    assert 'scheduler_extender_unknown_nodes_total{verb="prioritize"} 5000.0' in metrics


def test_missing_optional_maps_and_null_items_are_accepted(client: TestClient) -> None:
    reply = client.post("/filter", json={"Pod": pod_json(), "Nodes": {"items": None}})
    assert reply.status_code == 200
    assert reply.json()["Nodes"] == {"metadata": {}, "items": []}
    reply = client.post("/preempt", json={"Pod": pod_json()})
    assert reply.json() == {"NodeNameToMetaVictims": {}}
    reply = client.post("/preempt", json={"Pod": pod_json(), "NodeNameToMetaVictims": {"a": None}})
    assert reply.json() == {"NodeNameToMetaVictims": {}}


def test_bind_without_a_binder_answers_with_a_clear_error(client: TestClient) -> None:
    body = {"PodName": "p", "PodNamespace": "ns", "PodUID": "u", "Node": "a"}
    reply = client.post("/bind", json=body)
    assert reply.status_code == 200
    assert reply.json() == {"Error": BIND_DISABLED}


def test_bind_goes_through_the_binder() -> None:
    calls: list[str] = []

    class Binder:
        async def bind(self, args: Any) -> str:
            calls.append(f"{args.PodNamespace}/{args.PodName}->{args.Node}")
            return "" if args.Node == "a" else "node gone"

    client = TestClient(create_app(Settings(), state=StaticState(SNAP), binder=Binder()))
    ok = client.post("/bind", json={"PodName": "p", "PodNamespace": "ns", "PodUID": "u",
                                    "Node": "a"})  # fmt: skip
    failed = client.post("/bind", json={"PodName": "p", "PodNamespace": "ns", "PodUID": "u",
                                        "Node": "z"})  # fmt: skip
    assert ok.json() == {"Error": ""}
    assert failed.json() == {"Error": "node gone"}
    assert calls == ["ns/p->a", "ns/p->z"]


class _BrokenState:
    def __init__(self, ready: bool) -> None:
        self.ready = ready

    def snapshot(self) -> Snapshot:
        raise RuntimeError("boom")

    def readiness(self) -> Readiness:
        return Readiness(self.ready, "" if self.ready else "nodes not listed yet")

    def describe(self) -> str:
        return "broken"


def test_internal_failure_is_a_500_and_the_app_keeps_answering() -> None:
    registry = CollectorRegistry()
    client = TestClient(create_app(Settings(), state=_BrokenState(True), registry=registry))
    reply = client.post("/prioritize", json=_args())
    assert reply.status_code == 500
    assert "internal error in prioritize" in reply.json()["error"]
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert (
        registry.get_sample_value(
            "scheduler_extender_requests_total", {"verb": "prioritize", "outcome": "error"}
        )
        == 1.0
    )


@pytest.mark.parametrize("verb", ["filter", "prioritize", "preempt"])
def test_not_ready_state_answers_503_so_the_scheduler_falls_back(verb: str) -> None:
    """Scores from a view that is not ready would override kube-scheduler's fresh in-tree
    scoring (the extender leads by weight); a 503 makes an ignorable extender step aside."""
    registry = CollectorRegistry()
    client = TestClient(create_app(Settings(), state=_BrokenState(False), registry=registry))
    reply = client.post(f"/{verb}", json=_args())
    assert reply.status_code == 503
    assert reply.json() == {"error": "not ready: nodes not listed yet"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "nodes not listed yet" in ready.text
    assert (
        registry.get_sample_value(
            "scheduler_extender_requests_total", {"verb": verb, "outcome": "not_ready"}
        )
        == 1.0
    )


def test_bind_is_not_gated_by_readiness() -> None:
    client = TestClient(create_app(Settings(), state=_BrokenState(False)))
    body = {"PodName": "p", "PodNamespace": "ns", "PodUID": "u", "Node": "a"}
    assert client.post("/bind", json=body).json() == {"Error": BIND_DISABLED}


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/readyz").status_code == 200
    client.post("/prioritize", json=_args())
    client.post("/prioritize", content=b"{", headers={"Content-Type": "application/json"})
    text = client.get("/metrics").text
    assert 'scheduler_extender_requests_total{outcome="ok",verb="prioritize"} 1.0' in text
    assert 'scheduler_extender_requests_total{outcome="bad_request",verb="prioritize"} 1.0' in text
    assert 'scheduler_extender_request_duration_seconds_count{verb="prioritize"} 2.0' in text
    assert "scheduler_extender_nodes_known 2.0" in text


def test_filter_metrics_count_rejections(client: TestClient) -> None:
    big = pod_json(cpu="3990m")
    client.post("/filter", json=_args(Pod=big))
    text = client.get("/metrics").text
    assert 'scheduler_extender_filtered_nodes_total{resolvable="true"} 1.0' in text


def test_each_app_has_its_own_metrics() -> None:
    one = TestClient(create_app(Settings(), state=StaticState(SNAP)))
    two = TestClient(create_app(Settings(), state=StaticState(SNAP)))
    one.post("/prioritize", json=_args())
    assert 'outcome="ok",verb="prioritize"} 1.0' in one.get("/metrics").text
    assert 'outcome="ok",verb="prioritize"} 1.0' not in two.get("/metrics").text


def test_openapi_lists_the_verbs(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/filter", "/prioritize", "/preempt", "/bind"} <= set(paths)
