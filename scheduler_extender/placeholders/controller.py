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

Writes race with the watch: ``placeholders.expectations`` bridges the gap (created pods count as
existing and deleted ones as gone until the watch shows them; ``expectation_timeout``, 5
minutes, is only the last resort).  What is observed is gathered by ``placeholders.observation``;
the command line is ``placeholders.cli``.

With ``backend: capacityBuffer`` (``placeholders.buffers``; the command line chose it with
``choose_backend``) the same plan drives one CapacityBuffer per pool instead of pods: each pass
syncs every pool's buffer, and once the buffer is written deletes the pool's leftover
placeholder pods (a switch from pods).  Once per leadership the other kind is cleaned up:
buffers of pools no longer configured (buffers backend), or every buffer of this controller
(pods backend, when the API server serves CapacityBuffers at all).

Writes need a view that can be trusted: while the placeholder informer is not synced or its
watch is broken (failing, or silent past its read timeout; the health model of
``cache.reflector``), reconcile plans but neither creates nor deletes, says so once in the log
and in ``scheduler_extender_placeholders_view_ok`` / ``..._paused_reconciles_total``.  A pod is
deleted only after checking its labels and owner again, with a UID precondition, and with grace
period 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from functools import partial

from prometheus_client import CollectorRegistry

from scheduler_extender.core.placeholders import (
    NODE_SIZE_TOLERANCE,
    Actions,
    CountMode,
    Existing,
    PlaceholderObservation,
    PoolPlan,
    SizeMode,
    plan_placeholders,
    pool_actions,
    within_tolerance,
)
from scheduler_extender.core.types import Resources
from scheduler_extender.kube.client import ApiError, KubeClient, Obj
from scheduler_extender.kube.convert import (
    ConversionError,
    creation_time,
    node_stub,
    removal_reason,
    resources_from,
    user_pod_stub,
)
from scheduler_extender.placeholders.buffers import (
    Backend,
    BufferBackend,
    BufferError,
    SyncResult,
    buffers_served,
)
from scheduler_extender.placeholders.buffers import selector as buffer_selector
from scheduler_extender.placeholders.config import ControllerConfig
from scheduler_extender.placeholders.expectations import Expectation, Expectations, rv_int
from scheduler_extender.placeholders.forecast import ForecastStore
from scheduler_extender.placeholders.informer import Handler, Informer, Transform
from scheduler_extender.placeholders.leader import LeaderElector
from scheduler_extender.placeholders.metrics import Metrics
from scheduler_extender.placeholders.observation import Observer, PoolRuntime
from scheduler_extender.placeholders.pods import (
    POOL_LABEL,
    OwnerRef,
    build_pod,
    existing,
    is_ours,
    pod_spec,
    selector,
    spec_hash,
)
from scheduler_extender.placeholders.startup_taint import StartupTaintRemover

log = logging.getLogger(__name__)

PAGE = 500


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
        backend: Backend | None = None,
    ) -> None:
        """``backend``: what ``buffers.choose_backend`` chose at startup (None: the config's,
        unchecked)."""
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
        adaptive = any(p.count.mode in ("adaptive", "forecast") for p in config.pools)
        self.expectations = Expectations()
        #: Why the last reconcile could not write ("" when it could), to log transitions once.
        self._paused_for = ""
        self._owner: OwnerRef | None = None
        self.backend = backend or config.backend
        #: The capacityBuffer backend (None: placeholder pods).
        self.buffers: BufferBackend | None = None
        if self.backend == "capacityBuffer":
            self.buffers = BufferBackend(
                config, kube, owner=lambda: self._owner, timeout=request_timeout
            )
        #: The other backend's leftovers are to be cleaned up (set on becoming leader).
        self._cleanup_due = True
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
        self.observer = Observer(
            config,
            kube,
            self.metrics,
            nodes=self.nodes.items,
            wall=wall,
            request_timeout=request_timeout,
        )
        self.pools = self.observer.pools
        #: ``forecast`` pools' learned profiles and their ConfigMap (None: no such pool).
        self.forecast: ForecastStore | None = None
        #: When the user informer last (re)listed (wall): arrivals are complete from then on.
        self._users_listed: float | None = None
        store = ForecastStore(
            config,
            kube,
            self.metrics,
            owner=lambda: self._owner,
            wall=wall,
            request_timeout=request_timeout,
        )
        if store.enabled:
            self.forecast = store
            self.observer.profile_for = store.profile
        self.users: Informer | None = None
        if adaptive:
            self.users = pod_informer(
                "users",
                config.users_namespace,
                config.users.label_selector,
                self._on_user,
                user_pod_stub,
            )
        self._threads: list[threading.Thread] = []
        #: When the reconcile loop last went round (monotonic; None before it started).
        self.loop_tick: float | None = None

    # --- setup ---

    def _leadership(self, leading: bool) -> None:
        self.metrics.leader.set(1 if leading else 0)
        if self.forecast is not None:
            self.forecast.forget()
        if leading:
            self._cleanup_due = True
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
        ours = self.expectations.observed(uid, deleted=kind == "DELETED")
        was_going = bool(((old or {}).get("metadata") or {}).get("deletionTimestamp"))
        going = kind == "DELETED" or bool(
            ((new or {}).get("metadata") or {}).get("deletionTimestamp")
        )
        bound = bool(((old or obj).get("spec") or {}).get("nodeName"))
        if going and not was_going and bound and not ours:
            pool = str((meta.get("labels") or {}).get(POOL_LABEL) or "")
            self.metrics.preemptions.labels(pool, removal_reason(obj)).inc()
        self.wake.set()

    def _on_user(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        if kind == "SYNC":
            # Pods created and deleted before this (re)list were never seen.
            self._users_listed = self.wall()
        if self.observer.on_user(kind, new):
            self.wake.set()

    def _on_node(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        taint = self.startup_taint
        if self.observer.on_node(kind, new, old) or (
            taint is not None and new is not None and taint.interested(new)
        ):
            self.wake.set()

    def observe(self) -> PlaceholderObservation:
        """What the planner sees now (``placeholders.observation``)."""
        return self.observer.observe()

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

    # --- forecast ---

    def learn(self, *, force_write: bool = False) -> None:
        """Fold what the user informer watched into the forecast pools' profiles and write
        them back when due (``placeholders.forecast``; leader only)."""
        store = self.forecast
        listed = self._users_listed
        if store is None or listed is None:
            return
        now = self.wall()
        arrivals = {p: self.observer.arrival_times(p) for p in store.alphas}
        span = {
            "observed_since": max(listed, now - self.observer.horizon),
            "until": now,
            "utc_offset": self.observer.utc_offset(now),
        }
        store.fold(arrivals, **span)
        store.flush(arrivals, force=force_write, **span)

    # --- reconcile ---

    def _existing(self, pool: str, now: float) -> list[Existing]:
        """The pool's pods as reconcile sees them: the informer's, with pods we created and
        the watch has not shown yet added (Pending), and pods we deleted and the watch still
        shows marked terminating."""
        every, listed_rv = self.placeholders.snapshot()
        view_rv = rv_int(listed_rv)
        seen = {str((p.get("metadata") or {}).get("uid") or "") for p in every}
        pods = [
            p
            for p in every
            if ((p.get("metadata") or {}).get("labels") or {}).get(POOL_LABEL) == pool
        ]
        self.expectations.settle(seen, view_rv, now)
        gone = self.expectations.deleting_uids()
        pending = self.expectations.pending_creates(pool)
        out = []
        for obj in pods:
            e = existing(obj, creation_time(obj))
            out.append(replace(e, terminating=True) if e.uid in gone else e)
        wall = self.wall()
        out += [existing(obj, wall) for obj in pending]
        return out

    def reconcile(self) -> dict[str, Actions]:
        """One pass: plan every pool and apply the differences (leader only)."""
        if self._owner is None and self.config.owner is not None:
            self._owner = self._resolve_owner()
        if self._cleanup_due:
            self._cleanup()
        self.learn()
        observation = self.observe()
        plans = plan_placeholders([r.spec for r in self.pools.values()], observation)
        if self.buffers is not None:
            return self._reconcile_buffers(self.buffers, plans)
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
            if runtime.spec.size is SizeMode.NODE and plan.requests is not None:
                assert want_hash is not None
                want_hash = self._tolerated_hash(runtime, plan.requests, want_hash, pods)
            actions = pool_actions(runtime.spec.size, plan.desired, want_hash, pods)
            if plan.requests is None and plan.desired:
                log.warning("pool %s: %s", name, plan.reason)
            self._apply(runtime, plan, actions, {p.name: p for p in pods})
            done[name] = actions
            self._record(name, plan)
        self.metrics.reconciles.inc()
        return done

    def _reconcile_buffers(
        self, buffers: BufferBackend, plans: Mapping[str, PoolPlan]
    ) -> dict[str, Actions]:
        """The capacityBuffer backend's pass: every pool's buffer follows its plan (the
        placeholder pods' view does not matter to it); then, where the view can be trusted,
        the pool's leftover placeholder pods go, once its buffer is written."""
        trusted = self._view_trusted()
        done: dict[str, Actions] = {}
        mono = self.monotonic()
        for name, runtime in self.pools.items():
            plan = plans[name]
            runtime.plan = plan
            if plan.requests is None and plan.desired:
                log.warning("pool %s: %s", name, plan.reason)
            node_sized = runtime.spec.size is SizeMode.NODE
            result: SyncResult | None = None
            try:
                result = buffers.sync(
                    name, plan, tolerance=NODE_SIZE_TOLERANCE if node_sized else 0.0
                )
            except BufferError as exc:
                self.metrics.errors.labels("buffer").inc()
                log.warning("pool %s: %s", name, exc)
            self._record(name, plan, result)
            if result is None or not trusted:
                continue  # no buffer holds the room yet: the pods keep it
            pods = [p for p in self._existing(name, mono) if not p.terminating]
            if pods:
                actions = Actions(delete=tuple(p.name for p in pods))
                why = replace(plan, reason="backend capacityBuffer: leftover placeholder")
                self._apply(runtime, why, actions, {p.name: p for p in pods})
                done[name] = actions
        self.metrics.reconciles.inc()
        return done

    def _cleanup(self) -> None:
        """Once per leadership: remove the buffers of pools no longer configured (buffers
        backend), or every buffer of this controller (pods backend: a switch back)."""
        if self.buffers is not None:
            try:
                gone = self.buffers.prune()
            except BufferError as exc:
                self.metrics.errors.labels("buffer").inc()
                log.warning(
                    "cannot prune the buffers of removed pools (next pass retries): %s", exc
                )
                return
            if gone:
                log.info("deleted the CapacityBuffers of removed pools: %s", ", ".join(gone))
        else:
            self._prune_buffers()
        self._cleanup_due = False

    def _prune_buffers(self) -> None:
        """Backend pods: delete the CapacityBuffers an earlier ``backend: capacityBuffer`` run
        left, when the API server serves them and RBAC lets us (the chart grants buffer rules
        only with that backend: a 403 is said once, with the command that does it by hand)."""
        ns = self.config.namespace
        try:
            if not buffers_served(self.kube, timeout=self.request_timeout):
                return
            gone = BufferBackend(self.config, self.kube, timeout=self.request_timeout).prune(
                keep=[]
            )
        except (ApiError, BufferError) as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, ApiError) else exc
            if isinstance(cause, ApiError) and cause.code == 403:
                log.info(
                    "backend pods: not allowed to list CapacityBuffers (%s); if an earlier run "
                    "used backend capacityBuffer, delete its buffers with: kubectl delete "
                    "capacitybuffers.autoscaling.x-k8s.io,podtemplates -n %s -l %s",
                    cause,
                    ns,
                    buffer_selector(self.config),
                )
            else:
                self.metrics.errors.labels("buffer").inc()
                log.warning("backend pods: cannot remove leftover CapacityBuffers: %s", exc)
            return
        if gone:
            log.info("backend pods: deleted the CapacityBuffers of pools %s", ", ".join(gone))

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
            self.expectations.deleting(uid, self.monotonic() + self.expectation_timeout)
            try:
                self.kube.delete_pod(
                    ns, name, uid=uid, grace_period_seconds=0, timeout=self.request_timeout
                )
            except ApiError as exc:
                if exc.code not in (404, 409):
                    self.expectations.delete_failed(uid)
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
                self.expectations.created(
                    uid,
                    Expectation(
                        pool,
                        made,
                        rv_int(meta.get("resourceVersion")),
                        self.monotonic() + self.expectation_timeout,
                    ),
                )
                self.metrics.created.labels(pool).inc()
            log.info(
                "pool %s: created %d placeholder(s) (%s, desired %d)",
                pool,
                actions.create,
                plan.reason,
                plan.desired,
            )

    def _record(self, pool: str, plan: PoolPlan, buffer: SyncResult | None = None) -> None:
        m = self.metrics
        m.desired.labels(pool).set(plan.desired)
        if buffer is not None:  # the autoscaler's status; a series it does not report is absent
            for gauge, value in ((m.buffer_replicas, buffer.status_replicas),
                                 (m.buffer_ready, buffer.ready)):  # fmt: skip
                if value is None:
                    with suppress(KeyError):
                        gauge.remove(pool)
                else:
                    gauge.labels(pool).set(int(value))
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
        if self.forecast is not None and self.elector.is_leader():
            with suppress(Exception):
                self.learn(force_write=True)
        self.elector.release()
