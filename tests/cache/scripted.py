"""Scripted watches on a fake clock, for the list/watch loop (``cache.reflector.ListWatch``) that
the cache's Reflector and the controller's Informer share: each watch stays open for a scripted
time on the fake clock and delivers scripted events, and the stop event records every backoff
wait instead of sleeping, so tests assert on the loop's decisions, never on wall-clock time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from scheduler_extender.kube.client import ListPage, WatchEvent


@dataclass
class Script:
    """One scripted watch: how long it stays open (on the fake clock) and what it delivers."""

    seconds: float
    events: list[WatchEvent] = field(default_factory=list)


class ScriptedStream:
    def __init__(self, clock: FakeClock, script: Script) -> None:
        self.clock = clock
        self.script = script

    def __iter__(self) -> Iterator[WatchEvent]:
        yield from self.script.events
        self.clock.now += self.script.seconds

    def close(self) -> None:
        pass


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedKube:
    """Lists nothing and opens the scripted watches in turn."""

    def __init__(self, clock: FakeClock, scripts: list[Script]) -> None:
        self.clock = clock
        self.scripts = scripts
        self.watches = 0

    def list(self, kind: str, **_: Any) -> ListPage:
        return ListPage([], "5", "")

    def watch(self, kind: str, **_: Any) -> ScriptedStream:
        script = self.scripts[min(self.watches, len(self.scripts) - 1)]
        self.watches += 1
        return ScriptedStream(self.clock, script)


class RecordingStop(threading.Event):
    """The loop's stop event: records each backoff wait instead of sleeping, and stops the loop
    once ``watches`` watches have been opened (``opened()`` counts them)."""

    def __init__(self, kube: ScriptedKube | Callable[[], int], watches: int) -> None:
        super().__init__()
        self.opened: Callable[[], int] = (
            (lambda: kube.watches) if isinstance(kube, ScriptedKube) else kube
        )
        self.watches = watches
        self.waits: list[tuple[int, float]] = []  # (watches opened so far, delay)

    def is_set(self) -> bool:
        return super().is_set() or self.opened() >= self.watches

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append((self.opened(), timeout or 0.0))
        return self.is_set()
