"""Fixtures for the placeholder controller: the fake API server (with pod admission), the real
``kubernetes`` client, and controllers with short leases, resyncs and watch timeouts.

Every wait is a condition polled against a deadline (``eventually``), never a fixed sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scheduler_extender.kube.client import KubeClient, connect
from scheduler_extender.placeholders.config import ControllerConfig, parse_config
from scheduler_extender.placeholders.controller import PlaceholderController
from scheduler_extender.placeholders.pods import POOL_LABEL
from tests.cache.conftest import eventually
from tests.fakeapi import (
    DEPLOYMENTS,
    NODES,
    PODS,
    PRIORITY_CLASSES,
    FakeApiServer,
    node_json,
)

NS = "jhub"
PRIORITY_CLASS = "hub-user-placeholder"
OWNER = "hub-placeholders"
#: Node creation -> Ready took 100 s on every test node.
CREATED = "2026-01-05T10:00:00Z"
READY = "2026-01-05T10:01:40Z"

__all__ = ["NS", "eventually", "placeholder_pods"]


def node_obj(name: str, *, cpu: str = "4", memory: str = "16Gi", **kw: Any) -> dict[str, Any]:
    obj = node_json(name, cpu=cpu, memory=memory, **kw)
    obj["metadata"]["creationTimestamp"] = CREATED
    for cond in obj["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["lastTransitionTime"] = READY
    return obj


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer(bookmark_interval=0.2, too_large_wait=0.2)
    store = fake.store
    store.pod_admission = True
    store.create(
        PRIORITY_CLASSES,
        "",
        {
            "metadata": {"name": PRIORITY_CLASS},
            "value": -10,
            "globalDefault": False,
            "preemptionPolicy": "Never",
        },
    )
    store.create(PRIORITY_CLASSES, "", {"metadata": {"name": "hub-default-priority"}, "value": 0})
    store.create(DEPLOYMENTS, NS, {"metadata": {"name": OWNER}, "spec": {"replicas": 2}})
    for i in range(2):
        store.create(NODES, "", node_obj(f"user-node-{i}"))
    with fake:
        yield fake


@pytest.fixture
def kube(server: FakeApiServer, tmp_path: Path) -> Iterator[KubeClient]:
    client = connect(kubeconfig=server.write_kubeconfig(tmp_path / "kubeconfig"))
    assert client is not None
    yield client
    client.close()


def config(**changes: Any) -> ControllerConfig:
    """A controller config as the chart renders it, with test timings; ``pools`` replaces the
    default one-pool list, other keys are top-level fields."""
    data: dict[str, Any] = {
        "namespace": NS,
        "leaseName": "hub-placeholders",
        "schedulerName": "user-scheduler",
        "priorityClassName": PRIORITY_CLASS,
        "image": "registry.k8s.io/pause:3.10",
        "resyncSeconds": 0.5,
        "owner": {"apiVersion": "apps/v1", "kind": "Deployment", "name": OWNER},
        "leaderElection": {
            "leaseDurationSeconds": 1.5,
            "renewDeadlineSeconds": 1.0,
            "retryPeriodSeconds": 0.2,
        },
        "measureNodeOverhead": True,
        "pools": [
            {
                "name": "default",
                "size": "user",
                "requests": {"cpu": 0.05, "memory": "512Mi"},
                "nodeSelector": {},
                "tolerations": [
                    {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
                     "effect": "NoSchedule"},
                ],
                "affinity": {},
                "count": {"mode": "static", "static": 3, "min": 0, "max": 20, "safety": 1.5,
                          "windows": []},
            }
        ],
    }  # fmt: skip
    data.update(changes)
    return parse_config(data, "test config")


Factory = Callable[..., PlaceholderController]


@pytest.fixture
def make_controller(kube: KubeClient) -> Iterator[Factory]:
    """Start controllers; each is shut down (Lease released) at the end unless the test
    already did, or killed it (``crash``)."""
    made: list[PlaceholderController] = []

    def make(
        cfg: ControllerConfig | None = None,
        *,
        identity: str = "replica-a",
        client: KubeClient | None = None,
        start: bool = True,
        **kwargs: Any,
    ) -> PlaceholderController:
        timing: dict[str, Any] = {
            "debounce": 0.02,
            "expectation_timeout": 5.0,
            "request_timeout": 3.0,
            "watch_timeout": 5.0,
            "watch_read_timeout": 5.0,
        }
        controller = PlaceholderController(
            cfg or config(),
            client or kube,
            identity=identity,
            registry=CollectorRegistry(),
            **(timing | kwargs),
        )
        made.append(controller)
        return controller.start() if start else controller

    yield make
    for controller in made:
        if not controller.stop.is_set():
            controller.shutdown()


def crash(controller: PlaceholderController) -> None:
    """Stop a controller the way a killed process stops: no Lease release, nothing finished."""
    controller.stop.set()
    controller.wake.set()
    for informer in (controller.placeholders, controller.nodes, controller.users):
        if informer is not None:
            informer.interrupt()
    for thread in controller._threads:
        thread.join(5)


def placeholder_pods(server: FakeApiServer, pool: str | None = None) -> list[dict[str, Any]]:
    """The placeholder pods in the API server (not terminating), optionally of one pool."""
    return [
        p
        for p in server.store.items(PODS)
        if (p["metadata"].get("labels") or {}).get("component") == "user-placeholder"
        and not p["metadata"].get("deletionTimestamp")
        and (pool is None or p["metadata"]["labels"].get(POOL_LABEL) == pool)
    ]


def count_is(server: FakeApiServer, n: int, pool: str | None = None) -> Callable[[], bool]:
    return lambda: len(placeholder_pods(server, pool)) == n


def metric(controller: PlaceholderController, name: str, **labels: str) -> float:
    value = controller.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value
