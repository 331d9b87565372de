"""The ``capacityBuffer`` backend: one Cluster Autoscaler CapacityBuffer per placeholder pool.

A CapacityBuffer (``autoscaling.x-k8s.io/v1beta1``) asks the autoscaler itself to keep room
for ``spec.replicas`` chunks shaped like a PodTemplate, instead of this controller keeping
pause pods (ref: kubernetes/autoscaler
``cluster-autoscaler/apis/capacitybuffer/autoscaling.x-k8s.io/v1beta1/types.go`` and the CRD
``cluster-autoscaler/apis/config/crd/autoscaling.x-k8s.io_capacitybuffers.yaml``).  The API:

- ``spec.podTemplateRef.name``: a PodTemplate in the same namespace, the shape of one chunk
  (exactly one of ``podTemplateRef``/``scalableRef``; with ``podTemplateRef``, ``replicas`` or
  ``limits`` must be set: the CRD's CEL rules);
- ``spec.replicas`` (int32 >= 0): how many chunks;
- ``spec.provisioningStrategy``: default ``buffer.x-k8s.io/active-capacity``;
- ``status`` (replicas, conditions ``Ready``...) belongs to the autoscaler: never written here.

So a pool is two objects, both named ``user-placeholder-<pool>``: the PodTemplate (the pool's
placeholder pod spec, exactly what the pods backend would create: requests, node selector,
tolerations, affinity, priority) and the CapacityBuffer pointing at it with ``replicas`` =
the plan's ``desired``.  Both carry this controller's labels and its owner reference, so they
are found again after a restart (``prune``) and garbage-collected with the controller.

Writes are level-triggered and conditional: read, compare, then create or replace with the
read ``resourceVersion``; a 409 Conflict (someone wrote in between) re-reads and tries again,
a few times.  An object of that name without our labels is never touched (``BufferError``).

This module decides nothing: the plan (static, adaptive, schedule...) is computed by the
controller as for pods; ``BufferBackend.sync(pool, plan)`` is what the controller's loop calls
for each pool when ``backend: capacityBuffer`` is on, ``.prune()`` once per leadership
(placeholders/controller.py; docs/ecosystem.md says how).  A node-sized pool's template keeps
its requests while the plan's stay within ``NODE_SIZE_TOLERANCE`` above them (the core's
``within_tolerance``, as the pods backend keeps such pods), so a small drift in the measured
DaemonSet overhead does not rewrite the PodTemplate on every pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from scheduler_extender.core.placeholders import PoolPlan, within_tolerance
from scheduler_extender.core.types import Resources
from scheduler_extender.kube.client import ApiError, CustomResource, KubeClient
from scheduler_extender.kube.convert import ConversionError, resources_from
from scheduler_extender.placeholders.config import ControllerConfig, PoolModel
from scheduler_extender.placeholders.pods import (
    COMPONENT,
    COMPONENT_LABEL,
    CONTROLLER_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    POOL_LABEL,
    SAFE_TO_EVICT,
    SPEC_HASH,
    OwnerRef,
    controller_id,
    pod_spec,
    spec_hash,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CAPACITY_BUFFERS = CustomResource("autoscaling.x-k8s.io", "v1beta1", "capacitybuffers")
KIND = "CapacityBuffer"
API_VERSION = f"{CAPACITY_BUFFERS.group}/{CAPACITY_BUFFERS.version}"
#: ``spec.replicas`` is an int32.
MAX_REPLICAS = 2**31 - 1
#: Conflicting writes retried before giving up until the next pass.
MAX_ATTEMPTS = 4

#: How pools hold spare capacity (``ControllerConfig.backend``).
Backend = Literal["pods", "capacityBuffer"]


class BufferError(RuntimeError):
    """A pool's buffer could not be written (the message says what and why)."""


class BuffersUnavailableError(BufferError):
    """The API server does not serve CapacityBuffers and the config says refuse."""


def object_name(pool: str) -> str:
    """The PodTemplate's and the CapacityBuffer's name (a pool name is a DNS label, so this is
    a valid name)."""
    return f"user-placeholder-{pool}"


def labels(config: ControllerConfig, pool: str) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        CONTROLLER_LABEL: controller_id(config),
        POOL_LABEL: pool,
    }


def selector(config: ControllerConfig) -> str:
    """The label selector of this controller's buffers and templates (all pools)."""
    return f"{CONTROLLER_LABEL}={controller_id(config)},{MANAGED_BY_LABEL}={MANAGED_BY}"


def _meta(config: ControllerConfig, pool: str, owner: OwnerRef | None) -> Obj:
    meta: Obj = {
        "name": object_name(pool),
        "namespace": config.namespace,
        "labels": labels(config, pool),
    }
    if owner is not None:
        meta["ownerReferences"] = [owner.json()]
    return meta


def build_pod_template(
    config: ControllerConfig, pool: PoolModel, requests: Resources, owner: OwnerRef | None
) -> Obj:
    """The ``v1.PodTemplate`` of one chunk: the pool's placeholder pod, as the pods backend
    would create it (same spec, labels and safe-to-evict annotation)."""
    template = {
        "metadata": {
            "labels": {COMPONENT_LABEL: COMPONENT, **labels(config, pool.name)},
            "annotations": {SAFE_TO_EVICT: "true"},
        },
        "spec": pod_spec(config, pool, requests),
    }
    meta = _meta(config, pool.name, owner)
    meta["annotations"] = {SPEC_HASH: spec_hash(template)}
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta, "template": template}


def build_buffer(config: ControllerConfig, pool: str, replicas: int, owner: OwnerRef | None) -> Obj:
    """The pool's CapacityBuffer with ``replicas`` chunks of its PodTemplate."""
    if not 0 <= replicas <= MAX_REPLICAS:
        raise ValueError(f"pools.{pool}: replicas {replicas} out of int32 range")
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": _meta(config, pool, owner),
        "spec": {
            "provisioningStrategy": config.capacity_buffer.provisioning_strategy,
            "podTemplateRef": {"name": object_name(pool)},
            "replicas": replicas,
        },
    }


# --- discovery -------------------------------------------------------------------------------


def buffers_served(kube: KubeClient, *, timeout: float = 10.0) -> bool:
    """Whether the API server serves ``capacitybuffers`` in autoscaling.x-k8s.io/v1beta1
    (discovery of the group version; 404 means the CRD, or that version of it, is absent)."""
    try:
        group, version = CAPACITY_BUFFERS.group, CAPACITY_BUFFERS.version
        found = kube.api_resources(group, version, timeout=timeout)
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise
    return any(r.get("name") == CAPACITY_BUFFERS.plural for r in found.get("resources") or ())


def choose_backend(config: ControllerConfig, kube: KubeClient) -> Backend:
    """The backend to run: ``config.backend``, unless it is ``capacityBuffer`` and the API
    server does not serve CapacityBuffers; then ``pods`` (logged as a warning) or
    ``BuffersUnavailableError``, as ``capacityBuffer.fallback`` says.  Called once at startup."""
    if config.backend != "capacityBuffer":
        return config.backend
    if buffers_served(kube):
        log.info("placeholders: backend capacityBuffer (%s %s served)", API_VERSION, KIND)
        return "capacityBuffer"
    problem = (
        f"backend capacityBuffer: the API server does not serve {KIND} "
        f"({API_VERSION}, resource {CAPACITY_BUFFERS.plural}): install the Cluster Autoscaler's "
        "CapacityBuffer CRD (and run an autoscaler with capacity buffers enabled)"
    )
    if config.capacity_buffer.fallback == "refuse":
        raise BuffersUnavailableError(f"{problem}; capacityBuffer.fallback is refuse")
    log.warning("%s; falling back to placeholder pods (capacityBuffer.fallback: pods)", problem)
    return "pods"


# --- the backend -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one sync did to each object (created, updated or unchanged), the 409s met, and
    the buffer's status as last read or written: ``status.replicas`` (chunks the autoscaler
    reports provisioned; None until it reports) and its ``Ready`` condition (None: absent)."""

    template: str
    buffer: str
    conflicts: int = 0
    status_replicas: int | None = None
    ready: bool | None = None


class BufferBackend:
    """Keeps one CapacityBuffer (and its PodTemplate) per pool, through ``KubeClient``."""

    def __init__(
        self,
        config: ControllerConfig,
        kube: KubeClient,
        *,
        owner: Callable[[], OwnerRef | None] = lambda: None,
        timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.kube = kube
        self.owner = owner
        self.timeout = timeout
        self.pools = {p.name: p for p in config.pools}

    # --- entry points ---

    def sync(self, pool: str, plan: PoolPlan, *, tolerance: float = 0.0) -> SyncResult | None:
        """Make the pool's PodTemplate carry ``plan.requests`` and its buffer ``plan.desired``
        chunks.  None (nothing written) when the plan has no size yet (a node-sized pool
        before any node was seen), as the pods backend leaves the pool's pods alone then.
        With ``tolerance`` > 0 (node-sized pools), a template otherwise the same whose requests
        are at most that share below the plan's is left as it is.
        Every failure is a ``BufferError`` naming the object (the next pass retries)."""
        model = self.pools.get(pool)
        if model is None:
            raise BufferError(f"pool {pool!r} is not in the config")
        if plan.requests is None:
            return None
        owner = self.owner()
        kube, ns, name, t = self.kube, self.config.namespace, object_name(pool), self.timeout
        same_template = _same_template
        if tolerance > 0:
            same_template = partial(self._tolerated_template, model, plan.requests, tolerance)
        template, conflicts, _ = self._apply(
            build_pod_template(self.config, model, plan.requests, owner),
            get=lambda: kube.get_pod_template(ns, name, timeout=t),
            create=lambda body: kube.create_pod_template(ns, body, timeout=t),
            replace=lambda body: kube.replace_pod_template(ns, name, body, timeout=t),
            same=same_template,
            merge=_merge_template,
        )
        buffer, n, stored = self._apply(
            build_buffer(self.config, pool, plan.desired, owner),
            get=lambda: kube.get_custom(CAPACITY_BUFFERS, ns, name, timeout=t),
            create=lambda body: kube.create_custom(CAPACITY_BUFFERS, ns, body, timeout=t),
            replace=lambda body: kube.replace_custom(CAPACITY_BUFFERS, ns, name, body, timeout=t),
            same=_same_buffer,
            merge=_merge_buffer,
        )
        conflicts += n
        if buffer != "unchanged":
            log.info("pool %s: CapacityBuffer %s, replicas %d", pool, buffer, plan.desired)
        replicas, ready = _status(stored)
        return SyncResult(template, buffer, conflicts, replicas, ready)

    def _tolerated_template(
        self, model: PoolModel, requests: Resources, tolerance: float, current: Obj, desired: Obj
    ) -> bool:
        """``_same_template``, or the stored template is the one ``build_pod_template`` makes
        for its own requests, and those are within ``tolerance`` below ``requests``."""
        if _same_template(current, desired):
            return True
        containers = ((current.get("template") or {}).get("spec") or {}).get("containers")
        try:
            first = (containers or [{}])[0]
            got = resources_from((first.get("resources") or {}).get("requests") or {}, "requests")
        except (ConversionError, AttributeError, KeyError, TypeError):
            return False
        old = Resources(got.cpu, got.memory, 1, got.scalar)
        rebuilt = build_pod_template(self.config, model, old, None)
        rebuilt["metadata"] = {
            **desired["metadata"],
            "annotations": rebuilt["metadata"]["annotations"],
        }
        return _same_meta(current, rebuilt) and within_tolerance(old, requests, tolerance)

    def remove(self, pool: str) -> bool:
        """Delete the pool's CapacityBuffer, then its PodTemplate (ours only; gone already is
        fine).  True when something was deleted; ``BufferError`` when the API fails."""
        try:
            return self._remove(pool)
        except ApiError as exc:
            raise BufferError(f"removing pool {pool}'s buffer: {exc}") from exc

    def _remove(self, pool: str) -> bool:
        ns, name = self.config.namespace, object_name(pool)
        deleted = False
        current = self._get(
            lambda: self.kube.get_custom(CAPACITY_BUFFERS, ns, name, timeout=self.timeout)
        )
        if current is not None and self._ours(current, pool):
            deleted |= self._delete(
                lambda uid: self.kube.delete_custom(
                    CAPACITY_BUFFERS, ns, name, uid=uid, timeout=self.timeout
                ),
                current,
            )
        template = self._get(lambda: self.kube.get_pod_template(ns, name, timeout=self.timeout))
        if template is not None and self._ours(template, pool):
            deleted |= self._delete(
                lambda uid: self.kube.delete_pod_template(ns, name, uid=uid, timeout=self.timeout),
                template,
            )
        if deleted:
            log.info("pool %s: CapacityBuffer and PodTemplate deleted", pool)
        return deleted

    def prune(self, keep: Iterable[str] | None = None) -> list[str]:
        """Remove the buffers of pools this controller made that are no longer configured
        (found by label, e.g. after a restart with a pool dropped).  Returns their pools."""
        wanted = set(self.pools if keep is None else keep)
        try:
            page = self.kube.list_custom(
                CAPACITY_BUFFERS, self.config.namespace, label_selector=selector(self.config),
                timeout=self.timeout,
            )  # fmt: skip
        except ApiError as exc:
            raise BufferError(f"listing this controller's CapacityBuffers: {exc}") from exc
        gone = sorted(
            {
                str(((obj.get("metadata") or {}).get("labels") or {}).get(POOL_LABEL) or "")
                for obj in page.items
            }
            - wanted
            - {""}
        )
        for pool in gone:
            self.remove(pool)
        return gone

    # --- helpers ---

    def _ours(self, obj: Obj, pool: str) -> bool:
        have = (obj.get("metadata") or {}).get("labels") or {}
        return all(have.get(k) == v for k, v in labels(self.config, pool).items())

    def _get(self, get: Callable[[], Obj]) -> Obj | None:
        try:
            return get()
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def _delete(self, delete: Callable[[str], Obj], current: Obj) -> bool:
        uid = str((current.get("metadata") or {}).get("uid") or "")
        try:
            delete(uid)
        except ApiError as exc:
            if exc.code in (404, 409):  # gone, or the name now holds another object
                return False
            raise
        return True

    def _apply(
        self,
        desired: Obj,
        *,
        get: Callable[[], Obj],
        create: Callable[[Obj], Obj],
        replace: Callable[[Obj], Obj],
        same: Callable[[Obj, Obj], bool],
        merge: Callable[[Obj, Obj], Obj],
    ) -> tuple[str, int, Obj]:
        """Create, replace (conditionally on the read resourceVersion) or leave ``desired``;
        returns (what happened, conflicts met, the object as the API server last returned
        it)."""
        kind, name = desired["kind"], desired["metadata"]["name"]
        conflicts = 0
        for _ in range(MAX_ATTEMPTS):
            try:
                current = self._get(get)
                if current is None:
                    return "created", conflicts, create(desired)
                if not self._ours(current, desired["metadata"]["labels"][POOL_LABEL]):
                    raise BufferError(
                        f"{kind} {self.config.namespace}/{name} exists and is not this "
                        f"controller's (labels {selector(self.config)} missing): not touching it"
                    )
                if same(current, desired):
                    return "unchanged", conflicts, current
                return "updated", conflicts, replace(merge(current, desired))
            except ApiError as exc:
                # 409: AlreadyExists (a create raced another writer) or Conflict (a stale
                # resourceVersion); either way read again and redo the decision.
                if exc.code != 409:
                    raise BufferError(f"{kind} {self.config.namespace}/{name}: {exc}") from exc
                conflicts += 1
        raise BufferError(
            f"{kind} {self.config.namespace}/{name}: still conflicting after {MAX_ATTEMPTS} "
            "attempts; the next pass retries"
        )


def _status(buffer: Obj) -> tuple[int | None, bool | None]:
    """The autoscaler's ``status.replicas`` and ``Ready`` condition (None when absent)."""
    status = buffer.get("status") or {}
    replicas = status.get("replicas")
    ready = next(
        (
            c.get("status") == "True"
            for c in status.get("conditions") or ()
            if c.get("type") == "Ready"
        ),
        None,
    )
    return (replicas if isinstance(replicas, int) else None), ready


def _same_buffer(current: Obj, desired: Obj) -> bool:
    spec = current.get("spec") or {}
    same_spec = all(spec.get(k) == v for k, v in desired["spec"].items())
    return same_spec and _same_meta(current, desired)


def _same_template(current: Obj, desired: Obj) -> bool:
    """By the spec-hash annotation, not by comparing templates: the API server fills in
    defaults (restartPolicy, dnsPolicy, imagePullPolicy...), so a stored template never equals
    the one we send, and comparing them would rewrite it on every pass."""
    return _same_meta(current, desired)


def _same_meta(current: Obj, desired: Obj) -> bool:
    """Our labels and annotations present with our values, and our owner reference."""
    meta = current.get("metadata") or {}
    want = desired["metadata"]
    for key in ("labels", "annotations"):
        have = meta.get(key) or {}
        if any(have.get(k) != v for k, v in (want.get(key) or {}).items()):
            return False
    return (meta.get("ownerReferences") or []) == (want.get("ownerReferences") or [])


def _merge_meta(current: Obj, desired: Obj) -> Obj:
    """The desired object on top of the current one's metadata (resourceVersion: the
    conditional write; other writers' labels and annotations stay)."""
    meta = dict(current.get("metadata") or {})
    want = desired["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), **want["labels"]}
    if "annotations" in want:
        meta["annotations"] = {**(meta.get("annotations") or {}), **want["annotations"]}
    if "ownerReferences" in want:
        meta["ownerReferences"] = want["ownerReferences"]
    return meta


def _merge_buffer(current: Obj, desired: Obj) -> Obj:
    # spec is ours; status (the autoscaler's) is not sent: PUT on the main resource ignores
    # it anyway with the status subresource enabled.
    spec = {**(current.get("spec") or {}), **desired["spec"]}
    return {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": _merge_meta(current, desired),
        "spec": spec,
    }


def _merge_template(current: Obj, desired: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": _merge_meta(current, desired),
        "template": desired["template"],
    }


__all__ = [
    "API_VERSION",
    "CAPACITY_BUFFERS",
    "Backend",
    "BufferBackend",
    "BufferError",
    "BuffersUnavailableError",
    "SyncResult",
    "buffers_served",
    "build_buffer",
    "build_pod_template",
    "choose_backend",
    "object_name",
]
