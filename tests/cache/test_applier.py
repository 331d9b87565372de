"""The applier thread is supervised: a failing pass is counted and retried, a stuck or dead
applier makes ``/readyz`` fail, and requests waiting on it (bind's assumption) never hang.

Failures are injected by replacing ``Store.publish`` on the live state's store, the step that
turns applied changes into the snapshot the app serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scheduler_extender.cache.live import LiveState
from scheduler_extender.kube.client import KubeClient
from tests.cache.conftest import FAST, assert_cache_matches, eventually
from tests.fakeapi import PODS, FakeApiServer, pod_json


class InjectedError(RuntimeError):
    pass


class FatalError(BaseException):
    """Not an ``Exception``: escapes ``except Exception`` the way a thread-killing error would."""


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def state(kube: KubeClient, registry: CollectorRegistry) -> Iterator[LiveState]:
    live = LiveState(kube, FAST, registry=registry).start()
    assert live.wait_synced(10)
    yield live
    live.stop()


def _publish_with(state: LiveState, fault: Callable[[int], None]) -> list[int]:
    """Wrap the store's publish: ``fault(n)`` runs before the n-th call (from 0) and may raise
    or block.  Returns the list of call numbers seen."""
    real = state._store.publish
    calls: list[int] = []

    def publish() -> Any:
        calls.append(len(calls))
        fault(calls[-1])
        return real()

    state._store.publish = publish  # type: ignore[method-assign]
    return calls


def _not_ready(state: LiveState) -> str:
    ready = state.readiness()
    return "" if ready.ready else ready.reason


def _errors(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value("scheduler_extender_cache_applier_errors_total")
    return value or 0.0


def _new_pod(server: FakeApiServer, name: str) -> str:
    obj = server.store.create(PODS, "jhub", pod_json(name, node="user-node-00000"))
    return str(obj["metadata"]["uid"])


def test_a_failed_pass_is_counted_and_the_next_one_catches_up(
    server: FakeApiServer, state: LiveState, registry: CollectorRegistry
) -> None:
    def fail_first(n: int) -> None:
        if n == 0:
            raise InjectedError("publish failed once")

    calls = _publish_with(state, fail_first)
    uid = _new_pod(server, "jupyter-after-failure")
    eventually(lambda: uid in state.snapshot().pod_nodes, 10, "the pod after a failed publish")
    assert len(calls) >= 2 and _errors(registry) == 1
    assert state.readiness().ready
    assert_cache_matches(server, state)


def test_an_applier_that_keeps_failing_is_not_ready_and_answers_requests_with_the_error(
    server: FakeApiServer, state: LiveState, registry: CollectorRegistry
) -> None:
    broken = threading.Event()
    broken.set()

    def fail_while_broken(n: int) -> None:
        if broken.is_set():
            raise InjectedError("publish keeps failing")

    _publish_with(state, fail_while_broken)
    uid = _new_pod(server, "jupyter-never-published")
    eventually(lambda: _errors(registry) >= 1, 10, "a failed pass")
    with pytest.raises(InjectedError):
        state.assume(uid, "user-node-00001").result(5)  # resolved, not left hanging
    reason = eventually(lambda: _not_ready(state), 10, "readyz to fail")
    assert reason.startswith("cache applier failing for")
    assert "InjectedError: publish keeps failing" in reason
    assert uid not in state.snapshot().pod_nodes
    assert _errors(registry) >= 2
    broken.clear()
    eventually(lambda: state.readiness().ready, 10, "readyz to recover")
    assert_cache_matches(server, state)


def test_a_stuck_applier_is_not_ready_until_it_moves_again(
    server: FakeApiServer, state: LiveState
) -> None:
    release = threading.Event()

    def block(n: int) -> None:
        release.wait(30)

    _publish_with(state, block)
    uid = _new_pod(server, "jupyter-stuck")
    try:
        reason = eventually(lambda: _not_ready(state), 10, "readyz to fail")
        assert reason.startswith("cache applier stuck on one batch for")
    finally:
        release.set()
    eventually(lambda: uid in state.snapshot().pod_nodes, 10, "the batch to land")
    eventually(lambda: state.readiness().ready, 10, "readyz to recover")


def test_a_dead_applier_is_not_ready_and_refuses_requests(
    server: FakeApiServer, state: LiveState
) -> None:
    def die(n: int) -> None:
        raise FatalError("applier killed")

    _publish_with(state, die)
    _new_pod(server, "jupyter-fatal")
    reason = eventually(lambda: _not_ready(state), 10, "readyz to fail")
    assert reason.startswith("cache applier stopped: FatalError: applier killed")
    with pytest.raises(RuntimeError, match="applier"):
        state.forget("anything").result(5)
