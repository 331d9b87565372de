"""The fake API server's storage: generic resources with one global resourceVersion and a history.

It mimics what kube-apiserver + etcd promise a client, not how they do it:

- every write bumps one cluster-wide ``resourceVersion`` (etcd's revision) and appends a history
  entry; a watch from resourceVersion R replays the history after R, then streams live writes;
- ``compact()`` forgets history like etcd compaction; a watch or a paged list that needs
  forgotten history gets ``410 Expired`` (ref: k8s.io/apiserver/pkg/storage/cacher/watch_cache.go,
  "too old resource version: %d (%d)");
- a paged list is a consistent snapshot: every page of one list comes from the state at the
  first page's resourceVersion (ref: API concepts, "Retrieving large results sets in chunks",
  https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks);
- ``reset_versions()`` restarts the revision counter at an unrelated number with no history, as
  after an etcd restore.

Resources are keyed by ``ResourceType`` (group, version, plural) and are namespaced or not, so the
placeholder-controller tests can reuse it for Pods, Leases and PriorityClasses.  Stored objects are
never mutated in place: each write stores a new dict, so lists and watch history can share them.
"""

from __future__ import annotations

import base64
import copy
import itertools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"


PODS = ResourceType("", "v1", "pods", "Pod", True)
NODES = ResourceType("", "v1", "nodes", "Node", False)
NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", False)
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True)
PRIORITY_CLASSES = ResourceType(
    "scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False
)
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", True)
DEPLOYMENTS = ResourceType("apps", "v1", "deployments", "Deployment", True)
PODTEMPLATES = ResourceType("", "v1", "podtemplates", "PodTemplate", True)
BUILTIN_TYPES = (
    PODS, NODES, NAMESPACES, LEASES, PRIORITY_CLASSES, CONFIGMAPS, DEPLOYMENTS, PODTEMPLATES,
)  # fmt: skip
#: A pod's default terminationGracePeriodSeconds (ref: k8s.io/api/core/v1 PodSpec).
DEFAULT_GRACE = 30


class StatusError(Exception):
    """An API error, rendered as a ``metav1.Status`` object."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def status(self) -> Obj:
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_large(requested: int, current: int) -> StatusError:
    # ref: k8s.io/apiserver/pkg/storage/errors.go NewTooLargeResourceVersionError
    return StatusError(
        504,
        "Timeout",
        f"Too large resource version: {requested}, current: {current}",
        {
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


def not_found(rt: ResourceType, name: str) -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{rt.plural} "{name}" not found',
        {"name": name, "group": rt.group, "kind": rt.plural},
    )


def conflict(rt: ResourceType, name: str, message: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.plural} "{name}": {message}',
        {"name": name, "group": rt.group, "kind": rt.plural},
    )


# --- selectors ------------------------------------------------------------------------------


Requirement = tuple[str, str, str]  # (key, op, value); op in "=", "!=", "exists", "!exists"


def parse_selector(text: str | None, *, fields: bool = False) -> list[Requirement]:
    """Equality-based selectors (``a=b,c!=d``; for labels also ``a`` and ``!a``)."""
    out: list[Requirement] = []
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        if "!=" in part:
            key, value = part.split("!=", 1)
            out.append((key.strip(), "!=", value.strip()))
        elif "==" in part:
            key, value = part.split("==", 1)
            out.append((key.strip(), "=", value.strip()))
        elif "=" in part:
            key, value = part.split("=", 1)
            out.append((key.strip(), "=", value.strip()))
        elif not fields and part.startswith("!"):
            out.append((part[1:].strip(), "!exists", ""))
        elif not fields:
            out.append((part, "exists", ""))
        else:
            raise StatusError(400, "BadRequest", f"invalid field selector: {part!r}")
    return out


def _field(obj: Obj, path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def matches(obj: Obj, labels: list[Requirement], fields: list[Requirement]) -> bool:
    obj_labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, op, value in labels:
        have = obj_labels.get(key)
        if (
            (op == "=" and have != value)
            or (op == "!=" and have == value)
            or (op == "exists" and have is None)
            or (op == "!exists" and have is not None)
        ):
            return False
    for key, op, value in fields:
        have = _field(obj, key)
        if (op == "=" and have != value) or (op == "!=" and have == value):
            return False
    return True


# --- merge patch ----------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also used for strategic-merge-patch bodies: close enough for
    the scalar and map fields controllers patch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- the store ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One history entry: the write at ``rv``; ``previous`` is the object before it (None for
    ADDED), so filtered watches can turn "stopped matching" into DELETED."""

    rv: int
    rt: ResourceType
    type: str
    obj: Obj
    previous: Obj | None


@dataclass(slots=True)
class _ListSnapshot:
    rv: int
    items: list[Obj]


@dataclass(slots=True)
class Hooks:
    """Test hooks, called outside the lock."""

    after_list_page: Callable[[ResourceType, int], None] | None = None
    #: Raised by the next bindings, as an admission webhook denying them would.
    fail_bind: StatusError | None = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def forbidden(rt: ResourceType, name: str, message: str) -> StatusError:
    return StatusError(
        403,
        "Forbidden",
        f'{rt.plural} "{name}" is forbidden: {message}',
        {"name": name, "group": rt.group, "kind": rt.plural},
    )


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> StatusError:
    """422 Invalid with field causes, as apiserver validation answers."""
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    return StatusError(
        422,
        "Invalid",
        f'{rt.kind} "{name}" is invalid: {text}',
        {
            "name": name,
            "group": rt.group,
            "kind": rt.kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
            ],
        },
    )


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise StatusError(400, "BadRequest", "metadata: an object is required")
    return meta


def encode_continue(rv: int, snapshot_id: int, start: int) -> str:
    raw = orjson.dumps({"rv": rv, "id": snapshot_id, "start": start})
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_continue(token: str) -> tuple[int, int, int]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        return int(data["rv"]), int(data["id"]), int(data["start"])
    except Exception as exc:
        raise StatusError(400, "BadRequest", f"invalid continue token: {exc}") from None


class ApiStore:
    """Thread-safe resource storage with a revision counter, history, compaction and waiting."""

    def __init__(
        self,
        types: Iterable[ResourceType] = BUILTIN_TYPES,
        *,
        first_rv: int = 1,
        max_lists: int = 64,
    ) -> None:
        self.cond = threading.Condition()
        self.types = {(rt.group, rt.version, rt.plural): rt for rt in types}
        self.objects: dict[ResourceType, dict[tuple[str, str], Obj]] = {
            rt: {} for rt in self.types.values()
        }
        self.rv = first_rv
        #: history[i] has absolute position ``offset + i``; compaction drops a prefix.
        self.history: list[Change] = []
        self.offset = 0
        #: Events with rv <= floor are forgotten; a watch from below floor is expired.
        self.floor = first_rv
        self._lists: OrderedDict[int, _ListSnapshot] = OrderedDict()
        self._list_ids = itertools.count(1)
        self._max_lists = max_lists
        self.hooks = Hooks()
        self.epoch = 0  # bumped by reset_versions so open watches can notice
        #: Pod admission as kube-apiserver does it (off by default: the cache tests load pods
        #: naming PriorityClasses they never create): validation of containers, the Priority
        #: plugin resolving ``priorityClassName`` (403 for an unknown class), status Pending.
        self.pod_admission = False
        #: Per type: (name, object) -> the object to store, or a StatusError (a custom
        #: resource's schema validation; see ``add_type``).
        self.admission: dict[ResourceType, Callable[[str, Obj], Obj]] = {}
        #: Types with a status subresource: a PUT of the object keeps the stored ``status``
        #: (ref: kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/
        #: custom-resource-definitions/#status-subresource, "PUT ... to the custom resource
        #: ignore changes to the status stanza").
        self.status_subresource: set[ResourceType] = set()

    def add_type(
        self,
        rt: ResourceType,
        *,
        admit: Callable[[str, Obj], Obj] | None = None,
        status_subresource: bool = False,
    ) -> None:
        """Serve one more type (a CRD installed), optionally validated on create/replace."""
        with self.cond:
            self.types[(rt.group, rt.version, rt.plural)] = rt
            self.objects.setdefault(rt, {})
            if admit is not None:
                self.admission[rt] = admit
            if status_subresource:
                self.status_subresource.add(rt)

    # --- lookup ---

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.types.get((group, version, plural))
        if rt is None:
            raise StatusError(
                404, "NotFound", f"the server could not find the requested resource ({plural})"
            )
        return rt

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        with self.cond:
            obj = self.objects[rt].get((ns, name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def items(self, rt: ResourceType) -> list[Obj]:
        with self.cond:
            return list(self.objects[rt].values())

    # --- writes (callers hold no lock) ---

    def _record(self, rt: ResourceType, kind: str, obj: Obj, previous: Obj | None) -> None:
        self.history.append(Change(self.rv, rt, kind, obj, previous))
        self.cond.notify_all()

    def _stamp(self, rt: ResourceType, obj: Obj) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        return obj

    def _admit_pod(self, name: str, obj: Obj) -> None:
        """Validation and the Priority admission plugin (lock held).
        ref: plugin/pkg/admission/priority/admission.go; pkg/apis/core/validation."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise invalid(PODS, name, [("spec", "Required value")])
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise invalid(PODS, name, [("spec.containers", "Required value")])
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not c.get("name") or not c.get("image"):
                raise invalid(PODS, name, [(f"spec.containers[{i}]", "name and image required")])
        cls_name = spec.get("priorityClassName")
        if cls_name:
            cls = self.objects[PRIORITY_CLASSES].get(("", cls_name))
            if cls is None:
                raise forbidden(PODS, name, f"no PriorityClass with name {cls_name} was found")
            spec["priority"] = int(cls.get("value") or 0)
            spec["preemptionPolicy"] = cls.get("preemptionPolicy") or "PreemptLowerPriority"
        obj["status"] = {"phase": "Pending", "qosClass": "Burstable"}

    def create(self, rt: ResourceType, ns: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = _meta(obj)
        with self.cond:
            name = meta.get("name") or ""
            if not name and meta.get("generateName"):
                # ref: apiserver names.SimpleNameGenerator (base cut to 58 + 5 random).
                name = f"{meta['generateName'][:58]}{uuid.uuid4().hex[:5]}"
            if not name:
                raise StatusError(422, "Invalid", f"{rt.kind}.metadata.name: Required value")
            if rt == PODS and self.pod_admission:
                self._admit_pod(name, obj)
            if rt in self.admission:
                obj = self.admission[rt](name, obj)
                meta = _meta(obj)
            key = (ns if rt.namespaced else "", name)
            if key in self.objects[rt]:
                raise StatusError(
                    409,
                    "AlreadyExists",
                    f'{rt.plural} "{name}" already exists',
                    {"name": name, "group": rt.group, "kind": rt.plural},
                )
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            self._stamp(rt, obj)
            self.objects[rt][key] = obj
            self._record(rt, "ADDED", obj, None)
            return obj

    def create_many(self, rt: ResourceType, objs: Iterable[Obj]) -> int:
        """Bulk load without per-object copies or history-waiter wakeups (benchmarks)."""
        n = 0
        created = _now()
        with self.cond:
            for obj in objs:
                meta = obj["metadata"]
                ns = meta.get("namespace", "") if rt.namespaced else ""
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", created)
                obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
                self._stamp(rt, obj)
                self.objects[rt][(ns, meta["name"])] = obj
                self.history.append(Change(self.rv, rt, "ADDED", obj, None))
                n += 1
            self.cond.notify_all()
        return n

    def replace(
        self, rt: ResourceType, ns: str, name: str, body: Obj, *, check_rv: bool = True
    ) -> Obj:
        obj = copy.deepcopy(body)
        meta = _meta(obj)
        with self.cond:
            key = (ns if rt.namespaced else "", name)
            current = self.objects[rt].get(key)
            if current is None:
                raise not_found(rt, name)
            wanted = meta.get("resourceVersion")
            if check_rv and wanted and wanted != current["metadata"]["resourceVersion"]:
                raise conflict(
                    rt,
                    name,
                    "the object has been modified; please apply your changes to the "
                    "latest version and try again",
                )
            for keep in ("uid", "creationTimestamp", "name", "namespace"):
                if keep in current["metadata"]:
                    meta[keep] = current["metadata"][keep]
            if rt in self.status_subresource:
                obj.pop("status", None)
                if "status" in current:
                    obj["status"] = copy.deepcopy(current["status"])
            if rt in self.admission:
                obj = self.admission[rt](name, obj)
            self._stamp(rt, obj)
            self.objects[rt][key] = obj
            self._record(rt, "MODIFIED", obj, current)
            return obj

    def update(self, rt: ResourceType, ns: str, name: str, change: Callable[[Obj], Obj]) -> Obj:
        """Read-modify-write under the lock: ``change`` gets a deep copy and returns the new one."""
        with self.cond:
            key = (ns if rt.namespaced else "", name)
            current = self.objects[rt].get(key)
            if current is None:
                raise not_found(rt, name)
            obj = change(copy.deepcopy(current))
            self._stamp(rt, obj)
            self.objects[rt][key] = obj
            self._record(rt, "MODIFIED", obj, current)
            return obj

    def patch(self, rt: ResourceType, ns: str, name: str, patch: Obj) -> Obj:
        """A merge patch.  ``metadata.resourceVersion`` in the patch is a precondition, as in
        kube-apiserver (the patched object carries it into an optimistic-concurrency update):
        409 Conflict when the object has changed since (ref: controller-runtime
        ``client.MergeFromWithOptimisticLock``)."""
        meta = patch.get("metadata") if isinstance(patch, dict) else None
        wanted = meta.get("resourceVersion") if isinstance(meta, dict) else None

        def apply(obj: Obj) -> Obj:
            if wanted and wanted != obj["metadata"]["resourceVersion"]:
                raise conflict(
                    rt,
                    name,
                    "the object has been modified; please apply your changes to the "
                    "latest version and try again",
                )
            patched: Obj = merge_patch(obj, patch)
            for keep in ("uid", "name", "namespace", "creationTimestamp"):
                if keep in obj["metadata"]:
                    patched["metadata"][keep] = obj["metadata"][keep]
            return patched

        return self.update(rt, ns, name, apply)

    def delete(
        self, rt: ResourceType, ns: str, name: str, options: Mapping[str, Any] | None = None
    ) -> Obj:
        """DELETE with ``DeleteOptions``: ``preconditions`` (uid, resourceVersion; 409 Conflict
        when they do not hold) and, for a pod bound to a node, graceful deletion: a grace
        period > 0 (the options', else the pod's ``terminationGracePeriodSeconds``, default 30)
        only sets ``deletionTimestamp`` and the kubelet (``finish_termination`` here) removes
        it later; 0, or an unbound pod, deletes at once.  Without ``options`` (a direct
        storage call from a test) the object goes at once, as if the kubelet had finished.
        ref: apiserver registry/generic/registry/store.go Delete; pod strategy
        CheckGracefulDelete."""
        graceful = options is not None
        options = options or {}
        with self.cond:
            key = (ns if rt.namespaced else "", name)
            current = self.objects[rt].get(key)
            if current is None:
                raise not_found(rt, name)
            pre = options.get("preconditions") or {}
            meta = current["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                    f"meta: {meta.get('uid')}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise conflict(
                    rt,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
            if graceful and rt == PODS and (current.get("spec") or {}).get("nodeName"):
                grace = options.get("gracePeriodSeconds")
                if grace is None:
                    grace = (current.get("spec") or {}).get(
                        "terminationGracePeriodSeconds", DEFAULT_GRACE
                    )
                if int(grace) > 0:
                    if meta.get("deletionTimestamp"):
                        return current
                    marked = copy.deepcopy(current)
                    marked["metadata"]["deletionTimestamp"] = _now()
                    marked["metadata"]["deletionGracePeriodSeconds"] = int(grace)
                    self._stamp(rt, marked)
                    self.objects[rt][key] = marked
                    self._record(rt, "MODIFIED", marked, current)
                    return marked
            del self.objects[rt][key]
            # The DELETED event carries the last state with a new resourceVersion.
            self.rv += 1
            gone = {**current, "metadata": {**current["metadata"], "resourceVersion": str(self.rv)}}
            self._record(rt, "DELETED", gone, current)
            return gone

    def finish_termination(self, ns: str, name: str) -> Obj:
        """What the kubelet does once a terminating pod's containers stopped: delete it."""
        return self.delete(PODS, ns, name, {"gracePeriodSeconds": 0})

    def collect_garbage(self) -> int:
        """What kube-controller-manager's garbage collector does (background propagation):
        delete namespaced objects every one of whose ownerReferences names a UID that no
        longer exists.  Returns how many were deleted.
        ref: https://kubernetes.io/docs/concepts/architecture/garbage-collection/"""
        with self.cond:
            alive = {
                obj["metadata"].get("uid")
                for objs in self.objects.values()
                for obj in objs.values()
            }
            orphans = [
                (rt, key)
                for rt, objs in self.objects.items()
                for key, obj in objs.items()
                if (refs := obj["metadata"].get("ownerReferences"))
                and all(r.get("uid") not in alive for r in refs)
            ]
        for rt, (ns, name) in orphans:
            self.delete(rt, ns, name, {"gracePeriodSeconds": 0})
        return len(orphans)

    def bind(self, ns: str, name: str, binding: Obj) -> None:
        """The ``pods/binding`` subresource: set ``spec.nodeName`` once.
        ref: pkg/registry/core/pod/storage/storage.go (BindingREST.Create, assignPod)."""
        if self.hooks.fail_bind is not None:
            raise self.hooks.fail_bind
        target = binding.get("target") or {}
        node = target.get("name") if isinstance(target, dict) else None
        if not node:
            raise StatusError(422, "Invalid", "Binding.target.name: Required value")
        want_uid = (binding.get("metadata") or {}).get("uid")

        def assign(pod: Obj) -> Obj:
            if want_uid and pod["metadata"].get("uid") != want_uid:
                raise conflict(
                    PODS,
                    name,
                    f"Precondition failed: UID in precondition: {want_uid}, UID in "
                    f"object meta: {pod['metadata'].get('uid')}",
                )
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise conflict(
                    PODS, name, f"pod {name} is already assigned to node {spec['nodeName']!r}"
                )
            spec["nodeName"] = node
            conditions = pod.setdefault("status", {}).setdefault("conditions", [])
            conditions.append({"type": "PodScheduled", "status": "True"})
            return pod

        self.update(PODS, ns, name, assign)

    # --- lists ---

    def list(
        self,
        rt: ResourceType,
        ns: str | None,
        *,
        limit: int = 0,
        token: str = "",
        labels: list[Requirement] | None = None,
        fields: list[Requirement] | None = None,
    ) -> tuple[list[Obj], str, str]:
        """One page: (items, resourceVersion, continue)."""
        with self.cond:
            if token:
                rv, snap_id, start = decode_continue(token)
                snap = self._lists.get(snap_id)
                if snap is None or rv < self.floor or snap.rv != rv:
                    raise expired(
                        "The provided continue parameter is too old to display a consistent list "
                        "result. You can start a new list without the continue parameter."
                    )
            else:
                rv, start = self.rv, 0
                chosen = [
                    obj
                    for (obj_ns, _), obj in sorted(self.objects[rt].items())
                    if (ns is None or obj_ns == ns) and matches(obj, labels or [], fields or [])
                ]
                snap_id = next(self._list_ids)
                snap = _ListSnapshot(rv, chosen)
                if limit and len(chosen) > limit:
                    self._lists[snap_id] = snap
                    while len(self._lists) > self._max_lists:
                        self._lists.popitem(last=False)
            end = start + limit if limit else len(snap.items)
            page = snap.items[start:end]
            more = end < len(snap.items)
            if not more:
                self._lists.pop(snap_id, None)
            next_token = encode_continue(rv, snap_id, end) if more else ""
        return page, str(rv), next_token

    # --- history ---

    def position_after(self, rv: int) -> int:
        """Absolute history position of the first change after ``rv`` (lock held)."""
        lo, hi = 0, len(self.history)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.history[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return self.offset + lo

    def compact(self, rv: int | None = None) -> int:
        """Forget history up to ``rv`` (default: everything so far).  Returns the new floor."""
        with self.cond:
            rv = self.rv if rv is None else min(rv, self.rv)
            keep = self.position_after(rv) - self.offset
            self.history = self.history[keep:]
            self.offset += keep
            self.floor = max(self.floor, rv)
            self._lists.clear()
            self.cond.notify_all()
            return self.floor

    def reset_versions(self, first_rv: int) -> None:
        """Renumber every object from ``first_rv`` with no history, as a restored etcd would."""
        with self.cond:
            self.rv = first_rv
            for objs in self.objects.values():
                for key, obj in sorted(objs.items()):
                    self.rv += 1
                    meta = {**obj["metadata"], "resourceVersion": str(self.rv)}
                    objs[key] = {**obj, "metadata": meta}
            self.offset += len(self.history)
            self.history = []
            self.floor = self.rv
            self._lists.clear()
            self.epoch += 1
            self.cond.notify_all()
