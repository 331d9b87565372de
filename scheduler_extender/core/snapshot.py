"""Building and updating snapshots without mutating them.

Every function returns new values and leaves its inputs untouched, so a reader holding an old
snapshot never sees a half-applied change.  Batching many changes into a new ``Snapshot`` is the
caller's business: the watch cache (``cache/store.py``) publishes batches over persistent maps,
and the simulator (``sim/cluster.py``) updates one ``NodeInfo`` at a time in place; both build
every ``NodeInfo`` with the functions here, so totals and ``NodeTerms`` stay consistent.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def empty_snapshot() -> Snapshot:
    return Snapshot(MappingProxyType({}), MappingProxyType({}))
