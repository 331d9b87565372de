"""The cache's pure state: what the watches said, what ``bind`` assumed, and the snapshot of both.

``Store`` is deliberately single-threaded and I/O-free: it takes already-converted core values
(``Node``/``Pod``) and times passed in by the caller, and ``publish()`` returns a new immutable
``Snapshot`` with every change since the last publish applied at once.  The live state runs it on
one thread and swaps the published snapshot in with a single reference assignment, so a reader
holding a snapshot never sees a half-applied batch.

Rules it keeps:

- terminal (Succeeded/Failed) and deleted pods leave their node;
- a pod whose node is unknown is remembered and joins the node when the node appears (nodes and
  pods are listed by separate watches, in either order);
- an assumed pod counts on its node until the watch shows the pod bound (the truth then takes
  over), the pod is deleted, ``forget`` is called (binding failed) or it expires;
- a relist replaces the truth of one kind but keeps assumptions: the list may predate the pod.

Publishing costs O(nodes + changes): the node map is copied, pod placement lives in a persistent
hash map (``immutables.Map``) so 150,000 pods are not copied per batch.  When a batch touches a
large share of the pods (initial sync, a relist after a restore), the snapshot is rebuilt from
scratch instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import immutables

from scheduler_extender.core.snapshot import node_info, with_node, with_pod, without_pod
from scheduler_extender.core.types import Node, NodeInfo, Pod, Snapshot


@dataclass(frozen=True, slots=True)
class Assumed:
    """A pod ``bind`` placed on ``pod.node_name`` before the watch confirmed it."""

    pod: Pod
    expires: float


def empty_live_snapshot() -> Snapshot:
    return Snapshot(MappingProxyType({}), immutables.Map())


class Store:
    """Truth from list+watch plus assumptions; ``publish()`` turns pending changes into a
    snapshot."""

    #: Rebuild instead of patching when a batch touches more than this share of the pods.
    REBUILD_SHARE = 0.25

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.pods: dict[str, Pod] = {}
        self.by_node: dict[str, set[str]] = {}
        self.assumed: dict[str, Assumed] = {}
        self.snapshot = empty_live_snapshot()
        #: User pods that left a node (deleted or finished) since the owner last took them: what
        #: the lifetime learner counts (``LiveState`` hands them over after each pass).
        self.ended: list[Pod] = []
        self._dirty_nodes: set[str] = set()
        self._dirty_pods: set[str] = set()
        #: Relists in progress: name/uid -> the value to hold once the list is complete.
        self._listed_nodes: dict[str, Node] | None = None
        self._listed_pods: dict[str, Pod] | None = None

    # --- truth: nodes ---

    def upsert_node(self, node: Node) -> None:
        if self.nodes.get(node.name) != node:
            self.nodes[node.name] = node
            self._dirty_nodes.add(node.name)

    def delete_node(self, name: str) -> None:
        if self.nodes.pop(name, None) is not None:
            self._dirty_nodes.add(name)

    def replace_nodes(self, nodes: Iterable[Node] | Mapping[str, Node]) -> None:
        """The complete set of nodes, from a (re)list (values, or a map by name)."""
        fresh = nodes if isinstance(nodes, Mapping) else {n.name: n for n in nodes}
        for name in self.nodes.keys() - fresh.keys():
            self.delete_node(name)
        for node in fresh.values():
            self.upsert_node(node)

    # --- truth: pods ---

    def _place(self, uid: str, old: Pod | None, new: Pod | None) -> None:
        if old is not None and old.node_name and (new is None or new.node_name != old.node_name):
            where = self.by_node.get(old.node_name)
            if where is not None:
                where.discard(uid)
                if not where:
                    del self.by_node[old.node_name]
        if new is not None and new.node_name:
            self.by_node.setdefault(new.node_name, set()).add(uid)

    def upsert_pod(self, pod: Pod) -> None:
        """A pod that exists and is not terminal (ADDED/MODIFIED, or a list item)."""
        old = self.pods.get(pod.uid)
        if old != pod:
            self.pods[pod.uid] = pod
            self._place(pod.uid, old, pod)
            self._dirty_pods.add(pod.uid)
        if pod.node_name and pod.uid in self.assumed:
            del self.assumed[pod.uid]  # the watch confirms the binding: truth takes over
            self._dirty_pods.add(pod.uid)

    def delete_pod(self, uid: str) -> None:
        """A pod that was deleted or finished (Succeeded/Failed): it frees its node."""
        old = self.pods.pop(uid, None)
        if old is not None:
            self._place(uid, old, None)
            self._dirty_pods.add(uid)
            if old.node_name and not old.placeholder:
                self.ended.append(old)
        if self.assumed.pop(uid, None) is not None:
            self._dirty_pods.add(uid)

    def replace_pods(self, pods: Iterable[Pod] | Mapping[str, Pod]) -> None:
        """The complete set of non-terminal pods, from a (re)list (values, or a map by uid)."""
        fresh = pods if isinstance(pods, Mapping) else {p.uid: p for p in pods}
        for uid in self.pods.keys() - fresh.keys():
            old = self.pods.pop(uid)
            self._place(uid, old, None)
            self._dirty_pods.add(uid)
        for pod in fresh.values():
            self.upsert_pod(pod)

    # --- relists, page by page ---

    def begin_relist(self, kind: str) -> None:
        """Start collecting a (re)list of ``kind`` ("nodes" or "pods"); the truth and the
        snapshot stay as they are until ``end_relist``, so readers never see half a list."""
        if kind == "nodes":
            self._listed_nodes = {}
        else:
            self._listed_pods = {}

    def relist_page(self, kind: str, values: Iterable[Node | Pod]) -> None:
        """One page of the list.  A value equal to the one already held is recorded as *that*
        object, so the page's freshly converted copy is garbage as soon as the page is done:
        a relist of an unchanged cluster then costs a map of references, not a second copy of
        every pod (see benchmarks/cache_sync.py, relist)."""
        if kind == "nodes":
            nodes = self._listed_nodes if self._listed_nodes is not None else {}
            self._listed_nodes = nodes
            for node in values:
                assert isinstance(node, Node)
                old_node = self.nodes.get(node.name)
                nodes[node.name] = old_node if old_node is not None and old_node == node else node
        else:
            pods = self._listed_pods if self._listed_pods is not None else {}
            self._listed_pods = pods
            for pod in values:
                assert isinstance(pod, Pod)
                old_pod = self.pods.get(pod.uid)
                pods[pod.uid] = old_pod if old_pod is not None and old_pod == pod else pod

    def end_relist(self, kind: str) -> None:
        """The list is complete: it replaces the truth of ``kind``.  KeyError if none began
        (or it was aborted): a partial list must never be applied as the whole."""
        if kind == "nodes":
            nodes, self._listed_nodes = self._listed_nodes, None
            if nodes is None:
                raise KeyError(f"no relist of {kind} in progress")
            self.replace_nodes(nodes)
        else:
            pods, self._listed_pods = self._listed_pods, None
            if pods is None:
                raise KeyError(f"no relist of {kind} in progress")
            self.replace_pods(pods)

    def abort_relist(self, kind: str) -> None:
        """The list failed part way: forget what it collected."""
        if kind == "nodes":
            self._listed_nodes = None
        else:
            self._listed_pods = None

    # --- assumptions ---

    def assume(self, uid: str, node: str, expires: float, pod: Pod | None = None) -> str:
        """Count pod ``uid`` on ``node`` until confirmed, forgotten or ``expires``.

        ``pod`` is used when the watch has not delivered the pod yet.  Returns "" when assumed,
        else why not ("unknown pod", "already bound to n1").
        """
        known = self.pods.get(uid) or pod
        if known is None:
            return "unknown pod"
        if self.pods.get(uid) is not None and known.node_name:
            return f"already bound to {known.node_name}"
        self.assumed[uid] = Assumed(replace(known, node_name=node), expires)
        self._dirty_pods.add(uid)
        return ""

    def forget(self, uid: str) -> bool:
        if self.assumed.pop(uid, None) is None:
            return False
        self._dirty_pods.add(uid)
        return True

    def expire(self, now: float) -> int:
        """Drop assumptions whose time is up; returns how many."""
        gone = [uid for uid, a in self.assumed.items() if a.expires <= now]
        for uid in gone:
            self.forget(uid)
        return len(gone)

    def next_expiry(self) -> float | None:
        return min((a.expires for a in self.assumed.values()), default=None)

    # --- the snapshot ---

    def effective(self, uid: str) -> Pod | None:
        """The pod as the snapshot should hold it: the assumption while one is held, else the
        truth."""
        assumed = self.assumed.get(uid)
        return assumed.pod if assumed is not None else self.pods.get(uid)

    @property
    def pending(self) -> int:
        return len(self._dirty_nodes) + len(self._dirty_pods)

    def publish(self) -> Snapshot:
        """A snapshot with every pending change applied; the previous one is left untouched."""
        if not self._dirty_nodes and not self._dirty_pods:
            return self.snapshot
        if len(self._dirty_pods) > self.REBUILD_SHARE * max(len(self.snapshot.pod_nodes), 1000):
            self.snapshot = self._rebuild()
        else:
            self.snapshot = self._patch()
        self._dirty_nodes.clear()
        self._dirty_pods.clear()
        return self.snapshot

    def _rebuild(self) -> Snapshot:
        by_node: dict[str, list[Pod]] = {}
        for uid in self.pods.keys() | self.assumed.keys():
            pod = self.effective(uid)
            if pod is not None and pod.node_name in self.nodes:
                by_node.setdefault(pod.node_name, []).append(pod)
        infos = {name: node_info(node, by_node.get(name, ())) for name, node in self.nodes.items()}
        # Filled one key at a time rather than immutables.Map(dict): building 150,000 entries in
        # one C call holds the GIL for ~0.1 s, stalling the event loop that serves the scheduler.
        placement: immutables.MapMutation[str, str]
        with immutables.Map[str, str]().mutate() as placement:
            for name, info in infos.items():
                for uid in info.pods:
                    placement[uid] = name
            built = placement.finish()
        return Snapshot(MappingProxyType(infos), built)

    def _patch(self) -> Snapshot:
        nodes: dict[str, NodeInfo] = dict(self.snapshot.nodes)
        placement = self.snapshot.pod_nodes
        assert isinstance(placement, immutables.Map)
        dirty_pods = set(self._dirty_pods)
        with placement.mutate() as where:
            for name in self._dirty_nodes:
                node = self.nodes.get(name)
                info = nodes.get(name)
                if node is None:
                    if info is not None:
                        for uid in info.pods:
                            if where.get(uid) == name:
                                del where[uid]
                        del nodes[name]
                elif info is None:
                    nodes[name] = node_info(node)
                    # Pods that were waiting for this node join it now.
                    dirty_pods |= self.by_node.get(name, set())
                    dirty_pods |= {u for u, a in self.assumed.items() if a.pod.node_name == name}
                else:
                    nodes[name] = with_node(info, node)
            for uid in dirty_pods:
                pod = self.effective(uid)
                target = pod.node_name if pod is not None and pod.node_name in nodes else ""
                current = where.get(uid)
                if current is not None and current != target:
                    if current in nodes:
                        nodes[current] = without_pod(nodes[current], uid)
                    del where[uid]
                if target and pod is not None:
                    nodes[target] = with_pod(nodes[target], pod)
                    where[uid] = target
            placement = where.finish()
        return Snapshot(MappingProxyType(nodes), placement)


def snapshot_pods(snapshot: Snapshot) -> Mapping[str, frozenset[str]]:
    """Pod UIDs per node: what tests compare against the API server's truth."""
    return {name: frozenset(info.pods) for name, info in snapshot.nodes.items()}
