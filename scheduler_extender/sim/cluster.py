"""A cluster snapshot the simulator updates in place, through the core's own helpers.

Copying the node and pod maps on every change, as the service's cache must (readers hold old
snapshots while a new one is built), would cost O(pods) per bind in a simulation of thousands of
pods.  The simulator is single-threaded and nobody keeps an old view,
so ``LiveSnapshot`` keeps the two maps as dicts, replaces one ``NodeInfo`` per change with
``core.snapshot.with_pod``/``without_pod``/``with_node``/``node_info``, and exposes them as the
core's ``Snapshot`` type through read-only proxies.  ``freeze`` returns a detached copy for
anything that must outlive the next change (the parity test's records).

It also keeps each node's *non-zero* requests (kube-scheduler's NodeInfo.NonZeroRequested: a pod
without a cpu or memory request counts as 100m / 200Mi for scoring) up to date per change, as
kube-scheduler's own cache does, instead of summing a node's pods on every score.
"""

from __future__ import annotations

from types import MappingProxyType

from scheduler_extender.core.snapshot import node_info, with_node, with_pod, without_pod
from scheduler_extender.core.types import Node, NodeInfo, Pod, Snapshot
from scheduler_extender.sim.plugins import nonzero


class LiveSnapshot:
    """Nodes and pods, updated in place; ``snapshot`` is a live read-only ``Snapshot`` view."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pod_nodes: dict[str, str] = {}
        self.nonzero: dict[str, tuple[int, int]] = {}
        self.snapshot = Snapshot(MappingProxyType(self._nodes), MappingProxyType(self._pod_nodes))

    @property
    def nodes(self) -> dict[str, NodeInfo]:
        return self._nodes

    def upsert_node(self, node: Node) -> None:
        current = self._nodes.get(node.name)
        if current is None:
            self._nodes[node.name] = node_info(node)
            self.nonzero[node.name] = (0, 0)
        else:
            self._nodes[node.name] = with_node(current, node)

    def delete_node(self, name: str) -> None:
        gone = self._nodes.pop(name, None)
        self.nonzero.pop(name, None)
        if gone is not None:
            for uid in gone.pods:
                if self._pod_nodes.get(uid) == name:
                    del self._pod_nodes[uid]

    def delete_pod(self, uid: str) -> None:
        where = self._pod_nodes.pop(uid, None)
        if where is not None and where in self._nodes:
            info = self._nodes[where]
            pod = info.pods.get(uid)
            self._nodes[where] = without_pod(info, uid)
            if pod is not None:
                self._add_nonzero(where, pod, -1)

    def upsert_pod(self, pod: Pod) -> None:
        """Place ``pod`` on ``pod.node_name`` (moving it if it was elsewhere); a pod naming no
        known node is removed, as the service's cache does."""
        if self._pod_nodes.get(pod.uid) != pod.node_name:
            self.delete_pod(pod.uid)
        target = self._nodes.get(pod.node_name) if pod.node_name else None
        if target is not None:
            old = target.pods.get(pod.uid)
            if old is not None:
                self._add_nonzero(pod.node_name, old, -1)
            self._nodes[pod.node_name] = with_pod(target, pod)
            self._pod_nodes[pod.uid] = pod.node_name
            self._add_nonzero(pod.node_name, pod, 1)

    def _add_nonzero(self, name: str, pod: Pod, sign: int) -> None:
        cpu, mem = nonzero(pod.requests.cpu, pod.requests.memory)
        have = self.nonzero[name]
        self.nonzero[name] = (have[0] + sign * cpu, have[1] + sign * mem)

    def freeze(self) -> Snapshot:
        return Snapshot(
            MappingProxyType(dict(self._nodes)), MappingProxyType(dict(self._pod_nodes))
        )
