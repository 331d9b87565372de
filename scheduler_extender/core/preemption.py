"""Steering preemption: which of kube-scheduler's candidate nodes a user pod should preempt on.

kube-scheduler's DefaultPreemption finds, per node, a minimal set of lower-priority victims and
sends those candidates to the extender's ``preempt`` verb; the extender may only *drop* candidates
(a map has no order, and every returned node must keep at least one victim; ref:
pkg/scheduler/framework/preemption/preemption.go callExtenders).  The scheduler then picks among
what is left by its own criteria.  So to steer, we keep only the best candidates:

1. nodes whose victims are all placeholders, when any exist (never evict a user when a
   placeholder would do);
2. of those, nodes that already hold the pod's images, when any exist (no pull wait);
3. of those, the fewest PodDisruptionBudget violations, then the most packed by user load, with
   fewer victims, then older nodes first.

Victim sets are returned unchanged: the scheduler computed them as the minimum that makes the pod
fit, and it does not re-check them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scheduler_extender.core.policy import PolicyConfig
from scheduler_extender.core.scoring import image_fraction, pack_score
from scheduler_extender.core.types import Pod, Snapshot


@dataclass(frozen=True, slots=True)
class Candidate:
    """One preemption candidate as the scheduler proposed it.  ``placeholder_victims`` tells, per
    victim, whether it is a placeholder (``None`` when the victim is unknown to us: treated as a
    user pod)."""

    node: str
    victims: tuple[str, ...]
    placeholder_victims: tuple[bool | None, ...]
    pdb_violations: int = 0

    @property
    def only_placeholders(self) -> bool:
        return bool(self.placeholder_victims) and all(v is True for v in self.placeholder_victims)


def classify_victims(uids: Sequence[str], snapshot: Snapshot) -> tuple[bool | None, ...]:
    """Whether each victim UID is a placeholder, as far as the snapshot knows."""
    out: list[bool | None] = []
    for uid in uids:
        pod = snapshot.pod(uid)
        out.append(None if pod is None else pod.placeholder)
    return tuple(out)


def choose_candidates(
    pod: Pod,
    candidates: Sequence[Candidate],
    snapshot: Snapshot,
    config: PolicyConfig,
) -> tuple[str, ...]:
    """Names of the candidate nodes to keep, best first (all of them when ``preempt_keep`` is 0).

    Candidates without victims are dropped (the scheduler rejects them).  Nodes unknown to the
    snapshot are ranked last, but kept if nothing better exists.
    """
    pool = [c for c in candidates if c.victims]
    placeholders_only = [c for c in pool if c.only_placeholders]
    if placeholders_only:
        pool = placeholders_only

    nodes = snapshot.nodes

    def images(c: Candidate) -> float:
        info = nodes.get(c.node)
        return 0.0 if info is None else image_fraction(pod, info)

    if pod.images:
        best_images = max((images(c) for c in pool), default=0.0)
        if best_images > 0:
            pool = [c for c in pool if images(c) == best_images]

    def key(c: Candidate) -> tuple[int, int, float, int, float, str]:
        # Fewest PodDisruptionBudget violations first, as kube-scheduler's own
        # pickOneNodeForPreemption does: with one candidate kept, it has no other to fall back on.
        info = nodes.get(c.node)
        if info is None:
            return (c.pdb_violations, 1, 0.0, len(c.victims), 0.0, c.node)
        packed = pack_score(pod, info, config)
        return (c.pdb_violations, 0, -packed, len(c.victims), info.node.created, c.node)

    ranked = sorted(pool, key=key)
    if config.preempt_keep > 0:
        ranked = ranked[: config.preempt_keep]
    return tuple(c.node for c in ranked)
