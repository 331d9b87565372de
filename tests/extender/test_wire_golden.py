"""Golden request/reply pairs in kube-scheduler's exact wire shape.

The requests in tests/golden/ are written from the upstream Go types
(staging/src/k8s.io/kube-scheduler/extender/v1/types.go): Go field names as JSON keys, a Go
``encoding/json`` nil pointer as ``null``, and the nested v1.Pod as the scheduler's informer cache
holds it (no kind/apiVersion).  The replies were reviewed by hand against the policy and must not
change unless the policy does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import StaticState, load_snapshot_file
from scheduler_extender.extender.wire import (
    ExtenderBindingResult,
    ExtenderFilterResult,
    ExtenderPreemptionResult,
    HostPriorityList,
)

GOLDEN = Path(__file__).parent / "golden"

#: Go struct field names of each upstream reply type, in declaration order.
REPLY_KEYS = {
    "filter": ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"],
    "preempt": ["NodeNameToMetaVictims"],
    "bind": ["Error"],
}
REPLY_MODELS: dict[str, Any] = {
    "filter": ExtenderFilterResult,
    "prioritize": HostPriorityList,
    "preempt": ExtenderPreemptionResult,
    "bind": ExtenderBindingResult,
}


@pytest.fixture(scope="module")
def client() -> TestClient:
    state = StaticState(load_snapshot_file(GOLDEN / "cluster.yaml"))
    return TestClient(create_app(Settings(), state=state))


@pytest.mark.parametrize(
    ("verb", "case"),
    [
        ("filter", "filter_names"),
        ("filter", "filter_nodes"),
        ("prioritize", "prioritize_names"),
        ("preempt", "preempt_meta"),
        ("bind", "bind"),
    ],
    ids=lambda v: v,
)
def test_golden(client: TestClient, verb: str, case: str) -> None:
    request = (GOLDEN / f"{case}.request.json").read_bytes()
    expected = json.loads((GOLDEN / f"{case}.response.json").read_text())
    reply = client.post(f"/{verb}", content=request, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body == expected
    if verb == "prioritize":
        assert isinstance(body, list)  # a bare array, not an object
        assert all(list(entry) == ["Host", "Score"] for entry in body)
    else:
        assert list(body) == REPLY_KEYS[verb]
    # and the upstream-shaped models accept it
    REPLY_MODELS[verb].model_validate(body)


def test_full_node_mode_echoes_the_schedulers_node_objects(client: TestClient) -> None:
    """Upstream rebuilds its node list from the reply's Nodes.items, so they must be the very
    objects it sent (ref: pkg/scheduler/extender.go Filter)."""
    request = json.loads((GOLDEN / "filter_nodes.request.json").read_text())
    reply = client.post("/filter", json=request).json()
    sent = {n["metadata"]["name"]: n for n in request["Nodes"]["items"]}
    for item in reply["Nodes"]["items"]:
        assert item == sent[item["metadata"]["name"]]
    assert reply["NodeNames"] is None


def test_names_mode_reply_names_are_a_subset_of_the_request(client: TestClient) -> None:
    request = json.loads((GOLDEN / "filter_names.request.json").read_text())
    reply = client.post("/filter", json=request).json()
    assert set(reply["NodeNames"]) <= set(request["NodeNames"])
    assert reply["Nodes"] is None


def test_preempt_with_full_victims(client: TestClient) -> None:
    """nodeCacheCapable false sends whole victim pods; the reply is MetaVictims all the same."""
    cluster = json.loads((GOLDEN / "pod.json").read_text())
    victim_user = {
        "metadata": {"name": "jupyter-bob", "namespace": "jhub", "uid": "6a3c1b0e-bob"},
        "spec": {"priority": 0},
    }
    victim_ph = {"metadata": {"name": "user-placeholder-1", "namespace": "jhub",
                              "uid": "9d5e3f21-ph1", "labels": {"component": "user-placeholder"}},
                 "spec": {"priority": -10}}  # fmt: skip
    request = {
        "Pod": cluster,
        "NodeNameToVictims": {
            "node-a": {"Pods": [victim_user], "NumPDBViolations": 0},
            "node-b": {"Pods": [victim_ph], "NumPDBViolations": 0},
        },
        "NodeNameToMetaVictims": None,
    }
    reply = client.post("/preempt", json=request).json()
    assert reply == {
        "NodeNameToMetaVictims": {"node-b": {"Pods": [{"UID": "9d5e3f21-ph1"}],
                                             "NumPDBViolations": 0}}
    }  # fmt: skip
