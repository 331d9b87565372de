"""The chart's startup taint: the controller's `startupTaint` block, who tolerates the taint
(placeholders and pullers, never user pods), and the puller selector matching the pullers."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from helm_python import HelmRenderError

from scheduler_extender.placeholders.config import parse_config
from tests.chart.conftest import Obj, objects, one, render_values, rendered

PREFIX = "hub-sched-scheduler-extender"
KEY = "startup-taint.cluster-autoscaler.kubernetes.io/hub-images"
TOLERATION = {"key": KEY, "operator": "Exists"}


def placeholder_config(docs: list[tuple[str, Obj]]) -> dict[str, Any]:
    cm = one(docs, "ConfigMap", f"{PREFIX}-placeholders")
    config: dict[str, Any] = yaml.safe_load(cm["data"]["placeholders.yaml"])
    return config


def pod_tolerations(docs: list[tuple[str, Obj]], kind: str, name: str) -> list[Obj]:
    spec = one(docs, kind, name)["spec"]["template"]["spec"]
    tolerations: list[Obj] = spec.get("tolerations") or []
    return tolerations


def test_off_by_default_nothing_tolerates_it() -> None:
    docs = rendered("defaults")
    config = placeholder_config(docs)
    assert "startupTaint" not in config
    assert "maxWaitSeconds" not in placeholder_config(rendered("everything-on"))["startupTaint"]
    assert all(TOLERATION not in pool["tolerations"] for pool in config["pools"])
    for name in ("continuous-image-puller", "hook-image-puller"):
        assert TOLERATION not in pod_tolerations(docs, "DaemonSet", f"{PREFIX}-{name}")


def test_enabled_block_is_a_valid_controller_config() -> None:
    docs = rendered("everything-on")
    config = placeholder_config(docs)
    parsed = parse_config(config, "rendered")  # the controller's own validation
    taint = parsed.startup_taint
    assert taint is not None
    assert taint.key == KEY
    # Default images: exactly what the pullers pull (one init container per image).
    puller = one(docs, "DaemonSet", f"{PREFIX}-continuous-image-puller")
    pulled = {c["image"] for c in puller["spec"]["template"]["spec"]["initContainers"]}
    assert set(taint.images) == pulled
    assert taint.node_selector == {"hub.jupyter.org/node-purpose": "user"}  # singleuser's


def test_puller_selector_selects_the_continuous_pullers_pods_only() -> None:
    docs = rendered("everything-on")
    selector = placeholder_config(docs)["startupTaint"]["pullerSelector"]
    wanted = dict(part.split("=", 1) for part in selector.split(","))

    def selects(ds: str) -> bool:
        labels = one(docs, "DaemonSet", f"{PREFIX}-{ds}")["spec"]["template"]["metadata"]
        return all(labels["labels"].get(k) == v for k, v in wanted.items())

    assert selects("continuous-image-puller")
    assert not selects("hook-image-puller")


def test_placeholders_and_pullers_tolerate_it_user_pods_do_not() -> None:
    docs = rendered("everything-on")
    for pool in placeholder_config(docs)["pools"]:  # explicit tolerations: [] included
        assert TOLERATION in pool["tolerations"], pool["name"]
    for name in ("continuous-image-puller", "hook-image-puller"):
        assert TOLERATION in pod_tolerations(docs, "DaemonSet", f"{PREFIX}-{name}")
    # The user-pod tolerations the chart documents for the hub config stay without it, and
    # nothing of the chart's own (scheduler, controller) tolerates it either.
    values = render_values({"scheduling": {"startupTaint": {"enabled": True}}})
    for deployment in objects(values, "Deployment"):
        tolerations = deployment["spec"]["template"]["spec"].get("tolerations") or []
        assert all(t.get("key") != KEY for t in tolerations), deployment["metadata"]["name"]


def test_explicit_images_and_selector_win() -> None:
    docs = render_values({"scheduling": {"startupTaint": {
        "enabled": True, "key": "startup-taint.cluster-autoscaler.kubernetes.io/hub",
        "images": ["quay.io/jupyter/base-notebook:2024-07-29"],
        "nodeSelector": {"cloud.google.com/gke-nodepool": "users"},
        "maxWaitSeconds": 900}}})  # fmt: skip
    block = placeholder_config(docs)["startupTaint"]
    assert block["maxWaitSeconds"] == 900
    assert parse_config(placeholder_config(docs)).startup_taint is not None
    assert block["images"] == ["quay.io/jupyter/base-notebook:2024-07-29"]
    assert block["nodeSelector"] == {"cloud.google.com/gke-nodepool": "users"}
    assert block["key"] == "startup-taint.cluster-autoscaler.kubernetes.io/hub"


def test_needs_the_placeholder_controller() -> None:
    with pytest.raises(HelmRenderError, match=r"needs scheduling\.userPlaceholder\.enabled"):
        render_values({"scheduling": {"startupTaint": {"enabled": True},
                                      "userPlaceholder": {"enabled": False}}})  # fmt: skip
