"""The placeholder pod: what the controller creates, and how it recognises its own pods.

A placeholder is a pause container that requests room and does nothing:

- label ``component: user-placeholder`` (the z2jh convention the extender and z2jh's own tools
  recognise) and the PriorityClass of the chart (-10), so users preempt it;
- labels unique to this controller (its Lease name) and pool: the only pods it lists, and the
  only pods it ever deletes, after checking the labels and the owner again;
- ``cluster-autoscaler.kubernetes.io/safe-to-evict: "true"``: the autoscaler may remove a node
  that holds only placeholders (a pod without a ReplicaSet/StatefulSet/... controller otherwise
  blocks scale-down; ref: kubernetes/autoscaler cluster-autoscaler/FAQ.md, "What types of pods
  can prevent CA from removing a node?");
- ``terminationGracePeriodSeconds: 0``: a preempted placeholder is gone at once (the scheduler
  waits for victims to terminate before the preemptor can bind);
- ``automountServiceAccountToken: false`` and a restricted security context (non-root, no
  privilege escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root): the
  Pod Security Standards' "restricted" profile;
- an ownerReference to the controller's Deployment (or a ConfigMap), so the garbage collector
  deletes every placeholder when the controller is uninstalled or disabled: nothing keeps
  holding nodes with nobody managing it.  ``blockOwnerDeletion`` is false, which needs no
  permission on the owner's finalizers.

The spec hash (an annotation) covers everything that shapes the pod: a pool whose requests,
placement or image change gets its pods replaced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from scheduler_extender.core.placeholders import Existing
from scheduler_extender.core.types import Pod, Resources
from scheduler_extender.kube.convert import ConversionError, pod_from_json
from scheduler_extender.placeholders.config import ControllerConfig, PoolModel

Obj = dict[str, Any]

COMPONENT_LABEL = "component"
COMPONENT = "user-placeholder"
CONTROLLER_LABEL = "scheduler-extender.jupyter.org/controller"
POOL_LABEL = "scheduler-extender.jupyter.org/pool"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "scheduler-extender"
SPEC_HASH = "scheduler-extender.jupyter.org/spec-hash"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
#: The pause image's user (registry.k8s.io/pause is built to run as 65535).
PAUSE_UID = 65535
_LABEL_VALUE_MAX = 63


def controller_id(config: ControllerConfig) -> str:
    """A label value naming this controller: its Lease name, or a hash of it when the name
    is not a valid label value (longer than 63 characters or containing dots at the ends)."""
    name = config.lease_name
    if len(name) <= _LABEL_VALUE_MAX and name[0].isalnum() and name[-1].isalnum():
        return name
    return "lease-" + hashlib.sha256(name.encode()).hexdigest()[:32]


def selector(config: ControllerConfig) -> str:
    """The label selector of this controller's pods (all pools)."""
    return f"{CONTROLLER_LABEL}={controller_id(config)},{COMPONENT_LABEL}={COMPONENT}"


def quantity_text(resources: Resources) -> dict[str, str]:
    """``Resources`` as a Kubernetes ResourceList (cpu in millicores, memory in bytes); zero
    cpu and memory are left out, as a request of 0 means nothing."""
    out: dict[str, str] = {}
    if resources.cpu:
        out["cpu"] = f"{resources.cpu}m"
    if resources.memory:
        out["memory"] = str(resources.memory)
    for name, amount in sorted(resources.scalar.items()):
        out[name] = str(amount)
    return out


@dataclass(frozen=True, slots=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str

    def json(self) -> Obj:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": False,
            "blockOwnerDeletion": False,
        }


def pod_spec(config: ControllerConfig, pool: PoolModel, requests: Resources) -> Obj:
    """The pod's spec for ``requests`` (the part the spec hash covers)."""
    spec: Obj = {
        "schedulerName": config.scheduler_name,
        "priorityClassName": config.priority_class_name,
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PAUSE_UID,
            "runAsGroup": PAUSE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "pause",
                "image": config.image,
                "resources": {"requests": quantity_text(requests)},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
    if pool.node_selector:
        spec["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        spec["tolerations"] = [dict(t) for t in pool.tolerations]
    if pool.affinity:
        spec["affinity"] = dict(pool.affinity)
    return spec


def spec_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def build_pod(
    config: ControllerConfig, pool: PoolModel, requests: Resources, owner: OwnerRef | None
) -> Obj:
    """A placeholder pod of ``pool`` requesting ``requests`` (a ``generateName`` pod)."""
    spec = pod_spec(config, pool, requests)
    meta: Obj = {
        "generateName": f"user-placeholder-{pool.name}-",
        "namespace": config.namespace,
        "labels": {
            COMPONENT_LABEL: COMPONENT,
            MANAGED_BY_LABEL: MANAGED_BY,
            CONTROLLER_LABEL: controller_id(config),
            POOL_LABEL: pool.name,
        },
        "annotations": {SAFE_TO_EVICT: "true", SPEC_HASH: spec_hash(spec)},
    }
    if owner is not None:
        meta["ownerReferences"] = [owner.json()]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def template_pod(config: ControllerConfig, pool: PoolModel) -> Pod:
    """The pool's placeholder as the core sees it (requests = one user's guarantee): its node
    selector, required affinity and tolerations decide which nodes belong to the pool."""
    obj = build_pod(config, pool, pool.user_requests(), None)
    obj["metadata"]["uid"] = f"template-{pool.name}"
    try:
        return pod_from_json(obj)
    except ConversionError as exc:
        raise ValueError(f"pools.{pool.name}: {exc}") from None


def is_ours(obj: Mapping[str, Any], config: ControllerConfig, pool: str | None = None) -> bool:
    """The double check before a delete: our component, controller and pool labels, and (with
    an owner configured) an ownerReference to an object of the owner's kind and name."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(COMPONENT_LABEL) != COMPONENT:
        return False
    if labels.get(CONTROLLER_LABEL) != controller_id(config):
        return False
    if pool is not None and labels.get(POOL_LABEL) != pool:
        return False
    if config.owner is not None:
        refs = meta.get("ownerReferences") or []
        return any(
            isinstance(r, Mapping)
            and r.get("kind") == config.owner.kind
            and r.get("name") == config.owner.name
            for r in refs
        )
    return True


def existing(obj: Mapping[str, Any], created: float) -> Existing:
    """A pod as ``core.placeholders.reconcile_pool`` sees it."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return Existing(
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        created=created,
        node=str(spec.get("nodeName") or ""),
        spec_hash=str((meta.get("annotations") or {}).get(SPEC_HASH) or ""),
        terminating=bool(meta.get("deletionTimestamp")),
        finished=status.get("phase") in ("Succeeded", "Failed"),
    )
