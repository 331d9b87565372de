"""RBAC is minimal: the rendered rules are exactly these, nothing more.

Adding a permission means adding it here too, on purpose. The user-scheduler (kube-scheduler and
the extender, one ServiceAccount) gets the chart's own ClusterRole, checked below against
upstream's system:kube-scheduler and system:volume-scheduler: exactly those rules, minus the
ones it must not have (any cluster-wide Lease or Endpoints rule; the control plane scheduler's
Lease is named kube-scheduler in kube-system) and two legacy ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import (
    VALUES_SETS,
    Obj,
    objects,
    one,
    render_values,
    rendered,
    values_for,
)

PREFIX = "hub-sched-scheduler-extender"

Rule = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "")

READ = ("get", "list", "watch")


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


def rules(
    group: str, resources: tuple[str, ...], verbs: tuple[str, ...], name: str = ""
) -> set[Rule]:
    return {(group, r, v, name) for r in resources for v in verbs}


#: system:kube-scheduler as the API server of v1.36 bootstraps it with default feature gates
#: (DynamicResourceAllocation GA; DRAExtendedResource and
#: DRAResourceClaimGranularStatusAuthorization beta, on; DRADeviceTaintRules and GenericWorkload
#: off), transcribed from kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go
#: (kubeSchedulerRules) and the gates' versioned defaults in pkg/features. v1.30-v1.35 grant a
#: subset (no volumeattachments before v1.32, no resource.k8s.io before v1.34).
UPSTREAM_VERSION = (1, 36)

UPSTREAM_KUBE_SCHEDULER: set[Rule] = {
    *rules("", ("events",), ("create", "patch", "update")),
    *rules("events.k8s.io", ("events",), ("create", "patch", "update")),
    ("coordination.k8s.io", "leases", "create", ""),
    *rules("coordination.k8s.io", ("leases",), ("get", "update", "list", "watch"),
           "kube-scheduler"),
    *rules("coordination.k8s.io", ("leasecandidates",),
           ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")),
    *rules("", ("nodes",), READ),
    *rules("", ("pods",), (*READ, "delete")),
    *rules("", ("pods/binding", "bindings"), ("create",)),
    *rules("", ("pods/status",), ("patch", "update")),
    *rules("", ("services", "replicationcontrollers"), READ),
    *rules("apps", ("replicasets",), READ),
    *rules("extensions", ("replicasets",), READ),
    *rules("apps", ("statefulsets",), READ),
    *rules("policy", ("poddisruptionbudgets",), READ),
    *rules("", ("persistentvolumeclaims", "persistentvolumes"), READ),
    ("authentication.k8s.io", "tokenreviews", "create", ""),
    ("authorization.k8s.io", "subjectaccessreviews", "create", ""),
    *rules("storage.k8s.io", ("csinodes", "csidrivers", "csistoragecapacities"), READ),
    *rules("storage.k8s.io", ("volumeattachments",), READ),
    *rules("", ("namespaces",), READ),
    *rules("resource.k8s.io", ("deviceclasses", "resourceslices"), READ),
    *rules("resource.k8s.io", ("resourceclaims", "resourceclaims/status"),
           (*READ, "update", "patch")),
    *rules("resource.k8s.io", ("resourceclaims",), ("create", "delete")),
    *rules("resource.k8s.io", ("resourceclaims/binding",), ("update", "patch")),
    ("", "pods/finalizers", "update", ""),
}  # fmt: skip

#: system:volume-scheduler (unchanged from v1.30 to v1.36), same source.
UPSTREAM_VOLUME_SCHEDULER: set[Rule] = {
    *rules("", ("persistentvolumes", "persistentvolumeclaims"), (*READ, "update", "patch")),
    *rules("storage.k8s.io", ("storageclasses",), READ),
}

#: Upstream rules the user-scheduler's ClusterRole leaves out, and why.
LEFT_OUT: dict[str, set[Rule]] = {
    # The control plane scheduler's Lease (kube-system/kube-scheduler): never ours to touch.
    "named kube-scheduler lease": rules(
        "coordination.k8s.io", ("leases",), ("get", "update", "list", "watch"), "kube-scheduler"
    ),
    # Lease creation moves to the release namespace (Role below), not cluster-wide.
    "cluster-wide lease create": {("coordination.k8s.io", "leases", "create", "")},
    # Coordinated leader election is for control plane components and off by default.
    "lease candidates": rules(
        "coordination.k8s.io",
        ("leasecandidates",),
        ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"),
    ),
    # kube-scheduler binds through pods/binding; the top-level bindings resource is legacy.
    "legacy bindings": {("", "bindings", "create", "")},
    # extensions/v1beta1 ReplicaSets are no longer served (removed in v1.16).
    "extensions group": rules("extensions", ("replicasets",), READ),
    # list/watch of a status subresource authorize nothing kube-scheduler does.
    "status list/watch": rules("resource.k8s.io", ("resourceclaims/status",), ("list", "watch")),
}

#: backend capacityBuffer (placeholders/buffers.py): get_pod_template, create_pod_template,
#: replace_pod_template, delete_pod_template; get/list/create/replace/delete_custom on
#: CapacityBuffers (list: prune finds a removed pool's buffer by label). No podtemplates list.
BUFFER_RULES: set[Rule] = {
    *rules("", ("podtemplates",), ("get", "create", "update", "delete")),
    *rules("autoscaling.x-k8s.io", ("capacitybuffers",), ("get", "list", "create", "update",
                                                           "delete")),
}  # fmt: skip

USER_SCHEDULER_CLUSTER_ROLE = (UPSTREAM_KUBE_SCHEDULER | UPSTREAM_VOLUME_SCHEDULER) - set().union(
    *LEFT_OUT.values()
)

EXPECTED_ROLES: dict[str, set[Rule]] = {
    f"ClusterRole/{PREFIX}-user-scheduler": USER_SCHEDULER_CLUSTER_ROLE,
    f"Role/{PREFIX}-user-scheduler-lease": {
        ("coordination.k8s.io", "leases", "create", ""),
        ("coordination.k8s.io", "leases", "get", f"{PREFIX}-user-scheduler"),
        ("coordination.k8s.io", "leases", "update", f"{PREFIX}-user-scheduler"),
    },
    # Exactly the controller's calls (kube.py list_pods/watch_pods/create_pod/delete_pod,
    # get_lease/create_lease/replace_lease, get_owner, list/watch nodes): no pods get or patch,
    # no events, and get/update only on its own Lease; everything-on runs backend
    # capacityBuffer, which adds BUFFER_RULES.
    f"Role/{PREFIX}-placeholders": {
        *{("", "pods", v, "") for v in ("list", "watch", "create", "delete")},
        ("coordination.k8s.io", "leases", "create", ""),
        ("coordination.k8s.io", "leases", "get", f"{PREFIX}-placeholders"),
        ("coordination.k8s.io", "leases", "update", f"{PREFIX}-placeholders"),
        ("apps", "deployments", "get", f"{PREFIX}-placeholders"),
        *BUFFER_RULES,
    },
    f"ClusterRole/{PREFIX}-placeholders-nodes": {
        ("", "nodes", "list", ""),
        ("", "nodes", "watch", ""),
        ("", "pods", "list", ""),  # everything-on has a node-sized pool
        # and the startup taint (kube.py get_node, patch_node_taints)
        ("", "nodes", "get", ""),
        ("", "nodes", "patch", ""),
    },
    f"Role/{PREFIX}-hook-image-awaiter": {
        ("apps", "daemonsets", "get", f"{PREFIX}-hook-image-puller"),
        ("", "pods", "list", ""),
    },
}

#: What the extender sidecar calls (scheduler_extender/kube/client.py): the list+watch cache of
#: nodes and pods, the read of a pod the watch has not delivered, and the Binding (bind verb).
EXTENDER_NEEDS: set[Rule] = {
    *rules("", ("nodes", "pods"), ("list", "watch")),
    ("", "pods", "get", ""),
    ("", "pods/binding", "create", ""),
}

EXPECTED_BINDINGS: dict[str, tuple[str, str, str]] = {
    # binding -> (role kind, role name, service account)
    f"ClusterRoleBinding/{PREFIX}-user-scheduler": (
        "ClusterRole", f"{PREFIX}-user-scheduler", f"{PREFIX}-user-scheduler"),
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
    """The Role's named Lease is the one the KubeSchedulerConfiguration elects on."""
    docs = rendered("defaults")
    role = one(docs, "Role", f"{PREFIX}-user-scheduler-lease")
    config = yaml.safe_load(
        one(docs, "ConfigMap", f"{PREFIX}-user-scheduler")["data"]["config.yaml"]
    )
    named = {n for r in role["rules"] for n in r.get("resourceNames") or []}
    assert named == {config["leaderElection"]["resourceName"]}
    assert role["metadata"]["namespace"] == config["leaderElection"]["resourceNamespace"]


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_no_cluster_wide_lease_or_endpoints_rule(values_set: str) -> None:
    """Nothing cluster-wide on Leases or Endpoints (the control plane's leader election
    objects); Roles (this namespace only) name no Lease but this release's own."""
    docs = rendered(values_set)
    for cluster_role in objects(docs, "ClusterRole"):
        resources = {r for _, r, _, _ in flatten(cluster_role["rules"])}
        assert resources.isdisjoint({"leases", "leasecandidates", "endpoints"}), cluster_role[
            "metadata"
        ]["name"]
    own_leases = {f"{PREFIX}-user-scheduler", f"{PREFIX}-placeholders"}
    for role in objects(docs, "Role"):
        for _, resource, verb, name in flatten(role["rules"]):
            assert resource != "endpoints"
            if resource == "leases" and verb in ("get", "update") and name:
                assert name in own_leases
        assert all(n != "kube-scheduler" for *_, n in flatten(role["rules"]))


def test_user_scheduler_rules_are_upstreams_minus_what_it_must_not_have() -> None:
    """The ClusterRole covers what upstream grants kube-scheduler (so no informer of v1.30 to
    v1.36 waits forever on a 403), and the left-out rules are really left out."""
    docs = rendered("defaults")
    granted = flatten(one(docs, "ClusterRole", f"{PREFIX}-user-scheduler")["rules"])
    upstream = UPSTREAM_KUBE_SCHEDULER | UPSTREAM_VOLUME_SCHEDULER
    assert granted <= upstream, "a rule upstream does not grant kube-scheduler"
    assert upstream - granted == set().union(*LEFT_OUT.values())
    # The sidecar's own calls are inside it.
    assert granted >= EXTENDER_NEEDS


def test_builtin_scheduler_roles_are_not_bound() -> None:
    for values_set in VALUES_SETS:
        for kind in ("ClusterRoleBinding", "RoleBinding"):
            for binding in objects(rendered(values_set), kind):
                assert not binding["roleRef"]["name"].startswith("system:"), binding


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


def docs_cluster_role_table() -> set[Rule]:
    """The user-scheduler's ClusterRole as docs/install.md's table lists it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "install.md").read_text()
    table = text.split("| API group | resources | verbs |", 1)[1].split("\n\n", 1)[0]
    out: set[Rule] = set()
    for line in table.splitlines()[2:]:
        groups, resources, verbs = (cell.strip() for cell in line.strip("|").split("|")[:3])
        group_names = [g.strip("`").replace('""', "") for g in groups.split(", ")]
        for res_part, verb_part in zip(resources.split(";"), verbs.split(";"), strict=True):
            names = re.findall(r"`([^`]+)`", res_part)
            for group in group_names:
                out |= rules(group, tuple(names), tuple(v.strip() for v in verb_part.split(",")))
    return out


def test_docs_table_lists_the_cluster_role_exactly() -> None:
    granted = flatten(one(rendered("defaults"), "ClusterRole", f"{PREFIX}-user-scheduler")["rules"])
    assert docs_cluster_role_table() == granted


def test_chart_runs_no_kube_scheduler_newer_than_these_rules() -> None:
    """The chart derives kube-scheduler from the cluster only up to UPSTREAM_VERSION, the
    release the rules above were checked against; newer clusters must pin a tag (a newer
    kube-scheduler may watch objects it has no rule for and never become ready)."""
    from helm_python import HelmRenderError

    major, minor = UPSTREAM_VERSION
    assert render_values({}, kube_version=f"v{major}.{minor}.9")
    with pytest.raises(HelmRenderError, match=rf"newer than v{major}\.{minor}, the newest"):
        render_values({}, kube_version=f"v{major}.{minor + 1}.0")
    pinned = {"scheduling": {"userScheduler": {"image": {"tag": f"v{major}.{minor}.4"}}}}
    assert render_values(pinned, kube_version=f"v{major}.{minor + 1}.0")


def test_nodes_are_written_only_with_the_startup_taint_on() -> None:
    """Node get/patch is a wide grant (any node's labels and taints): only when enabled."""
    writes = {("", "nodes", "get", ""), ("", "nodes", "patch", "")}
    for values_set in VALUES_SETS:
        on = values_for(values_set).get("scheduling", {}).get("startupTaint", {}).get("enabled")
        granted = set().union(
            *(flatten(o["rules"]) for o in objects(rendered(values_set), "ClusterRole"))
        )
        assert (writes <= granted) is bool(on), values_set
        assert not granted & {("", "nodes", v, "") for v in ("update", "delete", "create")}


@pytest.mark.parametrize(
    ("values", "granted"),
    [
        pytest.param({}, False, id="default-pods"),
        pytest.param({"backend": "pods"}, False, id="pods"),
        pytest.param({"backend": "capacityBuffer"}, True, id="capacityBuffer"),
    ],
)
def test_buffer_rules_only_with_backend_capacity_buffer(
    values: dict[str, str], granted: bool
) -> None:
    """PodTemplates and CapacityBuffers in the release namespace (a Role), and only for the
    capacityBuffer backend; never cluster-wide."""
    docs = render_values({"scheduling": {"userPlaceholder": {"enabled": True, **values}}})
    role = flatten(one(docs, "Role", f"{PREFIX}-placeholders")["rules"])
    assert (role & BUFFER_RULES) == (BUFFER_RULES if granted else set())
    assert one(docs, "Role", f"{PREFIX}-placeholders")["metadata"]["namespace"] == "jhub"
    buffer_resources = {r for _, r, _, _ in BUFFER_RULES}
    for cluster_role in objects(docs, "ClusterRole"):
        resources = {r for _, r, _, _ in flatten(cluster_role["rules"])}
        assert resources.isdisjoint(buffer_resources), cluster_role["metadata"]["name"]


def docs_placeholder_buffer_rules() -> set[Rule]:
    """The placeholder controller's buffer rules as docs/install.md's RBAC table lists them:
    the row "Role, only with `backend: capacityBuffer`: `res` (`group`) verb/verb; ..."."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "install.md").read_text()
    marker = "| | Role, only with `backend: capacityBuffer`:"
    row = text.split(marker, 1)[1].split("|", 1)[0]
    out: set[Rule] = set()
    for part in row.split(";"):
        names = re.findall(r"`([^`]+)`", part)
        resource, group = names[0], (names[1] if len(names) > 1 else "")
        verbs = part.strip().rsplit(" ", 1)[1].split("/")
        out |= rules(group, (resource,), tuple(verbs))
    return out


def test_docs_table_lists_the_buffer_rules_exactly() -> None:
    docs = render_values({"scheduling": {"userPlaceholder": {"backend": "capacityBuffer"}}})
    role = flatten(one(docs, "Role", f"{PREFIX}-placeholders")["rules"])
    assert docs_placeholder_buffer_rules() == role & BUFFER_RULES == BUFFER_RULES
