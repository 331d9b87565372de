"""Core values back to the Kubernetes JSON that kube-scheduler sends and the API server lists.

Only the parity test needs this direction: it replays the simulator's requests through the real
HTTP app, which must parse them with ``convert`` exactly as it parses a live cluster's objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scheduler_extender.core.types import Node, Pod, Snapshot


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_json(pod: Pod) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if pod.requests.cpu:
        requests["cpu"] = f"{pod.requests.cpu}m"
    if pod.requests.memory:
        requests["memory"] = str(pod.requests.memory)
    spec: dict[str, Any] = {
        "schedulerName": "user-scheduler",
        "priority": pod.priority,
        "containers": [
            {"name": f"c{i}", "image": image, "resources": {"requests": requests if i == 0 else {}}}
            for i, image in enumerate(pod.images or ("registry.k8s.io/pause:3.9",))
        ],
        "tolerations": [
            {"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect}
            for t in pod.tolerations
        ],
    }
    if pod.node_name:
        spec["nodeName"] = pod.node_name
    labels = {"component": "user-placeholder" if pod.placeholder else "singleuser-server"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
            "labels": labels,
            "creationTimestamp": _time(pod.created),
        },
        "spec": spec,
        "status": {"phase": "Running" if pod.node_name else "Pending"},
    }


def node_json(node: Node) -> dict[str, Any]:
    alloc = node.allocatable
    allocatable = {"cpu": f"{alloc.cpu}m", "memory": str(alloc.memory), "pods": str(alloc.pods)}
    spec: dict[str, Any] = {
        "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in node.taints]
    }
    if node.unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": dict(node.labels),
            "creationTimestamp": _time(node.created),
        },
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "images": [{"names": [image], "sizeBytes": 1} for image in sorted(node.images)],
        },
    }


def snapshot_objects(snapshot: Snapshot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [node_json(info.node) for info in snapshot.nodes.values()]
    pods = [pod_json(pod) for info in snapshot.nodes.values() for pod in info.pods.values()]
    return nodes, pods
