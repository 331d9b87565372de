"""The controller's informer on its own: watches that end at once back off (review finding
I6) and count as broken, a watch that delivers is not short, and bookmarks advance the
resourceVersion that expectations are compared with."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from scheduler_extender.kube.client import ListPage, WatchEvent
from scheduler_extender.placeholders.informer import Informer
from tests.controller.conftest import eventually


class Stream:
    """A watch stream that delivers ``events`` and then ends, as the server closing it."""

    def __init__(self, events: list[WatchEvent]) -> None:
        self.events = events

    def __iter__(self) -> Iterator[WatchEvent]:
        yield from self.events

    def close(self) -> None:
        pass


def bookmark(rv: str) -> WatchEvent:
    return WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": rv}})


def run_informer(events: list[WatchEvent], seconds: float) -> tuple[Informer, int]:
    """An informer over a server whose every watch delivers ``events`` and ends; the number
    of watches it opened in ``seconds``."""
    stop = threading.Event()
    watches = 0

    def watcher(rv: str, timeout: int) -> Any:
        nonlocal watches
        watches += 1
        return Stream(events)

    informer = Informer(
        "test",
        lambda token: ListPage([], "5", ""),
        watcher,
        stop=stop,
        backoff_initial=0.2,
        backoff_max=1.0,
    ).start()
    try:
        eventually(informer.synced.is_set)
        time.sleep(seconds)
        return informer, watches
    finally:
        stop.set()
        informer.join(2)


def test_a_watch_that_ends_at_once_backs_off_and_counts_as_broken() -> None:
    informer, watches = run_informer([], 1.0)
    # Backoff 0.1-0.2 s, 0.2-0.4 s, 0.4-0.8 s...: a handful of watches, not thousands.
    assert 2 <= watches <= 6, watches
    assert informer.short_watches >= 2
    assert not informer.healthy()
    assert "very short watch" in informer.problem()


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([bookmark("7")], id="bookmark"),
        pytest.param(
            [WatchEvent("ADDED", {"metadata": {"name": "a", "resourceVersion": "7"}})], id="event"
        ),
    ],
)
def test_a_watch_that_delivers_is_not_short(events: list[WatchEvent]) -> None:
    """Such a watch is re-opened at once (the server ended it normally), so it is opened
    many times; none counts as short, and the view stays healthy at the new version."""
    informer, watches = run_informer(events, 0.3)
    assert watches > 10
    assert informer.short_watches == 0
    assert informer.healthy()
    assert informer.snapshot()[1] == "7"
