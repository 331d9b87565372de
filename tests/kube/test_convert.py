"""Kubernetes JSON -> core types: quantities, effective pod requests, nodes, images, errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity

from scheduler_extender.core.types import Requirement, Resources, SelectorTerm, Taint
from scheduler_extender.kube.convert import (
    ConversionError,
    PlaceholderRule,
    is_terminal,
    node_from_json,
    normalize_image,
    pod_from_json,
    pod_requests,
    quantity,
    resources_from,
)
from tests.factories import GI, MI, node_json, pod_json

# --- quantities -----------------------------------------------------------------------------

SUFFIXES = ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "E", "Ei"]


@given(
    number=st.one_of(
        st.integers(min_value=0, max_value=10**6).map(str),
        st.decimals(min_value=0, max_value=10**4, places=3, allow_nan=False).map(str),
    ),
    suffix=st.sampled_from(SUFFIXES),
)
def test_quantity_agrees_with_the_kubernetes_client(number: str, suffix: str) -> None:
    text = number + suffix
    expected = Decimal(parse_quantity(text))
    if expected > 2**63 - 1:  # beyond apimachinery's int64: refused, not overflowed
        with pytest.raises(ConversionError, match="out of range"):
            quantity(text, "q")
    else:
        assert quantity(text, "q") == expected


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        ({"cpu": "50m", "memory": "512Mi"}, Resources(50, 512 * MI)),
        ({"cpu": "0.05", "memory": "512M"}, Resources(50, 512_000_000)),
        ({"cpu": "1", "memory": "1Gi"}, Resources(1000, GI)),
        # MilliValue rounds up: 0.0001 cpu is 1m, as apimachinery does.
        ({"cpu": "0.0001"}, Resources(1, 0)),
        ({"memory": "1.5"}, Resources(0, 2)),
        ({"cpu": 2, "memory": 1024}, Resources(2000, 1024)),
        ({"nvidia.com/gpu": "1"}, Resources(scalar={"nvidia.com/gpu": 1})),
        ({"ephemeral-storage": "10Gi"}, Resources(scalar={"ephemeral-storage": 10 * GI})),
        ({"pods": "110"}, Resources(pods=110)),
    ],
    ids=["milli", "decimal-suffix", "whole", "round-up-cpu", "round-up-bytes", "bare-numbers",
         "gpu", "ephemeral", "pods"],
)  # fmt: skip
def test_resources_from(requests: dict[str, Any], expected: Resources) -> None:
    assert resources_from(requests, "r") == expected


@pytest.mark.parametrize(
    "bad",
    ["lots", "1.2.3", "5Q", True, None, [1], "Infinity", "NaN", "-5Gi", "-1", "1e999999",
     "1e100000000", "9300P", float("inf")],
    ids=str,
)  # fmt: skip
def test_bad_quantity_names_the_field(bad: object) -> None:
    with pytest.raises(ConversionError) as err:
        resources_from({"cpu": bad}, "Pod.spec.containers[0].resources.requests")
    assert err.value.path == "Pod.spec.containers[0].resources.requests.cpu"


def test_cpu_is_range_checked_in_millicores() -> None:
    with pytest.raises(ConversionError, match="out of range"):
        resources_from({"cpu": "10000000000000000"}, "r")  # 1e16 cores = 1e19 m > int64
    assert resources_from({"memory": "7Ei"}, "r").memory == 7 * 2**60


# --- effective pod requests -----------------------------------------------------------------


def _c(name: str, cpu: str, memory: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"containers": [_c("a", "100m", "100Mi"), _c("b", "200m", "50Mi")]},
                     Resources(300, 150 * MI, 1), id="sum-of-app-containers"),
        pytest.param({"containers": [_c("a", "100m", "100Mi")],
                      "initContainers": [_c("i", "500m", "10Mi")]},
                     Resources(500, 100 * MI, 1), id="init-max-per-resource"),
        pytest.param({"containers": [_c("a", "100m", "100Mi")],
                      "initContainers": [_c("s", "50m", "20Mi", restartPolicy="Always")]},
                     Resources(150, 120 * MI, 1), id="sidecar-counts-as-app"),
        pytest.param({"containers": [_c("a", "100m", "100Mi")],
                      "initContainers": [_c("s", "50m", "20Mi", restartPolicy="Always"),
                                         _c("i", "400m", "10Mi")]},
                     Resources(450, 120 * MI, 1), id="init-after-sidecar-runs-beside-it"),
        pytest.param({"containers": [_c("a", "100m", "100Mi")],
                      "initContainers": [_c("i", "400m", "10Mi"),
                                         _c("s", "50m", "20Mi", restartPolicy="Always")]},
                     Resources(400, 120 * MI, 1), id="init-before-sidecar-runs-alone"),
        pytest.param({"containers": [_c("a", "100m", "100Mi")], "overhead": {"cpu": "250m",
                      "memory": "120Mi"}}, Resources(350, 220 * MI, 1), id="overhead-added"),
        pytest.param({"containers": [{"name": "a", "resources": {"limits": {"cpu": "1",
                      "memory": "1Gi"}}}]}, Resources(1000, GI, 1), id="limits-default-requests"),
        pytest.param({"containers": [{"name": "a"}]}, Resources(0, 0, 1), id="no-requests"),
        pytest.param({"containers": [_c("a", "100m", "100Mi"), _c("b", "100m", "100Mi")],
                      "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                     Resources(1000, GI, 1), id="pod-level-resources-override"),
    ],
)  # fmt: skip
def test_pod_requests_match_kube_scheduler(spec: dict[str, Any], expected: Resources) -> None:
    assert pod_requests(spec) == expected


def _resizing(
    spec_cpu: str, status_cpu: str, allocated_cpu: str, infeasible: bool
) -> dict[str, Any]:
    obj = pod_json(cpu=spec_cpu, memory="1Gi")
    obj["status"] = {
        "phase": "Running",
        "containerStatuses": [{"name": "notebook",
                               "allocatedResources": {"cpu": allocated_cpu, "memory": "1Gi"},
                               "resources": {"requests": {"cpu": status_cpu, "memory": "1Gi"}}}],
    }  # fmt: skip
    if infeasible:
        obj["status"]["conditions"] = [{"type": "PodResizePending", "reason": "Infeasible"}]
    return obj


@pytest.mark.parametrize(
    ("spec_cpu", "status_cpu", "allocated_cpu", "infeasible", "expected"),
    [
        ("2", "500m", "500m", False, 2000),  # resizing up: the spec's larger ask counts
        ("500m", "2", "2", False, 2000),  # resizing down: still holding 2 cores
        ("4", "1", "1500m", True, 1500),  # infeasible: only what the kubelet holds
    ],
    ids=["resize-up", "resize-down", "resize-infeasible"],
)
def test_in_place_resize_counts_like_the_scheduler(
    spec_cpu: str, status_cpu: str, allocated_cpu: str, infeasible: bool, expected: int
) -> None:
    pod = pod_from_json(_resizing(spec_cpu, status_cpu, allocated_cpu, infeasible))
    assert pod.requests.cpu == expected
    assert pod.requests.memory == GI


def test_pod_from_json_reads_what_the_policy_needs() -> None:
    obj = pod_json(
        cpu="50m",
        memory="512Mi",
        node_name="n1",
        priority=0,
        extra_spec={
            "nodeSelector": {"pool": "users"},
            "affinity": {
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
            },
        },
    )
    pod = pod_from_json(obj)
    assert pod.uid == "uid-alice"
    assert pod.requests == Resources(50, 512 * MI, 1)
    assert pod.node_name == "n1"
    assert dict(pod.node_selector) == {"pool": "users"}
    assert pod.required_terms == (
        SelectorTerm((Requirement("hub.jupyter.org/node-purpose", "In", ("user",)),)),
    )
    assert pod.images == ("docker.io/jupyter/scipy-notebook:latest",)
    assert len(pod.tolerations) == 2
    assert not pod.placeholder
    assert pod.created == 1795600800.0  # 2026-11-25T10:00:00Z


@pytest.mark.parametrize(
    ("labels", "priority", "expected"),
    [
        ({"component": "user-placeholder"}, 0, True),
        ({"component": "singleuser-server"}, -10, True),
        ({"component": "singleuser-server"}, -5, False),
        ({"component": "singleuser-server"}, 0, False),
    ],
    ids=["label", "priority-at-cutoff", "image-puller-priority", "user"],
)
def test_placeholder_rule(labels: dict[str, str], priority: int, expected: bool) -> None:
    pod = pod_from_json(pod_json(labels=labels, priority=priority), PlaceholderRule())
    assert pod.placeholder is expected


def test_placeholder_rule_can_ignore_priority() -> None:
    rule = PlaceholderRule({"component": "user-placeholder"}, None)
    assert not pod_from_json(pod_json(priority=-100), rule).placeholder


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda p: p["spec"].update(containers="nope"), "Pod.spec.containers"),
        (lambda p: p["spec"].update(containers=["x"]), "Pod.spec.containers[0]"),
        (lambda p: p["spec"].update(initContainers=[5]), "Pod.spec.initContainers[0]"),
        (lambda p: p["spec"].update(priority="high"), "Pod.spec.priority"),
        (lambda p: p["metadata"].update(labels={"a": 1}), "Pod.metadata.labels.a"),
        (lambda p: p["spec"].update(tolerations=[5]), "Pod.spec.tolerations[0]"),
        (
            lambda p: p["spec"]["containers"][0]["resources"]["requests"].update(cpu="x"),
            "Pod.spec.containers[0].resources.requests.cpu",
        ),
        (lambda p: p["metadata"].update(creationTimestamp="yesterday"),
         "Pod.metadata.creationTimestamp"),
    ],
    ids=["containers-not-list", "container-not-object", "init-container-not-object",
         "priority-not-int", "label-not-string", "toleration-not-object",
         "bad-cpu", "bad-timestamp"],
)  # fmt: skip
def test_pod_errors_name_the_field(mutate: Any, path: str) -> None:
    obj = pod_json()
    mutate(obj)
    with pytest.raises(ConversionError) as err:
        pod_from_json(obj)
    assert err.value.path == path
    assert path in str(err.value)


def test_terminal_pods() -> None:
    assert is_terminal(pod_json(phase="Succeeded"))
    assert is_terminal(pod_json(phase="Failed"))
    assert not is_terminal(pod_json(phase="Running"))
    assert not is_terminal({"metadata": {}})


# --- nodes ----------------------------------------------------------------------------------


def test_node_from_json() -> None:
    obj = node_json(
        "n1",
        cpu="3920m",
        memory="23699092Ki",
        images=["jupyter/scipy-notebook:2024-07-29", "docker.io/library/busybox@sha256:abc"],
        taints=[{"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}],
        unschedulable=True,
    )
    node = node_from_json(obj)
    assert node.name == "n1"
    assert node.allocatable == Resources(3920, 23699092 * 1024, 110)
    assert node.taints == (Taint("hub.jupyter.org/dedicated", "user", "NoSchedule"),)
    assert node.unschedulable
    assert node.labels["hub.jupyter.org/node-purpose"] == "user"
    assert "docker.io/jupyter/scipy-notebook:2024-07-29" in node.images
    assert "docker.io/library/busybox@sha256:abc" in node.images
    assert node.created == 1795593600.0  # 2026-11-25T08:00:00Z


def test_node_without_name_is_an_error() -> None:
    with pytest.raises(ConversionError, match=r"Node\.metadata\.name"):
        node_from_json({"metadata": {}, "status": {}})


# --- images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("jupyter/scipy-notebook", "docker.io/jupyter/scipy-notebook:latest"),
        ("docker.io/jupyter/scipy-notebook:x", "docker.io/jupyter/scipy-notebook:x"),
        ("index.docker.io/library/ubuntu", "docker.io/library/ubuntu:latest"),
        ("quay.io/jupyter/scipy-notebook:2024-07-29", "quay.io/jupyter/scipy-notebook:2024-07-29"),
        ("localhost/img", "localhost/img:latest"),
        ("registry:5000/team/img", "registry:5000/team/img:latest"),
        ("registry:5000/team/img:1.0", "registry:5000/team/img:1.0"),
        ("ubuntu@sha256:abc", "docker.io/library/ubuntu@sha256:abc"),
        ("ubuntu:22.04@sha256:abc", "docker.io/library/ubuntu@sha256:abc"),
    ],
    ids=lambda v: v,
)
def test_normalize_image(ref: str, normalized: str) -> None:
    assert normalize_image(ref) == normalized


@given(st.sampled_from(["ubuntu", "a/b", "quay.io/x/y", "registry:5000/t/i"]),
       st.sampled_from(["", ":1", ":latest", "@sha256:f00"]))  # fmt: skip
def test_normalize_image_is_idempotent(name: str, suffix: str) -> None:
    once = normalize_image(name + suffix)
    assert normalize_image(once) == once
