"""The controller never writes from a view it cannot trust (review finding C1).

A pod the controller created is *expected* until the placeholder watch shows it.  If the watch
stalls or breaks, the pod never shows up; a controller whose expectations simply ran out would
take its own pods for missing ones and create them again, every timeout, for as long as the
watch stays broken.  These tests break and stall the watch of the local API server and count
the pods that exist."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler_extender.placeholders.controller import PlaceholderController
from scheduler_extender.placeholders.expectations import Expectation
from tests.fakeapi import FakeApiServer
from tests.placeholders.conftest import (
    Factory,
    config,
    count_is,
    eventually,
    metric,
    placeholder_pods,
)

PREFIX = "scheduler_extender_placeholders"


def static(n: int) -> dict[str, Any]:
    pools = config().model_dump(by_alias=True)["pools"]
    pools[0]["count"]["static"] = n
    return {"pools": pools}


def refuse_pod_watches(method: str, path: str) -> None:
    """A ``before_request`` hook: every pod watch request is dropped without an answer (the
    connection closes), as when a proxy in front of the API server fails watches."""
    if method == "GET" and "/pods" in path and "watch=true" in path.lower():
        raise ConnectionAbortedError("watch refused by the test")


def test_no_duplicates_while_the_pod_watch_is_broken(
    server: FakeApiServer, make_controller: Factory
) -> None:
    server.paused.set()  # the first watch will not deliver the pods the controller creates
    c = make_controller(config(**static(3)), expectation_timeout=1.0)
    eventually(count_is(server, 3), what="3 placeholders created")
    eventually(
        lambda: len(c.expectations.pending_creates()) == 3, what="3 created, none seen by the watch"
    )
    server.before_request = refuse_pod_watches
    server.cut_watches(partial=False)
    eventually(
        lambda: metric(c, f"{PREFIX}_view_ok", informer="placeholders") == 0,
        what="the controller to notice the broken watch",
    )
    paused = metric(c, f"{PREFIX}_paused_reconciles_total")
    # Three more passes (about a second apart) is well past the 1 s expectation timeout.
    eventually(lambda: metric(c, f"{PREFIX}_paused_reconciles_total") >= paused + 3)
    assert len(placeholder_pods(server)) == 3, "no pod created while the watch was broken"
    assert metric(c, f"{PREFIX}_created_total", pool="default") == 3
    assert "watch refused" not in c.placeholders.status.last_error  # the client's own words
    assert c.placeholders.errors >= 1
    # The watch comes back: it resumes from before the creates and delivers them.
    server.before_request = None
    server.paused.clear()
    eventually(lambda: metric(c, f"{PREFIX}_view_ok", informer="placeholders") == 1)
    eventually(lambda: not c.expectations.pending_creates(), what="expectations met by the watch")
    reconciles = metric(c, f"{PREFIX}_reconciles_total")
    eventually(lambda: metric(c, f"{PREFIX}_reconciles_total") >= reconciles + 3)
    assert len(placeholder_pods(server)) == 3
    assert metric(c, f"{PREFIX}_created_total", pool="default") == 3


def test_a_stalled_watch_keeps_the_expectations_until_it_delivers(
    server: FakeApiServer, make_controller: Factory
) -> None:
    """An open watch that delivers nothing (no event, no bookmark) past its read timeout is
    a hung server: writes pause, and the pods created before the stall stay expected."""
    server.paused.set()
    c = make_controller(config(**static(3)), watch_read_timeout=0.5, expectation_timeout=60.0)
    eventually(count_is(server, 3))
    eventually(
        lambda: metric(c, f"{PREFIX}_view_ok", informer="placeholders") == 0,
        what="the silent watch to count as broken",
    )
    assert "silent" in c.placeholders.problem()
    paused = metric(c, f"{PREFIX}_paused_reconciles_total")
    eventually(lambda: metric(c, f"{PREFIX}_paused_reconciles_total") >= paused + 2)
    assert len(placeholder_pods(server)) == 3
    server.paused.clear()
    # Met by observation, long before the 60 s timeout.
    eventually(
        lambda: not c.expectations.pending_creates(), timeout=5.0, what="the watch to deliver"
    )
    eventually(lambda: metric(c, f"{PREFIX}_view_ok", informer="placeholders") == 1)
    reconciles = metric(c, f"{PREFIX}_reconciles_total")
    eventually(lambda: metric(c, f"{PREFIX}_reconciles_total") >= reconciles + 3)
    assert len(placeholder_pods(server)) == 3
    assert metric(c, f"{PREFIX}_created_total", pool="default") == 3


def pod(uid: str, rv: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"p-{uid}",
            "namespace": "jhub",
            "uid": uid,
            "resourceVersion": rv,
            "labels": {"scheduler-extender.jupyter.org/pool": "default"},
        },
        "spec": {},
    }


@pytest.mark.parametrize(
    ("view", "view_rv", "created_rv", "deadline", "kept"),
    [
        pytest.param(["u1"], "100", 90, 1e9, False, id="seen-by-the-watch"),
        pytest.param([], "100", 90, 1e9, False, id="view-past-the-create-so-it-came-and-went"),
        pytest.param([], "100", 100, 1e9, False, id="view-at-the-create"),
        pytest.param([], "80", 90, 1e9, True, id="view-behind-the-create"),
        pytest.param([], "80", 90, -1.0, False, id="view-behind-but-timed-out"),
        pytest.param([], "opaque", 90, 1e9, True, id="opaque-view-rv-waits"),
        pytest.param([], "100", None, 1e9, True, id="opaque-create-rv-waits"),
        pytest.param([], "opaque", None, -1.0, False, id="opaque-times-out"),
    ],
)
def test_create_expectations_are_met_by_observation(
    make_controller: Factory,
    view: list[str],
    view_rv: str,
    created_rv: int | None,
    deadline: float,
    kept: bool,
) -> None:
    c: PlaceholderController = make_controller(start=False)
    c.placeholders._items = {f"jhub/p-{u}": pod(u, "50") for u in view}
    c.placeholders.resource_version = view_rv
    c.expectations.created("u1", Expectation("default", pod("u1", "?"), created_rv, deadline))
    pods = c._existing("default", now=0.0)
    assert bool(c.expectations.pending_creates("default")) is kept
    assert [p.uid for p in pods] == ["u1"] if (kept or view) else pods == []
