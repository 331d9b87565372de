"""Every rendered object, under every values set: valid Kubernetes, placed, secured, sized.

Rendering uses Helm's own engine (helm-python-sdk); validation uses the OpenAPI-derived JSON
schemas of kubernetes-validate in strict mode (unknown fields are errors), against the oldest
Kubernetes the chart supports and the newest the package knows.
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest

from tests.chart.conftest import (
    NAMESPACE,
    VALUES_SETS,
    Obj,
    containers,
    objects,
    pod_templates,
    rendered,
)

KUBE_VERSIONS = ["1.30.0", "1.37.0"]
CLUSTER_SCOPED = {"PriorityClass", "ClusterRole", "ClusterRoleBinding", "Namespace"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def ids(docs: list[tuple[str, Obj]]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for _, o in docs]


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_every_object_validates_against_kubernetes_schemas(values_set: str, version: str) -> None:
    errors = []
    for _, obj in rendered(values_set):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
    assert errors == []


def test_validation_catches_a_broken_object() -> None:
    """The check above can fail: a misspelled field is an error."""
    _, deployment = next((s, o) for s, o in rendered("defaults") if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePulPolicy"):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(
    ("values_set", "expected"),
    [
        pytest.param(
            "defaults",
            {
                "PriorityClass": 3, "ServiceAccount": 3, "ClusterRole": 2,
                "ClusterRoleBinding": 2, "Role": 3, "RoleBinding": 3, "ConfigMap": 3,
                "PodDisruptionBudget": 2, "DaemonSet": 2, "Deployment": 2, "Job": 1,
            },
            id="defaults",
        ),
        pytest.param(
            "everything-on",
            {
                "PriorityClass": 3, "ServiceAccount": 3, "ClusterRole": 2,
                "ClusterRoleBinding": 2, "Role": 3, "RoleBinding": 3, "ConfigMap": 3,
                "PodDisruptionBudget": 2, "DaemonSet": 2, "Deployment": 2, "Job": 1,
            },
            id="everything-on",
        ),
        pytest.param(
            "plain",
            {
                "PriorityClass": 3, "ServiceAccount": 2, "ClusterRole": 2,
                "ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 2, "ConfigMap": 2,
                "PodDisruptionBudget": 2, "DaemonSet": 1, "Deployment": 2,
            },
            id="plain-has-no-hooks",
        ),
    ],
)  # fmt: skip
def test_object_inventory(values_set: str, expected: dict[str, int]) -> None:
    counts: dict[str, int] = {}
    for _, obj in rendered(values_set):
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    assert counts == expected


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_names_and_namespaces(values_set: str) -> None:
    docs = rendered(values_set)
    assert len(set(ids(docs))) == len(docs), "two objects share a kind and name"
    for _, obj in docs:
        meta = obj["metadata"]
        assert DNS_SUBDOMAIN.match(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in meta
        else:
            assert meta["namespace"] == NAMESPACE, f"{obj['kind']}/{meta['name']}"
        assert meta["labels"]["app.kubernetes.io/instance"] == "hub-sched"


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_workload_selectors_match_their_pods(values_set: str) -> None:
    docs = rendered(values_set)
    for obj in objects(docs, "Deployment") + objects(docs, "DaemonSet"):
        selector = obj["spec"]["selector"]["matchLabels"]
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), obj["metadata"]["name"]
    # Each selector picks one workload only.
    selectors = [
        tuple(sorted(o["spec"]["selector"]["matchLabels"].items()))
        for o in objects(docs, "Deployment") + objects(docs, "DaemonSet")
    ]
    assert len(selectors) == len(set(selectors))
    for pdb in objects(docs, "PodDisruptionBudget"):
        targets = [
            d
            for d in objects(docs, "Deployment")
            if pdb["spec"]["selector"]["matchLabels"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(targets) == 1, pdb["metadata"]["name"]
        assert targets[0]["spec"]["replicas"] >= 2, "a PDB on a single replica blocks drains"


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_service_accounts_exist(values_set: str) -> None:
    docs = rendered(values_set)
    accounts = {o["metadata"]["name"] for o in objects(docs, "ServiceAccount")}
    for name, spec in pod_templates(docs):
        if spec.get("automountServiceAccountToken") is False:
            assert "serviceAccountName" not in spec, name
            continue
        assert spec["serviceAccountName"] in accounts, name


def _restricted_problems(where: str, pod: Obj, container: Obj) -> list[str]:
    """Pod Security Standards "restricted", plus a read-only root filesystem.

    ref: https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
    """
    sc: dict[str, Any] = container.get("securityContext") or {}
    psc: dict[str, Any] = pod.get("securityContext") or {}
    out = []
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        out.append("runAsNonRoot")
    if sc.get("runAsUser", psc.get("runAsUser")) == 0:
        out.append("runAsUser 0")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append("allowPrivilegeEscalation")
    if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
        out.append("capabilities.drop")
    if set((sc.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}:
        out.append("capabilities.add")
    seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        out.append("seccompProfile")
    if sc.get("privileged"):
        out.append("privileged")
    if sc.get("readOnlyRootFilesystem") is not True:
        out.append("readOnlyRootFilesystem")
    return [f"{where}/{container['name']}: {p}" for p in out]


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_every_container_is_restricted_and_sized(values_set: str) -> None:
    problems: list[str] = []
    for name, spec in pod_templates(rendered(values_set)):
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        assert all("hostPath" not in v for v in spec.get("volumes") or []), name
        for c in containers(spec):
            problems += _restricted_problems(name, spec, c)
            res = c.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            if not {"cpu", "memory"} <= requests.keys():
                problems.append(f"{name}/{c['name']}: requests {requests}")
            if "memory" not in limits:
                problems.append(f"{name}/{c['name']}: no memory limit")
    assert problems == []


def test_read_only_root_gets_a_writable_tmp_for_our_image() -> None:
    docs = rendered("everything-on")
    for name, spec in pod_templates(docs):
        for c in spec["containers"]:
            if "scheduler-extender" not in c["image"] and "kube-scheduler" not in c["image"]:
                continue
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
            assert "/tmp" in mounts, f"{name}/{c['name']}"
            volume = next(v for v in spec["volumes"] if v["name"] == mounts["/tmp"])
            assert "emptyDir" in volume


@pytest.mark.parametrize(
    ("values_set", "image"),
    [
        pytest.param("defaults", "scheduler-extender:0.1.0", id="default-tag-is-app-version"),
        pytest.param(
            "everything-on", "registry.example.org/jupyterhub/scheduler-extender:0.1.0",
            id="custom-image",
        ),
    ],
)  # fmt: skip
def test_our_image_is_pinned(values_set: str, image: str) -> None:
    ours = {
        c["image"]
        for _, spec in pod_templates(rendered(values_set))
        for c in spec["containers"]
        if c["name"] in ("extender", "controller", "awaiter")
    }
    assert ours == {image}


def test_pull_secrets_are_deduplicated() -> None:
    docs = rendered("everything-on")
    for name, spec in pod_templates(docs):
        secrets = [s["name"] for s in spec.get("imagePullSecrets") or []]
        assert len(secrets) == len(set(secrets)), name
        assert "registry-credentials" in secrets, name
    puller = next(s for n, s in pod_templates(docs) if "continuous" in n)
    assert [s["name"] for s in puller["imagePullSecrets"]] == [
        "registry-credentials",
        "quay-credentials",
    ]
