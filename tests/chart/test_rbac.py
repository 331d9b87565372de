"""RBAC is minimal: the rendered rules are exactly these, nothing more.

Adding a permission means adding it here too, on purpose. kube-scheduler itself is bound to the
cluster's built-in system:kube-scheduler and system:volume-scheduler roles (kept in step with
each Kubernetes version by the API server); the chart only adds what those lack.
"""

from __future__ import annotations

import pytest

from tests.chart.conftest import VALUES_SETS, Obj, objects, one, rendered

PREFIX = "hub-sched-scheduler-extender"

Rule = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "")


def flatten(rules: list[Obj]) -> set[Rule]:
    out: set[Rule] = set()
    for rule in rules:
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [""]:
                        out.add((group, resource, verb, name))
    return out


EXPECTED_ROLES: dict[str, set[Rule]] = {
    f"Role/{PREFIX}-user-scheduler-lease": {
        ("coordination.k8s.io", "leases", "get", f"{PREFIX}-user-scheduler"),
        ("coordination.k8s.io", "leases", "update", f"{PREFIX}-user-scheduler"),
    },
    f"Role/{PREFIX}-placeholders": {
        *{("", "pods", v, "") for v in ("get", "list", "watch", "create", "delete", "patch")},
        *{("coordination.k8s.io", "leases", v, "") for v in ("get", "create", "update")},
        ("", "events", "create", ""),
        ("events.k8s.io", "events", "create", ""),
    },
    f"ClusterRole/{PREFIX}-placeholders-nodes": {
        ("", "nodes", "get", ""),
        ("", "nodes", "list", ""),
        ("", "nodes", "watch", ""),
    },
    f"Role/{PREFIX}-hook-image-awaiter": {
        ("apps", "daemonsets", "get", f"{PREFIX}-hook-image-puller"),
        ("", "pods", "list", ""),
    },
}

EXPECTED_BINDINGS: dict[str, tuple[str, str, str]] = {
    # binding -> (role kind, role name, service account)
    f"ClusterRoleBinding/{PREFIX}-user-scheduler-kube-scheduler": (
        "ClusterRole", "system:kube-scheduler", f"{PREFIX}-user-scheduler"),
    f"ClusterRoleBinding/{PREFIX}-user-scheduler-volume-scheduler": (
        "ClusterRole", "system:volume-scheduler", f"{PREFIX}-user-scheduler"),
    f"RoleBinding/{PREFIX}-user-scheduler-lease": (
        "Role", f"{PREFIX}-user-scheduler-lease", f"{PREFIX}-user-scheduler"),
    f"RoleBinding/{PREFIX}-placeholders": (
        "Role", f"{PREFIX}-placeholders", f"{PREFIX}-placeholders"),
    f"ClusterRoleBinding/{PREFIX}-placeholders-nodes": (
        "ClusterRole", f"{PREFIX}-placeholders-nodes", f"{PREFIX}-placeholders"),
    f"RoleBinding/{PREFIX}-hook-image-awaiter": (
        "Role", f"{PREFIX}-hook-image-awaiter", f"{PREFIX}-hook-image-awaiter"),
}  # fmt: skip


def test_roles_are_exactly_the_expected_rules() -> None:
    docs = rendered("everything-on")
    found = {
        f"{o['kind']}/{o['metadata']['name']}": flatten(o["rules"])
        for o in objects(docs, "Role") + objects(docs, "ClusterRole")
    }
    assert found == EXPECTED_ROLES


def test_bindings_are_exactly_the_expected_ones() -> None:
    docs = rendered("everything-on")
    found = {}
    for o in objects(docs, "RoleBinding") + objects(docs, "ClusterRoleBinding"):
        (subject,) = o["subjects"]
        assert subject["kind"] == "ServiceAccount" and subject["namespace"] == "jhub"
        found[f"{o['kind']}/{o['metadata']['name']}"] = (
            o["roleRef"]["kind"],
            o["roleRef"]["name"],
            subject["name"],
        )
    assert found == EXPECTED_BINDINGS


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_no_wildcards_no_secrets_no_escalation(values_set: str) -> None:
    for o in objects(rendered(values_set), "Role") + objects(rendered(values_set), "ClusterRole"):
        for group, resource, verb, _ in flatten(o["rules"]):
            assert "*" not in (group, resource, verb), o["metadata"]["name"]
            assert resource not in ("secrets", "serviceaccounts/token", "pods/exec")
            assert verb not in ("escalate", "bind", "impersonate")


def test_lease_role_names_the_scheduler_lease() -> None:
    """kube-scheduler's built-in role only covers the lease named kube-scheduler."""
    docs = rendered("defaults")
    role = one(docs, "Role", f"{PREFIX}-user-scheduler-lease")
    cm = one(docs, "ConfigMap", f"{PREFIX}-user-scheduler")
    assert f"resourceName: {role['rules'][0]['resourceNames'][0]}" in cm["data"]["config.yaml"]


def test_awaiter_rbac_exists_before_the_job_runs() -> None:
    docs = rendered("defaults")
    weights = {
        f"{o['kind']}/{o['metadata']['name']}": int(
            o["metadata"]["annotations"]["helm.sh/hook-weight"]
        )
        for _, o in docs
        if "helm.sh/hook" in (o["metadata"].get("annotations") or {})
    }
    job = weights.pop(f"Job/{PREFIX}-hook-image-awaiter")
    puller = weights.pop(f"DaemonSet/{PREFIX}-hook-image-puller")
    assert set(weights) == {
        f"ServiceAccount/{PREFIX}-hook-image-awaiter",
        f"Role/{PREFIX}-hook-image-awaiter",
        f"RoleBinding/{PREFIX}-hook-image-awaiter",
    }
    assert max(weights.values()) < puller < job


def test_rbac_off_renders_no_rbac() -> None:
    from tests.chart.conftest import render_values

    docs = render_values(
        {
            "rbac": {"create": False},
            "scheduling": {
                "userPlaceholder": {"enabled": True},
                "userScheduler": {"serviceAccount": {"create": False, "name": "prepared"}},
            },
        }
    )
    kinds = {o["kind"] for _, o in docs}
    assert kinds.isdisjoint({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
    deployment = one(docs, "Deployment", f"{PREFIX}-user-scheduler")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "prepared"
    # ServiceAccounts the chart still creates are the ones its pods use.
    accounts = {o["metadata"]["name"] for o in objects(docs, "ServiceAccount")}
    assert accounts == {f"{PREFIX}-placeholders", f"{PREFIX}-hook-image-awaiter"}
