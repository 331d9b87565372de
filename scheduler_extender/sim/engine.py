"""The discrete-event simulation: one hub, one policy, one seed.

Time is a float of simulated seconds from the start of the run (a Monday, 00:00), advanced only
by the event queue (``heapq``); nothing reads a wall clock.  Randomness comes from streams seeded
by the run's seed: the workload (drawn before the run, identical for every policy), node
provisioning delays, image pull times, and the scheduler's tie-breaks, each on its own stream so
a policy's choices do not shift another part's draws.  The same scenario, policy and seed give
the same result, event for event.

What happens to a user (``UserSpec``): they arrive and KubeSpawner creates their pod; the
kube-scheduler model (``scheduler.KubeScheduler``) binds it to a node, preempts placeholders for
it, or leaves it pending until the Cluster Autoscaler model (``autoscaler``) adds a node; on its
node the pod waits for its image (pulled by the continuous puller when the node came up, or by
kubelet now) and then runs; the user is active for their activity time and the culler removes
the server on a later pass.  A user not running ``start_timeout`` after arrival is a failed
spawn: KubeSpawner deletes the pod.

Two views of the cluster: the scheduler's cache (it assumes its own binds at once) and the
extender's, fed by a watch that lags by ``scheduler.watch_delay``; with ``bind_assume`` the
extender also records its own binds at once, as the live service does.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from scheduler_extender.core.drain import Drain, prior_of
from scheduler_extender.core.filtering import check_node
from scheduler_extender.core.lifetime import (
    LIFETIME_GRID,
    LifetimeModel,
    fit,
    lifetime_bin,
    refit_due,
)
from scheduler_extender.core.placeholders import (
    Existing,
    NodeSample,
    PlaceholderObservation,
    PoolObservation,
    arrival_horizon,
    clamp_ready,
    pool_actions,
)
from scheduler_extender.core.policy import (
    DELETION_CANDIDATE_TAINT,
    NODE_PURPOSE_LABEL,
    NODE_PURPOSE_USER,
)
from scheduler_extender.core.snapshot import with_pod
from scheduler_extender.core.startup_taint import (
    startup_taint,
    startup_taint_decision,
    startup_toleration,
    without_taint,
)
from scheduler_extender.core.types import (
    Node,
    NodeInfo,
    Pod,
    Requirement,
    Resources,
    SelectorTerm,
    Snapshot,
    Taint,
    Toleration,
)
from scheduler_extender.sim.autoscaler import make_autoscaler
from scheduler_extender.sim.cluster import LiveSnapshot
from scheduler_extender.sim.model import Kind, PodState, Sample, SimNode, SimPod, Stats
from scheduler_extender.sim.placeholders import (
    PlaceholderPlanner,
    core_planner,
    history_profile,
    pool_spec,
)
from scheduler_extender.sim.scenario import Scenario
from scheduler_extender.sim.scheduler import (
    IN_TREE_FILTER,
    ClusterView,
    KubeScheduler,
    PreemptCall,
    PrioritizeCall,
    Profile,
)
from scheduler_extender.sim.workload import UserSpec, departure, generate_users

POOL = "user"
#: Simulated time 0 as a Unix time (2024-01-01T00:00:00Z, a Monday), for creation timestamps.
EPOCH = 1_704_067_200.0
SAMPLE_EVERY = 300.0
#: Seconds between refits of the extender's lifetime estimate (the service's default too).
LIFETIME_REFRESH = 300.0
DEDICATED_TAINT = Taint("hub.jupyter.org/dedicated", "user", "NoSchedule")
SOFT_TAINT = Taint(DELETION_CANDIDATE_TAINT, "", "PreferNoSchedule")
#: z2jh user and placeholder pods tolerate the dedicated user-pool taint (both spellings) and
#: prefer user nodes (``scheduling.userPods.nodeAffinity.matchNodePurpose: prefer``).
USER_TOLERATIONS = (
    Toleration("hub.jupyter.org/dedicated", "Equal", "user", "NoSchedule"),
    Toleration("hub.jupyter.org_dedicated", "Equal", "user", "NoSchedule"),
)
USER_PREFERRED = (
    (100, SelectorTerm((Requirement(NODE_PURPOSE_LABEL, "In", (NODE_PURPOSE_USER,)),))),
)
USER_PRIORITY = 0
#: The placeholder pods' image (z2jh runs the pause image in them).
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"


class _KnownLeave(Mapping[str, float]):
    """``survival-exact``'s knowledge: each placed user's departure, in Unix seconds."""

    def __init__(self, leave: dict[str, float]) -> None:
        self._leave = leave

    def __getitem__(self, uid: str) -> float:
        return EPOCH + self._leave[uid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._leave)

    def __len__(self) -> int:
        return len(self._leave)


class Simulation:
    """One run.  ``run()`` returns the finished simulation; read ``stats``, ``nodes_log``."""

    def __init__(
        self,
        scenario: Scenario,
        profile: Profile,
        seed: int,
        *,
        users: Sequence[UserSpec] | None = None,
        planner: PlaceholderPlanner | None = None,
        on_prioritize: Callable[[PrioritizeCall], None] | None = None,
        on_preempt: Callable[[PreemptCall], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.profile = profile
        self.seed = seed
        self.users = list(users) if users is not None else generate_users(scenario, seed)
        taint = scenario.startup_taint
        #: Placeholders tolerate the startup taint (users do not); pullers are modelled as
        #: pulls that start when the node is Ready, tainted or not.
        self.placeholder_tolerations = USER_TOLERATIONS + (
            (startup_toleration(taint.key),) if taint.enabled else ()
        )
        self.startup_taint = startup_taint(taint.key) if taint.enabled else None
        self.pool_spec = pool_spec(
            scenario, POOL, self.placeholder_tolerations, scenario.placeholders.priority
        )
        self.planner = planner or core_planner([self.pool_spec])
        #: ``forecast`` mode: the arrivals learned from the weeks before the run.
        self.arrival_profile = history_profile(scenario, seed, EPOCH)
        self.now = 0.0
        self._events: list[tuple[float, int, int, Kind, object]] = []
        self._seq = 0
        self.rng_provision = random.Random(seed * 7919 + 1)
        self.rng_pull = random.Random(seed * 7919 + 2)
        self.scheduler = KubeScheduler(
            profile, random.Random(seed * 7919 + 3), on_prioritize, on_preempt
        )
        self.cache = LiveSnapshot()
        ext = profile.extender
        self.extender = ext
        self.ext_cache: LiveSnapshot | None = LiveSnapshot() if ext is not None else None
        self._ext_ops: deque[tuple[float, int, object]] = deque()
        self.nodes: dict[str, SimNode] = {}
        self.nodes_log: list[SimNode] = []
        self.order: list[str] = []
        self.pods: dict[str, SimPod] = {}
        self.nominated: dict[str, list[Pod]] = {}
        self.image_counts: dict[str, int] = {}
        self._active: list[tuple[int, float, int, SimPod]] = []
        self._backoff: list[tuple[float, int, SimPod]] = []
        self._unschedulable: dict[str, SimPod] = {}
        #: Pods whose last attempt failed (PodScheduled=False): what the autoscaler reads.
        self.flagged: dict[str, SimPod] = {}
        self.placeholder_pods: dict[str, SimPod] = {}
        self.users_waiting = 0
        self.users_running = 0
        self._placed_leave: dict[str, float] = {}
        #: When the last user pod was deleted, and the end of the run (``duration``, or later
        #: with ``drain_tail`` when servers outlive it); set by ``run``.
        self.last_user_gone = 0.0
        self.end = scenario.duration
        self._cycle_pending = False
        self._node_seq = 0
        self._pod_seq = 0
        self.stats = Stats()
        self.recent_arrivals: deque[float] = deque()
        #: What a new placeholder requests: one user's guarantee, or a node's share once the
        #: plan sizes node placeholders.
        self.placeholder_requests = self.pool_spec.template.requests
        self._desired: dict[str, int] = {}
        self._pool_images = frozenset(p.image for p in scenario.users.profiles)
        self.image_sizes = {img.name: img.size for img in scenario.images.known}
        self.pull_images = sorted({u.image for u in self.users} | self.image_sizes.keys())
        self.view = ClusterView(
            cache=self.cache.snapshot,
            order=self.order,
            nominated=self.nominated,
            image_counts=self.image_counts,
            nonzero=self.cache.nonzero,
            extender_view=self._extender_snapshot if ext is not None else None,
            image_sizes=self.image_sizes,
        )
        # The extender's lifetime learner (core.lifetime): bin counts of the lifetimes of user
        # pods it saw deleted, refitted at most every LIFETIME_REFRESH seconds.  Its culler
        # settings are the scenario's, as an operator would configure them.
        self._lifetime_counts = [0] * len(LIFETIME_GRID)
        self._lifetime_model: LifetimeModel | None = None
        self._lifetime_fitted_at = -math.inf
        self._known_leave: Mapping[str, float] | None = None
        if ext is not None and ext.policy.drain_weight:
            culler = scenario.culler
            self._lifetime_prior = replace(
                prior_of(ext.policy),
                timeout=culler.timeout,
                every=culler.every,
                max_age=culler.max_age,
            )
            self.view.drain = self._drain
            if profile.lifetime_knowledge != "learned":
                # Reference variants: the true session-length distribution, fixed from the start.
                for u in self.users:
                    span = departure(u, scenario, u.arrival) - u.arrival
                    self._lifetime_counts[lifetime_bin(span)] += 1
                self._lifetime_model = fit(
                    self._lifetime_counts, replace(self._lifetime_prior, weight=0)
                )
                self._lifetime_fitted_at = math.inf
                self._known_leave = (
                    _KnownLeave(self._placed_leave)
                    if profile.lifetime_knowledge == "exact"
                    else None
                )
        if profile.oracle:
            self.view.leaves_at = self._leaves_at
            if not profile.oracle_knows_new:
                spans = sorted(departure(u, scenario, u.arrival) - u.arrival for u in self.users)
                self._spans = spans
                self._span_tail = list(itertools.accumulate(reversed(spans)))[::-1]
                self.view.extension = self._extension
            self.view.placed_leave = self._placed_leave
        self.autoscaler = make_autoscaler(self)

    # --- event queue -----------------------------------------------------------------------

    def at(self, time: float, kind: Kind, obj: object = None) -> None:
        self._seq += 1
        heapq.heappush(self._events, (time, int(kind), self._seq, kind, obj))

    def run(self, progress: Callable[[float], None] | None = None) -> Simulation:
        end = self.scenario.duration
        for user in self.users:
            if user.arrival < end:
                self.at(user.arrival, Kind.ARRIVE, user)
        for _ in range(self.scenario.pool.initial_nodes):
            self.add_node(ready_at=0.0, with_images=True)
        if self.ext_cache is not None:
            # The initial nodes existed before the run: the extender's watch has seen them.
            self._ext_ops = deque((0.0, op, payload) for _, op, payload in self._ext_ops)
            self._ext_flush()
        self.at(0.0, Kind.PLAN)
        self.at(0.0, Kind.SAMPLE)
        self.autoscaler.start()
        handlers: dict[Kind, Callable[[object], None]] = {
            Kind.ARRIVE: self._on_arrive,
            Kind.CYCLE: self._on_cycle,
            Kind.RUNNING: self._on_running,
            Kind.TIMEOUT: self._on_timeout,
            Kind.DEPART: self._on_depart,
            Kind.NODE_READY: self._on_node_ready,
            Kind.PULLED: self._on_pulled,
            Kind.RECREATE: self._on_recreate,
            Kind.REQUEUE: self._on_requeue,
            Kind.PLAN: self._on_plan,
            Kind.AUTOSCALE: self._on_autoscale,
            Kind.SAMPLE: self._on_sample,
            Kind.UNTAINT: self._on_untaint,
        }
        events = self._events
        next_report = 0.0
        drain = self.scenario.drain_tail
        while events:
            if events[0][0] > end and (not drain or self.users_waiting + self.users_running == 0):
                break
            time, _, _, kind, obj = heapq.heappop(events)
            self.now = time
            handlers[kind](obj)
            if progress is not None and time >= next_report:
                progress(min(time, end))
                next_report = time + end / 200
        if drain:
            end = max(end, self.last_user_gone)
        self.end = end
        self.now = end
        for node in self.nodes.values():
            node.mark(end)
        for sp in self.pods.values():
            if sp.placeholder and sp.state in (PodState.BOUND, PodState.RUNNING):
                self._account_placeholder(sp, end)
        if progress is not None:
            progress(end)
        return self

    # --- nodes -----------------------------------------------------------------------------

    def pool_size(self) -> int:
        return sum(1 for n in self.nodes.values() if not n.deleting)

    def template_node(self, name: str, created: float) -> Node:
        pool = self.scenario.pool
        labels = {
            "kubernetes.io/hostname": name,
            "node.kubernetes.io/instance-type": pool.instance_type,
        }
        if pool.dedicated:
            labels[NODE_PURPOSE_LABEL] = NODE_PURPOSE_USER
        return Node(
            name=name,
            allocatable=Resources(pool.cpu, pool.memory, pool.pods),
            labels=labels,
            taints=(DEDICATED_TAINT,) if pool.dedicated else (),
            # Kubernetes timestamps have one-second resolution.
            created=EPOCH + math.floor(created),
        )

    def add_node(self, *, ready_at: float | None = None, with_images: bool = False) -> SimNode:
        """A node requested now; ready after a drawn provisioning delay unless ``ready_at``."""
        self._node_seq += 1
        name = f"{POOL}-{self._node_seq:05d}"
        node = self.template_node(name, self.now)
        if with_images:
            node = replace(node, images=frozenset(self.pull_images))
        elif self.startup_taint is not None:
            node = replace(node, taints=(*node.taints, self.startup_taint))
        sim = SimNode(name, node, created=self.now, marked=self.now)
        self.nodes[name] = sim
        self.nodes_log.append(sim)
        if ready_at is None:
            spec = self.scenario.autoscaler.provisioning
            ready_at = self.now + self.rng_provision.uniform(spec.min, spec.max)
        self.stats.nodes_added += 1
        self._record_nodes()
        if ready_at <= self.now:
            self._on_node_ready(sim)
        else:
            self.at(ready_at, Kind.NODE_READY, sim)
        return sim

    def _record_nodes(self) -> None:
        count = self.pool_size()
        self.stats.peak_nodes = max(self.stats.peak_nodes, count)
        self.stats.timeline.append((self.now, count))

    def _on_node_ready(self, obj: object) -> None:
        sim = obj if isinstance(obj, SimNode) else None
        if sim is None or sim.deleting or sim.ready:
            return
        sim.mark(self.now)
        sim.ready = True
        sim.ready_at = self.now
        self.order.append(sim.name)
        self._set_node(sim, sim.node)
        for image in sim.node.images:
            self.image_counts[image] = self.image_counts.get(image, 0) + 1
        self.view.image_epoch += 1
        if self.scenario.images.continuous_puller:
            for image in self.pull_images:
                if image not in sim.node.images:
                    self._start_pull(sim, image)
        self._check_startup_taint(sim)
        self._move_all_to_active()

    def _set_node(self, sim: SimNode, node: Node) -> None:
        sim.node = node
        if sim.ready and not sim.deleting:
            self.cache.upsert_node(node)
            self._ext_push(1, node)

    def _start_pull(self, sim: SimNode, image: str) -> float:
        done = sim.pulls.get(image)
        if done is None:
            spec = self.scenario.image(image).pull
            done = self.now + self.rng_pull.uniform(spec.min, spec.max)
            sim.pulls[image] = done
            self.at(done, Kind.PULLED, (sim, image))
        return done

    def _on_pulled(self, obj: object) -> None:
        assert isinstance(obj, tuple)
        sim: SimNode = obj[0]
        image: str = obj[1]
        if sim.deleting or image in sim.node.images:
            return
        self.image_counts[image] = self.image_counts.get(image, 0) + 1
        self.view.image_epoch += 1
        self._set_node(sim, replace(sim.node, images=sim.node.images | {image}))
        self._check_startup_taint(sim)

    # --- the startup taint -----------------------------------------------------------------

    def startup_tainted(self, sim: SimNode) -> bool:
        """Whether ``sim`` still carries the startup taint."""
        taint = self.startup_taint
        return taint is not None and any(t.key == taint.key for t in sim.node.taints)

    def _check_startup_taint(self, sim: SimNode) -> None:
        """The controller's decision (``core.startup_taint``) on the model node; the removal
        lands ``startup_taint.removal_delay`` later (its watch event and patch)."""
        if self.startup_taint is None or not sim.ready or sim.untaint_due:
            return
        decision = startup_taint_decision(
            sim.node.taints, sim.node.images, self._pool_images, key=self.startup_taint.key
        )
        if decision.remove:
            sim.untaint_due = True
            self.at(self.now + self.scenario.startup_taint.removal_delay, Kind.UNTAINT, sim)

    def _on_untaint(self, obj: object) -> None:
        sim = obj if isinstance(obj, SimNode) else None
        if sim is None or sim.deleting or self.startup_taint is None:
            return
        taints = without_taint(sim.node.taints, self.startup_taint.key)
        self._set_node(sim, replace(sim.node, taints=taints))
        self.stats.startup_taints_removed += 1
        self.stats.startup_taint_seconds += self.now - sim.ready_at
        self._move_all_to_active()

    def set_soft_taint(self, sim: SimNode, on: bool) -> None:
        """CA's DeletionCandidateOfClusterAutoscaler PreferNoSchedule taint on/off."""
        has = any(t.key == DELETION_CANDIDATE_TAINT for t in sim.node.taints)
        if has == on:
            return
        taints = tuple(t for t in sim.node.taints if t.key != DELETION_CANDIDATE_TAINT)
        self._set_node(sim, replace(sim.node, taints=(*taints, SOFT_TAINT) if on else taints))

    def remove_node(self, sim: SimNode) -> None:
        """The autoscaler deletes ``sim``: no new pods from now on, its pods are evicted, and it
        stops being billed after ``node_deletion`` seconds."""
        if sim.deleting:
            return
        sim.mark(self.now)
        sim.deleting = True
        for info_pod in list(self.cache.nodes[sim.name].pods.values()) if sim.ready else []:
            sp = self.pods.get(info_pod.uid)
            if sp is not None:
                self.delete_pod(sp, evicted=True)
        if sim.ready:
            self.cache.delete_node(sim.name)
            self.order.remove(sim.name)
            for image in sim.node.images:
                self.image_counts[image] -= 1
            self.view.image_epoch += 1
            self._ext_push(3, sim.name)
        self.nominated.pop(sim.name, None)
        sim.mark(self.now)
        sim.deleted_at = self.now + self.scenario.autoscaler.node_deletion
        # Time after the decision counts as empty (being deleted).
        sim.empty_s += self.scenario.autoscaler.node_deletion
        del self.nodes[sim.name]
        self.stats.nodes_removed += 1
        self._record_nodes()

    # --- the extender's lagging view -------------------------------------------------------

    def _ext_push(self, op: int, payload: object) -> None:
        """Queue a change for the extender's watch: 0 pod upsert, 1 node upsert, 2 pod delete,
        3 node delete."""
        if self.ext_cache is not None:
            self._ext_ops.append((self.now + self.scenario.scheduler.watch_delay, op, payload))

    def _ext_flush(self) -> None:
        ops = self._ext_ops
        ext = self.ext_cache
        assert ext is not None
        now = self.now
        while ops and ops[0][0] <= now:
            _, op, payload = ops.popleft()
            if op == 0:
                ext.upsert_pod(payload)  # type: ignore[arg-type]
            elif op == 1:
                ext.upsert_node(payload)  # type: ignore[arg-type]
            elif op == 2:
                ext.delete_pod(payload)  # type: ignore[arg-type]
            else:
                ext.delete_node(payload)  # type: ignore[arg-type]

    def _drain(self) -> Drain:
        """The extender's clock and lifetime estimate (refitted when stale and data is new)."""
        model = self._lifetime_model
        if model is None or (
            self.now - self._lifetime_fitted_at >= LIFETIME_REFRESH
            and refit_due(model.observations, sum(self._lifetime_counts))
        ):
            model = fit(self._lifetime_counts, self._lifetime_prior)
            self._lifetime_model = model
            self._lifetime_fitted_at = self.now
        return Drain(EPOCH + self.now, model, self._known_leave)

    def _extender_snapshot(self) -> Snapshot:
        self._ext_flush()
        assert self.ext_cache is not None
        return self.ext_cache.snapshot

    # --- pods ------------------------------------------------------------------------------

    def _new_pod(self, user: UserSpec | None) -> SimPod:
        # Creation timestamps have one-second resolution, as in Kubernetes (the drain term reads
        # them, and the parity test rebuilds pods from their JSON).
        self._pod_seq += 1
        if user is not None:
            pod = Pod(
                uid=f"user-{user.index}",
                name=f"jupyter-user-{user.index}",
                namespace="jhub",
                requests=Resources(user.cpu, user.memory, 1),
                priority=USER_PRIORITY,
                tolerations=USER_TOLERATIONS,
                images=(user.image,),
                created=EPOCH + math.floor(self.now),
            )
        else:
            pod = Pod(
                uid=f"placeholder-{self._pod_seq}",
                name=f"user-placeholder-{self._pod_seq}",
                namespace="jhub",
                requests=self.placeholder_requests,
                priority=self.scenario.placeholders.priority,
                placeholder=True,
                tolerations=self.placeholder_tolerations,
                images=(PAUSE_IMAGE,),
                created=EPOCH + math.floor(self.now),
            )
        sp = SimPod(pod, user)
        self.pods[pod.uid] = sp
        if user is None:
            self.placeholder_pods[pod.uid] = sp
        else:
            self.users_waiting += 1
        self._enqueue(sp, self.now)
        return sp

    def _enqueue(self, sp: SimPod, eligible: float) -> None:
        if sp.queued or sp.state is not PodState.PENDING:
            return
        sp.queued = True
        self._unschedulable.pop(sp.uid, None)
        if eligible <= self.now:
            heapq.heappush(self._active, (-sp.pod.priority, sp.pod.created, self._next(), sp))
        else:
            heapq.heappush(self._backoff, (eligible, self._next(), sp))
        self._wake_scheduler()

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _move_all_to_active(self) -> None:
        """A cluster event that may make unschedulable pods fit: retry them after their backoff
        (MoveAllToActiveOrBackoffQueue)."""
        if not self._unschedulable:
            return
        waiting = list(self._unschedulable.values())
        self._unschedulable.clear()
        for sp in waiting:
            self._enqueue(sp, max(self.now, sp.eligible_at))

    def _wake_scheduler(self) -> None:
        if self._cycle_pending:
            return
        if self._active:
            when = self.now
        elif self._backoff:
            when = max(self.now, self._backoff[0][0])
        else:
            return
        self._cycle_pending = True
        self.at(when, Kind.CYCLE)

    def _on_cycle(self, _: object) -> None:
        self._cycle_pending = False
        while self._backoff and self._backoff[0][0] <= self.now:
            _, seq, sp = heapq.heappop(self._backoff)
            heapq.heappush(self._active, (-sp.pod.priority, sp.pod.created, seq, sp))
        while self._active:
            *_, sp = heapq.heappop(self._active)
            sp.queued = False
            if sp.state is PodState.PENDING:
                self._schedule(sp)
                self._cycle_pending = True
                self.at(self.now + self.profile.cycle_seconds, Kind.CYCLE)
                return
        self._wake_scheduler()

    def _schedule(self, sp: SimPod) -> None:
        self.stats.cycles += 1
        attempt = self.scheduler.schedule(
            sp.pod,
            self.view,
            nominated_node=sp.nominated,
            preferred=USER_PREFERRED,
        )
        if attempt.node:
            self._bind(sp, attempt.node)
            return
        sp.attempts += 1
        backoff = self.scenario.scheduler
        sp.eligible_at = self.now + min(
            backoff.max_backoff, backoff.initial_backoff * 2 ** (sp.attempts - 1)
        )
        if attempt.preempt_node:
            self._preempt(sp, attempt.preempt_node, attempt.victims)
            return
        sp.unschedulable = True
        self.flagged[sp.uid] = sp
        self._unschedulable[sp.uid] = sp
        self.autoscaler.on_unschedulable(sp)

    def _preempt(self, sp: SimPod, node: str, victims: Sequence[Pod]) -> None:
        self.stats.preemptions += 1
        self._clear_nomination(sp)
        sp.nominated = node
        sp.unschedulable = False
        self.flagged.pop(sp.uid, None)
        self.nominated.setdefault(node, []).append(sp.pod)
        for victim in victims:
            vsp = self.pods.get(victim.uid)
            if vsp is None:
                continue
            if vsp.placeholder:
                self.stats.placeholder_victims += 1
            else:
                self.stats.user_victims += 1
            self.delete_pod(vsp, evicted=True)
        self.at(self.now + self.scenario.scheduler.preemption_retry, Kind.REQUEUE, sp)

    def _on_requeue(self, obj: object) -> None:
        sp = obj if isinstance(obj, SimPod) else None
        if sp is not None and sp.state is PodState.PENDING:
            self._enqueue(sp, self.now)

    def _clear_nomination(self, sp: SimPod) -> None:
        if sp.nominated:
            lst = self.nominated.get(sp.nominated)
            if lst is not None:
                lst[:] = [p for p in lst if p.uid != sp.uid]
                if not lst:
                    del self.nominated[sp.nominated]
            sp.nominated = ""

    def _bind(self, sp: SimPod, node_name: str) -> None:
        self._clear_nomination(sp)
        sim = self.nodes[node_name]
        sim.mark(self.now)
        pod = replace(sp.pod, node_name=node_name)
        sp.pod = pod
        sp.state = PodState.BOUND
        sp.node = node_name
        sp.unschedulable = False
        self.flagged.pop(sp.uid, None)
        sp.bound_at = self.now
        self.stats.binds += 1
        if sp.placeholder:
            sim.placeholders += 1
        else:
            sim.users += 1
        self.cache.upsert_pod(pod)
        if self.ext_cache is not None:
            if self.extender is not None and self.extender.bind_assume:
                self._ext_flush()
                self.ext_cache.upsert_pod(pod)
            self._ext_push(0, pod)
        if sp.placeholder:
            sp.state = PodState.RUNNING
            return
        assert sp.user is not None
        self._placed_leave[sp.uid] = departure(sp.user, self.scenario, self.now)
        start = self.now
        for image in sp.pod.images:
            if image not in sim.node.images:
                start = max(start, self._start_pull(sim, image))
        if start > self.now:
            sp.waited_on_pull = True
        self.at(start + self.scenario.spawner.start_latency, Kind.RUNNING, sp)

    def delete_pod(self, sp: SimPod, *, evicted: bool = False) -> None:
        """Remove a pod (culled, timed out, preempted or drained)."""
        if sp.state is PodState.GONE:
            return
        was = sp.state
        sp.state = PodState.GONE
        self._clear_nomination(sp)
        self._unschedulable.pop(sp.uid, None)
        self.flagged.pop(sp.uid, None)
        if not sp.placeholder:
            self.last_user_gone = max(self.last_user_gone, self.now)
        if sp.placeholder:
            self.placeholder_pods.pop(sp.uid, None)
        elif was is PodState.RUNNING:
            self.users_running -= 1
        else:
            self.users_waiting -= 1
        if was in (PodState.BOUND, PodState.RUNNING):
            if not sp.placeholder:
                # What the extender's watch sees: a user pod on a node was deleted.
                self._lifetime_counts[lifetime_bin(EPOCH + self.now - sp.pod.created)] += 1
            sim = self.nodes.get(sp.node)
            if sim is not None:
                sim.mark(self.now)
                if sp.placeholder:
                    sim.placeholders -= 1
                else:
                    sim.users -= 1
            self.cache.delete_pod(sp.uid)
            self._ext_push(2, sp.uid)
            if sp.placeholder:
                self._account_placeholder(sp, self.now)
        del self.pods[sp.uid]
        self._placed_leave.pop(sp.uid, None)
        if sp.placeholder and evicted:
            # The StatefulSet controller recreates it.
            self.at(self.now + self.scenario.placeholders.recreate_delay, Kind.RECREATE)
        if was in (PodState.BOUND, PodState.RUNNING):
            self._move_all_to_active()
            if sp.node in self.nodes:
                self.autoscaler.on_pod_removed(self.nodes[sp.node])

    def _account_placeholder(self, sp: SimPod, until: float) -> None:
        pool = self.scenario.pool
        req = sp.pod.requests
        share = max(req.cpu / pool.cpu if pool.cpu else 0.0,
                    req.memory / pool.memory if pool.memory else 0.0, 1 / pool.pods)  # fmt: skip
        self.stats.placeholder_node_seconds += share * (until - sp.bound_at)

    # --- users -----------------------------------------------------------------------------

    def _on_arrive(self, obj: object) -> None:
        assert isinstance(obj, UserSpec)
        user = obj
        self.stats.users += 1
        self.recent_arrivals.append(self.now)
        sp = self._new_pod(user)
        self.at(self.now + self.scenario.spawner.start_timeout, Kind.TIMEOUT, sp)

    def _on_running(self, obj: object) -> None:
        sp = obj if isinstance(obj, SimPod) else None
        if sp is None or sp.state is not PodState.BOUND or sp.user is None:
            return
        sp.state = PodState.RUNNING
        self.users_waiting -= 1
        self.users_running += 1
        user = sp.user
        wait = self.now - user.arrival
        self.stats.waits.append(wait)
        if sp.waited_on_pull:
            self.stats.pull_waits += 1
        leave = departure(user, self.scenario, self.now)
        self._placed_leave[sp.uid] = leave
        self.at(leave, Kind.DEPART, sp)

    def _on_timeout(self, obj: object) -> None:
        sp = obj if isinstance(obj, SimPod) else None
        if sp is None or sp.state in (PodState.RUNNING, PodState.GONE):
            return
        self.stats.failed_spawns += 1
        self.delete_pod(sp)

    def _on_depart(self, obj: object) -> None:
        sp = obj if isinstance(obj, SimPod) else None
        if sp is not None:
            self.delete_pod(sp)

    # --- placeholders ----------------------------------------------------------------------

    def _leaves_at(self, pod: Pod) -> float:
        """The oracle's knowledge: when ``pod``'s user leaves if their server starts now."""
        sp = self.pods.get(pod.uid)
        if sp is None or sp.user is None:
            return 0.0
        return departure(sp.user, self.scenario, self.now)

    def _extension(self, busy_until: float) -> float:
        """``oracle-ages``: ``E[(T - r)+]`` over the workload's session lengths ``T``, where
        ``r`` is how much longer the node stays busy anyway."""
        spans = self._spans
        if not spans:
            return 0.0
        remaining = max(0.0, busy_until - self.now)
        i = bisect.bisect_right(spans, remaining)
        if i >= len(spans):
            return 0.0
        return (self._span_tail[i] - remaining * (len(spans) - i)) / len(spans)

    def _placeholders(self) -> list[SimPod]:
        return list(self.placeholder_pods.values())

    def _on_recreate(self, _: object) -> None:
        self._reconcile_placeholders()

    def _on_plan(self, _: object) -> None:
        horizon = arrival_horizon([self.pool_spec.count])
        while self.recent_arrivals and self.recent_arrivals[0] < self.now - horizon:
            self.recent_arrivals.popleft()
        plan = self.planner(self.observe()).get(POOL)
        if plan is not None:
            self._desired = {POOL: plan.desired}
            if plan.requests is not None:
                self.placeholder_requests = plan.requests
        self._reconcile_placeholders()
        self.at(self.now + self.scenario.placeholders.plan_interval, Kind.PLAN)

    def _images_ready(self, sim: SimNode) -> float | None:
        """When ``sim`` first held every user image (None if not yet, or not learned)."""
        if not self.scenario.placeholders.learn_pulls or not sim.ready:
            return None
        if not self._pool_images <= sim.node.images:
            return None
        done = [sim.pulls[i] for i in self._pool_images if i in sim.pulls]
        return EPOCH + max([sim.ready_at, *done])

    def observe(self) -> PlaceholderObservation:
        """What the controller would see now: the Unix times of recent user pod creations and
        the pool's nodes (creation, Ready, images present)."""
        # Nodes there before the run were provisioned at an unknown time: they report the
        # planner's own default, so they teach it nothing.
        default = self.pool_spec.count.ready_default
        nodes = tuple(
            NodeSample(
                name=n.name,
                created=n.node.created if n.ready_at or n.created else EPOCH - default,
                allocatable=n.node.allocatable,
                ready=clamp_ready(
                    n.node.created if n.ready_at or n.created else EPOCH - default,
                    EPOCH + n.ready_at if n.ready else None,
                    self.pool_spec.count,
                ),
                images_ready=self._images_ready(n),
                # The pool's allocatable already leaves out DaemonSet pods (scenario pool).
                overhead=Resources(),
            )
            for n in self.nodes.values()
            if not n.deleting
        )
        arrivals = tuple(EPOCH + t for t in self.recent_arrivals)
        observed = PoolObservation(arrivals, nodes, self.arrival_profile)
        return PlaceholderObservation(EPOCH + self.now, {POOL: observed})

    def _reconcile_placeholders(self) -> None:
        """The controller's reconcile (``core.placeholders.pool_actions``: node-sized pools
        replace stale pods one at a time) on the model: a placeholder's spec is its
        requests."""
        desired = self._desired.get(POOL, 0)
        want = repr(self.placeholder_requests)
        existing = [
            Existing(
                name=sp.uid,
                uid=sp.uid,
                created=sp.pod.created,
                node=sp.node if sp.state is not PodState.PENDING else "",
                spec_hash=repr(sp.pod.requests),
            )
            for sp in self._placeholders()
        ]
        actions = pool_actions(self.pool_spec.size, desired, want, existing)
        for uid in actions.delete:
            sp = self.pods.get(uid)
            if sp is not None:
                self.delete_pod(sp)
        for _ in range(actions.create):
            self._new_pod(None)

    # --- autoscaler and sampling hooks -----------------------------------------------------

    def _on_autoscale(self, _: object) -> None:
        self.autoscaler.loop()

    def _on_sample(self, _: object) -> None:
        ph_bound = sum(
            1 for sp in self.placeholder_pods.values() if sp.state is not PodState.PENDING
        )
        users_running, users_pending = self.users_running, self.users_waiting
        ready = sum(1 for n in self.nodes.values() if n.ready and not n.deleting)
        self.stats.samples.append(
            Sample(self.now, self.pool_size(), ready, users_running, users_pending, ph_bound)
        )
        self.at(self.now + SAMPLE_EVERY, Kind.SAMPLE)

    # --- helpers for the autoscaler --------------------------------------------------------

    def fits(self, pod: Pod, info: NodeInfo) -> bool:
        return check_node(pod, info, IN_TREE_FILTER).fits

    def info_with(self, info: NodeInfo, pod: Pod) -> NodeInfo:
        return with_pod(info, replace(pod, node_name=info.name))
