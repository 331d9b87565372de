"""Placeholders: the controller's config file (the contract with the controller issue), the
PriorityClasses that make users preempt placeholders, and the guards against unsafe values."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from helm_python import HelmRenderError, HelmValuesError
from kubernetes.utils import parse_quantity

from scheduler_extender import cli
from scheduler_extender.placeholders.config import parse_config
from scheduler_extender.placeholders.pods import template_pod
from tests.chart.conftest import Obj, one, render_values, rendered

PREFIX = "hub-sched-scheduler-extender"
CONFIG_KEYS = {
    "namespace", "leaseName", "schedulerName", "priorityClassName", "image", "resyncSeconds",
    "pools", "owner", "users", "timezone", "metricsPort", "measureNodeOverhead", "backend",
    "capacityBuffer",
}  # fmt: skip
POOL_KEYS = {"name", "size", "requests", "nodeSelector", "tolerations", "affinity", "count"}
COUNT_KEYS = {"mode", "static", "min", "max", "safety", "windows"}
USER_TOLERATIONS = [
    {"effect": "NoSchedule", "key": "hub.jupyter.org/dedicated", "operator": "Equal",
     "value": "user"},
    {"effect": "NoSchedule", "key": "hub.jupyter.org_dedicated", "operator": "Equal",
     "value": "user"},
]  # fmt: skip


def placeholder_config(docs: list[tuple[str, Obj]]) -> dict[str, Any]:
    cm = one(docs, "ConfigMap", f"{PREFIX}-placeholders")
    config: dict[str, Any] = yaml.safe_load(cm["data"]["placeholders.yaml"])
    return config


def test_enabled_by_default_with_an_adaptive_pool() -> None:
    config = placeholder_config(rendered("defaults"))
    (pool,) = config["pools"]
    assert pool["name"] == "default" and pool["size"] == "user"
    assert pool["count"] == {
        "mode": "adaptive", "static": 0, "min": 0, "max": 20, "safety": 1.5, "windows": [],
    }  # fmt: skip
    assert config["owner"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": f"{PREFIX}-placeholders",
    }  # fmt: skip
    assert config["users"] == {"namespace": "jhub", "labelSelector": "component=singleuser-server"}
    assert (config["timezone"], config["metricsPort"]) == ("UTC", 8080)
    assert config["measureNodeOverhead"] is False, "no node-sized pool"


def test_default_pool_from_z2jh_values() -> None:
    config = placeholder_config(rendered("no-tolerations"))
    assert config == {
        "namespace": "jhub",
        "leaseName": f"{PREFIX}-placeholders",
        "schedulerName": "user-scheduler",
        "priorityClassName": f"{PREFIX}-user-placeholder",
        "image": "registry.k8s.io/pause:3.10",
        "resyncSeconds": 60,
        "pools": [
            {
                "name": "default",
                "size": "user",
                "requests": {"memory": "1Gi"},  # singleuser.memory.guarantee 1G, as KubeSpawner
                "nodeSelector": {},
                "tolerations": [],
                "affinity": {
                    "nodeAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100,
                                "preference": {
                                    "matchExpressions": [
                                        {
                                            "key": "hub.jupyter.org/node-purpose",
                                            "operator": "In",
                                            "values": ["user"],
                                        }
                                    ]
                                },
                            }
                        ]
                    }
                },
                "count": {
                    "mode": "static", "static": 2, "min": 0, "max": 20, "safety": 1.5,
                    "windows": [],
                },
            }
        ],
        "owner": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{PREFIX}-placeholders"},
        "users": {"namespace": "jhub", "labelSelector": "component=singleuser-server"},
        "timezone": "UTC",
        "metricsPort": 8080,
        "measureNodeOverhead": False,
        "backend": "pods",
        "capacityBuffer": {
            "fallback": "pods", "provisioningStrategy": "buffer.x-k8s.io/active-capacity",
        },
    }  # fmt: skip


def kubespawner_bytes(value: str | int) -> int:
    """What KubeSpawner puts in the user pod for a memory guarantee: its ByteSpecification
    trait reads K/M/G/T as powers of 1024 and truncates (jupyterhub/kubespawner traitlets.py)."""
    if isinstance(value, int):
        return value
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    return int(float(value[:-1]) * units[value[-1]])


@pytest.mark.parametrize(
    ("guarantee", "expected"),
    [
        ("1G", "1Gi"),
        ("512M", "512Mi"),
        ("1.5G", "1.5Gi"),
        ("0.3G", "0.3Gi"),
        ("800K", "800Ki"),
        ("2T", "2Ti"),
        (2147483648, "2147483648"),
    ],
    ids=["1G", "512M", "fraction", "fraction-rounds-up", "K", "T", "plain-bytes"],
)
def test_memory_guarantee_is_read_as_kubespawner_reads_it(
    guarantee: str | int, expected: str
) -> None:
    """A placeholder must be at least as big as the user who takes its place, and not a byte
    more: "1G" to Kubernetes is 10^9 bytes, to KubeSpawner 2^30."""
    config = placeholder_config(render_values({"singleuser": {"memory": {"guarantee": guarantee}}}))
    (pool,) = config["pools"]
    assert pool["requests"] == {"memory": expected}
    placeholder = parse_quantity(pool["requests"]["memory"])
    user = kubespawner_bytes(guarantee)
    assert 0 <= placeholder - user < 1, (placeholder, user)


def test_quantities_kubernetes_already_reads_as_binary_are_kept() -> None:
    config = placeholder_config(render_values({"singleuser": {"memory": {"guarantee": "2Gi"}}}))
    assert config["pools"][0]["requests"] == {"memory": "2Gi"}


def test_extended_resource_guarantees_are_requested_by_placeholders() -> None:
    """z2jh's singleuser.extraResource.guarantees (e.g. a GPU) is part of a user's request: a
    placeholder without it would hold a slot a GPU user cannot use."""
    values = {
        "singleuser": {
            "cpu": {"guarantee": 0.5},
            "memory": {"guarantee": "4G"},
            "extraResource": {"guarantees": {"nvidia.com/gpu": 1}},
        }
    }
    config = placeholder_config(render_values(values))
    (pool,) = config["pools"]
    assert pool["requests"] == {"cpu": 0.5, "memory": "4Gi", "nvidia.com/gpu": "1"}
    controller_config = parse_config(config)
    requests = template_pod(controller_config, controller_config.pools[0]).requests
    assert (requests.cpu, requests.memory) == (500, 4 * 1024**3)
    assert requests.scalar == {"nvidia.com/gpu": 1}


def test_adaptive_tuning_keys_reach_the_controller() -> None:
    count = {
        "mode": "adaptive", "nodeReadySeconds": 240, "nodeReadyMinSeconds": 60,
        "nodeReadyMaxSeconds": 900, "readySamples": 5, "imagePullSeconds": 90,
    }  # fmt: skip
    values = {"scheduling": {"userPlaceholder": {"pools": [{"name": "gpu", "count": count}]}}}
    config = placeholder_config(render_values(values))
    (pool,) = config["pools"]
    assert {k: pool["count"][k] for k in count} == count
    parsed = parse_config(config).pools[0].count
    assert (parsed.node_ready_min_seconds, parsed.node_ready_max_seconds) == (60, 900)


def test_explicit_pools_fill_in_user_values() -> None:
    config = placeholder_config(rendered("everything-on"))
    assert set(config) == CONFIG_KEYS | {"startupTaint"}  # everything-on enables it
    assert config["resyncSeconds"] == 30
    default, evening, adaptive = config["pools"]
    for pool in config["pools"]:
        assert set(pool) - {"nodeRequests"} == POOL_KEYS
        assert set(pool["count"]) == COUNT_KEYS
        assert pool["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert default["requests"] == {"cpu": 0.05, "memory": "512Mi"}
    startup = {"key": "startup-taint.cluster-autoscaler.kubernetes.io/hub-images",
               "operator": "Exists"}  # fmt: skip
    assert default["tolerations"] == [
        *USER_TOLERATIONS,
        {"effect": "NoSchedule", "key": "example.org/spot", "operator": "Exists"},
        startup,
    ]
    assert default["nodeSelector"] == {"hub.jupyter.org/node-purpose": "user"}
    assert default["count"]["static"] == 4
    assert evening["size"] == "node"
    assert evening["requests"] == {"cpu": 0.05, "memory": "512Mi"}, "one user's guarantee"
    assert evening["nodeRequests"] == {"cpu": "7", "memory": "28Gi"}
    assert config["measureNodeOverhead"] is True
    assert evening["nodeSelector"] == {"cloud.google.com/gke-nodepool": "user-large"}
    assert evening["count"]["mode"] == "schedule"
    assert evening["count"]["windows"] == [
        {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "17:00", "end": "19:00",
         "count": 3}
    ]  # fmt: skip
    assert adaptive["tolerations"] == [startup], "an explicit empty list is kept (+ startup)"
    assert adaptive["count"] == {
        "mode": "adaptive", "static": 0, "min": 1, "max": 30, "safety": 2.0, "windows": [],
    }  # fmt: skip


def test_controller_deployment() -> None:
    docs = rendered("everything-on")
    deployment = one(docs, "Deployment", f"{PREFIX}-placeholders")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"] == [
        "placeholders",
        "--config",
        "/etc/scheduler-extender/placeholders.yaml",
    ]
    assert container["args"][0] in cli.COMMANDS
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    volume = next(v for v in spec["volumes"] if v["name"] == "config")
    assert mount["mountPath"] == "/etc/scheduler-extender"
    assert volume["configMap"]["name"] == f"{PREFIX}-placeholders"
    assert deployment["spec"]["replicas"] == 2
    assert spec["serviceAccountName"] == f"{PREFIX}-placeholders"
    assert {e["name"] for e in container["env"]} >= {"POD_NAME", "POD_NAMESPACE"}
    # The probes hit the controller's ops server (placeholders/ops.py) on the metrics port.
    assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # Liveness gives up only after a minute of failures, on top of the controller's own limit.
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 60


def test_priority_classes() -> None:
    docs = rendered("everything-on")
    classes = {o["metadata"]["name"]: o for _, o in docs if o["kind"] == "PriorityClass"}
    assert {n: c["value"] for n, c in classes.items()} == {
        f"{PREFIX}-default-priority": 0,
        f"{PREFIX}-image-puller": -5,
        f"{PREFIX}-user-placeholder": -10,
    }
    assert not any(c["globalDefault"] for c in classes.values())
    assert classes[f"{PREFIX}-user-placeholder"]["preemptionPolicy"] == "Never"
    assert all(c["description"] for c in classes.values())


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        pytest.param(
            {"scheduling": {"userPlaceholder": {"enabled": True},
                            "podPriority": {"enabled": False}}},
            HelmRenderError, "needs scheduling.podPriority.enabled",
            id="placeholders-need-priorities",
        ),
        pytest.param(
            {"scheduling": {"podPriority": {"userPlaceholderPriority": 0}}},
            HelmRenderError, "must be below defaultPriority", id="placeholders-below-users",
        ),
        pytest.param(
            {"scheduling": {"userPlaceholder": {"enabled": True,
                                                "pools": [{"name": "Bad Name"}]}}},
            HelmValuesError, "name", id="pool-name-is-a-dns-label",
        ),
        pytest.param(
            {"scheduling": {"userPlaceholder": {"enabled": True, "pools": [
                {"name": "p", "count": {"mode": "adaptive", "maximum": 3}}]}}},
            HelmValuesError, "maximum", id="unknown-count-key",
        ),
        pytest.param(
            {"scheduling": {"userPlaceholder": {"enabled": True, "pools": [
                {"name": "p", "count": {"mode": "schedule", "windows": [
                    {"days": ["Mon"], "start": "25:00", "end": "26:00", "count": 1}]}}]}}},
            HelmValuesError, "start", id="window-time",
        ),
    ],
)  # fmt: skip
def test_unsafe_or_malformed_values_fail(
    values: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        render_values(values)


def test_placeholders_with_default_scheduler_when_user_scheduler_off() -> None:
    docs = render_values(
        {"scheduling": {"userScheduler": {"enabled": False}, "userPlaceholder": {"enabled": True}}}
    )
    assert placeholder_config(docs)["schedulerName"] == "default-scheduler"


def test_backend_values_reach_the_controller() -> None:
    """everything-on runs CapacityBuffers and refuses to fall back; the controller reads the
    rendered file as written (parse_config accepts it: the key names are its own)."""
    config = placeholder_config(rendered("everything-on"))
    assert config["backend"] == "capacityBuffer"
    assert config["capacityBuffer"] == {
        "fallback": "refuse", "provisioningStrategy": "buffer.x-k8s.io/active-capacity",
    }  # fmt: skip
    parsed = parse_config(config)
    assert (parsed.backend, parsed.capacity_buffer.fallback) == ("capacityBuffer", "refuse")
    standby = {
        "backend": "capacityBuffer",
        "capacityBuffer": {"provisioningStrategy": "buffer.x-k8s.io/standby-capacity"},
    }
    config = placeholder_config(render_values({"scheduling": {"userPlaceholder": standby}}))
    assert config["capacityBuffer"] == {
        "fallback": "pods", "provisioningStrategy": "buffer.x-k8s.io/standby-capacity",
    }  # fmt: skip
    assert parse_config(config).capacity_buffer.provisioning_strategy.endswith("standby-capacity")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"backend": "buffers"}, "backend", id="backend"),
        pytest.param({"capacityBuffer": {"fallback": "maybe"}}, "fallback", id="fallback"),
        pytest.param({"capacityBuffer": {"provisioningStrategy": ""}}, "provisioningStrategy",
                     id="empty-strategy"),
        pytest.param({"capacityBuffer": {"replicas": 3}}, "replicas", id="unknown-key"),
    ],
)  # fmt: skip
def test_bad_backend_values_fail_the_schema(values: dict[str, Any], field: str) -> None:
    with pytest.raises(HelmValuesError, match=field):
        render_values({"scheduling": {"userPlaceholder": values}})
