"""Plain value types shared by every policy function, the service and the simulator.

Everything here is an immutable dataclass of integers and strings: cpu in millicores, memory and
storage in bytes, pod counts as counts.  Nothing in this module (or in ``core`` at all) knows the
Kubernetes JSON shape, reads a clock, draws random numbers or performs I/O; ``convert`` builds
these values from Kubernetes objects and the simulator builds them directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from scheduler_extender.core.policy import (
    DELETION_CANDIDATE_TAINT,
    NODE_PURPOSE_LABEL,
    NODE_PURPOSE_USER,
)

_EMPTY: Mapping[str, int] = MappingProxyType({})
_EMPTY_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of node resources.

    ``cpu`` is in millicores, ``memory`` in bytes, ``pods`` a count.  ``scalar`` holds every other
    resource (``ephemeral-storage``, ``nvidia.com/gpu``, ``hugepages-2Mi``...) in its base unit,
    keyed by the Kubernetes resource name; zero entries are never stored.
    """

    cpu: int = 0
    memory: int = 0
    pods: int = 0
    scalar: Mapping[str, int] = field(default_factory=lambda: _EMPTY)

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu,
            self.memory + other.memory,
            self.pods + other.pods,
            _merge(self.scalar, other.scalar, 1),
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu - other.cpu,
            self.memory - other.memory,
            self.pods - other.pods,
            _merge(self.scalar, other.scalar, -1),
        )

    def max(self, other: Resources) -> Resources:
        """Per-resource maximum (how init containers combine with app containers)."""
        names = set(self.scalar) | set(other.scalar)
        scalar = {n: max(self.scalar.get(n, 0), other.scalar.get(n, 0)) for n in names}
        return Resources(
            max(self.cpu, other.cpu),
            max(self.memory, other.memory),
            max(self.pods, other.pods),
            _freeze({n: v for n, v in scalar.items() if v}),
        )


def _freeze(values: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(values) if values else _EMPTY


def _merge(a: Mapping[str, int], b: Mapping[str, int], sign: int) -> Mapping[str, int]:
    if not b:
        return a
    out = dict(a)
    for name, value in b.items():
        total = out.get(name, 0) + sign * value
        if total:
            out[name] = total
        else:
            out.pop(name, None)
    return _freeze(out)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration.  Empty ``key`` with ``Exists`` tolerates every taint; empty ``effect``
    matches every effect (ref: k8s.io/api/core/v1 Toleration.ToleratesTaint)."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions``/``matchFields`` entry of a node selector term."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SelectorTerm:
    """A node selector term: every expression and field requirement must hold.

    A term with neither matches no node (ref: component-helpers nodeaffinity)."""

    match_expressions: tuple[Requirement, ...] = ()
    match_fields: tuple[Requirement, ...] = ()


@dataclass(frozen=True, slots=True)
class Pod:
    """What the policy needs to know about a pod.

    ``requests`` is the pod's effective request as kube-scheduler computes it (init containers,
    sidecars and overhead already folded in), with ``pods=1``.  ``required_terms`` is ``None`` when
    the pod has no required node affinity; an empty tuple means "required, but matches nothing".
    ``images`` are normalized image references.  ``created`` is seconds since the epoch.
    """

    uid: str
    name: str = ""
    namespace: str = ""
    requests: Resources = field(default_factory=lambda: Resources(pods=1))
    priority: int = 0
    placeholder: bool = False
    node_name: str = ""
    node_selector: Mapping[str, str] = field(default_factory=lambda: _EMPTY_LABELS)
    required_terms: tuple[SelectorTerm, ...] | None = None
    tolerations: tuple[Toleration, ...] = ()
    images: tuple[str, ...] = ()
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class Node:
    """What the policy needs to know about a node.  ``images`` holds every normalized name the
    container runtime reports for images present on the node."""

    name: str
    allocatable: Resources
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY_LABELS)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    images: frozenset[str] = frozenset()
    created: float = 0.0


class NodeTerms(NamedTuple):
    """The numbers scoring reads for a node, flattened once when its ``NodeInfo`` is built.

    Scoring runs for every candidate node of every pod; reading one tuple instead of walking
    ``info.node.allocatable.cpu`` and friends makes it about four times faster.
    """

    requested_cpu: int
    requested_memory: int
    user_cpu: int
    user_memory: int
    allocatable_cpu: int
    allocatable_memory: int
    user_purpose: bool
    deletion_candidate: bool
    images: frozenset[str]
    #: Creation time of the node's oldest user (non-placeholder) pod; ``inf`` when it has none.
    oldest_user: float
    #: Creation time of its youngest user pod; ``-inf`` when it has none.
    youngest_user: float


def _user_created_range(pods: Mapping[str, Pod]) -> tuple[float, float]:
    """The oldest and the youngest creation time among user pods (``inf, -inf`` if none)."""
    oldest, youngest = math.inf, -math.inf
    for pod in pods.values():
        if not pod.placeholder:
            created = pod.created
            oldest = min(oldest, created)
            youngest = max(youngest, created)
    return oldest, youngest


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node with the pods assigned to it (bound or assumed) and their precomputed totals.

    ``requested`` sums every pod; ``placeholder_requested`` only the placeholder pods, so user load
    is their difference.  Build and update through ``core.snapshot`` so totals stay consistent.
    ``terms`` is derived from the rest on construction.
    """

    node: Node
    pods: Mapping[str, Pod]
    requested: Resources
    placeholder_requested: Resources
    terms: NodeTerms = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        node = self.node
        requested = self.requested
        placeholder = self.placeholder_requested
        terms = NodeTerms(
            requested.cpu,
            requested.memory,
            requested.cpu - placeholder.cpu,
            requested.memory - placeholder.memory,
            node.allocatable.cpu,
            node.allocatable.memory,
            node.labels.get(NODE_PURPOSE_LABEL) == NODE_PURPOSE_USER,
            any(t.key == DELETION_CANDIDATE_TAINT for t in node.taints),
            node.images,
            *_user_created_range(self.pods),
        )
        object.__setattr__(self, "terms", terms)

    @property
    def name(self) -> str:
        return self.node.name


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of the cluster: nodes by name and, for every known pod, its node."""

    nodes: Mapping[str, NodeInfo]
    pod_nodes: Mapping[str, str]

    def pod(self, uid: str) -> Pod | None:
        node = self.pod_nodes.get(uid)
        if node is None:
            return None
        info = self.nodes.get(node)
        return None if info is None else info.pods.get(uid)
