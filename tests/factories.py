"""Builders for pods, nodes and snapshots, as core values and as Kubernetes JSON, and the way
back from core values to Kubernetes JSON (the parity test replays the simulator's requests
through the real app, which must parse them with ``convert`` exactly as it parses a cluster's).
The fake API server's realistic full-size objects are in tests/fakeapi/objects.py (it also runs
standalone, for the benchmarks).

Defaults describe a z2jh-like user pool: 4-cpu/26Gi nodes labelled and tainted for users, user
pods requesting 50m/512Mi and tolerating the user taint.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from scheduler_extender.core.policy import NODE_PURPOSE_LABEL
from scheduler_extender.core.snapshot import build_snapshot
from scheduler_extender.core.types import Node, Pod, Resources, Snapshot, Taint, Toleration

GI = 1024**3
MI = 1024**2
IMAGE = "docker.io/jupyter/scipy-notebook:latest"
USER_TAINT = Taint("hub.jupyter.org/dedicated", "user", "NoSchedule")
USER_TOLERATIONS = (
    Toleration("hub.jupyter.org/dedicated", "Equal", "user", "NoSchedule"),
    Toleration("hub.jupyter.org_dedicated", "Equal", "user", "NoSchedule"),
)
_uids = itertools.count(1)


def resources(cpu: int = 0, memory: int = 0, pods: int = 0, **scalar: int) -> Resources:
    return Resources(cpu, memory, pods, {k.replace("_", "/"): v for k, v in scalar.items()})


def node(
    name: str,
    *,
    cpu: int = 4000,
    memory: int = 26 * GI,
    pods: int = 110,
    created: float = 0.0,
    user: bool = True,
    taints: Iterable[Taint] | None = None,
    images: Iterable[str] = (IMAGE,),
    unschedulable: bool = False,
    labels: Mapping[str, str] | None = None,
    scalar: Mapping[str, int] | None = None,
) -> Node:
    all_labels = {"kubernetes.io/hostname": name}
    if user:
        all_labels[NODE_PURPOSE_LABEL] = "user"
    all_labels.update(labels or {})
    return Node(
        name=name,
        allocatable=Resources(cpu, memory, pods, dict(scalar or {})),
        labels=all_labels,
        taints=tuple((USER_TAINT,) if taints is None and user else (taints or ())),
        unschedulable=unschedulable,
        images=frozenset(images),
        created=created,
    )


def pod(
    name: str | None = None,
    *,
    cpu: int = 50,
    memory: int = 512 * MI,
    node_name: str = "",
    priority: int = 0,
    placeholder: bool = False,
    images: Iterable[str] = (IMAGE,),
    tolerations: Iterable[Toleration] = USER_TOLERATIONS,
    created: float = 0.0,
    uid: str | None = None,
    **kwargs: Any,
) -> Pod:
    n = next(_uids)
    return Pod(
        uid=uid or f"uid-{n}",
        name=name or f"pod-{n}",
        namespace="jhub",
        requests=Resources(cpu, memory, 1),
        priority=priority,
        placeholder=placeholder,
        node_name=node_name,
        tolerations=tuple(tolerations),
        images=tuple(images),
        created=created,
        **kwargs,
    )


def placeholder(node_name: str = "", *, cpu: int = 50, memory: int = 512 * MI) -> Pod:
    return pod(
        cpu=cpu, memory=memory, node_name=node_name, priority=-10, placeholder=True, images=()
    )


def snapshot(nodes: Iterable[Node], pods: Iterable[Pod] = ()) -> Snapshot:
    return build_snapshot(nodes, pods)


# --- Kubernetes JSON ------------------------------------------------------------------------


def pod_json(
    name: str = "jupyter-alice",
    *,
    uid: str = "uid-alice",
    cpu: str | None = "50m",
    memory: str | None = "512Mi",
    image: str = "jupyter/scipy-notebook",
    node_name: str | None = None,
    priority: int | None = 0,
    labels: Mapping[str, str] | None = None,
    tolerate_user: bool = True,
    extra_spec: Mapping[str, Any] | None = None,
    phase: str = "Pending",
) -> dict[str, Any]:
    """A pod as the API server returns it (the shape kube-scheduler forwards)."""
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    spec: dict[str, Any] = {
        "schedulerName": "user-scheduler",
        "containers": [{"name": "notebook", "image": image, "resources": {"requests": requests}}],
        "restartPolicy": "OnFailure",
        "terminationGracePeriodSeconds": 1,
    }
    if priority is not None:
        spec["priority"] = priority
    if tolerate_user:
        spec["tolerations"] = [
            {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
             "effect": "NoSchedule"},
            {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user",
             "effect": "NoSchedule"},
        ]  # fmt: skip
    if node_name:
        spec["nodeName"] = node_name
    spec.update(extra_spec or {})
    return {
        "metadata": {
            "name": name,
            "namespace": "jhub",
            "uid": uid,
            "resourceVersion": "1234",
            "creationTimestamp": "2026-11-25T10:00:00Z",
            "labels": dict(labels or {"component": "singleuser-server"}),
        },
        "spec": spec,
        "status": {"phase": phase},
    }


def node_json(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "26Gi",
    pods: str = "110",
    user: bool = True,
    images: Iterable[str] = ("docker.io/jupyter/scipy-notebook:latest",),
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    created: str = "2026-11-25T08:00:00Z",
) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if user:
        labels[NODE_PURPOSE_LABEL] = "user"
    if taints is None:
        taints = (
            [{"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}]
            if user
            else []
        )
    spec: dict[str, Any] = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": created},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
            "images": [{"names": [i], "sizeBytes": 3 * GI} for i in images],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


# --- core values back to Kubernetes JSON ----------------------------------------------------


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_to_json(pod: Pod) -> dict[str, Any]:
    """A core ``Pod`` back to the JSON the API server lists (what ``convert`` reads back)."""
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


def node_to_json(node: Node) -> dict[str, Any]:
    """A core ``Node`` back to the JSON the API server lists."""
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
    """Every node and pod of ``snapshot`` as Kubernetes JSON."""
    nodes = [node_to_json(info.node) for info in snapshot.nodes.values()]
    pods = [pod_to_json(pod) for info in snapshot.nodes.values() for pod in info.pods.values()]
    return nodes, pods
