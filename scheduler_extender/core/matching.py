"""Taint/toleration and node-affinity matching, with kube-scheduler's semantics.

ref: k8s.io/api/core/v1 toleration.go (ToleratesTaint) and
k8s.io/component-helpers/scheduling/corev1/nodeaffinity (node selector terms).
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler_extender.core.types import Node, Pod, Requirement, SelectorTerm, Taint, Toleration

#: Effects that make a node refuse pods which do not tolerate the taint (TaintToleration filter).
HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    if toleration.operator in ("", "Equal"):
        return toleration.value == taint.value
    return False


def first_untolerated(taints: Iterable[Taint], tolerations: tuple[Toleration, ...]) -> Taint | None:
    """The first NoSchedule/NoExecute taint none of ``tolerations`` tolerates, if any."""
    for taint in taints:
        if taint.effect not in HARD_EFFECTS:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def requirement_matches(req: Requirement, value: str | None) -> bool:
    """Whether a label (or field) value satisfies one requirement; ``None`` means absent."""
    op = req.operator
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        if value is None or len(req.values) != 1:
            return False
        have, want = _int_or_none(value), _int_or_none(req.values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: SelectorTerm, node: Node) -> bool:
    if not term.match_expressions and not term.match_fields:
        return False
    for req in term.match_expressions:
        if not requirement_matches(req, node.labels.get(req.key)):
            return False
    for req in term.match_fields:
        # Only metadata.name is a supported field (ref: nodeaffinity.go).
        value = node.name if req.key == "metadata.name" else None
        if req.operator not in ("In", "NotIn") or not requirement_matches(req, value):
            return False
    return True


def affinity_matches(pod: Pod, node: Node) -> bool:
    """``nodeSelector`` and required node affinity (terms are ORed), as the NodeAffinity filter."""
    for key, value in pod.node_selector.items():
        if node.labels.get(key) != value:
            return False
    if pod.required_terms is None:
        return True
    return any(term_matches(term, node) for term in pod.required_terms)
