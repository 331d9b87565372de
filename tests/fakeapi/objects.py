"""Node and Pod JSON as a real cluster serves them, for loading the fake API server.

Shapes follow what kube-apiserver returns for a z2jh user pool: user nodes labelled
``hub.jupyter.org/node-purpose=user`` and tainted ``hub.jupyter.org/dedicated=user:NoSchedule``
with a few images; KubeSpawner-like user pods with env, volumes, tolerations, node affinity and a
status block, so that list pages weigh about what they weigh in production (a few KiB per pod).
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakeapi.store import NODES, PODS, ApiStore

Obj = dict[str, Any]
IMAGE = "quay.io/jupyter/scipy-notebook:2024-07-29"
USER_TOLERATIONS = [
    {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
    {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]  # fmt: skip


# Shared by every generated pod (the store never mutates objects in place), which keeps a
# 150,000-pod fake cluster small and quick to build.
USER_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": "hub.jupyter.org/node-purpose",
                            "operator": "In",
                            "values": ["user"],
                        }
                    ]
                }
            ]
        }
    }
}
INIT_CONTAINERS = [
    {
        "name": "block-cloud-metadata",
        "image": "quay.io/jupyterhub/k8s-network-tools:4.0.0",
        "command": ["iptables", "--append", "OUTPUT", "--protocol", "tcp", "--destination", "169.254.169.254", "--destination-port", "80", "--jump", "DROP"],
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}, "privileged": True, "runAsUser": 0},
        "resources": {},
    }
]  # fmt: skip
PORTS = [{"containerPort": 8888, "name": "notebook-port", "protocol": "TCP"}]
CONTAINER_SECURITY = {"runAsUser": 1000, "allowPrivilegeEscalation": False}
LIMITS = {"cpu": "4", "memory": "2Gi"}


def node_json(
    name: str,
    *,
    cpu: str = "8",
    memory: str = "52Gi",
    pods: int = 110,
    user: bool = True,
    unschedulable: bool = False,
    images: tuple[str, ...] = (IMAGE,),
) -> Obj:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "n1-highmem-8",
        "topology.kubernetes.io/zone": "us-central1-b",
    }
    spec: Obj = {"podCIDR": "10.4.0.0/24", "providerID": f"gce://project/us-central1-b/{name}"}
    if user:
        labels["hub.jupyter.org/node-purpose"] = "user"
        spec["taints"] = [
            {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}
        ]
    if unschedulable:
        spec["unschedulable"] = True
    allocatable = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "95Gi"}
    return {
        "metadata": {"name": name, "labels": labels, "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": spec,
        "status": {
            "capacity": dict(allocatable),
            "allocatable": allocatable,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
            ],
            "images": [{"names": [f"{img}", f"{img.split(':')[0]}@sha256:{'ab' * 32}"], "sizeBytes": 1_900_000_000} for img in images],
            "nodeInfo": {
                "architecture": "amd64", "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                "containerRuntimeVersion": "containerd://2.1.0", "kernelVersion": "6.6.56+",
                "kubeProxyVersion": "", "kubeletVersion": "v1.36.0", "machineID": uuid.uuid5(uuid.NAMESPACE_URL, name).hex,
                "operatingSystem": "linux", "osImage": "Container-Optimized OS from Google", "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
            },
        },
    }  # fmt: skip


def pod_json(
    name: str,
    *,
    namespace: str = "jhub",
    node: str = "",
    cpu: str = "50m",
    memory: str = "512Mi",
    phase: str = "Running",
    priority: int = 0,
    labels: dict[str, str] | None = None,
    uid: str | None = None,
    image: str = IMAGE,
) -> Obj:
    user = name.removeprefix("jupyter-")
    spec: Obj = {
        "schedulerName": "user-scheduler",
        "priority": priority,
        "priorityClassName": "jhub-default-priority"
        if priority == 0
        else "jhub-user-placeholder-priority",
        "restartPolicy": "OnFailure",
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "securityContext": {"fsGroup": 100},
        "tolerations": USER_TOLERATIONS,
        "affinity": USER_AFFINITY,
        "initContainers": INIT_CONTAINERS,
        "containers": [
            {
                "name": "notebook",
                "image": image,
                "args": ["jupyterhub-singleuser"],
                "ports": PORTS,
                "env": [
                    {"name": "JUPYTERHUB_API_URL", "value": "http://hub:8081/hub/api"},
                    {"name": "JUPYTERHUB_USER", "value": user},
                    {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": f"/user/{user}/"},
                    {"name": "JUPYTERHUB_CLIENT_ID", "value": f"jupyterhub-user-{user}"},
                    {
                        "name": "JUPYTERHUB_ACTIVITY_URL",
                        "value": f"http://hub:8081/hub/api/users/{user}/activity",
                    },
                    {"name": "MEM_GUARANTEE", "value": "536870912"},
                    {"name": "MEM_LIMIT", "value": "2147483648"},
                ],
                "resources": {
                    "requests": {"cpu": cpu, "memory": memory},
                    "limits": LIMITS,
                },
                "volumeMounts": [{"mountPath": "/home/jovyan", "name": "volume-" + user}],
                "securityContext": CONTAINER_SECURITY,
                "terminationMessagePath": "/dev/termination-log",
                "imagePullPolicy": "IfNotPresent",
            }
        ],
        "volumes": [
            {"name": "volume-" + user, "persistentVolumeClaim": {"claimName": "claim-" + user}}
        ],
    }
    if node:
        spec["nodeName"] = node
    meta_labels = {
        "app": "jupyterhub",
        "component": "singleuser-server" if priority == 0 else "user-placeholder",
        "hub.jupyter.org/username": user,
        "hub.jupyter.org/servername": "",
        "hub.jupyter.org/network-access-hub": "true",
        "release": "jhub",
    }
    meta_labels.update(labels or {})
    meta: Obj = {
        "name": name,
        "namespace": namespace,
        "labels": meta_labels,
        "annotations": {"hub.jupyter.org/username": user, "hub.jupyter.org/servername": ""},
    }
    if uid:
        meta["uid"] = uid
    status: Obj = {"phase": phase, "qosClass": "Burstable"}
    if node:
        status.update(
            {
                "hostIP": "10.128.0.12",
                "podIP": "10.4.3.17",
                "startTime": "2026-01-01T00:00:00Z",
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}
                    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                ],
                "containerStatuses": [
                    {
                        "name": "notebook",
                        "ready": True,
                        "restartCount": 0,
                        "image": image,
                        "imageID": f"{image.split(':', maxsplit=1)[0]}@sha256:{'ab' * 32}",
                        "containerID": f"containerd://{(name * 4).encode().hex()[:64]}",
                        "started": True,
                        "state": {"running": {"startedAt": "2026-01-01T00:00:04Z"}},
                    }
                ],
            }
        )
    return {"metadata": meta, "spec": spec, "status": status}


def populate(store: ApiStore, nodes: int, pods: int, *, prefix: str = "user") -> None:
    """``nodes`` user nodes and ``pods`` running user pods spread round-robin over them."""
    names = [f"{prefix}-node-{i:05d}" for i in range(nodes)]
    store.create_many(NODES, (node_json(n) for n in names))
    store.create_many(
        PODS, (pod_json(f"jupyter-{prefix}{i:06d}", node=names[i % nodes]) for i in range(pods))
    )
