"""A model of one kube-scheduler profile: filter, score, select, preempt, with an optional extender.

The combination rule is upstream's (pkg/scheduler/schedule_one.go, v1.36):

- filter: nodes are visited from a rotating start index and the search stops once
  ``numFeasibleNodesToFind`` nodes fit (all nodes below 100, else ``percentageOfNodesToScore``,
  adaptive ``max(5, 50 - nodes/125)`` % when unset, at least 100).  The in-tree filters are the
  core's ``check_node`` (the core checks exactly what the in-tree filters and the Cluster
  Autoscaler check), with pods nominated to the node at equal or higher priority counted in.  A
  pod with a nominated node that still fits goes there without scoring.
- one feasible node: chosen without scoring (the extender is not called).
- score: each plugin 0..100 times its weight, plus the extender's 0..10 ``score * weight * 10``
  (pkg/scheduler/extender.go, MaxNodeScore / MaxExtenderPriority); the extender's scores come from
  the core's ``score_nodes`` on the *extender's* snapshot, which may lag the scheduler's.
- select: uniformly at random among the nodes with the best total (selectHost's reservoir
  sampling), from the seeded RNG.
- preempt (DefaultPreemption, pkg/scheduler/framework/plugins/defaultpreemption and
  framework/preemption): on nodes whose failure is resolvable, remove every lower-priority pod,
  reprieve them back highest priority first while the pod still fits; the extender's ``preempt``
  verb (the core's ``choose_candidates``) may drop candidates; then pickOneNodeForPreemption's
  criteria choose one.

Policies (``POLICIES``): ``default`` is upstream's default profile
(pkg/scheduler/apis/config/v1/default_plugins.go: TaintToleration 3, NodeAffinity 2,
NodeResourcesFit 1 with LeastAllocated, NodeResourcesBalancedAllocation 1, ImageLocality 1);
``z2jh`` is the Zero to JupyterHub chart's user-scheduler (jupyterhub/values.yaml
``scheduling.userScheduler``: NodeAffinity 14631, InterPodAffinity 1331, NodeResourcesFit 121
with MostAllocated cpu 1 / memory 1, ImageLocality 11, BalancedAllocation disabled,
TaintToleration left at 3); ``extender`` is z2jh plus our extender (prioritize + preempt + bind
with assume, ``percentageOfNodesToScore: 100``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from scheduler_extender.core.drain import Drain
from scheduler_extender.core.filtering import Verdict, check_node
from scheduler_extender.core.matching import term_matches
from scheduler_extender.core.policy import NodePurpose, Normalization, PolicyConfig
from scheduler_extender.core.preemption import Candidate, choose_candidates, classify_victims
from scheduler_extender.core.scoring import score_nodes
from scheduler_extender.core.snapshot import with_pod, without_pod
from scheduler_extender.core.types import NodeInfo, Pod, SelectorTerm, Snapshot
from scheduler_extender.sim import plugins

#: Extender weight of the shipped profile (the chart's ``extender.weight``, docs/install.md).
#: One extender level (10 * weight = 14,000 points) outweighs the whole range of every in-tree
#: score below it in z2jh's profile (NodeResourcesFit 121 x 100 + ImageLocality 11 x 100 +
#: TaintToleration 3, PodTopologySpread 2 and VolumeBinding 1 at default weights x 100 =
#: 13,800), and the whole extender range (100 * weight = 140,000) stays below one preferred
#: node-affinity term (NodeAffinity 14631 x 100).  Any weight in 1,381..14,630 leads the same
#: way; the simulator finds no difference among them (benchmarks/results/policy-questions-*).
EXTENDER_WEIGHT = 1400

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100
#: PolicyConfig for the in-tree filters: node purpose is not an in-tree filter.
IN_TREE_FILTER = PolicyConfig(match_node_purpose=NodePurpose.IGNORE)


@dataclass(frozen=True, slots=True)
class ExtenderSpec:
    """Our extender as the scheduler is configured to call it."""

    weight: int = EXTENDER_WEIGHT
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    #: bindVerb configured: the extender binds and assumes the pod in its cache at once.  Off in
    #: the shipped chart (``extender.bind: false``), so off here: ``extender`` is what ships.
    bind_assume: bool = False
    #: preemptVerb configured.
    preempt: bool = True


@dataclass(frozen=True, slots=True)
class Profile:
    """A kube-scheduler profile: plugin weights and strategy, timing, optional extender."""

    name: str
    most_allocated: bool
    fit_weight: int
    fit_resource_weights: tuple[int, int] = (1, 1)
    balanced_weight: int = 0
    image_weight: int = 0
    taint_weight: int = 0
    node_affinity_weight: int = 0
    percentage_of_nodes_to_score: int = 0
    #: Seconds one scheduling cycle takes (DESIGN.md, measured on a real kube-scheduler v1.36:
    #: ~350 pods/s upstream defaults, ~490 z2jh, ~140 with an extender in the cycle).
    cycle_seconds: float = 1 / 350
    extender: ExtenderSpec | None = None
    #: A clairvoyant reference, not a deployable policy: it knows when every user will leave
    #: and dominates the other scores (see ``oracle_scores``).  It bounds what any
    #: timing-aware placement could win over plain packing.
    oracle: bool = False
    #: With ``oracle``: whether it also knows the *new* user's departure.  Off (``oracle-ages``),
    #: it knows only when the users already placed will leave, and puts the newcomer where its
    #: expected added node time over the true session-length distribution is least: more than
    #: any estimate from session ages (the drain term) can know.
    oracle_knows_new: bool = True
    #: What the drain term's lifetime estimate knows (reference variants of the same scorer):
    #: ``learned`` (what the extender sees: lifetimes of deleted pods, the prior until then),
    #: ``distribution`` (the workload's true session-length distribution from the start) or
    #: ``exact`` (also when each placed user will leave: an oracle, not deployable).
    lifetime_knowledge: str = "learned"


DEFAULT = Profile(
    "default",
    most_allocated=False,
    fit_weight=1,
    balanced_weight=1,
    image_weight=1,
    taint_weight=3,
    node_affinity_weight=2,
    cycle_seconds=1 / 350,
)
Z2JH = Profile(
    "z2jh",
    most_allocated=True,
    fit_weight=121,
    image_weight=11,
    taint_weight=3,
    node_affinity_weight=14631,
    cycle_seconds=1 / 490,
)
EXTENDER = replace(
    Z2JH,
    name="extender",
    percentage_of_nodes_to_score=100,
    cycle_seconds=1 / 140,
    extender=ExtenderSpec(),
)
ORACLE = replace(Z2JH, name="oracle", percentage_of_nodes_to_score=100, oracle=True)
#: The extender with the drain term on (``core.drain``), oldest session only: the variant and
#: weight chosen on tuning seeds 101-105 of anchor-day (benchmarks/README.md), not the
#: reported seeds.
DRAIN_POLICY = PolicyConfig(drain_weight=0.3, drain_cohorts=False)
#: The drain term from every session's age (``drain_all_sessions``), weight 10 (cost first, load
#: second; chosen on tuning seeds 101-105 of anchor-day), and its reference variants.
SURVIVAL_POLICY = PolicyConfig(drain_weight=10.0, drain_all_sessions=True)
POLICIES: dict[str, Profile] = {
    "default": DEFAULT,
    "z2jh": Z2JH,
    "extender": EXTENDER,
    "extender-bind": replace(
        EXTENDER, name="extender-bind", extender=ExtenderSpec(bind_assume=True)
    ),
    "oracle": ORACLE,
    "oracle-ages": replace(ORACLE, name="oracle-ages", oracle_knows_new=False),
    "extender-survival": replace(
        EXTENDER, name="extender-survival", extender=ExtenderSpec(policy=SURVIVAL_POLICY)
    ),
    "survival-distribution": replace(
        EXTENDER,
        name="survival-distribution",
        extender=ExtenderSpec(policy=SURVIVAL_POLICY),
        lifetime_knowledge="distribution",
    ),
    "survival-exact": replace(
        EXTENDER,
        name="survival-exact",
        extender=ExtenderSpec(policy=SURVIVAL_POLICY),
        lifetime_knowledge="exact",
    ),
    "extender-drain": replace(
        EXTENDER, name="extender-drain", extender=ExtenderSpec(policy=DRAIN_POLICY)
    ),
}


class PolicyError(ValueError):
    pass


def _coerce(value: str, like: object, key: str) -> Any:
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise PolicyError(f"{key}: expected true or false, got {value!r}")
    try:
        if isinstance(like, NodePurpose):
            return NodePurpose(value)
        if isinstance(like, Normalization):
            return Normalization(value)
        if isinstance(like, int):
            return int(value)
        if isinstance(like, float):
            return float(value)
    except ValueError:
        raise PolicyError(f"{key}: invalid value {value!r}") from None
    return value


_PROFILE_KEYS = {
    "weight": "extender weight",
    "assume": "bind through the extender and assume",
    "preempt": "use the extender's preempt verb",
    "cycle_ms": "milliseconds per scheduling cycle",
    "percentage": "percentageOfNodesToScore",
}


def parse_policy(text: str) -> Profile:
    """A policy by name, optionally with overrides: ``extender[weight=5,normalization=linear]``.

    Keys are PolicyConfig fields (the extender's tunables) or ``weight``, ``assume``,
    ``preempt``, ``cycle_ms``, ``percentage``.  The profile's name is ``text`` itself, so
    variants stay apart in reports.
    """
    text = text.strip()
    name, _, rest = text.partition("[")
    profile = POLICIES.get(name)
    if profile is None:
        raise PolicyError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    if not rest:
        return profile
    if not rest.endswith("]"):
        raise PolicyError(f"{text!r}: expected name[key=value,...]")
    ext = profile.extender
    policy_values: dict[str, Any] = {}
    ext_values: dict[str, Any] = {}
    prof_values: dict[str, Any] = {"name": text}
    policy_fields = {f.name for f in fields(PolicyConfig)}
    for item in filter(None, (p.strip() for p in rest[:-1].split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise PolicyError(f"{text!r}: {item!r} is not key=value")
        if key in ("cycle_ms", "percentage"):
            number = _coerce(value, 0.0, key)
            if key == "cycle_ms":
                if number <= 0:
                    raise PolicyError("cycle_ms: must be > 0")
                prof_values["cycle_seconds"] = number / 1000
            else:
                prof_values["percentage_of_nodes_to_score"] = int(number)
            continue
        if ext is None:
            raise PolicyError(f"{text!r}: {key!r} needs a policy with the extender")
        if key in policy_fields:
            policy_values[key] = _coerce(value, getattr(ext.policy, key), key)
        elif key == "weight":
            ext_values["weight"] = _coerce(value, 0, key)
            if ext_values["weight"] <= 0:
                raise PolicyError("weight: must be > 0 (kube-scheduler rejects 0)")
        elif key == "assume":
            ext_values["bind_assume"] = _coerce(value, False, key)
        elif key == "preempt":
            ext_values["preempt"] = _coerce(value, True, key)
        else:
            known = sorted(policy_fields | set(_PROFILE_KEYS))
            raise PolicyError(f"{text!r}: unknown key {key!r}; known: {', '.join(known)}")
    if ext is not None:
        ext = replace(ext, policy=replace(ext.policy, **policy_values), **ext_values)
    return replace(profile, extender=ext, **prof_values)


def num_feasible_nodes_to_find(percentage: int, total: int) -> int:
    """schedule_one.go numFeasibleNodesToFind."""
    if total < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = max(50 - total // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(total * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass(slots=True)
class Attempt:
    """The outcome of one scheduling cycle."""

    node: str = ""
    preempt_node: str = ""
    victims: tuple[Pod, ...] = ()
    reason: str = ""
    feasible: int = 0


@dataclass(slots=True)
class PrioritizeCall:
    """One extender prioritize call, for the parity test: the pod, the node names sent, the
    extender's snapshot at that moment, and the scores the simulator used."""

    pod: Pod
    names: tuple[str, ...]
    snapshot: Snapshot
    scores: tuple[tuple[str, int], ...]
    #: The clock and lifetime estimate the drain term used (None when it is off).
    drain: Drain | None = None


@dataclass(slots=True)
class PreemptCall:
    """One extender preempt call, for the parity test: the candidates sent and the nodes the
    extender kept."""

    pod: Pod
    candidates: tuple[Candidate, ...]
    snapshot: Snapshot
    kept: tuple[str, ...]


def freeze(snapshot: Snapshot) -> Snapshot:
    """A detached copy of a (possibly live) snapshot; ``NodeInfo`` values are immutable."""
    return Snapshot(
        MappingProxyType(dict(snapshot.nodes)), MappingProxyType(dict(snapshot.pod_nodes))
    )


@dataclass(slots=True)
class ClusterView:
    """What one scheduling cycle reads (the engine owns and updates it)."""

    cache: Snapshot
    order: Sequence[str]
    nominated: Mapping[str, Sequence[Pod]]
    image_counts: Mapping[str, int]
    extender_view: Callable[[], Snapshot] | None = None
    #: For the oracle reference only: when the pod being placed will leave if it starts now,
    #: and when each placed pod (by uid) will leave.
    leaves_at: Callable[[Pod], float] | None = None
    placed_leave: Mapping[str, float] = field(default_factory=dict)
    #: For ``oracle-ages``: the expected node time a new user adds to a node busy until the given
    #: time, over the workload's true session lengths (the newcomer's own is not known).
    extension: Callable[[float], float] | None = None
    nonzero: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: Bumped by the engine whenever nodes or their images change (ImageLocality's inputs).
    image_epoch: int = 0
    image_sizes: Mapping[str, int] = field(default_factory=dict)
    default_image_size: int = 3 * 1024**3
    #: The extender's clock and learned lifetime estimate, for the drain term.
    drain: Callable[[], Drain | None] | None = None


def pod_key(pod: Pod) -> tuple[object, ...]:
    """Everything of a pod the in-tree filters read (``check_node``): pods with equal keys get
    equal verdicts on the same ``NodeInfo``."""
    req = pod.requests
    return (
        req.cpu,
        req.memory,
        req.pods,
        tuple(sorted(req.scalar.items())),
        pod.tolerations,
        tuple(sorted(pod.node_selector.items())),
        pod.required_terms,
    )


class KubeScheduler:
    """One profile's scheduling cycle over a ``ClusterView``."""

    def __init__(
        self,
        profile: Profile,
        rng: random.Random,
        on_prioritize: Callable[[PrioritizeCall], None] | None = None,
        on_preempt: Callable[[PreemptCall], None] | None = None,
    ) -> None:
        self.profile = profile
        self.rng = rng
        self.next_start = 0
        # Memos of pure functions of immutable values: a NodeInfo is replaced, never changed,
        # so an entry is reused only while its node's NodeInfo is the very same object (and,
        # for scores, while ImageLocality's inputs are unchanged).  Every value in them was
        # computed by check_node and the plugin functions; nothing is approximated.
        self._verdicts: dict[tuple[object, ...], dict[str, tuple[NodeInfo, Verdict]]] = {}
        self._scores: dict[tuple[object, ...], dict[str, tuple[NodeInfo, int, int, int, int]]] = {}
        self.on_prioritize = on_prioritize
        self.on_preempt = on_preempt

    # --- filter ----------------------------------------------------------------------------

    @staticmethod
    def _with_nominated(pod: Pod, info: NodeInfo, nominated: Sequence[Pod]) -> NodeInfo:
        for other in nominated:
            if other.uid != pod.uid and other.priority >= pod.priority:
                info = with_pod(info, other)
        return info

    def check(self, pod: Pod, info: NodeInfo, view: ClusterView) -> Verdict:
        """The in-tree filters for ``pod`` on ``info`` with nominated pods counted in."""
        nominated = view.nominated.get(info.name)
        if nominated:
            info = self._with_nominated(pod, info, nominated)
        return check_node(pod, info, IN_TREE_FILTER)

    def find_feasible(
        self, pod: Pod, view: ClusterView
    ) -> tuple[list[NodeInfo], dict[str, Verdict]]:
        """Visit nodes from the rotating start until enough fit (numFeasibleNodesToFind)."""
        order = view.order
        total = len(order)
        want = num_feasible_nodes_to_find(self.profile.percentage_of_nodes_to_score, total)
        nodes = view.cache.nodes
        nominated = view.nominated
        feasible: list[NodeInfo] = []
        failed: dict[str, Verdict] = {}
        start = self.next_start % total if total else 0
        names = [*order[start:], *order[:start]] if start else order
        memo = self._verdicts.setdefault(pod_key(pod), {})
        memo_get = memo.get
        processed = 0
        for name in names:
            info = nodes[name]
            processed += 1
            hit = memo_get(name)
            if hit is not None and hit[0] is info and name not in nominated:
                verdict = hit[1]
            elif name in nominated:
                verdict = self.check(pod, info, view)
            else:
                verdict = check_node(pod, info, IN_TREE_FILTER)
                memo[name] = (info, verdict)
            if verdict.fits:
                feasible.append(info)
                if len(feasible) >= want:
                    break
            else:
                failed[name] = verdict
        if total:
            self.next_start = (start + processed) % total
        return feasible, failed

    # --- score -----------------------------------------------------------------------------

    def totals(
        self,
        pod: Pod,
        infos: Sequence[NodeInfo],
        view: ClusterView,
        preferred: Sequence[tuple[int, SelectorTerm]],
    ) -> list[int]:
        """Each feasible node's total score: plugins x weights, plus the extender's."""
        prof = self.profile
        epoch = view.image_epoch
        memo = self._scores.setdefault((pod_key(pod), pod.images, tuple(preferred)), {})
        memo_get = memo.get
        totals: list[int] = []
        affinity: list[int] = []
        taints: list[int] = []
        names: list[str] = []
        for info in infos:
            name = info.node.name
            names.append(name)
            hit = memo_get(name)
            if hit is None or hit[0] is not info or hit[1] != epoch:
                hit = (info, epoch, *self._node_scores(pod, info, view, preferred))
                memo[name] = hit
            totals.append(hit[2])
            affinity.append(hit[3])
            taints.append(hit[4])
        if prof.taint_weight:
            w = prof.taint_weight
            for i, score in enumerate(plugins.default_normalize(taints, reverse=True)):
                totals[i] += w * score
        if prof.node_affinity_weight and preferred:
            w = prof.node_affinity_weight
            for i, score in enumerate(plugins.default_normalize(affinity, reverse=False)):
                totals[i] += w * score
        if prof.oracle and view.leaves_at is not None:
            scale = 100 * 100_000  # above every plugin's full range
            for i, score in enumerate(oracle_scores(pod, infos, view)):
                totals[i] += score * scale
        ext = prof.extender
        if ext is not None and view.extender_view is not None:
            snapshot = view.extender_view()
            drain = view.drain() if view.drain is not None and ext.policy.drain_weight else None
            outcome = score_nodes(pod, names, snapshot, ext.policy, drain)
            scale = ext.weight * (plugins.MAX_NODE_SCORE // 10)
            for i, (_, score) in enumerate(outcome.scores):
                totals[i] += score * scale
            if self.on_prioritize is not None:
                self.on_prioritize(
                    PrioritizeCall(pod, tuple(names), freeze(snapshot), outcome.scores, drain)
                )
        return totals

    def _node_scores(
        self,
        pod: Pod,
        info: NodeInfo,
        view: ClusterView,
        preferred: Sequence[tuple[int, SelectorTerm]],
    ) -> tuple[int, int, int]:
        """The weighted sum of the per-node plugins (Fit, BalancedAllocation, ImageLocality),
        and NodeAffinity's and TaintToleration's raw scores (normalized over the candidates)."""
        prof = self.profile
        total = 0
        if prof.fit_weight:
            total += prof.fit_weight * plugins.fit_score(
                pod,
                info,
                prof.most_allocated,
                prof.fit_resource_weights,
                view.nonzero.get(info.name, (0, 0)),
            )
        if prof.balanced_weight and not plugins.best_effort(pod):
            total += prof.balanced_weight * plugins.balanced_score(pod, info)
        if prof.image_weight and pod.images:
            total += prof.image_weight * plugins.image_locality_score(
                pod,
                info,
                sizes=view.image_sizes,
                counts=view.image_counts,
                total_nodes=len(view.cache.nodes),
                default_size=view.default_image_size,
            )
        affinity = 0
        if prof.node_affinity_weight and preferred:
            affinity = sum(w for w, term in preferred if term_matches(term, info.node))
        taints = plugins.untolerated_prefer_no_schedule(pod, info) if prof.taint_weight else 0
        return total, affinity, taints

    def select(self, totals: Sequence[int]) -> int:
        best = max(totals)
        ties = [i for i, t in enumerate(totals) if t == best]
        return ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]

    # --- the cycle -------------------------------------------------------------------------

    def schedule(
        self,
        pod: Pod,
        view: ClusterView,
        *,
        nominated_node: str = "",
        preferred: Sequence[tuple[int, SelectorTerm]] = (),
    ) -> Attempt:
        """One scheduling cycle for ``pod``: the node to bind to, a preemption to perform, or
        the reason it fits nowhere."""
        if nominated_node:
            info = view.cache.nodes.get(nominated_node)
            if info is not None and self.check(pod, info, view).fits:
                return Attempt(node=nominated_node, feasible=1)
        feasible, failed = self.find_feasible(pod, view)
        if not feasible:
            attempt = Attempt(reason=_summary(failed))
            if pod.priority > _LOWEST_PRIORITY:
                chosen = self.preempt(pod, view, failed)
                if chosen is not None:
                    attempt.preempt_node, attempt.victims = chosen
            return attempt
        if len(feasible) == 1:
            return Attempt(node=feasible[0].name, feasible=1)
        totals = self.totals(pod, feasible, view, preferred)
        return Attempt(node=feasible[self.select(totals)].name, feasible=len(feasible))

    # --- preemption ------------------------------------------------------------------------

    def _victims(self, pod: Pod, info: NodeInfo, view: ClusterView) -> tuple[Pod, ...] | None:
        lower = [p for p in info.pods.values() if p.priority < pod.priority]
        if not lower:
            return None
        trimmed = info
        for p in lower:
            trimmed = without_pod(trimmed, p.uid)
        if not self.check(pod, trimmed, view).fits:
            return None
        # Reprieve the most important first (util.MoreImportantPod: priority, then older).
        lower.sort(key=lambda p: (-p.priority, p.created))
        victims = []
        for p in lower:
            trial = with_pod(trimmed, p)
            if self.check(pod, trial, view).fits:
                trimmed = trial
            else:
                victims.append(p)
        return tuple(victims)

    def preempt(
        self, pod: Pod, view: ClusterView, failed: Mapping[str, Verdict]
    ) -> tuple[str, tuple[Pod, ...]] | None:
        potential = [name for name, v in failed.items() if not v.unresolvable]
        if not potential:
            return None
        total = len(potential)
        want = min(
            total, max(total * MIN_CANDIDATE_NODES_PERCENTAGE // 100, MIN_CANDIDATE_NODES_ABSOLUTE)
        )
        offset = self.rng.randrange(total)
        found: dict[str, tuple[Pod, ...]] = {}
        order: list[str] = []
        for k in range(total):
            name = potential[(offset + k) % total]
            victims = self._victims(pod, view.cache.nodes[name], view)
            if victims:
                found[name] = victims
                order.append(name)
                if len(found) >= want:
                    break
        if not found:
            return None
        ext = self.profile.extender
        if ext is not None and ext.preempt and view.extender_view is not None:
            snapshot = view.extender_view()
            candidates = [
                Candidate(
                    name,
                    tuple(v.uid for v in found[name]),
                    classify_victims(tuple(v.uid for v in found[name]), snapshot),
                )
                for name in order
            ]
            kept = choose_candidates(pod, candidates, snapshot, ext.policy)
            if self.on_preempt is not None:
                self.on_preempt(PreemptCall(pod, tuple(candidates), freeze(snapshot), kept))
            keep = set(kept)
            order = [name for name in order if name in keep]
            if not order:
                return None
        best = min(order, key=lambda name: _preemption_key(found[name], order.index(name)))
        return best, found[best]


def oracle_scores(pod: Pod, infos: Sequence[NodeInfo], view: ClusterView) -> list[int]:
    """Clairvoyant placement: prefer a node that stays busy until this user leaves anyway (the
    user then adds no node time), the fullest of those; otherwise the node whose busy time the
    user extends least.  Returns 0..10 levels by rank, like the extender."""
    assert view.leaves_at is not None
    mine = view.leaves_at(pod)
    keys: list[tuple[float, float]] = []
    for info in infos:
        ends = [
            view.placed_leave.get(uid, 0.0) for uid, p in info.pods.items() if not p.placeholder
        ]
        busy_until = max(ends, default=0.0)
        load = (
            info.requested.memory / info.node.allocatable.memory
            if info.node.allocatable.memory
            else 0
        )
        if view.extension is not None:
            # Exact knowledge of the placed users, the newcomer's length unknown: the least
            # expected added node time (whole seconds), then the fullest node.
            keys.append((round(view.extension(busy_until)), -load))
        elif busy_until >= mine:
            keys.append((0, -load))
        else:
            keys.append((1, mine - busy_until))
    ranked = sorted(set(keys))[:10]
    level = {key: 10 - n for n, key in enumerate(ranked)}
    return [level.get(key, 0) for key in keys]


_LOWEST_PRIORITY = -(2**31)


def _preemption_key(victims: Sequence[Pod], position: int) -> tuple[int, int, int, float, int]:
    """pickOneNodeForPreemption's criteria, smallest first: highest victim priority, sum of
    (priority + 2^31), number of victims, latest start among the most important victims, then
    the first candidate.  (No PodDisruptionBudgets are simulated.)"""
    highest = max(v.priority for v in victims)
    total = sum(v.priority + 2**31 for v in victims)
    earliest = min(v.created for v in victims if v.priority == highest)
    return (highest, total, len(victims), -earliest, position)


def _summary(failed: Mapping[str, Verdict]) -> str:
    counts: dict[str, int] = {}
    for verdict in failed.values():
        counts[verdict.reason] = counts.get(verdict.reason, 0) + 1
    parts = [f"{n} {reason}" for reason, n in sorted(counts.items())]
    return f"0/{len(failed)} nodes are available: " + ", ".join(parts) if parts else "no nodes"
