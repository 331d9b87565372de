"""Startup-taint removal: take the startup taint off user nodes once they hold the hub's images.

Runs inside the placeholder controller (one Deployment, leader-elected): the controller calls
``sync`` from its reconcile loop while it leads, after every relevant node or puller event
(debounced) and every resync. The decision is ``core.startup_taint.startup_taint_decision``
(shared with the simulator); this module selects nodes (``nodeSelector``), observes (the
controller's node informer, plus an informer of the continuous image puller's pods when
``pullerSelector`` is set) and writes.

A write never clobbers another taint: the node is read fresh, the decision is made again on what
was read, the startup taint is dropped from its taint list and the rest written back with a
merge patch carrying the node's resourceVersion (``KubeClient.patch_node_taints``). If anyone
wrote the node in between, the API server answers 409 Conflict and the node is read again.

It must not touch a node the ``nodeSelector`` does not select, any taint but ``key``, or a node
while its view of nodes (or pullers) is broken. It never adds the taint: the node pool does,
at registration (docs/placeholders.md, "Startup taint").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from scheduler_extender.core.startup_taint import (
    TaintDecision,
    is_startup_taint,
    startup_taint_decision,
)
from scheduler_extender.kube.client import ApiError, KubeClient, Obj
from scheduler_extender.kube.convert import (
    ConversionError,
    node_from_json,
    normalize_image,
    pod_ready,
    ready_since,
)
from scheduler_extender.placeholders.config import StartupTaintModel
from scheduler_extender.placeholders.informer import Handler, Informer, Transform

log = logging.getLogger(__name__)

#: Reads and conditional writes per node and pass before giving up until the next pass.
MAX_ATTEMPTS = 5


class PodInformerFactory(Protocol):
    """The controller's builder of pod informers in its namespace: (name, label selector,
    handler, transform)."""

    def __call__(
        self, name: str, selector: str, on_event: Handler, transform: Transform | None
    ) -> Informer: ...


class TaintMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.removed = Counter(
            "scheduler_extender_startup_taints_removed",
            "Startup taints removed from nodes that hold the users' images",
            registry=registry,
        )
        self.conflicts = Counter(
            "scheduler_extender_startup_taint_conflicts",
            "Taint removals that met 409 Conflict (the node changed since it was read) and "
            "were retried on a fresh read",
            registry=registry,
        )
        self.failures = Counter(
            "scheduler_extender_startup_taint_failures",
            "Taint removals given up until the next pass (reason: error, conflicts)",
            ["reason"],
            registry=registry,
        )
        self.waiting = Gauge(
            "scheduler_extender_startup_taint_waiting_nodes",
            "Selected nodes that still carry the startup taint, waiting for their images",
            registry=registry,
        )


def puller_stub(obj: Obj) -> Obj:
    """What the remover keeps of an image puller pod: its node and Ready condition."""
    meta = obj.get("metadata") or {}
    ready = [
        {"type": "Ready", "status": c.get("status")}
        for c in (obj.get("status") or {}).get("conditions") or []
        if isinstance(c, dict) and c.get("type") == "Ready"
    ]
    return {
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid") if k in meta},
        "spec": {"nodeName": (obj.get("spec") or {}).get("nodeName") or ""},
        "status": {"conditions": ready[:1]},
    }


def _taints(node: Obj) -> list[Obj]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]


def selected(labels: Mapping[str, str], node_selector: Mapping[str, str]) -> bool:
    """Whether the ``nodeSelector`` selects a node with ``labels`` (every label equal; an
    empty selector selects every node)."""
    return all(labels.get(key) == value for key, value in node_selector.items())


def _labels(node: Obj) -> dict[str, str]:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


class StartupTaintRemover:
    """Removes ``config.key`` from selected nodes that are ready for users."""

    def __init__(
        self,
        config: StartupTaintModel,
        kube: KubeClient,
        *,
        registry: CollectorRegistry,
        wake: threading.Event,
        request_timeout: float,
        pod_informer: PodInformerFactory | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.key = config.key
        self.kube = kube
        self.wake = wake
        self.request_timeout = request_timeout
        self.max_attempts = max_attempts
        self.wall = wall
        self.metrics = TaintMetrics(registry)
        self.wanted = frozenset(normalize_image(i) for i in config.images)
        self.pullers: Informer | None = None
        if config.puller_selector:
            if pod_informer is None:
                raise ValueError("pullerSelector needs a pod informer")
            self.pullers = pod_informer(
                "pullers", config.puller_selector, self._on_puller, puller_stub
            )
        if not is_startup_taint(self.key):
            log.warning(
                "startup taint %s is not under startup-taint.cluster-autoscaler.kubernetes.io/:"
                " unless the Cluster Autoscaler lists it in --startup-taint, it takes tainted "
                "nodes for unusable and adds more",
                self.key,
            )

    def informers(self) -> list[Informer]:
        return [self.pullers] if self.pullers is not None else []

    # --- events (informer threads) ---

    def _on_puller(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        if kind == "SYNC" or new is None or old is None or pod_ready(new) != pod_ready(old):
            self.wake.set()

    def interested(self, node: Obj) -> bool:
        """Whether a change to ``node`` may call for a removal: it is selected and carries the
        taint (the controller wakes its loop for those)."""
        return selected(_labels(node), self.config.node_selector) and self._tainted(node)

    def _tainted(self, node: Obj) -> bool:
        return any(t.get("key") == self.key for t in _taints(node))

    # --- the pass (reconcile loop thread) ---

    def _ready_pullers(self) -> frozenset[str]:
        if self.pullers is None:
            return frozenset()
        return frozenset(
            str((p.get("spec") or {}).get("nodeName") or "")
            for p in self.pullers.items()
            if pod_ready(p)
        )

    def decide(self, node: Obj, ready_pullers: frozenset[str]) -> TaintDecision | None:
        """The core's decision for a selected node; None for a node the nodeSelector does not
        select (or one that cannot be read)."""
        if not selected(_labels(node), self.config.node_selector):
            return None
        try:
            core = node_from_json(node)
        except ConversionError as exc:
            log.debug("skipping node: %s", exc)
            return None
        return startup_taint_decision(
            core.taints,
            core.images,
            self.wanted,
            key=self.key,
            puller_ready=core.name in ready_pullers,
            ready_since=ready_since(node),
            now=self.wall(),
            max_wait=self.config.max_wait_seconds,
        )

    def view_ok(self) -> bool:
        return all(i.healthy() for i in self.informers())

    def sync(self, nodes: Iterable[Obj], may_write: Callable[[], bool]) -> int:
        """One pass over ``nodes`` (the node informer's view): remove the taint where the
        decision says so, while ``may_write()`` (leading, node view healthy). Returns how many
        were removed. Never raises: a failure is logged, counted and retried next pass."""
        removed = 0
        try:
            ready = self._ready_pullers()
            waiting = 0
            for node in nodes:
                if not self.interested(node):
                    continue  # most nodes: cheap to skip, no conversion
                decision = self.decide(node, ready)
                if decision is None:
                    continue
                if not decision.remove:
                    waiting += 1  # selected, tainted, not ready for users yet
                    continue
                if not (may_write() and self.view_ok()):
                    break
                name = str((node.get("metadata") or {}).get("name") or "")
                removed += self.remove(name, ready)
            self.metrics.waiting.set(waiting)
        except Exception:
            self.metrics.failures.labels("error").inc()
            log.exception("startup taint pass failed; retrying on the next pass")
        return removed

    def remove(self, name: str, ready_pullers: frozenset[str]) -> bool:
        """Remove the taint from node ``name``: read, decide again on what was read, write
        the other taints back conditionally; on 409 Conflict read again."""
        for _ in range(self.max_attempts):
            try:
                node = self.kube.get_node(name, timeout=self.request_timeout)
            except ApiError as exc:
                if exc.code != 404:
                    self.metrics.failures.labels("error").inc()
                    log.warning("node %s: cannot read it to untaint: %s", name, exc)
                return False
            decision = self.decide(node, ready_pullers)
            if decision is None or not decision.remove:
                why = decision.reason if decision is not None else "not selected"
                log.debug("node %s: not removing the startup taint: %s", name, why)
                return False
            keep = [t for t in _taints(node) if t.get("key") != self.key]
            rv = str((node.get("metadata") or {}).get("resourceVersion") or "")
            try:
                self.kube.patch_node_taints(
                    name, keep, resource_version=rv, timeout=self.request_timeout
                )
            except ApiError as exc:
                if exc.code == 409:
                    self.metrics.conflicts.inc()
                    log.info("node %s changed while removing its startup taint; rereading", name)
                    continue
                if exc.code != 404:
                    self.metrics.failures.labels("error").inc()
                    log.warning("node %s: cannot remove the startup taint: %s", name, exc)
                return False
            self.metrics.removed.inc()
            log.info("node %s: removed startup taint %s (%s)", name, self.key, decision.reason)
            return True
        self.metrics.failures.labels("conflicts").inc()
        log.warning(
            "node %s: %d conflicts in a row removing the startup taint; trying again next pass",
            name,
            self.max_attempts,
        )
        return False


__all__ = ["StartupTaintRemover", "TaintMetrics", "puller_stub"]
