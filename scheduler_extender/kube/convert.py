"""Kubernetes JSON (Pods, Nodes) to core types: the one module that knows Kubernetes shapes.

Inputs are the decoded JSON of ``v1.Pod`` and ``v1.Node`` objects (camelCase keys), as the
scheduler sends them and as the API server lists them.  Only the fields the policy uses are read,
and a missing or null field means its Kubernetes default.  A value of the wrong type raises
``ConversionError`` naming the field, which the HTTP layer turns into a 400.

Quantities are parsed with ``kubernetes.utils.parse_quantity`` and rounded up the way
apimachinery's ``MilliValue``/``Value`` do.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from kubernetes.utils import parse_quantity

from scheduler_extender.core.types import (
    Node,
    Pod,
    Requirement,
    Resources,
    SelectorTerm,
    Taint,
    Toleration,
)

#: Pod phases after which a pod no longer holds node resources.
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
#: Resources a pod-level ``spec.resources`` may set (KEP-2837, PodLevelResources).
_POD_LEVEL = ("cpu", "memory")


class ConversionError(ValueError):
    """A Kubernetes object had a field of the wrong shape; ``path`` is its JSON path.  For a bad
    quantity, ``reason`` says what was wrong (``syntax``, ``negative``, ``not-finite``,
    ``range``), so callers tell errors apart without reading the message."""

    def __init__(self, path: str, problem: str, reason: str = "shape") -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PlaceholderRule:
    """How to recognise a placeholder pod: any of ``labels`` present with that value, or a
    priority at or below ``max_priority`` (``None`` disables the priority test)."""

    labels: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"component": "user-placeholder"})
    )
    max_priority: int | None = -10

    def matches(self, labels: Mapping[str, str], priority: int) -> bool:
        if self.max_priority is not None and priority <= self.max_priority:
            return True
        return any(labels.get(k) == v for k, v in self.labels.items())


DEFAULT_PLACEHOLDER_RULE = PlaceholderRule()


# --- small typed accessors ------------------------------------------------------------------


def _map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConversionError(f"{path}.{key}", f"expected an object, got {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConversionError(f"{path}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConversionError(f"{path}.{key}", f"expected a string, got {type(value).__name__}")
    return value


def _int(obj: Mapping[str, Any], key: str, path: str, default: int = 0) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConversionError(f"{path}.{key}", f"expected an integer, got {type(value).__name__}")
    return value


def _labels(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, str]:
    raw = _map(obj, key, path)
    for k, v in raw.items():
        if not isinstance(v, str):
            raise ConversionError(f"{path}.{key}.{k}", "expected a string value")
    return MappingProxyType(dict(raw)) if raw else MappingProxyType({})


# --- quantities and time --------------------------------------------------------------------


#: apimachinery keeps quantities' integer values in an int64; anything larger is not a real request.
_INT64_MAX = Decimal(2**63 - 1)


@lru_cache(maxsize=4096)
def _parse(text: str) -> Decimal:
    return Decimal(parse_quantity(text))  # type: ignore[no-untyped-call]


def quantity(value: object, path: str) -> Decimal:
    """A Kubernetes quantity (string, or a bare number as in hand-written YAML) as a Decimal.

    Rejects (with ``ConversionError``) what the API server would never store: non-finite values,
    negative amounts, and magnitudes beyond int64.  This also keeps a crafted request such as
    ``memory: 1e999999`` from making the handler build a million-digit integer.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConversionError(path, f"expected a quantity, got {type(value).__name__}")
    try:
        q = _parse(str(value))
    except (ValueError, ArithmeticError) as exc:
        raise ConversionError(path, f"invalid quantity {value!r}", "syntax") from exc
    if not q.is_finite():
        raise ConversionError(path, f"invalid quantity {value!r}: not finite", "not-finite")
    if q < 0:
        raise ConversionError(path, f"invalid quantity {value!r}: must not be negative", "negative")
    if q > _INT64_MAX:
        raise ConversionError(path, f"invalid quantity {value!r}: out of range", "range")
    return q


def millicores(value: object, path: str) -> int:
    """A cpu quantity in millicores, rounded up (as the API server rounds requests)."""
    q = quantity(value, path)
    if q * 1000 > _INT64_MAX:
        raise ConversionError(path, f"invalid quantity {value!r}: out of range", "range")
    return math.ceil(q * 1000)


def base_units(value: object, path: str) -> int:
    """A quantity in its base unit (bytes for memory), rounded up."""
    return math.ceil(quantity(value, path))


def resources_from(values: Mapping[str, Any], path: str) -> Resources:
    """A ``ResourceList`` (requests, limits, allocatable...) as ``Resources``: cpu in millicores,
    everything else in base units, each rounded up.  ``pods`` is read as a count."""
    cpu = memory = pods = 0
    scalar: dict[str, int] = {}
    for name, raw in values.items():
        if name == "cpu":
            cpu = millicores(raw, f"{path}.{name}")
        elif name == "memory":
            memory = base_units(raw, f"{path}.{name}")
        elif name == "pods":
            pods = base_units(raw, f"{path}.{name}")
        else:
            amount = base_units(raw, f"{path}.{name}")
            if amount:
                scalar[name] = amount
    return Resources(cpu, memory, pods, MappingProxyType(scalar) if scalar else Resources().scalar)


@lru_cache(maxsize=4096)
def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def timestamp(value: object, path: str) -> float:
    """An RFC 3339 timestamp as seconds since the epoch (0.0 when absent)."""
    if value is None:
        return 0.0
    if not isinstance(value, str):
        raise ConversionError(path, "expected an RFC 3339 timestamp string")
    try:
        return _timestamp(value)
    except ValueError as exc:
        raise ConversionError(path, f"invalid timestamp {value!r}") from exc


# --- images ---------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def normalize_image(ref: str) -> str:
    """A fully qualified image reference, so ``jupyter/base-notebook`` in a pod matches
    ``docker.io/jupyter/base-notebook:latest`` in ``node.status.images``.

    Adds the default registry (docker.io), the ``library/`` namespace for official images and the
    ``latest`` tag; a digest reference keeps only the digest, which is how runtimes report it.
    """
    name, _, digest = ref.strip().partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
        if "/" not in path:
            path = f"library/{path}"
    if digest:
        return f"{domain}/{path}@{digest}"
    return f"{domain}/{path}:{tag or 'latest'}"


# --- pods -----------------------------------------------------------------------------------


def _container_requests(
    container: object, path: str, status: Mapping[str, Any] | None = None, infeasible: bool = False
) -> Resources:
    """One container's requests.  With in-place resize, the scheduler counts the larger of what
    the spec asks, what the kubelet reports and what it has allocated; when a resize is
    infeasible, only the latter two (ref: component-helpers resource/helpers.go
    determineContainerReqs)."""
    if not isinstance(container, Mapping):
        raise ConversionError(path, f"expected a container object, got {type(container).__name__}")
    res = _map(container, "resources", path)
    requests = dict(_map(res, "requests", f"{path}.resources"))
    # The API server defaults a missing request to the limit; do the same for hand-written pods.
    for name, value in _map(res, "limits", f"{path}.resources").items():
        requests.setdefault(name, value)
    spec = resources_from(requests, f"{path}.resources.requests")
    if status is None or status.get("resources") is None:
        return spec
    spath = f"{path}(status)"
    reported = resources_from(
        _map(_map(status, "resources", spath), "requests", f"{spath}.resources"),
        f"{spath}.resources.requests",
    )
    allocated = resources_from(_map(status, "allocatedResources", spath), spath)
    larger = reported.max(allocated)
    return larger if infeasible else spec.max(larger)


def _statuses(obj: Mapping[str, Any], key: str) -> dict[str, Mapping[str, Any]]:
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    entries = status.get(key)
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                out[entry["name"]] = entry
    return out


def _resize_infeasible(obj: Mapping[str, Any]) -> bool:
    status = obj.get("status")
    if not isinstance(status, Mapping):
        return False
    if status.get("resize") == "Infeasible":  # before v1.33
        return True
    conditions = status.get("conditions")
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == "PodResizePending"
        and c.get("reason") == "Infeasible"
        for c in conditions
    )  # fmt: skip


def pod_requests(
    spec: Mapping[str, Any], path: str = "spec", pod: Mapping[str, Any] | None = None
) -> Resources:
    """The pod's effective request, as kube-scheduler computes it.

    App containers are summed; restartable init containers (sidecars) count as app containers and
    also run beside every later init container; each init container's need is compared with the
    total and the larger wins, per resource; pod-level ``resources.requests`` override cpu and
    memory when set; ``overhead`` is added last.  ``pods`` is 1.  Given the whole ``pod``, a
    container being resized in place counts as described in ``_container_requests``.
    ref: k8s.io/component-helpers/resource/helpers.go PodRequests.
    """
    statuses = _statuses(pod, "containerStatuses") if pod is not None else {}
    init_statuses = _statuses(pod, "initContainerStatuses") if pod is not None else {}
    infeasible = pod is not None and _resize_infeasible(pod)

    def status_of(c: object, table: dict[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
        name = c.get("name") if isinstance(c, Mapping) else None
        return table.get(name) if isinstance(name, str) else None

    total = Resources()
    for i, c in enumerate(_list(spec, "containers", path)):
        total = total + _container_requests(
            c, f"{path}.containers[{i}]", status_of(c, statuses), infeasible
        )
    sidecars = Resources()
    init_peak = Resources()
    for i, c in enumerate(_list(spec, "initContainers", path)):
        cpath = f"{path}.initContainers[{i}]"
        req = _container_requests(c, cpath, status_of(c, init_statuses), infeasible)
        if _str(c, "restartPolicy", cpath) == "Always":
            total = total + req
            sidecars = sidecars + req
            need = sidecars
        else:
            need = req + sidecars
        init_peak = init_peak.max(need)
    total = total.max(init_peak)
    pod_level = _map(_map(spec, "resources", path), "requests", f"{path}.resources")
    if pod_level:
        chosen = {
            k: v for k, v in pod_level.items() if k in _POD_LEVEL or k.startswith("hugepages-")
        }
        override = resources_from(chosen, f"{path}.resources.requests")
        scalar = dict(total.scalar)
        scalar.update({k: v for k, v in override.scalar.items()})
        total = Resources(
            override.cpu if "cpu" in chosen else total.cpu,
            override.memory if "memory" in chosen else total.memory,
            0,
            MappingProxyType(scalar) if scalar else Resources().scalar,
        )
    total = total + resources_from(_map(spec, "overhead", path), f"{path}.overhead")
    return Resources(total.cpu, total.memory, 1, total.scalar)


def _objects(
    container: Mapping[str, Any], key: str, path: str
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each entry of the list ``container[key]`` with its path; every entry must be an object
    (``ConversionError`` naming the entry otherwise)."""
    for i, item in enumerate(_list(container, key, path)):
        ipath = f"{path}.{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ConversionError(ipath, "expected an object")
        yield ipath, item


def _tolerations(spec: Mapping[str, Any], path: str) -> tuple[Toleration, ...]:
    out = []
    for tpath, t in _objects(spec, "tolerations", path):
        out.append(
            Toleration(
                key=_str(t, "key", tpath),
                operator=_str(t, "operator", tpath, "Equal") or "Equal",
                value=_str(t, "value", tpath),
                effect=_str(t, "effect", tpath),
            )
        )
    return tuple(out)


def _requirements(term: Mapping[str, Any], key: str, path: str) -> tuple[Requirement, ...]:
    out = []
    for rpath, r in _objects(term, key, path):
        values = _list(r, "values", rpath)
        if not all(isinstance(v, str) for v in values):
            raise ConversionError(f"{rpath}.values", "expected a list of strings")
        out.append(Requirement(_str(r, "key", rpath), _str(r, "operator", rpath), tuple(values)))
    return tuple(out)


def _required_terms(spec: Mapping[str, Any], path: str) -> tuple[SelectorTerm, ...] | None:
    apath = f"{path}.affinity.nodeAffinity"
    node_affinity = _map(_map(spec, "affinity", path), "nodeAffinity", f"{path}.affinity")
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    if not isinstance(required, Mapping):
        raise ConversionError(
            f"{apath}.requiredDuringSchedulingIgnoredDuringExecution", "expected an object"
        )
    rpath = f"{apath}.requiredDuringSchedulingIgnoredDuringExecution"
    terms = []
    for tpath, term in _objects(required, "nodeSelectorTerms", rpath):
        terms.append(
            SelectorTerm(
                _requirements(term, "matchExpressions", tpath),
                _requirements(term, "matchFields", tpath),
            )
        )
    return tuple(terms)


def pod_images(spec: Mapping[str, Any], path: str = "spec") -> tuple[str, ...]:
    images: list[str] = []
    for key in ("initContainers", "containers"):
        for cpath, c in _objects(spec, key, path):
            image = _str(c, "image", cpath)
            if image:
                normalized = normalize_image(image)
                if normalized not in images:
                    images.append(normalized)
    return tuple(images)


def is_terminal(obj: Mapping[str, Any]) -> bool:
    """Whether a pod has finished and no longer holds node resources."""
    status = obj.get("status")
    return isinstance(status, Mapping) and status.get("phase") in TERMINAL_PHASES


def pod_from_json(
    obj: Mapping[str, Any], rule: PlaceholderRule = DEFAULT_PLACEHOLDER_RULE, path: str = "Pod"
) -> Pod:
    """A core ``Pod`` from a ``v1.Pod`` object."""
    if not isinstance(obj, Mapping):
        raise ConversionError(path, "expected a Pod object")
    meta = _map(obj, "metadata", path)
    spec = _map(obj, "spec", path)
    mpath, spath = f"{path}.metadata", f"{path}.spec"
    labels = _labels(meta, "labels", mpath)
    priority = _int(spec, "priority", spath)
    return Pod(
        uid=_str(meta, "uid", mpath),
        name=_str(meta, "name", mpath),
        namespace=_str(meta, "namespace", mpath),
        requests=pod_requests(spec, spath, obj),
        priority=priority,
        placeholder=rule.matches(labels, priority),
        node_name=_str(spec, "nodeName", spath),
        node_selector=_labels(spec, "nodeSelector", spath),
        required_terms=_required_terms(spec, spath),
        tolerations=_tolerations(spec, spath),
        images=pod_images(spec, spath),
        created=timestamp(meta.get("creationTimestamp"), f"{mpath}.creationTimestamp"),
    )


# --- nodes ----------------------------------------------------------------------------------


def _taints(spec: Mapping[str, Any], path: str) -> tuple[Taint, ...]:
    out = []
    for tpath, t in _objects(spec, "taints", path):
        out.append(Taint(_str(t, "key", tpath), _str(t, "value", tpath), _str(t, "effect", tpath)))
    return tuple(out)


def _node_images(status: Mapping[str, Any], path: str) -> frozenset[str]:
    names: set[str] = set()
    for ipath, image in _objects(status, "images", path):
        for name in _list(image, "names", ipath):
            if isinstance(name, str) and name:
                names.add(normalize_image(name))
    return frozenset(names)


def node_from_json(obj: Mapping[str, Any], path: str = "Node") -> Node:
    """A core ``Node`` from a ``v1.Node`` object."""
    if not isinstance(obj, Mapping):
        raise ConversionError(path, "expected a Node object")
    meta = _map(obj, "metadata", path)
    spec = _map(obj, "spec", path)
    status = _map(obj, "status", path)
    spath, stpath = f"{path}.spec", f"{path}.status"
    name = _str(meta, "name", f"{path}.metadata")
    if not name:
        raise ConversionError(f"{path}.metadata.name", "a node needs a name")
    unschedulable = spec.get("unschedulable") is True
    return Node(
        name=name,
        allocatable=resources_from(_map(status, "allocatable", stpath), f"{stpath}.allocatable"),
        labels=_labels(meta, "labels", f"{path}.metadata"),
        taints=_taints(spec, spath),
        unschedulable=unschedulable,
        images=_node_images(status, stpath),
        created=timestamp(meta.get("creationTimestamp"), f"{path}.metadata.creationTimestamp"),
    )


# --- lenient readers and stubs for the placeholder controller ------------------------------
# The controller keeps small stubs of Nodes and user pods and reads a few fields of them; a
# field it cannot read means "unknown", never an error (one odd object must not stop it).

#: Static pods' mirror objects carry this annotation (ref: pkg/kubelet/types/pod_update.go).
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def creation_time(obj: Mapping[str, Any]) -> float:
    """``metadata.creationTimestamp`` in Unix seconds, 0.0 when missing or unreadable."""
    meta = obj.get("metadata") or {}
    try:
        return timestamp(meta.get("creationTimestamp"), "metadata.creationTimestamp")
    except ConversionError:
        return 0.0


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's Ready condition is True."""
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def ready_since(node: Mapping[str, Any]) -> float | None:
    """When the node's Ready condition last became True (None while not Ready or unknown)."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            if cond.get("status") != "True":
                return None
            try:
                return timestamp(cond.get("lastTransitionTime"), "lastTransitionTime") or None
            except ConversionError:
                return None
    return None


def node_image_names(node: Mapping[str, Any]) -> frozenset[str]:
    """Every (normalized) image name in ``status.images``; malformed entries are skipped."""
    names: set[str] = set()
    for image in (node.get("status") or {}).get("images") or []:
        if isinstance(image, dict):
            for name in image.get("names") or []:
                if isinstance(name, str) and name:
                    names.add(normalize_image(name))
    return frozenset(names)


def removal_reason(pod: Mapping[str, Any]) -> str:
    """``preempted`` when kube-scheduler marked the victim (DisruptionTarget condition, reason
    PreemptionByScheduler; ref: pkg/scheduler/framework/preemption), else ``removed``."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            isinstance(cond, dict)
            and cond.get("type") == "DisruptionTarget"
            and cond.get("reason") == "PreemptionByScheduler"
        ):
            return "preempted"
    return "removed"


def is_node_overhead(pod: Mapping[str, Any]) -> bool:
    """A running DaemonSet pod or static (mirror) pod: what a node carries before any user."""
    meta = pod.get("metadata") or {}
    refs = meta.get("ownerReferences") or []
    daemon = any(isinstance(r, dict) and r.get("kind") == "DaemonSet" for r in refs)
    mirror = MIRROR_ANNOTATION in (meta.get("annotations") or {})
    phase = (pod.get("status") or {}).get("phase")
    return (daemon or mirror) and phase not in TERMINAL_PHASES


def node_stub(obj: Mapping[str, Any], *, images: bool) -> dict[str, Any]:
    """What the controller keeps of a Node: what ``node_from_json``, ``ready_since`` and (when
    a pool names images) ``node_image_names`` read.  A real Node is tens of KiB of JSON
    (managedFields, nodeInfo, every condition with its heartbeat, a hundred images); at 5,000
    nodes the full objects cost hundreds of MiB the controller never looks at.  Heartbeats and
    resourceVersions are left out too, so a kubelet's status update leaves the stub equal and
    wakes nothing."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    out_meta = {k: meta[k] for k in ("name", "uid", "labels", "creationTimestamp") if k in meta}
    out_spec = {k: spec[k] for k in ("taints", "unschedulable") if k in spec}
    out_status: dict[str, Any] = {"allocatable": status.get("allocatable") or {}}
    ready = [
        {k: c[k] for k in ("type", "status", "lastTransitionTime") if k in c}
        for c in status.get("conditions") or []
        if isinstance(c, dict) and c.get("type") == "Ready"
    ]
    out_status["conditions"] = ready[:1]
    if images and status.get("images"):
        out_status["images"] = [
            {"names": list(i.get("names") or [])}
            for i in status.get("images") or []
            if isinstance(i, dict)
        ]
    return {"metadata": out_meta, "spec": out_spec, "status": out_status}


def user_pod_stub(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the controller keeps of a user pod: its identity, labels and creation time (a
    hub with thousands of users would otherwise keep every pod's full JSON)."""
    meta = obj.get("metadata") or {}
    keep = ("name", "namespace", "uid", "labels", "creationTimestamp", "resourceVersion")
    return {"metadata": {k: meta[k] for k in keep if k in meta}}
