"""Building and updating snapshots without mutating them.

Every function returns new values and leaves its inputs untouched, so a reader holding an old
snapshot never sees a half-applied change.  Updates copy the node mapping (O(nodes)); callers that
apply many events at once (the watch cache, the simulator) should batch them through
``apply_changes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from scheduler_extender.core.types import Node, NodeInfo, Pod, Resources, Snapshot

_ZERO = Resources()


def node_info(node: Node, pods: Iterable[Pod] = ()) -> NodeInfo:
    """A ``NodeInfo`` for ``node`` holding ``pods`` with totals computed from scratch."""
    by_uid = {p.uid: p for p in pods}
    requested = _ZERO
    placeholder = _ZERO
    for pod in by_uid.values():
        requested = requested + pod.requests
        if pod.placeholder:
            placeholder = placeholder + pod.requests
    return NodeInfo(node, MappingProxyType(by_uid), requested, placeholder)


def with_pod(info: NodeInfo, pod: Pod) -> NodeInfo:
    """``info`` with ``pod`` added (or replaced, when a pod with the same UID is there)."""
    old = info.pods.get(pod.uid)
    base = info if old is None else without_pod(info, pod.uid)
    pods = dict(base.pods)
    pods[pod.uid] = pod
    placeholder = base.placeholder_requested
    if pod.placeholder:
        placeholder = placeholder + pod.requests
    return NodeInfo(base.node, MappingProxyType(pods), base.requested + pod.requests, placeholder)


def without_pod(info: NodeInfo, uid: str) -> NodeInfo:
    """``info`` without the pod ``uid`` (unchanged if it is not there)."""
    pod = info.pods.get(uid)
    if pod is None:
        return info
    pods = dict(info.pods)
    del pods[uid]
    placeholder = info.placeholder_requested
    if pod.placeholder:
        placeholder = placeholder - pod.requests
    return NodeInfo(info.node, MappingProxyType(pods), info.requested - pod.requests, placeholder)


def with_node(info: NodeInfo, node: Node) -> NodeInfo:
    """``info`` describing an updated ``node`` object, keeping its pods."""
    return NodeInfo(node, info.pods, info.requested, info.placeholder_requested)


def build_snapshot(nodes: Iterable[Node], pods: Iterable[Pod]) -> Snapshot:
    """A snapshot from nodes and pods.  Pods whose ``node_name`` is empty or names an unknown
    node are not part of any node and are left out."""
    by_node: dict[str, list[Pod]] = {}
    for pod in pods:
        if pod.node_name:
            by_node.setdefault(pod.node_name, []).append(pod)
    infos = {n.name: node_info(n, by_node.get(n.name, ())) for n in nodes}
    pod_nodes = {uid: name for name, info in infos.items() for uid in info.pods}
    return Snapshot(MappingProxyType(infos), MappingProxyType(pod_nodes))


def apply_changes(
    snapshot: Snapshot,
    *,
    upsert_nodes: Iterable[Node] = (),
    delete_nodes: Iterable[str] = (),
    upsert_pods: Iterable[Pod] = (),
    delete_pods: Iterable[str] = (),
) -> Snapshot:
    """A new snapshot with a batch of changes applied, in the order: node upserts, pod deletions,
    pod upserts, node deletions.

    A pod upsert whose ``node_name`` differs from the pod's current node moves it; an upsert with
    an empty or unknown ``node_name`` removes the pod from every node.  Deleting a node drops its
    pods from the snapshot.
    """
    nodes: dict[str, NodeInfo] = dict(snapshot.nodes)
    pod_nodes: dict[str, str] = dict(snapshot.pod_nodes)

    for node in upsert_nodes:
        current = nodes.get(node.name)
        nodes[node.name] = node_info(node) if current is None else with_node(current, node)

    def _remove(uid: str) -> None:
        where = pod_nodes.pop(uid, None)
        if where is not None and where in nodes:
            nodes[where] = without_pod(nodes[where], uid)

    for uid in delete_pods:
        _remove(uid)
    for pod in upsert_pods:
        if pod_nodes.get(pod.uid) != pod.node_name:
            _remove(pod.uid)
        target = nodes.get(pod.node_name) if pod.node_name else None
        if target is not None:
            nodes[pod.node_name] = with_pod(target, pod)
            pod_nodes[pod.uid] = pod.node_name
    for name in delete_nodes:
        gone = nodes.pop(name, None)
        if gone is not None:
            for uid in gone.pods:
                if pod_nodes.get(uid) == name:
                    del pod_nodes[uid]

    return Snapshot(MappingProxyType(nodes), MappingProxyType(pod_nodes))


def empty_snapshot() -> Snapshot:
    return Snapshot(MappingProxyType({}), MappingProxyType({}))


def user_load(info: NodeInfo, *, placeholders_as_load: bool) -> Resources:
    """The requests that make a node "busy" for packing: every pod, or every pod but the
    placeholders (which are spare capacity a user will preempt, not load)."""
    if placeholders_as_load:
        return info.requested
    return info.requested - info.placeholder_requested


def pods_by_node(snapshot: Snapshot) -> Mapping[str, tuple[Pod, ...]]:
    return {name: tuple(info.pods.values()) for name, info in snapshot.nodes.items()}
