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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scheduler_extender.core.policy import (
    DELETION_CANDIDATE_TAINT,
    MAX_EXTENDER_PRIORITY,
    MIN_EXTENDER_PRIORITY,
    NODE_PURPOSE_LABEL,
    NODE_PURPOSE_USER,
    NodePurpose,
    Normalization,
    PolicyConfig,
)
from scheduler_extender.core.types import NodeInfo, Pod, Snapshot

#: Raw scores are rounded to this many decimals so equal loads always tie exactly.
_DIGITS = 9


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


def raw_score(pod: Pod, info: NodeInfo, config: PolicyConfig) -> float:
    """The unnormalized preference for putting ``pod`` on ``info``'s node (higher is better)."""
    score = pack_score(pod, info, config)
    if config.image_weight and pod.images:
        score += config.image_weight * image_fraction(pod, info)
    if (
        config.match_node_purpose is not NodePurpose.IGNORE
        and info.node.labels.get(NODE_PURPOSE_LABEL) == NODE_PURPOSE_USER
    ):
        score += config.purpose_weight
    if config.deletion_candidate_penalty and is_deletion_candidate(info):
        score -= config.deletion_candidate_penalty
    return round(score, _DIGITS)


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
    if config.prefer_older_nodes:
        keys: list[tuple[float, float]] = [(-r, c) for r, c in zip(raws, created, strict=True)]
    else:
        keys = [(-r, 0.0) for r in raws]
    # Dense rank: equal keys share a score; the best key scores MAX_EXTENDER_PRIORITY.
    distinct = sorted(set(keys))[: MAX_EXTENDER_PRIORITY - MIN_EXTENDER_PRIORITY]
    level = {key: MAX_EXTENDER_PRIORITY - i for i, key in enumerate(distinct)}
    return [level.get(key, MIN_EXTENDER_PRIORITY) for key in keys]


def score_nodes(
    pod: Pod, names: Iterable[str], snapshot: Snapshot, config: PolicyConfig
) -> ScoreOutcome:
    """Score each candidate node name for ``pod`` (input order kept)."""
    nodes = snapshot.nodes
    order: list[str] = []
    known: list[int] = []
    raws: list[float] = []
    created: list[float] = []
    unknown: list[str] = []
    for name in names:
        info = nodes.get(name)
        if info is None:
            unknown.append(name)
        else:
            known.append(len(order))
            raws.append(raw_score(pod, info, config))
            created.append(info.node.created)
        order.append(name)
    levels = normalize(raws, created, config)
    result = [MIN_EXTENDER_PRIORITY] * len(order)
    for index, level in zip(known, levels, strict=True):
        result[index] = level
    return ScoreOutcome(tuple(zip(order, result, strict=True)), tuple(unknown))
