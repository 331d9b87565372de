"""The reflector's own rules: bad objects are skipped, not fatal; very short watches back off.

The end-to-end cases run the real client against the fake API server; the backoff cases drive
``Reflector.run`` in the test's own thread through a scripted ``KubeClient`` stand-in (the
project's one mock seam) with an injected clock, so they assert on the backoff decisions
themselves rather than on wall-clock time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scheduler_extender.cache.live import LiveState
from scheduler_extender.cache.options import CacheOptions
from scheduler_extender.cache.reflector import MIN_WATCH_SECONDS, Change, Reflector
from scheduler_extender.cache.store import Store, snapshot_pods
from scheduler_extender.kube.client import ApiError, KubeClient, ListPage, WatchEvent
from scheduler_extender.kube.convert import DEFAULT_PLACEHOLDER_RULE
from tests.cache.conftest import FAST, eventually, truth
from tests.cache.scripted import FakeClock, RecordingStop, Script, ScriptedKube, ScriptedStream
from tests.fakeapi import NODES, PODS, FakeApiServer, node_json, pod_json

# --- objects that cannot be converted -------------------------------------------------------


def _poison_pods() -> list[dict[str, Any]]:
    """A pod whose overhead is not a finite quantity, and one whose containers are not objects."""
    infinite = pod_json("jupyter-infinite", node="user-node-00000")
    infinite["spec"]["overhead"] = {"cpu": "Infinity"}
    bogus = pod_json("jupyter-bogus", node="user-node-00001")
    bogus["spec"]["containers"] = ["not-a-container"]
    return [infinite, bogus]


def _poison_node() -> dict[str, Any]:
    node = node_json("user-node-bogus")
    node["status"]["allocatable"] = {"cpu": "NaN"}
    return node


def _without(expected: dict[str, frozenset[str]], uids: set[str]) -> dict[str, frozenset[str]]:
    return {name: pods - uids for name, pods in expected.items()}


def _skipped(registry: CollectorRegistry, kind: str) -> float:
    value = registry.get_sample_value(
        "scheduler_extender_cache_conversion_errors_total", {"kind": kind}
    )
    return value or 0.0


@pytest.mark.parametrize("when", ["in-the-list", "by-watch"])
def test_objects_that_fail_conversion_are_skipped_and_the_rest_syncs(
    when: str, server: FakeApiServer, kube: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scheduler_extender.cache.reflector")
    registry = CollectorRegistry()
    state = LiveState(kube, FAST, registry=registry)

    def add_poison() -> set[str]:
        uids = {server.store.create(PODS, "jhub", p)["metadata"]["uid"] for p in _poison_pods()}
        server.store.create(NODES, "", _poison_node())
        return uids

    poison = add_poison() if when == "in-the-list" else set()
    state.start()
    try:
        assert state.wait_synced(10), state.readiness()
        if when == "by-watch":
            poison = add_poison()
        # Everything else arrives, including a pod written after the poison.
        later = server.store.create(PODS, "jhub", pod_json("jupyter-later", node="user-node-00002"))
        want = _without(truth(server), poison)
        want.pop("user-node-bogus")
        eventually(
            lambda: snapshot_pods(state.snapshot()) == want, 10, "the cache to hold the rest"
        )
        assert later["metadata"]["uid"] in state.snapshot().pod_nodes
        assert not poison & set(state.snapshot().pod_nodes)
        assert _skipped(registry, "pods") == 2
        assert _skipped(registry, "nodes") == 1
        assert state.readiness().ready
        assert state.reflectors["pods"].status.relists == {"initial": 1}
    finally:
        state.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "pod jhub/jupyter-infinite" in logged and "Infinity" in logged
    assert "pod jhub/jupyter-bogus" in logged
    assert "node user-node-bogus" in logged


# --- very short watches ---------------------------------------------------------------------


def _run_reflector(
    kube: ScriptedKube,
    stop: RecordingStop,
    sink: Callable[[Change], None] = lambda change: None,
    options: CacheOptions | None = None,
    seed: int = 1,
) -> Reflector:
    """Run a pods reflector on ``kube``'s fake clock until ``stop`` says so."""
    reflector = Reflector(
        "pods",
        kube,  # type: ignore[arg-type]
        sink,
        options or CacheOptions(),
        rule=DEFAULT_PLACEHOLDER_RULE,
        clock=kube.clock,
        rng=random.Random(seed),
        stop=stop,
    )
    reflector.run()
    return reflector


BOOKMARK = WatchEvent("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "6"}})


def _run(scripts: list[Script], watches: int) -> tuple[Reflector, RecordingStop]:
    clock = FakeClock()
    kube = ScriptedKube(clock, scripts)
    stop = RecordingStop(kube, watches)
    options = CacheOptions(backoff_initial_seconds=0.8, backoff_max_seconds=30.0)
    sunk: list[Change] = []
    reflector = _run_reflector(kube, stop, sunk.append, options, seed=7)
    return reflector, stop


def test_watches_that_close_at_once_back_off_exponentially() -> None:
    reflector, stop = _run([Script(0.0)], watches=6)
    # One backoff wait after every watch (the last one ended because the test stopped it).
    assert [n for n, _ in stop.waits] == [1, 2, 3, 4, 5]
    delays = [d for _, d in stop.waits]
    for i, delay in enumerate(delays):
        cap = min(30.0, 0.8 * 2**i)
        assert cap / 2 <= delay <= cap, (i, delay)
    assert reflector.status.restarts == {"short": 5}
    assert "very short watch" in reflector.status.last_error


@pytest.mark.parametrize(
    ("script", "short"),
    [
        pytest.param(Script(0.0), True, id="instant-and-empty"),
        pytest.param(Script(MIN_WATCH_SECONDS * 0.9), True, id="under-a-second-and-empty"),
        pytest.param(Script(MIN_WATCH_SECONDS), False, id="a-second-long"),
        pytest.param(Script(0.0, [BOOKMARK]), False, id="instant-with-a-bookmark"),
    ],
)
def test_only_short_empty_watches_count_as_failures(script: Script, short: bool) -> None:
    reflector, stop = _run([script], watches=3)
    if short:
        assert len(stop.waits) == 2 and reflector.status.restarts == {"short": 2}
    else:
        assert stop.waits == [] and reflector.status.restarts == {"closed": 2}


# --- a relist that fails part way -----------------------------------------------------------


def _listed(name: str, node: str = "") -> dict[str, Any]:
    obj = pod_json(name, node=node)
    obj["metadata"]["uid"] = f"uid-{name}"
    return obj


class PagedKube(ScriptedKube):
    """Lists two pages of pods; the second page fails the first time it is asked for."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock, [Script(MIN_WATCH_SECONDS)])
        self.failed = False
        self.pages = {
            "": ListPage([_listed("jupyter-a", "n1"), _listed("jupyter-b")], "9", "next"),
            "next": ListPage([_listed("jupyter-c", "n1")], "9", ""),
        }

    def list(self, kind: str, **kwargs: Any) -> ListPage:
        token = kwargs["continue_token"]
        if token == "next" and not self.failed:
            self.failed = True
            raise ApiError(500, "InternalError", "etcdserver: request timed out")
        page = self.pages[token]
        return ListPage(list(page.items), page.resource_version, page.continue_token)


def test_a_list_that_fails_part_way_is_dropped_then_retried_whole() -> None:
    kube = PagedKube(FakeClock())
    stop = RecordingStop(kube, watches=1)
    store = Store()
    seen: list[tuple[str, set[str]]] = []

    def sink(change: Change) -> None:
        change.apply(store)
        seen.append((change.type, {p.name for p in store.pods.values()}))

    reflector = _run_reflector(kube, stop, sink)
    failed = ["LIST_BEGIN", "LIST_PAGE", "LIST_ABORT"]
    retried = ["LIST_BEGIN", "LIST_PAGE", "LIST_PAGE", "LIST"]
    assert [t for t, _ in seen] == failed + retried
    # Nothing of the failed attempt reached the truth; the retry delivered everything.
    assert all(names == set() for _, names in seen[:-1])
    assert seen[-1][1] == {"jupyter-a", "jupyter-b", "jupyter-c"}
    assert reflector.status.relists == {"initial": 1} and len(stop.waits) == 1


# --- a watch refused with 410 ---------------------------------------------------------------


class GoneOnceKube(ScriptedKube):
    """The first watch request itself is answered ``410 Gone`` (some servers and proxies answer
    a too-old resourceVersion that way instead of with an ERROR event in the stream)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock, [Script(MIN_WATCH_SECONDS)])
        self.lists = 0

    def list(self, kind: str, **kwargs: Any) -> ListPage:
        self.lists += 1
        return super().list(kind, **kwargs)

    def watch(self, kind: str, **kwargs: Any) -> ScriptedStream:
        if self.watches == 0:
            self.watches += 1
            raise ApiError(410, "Expired", "too old resource version: 5 (9)")
        return super().watch(kind, **kwargs)


def test_a_watch_refused_as_expired_relists_instead_of_retrying_the_same_version() -> None:
    """client-go relists when starting a watch fails with Expired/Gone; retrying the watch from
    the same resourceVersion would be refused forever."""
    kube = GoneOnceKube(FakeClock())
    stop = RecordingStop(kube, watches=3)
    reflector = _run_reflector(kube, stop)
    assert kube.lists == 2
    assert reflector.status.relists == {"initial": 1, "expired": 1}
