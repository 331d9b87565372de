"""Startup-taint removal in the placeholder controller, against the local API server with the
real ``kubernetes`` client: removed once a node has the images (or its puller pod is Ready),
kept while it has not, retried on 409 Conflict without losing another writer's taint, removed
again when it comes back, and never touched on nodes the nodeSelector does not select."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scheduler_extender.kube.client import ApiError, connect
from scheduler_extender.kube.convert import timestamp
from scheduler_extender.placeholders.config import ConfigError
from tests.fakeapi import NODES, PODS, FakeApiServer
from tests.fakeapi.objects import IMAGE
from tests.placeholders.conftest import (
    NS,
    READY,
    Factory,
    config,
    eventually,
    metric,
    node_obj,
)

KEY = "startup-taint.cluster-autoscaler.kubernetes.io/hub-images"
STARTUP = {"key": KEY, "value": "pulling", "effect": "NoSchedule"}
DEDICATED = {"key": "hub.jupyter.org/dedicated", "value": "user", "effect": "NoSchedule"}
OTHER = {"key": "example.com/maintenance", "value": "soon", "effect": "NoSchedule"}
USER_NODES = {"hub.jupyter.org/node-purpose": "user"}
PULLER_LABELS = {"component": "continuous-image-puller"}


def taint_config(**taint: Any) -> Any:
    block = {"key": KEY, "images": [IMAGE], "nodeSelector": USER_NODES} | taint
    return config(startupTaint=block)


def add_node(
    server: FakeApiServer, name: str, *, images: tuple[str, ...] = (), user: bool = True
) -> None:
    """A node that just registered with the startup taint (and, on user nodes, the dedicated
    taint), holding ``images``."""
    obj = node_obj(name, images=images, user=user)
    obj["spec"]["taints"] = [*obj["spec"].get("taints", []), dict(STARTUP)]
    server.store.create(NODES, "", obj)


def taints(server: FakeApiServer, name: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = server.store.get(NODES, "", name)["spec"].get("taints") or []
    return result


def add_taint(server: FakeApiServer, name: str, taint: dict[str, Any]) -> None:
    """Another writer adds a taint (straight into the store)."""
    server.store.patch(NODES, "", name, {"spec": {"taints": [*taints(server, name), taint]}})


def keys(server: FakeApiServer, name: str) -> set[str]:
    return {t["key"] for t in taints(server, name)}


def passes_after(controller: Any, n: int) -> Any:
    """A condition: the loop went round ``n`` more times from now (each round also runs the
    startup-taint pass, right after the reconcile)."""
    name = "scheduler_extender_placeholders_reconciles_total"
    start = metric(controller, name)
    return lambda: metric(controller, name) >= start + n


def removed(controller: Any) -> float:
    return metric(controller, "scheduler_extender_startup_taints_removed_total")


def test_taint_removed_once_the_node_has_the_images(
    server: FakeApiServer, make_controller: Factory
) -> None:
    add_node(server, "new-0", images=(IMAGE,))
    controller = make_controller(taint_config())
    eventually(lambda: removed(controller) == 1, what="startup taint removed")
    assert taints(server, "new-0") == [DEDICATED]  # the other taint, untouched


def test_a_node_without_the_images_keeps_the_taint_until_they_arrive(
    server: FakeApiServer, make_controller: Factory
) -> None:
    add_node(server, "new-0", images=("quay.io/jupyter/base-notebook:2024-07-29",))
    controller = make_controller(taint_config())
    eventually(passes_after(controller, 3), what="three passes")
    waiting = "scheduler_extender_startup_taint_waiting_nodes"
    eventually(lambda: metric(controller, waiting) == 1, what="one node waiting")
    assert KEY in keys(server, "new-0")
    assert removed(controller) == 0
    # The puller finishes: the kubelet reports the image.
    node = server.store.get(NODES, "", "new-0")
    images = [*node["status"]["images"], {"names": [IMAGE], "sizeBytes": 1}]
    server.store.patch(NODES, "", "new-0", {"status": {"images": images}})
    eventually(lambda: KEY not in keys(server, "new-0"), what="startup taint removed")
    eventually(lambda: metric(controller, waiting) == 0, what="no node waiting")


def test_a_conflict_mid_removal_is_retried_without_dropping_the_other_writers_taint(
    server: FakeApiServer, make_controller: Factory
) -> None:
    """Between the controller's read and its write, another writer adds a taint: the write
    meets 409 Conflict, the node is read again, and both the other writer's taint and the
    dedicated taint survive."""
    add_node(server, "new-0", images=(IMAGE,))
    raced: list[str] = []

    def other_writer(method: str, path: str) -> None:
        if method == "PATCH" and path.startswith("/api/v1/nodes/new-0") and not raced:
            raced.append(path)
            add_taint(server, "new-0", OTHER)

    server.before_request = other_writer
    controller = make_controller(taint_config())
    eventually(lambda: removed(controller) == 1, what="startup taint removed")
    assert raced, "the other writer never ran"
    assert taints(server, "new-0") == [DEDICATED, OTHER]
    assert metric(controller, "scheduler_extender_startup_taint_conflicts_total") >= 1


def test_a_taint_that_comes_back_is_removed_again(
    server: FakeApiServer, make_controller: Factory
) -> None:
    add_node(server, "new-0", images=(IMAGE,))
    controller = make_controller(taint_config())
    eventually(lambda: removed(controller) == 1, what="first removal")
    add_taint(server, "new-0", STARTUP)
    eventually(lambda: removed(controller) == 2, what="second removal")
    assert taints(server, "new-0") == [DEDICATED]


def test_nodes_the_selector_does_not_select_are_untouched(
    server: FakeApiServer, make_controller: Factory
) -> None:
    add_node(server, "core-0", images=(IMAGE,), user=False)  # no node-purpose=user label
    add_node(server, "new-0", images=(IMAGE,))
    controller = make_controller(taint_config())
    eventually(lambda: KEY not in keys(server, "new-0"), what="the selected node untainted")
    eventually(passes_after(controller, 2), what="two more passes")
    assert taints(server, "core-0") == [STARTUP]
    assert removed(controller) == 1


def test_a_ready_puller_pod_on_the_node_is_enough(
    server: FakeApiServer, make_controller: Factory
) -> None:
    """Images the kubelet reports under other names still count once the continuous puller's
    pod on the node is Ready (its init containers pulled every image)."""
    add_node(server, "new-0", images=())
    add_node(server, "new-1", images=())
    pod = {
        "metadata": {"name": "puller-new-0", "labels": PULLER_LABELS},
        "spec": {"nodeName": "new-0", "containers": [{"name": "pause", "image": "pause"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]},
    }
    server.store.create(PODS, NS, pod)
    controller = make_controller(taint_config(pullerSelector="component=continuous-image-puller"))
    eventually(passes_after(controller, 3), what="three passes")
    assert KEY in keys(server, "new-0")
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    server.store.patch(PODS, NS, "puller-new-0", {"status": ready})
    eventually(lambda: removed(controller) == 1, what="startup taint removed")
    assert KEY not in keys(server, "new-0")
    assert KEY in keys(server, "new-1")  # no Ready puller there


def test_max_wait_releases_a_node_that_never_gets_the_images(
    server: FakeApiServer, make_controller: Factory
) -> None:
    """With maxWaitSeconds, a node Ready that long without the images is opened to users (it
    would otherwise stay closed for good); before that it keeps the taint."""
    add_node(server, "new-0", images=())
    ready = timestamp(READY, "READY")
    clock = [ready + 100.0]
    controller = make_controller(taint_config(maxWaitSeconds=300), wall=lambda: clock[0])
    eventually(passes_after(controller, 3), what="three passes")
    assert KEY in keys(server, "new-0")
    clock[0] = ready + 301.0
    server.store.patch(NODES, "", "new-0", {"metadata": {"labels": {"poke": "1"}}})  # an event
    eventually(lambda: removed(controller) == 1, what="released after maxWaitSeconds")
    assert taints(server, "new-0") == [DEDICATED]


def test_the_fake_api_server_refuses_a_patch_on_a_stale_resource_version(
    server: FakeApiServer, tmp_path: Path
) -> None:
    """The protocol the removal relies on: a merge patch carrying metadata.resourceVersion is
    applied only to that version."""
    add_node(server, "new-0", images=(IMAGE,))
    kube = connect(kubeconfig=server.write_kubeconfig(tmp_path / "kubeconfig"))
    assert kube is not None
    try:
        node = kube.get_node("new-0", timeout=5)
        stale = node["metadata"]["resourceVersion"]
        server.store.patch(NODES, "", "new-0", {"metadata": {"labels": {"touched": "yes"}}})
        with pytest.raises(ApiError) as caught:
            kube.patch_node_taints("new-0", [DEDICATED], resource_version=stale, timeout=5)
        assert caught.value.code == 409
        assert KEY in keys(server, "new-0")
        fresh = kube.get_node("new-0", timeout=5)["metadata"]["resourceVersion"]
        kube.patch_node_taints("new-0", [DEDICATED], resource_version=fresh, timeout=5)
        assert taints(server, "new-0") == [DEDICATED]
    finally:
        kube.close()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param({"images": [IMAGE]}, "startupTaint.key: Field required", id="no-key"),
        pytest.param({"key": "not a key!", "images": [IMAGE]}, "not a valid taint key",
                     id="bad-key"),
        pytest.param({"key": "hub.jupyter.org/dedicated", "images": [IMAGE]},
                     "is not a startup taint", id="dedicated"),
        pytest.param({"key": "node.kubernetes.io/not-ready", "images": [IMAGE]},
                     "is not a startup taint", id="node-lifecycle"),
        pytest.param({"key": KEY}, "needs images or pullerSelector", id="nothing-to-wait-for"),
        pytest.param({"key": KEY, "images": [" "]}, "image 0 is empty", id="empty-image"),
        pytest.param({"key": KEY, "images": [IMAGE], "nodeselector": {}}, "nodeselector",
                     id="typo"),
        pytest.param({"key": KEY, "images": [IMAGE], "maxWaitSeconds": 0}, "maxWaitSeconds",
                     id="max-wait-zero"),
    ],
)  # fmt: skip
def test_bad_startup_taint_config_names_the_field(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(startupTaint=block)
    assert "startupTaint" in str(caught.value)
    assert message in str(caught.value)
