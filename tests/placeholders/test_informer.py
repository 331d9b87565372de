"""The controller's informer on its own: watches that end at once back off (review finding
I6) and count as broken, a watch that delivers is not short, and bookmarks advance the
resourceVersion that expectations are compared with.  The informer runs on a fake clock with
scripted watches (tests/cache/scripted.py): no sleeps, no dependence on thread scheduling."""

from __future__ import annotations

import random

import pytest

from scheduler_extender.kube.client import ListPage, WatchEvent
from scheduler_extender.placeholders.informer import Informer
from tests.cache.scripted import FakeClock, RecordingStop, Script, ScriptedStream


def bookmark(rv: str) -> WatchEvent:
    return WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": rv}})


def run_informer(script: Script, watches: int) -> tuple[Informer, RecordingStop]:
    """An informer over a server whose every watch plays ``script`` and ends, run in this
    thread until it has opened ``watches`` watches."""
    clock = FakeClock()
    opened = [0]

    def watcher(rv: str, timeout: int) -> ScriptedStream:
        opened[0] += 1
        return ScriptedStream(clock, script)

    stop = RecordingStop(lambda: opened[0], watches)
    informer = Informer(
        "test",
        lambda token: ListPage([], "5", ""),
        watcher,
        stop=stop,
        backoff_initial=0.2,
        backoff_max=1.0,
        rng=random.Random(3),
        clock=clock,
    )
    informer.run()
    return informer, stop


def test_a_watch_that_ends_at_once_backs_off_and_counts_as_broken() -> None:
    informer, stop = run_informer(Script(0.0), watches=6)
    assert informer.synced.is_set()
    # One backoff wait after each of the first five watches: 0.1-0.2 s, 0.2-0.4 s, 0.4-0.8 s,
    # then capped at 0.5-1 s: a handful of watches a second, never a hot loop.
    assert [n for n, _ in stop.waits] == [1, 2, 3, 4, 5]
    for i, (_, delay) in enumerate(stop.waits):
        cap = min(1.0, 0.2 * 2**i)
        assert cap / 2 <= delay <= cap, (i, delay)
    assert informer.short_watches == 5
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
    """Such a watch is re-opened at once (the server ended it normally): no backoff, none
    counts as short, and the view stays healthy at the new version."""
    informer, stop = run_informer(Script(0.0, events), watches=12)
    assert stop.waits == []
    assert informer.short_watches == 0
    assert informer.healthy()
    assert informer.snapshot()[1] == "7"
