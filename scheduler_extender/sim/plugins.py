"""kube-scheduler's in-tree score plugins, as a model of the scheduler (not of our policy).

These are upstream's formulas, in upstream's integer arithmetic, so the ``default`` and ``z2jh``
policies are faithful baselines.  Each plugin scores the feasible nodes 0..100
(``framework.MaxNodeScore``); ``scheduler`` multiplies by the plugin's weight and adds them up.

refs (kubernetes/kubernetes, pkg/scheduler/framework/plugins/):
- noderesources/most_allocated.go, least_allocated.go: per resource ``requested * 100 /
  allocatable`` (or ``(allocatable - requested) * 100 / allocatable``), weighted integer mean;
  resources with zero allocatable are skipped.
- noderesources/resource_allocation.go: NodeResourcesFit scores the node's *non-zero* requests
  (a container without a cpu or memory request counts as 100m / 200Mi, pkg/scheduler/util
  DefaultMilliCPURequest and DefaultMemoryRequest) plus the pod's; BalancedAllocation uses the
  real requests (``useRequested``).
- noderesources/balanced_allocation.go: ``int((1 - std) * 100)`` with ``std = |f_cpu - f_mem| / 2``
  for two resources; skipped (PreScore Skip) for best-effort pods.
- imagelocality/image_locality.go: sum over the pod's containers of ``size * nodes_with_image /
  all_nodes`` for images on the node, clamped to [23 MB, 1000 MB x containers], scaled to 0..100.
- tainttoleration/taint_toleration.go: count of untolerated PreferNoSchedule taints, normalized
  with DefaultNormalizeScore reversed (helper/normalize_score.go).
- nodeaffinity/node_affinity.go: sum of the weights of matching preferred terms, normalized with
  DefaultNormalizeScore.
InterPodAffinity and PodTopologySpread are not modelled: user pods carry no pod (anti-)affinity
and belong to no Service/ReplicaSet, so both score every node alike for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scheduler_extender.core.matching import term_matches
from scheduler_extender.core.types import NodeInfo, Pod, SelectorTerm, Snapshot, Toleration

MAX_NODE_SCORE = 100
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
MB = 1024 * 1024
MIN_IMAGE_THRESHOLD = 23 * MB
MAX_CONTAINER_IMAGE_THRESHOLD = 1000 * MB


def nonzero(cpu: int, memory: int) -> tuple[int, int]:
    """A container's requests as the scoring plugins see them (pkg/scheduler/util
    GetNonzeroRequests)."""
    return (cpu or DEFAULT_MILLI_CPU_REQUEST, memory or DEFAULT_MEMORY_REQUEST)


def _most_requested(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    requested = min(requested, capacity)
    return requested * MAX_NODE_SCORE // capacity


def _least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def fit_score(
    pod: Pod,
    info: NodeInfo,
    most_allocated: bool,
    weights: tuple[int, int],
    node_nonzero: tuple[int, int],
) -> int:
    """NodeResourcesFit's score with the MostAllocated or LeastAllocated strategy over cpu and
    memory with ``weights``; ``node_nonzero`` is the node's NonZeroRequested (cpu, memory)."""
    node_cpu, node_mem = node_nonzero
    pod_cpu, pod_mem = nonzero(pod.requests.cpu, pod.requests.memory)
    alloc = info.node.allocatable
    scorer = _most_requested if most_allocated else _least_requested
    total = weight_sum = 0
    for requested, capacity, weight in (
        (node_cpu + pod_cpu, alloc.cpu, weights[0]),
        (node_mem + pod_mem, alloc.memory, weights[1]),
    ):
        if capacity == 0:
            continue
        total += scorer(requested, capacity) * weight
        weight_sum += weight
    return total // weight_sum if weight_sum else 0


def best_effort(pod: Pod) -> bool:
    return pod.requests.cpu == 0 and pod.requests.memory == 0


def balanced_score(pod: Pod, info: NodeInfo) -> int:
    """NodeResourcesBalancedAllocation over cpu and memory (real requests)."""
    alloc = info.node.allocatable
    fractions = []
    for requested, capacity in (
        (info.requested.cpu + pod.requests.cpu, alloc.cpu),
        (info.requested.memory + pod.requests.memory, alloc.memory),
    ):
        if capacity == 0:
            continue
        fractions.append(min(1.0, requested / capacity))
    std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def image_counts(snapshot: Snapshot) -> dict[str, int]:
    """How many nodes hold each image (ImageStateSummary.NumNodes)."""
    counts: dict[str, int] = {}
    for info in snapshot.nodes.values():
        for image in info.node.images:
            counts[image] = counts.get(image, 0) + 1
    return counts


def image_locality_score(
    pod: Pod,
    info: NodeInfo,
    *,
    sizes: Mapping[str, int],
    counts: Mapping[str, int],
    total_nodes: int,
    default_size: int,
) -> int:
    present = info.node.images
    total = 0
    for image in pod.images:
        if image in present:
            spread = counts.get(image, 0) / total_nodes if total_nodes else 0.0
            total += int(sizes.get(image, default_size) * spread)
    containers = max(1, len(pod.images))
    high = MAX_CONTAINER_IMAGE_THRESHOLD * containers
    total = min(max(total, MIN_IMAGE_THRESHOLD), high)
    return MAX_NODE_SCORE * (total - MIN_IMAGE_THRESHOLD) // (high - MIN_IMAGE_THRESHOLD)


def default_normalize(scores: list[int], reverse: bool) -> list[int]:
    """helper.DefaultNormalizeScore with MaxNodeScore."""
    high = max(scores, default=0)
    if high == 0:
        return [MAX_NODE_SCORE] * len(scores) if reverse else scores
    out = []
    for score in scores:
        scaled = MAX_NODE_SCORE * score // high
        out.append(MAX_NODE_SCORE - scaled if reverse else scaled)
    return out


def _tolerates_prefer(tolerations: Sequence[Toleration], key: str, value: str) -> bool:
    for t in tolerations:
        if t.effect not in ("", "PreferNoSchedule"):
            continue
        if t.key and t.key != key:
            continue
        if t.operator == "Exists" or (t.operator in ("", "Equal") and t.value == value):
            return True
    return False


def untolerated_prefer_no_schedule(pod: Pod, info: NodeInfo) -> int:
    """TaintToleration's raw score: the node's PreferNoSchedule taints the pod does not
    tolerate (normalized, reversed, over the candidates)."""
    count = 0
    for taint in info.node.taints:
        if taint.effect == "PreferNoSchedule" and not _tolerates_prefer(
            pod.tolerations, taint.key, taint.value
        ):
            count += 1
    return count


def taint_toleration_scores(pod: Pod, infos: Sequence[NodeInfo]) -> list[int]:
    raw = [untolerated_prefer_no_schedule(pod, info) for info in infos]
    return default_normalize(raw, reverse=True)


def node_affinity_scores(
    preferred: Sequence[tuple[int, SelectorTerm]], infos: Sequence[NodeInfo]
) -> list[int]:
    if not preferred:
        return [0] * len(infos)
    raw = [
        sum(weight for weight, term in preferred if term_matches(term, info.node)) for info in infos
    ]
    return default_normalize(raw, reverse=False)
