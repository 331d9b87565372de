"""The policy's tunables as one plain, immutable value.

The service builds it from its settings, the simulator from a scenario; both hand the same value
to the same core functions.  Defaults here are the shipped defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Label and value that mark a node as meant for user pods (z2jh convention).
NODE_PURPOSE_LABEL = "hub.jupyter.org/node-purpose"
NODE_PURPOSE_USER = "user"
#: Taint the Cluster Autoscaler puts on a node it is about to delete (NoSchedule).
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
#: Taint the Cluster Autoscaler puts on nodes it considers removing soon (PreferNoSchedule).
DELETION_CANDIDATE_TAINT = "DeletionCandidateOfClusterAutoscaler"
#: The taint kube-scheduler's NodeUnschedulable filter lets tolerating pods ignore.
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

#: kube-scheduler's extender score range (ref: kube-scheduler/extender/v1 MaxExtenderPriority).
MAX_EXTENDER_PRIORITY = 10
MIN_EXTENDER_PRIORITY = 0


class NodePurpose(StrEnum):
    """z2jh's ``scheduling.userPods.nodeAffinity.matchNodePurpose``."""

    IGNORE = "ignore"
    PREFER = "prefer"
    REQUIRE = "require"


class Normalization(StrEnum):
    """How raw node scores become kube-scheduler's 0..10 integers.

    ``rank``: the best candidate gets 10, the next 9, and so on (0 from the eleventh on), so the
    order among the top candidates survives however close their raw scores are.
    ``linear``: ``round(10 * (raw - min) / (max - min))``, which collapses close scores together.
    """

    RANK = "rank"
    LINEAR = "linear"


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Tunables of the packing policy.

    Weights are relative: a node's raw score is
    ``pack + image_weight * image_fraction + purpose_weight * is_user_node
    - deletion_candidate_penalty * is_deletion_candidate``, where ``pack`` is the weighted mean of
    the node's cpu and memory utilization (user load plus the pod, over allocatable) in 0..1.
    """

    cpu_weight: int = 1
    memory_weight: int = 1
    placeholders_as_load: bool = False
    image_weight: float = 0.5
    deletion_candidate_penalty: float = 4.0
    match_node_purpose: NodePurpose = NodePurpose.PREFER
    purpose_weight: float = 8.0
    normalization: Normalization = Normalization.RANK
    prefer_older_nodes: bool = True
    #: How many preemption candidates ``preempt`` keeps (best first); 0 keeps them all.
    preempt_keep: int = 1
    #: Weight of the drain cost (``core.drain``): the share of a new session's expected life it
    #: would add to the node's busy time, in 0..1, estimated from the age of the node's oldest
    #: user session.  0 turns the term off (plain MostAllocated packing).
    drain_weight: float = 0.0
    #: The lifetime prior (``core.lifetime.LifetimePrior``) used until observed lifetimes take
    #: over: median and sigma of the lognormal activity time (seconds), and how many observed
    #: lifetimes it counts as.
    #: Also count the node's youngest user session: the cost is the smaller of the costs of its
    #: oldest and its youngest session, so sessions that started together share nodes.
    drain_cohorts: bool = False
    #: Estimate the drain cost from every user session's age (``core.drain.all_sessions_cost``)
    #: instead of the oldest (and youngest) only.  Costlier per node (every pod is read), and in
    #: the simulator no better (benchmarks/README.md, "Drain-aware scoring").
    drain_all_sessions: bool = False
    session_median_seconds: float = 600.0
    session_sigma: float = 1.0
    lifetime_prior_weight: float = 20.0
    #: The idle culler's ``timeout``, ``every`` and ``maxAge`` (seconds; 0: no age limit), as
    #: the hub runs it: they shape the prior (a session lives at least ``timeout``).
    culler_timeout_seconds: float = 3600.0
    culler_every_seconds: float = 600.0
    culler_max_age_seconds: float = 0.0
