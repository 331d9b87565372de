"""values.schema.json: strict and documented; z2jh-compatible names; NOTES.txt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import helm_python
import pytest
import yaml
from helm_python import HelmValuesError

from manifests import render as chart_render
from tests.chart.conftest import NAMESPACE, RELEASE, TEST_KUBE_VERSION, render_values

SCHEMA = json.loads(chart_render.SCHEMA_JSON.read_text())
DEFAULTS = yaml.safe_load((chart_render.CHART / "values.yaml").read_text())


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    items = node.get("items")
    if isinstance(items, dict):
        yield from walk(items, f"{path}[]")


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        target: dict[str, Any] = SCHEMA["definitions"][ref.rsplit("/", 1)[1]]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def test_every_setting_is_described() -> None:
    undocumented = [
        path for path, node in walk(SCHEMA) if path and "description" not in resolve(node)
    ]
    assert undocumented == []


def test_every_object_with_properties_is_closed() -> None:
    open_objects = []
    for path, raw in walk(SCHEMA):
        node = resolve(raw)
        if "properties" in node and node.get("additionalProperties") is not False:
            open_objects.append(path or "<root>")
    # Container specs are Kubernetes objects we only read `image` from.
    assert set(open_objects) == {
        ".singleuser.initContainers[]",
        ".singleuser.extraContainers[]",
    }


def test_every_default_is_in_the_schema() -> None:
    """Walk values.yaml: every key exists in the schema (so --set on it is accepted)."""

    def check(values: dict[str, Any], node: dict[str, Any], path: str) -> list[str]:
        node = resolve(node)
        missing = []
        props = node.get("properties")
        if props is None:
            return []
        for key, value in values.items():
            if key not in props:
                missing.append(f"{path}.{key}")
            elif isinstance(value, dict):
                missing += check(value, props[key], f"{path}.{key}")
        return missing

    assert check(DEFAULTS, SCHEMA, "") == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"schedulng": {}}, "schedulng", id="top-level-typo"),
        pytest.param({"scheduling": {"userScheduler": {"extendr": {}}}}, "extendr",
                     id="nested-typo"),
        pytest.param({"scheduling": {"userPods": {"nodeAffinity": {"matchNodePurpose": "yes"}}}},
                     "matchNodePurpose", id="enum"),
        pytest.param({"scheduling": {"userScheduler": {"percentageOfNodesToScore": 150}}},
                     "percentageOfNodesToScore", id="range"),
        pytest.param({"scheduling": {"userScheduler": {"extender": {"httpTimeout": "5"}}}},
                     "httpTimeout", id="go-duration"),
        pytest.param({"scheduling": {"userScheduler": {"extender": {"settings": {"CPU": 1}}}}},
                     "CPU", id="settings-are-field-names"),
        pytest.param({"prePuller": {"extraImages": {"x": {"tag": "1"}}}}, "name",
                     id="extra-image-needs-name"),
        pytest.param({"singleuser": {"storage": {}}}, "storage", id="unread-z2jh-key"),
    ],
)  # fmt: skip
def test_schema_rejects(values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmValuesError, match=message):
        render_values(values)


def test_z2jh_sections_are_accepted_as_is() -> None:
    """A z2jh config's scheduling/prePuller keys (4.x names) render without change."""
    z2jh = {
        "scheduling": {
            "userScheduler": {"enabled": True, "replicas": 2, "logLevel": 4,
                              "pdb": {"enabled": True, "maxUnavailable": 1, "minAvailable": None},
                              "nodeSelector": {}, "tolerations": [], "labels": {},
                              "annotations": {}, "extraPodSpec": {}},
            "podPriority": {"enabled": True, "globalDefault": False, "defaultPriority": 0,
                            "imagePullerPriority": -5, "userPlaceholderPriority": -10},
            "userPlaceholder": {"enabled": True, "replicas": 3,
                                "image": {"name": "registry.k8s.io/pause", "tag": "3.10",
                                          "pullPolicy": None, "pullSecrets": []}},
            "corePods": {"nodeAffinity": {"matchNodePurpose": "prefer"}},
            "userPods": {"nodeAffinity": {"matchNodePurpose": "require"}},
        },
        "prePuller": {"hook": {"enabled": True, "pullOnlyOnChanges": True,
                               "podSchedulingWaitDuration": 10},
                      "continuous": {"enabled": True}, "pullProfileListImages": True,
                      "extraImages": {}},
    }  # fmt: skip
    assert render_values(z2jh)


def notes(values: dict[str, Any], kube_version: str = TEST_KUBE_VERSION) -> str:
    out = chart_render.render(
        values, release=RELEASE, namespace=NAMESPACE, kube_version=kube_version
    )
    return next(text for path, text in out.items() if path.endswith("NOTES.txt"))


def test_notes_give_the_check_commands() -> None:
    text = notes({})
    assert f"kubectl --namespace {NAMESPACE} get deployments,daemonsets,pods" in text
    assert "get lease hub-sched-scheduler-extender-user-scheduler" in text
    assert "scheduler_name: user-scheduler" in text
    assert "priority_class_name: hub-sched-scheduler-extender-default-priority" in text
    assert "WARNING" not in text  # the pinned scheduler is not newer than the render's cluster


def pinned(tag: str) -> dict[str, Any]:
    return {"scheduling": {"userScheduler": {"image": {"tag": tag}}}}


@pytest.mark.parametrize(
    ("values", "kube_version", "expected", "absent"),
    [
        pytest.param({}, "v1.31.4-eks-2d5f260",
                     "kube-scheduler v1.31.4 matches this cluster's Kubernetes "
                     "v1.31.4-eks-2d5f260", "WARNING", id="derived"),
        pytest.param(pinned("v1.99.0"), None,
                     "WARNING: kube-scheduler v1.99.0 is newer than this cluster", "matches",
                     id="pinned-newer"),
        pytest.param(pinned("v1.34.2"), "v1.33.5",
                     "Set scheduling.userScheduler.image.tag to v1.33.5", "NOTE: kube",
                     id="pinned-one-minor-newer"),
        pytest.param(pinned("v1.30.14"), "v1.35.1",
                     "NOTE: kube-scheduler v1.30.14 is 5 minor versions older", "WARNING",
                     id="pinned-far-older"),
        pytest.param(pinned("v1.34.2"), "v1.35.1", "", "kube-scheduler v1.34",
                     id="pinned-one-older-is-fine"),
        pytest.param(pinned("v1.37.0"), "v1.37.2",
                     "WARNING: kube-scheduler v1.37.0 is newer than v1.36, the newest",
                     "this cluster",
                     id="pinned-beyond-the-rbac"),
    ],
)  # fmt: skip
def test_notes_explain_the_kube_scheduler_version(
    values: dict[str, Any], kube_version: str | None, expected: str, absent: str
) -> None:
    text = notes(values, kube_version)
    assert expected in text
    assert absent not in text


def test_notes_point_out_the_local_image_name() -> None:
    assert "bare local name" in notes({})
    assert "bare local name" not in notes({"image": {"name": "ghcr.io/x/scheduler-extender"}})


@pytest.mark.parametrize("values_set", ["defaults", "everything-on", "no-tolerations"])
def test_helm_lint_strict_finds_no_warnings(values_set: str) -> None:
    from tests.chart.conftest import values_for

    report = helm_python.lint(
        str(chart_render.CHART),
        values_for(values_set),
        strict=True,
        namespace=NAMESPACE,
        kube_version=TEST_KUBE_VERSION,
    )
    # Severity 1 is informational ("icon is recommended"); 2 is a warning, 3 an error.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    assert report["errors"] == []


@pytest.mark.parametrize(
    ("extender", "expected"),
    [
        pytest.param({}, None, id="loopback-quiet"),
        pytest.param({"host": "::1"}, None, id="v6-loopback-quiet"),
        pytest.param({"host": "0.0.0.0"}, "open to the pod", id="any-v4"),
        pytest.param({"host": "::", "bind": True}, "That includes /bind", id="any-v6-bind"),
    ],
)
def test_notes_warn_about_an_exposed_extender(
    extender: dict[str, Any], expected: str | None
) -> None:
    text = notes({"scheduling": {"userScheduler": {"extender": extender}}})
    if expected is None:
        assert "open to the pod network" not in text.replace("\n  ", " ")
    else:
        assert expected in text.replace("\n  ", " ")
        assert "NetworkPolicy" in text
