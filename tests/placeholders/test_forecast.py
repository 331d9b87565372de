"""``forecast`` pools against the local API server: the learned profile is folded from watched
user arrivals, persisted in the controller's ConfigMap, read back after a restart, survives a
corrupt or older entry (logged, empty profile, replaced on the next write) and a write
conflict (re-read, folded again, written)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler_extender.core.forecast import (
    WEEK,
    ArrivalProfile,
    bucket_index,
    empty_profile,
    profile_from_dict,
    profile_to_dict,
)
from scheduler_extender.kube.client import ApiError, KubeClient, Obj
from scheduler_extender.placeholders.config import ConfigError, ControllerConfig, count_spec
from scheduler_extender.placeholders.controller import PlaceholderController
from tests.fakeapi import CONFIGMAPS, PODS, FakeApiServer, pod_json
from tests.placeholders.conftest import (
    NS,
    OWNER,
    Factory,
    config,
    count_is,
    eventually,
    metric,
)

#: 2026-01-05 10:00:00 UTC, a Monday: the start of a 5-minute bucket.
T0 = 1_767_607_200.0
CM = "hub-placeholders-forecast"
PREFIX = "scheduler_extender_placeholders"


def forecast_config(**count: Any) -> ControllerConfig:
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"] = {"mode": "forecast", "min": 1, "max": 6, "safety": 1.0} | count
    return config(pools=pools)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def arrive(server: FakeApiServer, name: str, at: float) -> None:
    """A user pod created at Unix time ``at``."""
    user = pod_json(name, namespace=NS)
    user["metadata"]["creationTimestamp"] = datetime.fromtimestamp(at, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    user["spec"]["priorityClassName"] = "hub-default-priority"
    server.store.create(PODS, NS, user)


def stored(server: FakeApiServer) -> Obj | None:
    found = [c for c in server.store.items(CONFIGMAPS) if c["metadata"]["name"] == CM]
    return found[0] if found else None


def stored_profile(server: FakeApiServer) -> ArrivalProfile | None:
    cm = stored(server)
    if cm is None or "default" not in (cm.get("data") or {}):
        return None
    try:
        return profile_from_dict(json.loads(cm["data"]["default"]))
    except ValueError:
        return None


def put_entry(server: FakeApiServer, text: str, **others: str) -> None:
    data = {"default": text, **others}
    server.store.create(CONFIGMAPS, NS, {"metadata": {"name": CM, "namespace": NS}, "data": data})


def learned(controller: PlaceholderController) -> ArrivalProfile | None:
    assert controller.forecast is not None
    return controller.forecast.profile("default")


def test_arrivals_are_learned_and_persisted_with_an_owner(
    server: FakeApiServer, make_controller: Factory
) -> None:
    clock = Clock(T0 + 10)  # the user informer lists at T0 + 10: watched from then on
    controller = make_controller(forecast_config(), wall=clock)
    eventually(count_is(server, 1), what="min 1 (no history: adaptive)")
    eventually(lambda: learned(controller) is not None, what="the profile loaded")
    assert stored(server) is None  # nothing learned yet, nothing written
    for i, at in enumerate((T0 + 400, T0 + 410, T0 + 700)):
        arrive(server, f"jupyter-u{i}", at)
    clock.now = T0 + 1000  # buckets [T0+300, T0+600) and [T0+600, T0+900) are complete
    controller.wake.set()
    eventually(lambda: stored_profile(server) is not None, what="the profile written")
    profile = stored_profile(server)
    assert profile is not None
    first = bucket_index(profile, T0 + 300)
    assert profile.counts[first] == 2 and profile.counts[first + 1] == 1
    assert profile.seen[first] == profile.seen[first + 1] == 1
    # The bucket the informer listed in was watched only in part: not learned.
    assert profile.seen[first - 1] == 0
    assert profile.through == T0 + 900
    eventually(lambda: learned(controller) == profile, what="the written profile kept")
    cm = stored(server)
    assert cm is not None
    owners = cm["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"]) for o in owners] == [("Deployment", OWNER)]
    weeks = metric(controller, f"{PREFIX}_forecast_history_weeks", pool="default")
    assert weeks == pytest.approx(2 / profile.buckets)


def test_a_restart_reads_the_profile_back(server: FakeApiServer, make_controller: Factory) -> None:
    clock = Clock(T0 + 10)
    first = make_controller(forecast_config(), wall=clock)
    eventually(lambda: learned(first) is not None, what="the profile loaded")
    arrive(server, "jupyter-u0", T0 + 400)
    clock.now = T0 + 1000
    first.wake.set()
    eventually(lambda: stored_profile(server) is not None, what="the profile written")
    written = stored_profile(server)
    first.shutdown()
    rv = stored(server)["metadata"]["resourceVersion"]  # type: ignore[index]
    second = make_controller(forecast_config(), identity="replica-b", wall=clock)
    eventually(lambda: learned(second) is not None, what="the profile read back")
    assert learned(second) == written
    eventually(count_is(server, 1), what="planned and reconciled")
    # Nothing new was watched, so nothing is rewritten.
    assert stored(server)["metadata"]["resourceVersion"] == rv  # type: ignore[index]


def test_a_known_week_plans_by_forecast(server: FakeApiServer, make_controller: Factory) -> None:
    """A profile that has seen every bucket: the plan is the forecast's, not adaptive's."""
    base = empty_profile()
    full = ArrivalProfile(base.bucket_seconds, (1.0,) * base.buckets, (2,) * base.buckets)
    put_entry(server, json.dumps(profile_to_dict(full)))
    clock = Clock(T0 + 10)
    controller = make_controller(forecast_config(), wall=clock)
    eventually(lambda: controller.pools["default"].plan is not None, what="a plan")
    plan = controller.pools["default"].plan
    assert plan is not None
    assert "forecast" in plan.reason and "adaptive only" not in plan.reason, plan.reason
    # One arrival per 5 minutes over the learned 100 s node-ready lead: at least 1 (min 1).
    assert plan.desired >= 1


def test_without_history_the_plan_says_adaptive(
    server: FakeApiServer, make_controller: Factory
) -> None:
    controller = make_controller(forecast_config(), wall=Clock(T0 + 10))
    eventually(lambda: learned(controller) is not None, what="the profile loaded")
    controller.wake.set()
    eventually(
        lambda: "too little history" in getattr(controller.pools["default"].plan, "reason", ""),
        what="the degraded reason",
    )


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"version": 0, "counts": []}), "version: 0 is older than 1"),
        (json.dumps({**profile_to_dict(empty_profile()), "seen": [1, 2]}), "seen: expected"),
    ],
    ids=["corrupt", "older-version", "wrong-shape"],
)
def test_an_unusable_profile_is_logged_and_replaced(
    server: FakeApiServer,
    make_controller: Factory,
    caplog: pytest.LogCaptureFixture,
    entry: str,
    problem: str,
) -> None:
    retired = json.dumps({"version": 1, "kept": "as is"})
    put_entry(server, entry, retired=retired)
    caplog.set_level(logging.WARNING, logger="scheduler_extender.placeholders.forecast")
    clock = Clock(T0 + 10)
    controller = make_controller(forecast_config(), wall=clock)
    eventually(lambda: learned(controller) is not None, what="the fallback profile")
    assert learned(controller) == empty_profile()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert problem in warnings[0] and CM in warnings[0] and "pool default" in warnings[0]
    eventually(count_is(server, 1), what="it still plans (min 1)")
    arrive(server, "jupyter-u0", T0 + 400)
    clock.now = T0 + 1000
    controller.wake.set()
    eventually(lambda: stored_profile(server) is not None, what="the entry replaced")
    profile = stored_profile(server)
    assert profile is not None and profile.counts[bucket_index(profile, T0 + 400)] == 1
    # A pool that no longer forecasts keeps its entry untouched.
    assert stored(server)["data"]["retired"] == retired  # type: ignore[index]
    assert all(t.is_alive() for t in controller._threads)


def test_a_write_conflict_is_read_again_and_folded(
    server: FakeApiServer, make_controller: Factory, kube: KubeClient
) -> None:
    """Another writer changes the ConfigMap after it was read: the PUT meets 409, the
    controller reads it again, folds its arrivals into what is stored there and writes."""
    theirs = empty_profile()
    other = bucket_index(theirs, T0 + 3 * 86400)  # a Thursday bucket only they saw
    theirs = ArrivalProfile(
        theirs.bucket_seconds,
        tuple(7.0 if i == other else 0.0 for i in range(theirs.buckets)),
        tuple(1 if i == other else 0 for i in range(theirs.buckets)),
        0.0,
        T0 - WEEK,
    )
    put_entry(server, json.dumps(profile_to_dict(empty_profile())))
    conflicts: list[int] = []
    real = kube.replace_config_map

    def spy(namespace: str, name: str, body: Obj, *, timeout: float) -> Obj:
        try:
            return real(namespace, name, body, timeout=timeout)
        except ApiError as exc:
            conflicts.append(exc.code)
            raise

    kube.replace_config_map = spy  # type: ignore[method-assign]
    clock = Clock(T0 + 10)
    controller = make_controller(forecast_config(), wall=clock)
    eventually(lambda: learned(controller) is not None, what="the profile loaded")

    def their_write(cm: Obj) -> Obj:
        cm["data"] = {"default": json.dumps(profile_to_dict(theirs))}
        return cm

    server.store.update(CONFIGMAPS, NS, CM, their_write)
    arrive(server, "jupyter-u0", T0 + 400)
    clock.now = T0 + 1000
    controller.wake.set()
    mine = bucket_index(theirs, T0 + 400)
    eventually(
        lambda: (p := stored_profile(server)) is not None and p.seen[mine] == 1,
        what="the merged profile written",
    )
    assert conflicts == [409]
    profile = stored_profile(server)
    assert profile is not None
    assert profile.counts[other] == 7 and profile.counts[mine] == 1
    eventually(lambda: learned(controller) == profile, what="the merged profile kept")
    assert metric(controller, f"{PREFIX}_api_errors_total", op="forecast-write") == 0


# --- configuration ---


def test_forecast_mode_and_its_knobs_are_configured() -> None:
    cfg = forecast_config(forecastMinWeeks=3, forecastAlpha=0.5)
    count = cfg.pools[0].count
    spec = count_spec(count)
    assert spec.mode.value == "forecast" and spec.forecast_min_weeks == 3
    assert count.forecast_alpha == 0.5


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        ({"forecastAlpha": 0}, "pools.0.count.forecastAlpha"),
        ({"forecastAlpha": 1.5}, "pools.0.count.forecastAlpha"),
        ({"forecastMinWeeks": -1}, "pools.0.count.forecastMinWeeks"),
        ({"forecastMinWeeks": "many"}, "pools.0.count.forecastMinWeeks"),
        ({"mode": "predict"}, "pools.0.count.mode"),
    ],
)
def test_bad_forecast_knobs_name_the_field(knobs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        forecast_config(**knobs)


def test_writes_wait_for_the_interval_and_shutdown_flushes(
    server: FakeApiServer, make_controller: Factory
) -> None:
    clock = Clock(T0 + 10)
    controller = make_controller(forecast_config(), wall=clock)
    eventually(lambda: learned(controller) is not None, what="the profile loaded")
    arrive(server, "jupyter-u0", T0 + 400)
    clock.now = T0 + 1000
    controller.wake.set()
    eventually(lambda: stored_profile(server) is not None, what="the first write")
    rv = stored(server)["metadata"]["resourceVersion"]  # type: ignore[index]
    arrive(server, "jupyter-u1", T0 + 950)
    clock.now = T0 + 1250  # bucket [T0+900, T0+1200) complete, 250 s after the first write
    controller.wake.set()
    late = bucket_index(empty_profile(), T0 + 950)
    eventually(
        lambda: (p := learned(controller)) is not None and p.seen[late] == 1,
        what="the bucket folded in memory",
    )
    reconciles = metric(controller, f"{PREFIX}_reconciles_total")
    eventually(
        lambda: metric(controller, f"{PREFIX}_reconciles_total") > reconciles + 2,
        what="more passes",
    )
    assert stored(server)["metadata"]["resourceVersion"] == rv  # type: ignore[index]
    controller.shutdown()
    profile = stored_profile(server)
    assert profile is not None and profile.seen[late] == 1 and profile.counts[late] == 1


def test_a_deleted_configmap_is_created_again(
    server: FakeApiServer, make_controller: Factory
) -> None:
    clock = Clock(T0 + 10)
    controller = make_controller(forecast_config(), wall=clock)
    assert controller.forecast is not None
    controller.forecast.write_interval = 0.0
    eventually(lambda: learned(controller) is not None, what="the profile loaded")
    arrive(server, "jupyter-u0", T0 + 400)
    clock.now = T0 + 1000
    controller.wake.set()
    eventually(lambda: stored_profile(server) is not None, what="the first write")
    server.store.delete(CONFIGMAPS, NS, CM, {})
    assert stored(server) is None
    arrive(server, "jupyter-u1", T0 + 950)
    clock.now = T0 + 1250
    controller.wake.set()
    late = bucket_index(empty_profile(), T0 + 950)
    eventually(
        lambda: (p := stored_profile(server)) is not None and p.seen[late] == 1,
        what="created again",
    )
    profile = stored_profile(server)
    assert profile is not None and profile.counts[bucket_index(profile, T0 + 400)] == 1
