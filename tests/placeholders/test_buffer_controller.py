"""The placeholder controller with ``backend: capacityBuffer`` against the fake API server: the
plan (static, schedule, adaptive, node-sized) drives one CapacityBuffer per pool, no placeholder
pod is created, leftover ones are deleted once the buffer is written, a removed pool's buffer is
pruned, failures are counted; and the fallback to pods when the CRD is absent, and the way back
(a pods controller deletes the buffers).

The fake validates every CapacityBuffer write against the CRD's schema (tests/fakeapi/crds.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler_extender.core.placeholders import PoolPlan
from scheduler_extender.core.types import Resources
from scheduler_extender.kube.client import KubeClient
from scheduler_extender.placeholders.buffers import (
    BufferBackend,
    build_buffer,
    choose_backend,
    object_name,
)
from tests.fakeapi import DEPLOYMENTS, NODES, PODS, PODTEMPLATES, FakeApiServer, pod_json
from tests.fakeapi.crds import CAPACITY_BUFFERS, with_capacity_buffers
from tests.placeholders.conftest import (
    NS,
    OWNER,
    Factory,
    config,
    count_is,
    eventually,
    metric,
    node_obj,
    placeholder_pods,
)

PREFIX = "scheduler_extender_placeholders"


def buffers_config(**changes: Any) -> Any:
    return config(backend="capacityBuffer", **changes)


def pools_with(**count: Any) -> list[dict[str, Any]]:
    pools: list[dict[str, Any]] = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"] = count
    return pools


def buffer(server: FakeApiServer, pool: str = "default") -> dict[str, Any] | None:
    found = [
        o
        for o in server.store.items(CAPACITY_BUFFERS)
        if o["metadata"]["name"] == object_name(pool)
    ]
    return found[0] if found else None


def replicas_are(server: FakeApiServer, n: int, pool: str = "default") -> Any:
    return lambda: (b := buffer(server, pool)) is not None and b["spec"]["replicas"] == n


def template_requests(server: FakeApiServer, pool: str = "default") -> dict[str, str]:
    template = server.store.get(PODTEMPLATES, NS, object_name(pool))
    requests: dict[str, str] = template["template"]["spec"]["containers"][0]["resources"][
        "requests"
    ]
    return requests


def record_requests(server: FakeApiServer) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    server.before_request = lambda method, path: seen.append((method, path))
    return seen


def test_schedule_window_drives_the_buffer_and_no_pod_is_created(
    server: FakeApiServer, make_controller: Factory
) -> None:
    with_capacity_buffers(server.store)
    monday_1730 = 1_767_634_200.0  # 2026-01-05 17:30 UTC, a Monday
    clock = {"now": monday_1730 - 3600}  # 16:30: before the window, min 1
    pools = pools_with(mode="schedule", min=1, max=20, windows=[
        {"days": ["Mon"], "start": "17:00", "end": "19:00", "count": 4}])  # fmt: skip
    controller = make_controller(buffers_config(pools=pools), wall=lambda: clock["now"])
    eventually(replicas_are(server, 1), what="the buffer at min 1")
    owner_uid = server.store.get(DEPLOYMENTS, NS, OWNER)["metadata"]["uid"]
    made = buffer(server)
    assert made is not None
    assert made["spec"]["podTemplateRef"] == {"name": "user-placeholder-default"}
    assert [r["uid"] for r in made["metadata"]["ownerReferences"]] == [owner_uid]
    assert template_requests(server) == {"cpu": "50m", "memory": str(512 * 1024**2)}

    clock["now"] = monday_1730  # the window opens
    controller.wake.set()
    eventually(replicas_are(server, 4), what="the window's 4")
    eventually(lambda: metric(controller, f"{PREFIX}_desired", pool="default") == 4)
    clock["now"] += 2 * 3600  # 19:30: closed again
    controller.wake.set()
    eventually(replicas_are(server, 1), what="back to min 1")
    assert placeholder_pods(server) == []
    assert metric(controller, f"{PREFIX}_created_total", pool="default") == 0
    assert len(server.store.items(CAPACITY_BUFFERS)) == 1


def test_adaptive_pool_needs_no_placeholder_pods_to_plan(
    server: FakeApiServer, make_controller: Factory
) -> None:
    """The adaptive plan observes user arrivals and nodes, never placeholder pods: with none
    at all the buffer still follows the arrival rate."""
    with_capacity_buffers(server.store)
    pools = pools_with(
        mode="adaptive", min=1, max=6, safety=1.0, rateWindowSeconds=60, burstWindowSeconds=10,
        burstMinArrivals=3, scaleDownDelaySeconds=0,
    )  # fmt: skip
    controller = make_controller(buffers_config(pools=pools))
    eventually(replicas_are(server, 1), what="min 1 with no arrivals")
    for i in range(12):
        user = pod_json(f"jupyter-u{i}", namespace=NS)
        user["spec"]["priorityClassName"] = "hub-default-priority"
        server.store.create(PODS, NS, user)
    eventually(replicas_are(server, 6), what="max 6 after 12 arrivals")
    eventually(lambda: metric(controller, f"{PREFIX}_arrival_rate_per_minute", pool="default"))
    assert metric(controller, f"{PREFIX}_arrival_rate_per_minute", pool="default") >= 60
    assert placeholder_pods(server) == []


def test_switching_to_buffers_deletes_leftover_pods_after_the_buffer_is_written(
    server: FakeApiServer, make_controller: Factory
) -> None:
    pods = make_controller()
    eventually(count_is(server, 3), what="3 placeholder pods (backend pods)")
    pods.shutdown()
    foreign = pod_json("not-ours", namespace=NS)
    foreign["metadata"]["labels"] = {"component": "user-placeholder"}
    foreign["spec"]["priorityClassName"] = "hub-default-priority"
    server.store.create(PODS, NS, foreign)
    with_capacity_buffers(server.store)
    seen = record_requests(server)
    controller = make_controller(buffers_config(), identity="replica-b")
    eventually(count_is(server, 0, "default"), what="the leftover pods deleted")
    assert replicas_are(server, 3)()
    writes = [(m, p) for m, p in seen if m in ("POST", "PUT", "DELETE") and "/leases" not in p]
    first_buffer = next(i for i, (m, p) in enumerate(writes) if "/capacitybuffers" in p)
    first_delete = next(i for i, (m, p) in enumerate(writes) if m == "DELETE")
    assert first_buffer < first_delete, writes
    eventually(lambda: metric(controller, f"{PREFIX}_deleted_total", pool="default") == 3)
    assert server.store.get(PODS, NS, "not-ours")["metadata"]["name"] == "not-ours"
    assert not any(m == "POST" and p.endswith("/pods") for m, p in seen)


def test_a_buffer_error_is_counted_and_the_pods_stay(
    server: FakeApiServer, make_controller: Factory
) -> None:
    """A buffer of that name that is not ours: BufferError every pass, counted; the pool's
    placeholder pods keep the room since no buffer holds it."""
    pods = make_controller()
    eventually(count_is(server, 3))
    pods.shutdown()
    with_capacity_buffers(server.store)
    foreign = build_buffer(buffers_config(), "default", 9, None)
    foreign["metadata"]["labels"] = {"team": "ops"}
    server.store.create(CAPACITY_BUFFERS, NS, foreign)
    controller = make_controller(buffers_config(), identity="replica-b")
    eventually(
        lambda: metric(controller, f"{PREFIX}_api_errors_total", op="buffer") >= 2,
        what="the failing sync counted on two passes",
    )
    assert len(placeholder_pods(server, "default")) == 3
    assert server.store.get(CAPACITY_BUFFERS, NS, object_name("default"))["spec"]["replicas"] == 9


def test_a_removed_pool_s_buffer_is_pruned_on_becoming_leader(
    server: FakeApiServer, kube: KubeClient, make_controller: Factory
) -> None:
    with_capacity_buffers(server.store)
    two = buffers_config(
        pools=[*config().model_dump(by_alias=True)["pools"],
               {"name": "evening", "requests": {"memory": "1Gi"},
                "count": {"mode": "static", "static": 2}}]
    )  # fmt: skip
    first = make_controller(two)
    eventually(replicas_are(server, 2, "evening"), what="the evening pool's buffer")
    eventually(replicas_are(server, 3), what="the default pool's buffer")
    first.shutdown()
    # Restarted with the evening pool removed from the config.
    make_controller(buffers_config(), identity="replica-b")
    eventually(
        lambda: (
            {o["metadata"]["name"] for o in server.store.items(PODTEMPLATES)}
            == {"user-placeholder-default"}
        ),
        what="the evening template pruned",
    )
    assert buffer(server, "evening") is None
    assert replicas_are(server, 3)()


def test_buffer_status_is_exported(server: FakeApiServer, make_controller: Factory) -> None:
    with_capacity_buffers(server.store)
    controller = make_controller(buffers_config())
    eventually(replicas_are(server, 3))
    assert (
        controller.registry.get_sample_value(f"{PREFIX}_buffer_replicas", {"pool": "default"})
        is None
    )

    def report(obj: dict[str, Any]) -> dict[str, Any]:
        obj["status"] = {
            "replicas": 3,
            "conditions": [{"type": "Ready", "status": "False", "reason": "NoCapacity",
                            "message": "", "lastTransitionTime": "2026-01-05T10:00:00Z"}],
        }  # fmt: skip
        return obj

    server.store.update(CAPACITY_BUFFERS, NS, object_name("default"), report)
    controller.wake.set()
    eventually(lambda: metric(controller, f"{PREFIX}_buffer_replicas", pool="default") == 3)
    assert controller.registry.get_sample_value(f"{PREFIX}_buffer_ready", {"pool": "default"}) == 0


def test_node_sized_pool_keeps_its_template_through_a_small_drift(
    server: FakeApiServer, make_controller: Factory
) -> None:
    """The plan's node size grows by less than NODE_SIZE_TOLERANCE (a smaller node left):
    the PodTemplate is not rewritten, as node-sized pods would not be replaced."""
    with_capacity_buffers(server.store)
    server.store.create(NODES, "", node_obj("user-node-small", cpu="4", memory="15.8Gi"))
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0].update({"size": "node", "count": {"mode": "static", "static": 2}})
    controller = make_controller(buffers_config(pools=pools, measureNodeOverhead=False))
    eventually(replicas_are(server, 2))
    before = server.store.get(PODTEMPLATES, NS, object_name("default"))
    plan = controller.pools["default"].plan
    assert plan is not None and plan.requests is not None
    small = plan.requests.memory
    assert template_requests(server)["memory"] == str(small)
    server.store.delete(NODES, "", "user-node-small")
    eventually(
        lambda: (
            (p := controller.pools["default"].plan) is not None
            and p.requests is not None
            and p.requests.memory > small
        ),
        what="the plan sized by the 16Gi nodes",
    )
    passes = metric(controller, f"{PREFIX}_reconciles_total")
    controller.wake.set()
    eventually(lambda: metric(controller, f"{PREFIX}_reconciles_total") >= passes + 2)
    after = server.store.get(PODTEMPLATES, NS, object_name("default"))
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_crd_absent_falls_back_to_pods(
    server: FakeApiServer, kube: KubeClient, make_controller: Factory
) -> None:
    cfg = buffers_config()  # capacityBuffer.fallback: pods (the default)
    backend = choose_backend(cfg, kube)
    assert backend == "pods"
    controller = make_controller(cfg, backend=backend)
    assert controller.buffers is None
    eventually(count_is(server, 3), what="placeholder pods instead")


def test_back_to_pods_deletes_this_controller_s_buffers(
    server: FakeApiServer, kube: KubeClient, make_controller: Factory
) -> None:
    with_capacity_buffers(server.store)
    other = config(leaseName="other-hub", pools=[{"name": "other"}])
    BufferBackend(other, kube).sync("other", PoolPlan("other", 1, Resources(50, 1024**3, 1), 1))
    first = make_controller(buffers_config())
    eventually(replicas_are(server, 3))
    first.shutdown()
    make_controller(config(), identity="replica-b")
    eventually(lambda: buffer(server) is None, what="this controller's buffer deleted")
    eventually(count_is(server, 3), what="placeholder pods again")
    names = {o["metadata"]["name"] for o in server.store.items(CAPACITY_BUFFERS)}
    assert names == {"user-placeholder-other"}  # another controller's: left alone
    names = {o["metadata"]["name"] for o in server.store.items(PODTEMPLATES)}
    assert names == {"user-placeholder-other"}


def test_pods_backend_without_the_crd_asks_discovery_only(
    server: FakeApiServer, make_controller: Factory
) -> None:
    seen = record_requests(server)
    make_controller(config())
    eventually(count_is(server, 3))
    buffer_calls = [p for _, p in seen if "autoscaling.x-k8s.io" in p]
    assert buffer_calls == ["/apis/autoscaling.x-k8s.io/v1beta1"]


@pytest.mark.parametrize("crd", [True, False], ids=["crd-served", "crd-absent-fallback-pods"])
def test_the_command_runs_the_backend_it_chose(
    server: FakeApiServer, tmp_path: Path, crd: bool
) -> None:
    """``scheduler-extender placeholders`` as a process: with the CRD it keeps a buffer and
    creates no pod; without it (fallback: pods) it says so and runs placeholder pods."""
    if crd:
        with_capacity_buffers(server.store)
    path = tmp_path / "placeholders.yaml"
    data = buffers_config().model_dump(by_alias=True, exclude_none=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler_extender.cli", "placeholders", "--config", str(path),
         "--kubeconfig", str(kubeconfig)],
        env={**os.environ, "POD_NAME": "placeholders-0"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if crd:
            eventually(replicas_are(server, 3), timeout=20, what="the process's buffer")
        else:
            eventually(count_is(server, 3), timeout=20, what="the process's placeholder pods")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    if crd:
        assert "backend capacityBuffer" in err and placeholder_pods(server) == []
    else:
        assert "falling back to placeholder pods (capacityBuffer.fallback: pods)" in err
        assert "backend pods" in err
        assert server.store.items(PODTEMPLATES) == []
