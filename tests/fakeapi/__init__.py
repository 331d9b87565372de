"""A local Kubernetes API server for tests (127.0.0.1 only); see ``server.py`` for what it
follows of the real protocol and ``store.py`` for its storage model."""

from tests.fakeapi.objects import node_json, pod_json, populate
from tests.fakeapi.server import FakeApiServer, touch_pods
from tests.fakeapi.store import (
    CONFIGMAPS,
    DEPLOYMENTS,
    LEASES,
    NODES,
    PODS,
    PODTEMPLATES,
    PRIORITY_CLASSES,
    ApiStore,
    ResourceType,
    StatusError,
)

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "LEASES",
    "NODES",
    "PODS",
    "PODTEMPLATES",
    "PRIORITY_CLASSES",
    "ApiStore",
    "FakeApiServer",
    "ResourceType",
    "StatusError",
    "node_json",
    "pod_json",
    "populate",
    "touch_pods",
]
