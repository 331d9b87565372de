"""A small informer: list+watch of one selection of objects into a dict, for the controller.

The extender's cache (``cache.reflector``) converts everything to core values for scoring; the
controller needs other things (a pod's phase, deletion timestamp and annotations, a node's Ready
condition and images), for a handful of objects, so it keeps the (transformed) JSON of what it
selected.  The protocol and the health model are the reflector's, shared rather than
re-invented (ref: client-go tools/cache/reflector.go):

- a paged, consistent list; a watch from the list's resourceVersion with bookmarks; watch again
  from the last resourceVersion when the server ends it; relist after ``410 Expired`` or "too
  large resource version"; exponential backoff with jitter (``cache.reflector.Backoff``) on any
  other failure;
- a watch that ends before ``MIN_WATCH_SECONDS`` having delivered nothing is a failure, retried
  with backoff, so a server or proxy that closes every watch at once cannot drive a hot loop;
- an open watch silent past its read timeout (no event, no bookmark; a real API server sends a
  bookmark about once a minute) is a hung server: ``WatchSilentError``;
- ``status`` is a ``cache.reflector.KindStatus``: broken *since the last sign of life* whenever
  something failed, until a new watch proves itself.  ``healthy()`` is what the controller asks
  before it writes: a controller whose view of its own pods is broken would take pods it
  created for pods that never were, and create them again.

``on_event(type, new, old)`` runs in the informer's thread for every change (``SYNC`` after each
list, with no objects): keep it short (the controller only records a time and wakes its loop).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator

from scheduler_extender.cache.reflector import KindStatus, ListWatch
from scheduler_extender.kube.client import Kind, ListPage, Obj, WatchStream, resource_version

log = logging.getLogger(__name__)

Lister = Callable[[str], ListPage]  # continue token -> page
Watcher = Callable[[str, int], WatchStream]  # resourceVersion, timeout seconds -> stream
Handler = Callable[[str, Obj | None, Obj | None], None]  # type, new, old
Transform = Callable[[Obj], Obj]


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class Informer(ListWatch):
    """Keeps ``items`` (key -> object) in step with the API server, in its own thread; the
    list/watch loop is ``cache.reflector.ListWatch``."""

    def __init__(
        self,
        name: str,
        lister: Lister,
        watcher: Watcher,
        *,
        stop: threading.Event,
        kind: Kind = "pods",
        on_event: Handler = lambda kind, new, old: None,
        watch_timeout: float = 300.0,
        read_timeout: float = 90.0,
        backoff_initial: float = 0.8,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(
            name,
            KindStatus(kind),
            stop=stop,
            clock=clock,
            rng=rng or random.Random(),
            watch_timeout=watch_timeout,
            read_timeout=read_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self.lister = lister
        self.watcher = watcher
        self.on_event = on_event
        #: Applied to every object before it is stored (keep only what the handler reads).
        self.transform = transform or (lambda obj: obj)
        self._items: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        #: Every change up to this resourceVersion is in ``items`` (list, event or bookmark).
        self.resource_version = ""
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.label

    @property
    def errors(self) -> int:
        """Failed lists and watches so far (a watch the server ended normally is no error)."""
        return sum(n for reason, n in self.status.restarts.items() if reason != "closed")

    @property
    def short_watches(self) -> int:
        """Watches that ended too soon with nothing delivered (retried with backoff)."""
        return self.status.restarts.get("short", 0)

    # --- reading (any thread) ---

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    def snapshot(self) -> tuple[list[Obj], str]:
        """The items and the resourceVersion they are complete up to, read together."""
        with self._lock:
            return list(self._items.values()), self.resource_version

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def problem(self, now: float | None = None) -> str:
        """Why this informer's view cannot be trusted now; "" when it can (listed, and the
        watch has not failed since its last sign of life)."""
        if not self.synced.is_set():
            error = self.status.last_error
            return f"{self.name}: not listed yet" + (f" ({error})" if error else "")
        stale = self.status.stale_for(self.clock() if now is None else now)
        if stale is None:
            return ""
        error = self.status.last_error
        return f"{self.name}: watch broken, no sign of life for {stale:.0f}s: {error}"

    def healthy(self, now: float | None = None) -> bool:
        return not self.problem(now)

    # --- list and watch ---

    def _pages(self) -> Iterator[ListPage]:
        token = ""
        while True:
            page = self.lister(token)
            yield page
            token = page.continue_token
            if not token or self.stop.is_set():
                return

    def _list(self, reason: str) -> str:
        fresh: dict[str, Obj] = {}
        rv = ""
        for page in self._pages():
            for obj in page.items:
                fresh[object_key(obj)] = self.transform(obj)
            rv = page.resource_version
        with self._lock:
            old = self._items
            self._items = fresh
            self.resource_version = rv
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self.on_event("ADDED", obj, None)
            elif before != obj:
                self.on_event("MODIFIED", obj, before)
        for key, obj in old.items():
            if key not in fresh:
                self.on_event("DELETED", None, obj)
        self._listed(reason, rv)
        self.synced.set()
        self.on_event("SYNC", None, None)
        log.debug("%s: listed %d at resourceVersion %s", self.name, len(fresh), rv)
        return rv

    def _event(self, event_type: str, raw: Obj) -> None:
        obj = self.transform(raw)
        key = object_key(obj)
        rv = resource_version(raw)
        with self._lock:
            old = self._items.get(key)
            if event_type == "DELETED":
                self._items.pop(key, None)
            else:
                self._items[key] = obj
            if rv:
                self.resource_version = rv
        if event_type == "MODIFIED" and old == obj:
            return  # nothing the transform keeps changed (a node's heartbeat)
        if event_type == "DELETED":
            self.on_event("DELETED", None, old or obj)
        else:
            self.on_event(event_type, obj, old)

    def _open_watch(self, rv: str, timeout: int) -> WatchStream:
        return self.watcher(rv, timeout)

    def _bookmark(self, rv: str) -> None:
        with self._lock:
            self.resource_version = rv

    def start(self) -> Informer:
        thread = threading.Thread(target=self.run, name=f"informer-{self.name}", daemon=True)
        self._thread = thread
        thread.start()
        return self

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
