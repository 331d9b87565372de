"""Image pullers: which images, where they run, the hook wiring and the awaiter's arguments."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_extender.pullers.awaiter import build_parser
from tests.chart.conftest import Obj, one, render_values, rendered

PREFIX = "hub-sched-scheduler-extender"
CONTINUOUS = f"{PREFIX}-continuous-image-puller"
HOOK = f"{PREFIX}-hook-image-puller"
USER_TOLERATIONS = [
    {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
     "effect": "NoSchedule"},
    {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user",
     "effect": "NoSchedule"},
]  # fmt: skip


def pulls(ds: Obj) -> list[tuple[str, str]]:
    return [(c["name"], c["image"]) for c in ds["spec"]["template"]["spec"]["initContainers"]]


def test_defaults_pull_singleuser_and_network_tools() -> None:
    ds = one(rendered("defaults"), "DaemonSet", CONTINUOUS)
    assert pulls(ds) == [
        ("pull-singleuser", "quay.io/jupyterhub/k8s-singleuser-sample:4.1.0"),
        ("pull-network-tools", "quay.io/jupyterhub/k8s-network-tools:4.1.0"),
    ]
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/pause:3.10"


def test_every_image_source_is_pulled_once() -> None:
    ds = one(rendered("everything-on"), "DaemonSet", CONTINUOUS)
    assert pulls(ds) == [
        ("pull-singleuser", "quay.io/jupyter/scipy-notebook:2024-07-29"),
        ("pull-network-tools", "quay.io/jupyterhub/k8s-network-tools:4.1.0"),
        ("pull-init-0", "docker.io/library/busybox:1.36"),
        ("pull-extra-container-0", "ghcr.io/example/sidecar:1.0"),
        ("pull-profile-0", "quay.io/jupyter/datascience-notebook:2024-07-29"),
        # profile_options choices in key order: julia, r, same (same as singleuser: skipped)
        ("pull-profile-1-choice-0", "quay.io/jupyter/julia-notebook:2024-07-29"),
        ("pull-profile-1-choice-1", "quay.io/jupyter/r-notebook:2024-07-29"),
        # extraImages in key order; busybox:1.36 was already pulled as an init container
        ("pull-extra-dask-worker", "ghcr.io/dask/dask:2024.5.0"),
    ]


@pytest.mark.parametrize(
    ("values", "expected_count"),
    [
        pytest.param({"prePuller": {"pullProfileListImages": False}}, 5, id="no-profile-images"),
        pytest.param(
            {"singleuser": {"cloudMetadata": {"blockWithIptables": False}}}, 7,
            id="no-network-tools",
        ),
    ],
)  # fmt: skip
def test_switches_drop_images(values: dict[str, Any], expected_count: int) -> None:
    from manifests.render import merge_values
    from tests.chart.conftest import values_for

    docs = render_values(merge_values(values_for("everything-on"), values))
    assert len(pulls(one(docs, "DaemonSet", CONTINUOUS))) == expected_count


def test_extra_image_keys_become_valid_container_names() -> None:
    docs = render_values(
        {"prePuller": {"extraImages": {"Odd_Key.With.Dots": {"name": "x/y", "tag": "1"}}}}
    )
    names = [n for n, _ in pulls(one(docs, "DaemonSet", CONTINUOUS))]
    assert "pull-extra-odd-key-with-dots" in names


@pytest.mark.parametrize(
    ("values_set", "tolerations"),
    [
        pytest.param("defaults", USER_TOLERATIONS, id="user-tolerations"),
        pytest.param("no-tolerations", None, id="none"),
        pytest.param(
            "everything-on",
            [*USER_TOLERATIONS,
             {"key": "example.org/spot", "operator": "Exists", "effect": "NoSchedule"},
             {"key": "example.org/gpu", "operator": "Exists", "effect": "NoSchedule"},
             {"key": "startup-taint.cluster-autoscaler.kubernetes.io/hub-images",
              "operator": "Exists"}],
            id="plus-extra-and-startup-taint",
        ),
    ],
)  # fmt: skip
def test_pullers_run_where_users_run(values_set: str, tolerations: list[Obj] | None) -> None:
    docs = rendered(values_set)
    for name in (CONTINUOUS, HOOK):
        spec = one(docs, "DaemonSet", name)["spec"]["template"]["spec"]
        if tolerations is None:
            assert "tolerations" not in spec
        else:
            assert spec["tolerations"] == tolerations
    spec = one(docs, "DaemonSet", CONTINUOUS)["spec"]["template"]["spec"]
    if values_set == "everything-on":
        assert spec["nodeSelector"] == {"hub.jupyter.org/node-purpose": "user"}
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["user"]
    else:
        assert "affinity" not in spec, "a preferred affinity means nothing to a DaemonSet"


def test_priority_classes_of_pullers() -> None:
    docs = rendered("defaults")
    continuous = one(docs, "DaemonSet", CONTINUOUS)["spec"]["template"]["spec"]
    hook = one(docs, "DaemonSet", HOOK)["spec"]["template"]["spec"]
    assert continuous["priorityClassName"] == f"{PREFIX}-image-puller"
    # Offline, lookup finds no PriorityClass: a pre-install hook must not name one that the
    # release has not created yet (admission would refuse the pods).
    assert "priorityClassName" not in hook


def test_hook_annotations_and_cleanup() -> None:
    docs = rendered("defaults")
    hook = one(docs, "DaemonSet", HOOK)["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert set(hook["helm.sh/hook-delete-policy"].split(",")) == {
        "before-hook-creation",
        "hook-succeeded",
    }
    continuous = one(docs, "DaemonSet", CONTINUOUS)["metadata"]
    assert "helm.sh/hook" not in (continuous.get("annotations") or {})


def test_awaiter_arguments_parse_and_name_the_hook_daemonset() -> None:
    """The Job's args are accepted by the real argument parser and point at the hook DS."""
    job = one(rendered("everything-on"), "Job", f"{PREFIX}-hook-image-awaiter")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "await-images"
    args = build_parser().parse_args(container["args"][1:])
    assert args.daemonset == HOOK
    assert args.namespace == "jhub"
    assert args.timeout == 900
    assert args.pod_scheduling_wait is None  # -1: wait for every pod to be scheduled
    assert job["spec"]["activeDeadlineSeconds"] == 900 + 120
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_awaiter_without_timeout_has_no_deadline() -> None:
    docs = render_values({"prePuller": {"hook": {"timeoutSeconds": -1}}})
    job = one(docs, "Job", f"{PREFIX}-hook-image-awaiter")
    assert "activeDeadlineSeconds" not in job["spec"]
    assert "--timeout=-1" in job["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize(
    ("values", "hook", "continuous"),
    [
        pytest.param({"prePuller": {"hook": {"enabled": False}}}, False, True, id="no-hook"),
        pytest.param({"prePuller": {"continuous": {"enabled": False}}}, True, False,
                     id="no-continuous"),
    ],
)  # fmt: skip
def test_pullers_can_be_turned_off(values: dict[str, Any], hook: bool, continuous: bool) -> None:
    docs = render_values(values)
    names = {o["metadata"]["name"] for _, o in docs}
    assert (HOOK in names) is hook
    assert (f"{PREFIX}-hook-image-awaiter" in names) is hook
    assert (CONTINUOUS in names) is continuous


def test_checksum_follows_the_images() -> None:
    def checksum(values: dict[str, Any]) -> str:
        cm = one(render_values(values), "ConfigMap", f"{PREFIX}-image-puller")
        value: str = cm["data"]["hook-image-puller-checksum"]
        return value

    base = checksum({})
    assert checksum({"scheduling": {"userScheduler": {"replicas": 3}}}) == base
    assert checksum({"singleuser": {"image": {"tag": "other"}}}) != base
    assert checksum({"scheduling": {"userPods": {"tolerations": []}}}) != base
