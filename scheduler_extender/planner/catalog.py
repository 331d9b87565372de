"""The node-type catalog (``scheduler_extender/data/node_types.yaml``): providers, their
reservations' sources and DaemonSets, and node types with their capacity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from scheduler_extender.core.allocatable import (
    Provider,
    eks_max_pods,
)
from scheduler_extender.kube.convert import base_units, millicores

NODE_TYPES_FILE = "node_types.yaml"
#: kubelet's default ``maxPods``.
DEFAULT_MAX_PODS = 110


@dataclass(frozen=True, slots=True)
class DaemonSet:
    name: str
    cpu: int
    memory: int
    source: str


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    provider: Provider
    title: str
    default_max_pods: int | None
    sources: tuple[str, ...]
    daemonsets: tuple[DaemonSet, ...]
    note: str


@dataclass(frozen=True, slots=True)
class NodeType:
    name: str
    provider: Provider
    cpu: int  # millicores
    memory: int  # bytes
    enis: int | None = None
    ipv4_per_eni: int | None = None

    def default_max_pods(self, info: ProviderInfo) -> int:
        if self.enis is not None and self.ipv4_per_eni is not None:
            return eks_max_pods(self.enis, self.ipv4_per_eni)
        return info.default_max_pods or DEFAULT_MAX_PODS


@dataclass(frozen=True, slots=True)
class Catalog:
    providers: Mapping[Provider, ProviderInfo]
    node_types: Mapping[str, NodeType]


def parse_catalog(text: str, origin: str = NODE_TYPES_FILE) -> Catalog:
    """The node-type catalog from YAML text; a malformed entry raises ``ValueError`` naming it."""
    doc = yaml.safe_load(text)
    try:
        providers = {}
        for key, raw in doc["providers"].items():
            provider = Provider(key)
            dss = tuple(
                DaemonSet(
                    d["name"],
                    millicores(d["cpu"], f"{key}.daemonsets.cpu"),
                    base_units(d["memory"], f"{key}.daemonsets.memory"),
                    d["source"],
                )
                for d in raw.get("daemonsets", ())
            )
            providers[provider] = ProviderInfo(
                provider,
                raw["title"],
                raw.get("default_max_pods"),
                tuple(raw.get("sources", ())),
                dss,
                raw.get("note", ""),
            )
        types = {}
        for name, raw in doc["node_types"].items():
            provider = Provider(raw["provider"])
            if provider not in providers:
                raise ValueError(f"unknown provider {provider}")
            types[name] = NodeType(
                name,
                provider,
                millicores(raw["cpu"], f"{name}.cpu"),
                base_units(raw["memory"], f"{name}.memory"),
                raw.get("enis"),
                raw.get("ipv4_per_eni"),
            )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{origin}: malformed entry: {exc}") from exc
    return Catalog(providers, types)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped in ``scheduler_extender/data/node_types.yaml``."""
    text = resources.files("scheduler_extender.data").joinpath(NODE_TYPES_FILE).read_text("utf-8")
    return parse_catalog(text)
