"""The Grafana dashboard shipped in the chart: every query names a metric we export, and the
ConfigMap the Grafana sidecar loads renders only when asked for.

The exported names come from the real registries: the extender app (``create_app``), the
cache (``LiveState``) and the placeholder controller are built on a client that is never
used, and each registry's metric families are expanded the way the Prometheus text format
exposes them (``_total`` for counters, ``_bucket``/``_count``/``_sum`` for histograms).
Queries are parsed with a real PromQL parser (promql-parser), so a name inside a function
call, a binary expression or a subquery is found wherever it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest
from kubernetes import client as k8s
from prometheus_client import CollectorRegistry

from manifests import render as chart_render
from scheduler_extender.cache.live import LiveState
from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.settings import Settings
from scheduler_extender.kube.client import KubeClient
from scheduler_extender.placeholders.controller import PlaceholderController
from tests.chart.conftest import NAMESPACE, objects, render_values
from tests.placeholders.conftest import config as controller_config

DASHBOARD_FILE = chart_render.CHART / "dashboards" / "scheduler-extender.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())

#: How the Prometheus exposition names the samples of each metric type.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}

#: Values for Grafana's variables, so a query is plain PromQL (what Grafana sends).
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$namespace": ".*"}


def exposed_names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every sample name the extender (app + cache) and the controller expose."""
    kube = KubeClient(k8s.ApiClient(k8s.Configuration()), "never used")
    try:
        extender = CollectorRegistry()
        state = LiveState(kube, registry=extender)
        create_app(Settings(), state=state, registry=extender)
        taint = {
            "key": "startup-taint.cluster-autoscaler.kubernetes.io/hub-images",
            "images": ["i"],
        }
        config = controller_config(startupTaint=taint)
        controller = PlaceholderController(config, kube, identity="test")
        return exposed_names(extender) | exposed_names(controller.registry)
    finally:
        kube.close()


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", ())


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", ()):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        # Grafana's label_values(metric, label): the metric is a selector.
        match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
        assert match, f"variable {var['name']}: unexpected query {query!r}"
        yield f"variable {var['name']}", match.group(1)


def metric_names(expr: str) -> set[str]:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable without a test value in {expr!r}"
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            names.add(node.name)
            return
        for attr in ("args", "expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            for item in child if isinstance(child, list) else [child]:
                if item is not None:
                    walk(item)

    walk(promql_parser.parse(expr))
    return names


def test_the_registries_expose_what_the_dashboard_needs(exported: set[str]) -> None:
    """The expansion works on the real registries (a histogram has buckets, a counter a
    _total), so an empty or mis-expanded set cannot make the next test pass vacuously."""
    assert "scheduler_extender_request_duration_seconds_bucket" in exported
    assert "scheduler_extender_requests_total" in exported
    assert "scheduler_extender_requests" not in exported
    assert "scheduler_extender_placeholders_desired" in exported


def test_every_query_names_only_exported_metrics(exported: set[str]) -> None:
    unknown = {
        where: sorted(metric_names(expr) - exported)
        for where, expr in expressions(DASHBOARD)
        if metric_names(expr) - exported
    }
    assert unknown == {}


def test_every_query_names_a_metric() -> None:
    empty = [where for where, expr in expressions(DASHBOARD) if not metric_names(expr)]
    assert empty == []


def test_the_check_catches_a_misspelled_metric(exported: set[str]) -> None:
    bad = "sum by (verb) (rate(scheduler_extender_requests{namespace=~'$namespace'}[5m]))"
    assert metric_names(bad) - exported == {"scheduler_extender_requests"}


@pytest.mark.parametrize(
    "metric",
    [
        "scheduler_extender_requests_total",
        "scheduler_extender_request_duration_seconds_bucket",
        "scheduler_extender_nodes_known",
        "scheduler_extender_placeholders_desired",
        "scheduler_extender_placeholders_actual",
        "scheduler_extender_cache_synced",
        "scheduler_extender_placeholders_leader",
    ],
)
def test_the_issue_s_panels_are_there(metric: str) -> None:
    """Decisions, latency, outcomes, nodes known, planned vs present, readiness."""
    assert any(metric in metric_names(expr) for _, expr in expressions(DASHBOARD))


def test_panels_are_well_formed() -> None:
    ids = [p["id"] for p in panels(DASHBOARD)]
    assert len(ids) == len(set(ids))
    for panel in panels(DASHBOARD):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["description"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


# --- the chart's ConfigMap ------------------------------------------------------------------


def dashboard_configmaps(docs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        cm
        for cm in objects(docs, "ConfigMap")
        if (cm["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"
    ]


def test_no_dashboard_by_default() -> None:
    assert dashboard_configmaps(render_values({})) == []


def test_dashboard_configmap_when_enabled() -> None:
    docs = render_values({"grafanaDashboard": {"enabled": True}})
    [cm] = dashboard_configmaps(docs)
    assert cm["metadata"]["namespace"] == NAMESPACE
    assert json.loads(cm["data"]["scheduler-extender.json"]) == DASHBOARD


def test_dashboard_namespace_labels_and_annotations() -> None:
    docs = render_values(
        {
            "grafanaDashboard": {
                "enabled": True,
                "namespace": "monitoring",
                "labels": {"team": "hub"},
                "annotations": {"grafana_folder": "JupyterHub"},
            }
        }
    )
    [cm] = dashboard_configmaps(docs)
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["team"] == "hub"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "JupyterHub"}
