"""``scheduler-extender placeholders``: keep each pool's placeholder pods at the planned count.

The plan is ``core.placeholders.plan_placeholders`` (pure, shared with the simulator); this
module only observes and applies it:

- three informers (``placeholders.informer``): this controller's placeholder pods (namespace
  and label selector), user pods (their creation times are the arrival rate; only when a pool is
  adaptive) and nodes (creation, Ready, images, allocatable);
- a Lease (``placeholders.leader``): only the leader writes, so two replicas never fight;
- a loop that reconciles on every relevant watch event (debounced) and every
  ``resyncSeconds``: a preempted placeholder is replaced within about a second, and that
  Pending replacement is what makes the Cluster Autoscaler add a node while the user who
  preempted it already runs.

Writes race with the watch: a pod just created is not in the informer yet, a pod just deleted
still is.  *Expectations* (as in kube-controller-manager's ReplicaSet controller) bridge the gap:
created pods count as existing and deleted ones as gone until the watch has caught up with them,
so a burst of events never creates duplicates.  A create expectation is satisfied by
*observation*: the watch shows the pod, or the informer's resourceVersion reaches the one the
create returned (it has then seen every change up to it, so a pod it does not show was deleted
again).  Time (``expectation_timeout``, 5 minutes) is only the last resort, for
resourceVersions that are not integers.

Writes need a view that can be trusted: while the placeholder informer is not synced or its
watch is broken (failing, or silent past its read timeout; the health model of
``cache.reflector``), reconcile plans but neither creates nor deletes, says so once in the log
and in ``scheduler_extender_placeholders_view_ok`` / ``..._paused_reconciles_total``.  A pod is
deleted only after checking its labels and owner again, with a UID precondition, and with grace
period 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from bisect import bisect_left, insort
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter, Gauge

from scheduler_extender.convert import (
    ConversionError,
    node_from_json,
    normalize_image,
    pod_requests,
    resources_from,
    timestamp,
)
from scheduler_extender.core.placeholders import (
    Actions,
    CountMode,
    CountSpec,
    Existing,
    NodeSample,
    PlaceholderObservation,
    PoolObservation,
    PoolPlan,
    PoolSpec,
    SizeMode,
    node_belongs,
    plan_placeholders,
    reconcile_pool,
)
from scheduler_extender.core.types import Resources
from scheduler_extender.kube import ApiError, KubeClient, KubeConfigError, Obj, connect
from scheduler_extender.placeholders.config import (
    ConfigError,
    ControllerConfig,
    PoolModel,
    load_config,
)
from scheduler_extender.placeholders.informer import Handler, Informer, Transform
from scheduler_extender.placeholders.leader import LeaderElector
from scheduler_extender.placeholders.ops import OpsServer
from scheduler_extender.placeholders.pods import (
    POOL_LABEL,
    OwnerRef,
    build_pod,
    existing,
    is_ours,
    pod_spec,
    selector,
    spec_hash,
    template_pod,
)
from scheduler_extender.placeholders.startup_taint import StartupTaintRemover

log = logging.getLogger(__name__)

PAGE = 500
#: Nodes of a node-sized pool whose DaemonSet/static pod overhead is measured per reconcile.
OVERHEAD_NODES = 3
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
#: Node-sized placeholders that request at most this share less than the plan asks (never
#: more) are kept: a node's allocatable or DaemonSet overhead moving by a few percent must not
#: delete and recreate every node-sized placeholder (each a node's worth of spare room).
NODE_SIZE_TOLERANCE = 0.05


def within_tolerance(old: Resources, new: Resources, tolerance: float) -> bool:
    """``old`` fits in ``new`` and is at most ``tolerance`` (a share) below it, per resource
    (cpu, memory and every extended resource either names)."""
    pairs = [(old.cpu, new.cpu), (old.memory, new.memory)]
    pairs += [(old.scalar.get(k, 0), new.scalar.get(k, 0)) for k in {*old.scalar, *new.scalar}]
    return all(new_ * (1 - tolerance) <= old_ <= new_ for old_, new_ in pairs)


def rolling_actions(desired: int, want_hash: str, pods: Sequence[Existing]) -> Actions:
    """``reconcile_pool`` for node-sized pools, replacing stale pods one at a time.

    Deleting every stale node-sized placeholder at once frees every node's spare room at once
    and sends as many replacements Pending (a burst of scale-ups).  Here stale pods keep their
    slot until replaced: Pending stale ones (they hold nothing) and any surplus go at once, a
    bound one only when nothing of the pool is terminating and every current pod is bound
    (the previous replacement has landed)."""
    live = [p for p in pods if not p.terminating and not p.finished]
    current = [p for p in live if p.spec_hash == want_hash]
    stale = sorted(
        (p for p in live if p.spec_hash != want_hash),
        key=lambda p: (bool(p.node), p.created, p.name),
    )
    if not stale:
        return reconcile_pool(desired, want_hash, pods)
    busy = any(p.terminating for p in pods) or any(not p.node for p in current)
    pending = sum(1 for p in stale if not p.node)
    surplus = len(current) + len(stale) - desired
    replace = min(len(stale), max(pending, surplus, 0 if busy else 1))
    kept = {p.name for p in stale[replace:]}
    rest = [p for p in pods if p.name not in kept]
    return reconcile_pool(max(0, desired - len(kept)), want_hash, rest)


def _created(obj: Obj) -> float:
    meta = obj.get("metadata") or {}
    try:
        return timestamp(meta.get("creationTimestamp"), "metadata.creationTimestamp")
    except ConversionError:
        return 0.0


def _ready_since(node: Obj) -> float | None:
    """When the node's Ready condition last became True (None while not Ready)."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            if cond.get("status") != "True":
                return None
            try:
                return timestamp(cond.get("lastTransitionTime"), "lastTransitionTime") or None
            except ConversionError:
                return None
    return None


def _node_images(node: Obj) -> frozenset[str]:
    names: set[str] = set()
    for image in (node.get("status") or {}).get("images") or []:
        if isinstance(image, dict):
            for name in image.get("names") or []:
                if isinstance(name, str) and name:
                    names.add(normalize_image(name))
    return frozenset(names)


@dataclass(slots=True)
class PoolRuntime:
    """A configured pool and what the controller tracks for it."""

    model: PoolModel
    spec: PoolSpec
    images: frozenset[str]
    #: (creation time, uid) of the pool's user pods, sorted.
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    plan: PoolPlan | None = None


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        prefix = "scheduler_extender_placeholders"
        self.desired = Gauge(
            f"{prefix}_desired", "Planned placeholders per pool.", ["pool"], registry=registry
        )
        self.actual = Gauge(
            f"{prefix}_actual",
            "Placeholder pods per pool and phase (bound to a node, or pending).",
            ["pool", "phase"],
            registry=registry,
        )
        self.rate = Gauge(
            f"{prefix}_arrival_rate_per_minute",
            "Estimated user arrivals per minute (adaptive pools).",
            ["pool"],
            registry=registry,
        )
        self.ready = Gauge(
            f"{prefix}_node_ready_seconds",
            "Learned node creation -> Ready seconds (adaptive pools).",
            ["pool"],
            registry=registry,
        )
        self.preemptions = Counter(
            f"{prefix}_preemptions",
            "Bound placeholders removed by someone else (preempted by a user, drained...).",
            ["pool", "reason"],
            registry=registry,
        )
        self.created = Counter(
            f"{prefix}_created", "Placeholder pods created.", ["pool"], registry=registry
        )
        self.deleted = Counter(
            f"{prefix}_deleted", "Placeholder pods deleted.", ["pool"], registry=registry
        )
        self.errors = Counter(
            f"{prefix}_api_errors", "Failed API calls, by operation.", ["op"], registry=registry
        )
        self.leader = Gauge(
            f"{prefix}_leader", "1 while this replica holds the Lease.", registry=registry
        )
        self.reconciles = Counter(
            f"{prefix}_reconciles", "Reconcile passes (as leader).", registry=registry
        )
        self.view_ok = Gauge(
            f"{prefix}_view_ok",
            "1 while the informer is listed and its watch works; 0 while it cannot be trusted.",
            ["informer"],
            registry=registry,
        )
        self.paused = Counter(
            f"{prefix}_paused_reconciles",
            "Reconcile passes that made no writes because the placeholder pods' view was broken.",
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class Expectation:
    """A pod we created that the informer has not shown yet."""

    pool: str
    obj: Obj
    #: The create's resourceVersion as an integer (None when it is not one).
    resource_version: int | None
    deadline: float


def _rv_int(value: object) -> int | None:
    """A resourceVersion as an integer, or None.  The API treats them as opaque strings, but
    every etcd-backed one is etcd's revision, an integer that only grows, and kube-apiserver's
    own watch cache compares them as such (ref: staging/src/k8s.io/apiserver/pkg/storage/
    cacher); when one is not an integer the expectation falls back to its timeout."""
    try:
        return int(str(value))
    except ValueError:
        return None


class PlaceholderController:
    """Observes, plans and applies; ``run()`` until ``stop`` is set."""

    def __init__(
        self,
        config: ControllerConfig,
        kube: KubeClient,
        *,
        identity: str,
        registry: CollectorRegistry | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        debounce: float = 0.2,
        expectation_timeout: float = 300.0,
        request_timeout: float = 10.0,
        watch_timeout: float = 300.0,
        watch_read_timeout: float = 90.0,
    ) -> None:
        self.config = config
        self.kube = kube
        self.identity = identity
        self.wall = wall
        self.monotonic = monotonic
        self.debounce = debounce
        self.expectation_timeout = expectation_timeout
        self.request_timeout = request_timeout
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.zone = ZoneInfo(config.timezone)
        self.pools = {p.name: self._runtime(p) for p in config.pools}
        adaptive = any(p.count.mode == "adaptive" for p in config.pools)
        self.horizon = max(
            (
                max(p.count.rate_window_seconds, p.count.burst_window_seconds)
                + p.count.scale_down_delay_seconds
                for p in config.pools
            ),
            default=0.0,
        )
        #: uid -> a pod created but not yet seen by the watch.
        self._expect_create: dict[str, Expectation] = {}
        #: Why the last reconcile could not write ("" when it could), to log transitions once.
        self._paused_for = ""
        #: uid -> deadline: deleted by us, not yet gone from the watch.
        self._expect_delete: dict[str, float] = {}
        self._seen_users: dict[str, float] = {}
        #: node -> image -> when the node was first seen with it (only images it gained while
        #: watched; images present at first sight have no time).
        self._image_seen: dict[str, dict[str, float | None]] = {}
        self._overhead: dict[str, Resources | None] = {}
        self._overhead_allowed = config.measure_node_overhead
        self._owner: OwnerRef | None = None
        self._lock = threading.Lock()
        self.elector = LeaderElector(
            kube,
            config.namespace,
            config.lease_name,
            identity,
            lease_duration=config.leader_election.lease_duration_seconds,
            renew_deadline=config.leader_election.renew_deadline_seconds,
            retry_period=config.leader_election.retry_period_seconds,
            request_timeout=request_timeout,
            monotonic=monotonic,
            wall=wall,
            on_change=self._leadership,
        )

        def pod_informer(
            name: str, ns: str, sel: str, on_event: Handler, transform: Transform | None = None
        ) -> Informer:
            """An informer of the pods in ``ns`` matching ``sel``."""
            return Informer(
                name,
                lambda token: kube.list_pods(
                    ns,
                    label_selector=sel,
                    limit=PAGE,
                    continue_token=token,
                    timeout=request_timeout,
                ),
                lambda rv, t: kube.watch_pods(
                    ns,
                    label_selector=sel,
                    resource_version=rv,
                    timeout_seconds=t,
                    read_timeout=watch_read_timeout,
                ),
                stop=self.stop,
                kind="pods",
                on_event=on_event,
                transform=transform,
                watch_timeout=watch_timeout,
                read_timeout=watch_read_timeout,
                clock=monotonic,
            )

        self.placeholders = pod_informer(
            "placeholders", config.namespace, selector(config), self._on_placeholder
        )
        self.nodes = Informer(
            "nodes",
            lambda token: kube.list(
                "nodes", limit=PAGE, continue_token=token, timeout=request_timeout
            ),
            lambda rv, t: kube.watch(
                "nodes", resource_version=rv, timeout_seconds=t, read_timeout=watch_read_timeout
            ),
            stop=self.stop,
            kind="nodes",
            on_event=self._on_node,
            transform=partial(
                node_stub,
                images=any(p.images for p in config.pools) or config.startup_taint is not None,
            ),
            watch_timeout=watch_timeout,
            read_timeout=watch_read_timeout,
            clock=monotonic,
        )
        self.users: Informer | None = None
        if adaptive:
            self.users = pod_informer(
                "users",
                config.users_namespace,
                config.users.label_selector,
                self._on_user,
                _user_stub,
            )
        #: Takes the startup taint off nodes that hold the users' images (docs/placeholders.md).
        self.startup_taint: StartupTaintRemover | None = None
        if config.startup_taint is not None:
            self.startup_taint = StartupTaintRemover(
                config.startup_taint,
                kube,
                registry=self.registry,
                wake=self.wake,
                request_timeout=request_timeout,
                wall=wall,
                pod_informer=lambda name, sel, on_event, transform: pod_informer(
                    name, config.namespace, sel, on_event, transform
                ),
            )
        self._threads: list[threading.Thread] = []
        #: When the reconcile loop last went round (monotonic; None before it started).
        self.loop_tick: float | None = None

    # --- setup ---

    def _runtime(self, pool: PoolModel) -> PoolRuntime:
        c = pool.count
        count = CountSpec(
            mode=CountMode(c.mode),
            static=c.static,
            min=c.min,
            max=c.max,
            safety=c.safety,
            windows=tuple(w.to_window() for w in c.windows),
            rate_window=c.rate_window_seconds,
            burst_window=c.burst_window_seconds,
            burst_min_arrivals=c.burst_min_arrivals,
            scale_down_delay=c.scale_down_delay_seconds,
            ready_default=c.node_ready_seconds,
            ready_samples=c.ready_samples,
            boot_seconds=c.boot_seconds,
            image_pull_seconds=c.image_pull_seconds,
        )
        spec = PoolSpec(
            pool.name,
            template_pod(self.config, pool),
            SizeMode(pool.size),
            count,
            node_fraction=pool.node_fraction,
            node_requests=pool.node_request_resources(),
        )
        return PoolRuntime(pool, spec, frozenset(normalize_image(i) for i in pool.images))

    def _leadership(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            self.wake.set()

    # --- watch handlers (informer threads) ---

    def _on_placeholder(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        if kind == "SYNC":
            self.wake.set()
            return
        obj = new if new is not None else old
        if obj is None:
            return
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        with self._lock:
            self._expect_create.pop(uid, None)  # the watch has seen it
            ours = uid in self._expect_delete
            if kind == "DELETED":
                self._expect_delete.pop(uid, None)
        was_going = bool(((old or {}).get("metadata") or {}).get("deletionTimestamp"))
        going = kind == "DELETED" or bool(
            ((new or {}).get("metadata") or {}).get("deletionTimestamp")
        )
        bound = bool(((old or obj).get("spec") or {}).get("nodeName"))
        if going and not was_going and bound and not ours:
            pool = str((meta.get("labels") or {}).get(POOL_LABEL) or "")
            self.metrics.preemptions.labels(pool, _removal_reason(obj)).inc()
        self.wake.set()

    def _on_user(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        if kind not in ("ADDED", "MODIFIED") or new is None:
            return
        meta = new.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        labels = meta.get("labels") or {}
        created = _created(new)
        with self._lock:
            if uid in self._seen_users:
                return
            self._seen_users[uid] = created
            for runtime in self.pools.values():
                wanted = runtime.model.user_labels
                if all(labels.get(k) == v for k, v in wanted.items()):
                    insort(runtime.arrivals, (created, uid))
        if kind == "ADDED":
            self.wake.set()

    def _on_node(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        if kind == "SYNC":
            self.wake.set()
            return
        obj = new if new is not None else old
        if obj is None:
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        if kind == "DELETED" or new is None:
            with self._lock:
                self._image_seen.pop(name, None)
                self._overhead.pop(name, None)
            self.wake.set()
            return
        images = _node_images(new)
        now = self.wall()
        with self._lock:
            seen = self._image_seen.get(name)
            if seen is None:
                # Images there at first sight: present, but since when is unknown.
                self._image_seen[name] = dict.fromkeys(images)
            else:
                for image in images - seen.keys():
                    seen[image] = now
        taint = self.startup_taint
        if (
            old is None
            or _ready_since(old) != _ready_since(new)
            or (taint is not None and taint.interested(new))
        ):
            self.wake.set()

    # --- observation ---

    def _prune(self, now: float) -> None:
        cutoff = now - self.horizon
        with self._lock:
            for runtime in self.pools.values():
                del runtime.arrivals[: bisect_left(runtime.arrivals, (cutoff, ""))]
            for uid in [u for u, t in self._seen_users.items() if t < cutoff]:
                del self._seen_users[uid]

    def _samples(self, runtime: PoolRuntime) -> tuple[NodeSample, ...]:
        out = []
        for obj in self.nodes.items():
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
            ready = _ready_since(obj)
            if ready is not None and ready >= node.created:
                # The learned node-ready time stays within the configured range (I2).
                count = runtime.model.count
                ready = min(
                    max(ready, node.created + count.node_ready_min_seconds),
                    node.created + count.node_ready_max_seconds,
                )
            out.append(
                NodeSample(
                    name=node.name,
                    created=node.created,
                    allocatable=node.allocatable,
                    ready=ready,
                    images_ready=images_ready,
                    schedulable=not node.unschedulable,
                    overhead=overhead,
                )
            )
        return tuple(out)

    def _measure_overhead(self, samples: Sequence[NodeSample]) -> None:
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
                meta = pod.get("metadata") or {}
                refs = meta.get("ownerReferences") or []
                daemon = any(isinstance(r, dict) and r.get("kind") == "DaemonSet" for r in refs)
                mirror = MIRROR_ANNOTATION in (meta.get("annotations") or {})
                phase = (pod.get("status") or {}).get("phase")
                if (daemon or mirror) and phase not in ("Succeeded", "Failed"):
                    try:
                        total = total + pod_requests(pod.get("spec") or {})
                    except ConversionError:
                        continue
            with self._lock:
                self._overhead[sample.name] = Resources(total.cpu, total.memory, total.pods)

    def observe(self) -> PlaceholderObservation:
        now = self.wall()
        self._prune(now)
        pools: dict[str, PoolObservation] = {}
        for name, runtime in self.pools.items():
            samples = self._samples(runtime)
            if runtime.spec.size is SizeMode.NODE and runtime.spec.node_requests is None:
                self._measure_overhead(samples)
                samples = self._samples(runtime)
            with self._lock:
                arrivals = tuple(t for t, _ in runtime.arrivals)
            pools[name] = PoolObservation(arrivals, samples)
        offset = datetime.fromtimestamp(now, self.zone).utcoffset()
        utc_offset = offset.total_seconds() if offset is not None else 0.0
        return PlaceholderObservation(now, pools, utc_offset)

    # --- owner ---

    def _resolve_owner(self) -> OwnerRef | None:
        owner = self.config.owner
        if owner is None:
            return None
        try:
            obj = self.kube.get_owner(
                owner.kind, self.config.namespace, owner.name, timeout=self.request_timeout
            )
        except ApiError as exc:
            self.metrics.errors.labels("get-owner").inc()
            raise RuntimeError(f"cannot read the owner {owner.kind} {owner.name}: {exc}") from exc
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        return OwnerRef(owner.api_version, owner.kind, owner.name, uid)

    # --- reconcile ---

    def _existing(self, pool: str, now: float) -> list[Existing]:
        """The pool's pods as reconcile sees them: the informer's, with pods we created and
        the watch has not shown yet added (Pending), and pods we deleted and the watch still
        shows marked terminating."""
        every, listed_rv = self.placeholders.snapshot()
        view_rv = _rv_int(listed_rv)
        seen = {str((p.get("metadata") or {}).get("uid") or "") for p in every}
        pods = [
            p
            for p in every
            if ((p.get("metadata") or {}).get("labels") or {}).get(POOL_LABEL) == pool
        ]
        with self._lock:
            for uid, deadline in list(self._expect_delete.items()):
                if deadline < now or uid not in seen:
                    del self._expect_delete[uid]
            for uid, expect in list(self._expect_create.items()):
                caught_up = (
                    view_rv is not None
                    and expect.resource_version is not None
                    and view_rv >= expect.resource_version
                )
                if uid in seen or caught_up or expect.deadline < now:
                    del self._expect_create[uid]
            gone = set(self._expect_delete)
            pending = [e.obj for e in self._expect_create.values() if e.pool == pool]
        out = []
        for obj in pods:
            e = existing(obj, _created(obj))
            out.append(replace(e, terminating=True) if e.uid in gone else e)
        wall = self.wall()
        out += [existing(obj, wall) for obj in pending]
        return out

    def reconcile(self) -> dict[str, Actions]:
        """One pass: plan every pool and apply the differences (leader only)."""
        if self._owner is None and self.config.owner is not None:
            self._owner = self._resolve_owner()
        observation = self.observe()
        plans = plan_placeholders([r.spec for r in self.pools.values()], observation)
        done: dict[str, Actions] = {}
        mono = self.monotonic()
        if not self._view_trusted():
            for name in self.pools:
                self.pools[name].plan = plans[name]
                self._record(name, plans[name])
            self.metrics.paused.inc()
            return done
        for name, runtime in self.pools.items():
            plan = plans[name]
            runtime.plan = plan
            want_hash = None
            if plan.requests is not None:
                want_hash = spec_hash(pod_spec(self.config, runtime.model, plan.requests))
            pods = self._existing(name, mono)
            if runtime.spec.size is SizeMode.NODE and want_hash is not None:
                assert plan.requests is not None
                want_hash = self._tolerated_hash(runtime, plan.requests, want_hash, pods)
                actions = rolling_actions(plan.desired, want_hash, pods)
            else:
                actions = reconcile_pool(plan.desired, want_hash, pods)
            if plan.requests is None and plan.desired:
                log.warning("pool %s: %s", name, plan.reason)
            self._apply(runtime, plan, actions, {p.name: p for p in pods})
            done[name] = actions
            self._record(name, plan)
        self.metrics.reconciles.inc()
        return done

    def _tolerated_hash(
        self, runtime: PoolRuntime, requests: Resources, want: str, pods: Sequence[Existing]
    ) -> str:
        """``want``, or the spec hash of existing pods that differ from the plan only by
        requests within ``NODE_SIZE_TOLERANCE`` below it (those pods stay)."""
        counts: dict[str, int] = {}
        for p in pods:
            if not p.terminating and not p.finished and p.spec_hash != want:
                counts[p.spec_hash] = counts.get(p.spec_hash, 0) + 1
        if not counts:
            return want
        by_hash = {p.spec_hash: p for p in pods}
        ns = self.config.namespace
        for old_hash in sorted(counts, key=lambda h: -counts[h]):
            obj = self.placeholders.get(f"{ns}/{by_hash[old_hash].name}")
            containers = ((obj or {}).get("spec") or {}).get("containers") or [{}]
            try:
                got = resources_from(
                    (containers[0].get("resources") or {}).get("requests") or {}, "requests"
                )
            except (ConversionError, AttributeError):
                continue
            old = Resources(got.cpu, got.memory, 1, got.scalar)
            same_spec = spec_hash(pod_spec(self.config, runtime.model, old)) == old_hash
            if same_spec and within_tolerance(old, requests, NODE_SIZE_TOLERANCE):
                return old_hash
        return want

    def _view_trusted(self) -> bool:
        """Whether writes may go ahead: the placeholder informer is listed and its watch has
        not failed since its last sign of life.  Logs each change once."""
        now = self.monotonic()
        for informer in self._informers():
            self.metrics.view_ok.labels(informer.name).set(1 if informer.healthy(now) else 0)
        problem = self.placeholders.problem(now)
        if problem and not self._paused_for:
            log.warning(
                "not creating or deleting placeholders while the view of them is broken (%s)",
                problem,
            )
        elif not problem and self._paused_for:
            log.info("placeholder view works again; reconciling")
        self._paused_for = problem
        return not problem

    def _informers(self) -> list[Informer]:
        extra = self.startup_taint.informers() if self.startup_taint is not None else []
        return [self.placeholders, self.nodes] + ([self.users] if self.users else []) + extra

    def _apply(
        self,
        runtime: PoolRuntime,
        plan: PoolPlan,
        actions: Actions,
        pods: Mapping[str, Existing],
    ) -> None:
        pool = runtime.model.name
        ns = self.config.namespace
        for name in actions.delete:
            if not self.elector.is_leader() or not self.placeholders.healthy():
                return
            obj = self.placeholders.get(f"{ns}/{name}")
            if obj is None or not is_ours(obj, self.config, pool):
                log.error(
                    "refusing to delete pod %s/%s: not a placeholder of pool %s", ns, name, pool
                )
                continue
            uid = pods[name].uid
            with self._lock:
                self._expect_delete[uid] = self.monotonic() + self.expectation_timeout
            try:
                self.kube.delete_pod(
                    ns, name, uid=uid, grace_period_seconds=0, timeout=self.request_timeout
                )
            except ApiError as exc:
                if exc.code not in (404, 409):
                    with self._lock:
                        self._expect_delete.pop(uid, None)
                    self.metrics.errors.labels("delete").inc()
                    log.warning("cannot delete placeholder %s: %s", name, exc)
                continue
            self.metrics.deleted.labels(pool).inc()
            log.info("pool %s: deleted placeholder %s (%s)", pool, name, plan.reason)
        if actions.create and plan.requests is not None:
            body = build_pod(self.config, runtime.model, plan.requests, self._owner)
            for _ in range(actions.create):
                if not self.elector.is_leader() or not self.placeholders.healthy():
                    return
                try:
                    made = self.kube.create_pod(ns, body, timeout=self.request_timeout)
                except ApiError as exc:
                    self.metrics.errors.labels("create").inc()
                    log.warning("pool %s: cannot create a placeholder: %s", pool, exc)
                    return
                meta = made.get("metadata") or {}
                uid = str(meta.get("uid") or "")
                with self._lock:
                    self._expect_create[uid] = Expectation(
                        pool,
                        made,
                        _rv_int(meta.get("resourceVersion")),
                        self.monotonic() + self.expectation_timeout,
                    )
                self.metrics.created.labels(pool).inc()
            log.info(
                "pool %s: created %d placeholder(s) (%s, desired %d)",
                pool,
                actions.create,
                plan.reason,
                plan.desired,
            )

    def _record(self, pool: str, plan: PoolPlan) -> None:
        m = self.metrics
        m.desired.labels(pool).set(plan.desired)
        bound = pending = 0
        for obj in self.placeholders.items():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if labels.get(POOL_LABEL) != pool:
                continue
            if (obj.get("spec") or {}).get("nodeName"):
                bound += 1
            else:
                pending += 1
        m.actual.labels(pool, "bound").set(bound)
        m.actual.labels(pool, "pending").set(pending)
        if self.pools[pool].spec.count.mode is CountMode.ADAPTIVE:
            m.rate.labels(pool).set(plan.arrival_rate * 60)
            m.ready.labels(pool).set(plan.ready_seconds)

    # --- lifecycle ---

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self._informers())

    def start(self) -> PlaceholderController:
        for informer in self._informers():
            informer.start()
        thread = threading.Thread(
            target=self.elector.run, args=(self.stop,), name="leader-election", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        loop = threading.Thread(target=self.loop, name="reconcile", daemon=True)
        loop.start()
        self._threads.append(loop)
        return self

    def loop(self) -> None:
        """Reconcile on events (debounced) and every resync period, while leading.  Becoming
        leader and each informer's (re)list wake it too."""
        resync = self.config.resync_seconds
        due = self.monotonic()
        while not self.stop.is_set():
            self.loop_tick = self.monotonic()
            woke = self.wake.wait(max(0.0, due - self.monotonic()))
            if self.stop.is_set():
                break
            if woke and self.debounce:
                self.stop.wait(self.debounce)
            self.wake.clear()
            due = self.monotonic() + resync
            if not self.elector.is_leader() or not self.synced():
                continue
            try:
                self.reconcile()
                if self._paused_for:
                    due = min(due, self.monotonic() + 1.0)  # look again soon
            except Exception:
                self.metrics.errors.labels("reconcile").inc()
                log.exception("reconcile failed; retrying")
                due = self.monotonic() + min(5.0, resync)
            if self.startup_taint is not None:
                self.startup_taint.sync(
                    self.nodes.items(), lambda: self.elector.is_leader() and self.nodes.healthy()
                )

    def liveness(self) -> tuple[bool, str]:
        """``/healthz``: the loop and the leader election run, and the loop went round within
        two resync periods plus a minute (the longest a pass may take: its API calls each have
        a timeout).  API trouble is not a liveness failure: a restart would not fix it."""
        if self.stop.is_set():
            return False, "stopping"
        dead = [t.name for t in self._threads if not t.is_alive()]
        if not self._threads or dead:
            return False, f"threads not running: {', '.join(dead) or 'not started'}"
        tick = self.loop_tick
        limit = 2 * self.config.resync_seconds + 60.0
        if tick is not None and self.monotonic() - tick > limit:
            return False, f"reconcile loop stuck for {self.monotonic() - tick:.0f}s"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: every informer has listed once; the body says what is broken now."""
        now = self.monotonic()
        unlisted = [i.name for i in self._informers() if not i.synced.is_set()]
        if unlisted:
            return False, "not listed yet: " + ", ".join(unlisted)
        problems = [p for i in self._informers() if (p := i.problem(now))]
        leader = "leader" if self.elector.is_leader() else "follower"
        if problems:
            return True, f"ok ({leader}); writes paused: " + "; ".join(problems)
        return True, f"ok ({leader})"

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop everything and release the Lease (if held) so the other replica takes over."""
        self.stop.set()
        self.wake.set()
        for informer in self._informers():
            informer.interrupt()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for informer in self._informers():
            informer.join(max(0.0, deadline - time.monotonic()))
        self.elector.release()


def node_stub(obj: Obj, *, images: bool) -> Obj:
    """What the controller keeps of a Node: what ``node_from_json``, ``_ready_since`` and (when
    a pool names images, or the startup taint is on) ``_node_images`` read.  A real Node is
    tens of KiB of JSON (managedFields, nodeInfo, every condition with its heartbeat, a hundred
    images); at 5,000 nodes the full objects cost hundreds of MiB the controller never looks
    at.  Heartbeats and resourceVersions are left out too, so a kubelet's status update leaves
    the stub equal and wakes nothing."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    out_meta = {k: meta[k] for k in ("name", "uid", "labels", "creationTimestamp") if k in meta}
    out_spec = {k: spec[k] for k in ("taints", "unschedulable") if k in spec}
    out_status: Obj = {"allocatable": status.get("allocatable") or {}}
    ready = [
        {k: c[k] for k in ("type", "status", "lastTransitionTime") if k in c}
        for c in status.get("conditions") or []
        if isinstance(c, dict) and c.get("type") == "Ready"
    ]
    out_status["conditions"] = ready[:1]
    if images and status.get("images"):
        out_status["images"] = [
            {"names": list(i.get("names") or [])}
            for i in status.get("images") or []
            if isinstance(i, dict)
        ]
    return {"metadata": out_meta, "spec": out_spec, "status": out_status}


def _user_stub(obj: Obj) -> Obj:
    """What the controller keeps of a user pod: its identity, labels and creation time (a
    hub with thousands of users would otherwise keep every pod's full JSON)."""
    meta = obj.get("metadata") or {}
    keep = ("name", "namespace", "uid", "labels", "creationTimestamp", "resourceVersion")
    return {"metadata": {k: meta[k] for k in keep if k in meta}}


def _removal_reason(obj: Obj) -> str:
    """``preempted`` when kube-scheduler marked the victim (DisruptionTarget condition, reason
    PreemptionByScheduler; ref: pkg/scheduler/framework/preemption), else ``removed``."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if (
            isinstance(cond, dict)
            and cond.get("type") == "DisruptionTarget"
            and cond.get("reason") == "PreemptionByScheduler"
        ):
            return "preempted"
    return "removed"


# --- command line ------------------------------------------------------------------------


def default_identity() -> str:
    """The Lease holder identity: the pod name (unique per replica) plus a random suffix, so
    a restarted container never mistakes its predecessor's lease for its own."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scheduler-extender placeholders",
        description="Keep pools of low-priority placeholder pods as spare capacity "
        "(docs/placeholders.md).",
    )
    p.add_argument("--config", required=True, type=Path, help="the controller's YAML config")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: in-cluster)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--identity", help="Lease holder identity (default: $POD_NAME + suffix)")
    p.add_argument(
        "--log-level",
        default=os.environ.get("SCHEDULER_EXTENDER_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.add_argument(
        "--ops-address",
        default="0.0.0.0",  # all interfaces: the kubelet probes the pod IP
        help="address of the metricsPort server (/metrics, /healthz, /readyz)",
    )
    return p


def main(argv: Sequence[str]) -> int:
    try:
        args = parser().parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        config = load_config(args.config)
        for pool in config.pools:
            template_pod(config, pool)
    except (ConfigError, ValueError) as exc:
        print(f"scheduler-extender placeholders: invalid config: {exc}", file=sys.stderr)
        return 2
    if args.check:
        names = ", ".join(f"{p.name} ({p.count.mode}, {p.size})" for p in config.pools)
        print(f"config OK: {len(config.pools)} pool(s): {names or 'none'}")
        return 0
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        kube = connect(kubeconfig=args.kubeconfig, context=args.context)
    except KubeConfigError as exc:
        print(f"scheduler-extender placeholders: {exc}", file=sys.stderr)
        return 2
    if kube is None:
        print(
            "scheduler-extender placeholders: no cluster config found (not in a pod, no "
            "kubeconfig); pass --kubeconfig",
            file=sys.stderr,
        )
        return 2
    registry = CollectorRegistry()
    controller = PlaceholderController(
        config, kube, identity=args.identity or default_identity(), registry=registry
    )
    ops: OpsServer | None = None
    if config.metrics_port:
        try:
            ops = OpsServer(
                config.metrics_port,
                registry,
                healthz=controller.liveness,
                readyz=controller.readiness,
                host=args.ops_address,
            )
        except OSError as exc:
            kube.close()
            print(
                f"scheduler-extender placeholders: cannot listen on metricsPort "
                f"{args.ops_address}:{config.metrics_port}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
        ops.start()
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "placeholder controller %s: %d pool(s) in %s, Lease %s, %s",
        controller.identity,
        len(config.pools),
        config.namespace,
        config.lease_name,
        kube.source,
    )
    controller.start()
    done.wait()
    controller.shutdown()
    if ops is not None:
        ops.close()
    kube.close()
    return 0
