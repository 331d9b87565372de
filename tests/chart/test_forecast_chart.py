"""The chart's ``forecast`` count mode: its knobs reach the controller's config, the schema
refuses bad ones, and the ConfigMap rules (a Role, named) exist only when a pool forecasts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helm_python import HelmValuesError

from scheduler_extender.placeholders.config import parse_config
from scheduler_extender.placeholders.forecast import config_map_name
from tests.chart.conftest import VALUES_SETS, objects, one, render_values, rendered
from tests.chart.test_placeholders import placeholder_config
from tests.chart.test_rbac import PREFIX, Rule, flatten, rules

FORECAST_CM = f"{PREFIX}-placeholders-forecast"
#: placeholders/forecast.py: get_config_map, create_config_map, replace_config_map.
FORECAST_RULES: set[Rule] = {
    ("", "configmaps", "create", ""),
    ("", "configmaps", "get", FORECAST_CM),
    ("", "configmaps", "update", FORECAST_CM),
}


def placeholders(values: dict[str, Any]) -> dict[str, Any]:
    return {"scheduling": {"userPlaceholder": values}}


def test_forecast_knobs_reach_the_controller() -> None:
    count = {"mode": "forecast", "min": 1, "max": 12, "forecastMinWeeks": 2,
             "forecastAlpha": 0.25}  # fmt: skip
    config = placeholder_config(render_values(placeholders({"count": count})))
    (pool,) = config["pools"]
    assert {k: pool["count"][k] for k in count} == count
    parsed = parse_config(config)
    assert parsed.pools[0].count.mode == "forecast"
    assert (parsed.pools[0].count.forecast_min_weeks, parsed.pools[0].count.forecast_alpha) == (
        2,
        0.25,
    )
    # The Role names the ConfigMap the controller derives from its Lease.
    assert config_map_name(parsed) == FORECAST_CM


@pytest.mark.parametrize(
    ("count", "field"),
    [
        ({"mode": "predict"}, "mode"),
        ({"mode": "forecast", "forecastAlpha": 0}, "forecastAlpha"),
        ({"mode": "forecast", "forecastAlpha": 2}, "forecastAlpha"),
        ({"mode": "forecast", "forecastMinWeeks": -1}, "forecastMinWeeks"),
    ],
)
def test_bad_forecast_values_fail_the_schema(count: dict[str, Any], field: str) -> None:
    with pytest.raises(HelmValuesError, match=field):
        render_values(placeholders({"count": count}))


@pytest.mark.parametrize(
    ("values", "granted"),
    [
        pytest.param({}, False, id="defaults-adaptive"),
        pytest.param({"count": {"mode": "forecast"}}, True, id="default-pool-forecast"),
        pytest.param({"replicas": 3, "count": {"mode": "forecast"}}, False, id="replicas-static"),
        pytest.param(
            {"pools": [{"name": "a", "count": {"mode": "adaptive"}},
                       {"name": "b", "count": {"mode": "forecast"}}]},
            True, id="one-pool-of-two",
        ),
        pytest.param(
            {"count": {"mode": "forecast"}, "pools": [{"name": "a"}]}, False,
            id="pools-override-count",
        ),
    ],
)  # fmt: skip
def test_configmap_rules_only_with_a_forecast_pool(values: dict[str, Any], granted: bool) -> None:
    docs = render_values(placeholders(values))
    role = one(docs, "Role", f"{PREFIX}-placeholders")
    assert role["metadata"]["namespace"] == "jhub"
    found = flatten(role["rules"])
    assert (found & FORECAST_RULES) == (FORECAST_RULES if granted else set())
    # Nothing else on ConfigMaps, and never cluster-wide.
    assert {r for r in found if r[1] == "configmaps"} <= FORECAST_RULES
    for cluster_role in objects(docs, "ClusterRole"):
        assert all(r[1] != "configmaps" for r in flatten(cluster_role["rules"]))


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_shipped_values_sets_grant_no_configmaps(values_set: str) -> None:
    """None of the shipped values sets has a forecast pool (the default is adaptive)."""
    for role in objects(rendered(values_set), "Role"):
        assert all(r[1] != "configmaps" for r in flatten(role["rules"])), values_set


def docs_forecast_rules() -> set[Rule]:
    """docs/install.md's RBAC row "Role, only with a `forecast` pool: `configmaps` create;
    `configmaps` get/update with resourceNames `<release>-placeholders-forecast`"."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "install.md").read_text()
    row = text.split("| | Role, only with a `forecast` pool:", 1)[1].split("|", 1)[0]
    out: set[Rule] = set()
    for part in row.split(";"):
        names = re.findall(r"`([^`]+)`", part)
        name = (
            names[1].replace("<release>", "hub-sched-scheduler-extender") if len(names) > 1 else ""
        )
        verbs = re.search(r"`configmaps` (\S+)", part)
        assert verbs is not None, part
        out |= rules("", ("configmaps",), tuple(verbs.group(1).split("/")), name)
    return out


def test_docs_table_lists_the_forecast_rules_exactly() -> None:
    docs = render_values(placeholders({"count": {"mode": "forecast"}}))
    role = flatten(one(docs, "Role", f"{PREFIX}-placeholders")["rules"])
    assert docs_forecast_rules() == role & FORECAST_RULES == FORECAST_RULES
