"""A cluster snapshot the simulator updates in place, through the core's own helpers.

The core's ``apply_changes`` copies the node and pod maps on every call, which is right for the
service (readers hold old snapshots while a new one is built) but costs O(pods) per bind in a
simulation of thousands of pods.  The simulator is single-threaded and nobody keeps an old view,
so ``LiveSnapshot`` keeps the two maps as dicts, replaces one ``NodeInfo`` per change with
``core.snapshot.with_pod``/``without_pod``/``with_node``/``node_info``, and exposes them as the
core's ``Snapshot`` type through read-only proxies.  ``freeze`` returns a detached copy for
anything that must outlive the next change (the parity test's records).
"""

from __future__ import annotations

from types import MappingProxyType

from scheduler_extender.core.snapshot import node_info, with_node, with_pod, without_pod
from scheduler_extender.core.types import Node, NodeInfo, Pod, Snapshot


class LiveSnapshot:
    """Nodes and pods, updated in place; ``snapshot`` is a live read-only ``Snapshot`` view."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pod_nodes: dict[str, str] = {}
        self.snapshot = Snapshot(MappingProxyType(self._nodes), MappingProxyType(self._pod_nodes))

    @property
    def nodes(self) -> dict[str, NodeInfo]:
        return self._nodes

    def upsert_node(self, node: Node) -> None:
        current = self._nodes.get(node.name)
        self._nodes[node.name] = node_info(node) if current is None else with_node(current, node)

    def delete_node(self, name: str) -> None:
        gone = self._nodes.pop(name, None)
        if gone is not None:
            for uid in gone.pods:
                if self._pod_nodes.get(uid) == name:
                    del self._pod_nodes[uid]

    def delete_pod(self, uid: str) -> None:
        where = self._pod_nodes.pop(uid, None)
        if where is not None and where in self._nodes:
            self._nodes[where] = without_pod(self._nodes[where], uid)

    def upsert_pod(self, pod: Pod) -> None:
        """Place ``pod`` on ``pod.node_name`` (moving it if it was elsewhere); a pod naming no
        known node is removed, as ``core.snapshot.apply_changes`` does."""
        if self._pod_nodes.get(pod.uid) != pod.node_name:
            self.delete_pod(pod.uid)
        target = self._nodes.get(pod.node_name) if pod.node_name else None
        if target is not None:
            self._nodes[pod.node_name] = with_pod(target, pod)
            self._pod_nodes[pod.uid] = pod.node_name

    def freeze(self) -> Snapshot:
        return Snapshot(
            MappingProxyType(dict(self._nodes)), MappingProxyType(dict(self._pod_nodes))
        )
