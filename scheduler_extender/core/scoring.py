"""How a node is scored for a pod: pack users onto the busiest nodes so the emptiest ones drain.

Two steps, kept apart so each can be tested and measured on its own:

1. ``raw_score``: a float per node.  Its main term is MostAllocated over the node's *user load*
   (every pod's requests, placeholders excluded unless configured) plus the pod, per resource
   clamped to 1 and weighted (cpu and memory by default), in 0..1.  On top: a bonus for the share
   of the pod's images already on the node (no pull wait), a bonus for nodes labelled for users
   when ``matchNodePurpose`` is ``prefer`` or ``require``, and a penalty for nodes the Cluster
   Autoscaler has marked ``DeletionCandidateOfClusterAutoscaler`` (so they are used only when
   nothing else fits and can be removed).
2. ``normalize``: kube-scheduler accepts integers 0..10 only.  With ``rank`` normalization the
   candidates are ordered exactly (raw score, then older node first when ``prefer_older_nodes``)
   and the best gets 10, the next 9, ...; in-tree MostAllocated's integer percentages tie far too
   often on big nodes, and 11 linear levels over many nodes tie even more.

Unknown nodes get ``MIN_EXTENDER_PRIORITY``: extender scores are only ever added to the in-tree
plugin scores, so 0 leaves the decision among them to the in-tree plugins.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scheduler_extender.core.drain import EMPTY_COST, Drain, all_sessions_cost
from scheduler_extender.core.policy import (
    DELETION_CANDIDATE_TAINT,
    MAX_EXTENDER_PRIORITY,
    MIN_EXTENDER_PRIORITY,
    NodePurpose,
    Normalization,
    PolicyConfig,
)
from scheduler_extender.core.types import NodeInfo, Pod, Snapshot


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    """Scores in input order (unknown nodes included with a neutral score)."""

    scores: tuple[tuple[str, int], ...]
    unknown: tuple[str, ...]


def utilization(used: int, capacity: int) -> float:
    """``used / capacity`` clamped to 0..1; a resource the node lacks counts as 0 (as in
    kube-scheduler's mostRequestedScore)."""
    if capacity <= 0:
        return 0.0
    if used >= capacity:
        return 1.0
    return used / capacity if used > 0 else 0.0


def pack_score(pod: Pod, info: NodeInfo, config: PolicyConfig) -> float:
    """Weighted MostAllocated over user load plus the pod, in 0..1."""
    requested = info.requested
    cpu = requested.cpu + pod.requests.cpu
    memory = requested.memory + pod.requests.memory
    if not config.placeholders_as_load:
        cpu -= info.placeholder_requested.cpu
        memory -= info.placeholder_requested.memory
    alloc = info.node.allocatable
    total = config.cpu_weight + config.memory_weight
    if total <= 0:
        return 0.0
    return (
        config.cpu_weight * utilization(cpu, alloc.cpu)
        + config.memory_weight * utilization(memory, alloc.memory)
    ) / total


def image_fraction(pod: Pod, info: NodeInfo) -> float:
    """Share of the pod's images already present on the node (0 when the pod names none)."""
    if not pod.images:
        return 0.0
    present = info.node.images
    return sum(1 for image in pod.images if image in present) / len(pod.images)


def is_deletion_candidate(info: NodeInfo) -> bool:
    return any(t.key == DELETION_CANDIDATE_TAINT for t in info.node.taints)


def _no_cost(_: float) -> float:
    return 0.0


def raw_score(pod: Pod, info: NodeInfo, config: PolicyConfig, drain: Drain | None = None) -> float:
    """The unnormalized preference for putting ``pod`` on ``info``'s node (higher is better)."""
    return raw_scores(pod, (info,), config, drain)[0]


def raw_scores(
    pod: Pod, infos: Iterable[NodeInfo], config: PolicyConfig, drain: Drain | None = None
) -> list[float]:
    """``raw_score`` for many nodes at once.

    This is the service's hot path (every candidate node of every pod), so it is one flat loop
    over each node's precomputed ``NodeTerms`` with everything pod- and config-derived hoisted out;
    ``pack_score``, ``image_fraction`` and ``is_deletion_candidate`` state the same terms readably,
    and the tests hold them equal.
    """
    total = config.cpu_weight + config.memory_weight
    cpu_share = config.cpu_weight / total if total > 0 else 0.0
    memory_share = config.memory_weight / total if total > 0 else 0.0
    as_load = config.placeholders_as_load
    purpose_weight = (
        config.purpose_weight if config.match_node_purpose is not NodePurpose.IGNORE else 0.0
    )
    penalty = config.deletion_candidate_penalty
    pod_cpu = pod.requests.cpu
    pod_memory = pod.requests.memory
    images = pod.images if config.image_weight else ()
    image_weight = config.image_weight
    single = images[0] if len(images) == 1 else None
    image_share = image_weight / len(images) if images else 0.0
    # The drain term (core.drain.drain_cost, inlined): only for user pods, with a model.
    drain_weight = config.drain_weight if drain is not None and not pod.placeholder else 0.0
    empty_drain = drain_weight * EMPTY_COST
    cost = drain.model.cost if drain is not None else _no_cost
    now = drain.now if drain is not None else 0.0
    cohorts = config.drain_cohorts
    all_sessions = config.drain_all_sessions
    out: list[float] = []
    append = out.append
    for info in infos:
        (
            requested_cpu,
            requested_memory,
            user_cpu,
            user_memory,
            capacity_cpu,
            capacity_memory,
            user_purpose,
            deletion_candidate,
            present,
            oldest_user,
            youngest_user,
        ) = info.terms
        if as_load:
            cpu = requested_cpu + pod_cpu
            memory = requested_memory + pod_memory
        else:
            cpu = user_cpu + pod_cpu
            memory = user_memory + pod_memory
        if capacity_cpu <= 0 or cpu <= 0:
            cpu_use = 0.0
        else:
            cpu_use = 1.0 if cpu >= capacity_cpu else cpu / capacity_cpu
        if capacity_memory <= 0 or memory <= 0:
            memory_use = 0.0
        else:
            memory_use = 1.0 if memory >= capacity_memory else memory / capacity_memory
        score = cpu_share * cpu_use + memory_share * memory_use
        if single is not None:
            if single in present:
                score += image_weight
        elif images:
            hits = 0
            for image in images:
                if image in present:
                    hits += 1
            score += image_share * hits
        if user_purpose:
            score += purpose_weight
        if deletion_candidate:
            score -= penalty
        if drain_weight:
            if oldest_user == math.inf:
                score -= empty_drain
            elif all_sessions:
                score -= drain_weight * all_sessions_cost(info, drain)  # type: ignore[arg-type]
            elif cohorts:
                score -= drain_weight * min(cost(now - oldest_user), cost(now - youngest_user))
            else:
                score -= drain_weight * cost(now - oldest_user)
        append(score)
    return out


def normalize(raws: Sequence[float], created: Sequence[float], config: PolicyConfig) -> list[int]:
    """Map raw scores (with each node's creation time, for the tie-break) to 0..10 integers."""
    count = len(raws)
    if count == 0:
        return []
    if config.normalization is Normalization.LINEAR:
        low, high = min(raws), max(raws)
        if high == low:
            return [MAX_EXTENDER_PRIORITY] * count
        span = high - low
        return [round(MAX_EXTENDER_PRIORITY * (r - low) / span) for r in raws]
    levels = MAX_EXTENDER_PRIORITY - MIN_EXTENDER_PRIORITY
    # Only nodes whose raw score is among the ten best distinct values can score above the
    # minimum, so rank just those (usually a handful) instead of sorting every candidate.
    threshold = heapq.nlargest(levels, set(raws))[-1]
    top = [i for i, r in enumerate(raws) if r >= threshold]
    if config.prefer_older_nodes:
        keys = {i: (-raws[i], created[i]) for i in top}
    else:
        keys = {i: (-raws[i], 0.0) for i in top}
    # Dense rank: equal keys share a level; the best key scores MAX_EXTENDER_PRIORITY.
    ranked = sorted(set(keys.values()))[:levels]
    level = {key: MAX_EXTENDER_PRIORITY - n for n, key in enumerate(ranked)}
    result = [MIN_EXTENDER_PRIORITY] * count
    for i, key in keys.items():
        result[i] = level.get(key, MIN_EXTENDER_PRIORITY)
    return result


def score_nodes(
    pod: Pod,
    names: Iterable[str],
    snapshot: Snapshot,
    config: PolicyConfig,
    drain: Drain | None = None,
) -> ScoreOutcome:
    """Score each candidate node name for ``pod`` (input order kept); ``drain`` (the clock and
    the lifetime estimate) enables the drain term when ``config.drain_weight`` > 0."""
    nodes = snapshot.nodes
    order = list(names)
    known: list[int] = []
    infos: list[NodeInfo] = []
    unknown: list[str] = []
    for index, name in enumerate(order):
        info = nodes.get(name)
        if info is None:
            unknown.append(name)
        else:
            known.append(index)
            infos.append(info)
    raws = raw_scores(pod, infos, config, drain)
    levels = normalize(raws, [info.node.created for info in infos], config)
    if not unknown:
        return ScoreOutcome(tuple(zip(order, levels, strict=True)), ())
    result = [MIN_EXTENDER_PRIORITY] * len(order)
    for index, level in zip(known, levels, strict=True):
        result[index] = level
    return ScoreOutcome(tuple(zip(order, result, strict=True)), tuple(unknown))
