"""What the controller keeps of a Node (review finding I5): only what it reads.  A real
Node's JSON (managedFields, images, nodeInfo, every condition with its heartbeat) is tens of
KiB; at 5,000 nodes the controller kept hundreds of MiB it never looked at."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from scheduler_extender.kube.convert import node_from_json, node_stub, ready_since
from tests.placeholders.conftest import node_obj


def full_node() -> dict[str, Any]:
    """A Node as a real API server returns it: server-side apply bookkeeping, annotations,
    addresses, nodeInfo, every condition, images."""
    obj = node_obj("user-node-7", cpu="8", memory="52Gi")
    obj["metadata"]["uid"] = "uid-7"
    obj["metadata"]["resourceVersion"] = "12345"
    obj["metadata"]["annotations"] = {"node.alpha.kubernetes.io/ttl": "0", "volumes": "x" * 500}
    obj["metadata"]["managedFields"] = [
        {"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {"x": "y" * 2000}}}
    ]
    obj["status"]["nodeInfo"] = {"kubeletVersion": "v1.36.0", "osImage": "COS"}
    obj["status"]["addresses"] = [{"type": "InternalIP", "address": "10.0.0.7"}]
    obj["status"]["conditions"] += [
        {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": "2026-01-05T10:05:00Z"},
        {"type": "DiskPressure", "status": "False", "lastHeartbeatTime": "2026-01-05T10:05:00Z"},
    ]
    for cond in obj["status"]["conditions"]:
        cond["lastHeartbeatTime"] = "2026-01-05T10:05:00Z"
        cond["message"] = "kubelet is posting ready status"
    obj["status"]["images"] = [
        {"names": [f"registry.example/app{i}@sha256:{'a' * 64}", f"registry.example/app{i}:v1"],
         "sizeBytes": 10**9}
        for i in range(50)
    ]  # fmt: skip
    obj["spec"]["unschedulable"] = True
    return obj


@pytest.mark.parametrize("images", [False, True], ids=["no-pool-has-images", "a-pool-has-images"])
def test_the_stub_keeps_what_the_controller_reads(images: bool) -> None:
    full = full_node()
    stub = node_stub(copy.deepcopy(full), images=images)
    core_full, core_stub = node_from_json(full), node_from_json(stub)
    assert core_stub.name == core_full.name
    assert core_stub.labels == core_full.labels
    assert core_stub.taints == core_full.taints
    assert core_stub.unschedulable is core_full.unschedulable is True
    assert core_stub.allocatable == core_full.allocatable
    assert core_stub.created == core_full.created
    assert ready_since(stub) == ready_since(full) is not None
    assert core_stub.images == (core_full.images if images else frozenset())
    assert stub["metadata"]["uid"] == "uid-7"
    # And nothing else.
    assert "managedFields" not in stub["metadata"]
    assert "annotations" not in stub["metadata"]
    assert set(stub["status"]) == {"allocatable", "conditions"} | ({"images"} if images else set())
    assert [c["type"] for c in stub["status"]["conditions"]] == ["Ready"]
    assert "lastHeartbeatTime" not in stub["status"]["conditions"][0]
    # This node: 12.2 KB of JSON; 0.6 KB without images, 7.4 KB with (their names dominate).
    assert len(orjson.dumps(stub)) < len(orjson.dumps(full)) * (0.7 if images else 0.1)


def test_heartbeats_do_not_change_the_stub() -> None:
    """The kubelet's status updates (heartbeats, resourceVersion) leave the stub equal, so
    they wake nothing."""
    a, b = full_node(), full_node()
    b["metadata"]["resourceVersion"] = "99999"
    for cond in b["status"]["conditions"]:
        cond["lastHeartbeatTime"] = "2026-01-05T11:00:00Z"
    assert node_stub(a, images=True) == node_stub(b, images=True)


def test_a_node_that_is_not_ready_has_no_ready_time() -> None:
    obj = full_node()
    for cond in obj["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["status"] = "False"
    assert ready_since(node_stub(obj, images=False)) is None
