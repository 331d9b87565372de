"""Live cluster state: two reflectors feed one applier thread that publishes immutable snapshots.

Threads, and why:

- one ``Reflector`` thread per kind (Nodes, Pods) does the blocking list/watch calls of the
  synchronous ``kubernetes`` client and converts JSON to core values;
- one *applier* thread owns the ``Store``: it drains everything queued (so bursts become one
  batch), applies it, and publishes a new snapshot by assigning one attribute.  It is supervised
  (a failing pass is counted and retried; dead, stuck or failing shows in ``readiness``);
- the asyncio loop that serves kube-scheduler only ever reads that attribute.  It never takes a
  lock, never waits on the API server, and keeps answering while the API server flaps.

``bind`` needs its assumption visible before it returns, so it queues the assumption to the
applier and awaits a ``concurrent.futures.Future`` that resolves once the snapshot holding it is
published (a thread hop, not a lock held by the event loop).  The Binding POST runs in a worker
thread (``asyncio.to_thread``).  The pod is assumed *before* the POST: kube-scheduler binds
asynchronously and may already be scoring the next pod, which must see this one.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from scheduler_extender.cache.options import CacheOptions
from scheduler_extender.cache.readiness import Readiness
from scheduler_extender.cache.reflector import Change, Reflector
from scheduler_extender.cache.store import Store
from scheduler_extender.core.types import Pod, Snapshot
from scheduler_extender.kube.client import ApiError, Kind, KubeClient
from scheduler_extender.kube.convert import (
    DEFAULT_PLACEHOLDER_RULE,
    PlaceholderRule,
    pod_from_json,
)

log = logging.getLogger(__name__)


class BindTarget(Protocol):
    """A bind request as kube-scheduler sends it (the extender's ``ExtenderBindingArgs``, by
    structure: the cache does not depend on the service's wire models)."""

    @property
    def PodName(self) -> str: ...
    @property
    def PodNamespace(self) -> str: ...
    @property
    def PodUID(self) -> str: ...
    @property
    def Node(self) -> str: ...


KINDS: tuple[Kind, ...] = ("nodes", "pods")


@dataclass(frozen=True, slots=True)
class _Request:
    """Work for the applier from another thread, answered through ``future``."""

    run: Callable[[Store], Any]
    future: Future[Any]


@dataclass(slots=True)
class ApplierHealth:
    """What the applier thread reports about itself; written by it, read by ``readiness``."""

    #: When the pass in progress started; None while waiting for work.
    busy_since: float | None = None
    #: When passes started failing; None after a pass that succeeded.
    failing_since: float | None = None
    last_error: str = ""
    #: Why the thread ended, if it ended other than by ``stop()``.
    died: str = ""


def _settle(future: Future[Any], outcome: Any) -> None:
    """Resolve a request's future unless its waiter gave up (cancelled it) or it is resolved."""
    if future.done():
        return
    if not future.running() and not future.set_running_or_notify_cancel():
        return  # cancelled by the waiter (bind's deadline passed)
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class CacheMetrics:
    """The cache's instruments, on the app's registry."""

    def __init__(self, registry: CollectorRegistry, state: LiveState) -> None:
        self.events = Counter(
            "scheduler_extender_cache_events_applied",
            "Watch events applied to the cache, by kind and event type.",
            ["kind", "type"],
            registry=registry,
        )
        self.relists = Counter(
            "scheduler_extender_cache_relists",
            "Full lists, by kind and reason (initial, expired, too_large_resource_version).",
            ["kind", "reason"],
            registry=registry,
        )
        self.restarts = Counter(
            "scheduler_extender_cache_watch_restarts",
            "Watches started again, by kind and reason (closed by the server, idle, short, error).",
            ["kind", "reason"],
            registry=registry,
        )
        self.applier_errors = Counter(
            "scheduler_extender_cache_applier_errors",
            "Applier passes that failed (publishing a snapshot or expiring assumptions); the "
            "changes stay pending and the next pass retries them.",
            registry=registry,
        )
        self.change_errors = Counter(
            "scheduler_extender_cache_change_errors",
            "Single changes that failed to apply to the store and were skipped, by kind.",
            ["kind"],
            registry=registry,
        )
        self.conversion_errors = Counter(
            "scheduler_extender_cache_conversion_errors",
            "Listed or watched objects skipped because they could not be converted, by kind.",
            ["kind"],
            registry=registry,
        )
        self.expired = Counter(
            "scheduler_extender_cache_assumptions_expired",
            "Assumed pods dropped because the watch did not confirm them in time.",
            registry=registry,
        )
        since = Gauge(
            "scheduler_extender_cache_seconds_since_last_event",
            "Seconds since the last watch event or bookmark, by kind (NaN before the first).",
            ["kind"],
            registry=registry,
        )
        synced = Gauge(
            "scheduler_extender_cache_synced",
            "1 once the kind has been listed, else 0.",
            ["kind"],
            registry=registry,
        )
        for kind in KINDS:
            since.labels(kind).set_function(partial(state.seconds_since_last_event, kind))
            synced.labels(kind).set_function(partial(state.is_listed, kind))
        Gauge(
            "scheduler_extender_cache_assumed_pods",
            "Pods bound through the extender and not yet confirmed by the watch.",
            registry=registry,
        ).set_function(lambda: float(len(state.assumed_uids())))
        Gauge(
            "scheduler_extender_cache_pods",
            "Pods placed on known nodes in the current snapshot (bound or assumed).",
            registry=registry,
        ).set_function(lambda: float(len(state.snapshot().pod_nodes)))


class LiveState:
    """``ClusterState`` kept current by list+watch; also the assume cache for ``bind``."""

    #: Changes applied per published snapshot at most: bounds each publish (and so how long the
    #: applier holds the GIL between switches) while a backlog drains.
    MAX_BATCH = 5000

    def __init__(
        self,
        kube: KubeClient,
        options: CacheOptions | None = None,
        *,
        rule: PlaceholderRule = DEFAULT_PLACEHOLDER_RULE,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_ended: Callable[[list[Pod]], None] | None = None,
    ) -> None:
        self.kube = kube
        #: Called on the applier thread with the user pods that left a node in a pass (the
        #: lifetime learner's input).
        self.on_ended = on_ended
        self.options = options or CacheOptions()
        self.rule = rule
        self.clock = clock
        self._store = Store()
        self._snapshot: Snapshot = self._store.snapshot
        self._queue: queue.SimpleQueue[Change | _Request | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self.listed: set[Kind] = set()
        self.publishes = 0
        self._threads: list[threading.Thread] = []
        self._applier: threading.Thread | None = None
        self.applier = ApplierHealth()
        self._gc_paused = False
        self._gc_paused_at = 0.0
        self.metrics = CacheMetrics(registry, self) if registry is not None else None
        rng = rng or random.Random()
        self.reflectors = {
            kind: Reflector(
                kind,
                kube,
                self._queue.put,
                self.options,
                rule=rule,
                clock=clock,
                rng=random.Random(rng.random()),
                stop=self._stop,
                on_relist=self._count_relist,
                on_restart=self._count_restart,
                on_skip=self._count_skip,
            )
            for kind in KINDS
        }

    # --- lifecycle ---

    def start(self) -> LiveState:
        if self._threads:
            return self
        if self.options.freeze_gc_after_sync and gc.isenabled():
            # Building the cache allocates millions of long-lived objects, which triggers full
            # collections that each walk the whole growing heap with the GIL held (measured:
            # 0.2-0.3 s stalls of the event loop during a sync).  Collect nothing until the first
            # sync is done, then freeze what was built (see docs/live-state.md).
            gc.disable()
            self._gc_paused = True
            self._gc_paused_at = self.clock()
        applier = threading.Thread(target=self._apply_loop, name="cache-applier", daemon=True)
        self._applier = applier
        self._threads.append(applier)
        for kind, reflector in self.reflectors.items():
            self._threads.append(
                threading.Thread(target=reflector.run, name=f"reflector-{kind}", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for reflector in self.reflectors.values():
            reflector.interrupt()
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        if self._gc_paused:
            gc.enable()
            self._gc_paused = False

    def wait_synced(self, timeout: float) -> bool:
        """Block until both kinds are listed and applied (startup, tests, benchmarks)."""
        return self._synced.wait(timeout)

    # --- ClusterState ---

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def readiness(self) -> Readiness:
        missing = [kind for kind in KINDS if kind not in self.listed]
        if missing:
            reason = f"waiting for the first list of {' and '.join(missing)}"
            errors = [self.reflectors[k].status.last_error for k in missing]
            if any(errors):
                # e.g. RBAC missing: say so instead of waiting silently.
                reason += f" (last error: {next(e for e in errors if e)})"
            return Readiness(False, reason)
        now = self.clock()
        stuck = self._applier_problem(now)
        if stuck:
            return Readiness(False, stuck)
        for kind, reflector in self.reflectors.items():
            stale = reflector.status.stale_for(now)
            if stale is not None and stale > self.options.staleness_seconds:
                return Readiness(
                    False,
                    f"{kind} watch broken, no sign of life for {stale:.0f}s (staleness_seconds="
                    f"{self.options.staleness_seconds:g}): {reflector.status.last_error}",
                )
        return Readiness(True)

    def _applier_problem(self, now: float) -> str:
        """Why the applier cannot be trusted to publish, or "": the snapshots freeze when it
        is dead, stuck in one pass, or failing every pass."""
        health = self.applier
        if health.died or (
            self._applier is not None and not self._applier.is_alive() and not self._stop.is_set()
        ):
            return f"cache applier stopped: {health.died or 'thread ended'}"
        limit = self.options.staleness_seconds
        busy = health.busy_since
        if busy is not None and now - busy > limit:
            return (
                f"cache applier stuck on one batch for {now - busy:.0f}s "
                f"(staleness_seconds={limit:g})"
            )
        failing = health.failing_since
        if failing is not None and now - failing > limit:
            return (
                f"cache applier failing for {now - failing:.0f}s (staleness_seconds={limit:g}): "
                f"{health.last_error}"
            )
        return ""

    def describe(self) -> str:
        snap = self._snapshot
        state = "synced" if self._synced.is_set() else "syncing"
        return (
            f"live cluster state from {self.kube.source} ({state}: {len(snap.nodes)} nodes, "
            f"{len(snap.pod_nodes)} pods)"
        )

    # --- observation ---

    def seconds_since_last_event(self, kind: Kind) -> float:
        last = self.reflectors[kind].status.last_event
        return math.nan if last is None else self.clock() - last

    def is_listed(self, kind: Kind) -> float:
        return float(kind in self.listed)

    def assumed_uids(self) -> frozenset[str]:
        return frozenset(self._store.assumed)

    # --- assume cache (any thread) ---

    def _request(self, run: Callable[[Store], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        if self._stop.is_set():
            future.set_exception(RuntimeError("live state is stopped"))
        elif self.applier.died:
            future.set_exception(RuntimeError(f"cache applier stopped: {self.applier.died}"))
        else:
            self._queue.put(_Request(run, future))
        return future

    def assume(self, uid: str, node: str, pod: Pod | None = None) -> Future[str]:
        """Count pod ``uid`` on ``node`` from the next snapshot on.  The future resolves, once
        that snapshot is published, to "" or why the pod was not assumed."""
        expires = self.clock() + self.options.assume_ttl_seconds
        return self._request(lambda store: store.assume(uid, node, expires, pod))

    def forget(self, uid: str) -> Future[bool]:
        return self._request(lambda store: store.forget(uid))

    # --- the applier ---

    def _count_relist(self, kind: Kind, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.relists.labels(kind, reason).inc()

    def _count_restart(self, kind: Kind, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.restarts.labels(kind, reason).inc()

    def _count_skip(self, kind: Kind) -> None:
        if self.metrics is not None:
            self.metrics.conversion_errors.labels(kind).inc()

    def _wait(self) -> float:
        expiry = self._store.next_expiry()
        if expiry is None:
            return 1.0
        return min(1.0, max(0.0, expiry - self.clock()))

    def _apply_loop(self) -> None:
        """Supervise the applier: a pass that raises is logged, counted and retried (its changes
        stay pending in the store); whatever ends the thread is recorded for ``readiness``."""
        try:
            while True:
                batch = self._next_batch()
                self.applier.busy_since = self.clock()
                try:
                    self._apply(batch)
                except Exception as exc:
                    self._pass_failed(batch, exc)
                else:
                    self.applier.failing_since = None
                finally:
                    self.applier.busy_since = None
                if any(item is None for item in batch):
                    return
        except BaseException as exc:  # the thread is ending: say why, readiness reports it
            self.applier.died = f"{type(exc).__name__}: {exc}"
            log.critical("cache applier stopped: %s", self.applier.died, exc_info=True)
            for item in self._drain():
                if isinstance(item, _Request):
                    _settle(item.future, RuntimeError(f"cache applier stopped: {exc}"))

    def _drain(self) -> list[Change | _Request | None]:
        items: list[Change | _Request | None] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _next_batch(self) -> list[Change | _Request | None]:
        """Everything queued (at most ``MAX_BATCH``), waiting up to the next expiry for work."""
        try:
            batch: list[Change | _Request | None] = [self._queue.get(timeout=self._wait())]
        except queue.Empty:
            batch = []
        while len(batch) < self.MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _pass_failed(self, batch: list[Change | _Request | None], exc: Exception) -> None:
        health = self.applier
        health.last_error = f"{type(exc).__name__}: {exc}"
        if health.failing_since is None:
            health.failing_since = self.clock()
        if self.metrics is not None:
            self.metrics.applier_errors.inc()
        log.exception("cache applier pass failed; its changes stay pending and are retried")
        for item in batch:
            if isinstance(item, _Request):
                _settle(item.future, exc)  # the snapshot they wait for was not published
        self._stop.wait(0.05)  # a pass that keeps failing must not spin

    def _apply(self, batch: list[Change | _Request | None]) -> None:
        """One pass: apply the batch, expire assumptions, publish, then answer the requests."""
        store = self._store
        answers: list[tuple[Future[Any], Any]] = []
        relisted = False
        for item in batch:
            if item is None:
                continue
            if isinstance(item, _Request):
                if not item.future.set_running_or_notify_cancel():
                    continue  # the waiter gave up before it ran
                try:
                    answers.append((item.future, item.run(store)))
                except Exception as exc:
                    answers.append((item.future, exc))
                continue
            try:
                item.apply(store)
            except Exception:  # one bad change must not stop the cache
                log.exception("applying a %s %s change failed", item.kind, item.type)
                if self.metrics is not None:
                    self.metrics.change_errors.labels(item.kind).inc()
                continue
            if item.type == "LIST":
                relisted = True
                self.listed.add(item.kind)
            elif self.metrics is not None and not item.type.startswith("LIST"):
                self.metrics.events.labels(item.kind, item.type).inc()
        if store.ended:
            ended, store.ended = store.ended, []
            if self.on_ended is not None:
                try:
                    self.on_ended(ended)
                except Exception:  # learning must never stop the cache
                    log.exception("recording ended pods failed")
        expired = store.expire(self.clock())
        if expired and self.metrics is not None:
            self.metrics.expired.inc(expired)
        if store.pending:
            self._snapshot = store.publish()
            self.publishes += 1
        if (
            self._gc_paused
            and self.clock() - self._gc_paused_at > self.options.gc_pause_max_seconds
        ):
            log.warning(
                "no full sync after %.0fs: garbage collection back on (freezes after the sync)",
                self.options.gc_pause_max_seconds,
            )
            gc.enable()
            self._gc_paused = False
        if len(self.listed) == len(KINDS) and not self._synced.is_set():
            if self.options.freeze_gc_after_sync:
                gc.freeze()
            if self._gc_paused:
                gc.enable()
                self._gc_paused = False
            self._synced.set()
        elif relisted and self.options.freeze_gc_after_sync:
            gc.freeze()
        for future, answer in answers:
            _settle(future, answer)


class LiveBinder:
    """``app.Binder`` over the live state: assume, POST the Binding, forget on failure.

    The whole bind has one deadline, ``bind_timeout_seconds`` (kept below kube-scheduler's
    ``httpTimeout`` by the chart): the pod read, the wait for the assumption to be published and
    the Binding POST share it, each API call gets only the time that is left, and urllib3 makes
    one attempt per call (``kube.connect``).  A call running in a worker thread cannot be
    interrupted, but its own timeout ends it about when the deadline passes.
    """

    #: How long a timed-out bind waits for the applier to drop its assumption before replying.
    FORGET_WAIT_SECONDS = 0.1
    #: Each API call may run this much past the deadline, so the deadline (not a call's own
    #: timeout racing it) decides, and the reply says so.
    CALL_GRACE_SECONDS = 0.2

    def __init__(self, state: LiveState, kube: KubeClient) -> None:
        self.state = state
        self.kube = kube
        self.timeout = state.options.bind_timeout_seconds

    def _left(self, deadline: float) -> float:
        left = deadline - asyncio.get_running_loop().time()
        return max(0.0, left) + self.CALL_GRACE_SECONDS

    async def _assume(self, args: BindTarget, deadline: float) -> None:
        """Count the pod on its node before the Binding goes out.  Best effort: if it cannot be
        done, the bind still proceeds and the watch brings the pod a little later."""
        try:
            await self._try_assume(args, deadline)
        except Exception as exc:
            log.warning("cannot assume %s/%s: %s", args.PodNamespace, args.PodName, exc)

    async def _try_assume(self, args: BindTarget, deadline: float) -> None:
        why = await asyncio.wrap_future(self.state.assume(args.PodUID, args.Node))
        if why != "unknown pod":
            if why:
                log.info("not assuming %s/%s: %s", args.PodNamespace, args.PodName, why)
            return
        # The pod watch has not delivered this pod yet: read it, so its requests count now.
        try:
            obj = await asyncio.to_thread(
                self.kube.get_pod, args.PodNamespace, args.PodName, timeout=self._left(deadline)
            )
            pod = pod_from_json(obj, self.state.rule)
        except Exception as exc:  # API error, timeout, a pod that cannot be converted
            log.warning("cannot read %s/%s to assume it: %s", args.PodNamespace, args.PodName, exc)
            return
        if args.PodUID and pod.uid != args.PodUID:
            return  # a different pod of the same name; the binding's UID precondition fails
        await asyncio.wrap_future(self.state.assume(pod.uid, args.Node, pod))

    async def _bind(self, args: BindTarget, deadline: float) -> str:
        await self._assume(args, deadline)
        try:
            await asyncio.to_thread(
                self.kube.bind,
                args.PodNamespace,
                args.PodName,
                args.PodUID,
                args.Node,
                timeout=self._left(deadline),
            )
        except Exception as exc:
            await asyncio.wrap_future(self.state.forget(args.PodUID))
            detail = exc.message if isinstance(exc, ApiError) and exc.message else str(exc)
            return f"{_binding(args)} failed: {detail or type(exc).__name__}"
        return ""

    async def bind(self, args: BindTarget) -> str:
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            return await asyncio.wait_for(self._bind(args, deadline), self.timeout)
        except TimeoutError:
            # Whether the Binding reached the API server is unknown; if it did, the watch shows
            # the pod bound and kube-scheduler drops its retry.  Either way nothing stays assumed.
            forgotten = asyncio.wrap_future(self.state.forget(args.PodUID))
            await asyncio.wait([forgotten], timeout=self.FORGET_WAIT_SECONDS)
            log.warning("%s timed out after %gs", _binding(args), self.timeout)
            return (
                f"{_binding(args)} failed: no answer within bind_timeout_seconds="
                f"{self.timeout:g} (the API server or the cache is too slow)"
            )


def _binding(args: BindTarget) -> str:
    return f"binding pod {args.PodNamespace}/{args.PodName} to node {args.Node}"
