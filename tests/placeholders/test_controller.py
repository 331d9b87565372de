"""The placeholder controller against the local API server with the real ``kubernetes`` client:
the pods it makes, prompt replacement of preempted ones, scale-down, and what it never touches."""

from __future__ import annotations

import time

import kubernetes_validate
import pytest

from scheduler_extender.placeholders.pods import (
    CONTROLLER_LABEL,
    POOL_LABEL,
    SPEC_HASH,
    OwnerRef,
    build_pod,
)
from tests.fakeapi import DEPLOYMENTS, PODS, FakeApiServer, pod_json
from tests.placeholders.conftest import (
    NS,
    OWNER,
    PRIORITY_CLASS,
    Factory,
    config,
    count_is,
    eventually,
    metric,
    placeholder_pods,
)

PREFIX = "scheduler_extender_placeholders"


def bind_all(server: FakeApiServer, node: str = "user-node-0") -> None:
    """Play kube-scheduler: bind every pending placeholder to ``node``."""
    for pod in placeholder_pods(server):
        if not pod["spec"].get("nodeName"):
            server.store.bind(NS, pod["metadata"]["name"], {"target": {"name": node}})


def preempt(server: FakeApiServer, pod: dict) -> None:
    """What kube-scheduler does to a victim: a DisruptionTarget condition, then a delete (the
    pod's grace period is 0, so it is gone at once)."""
    name = pod["metadata"]["name"]
    server.store.patch(
        PODS,
        NS,
        name,
        {"status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                    "reason": "PreemptionByScheduler"}]}},
    )  # fmt: skip
    server.store.delete(PODS, NS, name, {})


def test_static_pool_pods_follow_the_contract(server: FakeApiServer, make_controller: Factory):
    controller = make_controller()
    eventually(count_is(server, 3), what="3 placeholders")
    owner_uid = server.store.get(DEPLOYMENTS, NS, OWNER)["metadata"]["uid"]
    for pod in placeholder_pods(server):
        meta, spec = pod["metadata"], pod["spec"]
        assert meta["labels"]["component"] == "user-placeholder"
        assert meta["labels"][CONTROLLER_LABEL] == "hub-placeholders"
        assert meta["labels"][POOL_LABEL] == "default"
        assert meta["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "true"
        assert meta["annotations"][SPEC_HASH]
        assert meta["ownerReferences"] == [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": OWNER, "uid": owner_uid,
             "controller": False, "blockOwnerDeletion": False}
        ]  # fmt: skip
        assert spec["priorityClassName"] == PRIORITY_CLASS
        assert spec["priority"] == -10, "resolved by the Priority admission plugin"
        assert spec["schedulerName"] == "user-scheduler"
        assert spec["terminationGracePeriodSeconds"] == 0
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = spec["containers"]
        assert container["image"] == "registry.k8s.io/pause:3.10"
        assert container["resources"] == {"requests": {"cpu": "50m", "memory": "536870912"}}
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert spec["tolerations"][0]["key"] == "hub.jupyter.org/dedicated"
        # The pod is a valid v1 Pod for the Kubernetes OpenAPI schema (strict: no unknown key).
        body = {k: v for k, v in pod.items() if k != "status"}
        kubernetes_validate.validate(body, "1.30", strict=True)
    eventually(lambda: metric(controller, f"{PREFIX}_desired", pool="default") == 3)
    assert metric(controller, f"{PREFIX}_leader") == 1


def test_preempted_placeholder_is_replaced_at_once(server: FakeApiServer, make_controller: Factory):
    controller = make_controller(config(resyncSeconds=60))  # only the watch can wake it
    eventually(count_is(server, 3), what="3 placeholders")
    bind_all(server)
    eventually(lambda: metric(controller, f"{PREFIX}_actual", pool="default", phase="bound") == 3)
    victim = placeholder_pods(server)[0]
    preempt(server, victim)
    eventually(count_is(server, 3), timeout=3.0, what="a replacement")
    pods = placeholder_pods(server)
    assert victim["metadata"]["uid"] not in {p["metadata"]["uid"] for p in pods}
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    assert len(pending) == 1, "the replacement is Pending: that is what triggers a scale-up"
    eventually(
        lambda: metric(controller, f"{PREFIX}_preemptions_total", pool="default",
                       reason="preempted") == 1
    )  # fmt: skip


def test_pending_placeholders_are_never_churned(server: FakeApiServer, make_controller: Factory):
    controller = make_controller(config(resyncSeconds=0.1))
    eventually(count_is(server, 3), what="3 placeholders")
    uids = {p["metadata"]["uid"] for p in placeholder_pods(server)}
    start = metric(controller, f"{PREFIX}_reconciles_total")
    eventually(lambda: metric(controller, f"{PREFIX}_reconciles_total") >= start + 10)
    assert {p["metadata"]["uid"] for p in placeholder_pods(server)} == uids
    assert metric(controller, f"{PREFIX}_deleted_total", pool="default") == 0
    assert metric(controller, f"{PREFIX}_created_total", pool="default") == 3


def test_surplus_goes_pending_first(server: FakeApiServer, make_controller: Factory):
    cfg = config()
    first = make_controller(cfg)
    eventually(count_is(server, 3))
    bind_all(server)
    # A fourth pod of the pool, Pending (as if a racing replica had made it).
    owner = OwnerRef("apps/v1", "Deployment", OWNER,
                     server.store.get(DEPLOYMENTS, NS, OWNER)["metadata"]["uid"])  # fmt: skip
    pool = cfg.pools[0]
    server.store.create(PODS, NS, build_pod(cfg, pool, pool.user_requests(), owner))
    eventually(count_is(server, 3), what="the extra pod removed")
    assert all(p["spec"].get("nodeName") for p in placeholder_pods(server)), "bound ones stay"
    first.shutdown()
    bound = {p["metadata"]["uid"] for p in placeholder_pods(server)}
    pools = cfg.model_dump(by_alias=True)["pools"]
    pools[0]["count"]["static"] = 1
    make_controller(config(pools=pools), identity="replica-b")
    eventually(count_is(server, 1), what="scaled down to 1")
    assert {p["metadata"]["uid"] for p in placeholder_pods(server)} <= bound


def test_never_touches_pods_that_are_not_its_own(server: FakeApiServer, make_controller: Factory):
    user = pod_json("jupyter-alice", namespace=NS, node="user-node-0")
    user["spec"]["priorityClassName"] = "hub-default-priority"
    zjh = pod_json("user-placeholder-0", namespace=NS, node="user-node-1", priority=-10)
    zjh["spec"]["priorityClassName"] = PRIORITY_CLASS  # z2jh's own, no controller label
    forged = pod_json("forged", namespace=NS, node="user-node-1", priority=-10)
    forged["spec"]["priorityClassName"] = PRIORITY_CLASS
    forged["metadata"]["labels"].update(
        {CONTROLLER_LABEL: "hub-placeholders", POOL_LABEL: "default"}
    )  # our labels, but no ownerReference to our Deployment
    for obj in (user, zjh, forged):
        server.store.create(PODS, NS, obj)
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"]["static"] = 0
    controller = make_controller(config(pools=pools))
    eventually(lambda: metric(controller, f"{PREFIX}_reconciles_total") >= 5)
    names = {p["metadata"]["name"] for p in server.store.items(PODS)}
    assert {"jupyter-alice", "user-placeholder-0", "forged"} <= names
    assert metric(controller, f"{PREFIX}_deleted_total", pool="default") == 0


def test_a_new_spec_replaces_the_pods(server: FakeApiServer, make_controller: Factory):
    first = make_controller()
    eventually(count_is(server, 3))
    old = {p["metadata"]["uid"] for p in placeholder_pods(server)}
    first.shutdown()
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["requests"] = {"cpu": "100m", "memory": "1Gi"}
    make_controller(config(pools=pools), identity="replica-b")

    def replaced() -> bool:
        pods = placeholder_pods(server)
        return len(pods) == 3 and not old & {p["metadata"]["uid"] for p in pods}

    eventually(replaced, what="3 new placeholders")
    for pod in placeholder_pods(server):
        requests = pod["spec"]["containers"][0]["resources"]["requests"]
        assert requests == {"cpu": "100m", "memory": str(1024**3)}


def test_placeholders_are_garbage_collected_with_their_owner(
    server: FakeApiServer, make_controller: Factory
) -> None:
    controller = make_controller()
    eventually(count_is(server, 3))
    controller.shutdown()
    server.store.delete(DEPLOYMENTS, NS, OWNER)
    assert server.store.collect_garbage() == 3
    assert placeholder_pods(server) == []


def test_finished_placeholders_are_cleaned_up(server: FakeApiServer, make_controller: Factory):
    make_controller()
    eventually(count_is(server, 3))
    bind_all(server)
    victim = placeholder_pods(server)[0]
    # The kubelet evicted it (node pressure): phase Failed, still there.
    server.store.patch(PODS, NS, victim["metadata"]["name"],
                       {"status": {"phase": "Failed", "reason": "Evicted"}})  # fmt: skip

    def cleaned() -> bool:
        names = {p["metadata"]["name"] for p in server.store.items(PODS)}
        live = [p for p in placeholder_pods(server) if p["status"].get("phase") != "Failed"]
        return victim["metadata"]["name"] not in names and len(live) == 3

    eventually(cleaned, what="the failed pod deleted and replaced")


@pytest.mark.parametrize(
    ("node_requests", "expected"),
    [
        pytest.param(None, {"cpu": "3800m", "memory": str(16 * 1024**3 - 200 * 1024**2)},
                     id="allocatable-minus-daemonsets"),
        pytest.param({"cpu": "2", "memory": "8Gi"}, {"cpu": "2000m", "memory": str(8 * 1024**3)},
                     id="explicit-nodeRequests"),
    ],
)  # fmt: skip
def test_node_sized_pool(
    server: FakeApiServer, make_controller: Factory, node_requests: dict | None, expected: dict
) -> None:
    for node in ("user-node-0", "user-node-1"):
        ds = pod_json(f"puller-{node}", namespace="kube-system", node=node, cpu="200m",
                      memory="200Mi")  # fmt: skip
        ds["spec"].pop("priorityClassName")
        ds["metadata"]["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "puller", "uid": "ds-1",
             "controller": True}
        ]  # fmt: skip
        server.store.create(PODS, "kube-system", ds)
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0].update({"size": "node", "nodeRequests": node_requests})
    pools[0]["count"]["static"] = 2
    make_controller(config(pools=pools))
    eventually(count_is(server, 2))
    for pod in placeholder_pods(server):
        assert pod["spec"]["containers"][0]["resources"]["requests"] == expected


def test_schedule_window_opens_and_closes(server: FakeApiServer, make_controller: Factory):
    monday_1730 = 1_767_634_200.0  # 2026-01-05 17:30 UTC, a Monday
    clock = {"now": monday_1730}
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"] = {"mode": "schedule", "min": 1, "max": 20, "windows": [
        {"days": ["Mon"], "start": "17:00", "end": "19:00", "count": 4}]}  # fmt: skip
    controller = make_controller(config(pools=pools), wall=lambda: clock["now"])
    eventually(count_is(server, 4), what="the window's 4")
    clock["now"] += 2 * 3600  # 19:30: outside, min 1
    controller.wake.set()
    eventually(count_is(server, 1), what="back to min")


def test_adaptive_pool_follows_arrivals(server: FakeApiServer, make_controller: Factory):
    server_now = time.time()
    clock = {"now": server_now}
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"] = {
        "mode": "adaptive", "min": 1, "max": 6, "safety": 1.0,
        "rateWindowSeconds": 60, "burstWindowSeconds": 10, "burstMinArrivals": 3,
        "scaleDownDelaySeconds": 0,
    }  # fmt: skip
    controller = make_controller(config(pools=pools), wall=lambda: clock["now"])
    eventually(count_is(server, 1), what="min 1 with no arrivals")
    for i in range(12):
        user = pod_json(f"jupyter-u{i}", namespace=NS)
        user["spec"]["priorityClassName"] = "hub-default-priority"
        server.store.create(PODS, NS, user)
    # 12 users in the last 10 s: 1.2/s x 100 s node-ready (learned) -> 120, capped at max 6.
    eventually(count_is(server, 6), what="max 6")
    eventually(
        lambda: metric(controller, f"{PREFIX}_arrival_rate_per_minute", pool="default") >= 60
    )
    assert metric(controller, f"{PREFIX}_node_ready_seconds", pool="default") == 100
    clock["now"] = server_now + 3600  # an hour later nobody came: the rate is 0
    controller.wake.set()
    eventually(count_is(server, 1), what="back to min")
