"""Which candidate nodes can take a pod: only what the Cluster Autoscaler also checks.

The Cluster Autoscaler never calls extenders; it simulates kube-scheduler's in-tree filters.  If
this filter rejected a node for a reason those filters do not know, the autoscaler would believe
the pod fits there, never add a node, and the pod would wait forever.  So the checks here are the
in-tree ones only: cordoned nodes, untolerated NoSchedule/NoExecute taints (which include
``ToBeDeletedByClusterAutoscaler``), nodeSelector and required node affinity, and resources.
Preference belongs in ``scoring``.

A failure that no preemption can fix (the node would refuse the pod even empty) is
*unresolvable*, so kube-scheduler does not try preemption on that node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scheduler_extender.core.matching import HARD_EFFECTS, affinity_matches, tolerates
from scheduler_extender.core.policy import (
    NODE_PURPOSE_LABEL,
    NODE_PURPOSE_USER,
    UNSCHEDULABLE_TAINT,
    NodePurpose,
    PolicyConfig,
)
from scheduler_extender.core.types import NodeInfo, Pod, Resources, Snapshot, Taint

_UNSCHEDULABLE = Taint(UNSCHEDULABLE_TAINT, "", "NoSchedule")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one node can take the pod.  ``reason`` is empty when it can."""

    fits: bool
    reason: str = ""
    unresolvable: bool = False


FITS = Verdict(True)


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """Filter result in input order.  ``passed`` includes ``unknown`` (nodes the state does not
    know are let through: failing them could strand pods the autoscaler thinks are placeable)."""

    passed: tuple[str, ...]
    failed: Mapping[str, str]
    unresolvable: Mapping[str, str]
    unknown: tuple[str, ...]


def insufficient(request: Resources, free: Resources) -> str:
    """The first resource the request does not fit in ``free``, as kube-scheduler names it
    ("Too many pods", "Insufficient cpu", ...), or "" when it fits.

    Like NodeResourcesFit, a resource the pod does not request is not checked (ref:
    pkg/scheduler/framework/plugins/noderesources/fit.go fitsRequest).
    """
    if request.pods > free.pods:
        return "Too many pods"
    if request.cpu > 0 and request.cpu > free.cpu:
        return "Insufficient cpu"
    if request.memory > 0 and request.memory > free.memory:
        return "Insufficient memory"
    for name, amount in request.scalar.items():
        if amount > 0 and amount > free.scalar.get(name, 0):
            return f"Insufficient {name}"
    return ""


class _Checker:
    """``check_node`` for one pod, with the pod-side work done once.

    The filter runs for every candidate node of a pod, and most nodes share the same few taints;
    whether the pod tolerates a taint is decided once per distinct taint.
    """

    __slots__ = ("cpu", "memory", "plain_affinity", "pod", "pods", "require_purpose", "scalar",
                 "taint_ok", "tolerates_cordon")  # fmt: skip

    def __init__(self, pod: Pod, config: PolicyConfig) -> None:
        self.pod = pod
        self.tolerates_cordon = any(tolerates(t, _UNSCHEDULABLE) for t in pod.tolerations)
        self.taint_ok: dict[Taint, bool] = {}
        self.require_purpose = config.match_node_purpose is NodePurpose.REQUIRE
        self.plain_affinity = not pod.node_selector and pod.required_terms is None
        requests = pod.requests
        self.cpu = requests.cpu
        self.memory = requests.memory
        self.pods = requests.pods
        self.scalar = requests.scalar

    def check(self, info: NodeInfo) -> Verdict:
        node = info.node
        if node.unschedulable and not self.tolerates_cordon:
            return Verdict(False, "node(s) were unschedulable", True)
        for taint in node.taints:
            if taint.effect not in HARD_EFFECTS:
                continue
            ok = self.taint_ok.get(taint)
            if ok is None:
                ok = any(tolerates(t, taint) for t in self.pod.tolerations)
                self.taint_ok[taint] = ok
            if not ok:
                shown = f"{taint.key}: {taint.value}" if taint.value else taint.key
                return Verdict(False, f"node(s) had untolerated taint {{{shown}}}", True)
        if not self.plain_affinity and not affinity_matches(self.pod, node):
            return Verdict(False, "node(s) didn't match Pod's node affinity/selector", True)
        terms = info.terms
        if self.require_purpose and not terms.user_purpose:
            return Verdict(
                False, f"node(s) didn't have label {NODE_PURPOSE_LABEL}={NODE_PURPOSE_USER}", True
            )
        # Like NodeResourcesFit, a resource the pod does not request is not checked (ref:
        # pkg/scheduler/framework/plugins/noderesources/fit.go fitsRequest).  A request larger
        # than the empty node is unresolvable: no preemption can help.
        cpu, memory, pods = self.cpu, self.memory, self.pods
        allocatable = node.allocatable
        if pods > allocatable.pods:
            return Verdict(False, "Too many pods", True)
        if cpu > 0 and cpu > terms.allocatable_cpu:
            return Verdict(False, "Insufficient cpu", True)
        if memory > 0 and memory > terms.allocatable_memory:
            return Verdict(False, "Insufficient memory", True)
        if self.scalar:
            never = insufficient(Resources(scalar=self.scalar), allocatable)
            if never:
                return Verdict(False, never, True)
        if pods > allocatable.pods - info.requested.pods:
            return Verdict(False, "Too many pods", False)
        if cpu > 0 and cpu > terms.allocatable_cpu - terms.requested_cpu:
            return Verdict(False, "Insufficient cpu", False)
        if memory > 0 and memory > terms.allocatable_memory - terms.requested_memory:
            return Verdict(False, "Insufficient memory", False)
        if self.scalar:
            short = insufficient(Resources(scalar=self.scalar), allocatable - info.requested)
            if short:
                return Verdict(False, short, False)
        return FITS


def check_node(pod: Pod, info: NodeInfo, config: PolicyConfig) -> Verdict:
    """Can ``pod`` run on ``info``'s node now, and if not, could preemption ever help?"""
    return _Checker(pod, config).check(info)


def filter_nodes(
    pod: Pod, names: Iterable[str], snapshot: Snapshot, config: PolicyConfig
) -> FilterOutcome:
    """Split candidate node names into those that can take ``pod`` and those that cannot."""
    passed: list[str] = []
    failed: dict[str, str] = {}
    unresolvable: dict[str, str] = {}
    unknown: list[str] = []
    nodes = snapshot.nodes
    check = _Checker(pod, config).check
    for name in names:
        info = nodes.get(name)
        if info is None:
            unknown.append(name)
            passed.append(name)
            continue
        verdict = check(info)
        if verdict.fits:
            passed.append(name)
        elif verdict.unresolvable:
            unresolvable[name] = verdict.reason
        else:
            failed[name] = verdict.reason
    return FilterOutcome(tuple(passed), failed, unresolvable, tuple(unknown))
