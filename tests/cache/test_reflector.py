"""The reflector's own rules: objects that cannot be converted are skipped, not fatal."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scheduler_extender.cache.live import LiveState
from scheduler_extender.cache.store import snapshot_pods
from scheduler_extender.kube import KubeClient
from tests.cache.conftest import FAST, eventually, truth
from tests.fakeapi import NODES, PODS, FakeApiServer, node_json, pod_json

# --- objects that cannot be converted -------------------------------------------------------


def _poison_pods() -> list[dict[str, Any]]:
    """A pod whose overhead is not a finite quantity, and one whose containers are not objects."""
    infinite = pod_json("jupyter-infinite", node="user-node-00000")
    infinite["spec"]["overhead"] = {"cpu": "Infinity"}
    bogus = pod_json("jupyter-bogus", node="user-node-00001")
    bogus["spec"]["containers"] = ["not-a-container"]
    return [infinite, bogus]


def _poison_node() -> dict[str, Any]:
    node = node_json("user-node-bogus")
    node["status"]["allocatable"] = {"cpu": "NaN"}
    return node


def _without(expected: dict[str, frozenset[str]], uids: set[str]) -> dict[str, frozenset[str]]:
    return {name: pods - uids for name, pods in expected.items()}


def _skipped(registry: CollectorRegistry, kind: str) -> float:
    value = registry.get_sample_value(
        "scheduler_extender_cache_conversion_errors_total", {"kind": kind}
    )
    return value or 0.0


@pytest.mark.parametrize("when", ["in-the-list", "by-watch"])
def test_objects_that_fail_conversion_are_skipped_and_the_rest_syncs(
    when: str, server: FakeApiServer, kube: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scheduler_extender.cache.reflector")
    registry = CollectorRegistry()
    state = LiveState(kube, FAST, registry=registry)

    def add_poison() -> set[str]:
        uids = {server.store.create(PODS, "jhub", p)["metadata"]["uid"] for p in _poison_pods()}
        server.store.create(NODES, "", _poison_node())
        return uids

    poison = add_poison() if when == "in-the-list" else set()
    state.start()
    try:
        assert state.wait_synced(10), state.readiness()
        if when == "by-watch":
            poison = add_poison()
        # Everything else arrives, including a pod written after the poison.
        later = server.store.create(PODS, "jhub", pod_json("jupyter-later", node="user-node-00002"))
        want = _without(truth(server), poison)
        want.pop("user-node-bogus")
        eventually(
            lambda: snapshot_pods(state.snapshot()) == want, 10, "the cache to hold the rest"
        )
        assert later["metadata"]["uid"] in state.snapshot().pod_nodes
        assert not poison & set(state.snapshot().pod_nodes)
        assert _skipped(registry, "pods") == 2
        assert _skipped(registry, "nodes") == 1
        assert state.readiness().ready
        assert state.reflectors["pods"].status.relists == {"initial": 1}
    finally:
        state.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "pod jhub/jupyter-infinite" in logged and "Infinity" in logged
    assert "pod jhub/jupyter-bogus" in logged
    assert "node user-node-bogus" in logged
