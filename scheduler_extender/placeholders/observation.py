"""What the placeholder controller observes, turned into the core's ``PlaceholderObservation``.

Fed by the informers' event handlers (user pod creations are the arrival rate; nodes give
creation, Ready, images and, for node-sized pools, the DaemonSet overhead measured through the
API).  It decides nothing: ``core.placeholders.plan_placeholders`` does, on what this builds.
Kubernetes JSON is read only through ``kube.convert``.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler_extender.core.forecast import ArrivalProfile
from scheduler_extender.core.placeholders import (
    NodeSample,
    PlaceholderObservation,
    PoolObservation,
    PoolPlan,
    PoolSpec,
    SizeMode,
    arrival_horizon,
    clamp_ready,
    node_belongs,
)
from scheduler_extender.core.types import Resources
from scheduler_extender.kube.client import ApiError, KubeClient, Obj
from scheduler_extender.kube.convert import (
    ConversionError,
    creation_time,
    is_node_overhead,
    node_from_json,
    node_image_names,
    normalize_image,
    pod_requests,
    ready_since,
)
from scheduler_extender.placeholders.config import ControllerConfig, PoolModel, count_spec
from scheduler_extender.placeholders.metrics import Metrics
from scheduler_extender.placeholders.pods import template_pod

log = logging.getLogger(__name__)

#: Nodes of a node-sized pool whose DaemonSet/static pod overhead is measured per reconcile.
OVERHEAD_NODES = 3


@dataclass(slots=True)
class PoolRuntime:
    """A configured pool and what the controller tracks for it."""

    model: PoolModel
    spec: PoolSpec
    images: frozenset[str]
    #: (creation time, uid) of the pool's user pods, sorted.
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    plan: PoolPlan | None = None


def pool_runtime(config: ControllerConfig, pool: PoolModel) -> PoolRuntime:
    """A configured pool as the core sees it (``PoolSpec``), with its tracking state."""
    spec = PoolSpec(
        pool.name,
        template_pod(config, pool),
        SizeMode(pool.size),
        count_spec(pool.count),
        node_fraction=pool.node_fraction,
        node_requests=pool.node_request_resources(),
    )
    return PoolRuntime(pool, spec, frozenset(normalize_image(i) for i in pool.images))


class Observer:
    """Arrivals, node images and overhead as the watches report them; ``observe()`` builds the
    planner's input.  Thread-safe: informer threads call the ``on_*`` handlers."""

    def __init__(
        self,
        config: ControllerConfig,
        kube: KubeClient,
        metrics: Metrics,
        *,
        nodes: Callable[[], Iterable[Obj]],
        wall: Callable[[], float],
        request_timeout: float,
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        self.nodes = nodes
        self.wall = wall
        self.request_timeout = request_timeout
        self.zone = ZoneInfo(config.timezone)
        self.pools = {p.name: pool_runtime(config, p) for p in config.pools}
        self.horizon = arrival_horizon(r.spec.count for r in self.pools.values())
        self._lock = threading.Lock()
        self._seen_users: dict[str, float] = {}
        #: node -> image -> when the node was first seen with it (only images it gained while
        #: watched; images present at first sight have no time).
        self._image_seen: dict[str, dict[str, float | None]] = {}
        self._overhead: dict[str, Resources | None] = {}
        self._overhead_allowed = config.measure_node_overhead
        #: A ``forecast`` pool's learned profile (``placeholders.forecast``; None: none yet).
        self.profile_for: Callable[[str], ArrivalProfile | None] = lambda pool: None

    # --- watch handlers (informer threads); each returns whether to wake the loop ---

    def on_user(self, kind: str, new: Obj | None) -> bool:
        if kind not in ("ADDED", "MODIFIED") or new is None:
            return False
        meta = new.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        labels = meta.get("labels") or {}
        created = creation_time(new)
        with self._lock:
            if uid in self._seen_users:
                return False
            self._seen_users[uid] = created
            for runtime in self.pools.values():
                wanted = runtime.model.user_labels
                if all(labels.get(k) == v for k, v in wanted.items()):
                    insort(runtime.arrivals, (created, uid))
        return kind == "ADDED"

    def on_node(self, kind: str, new: Obj | None, old: Obj | None) -> bool:
        if kind == "SYNC":
            return True
        obj = new if new is not None else old
        if obj is None:
            return False
        name = str((obj.get("metadata") or {}).get("name") or "")
        if kind == "DELETED" or new is None:
            with self._lock:
                self._image_seen.pop(name, None)
                self._overhead.pop(name, None)
            return True
        images = node_image_names(new)
        now = self.wall()
        with self._lock:
            seen = self._image_seen.get(name)
            if seen is None:
                # Images there at first sight: present, but since when is unknown.
                self._image_seen[name] = dict.fromkeys(images)
            else:
                for image in images - seen.keys():
                    seen[image] = now
        return old is None or ready_since(old) != ready_since(new)

    # --- observation ---

    def prune(self, now: float) -> None:
        """Forget arrivals older than any pool looks at."""
        cutoff = now - self.horizon
        with self._lock:
            for runtime in self.pools.values():
                del runtime.arrivals[: bisect_left(runtime.arrivals, (cutoff, ""))]
            for uid in [u for u, t in self._seen_users.items() if t < cutoff]:
                del self._seen_users[uid]

    def samples(self, runtime: PoolRuntime) -> tuple[NodeSample, ...]:
        """The pool's nodes as the planner needs them."""
        out = []
        for obj in self.nodes():
            try:
                node = node_from_json(obj)
            except ConversionError as exc:
                log.debug("skipping node: %s", exc)
                continue
            if not node_belongs(runtime.spec.template, node):
                continue
            images_ready: float | None = None
            if runtime.images:
                with self._lock:
                    seen = dict(self._image_seen.get(node.name) or {})
                times = [seen.get(i) for i in runtime.images]
                if all(i in seen for i in runtime.images) and all(t is not None for t in times):
                    images_ready = max(t for t in times if t is not None)
            with self._lock:
                overhead = self._overhead.get(node.name)
            out.append(
                NodeSample(
                    name=node.name,
                    created=node.created,
                    allocatable=node.allocatable,
                    ready=clamp_ready(node.created, ready_since(obj), runtime.spec.count),
                    images_ready=images_ready,
                    schedulable=not node.unschedulable,
                    overhead=overhead,
                )
            )
        return tuple(out)

    def measure_overhead(self, samples: Sequence[NodeSample]) -> None:
        """DaemonSet and static pods' requests on a few of the pool's newest ready nodes (what
        a new node carries before any user): node-sized placeholders leave exactly that."""
        if not self._overhead_allowed:
            return
        todo = [n for n in sorted(samples, key=lambda n: -n.created) if n.ready is not None]
        todo = [n for n in todo[:OVERHEAD_NODES] if n.name not in self._overhead]
        for sample in todo:
            try:
                page = self.kube.list_pods(
                    None,
                    field_selector=f"spec.nodeName={sample.name}",
                    limit=0,
                    continue_token="",
                    timeout=self.request_timeout,
                )
            except ApiError as exc:
                if exc.code == 403:
                    log.warning(
                        "cannot list pods on nodes (%s): node-sized placeholders assume "
                        "DaemonSets take %.0f%% of a node; grant cluster-wide pods list or "
                        "set nodeRequests",
                        exc,
                        next(iter(self.pools.values())).spec.overhead_guess * 100,
                    )
                    self._overhead_allowed = False
                    return
                self.metrics.errors.labels("list-node-pods").inc()
                return
            total = Resources()
            for pod in page.items:
                if is_node_overhead(pod):
                    try:
                        total = total + pod_requests(pod.get("spec") or {})
                    except ConversionError:
                        continue
            with self._lock:
                self._overhead[sample.name] = Resources(total.cpu, total.memory, total.pods)

    def arrival_times(self, pool: str) -> tuple[float, ...]:
        """The pool's user pod creation times still kept (``horizon`` seconds), sorted."""
        with self._lock:
            return tuple(t for t, _ in self.pools[pool].arrivals)

    def utc_offset(self, now: float) -> float:
        """The configured time zone's offset from UTC at ``now`` (seconds)."""
        offset = datetime.fromtimestamp(now, self.zone).utcoffset()
        return offset.total_seconds() if offset is not None else 0.0

    def observe(self) -> PlaceholderObservation:
        now = self.wall()
        self.prune(now)
        pools: dict[str, PoolObservation] = {}
        for name, runtime in self.pools.items():
            samples = self.samples(runtime)
            if runtime.spec.size is SizeMode.NODE and runtime.spec.node_requests is None:
                self.measure_overhead(samples)
                samples = self.samples(runtime)
            with self._lock:
                arrivals = tuple(t for t, _ in runtime.arrivals)
            pools[name] = PoolObservation(arrivals, samples, self.profile_for(name))
        return PlaceholderObservation(now, pools, self.utc_offset(now))
