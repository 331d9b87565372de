"""A model of the Cluster Autoscaler (one node group), and an ideal autoscaler for reference.

Realistic model, every ``scan_interval`` (refs: kubernetes/autoscaler cluster-autoscaler/FAQ.md
and main.go flag defaults):

- scale-up: pods the scheduler marked unschedulable, with priority >= the expendable cutoff
  (-10; only pods *below* it are ignored) and no nominated node, are first tried on the ready
  nodes' free room (CA's filterOutSchedulable: the scheduler will place those), then on the
  nodes already being provisioned ("upcoming" nodes), then packed first-fit, largest first, onto
  new template nodes (the binpacking estimator); that many nodes are requested, up to the pool
  maximum.  Each becomes ready after a provisioning delay drawn from the scenario's range.
  With the startup taint (``core.startup_taint``), a ready node that still carries it is not
  room for CA (its snapshot marks it unready) but upcoming capacity, as a template node without
  the taint, while younger than ``startup_taint.max_node_startup_time``; it is no scale-down
  candidate (CA's unready-node removal after 20 minutes is not modelled: the taint comes off
  once the puller is done, 5-10 minutes after Ready).
- scale-down: a ready node is *unneeded* when its requested utilization (max of cpu and memory)
  is below the threshold and every pod on it can move: user pods cannot (KubeSpawner pods have
  no controller), placeholders can when they fit on the remaining nodes.  Unneeded nodes get
  the ``DeletionCandidateOfClusterAutoscaler`` PreferNoSchedule taint (up to
  ``max_bulk_soft_taint_count`` per loop).  A node unneeded for ``scale_down_unneeded_time`` is
  deleted, unless a scale-up happened in the last ``scale_down_delay_after_add``: empty nodes up
  to ``max_empty_bulk_delete`` at once, nodes holding only placeholders ``max_drain_parallelism``
  at a time (their placeholders are evicted and recreated elsewhere), never below the pool
  minimum.

Ideal model (``mode: ideal``): a ready node appears the moment a pod fits nowhere, with every
image present, and a node disappears the moment it holds no user pod.  Node-hours then measure
only how the scheduler packs (the benchmark's anchor: z2jh at 1.45 x the lower bound on a real
kube-scheduler).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from scheduler_extender.core.policy import DELETION_CANDIDATE_TAINT
from scheduler_extender.core.snapshot import node_info
from scheduler_extender.core.startup_taint import without_taint
from scheduler_extender.core.types import Node, NodeInfo, Pod
from scheduler_extender.sim.model import Kind, PodState, SimNode, SimPod

if TYPE_CHECKING:
    from scheduler_extender.sim.engine import Simulation


class Autoscaler(Protocol):
    def start(self) -> None: ...

    def loop(self) -> None: ...

    def on_unschedulable(self, sp: SimPod) -> None: ...

    def on_pod_removed(self, node: SimNode) -> None: ...


def make_autoscaler(sim: Simulation) -> Autoscaler:
    if sim.scenario.autoscaler.mode == "ideal":
        return IdealAutoscaler(sim)
    return ClusterAutoscaler(sim)


def _utilization(info: NodeInfo) -> float:
    alloc = info.node.allocatable
    cpu = info.requested.cpu / alloc.cpu if alloc.cpu else 0.0
    mem = info.requested.memory / alloc.memory if alloc.memory else 0.0
    return max(cpu, mem)


class ClusterAutoscaler:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.spec = sim.scenario.autoscaler
        self.last_scale_up = -float("inf")

    def start(self) -> None:
        self.sim.at(0.0, Kind.AUTOSCALE)

    def on_unschedulable(self, sp: SimPod) -> None:
        """CA polls; nothing happens until its next loop."""

    def on_pod_removed(self, node: SimNode) -> None:
        """CA polls; nothing happens until its next loop."""

    def loop(self) -> None:
        self.scale_up()
        self.scale_down()
        self.sim.at(self.sim.now + self.spec.scan_interval, Kind.AUTOSCALE)

    # --- scale-up --------------------------------------------------------------------------

    def _pending(self) -> list[Pod]:
        cutoff = self.spec.expendable_pods_priority_cutoff
        pods = [
            sp.pod
            for sp in self.sim.flagged.values()
            if sp.state is PodState.PENDING and not sp.nominated and sp.pod.priority >= cutoff
        ]
        pods.sort(key=lambda p: (-p.priority, p.created))
        return pods

    def _place(self, pod: Pod, infos: list[NodeInfo]) -> bool:
        for i, info in enumerate(infos):
            if self.sim.fits(pod, info):
                infos[i] = self.sim.info_with(info, pod)
                return True
        return False

    def scale_up(self) -> None:
        sim = self.sim
        pending = self._pending()
        if not pending:
            return
        existing = [
            info
            for name, info in sim.cache.nodes.items()
            if not sim.nodes[name].deleting and not sim.startup_tainted(sim.nodes[name])
        ]
        upcoming = [
            node_info(self._as_template(n)) for n in sim.nodes.values() if self._upcoming(n)
        ]
        template = node_info(sim.template_node("template", sim.now))
        rest = [p for p in pending if not self._place(p, existing)]
        rest = [p for p in rest if not self._place(p, upcoming)]
        rest = [p for p in rest if sim.fits(p, template)]
        if not rest:
            return
        # Binpacking estimator: largest first, first fit onto new nodes.
        alloc = template.node.allocatable

        def size(p: Pod) -> float:
            return p.requests.cpu / alloc.cpu + p.requests.memory / alloc.memory

        rest.sort(key=size, reverse=True)
        new: list[NodeInfo] = []
        for pod in rest:
            if not self._place(pod, new):
                new.append(sim.info_with(template, pod))
        room = sim.scenario.pool.max_nodes - sim.pool_size()
        count = min(len(new), room)
        if count <= 0:
            return
        for _ in range(count):
            sim.add_node()
        sim.stats.scale_ups += 1
        self.last_scale_up = sim.now

    def _upcoming(self, node: SimNode) -> bool:
        """Requested and not ready, or ready with the startup taint and younger than CA's
        MaxNodeStartupTime (clusterstate ``NotStarted``: counted as upcoming).  An older
        tainted node is unready to CA: neither room nor upcoming, so pods that wait for it
        make CA add nodes."""
        if node.deleting:
            return False
        if not node.ready:
            return True
        limit = self.sim.scenario.startup_taint.max_node_startup_time
        return self.sim.startup_tainted(node) and self.sim.now - node.created < limit

    def _as_template(self, node: SimNode) -> Node:
        """CA plans onto upcoming nodes as template nodes, startup taints left out
        (``SanitizeTaints``)."""
        taint = self.sim.startup_taint
        if taint is None:
            return node.node
        return replace(node.node, taints=without_taint(node.node.taints, taint.key))

    # --- scale-down ------------------------------------------------------------------------

    def _unneeded(self) -> set[str]:
        sim = self.sim
        threshold = self.spec.scale_down_utilization_threshold
        nodes = sim.cache.nodes
        # A node with the startup taint is unready to CA: neither a candidate nor a destination.
        ready = [
            sim.nodes[name]
            for name in sim.order
            if not sim.nodes[name].deleting and not sim.startup_tainted(sim.nodes[name])
        ]
        # Destinations for moved placeholders: a scratch copy of every ready node.
        scratch = {n.name: nodes[n.name] for n in ready}
        unneeded: set[str] = set()
        for node in ready:
            info = nodes[node.name]
            if node.users or _utilization(info) >= threshold:
                continue
            if any(not p.placeholder for p in info.pods.values()):
                continue
            moved = True
            if info.pods:
                targets = [scratch[n] for n in scratch if n != node.name and n not in unneeded]
                names = [n for n in scratch if n != node.name and n not in unneeded]
                for pod in info.pods.values():
                    for i, target in enumerate(targets):
                        if sim.fits(pod, target):
                            targets[i] = sim.info_with(target, pod)
                            break
                    else:
                        moved = False
                        break
                if moved:
                    scratch.update(zip(names, targets, strict=True))
            if moved:
                unneeded.add(node.name)
        return unneeded

    def scale_down(self) -> None:
        sim = self.sim
        now = sim.now
        unneeded = self._unneeded()
        tainted = 0
        for node in list(sim.nodes.values()):
            if not node.ready or node.deleting or sim.startup_tainted(node):
                continue
            if node.name in unneeded:
                if node.unneeded_since is None:
                    node.unneeded_since = now
                if tainted < self.spec.max_bulk_soft_taint_count and not _soft_tainted(node):
                    sim.set_soft_taint(node, True)
                    tainted += 1
            else:
                node.unneeded_since = None
                if _soft_tainted(node):
                    sim.set_soft_taint(node, False)
        if now - self.last_scale_up < self.spec.scale_down_delay_after_add:
            return
        removable = sim.pool_size() - sim.scenario.pool.min_nodes
        due = [
            n
            for n in sim.nodes.values()
            if n.name in unneeded
            and n.unneeded_since is not None
            and now - n.unneeded_since >= self.spec.scale_down_unneeded_time
        ]
        due.sort(key=lambda n: (n.unneeded_since, n.created))
        empty = [n for n in due if not sim.cache.nodes[n.name].pods]
        drain = [n for n in due if sim.cache.nodes[n.name].pods]
        for node in empty[: self.spec.max_empty_bulk_delete]:
            if removable <= 0:
                return
            sim.remove_node(node)
            removable -= 1
        for node in drain[: self.spec.max_drain_parallelism]:
            if removable <= 0:
                return
            sim.remove_node(node)
            removable -= 1


def _soft_tainted(node: SimNode) -> bool:
    return any(t.key == DELETION_CANDIDATE_TAINT for t in node.node.taints)


class IdealAutoscaler:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def start(self) -> None:
        """Nothing periodic."""

    def loop(self) -> None:
        """Never scheduled."""

    def on_unschedulable(self, sp: SimPod) -> None:
        sim = self.sim
        if sp.pod.priority < sim.scenario.autoscaler.expendable_pods_priority_cutoff:
            return
        if sim.pool_size() >= sim.scenario.pool.max_nodes:
            return
        template = node_info(sim.template_node("template", sim.now))
        if not sim.fits(sp.pod, template):
            return
        sim.stats.scale_ups += 1
        sim.add_node(ready_at=sim.now, with_images=True)

    def on_pod_removed(self, node: SimNode) -> None:
        if (
            node.ready
            and not node.deleting
            and node.users == 0
            and self.sim.pool_size() > self.sim.scenario.pool.min_nodes
        ):
            self.sim.remove_node(node)
