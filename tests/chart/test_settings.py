"""scheduling.userScheduler.extender.settings: exactly the extender's Settings, typed.

values.schema.json's part for it is generated from
``scheduler_extender.extender.settings.Settings`` by manifests/render.py. These tests check that
it names every field and nothing else, that a misspelled or mistyped setting fails Helm's
validation, that every setting the chart lets through reaches the extender with the value given
(rendered to SCHEDULER_EXTENDER_<FIELD>, read back by the real Settings class), and that the
settings the chart owns are refused.
"""

from __future__ import annotations

import json
import os
from enum import Enum
from typing import Any

import pytest
from helm_python import HelmRenderError, HelmValuesError

from manifests import render as chart_render
from scheduler_extender.extender.settings import ENV_PREFIX, Settings, load_settings
from tests.chart.conftest import Obj, one, render_values

SCHEDULER = "hub-sched-scheduler-extender-user-scheduler"
SCHEMA = json.loads(chart_render.SCHEMA_JSON.read_text())
SETTINGS_SCHEMA: dict[str, Any] = SCHEMA["properties"]["scheduling"]["properties"]["userScheduler"][
    "properties"
]["extender"]["properties"]["settings"]

#: Settings the chart refuses in `settings`: it sets them from other values, or they need a
#: file the pod does not have (placeholder_max_priority only while podPriority is enabled).
REFUSED = {
    "host", "port", "log_level", "match_node_purpose", "live_state", "bind_enabled",
    "bind_timeout_seconds", "placeholder_max_priority",
    "config", "state_file", "kubeconfig", "kube_context",
}  # fmt: skip


def with_settings(settings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"scheduling": {"userScheduler": {"extender": {"settings": settings}}, **extra}}


def extender_env(docs: list[tuple[str, Obj]]) -> dict[str, str]:
    deployment = one(docs, "Deployment", SCHEDULER)
    (extender,) = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "extender"]  # fmt: skip
    return {e["name"]: e["value"] for e in extender["env"]}


def test_schema_names_every_setting_and_nothing_else() -> None:
    assert set(SETTINGS_SCHEMA["properties"]) == set(Settings.model_fields)
    assert SETTINGS_SCHEMA["additionalProperties"] is False
    for name, prop in SETTINGS_SCHEMA["properties"].items():
        assert prop["description"] == Settings.model_fields[name].description, name


def test_check_notices_a_changed_settings_class(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A field added to (or removed from) Settings makes the committed schema stale."""
    real = chart_render.settings_properties

    def one_more() -> dict[str, Any]:
        return {**real(), "new_setting": {"type": "integer", "description": "added"}}

    monkeypatch.setattr(chart_render, "settings_properties", one_more)
    assert chart_render.main(["--check"]) == 1
    assert "stale: manifests/chart/values.schema.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"cpu_weigth": 2}, "additional properties 'cpu_weigth'", id="misspelled"),
        pytest.param({"CPU_WEIGHT": 2}, "'CPU_WEIGHT'", id="env-style-name"),
        pytest.param({"cpuWeight": 2}, "'cpuWeight'", id="camel-case"),
        pytest.param({"cpu_weight": "two"}, "cpu_weight': got string, want integer",
                     id="int-as-string"),
        pytest.param({"cpu_weight": 1.5}, "cpu_weight", id="int-as-float"),
        pytest.param({"cpu_weight": -1}, "cpu_weight", id="below-minimum"),
        pytest.param({"normalization": "log"}, "normalization", id="not-in-enum"),
        pytest.param({"prefer_older_nodes": "yes"}, "prefer_older_nodes", id="bool-as-string"),
        pytest.param({"placeholder_labels": {"pool": 1}}, "placeholder_labels",
                     id="map-value-type"),
        pytest.param({"max_body_bytes": 0}, "max_body_bytes", id="exclusive-minimum"),
    ],
)  # fmt: skip
def test_schema_rejects_a_bad_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmValuesError, match=message):
        render_values(with_settings(settings))


def example(name: str, prop: dict[str, Any]) -> Any:
    """A valid value of a setting that differs from its default, from its schema alone (so a
    new field is covered without editing this test)."""
    default = prop.get("default")
    branches = [b for b in prop.get("anyOf") or [prop] if b.get("type") != "null"]
    prop = {**branches[0], "default": default}
    if "enum" in prop:
        return next(v for v in prop["enum"] if v != default)
    kind = prop.get("type")
    if kind == "boolean":
        return not default
    if kind == "integer":
        value = (default or 0) + 1
        return value if value <= prop.get("maximum", value) else default - 1
    if kind == "number":
        return (default or 0) * 2 + 0.25
    if kind == "object":
        return {"component": "user-placeholder", "pool": "gpu"}
    if kind == "string":
        return "example"
    raise AssertionError(f"no example for {name}: {prop}")


SETTABLE = sorted(set(Settings.model_fields) - REFUSED)


@pytest.mark.parametrize("name", SETTABLE)
def test_every_allowed_setting_reaches_the_extender(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prop = SETTINGS_SCHEMA["properties"][name]
    value = example(name, prop)
    assert value != prop.get("default")
    env = extender_env(render_values(with_settings({name: value})))
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, text in env.items():
        monkeypatch.setenv(key, text)
    loaded = getattr(load_settings([]), name)
    assert (loaded.value if isinstance(loaded, Enum) else loaded) == value, env[
        ENV_PREFIX + name.upper()
    ]


def test_large_integers_are_not_written_in_exponent_form() -> None:
    """Helm holds numbers as float64; toString would print 67108865 as 6.7108865e+07."""
    env = extender_env(render_values(with_settings({"max_body_bytes": 67108865})))
    assert env[ENV_PREFIX + "MAX_BODY_BYTES"] == "67108865"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_chart_owned_settings_are_refused(name: str) -> None:
    value = example(name, SETTINGS_SCHEMA["properties"][name])
    with pytest.raises(HelmRenderError, match=rf"settings\.{name}: .*; remove it"):
        render_values(with_settings({name: value}))


def test_every_variable_the_chart_sets_is_refused_in_settings() -> None:
    """The refusal list covers whatever the chart itself writes (with bind on, all of it)."""
    env = extender_env(render_values({"scheduling": {"userScheduler": {"extender": {
        "bind": True}}}}))  # fmt: skip
    owned = {key.removeprefix(ENV_PREFIX).lower() for key in env}
    assert owned <= REFUSED


def test_placeholder_priority_is_free_without_priority_classes() -> None:
    values = with_settings({"placeholder_max_priority": -20}, podPriority={"enabled": False},
                           userPlaceholder={"enabled": False})  # fmt: skip
    assert extender_env(render_values(values))[ENV_PREFIX + "PLACEHOLDER_MAX_PRIORITY"] == "-20"


def test_log_level_choices_are_the_extenders() -> None:
    chart = SCHEMA["properties"]["scheduling"]["properties"]["userScheduler"]["properties"][
        "extender"
    ]["properties"]["logLevel"]["enum"]
    assert chart == SETTINGS_SCHEMA["properties"]["log_level"]["enum"]
