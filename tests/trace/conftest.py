"""Two real Prometheus servers over the same backfilled history (one with a low
``--query.max-samples``), started once per test session."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.trace.promserver import MISSING, Series, backfill, prometheus_server, write_openmetrics

SCRAPE = 30.0
GIB = float(2**30)


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    uid: str
    created: float  # offsets from History.base, seconds
    gone: float  # first scrape without the pod
    cpu: tuple[float, ...] = (0.05,)  # per container; () = no requests exported
    memory: float | None = GIB
    deletion: float | None = None  # kube_pod_deletion_timestamp value, if a scrape caught it
    component: str | None = "singleuser-server"
    image: str = "quay.io/jupyter/scipy-notebook:2024-01-15"
    replicas: int = 1  # kube-state-metrics replicas exporting it (an HA setup): same pod twice


H = 3600.0

#: Hub history, offsets from ``base``; queried over [base, base + 6h].
PODS = (
    Pod("hub", "jupyter-early", "e1", created=-H, gone=H),  # spans --since
    Pod("hub", "jupyter-alice", "a1", created=H, gone=2 * H, deletion=2 * H - 60),
    Pod("hub", "jupyter-alice", "a2", created=3 * H, gone=7 * H),  # same name, new uid, open
    # Spans --until; two containers; exported by two kube-state-metrics replicas.
    Pod("hub", "jupyter-late", "l1", created=5 * H, gone=7 * H, cpu=(0.05, 0.01), replicas=2),
    Pod("hub", "jupyter-noreq", "n1", created=2 * H, gone=2.5 * H, cpu=(), memory=None),
    Pod("hub", "hub-7d9f", "h1", created=-2 * H, gone=8 * H, component="hub"),
    # A hub whose kube-state-metrics exports no pod labels: selected by name.
    Pod("plain", "jupyter-bob", "b1", created=H, gone=1.5 * H, component=None),
    Pod("plain", "web-1", "w1", created=0, gone=3 * H, component=None),
)
RANGE = 6 * H


def history_series(base: float) -> list[Series]:
    out: list[Series] = []
    for pod in PODS:
        for replica in range(pod.replicas):
            out += pod_series(base, pod, {"instance": f"ksm-{replica}"} if replica else {})
    return out


def pod_series(base: float, pod: Pod, instance: dict[str, str]) -> list[Series]:
    out: list[Series] = []
    first = base + pod.created
    stamps = [first + i * SCRAPE for i in range(int((pod.gone - pod.created) // SCRAPE))]
    key = {"namespace": pod.namespace, "pod": pod.name, "uid": pod.uid, **instance}
    out.append(Series("kube_pod_created", key, [(t, first) for t in stamps]))
    if pod.component is not None:
        labels = {**key, "label_component": pod.component}
        out.append(Series("kube_pod_labels", labels, [(t, 1.0) for t in stamps]))
    for i, cores in enumerate(pod.cpu):
        container = "notebook" if i == 0 else f"sidecar{i}"
        labels = {**key, "container": container, "node": "n1", "resource": "cpu",
                  "unit": "core"}  # fmt: skip
        out.append(Series("kube_pod_container_resource_requests", labels,
                          [(t, cores) for t in stamps]))  # fmt: skip
    if pod.memory is not None:
        labels = {**key, "container": "notebook", "node": "n1", "resource": "memory",
                  "unit": "byte"}  # fmt: skip
        out.append(Series("kube_pod_container_resource_requests", labels,
                          [(t, pod.memory) for t in stamps]))  # fmt: skip
    info = {**key, "container": "notebook", "image": pod.image, "image_spec": pod.image}
    out.append(Series("kube_pod_container_info", info, [(t, 1.0) for t in stamps]))
    if pod.deletion is not None:
        deleted = base + pod.deletion
        out.append(Series("kube_pod_deletion_timestamp", key,
                          [(t, deleted) for t in stamps if t >= deleted]))  # fmt: skip
    return out


@dataclass(frozen=True)
class History:
    base: float  # unix time of the query range's start (a whole hour, two days ago)
    url: str  # Prometheus with default limits
    limited_url: str  # the same data, --query.max-samples=300
    samples: int


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    if MISSING:
        pytest.skip(MISSING)
    root = tmp_path_factory.mktemp("prometheus")
    base = (time.time() // H) * H - 48 * H
    text = root / "history.om"
    with text.open("w", encoding="utf-8") as fh:
        samples = write_openmetrics(fh, history_series(base))
    backfill(text, root / "data")
    shutil.copytree(root / "data", root / "limited")
    with (
        prometheus_server(root / "data") as url,
        prometheus_server(root / "limited", max_samples=300) as limited,
    ):
        yield History(base, url, limited, samples)
