"""Cluster state as the HTTP app reads it, and a static implementation loaded from a file.

The app depends only on ``ClusterState``: a consistent ``Snapshot`` (nodes, the pods on each,
assumed pods included) plus readiness.  ``StaticState`` serves a snapshot file (the demo, tests,
offline "what would it do" checks); the live, watch-fed state lives in ``scheduler_extender.cache``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import yaml

from scheduler_extender.cache.readiness import Readiness
from scheduler_extender.core.snapshot import build_snapshot
from scheduler_extender.core.types import Snapshot
from scheduler_extender.kube.convert import (
    DEFAULT_PLACEHOLDER_RULE,
    PlaceholderRule,
    is_terminal,
    node_from_json,
    pod_from_json,
)

DEMO_SNAPSHOT = "demo-cluster.yaml"


class ClusterState(Protocol):
    """What the extender needs from wherever cluster state comes from."""

    def snapshot(self) -> Snapshot:
        """The current consistent view.  Cheap: called on every request."""
        ...

    def readiness(self) -> Readiness:
        """Whether the view is complete and fresh enough to schedule by."""
        ...

    def describe(self) -> str:
        """One line for logs: where the state comes from."""
        ...


class StaticState:
    """A fixed snapshot, always ready."""

    def __init__(self, snapshot: Snapshot, source: str = "static snapshot") -> None:
        self._snapshot = snapshot
        self._source = source

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def readiness(self) -> Readiness:
        return Readiness(True)

    def describe(self) -> str:
        nodes = len(self._snapshot.nodes)
        pods = len(self._snapshot.pod_nodes)
        return f"{self._source} ({nodes} nodes, {pods} pods)"


class SnapshotFileError(ValueError):
    pass


def _with_kind(item: Any, kind: str | None) -> Any:
    if kind and isinstance(item, Mapping) and "kind" not in item:
        return {**item, "kind": kind}
    return item


def split_objects(
    documents: Iterable[Any],
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Nodes and Pods from decoded documents: kubectl ``List``s, ``NodeList``/``PodList``,
    single objects, or ``{nodes: [...], pods: [...]}``."""
    nodes: list[Mapping[str, Any]] = []
    pods: list[Mapping[str, Any]] = []

    def visit(obj: Any, where: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, Mapping):
            raise SnapshotFileError(f"{where}: expected an object, got {type(obj).__name__}")
        kind = obj.get("kind")
        if kind == "Node":
            nodes.append(obj)
        elif kind == "Pod":
            pods.append(obj)
        elif kind in ("List", "NodeList", "PodList") or "items" in obj:
            items = obj.get("items") or []
            if not isinstance(items, list):
                raise SnapshotFileError(f"{where}.items: expected a list")
            implied = {"NodeList": "Node", "PodList": "Pod"}.get(str(kind))
            for i, item in enumerate(items):
                visit(_with_kind(item, implied), f"{where}.items[{i}]")
        elif "nodes" in obj or "pods" in obj:
            for key, implied_kind in (("nodes", "Node"), ("pods", "Pod")):
                for i, item in enumerate(obj.get(key) or []):
                    visit(_with_kind(item, implied_kind), f"{where}.{key}[{i}]")
        else:
            raise SnapshotFileError(f"{where}: not a Node, Pod or list of them (kind={kind!r})")

    for index, doc in enumerate(documents):
        visit(doc, f"document {index}")
    return nodes, pods


def snapshot_from_objects(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    rule: PlaceholderRule = DEFAULT_PLACEHOLDER_RULE,
) -> Snapshot:
    """A snapshot from Node and Pod JSON objects; terminal pods are left out."""
    core_nodes = [node_from_json(n, f"nodes[{i}]") for i, n in enumerate(nodes)]
    core_pods = [
        pod_from_json(p, rule, f"pods[{i}]") for i, p in enumerate(pods) if not is_terminal(p)
    ]
    return build_snapshot(core_nodes, core_pods)


def parse_snapshot_text(text: str, rule: PlaceholderRule = DEFAULT_PLACEHOLDER_RULE) -> Snapshot:
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        documents: list[Any] = [json.loads(text)]
    else:
        documents = list(yaml.safe_load_all(text))
    nodes, pods = split_objects(documents)
    return snapshot_from_objects(nodes, pods, rule)


def load_snapshot_file(path: Path, rule: PlaceholderRule = DEFAULT_PLACEHOLDER_RULE) -> Snapshot:
    try:
        return parse_snapshot_text(path.read_text(encoding="utf-8"), rule)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SnapshotFileError(f"{path}: not valid YAML/JSON: {exc}") from exc


def demo_snapshot_text() -> str:
    return resources.files("scheduler_extender.data").joinpath(DEMO_SNAPSHOT).read_text("utf-8")


def demo_state(rule: PlaceholderRule = DEFAULT_PLACEHOLDER_RULE) -> StaticState:
    """The small embedded cluster the quick start serves."""
    return StaticState(parse_snapshot_text(demo_snapshot_text(), rule), "embedded demo snapshot")
