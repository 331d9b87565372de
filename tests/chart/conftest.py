"""Rendering the chart for tests: the real Helm engine (helm-python-sdk), cached per values set.

Rendering is offline: ``lookup`` returns nothing, so the hook puller always renders and never
names its PriorityClass (see templates/image-puller/_helpers.tpl). Renders are for a fixed
cluster version (TEST_KUBE_VERSION), not Helm's built-in default, which moves with the SDK and
sets kube-scheduler's tag.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

from manifests import render as chart_render

VALUES_DIR = Path(chart_render.HERE) / "values"
RELEASE = "hub-sched"
NAMESPACE = "jhub"
#: The API server version tests render for (inside the chart's v1.30-v1.36 range).
TEST_KUBE_VERSION = "v1.34.2"

#: The values sets the issue asks for, by id; () is the chart's defaults.
VALUES_SETS: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "everything-on": ("everything-on.yaml",),
    "no-tolerations": ("no-tolerations.yaml",),
    "bind-enabled": ("bind-enabled.yaml",),
    "plain": ("plain.yaml",),
}

Obj = dict[str, Any]


def values_for(name: str) -> dict[str, Any]:
    return chart_render.load_values([VALUES_DIR / f for f in VALUES_SETS[name]])


@cache
def _render_cached(name: str) -> tuple[tuple[str, Obj], ...]:
    return tuple(
        chart_render.documents(
            chart_render.render(
                values_for(name),
                release=RELEASE,
                namespace=NAMESPACE,
                kube_version=TEST_KUBE_VERSION,
            )
        )
    )


def rendered(name: str) -> list[tuple[str, Obj]]:
    """(template, object) pairs of a values set; callers get fresh copies of the cache."""
    return copy.deepcopy(list(_render_cached(name)))


def render_values(values: dict[str, Any], **kwargs: Any) -> list[tuple[str, Obj]]:
    return chart_render.documents(
        chart_render.render(
            values,
            release=RELEASE,
            namespace=NAMESPACE,
            **{"kube_version": TEST_KUBE_VERSION, **kwargs},
        )
    )


def objects(docs: list[tuple[str, Obj]], kind: str) -> list[Obj]:
    return [obj for _, obj in docs if obj.get("kind") == kind]


def one(docs: list[tuple[str, Obj]], kind: str, name: str) -> Obj:
    found = [o for o in objects(docs, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_templates(docs: list[tuple[str, Obj]]) -> list[tuple[str, Obj]]:
    """(kind/name, pod spec) of every workload."""
    return [
        (f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"])
        for _, obj in docs
        if obj.get("kind") in ("Deployment", "DaemonSet", "Job", "StatefulSet")
    ]


def containers(spec: Obj) -> list[Obj]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
