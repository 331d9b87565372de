"""A small informer: list+watch of one selection of objects into a dict, for the controller.

The extender's cache (``cache.reflector``) converts everything to core values for scoring; the
controller needs other things (a pod's phase, deletion timestamp and annotations, a node's Ready
condition and images), for a handful of objects, so it keeps the raw JSON of what it selected.
The protocol is the same client-go one (ref: client-go tools/cache/reflector.go): a paged,
consistent list; a watch from the list's resourceVersion with bookmarks; watch again from the
last resourceVersion when the server ends it; relist after ``410 Expired`` or "too large
resource version"; exponential backoff with jitter on any other failure.

``on_event(type, new, old)`` runs in the informer's thread for every change (``SYNC`` after each
list, with no objects): keep it short (the controller only records a time and wakes its loop).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator

from urllib3.exceptions import ReadTimeoutError

from scheduler_extender.cache.reflector import Backoff
from scheduler_extender.kube import ApiError, ListPage, Obj, WatchStream

log = logging.getLogger(__name__)

Lister = Callable[[str], ListPage]  # continue token -> page
Watcher = Callable[[str, int], WatchStream]  # resourceVersion, timeout seconds -> stream
Handler = Callable[[str, Obj | None, Obj | None], None]  # type, new, old


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class Informer:
    """Keeps ``items`` (key -> object) in step with the API server, in its own thread."""

    def __init__(
        self,
        name: str,
        lister: Lister,
        watcher: Watcher,
        *,
        stop: threading.Event,
        on_event: Handler = lambda kind, new, old: None,
        watch_timeout: float = 300.0,
        backoff_initial: float = 0.8,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
        transform: Callable[[Obj], Obj] | None = None,
    ) -> None:
        self.name = name
        self.lister = lister
        self.watcher = watcher
        self.stop = stop
        self.on_event = on_event
        self.watch_timeout = watch_timeout
        self.rng = rng or random.Random()
        #: Applied to every object before it is stored (keep only what the handler reads).
        self.transform = transform or (lambda obj: obj)
        self.backoff = Backoff(backoff_initial, backoff_max, self.rng)
        self._items: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()
        self.resource_version = ""
        self.relists = 0
        self.errors = 0
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None

    # --- reading (any thread) ---

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    # --- list and watch ---

    def _pages(self) -> Iterator[ListPage]:
        token = ""
        while True:
            page = self.lister(token)
            yield page
            token = page.continue_token
            if not token or self.stop.is_set():
                return

    def _list(self) -> str:
        fresh: dict[str, Obj] = {}
        rv = ""
        for page in self._pages():
            for obj in page.items:
                fresh[object_key(obj)] = self.transform(obj)
            rv = page.resource_version
        with self._lock:
            old = self._items
            self._items = fresh
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self.on_event("ADDED", obj, None)
            elif before != obj:
                self.on_event("MODIFIED", obj, before)
        for key, obj in old.items():
            if key not in fresh:
                self.on_event("DELETED", None, obj)
        self.relists += 1
        self.synced.set()
        self.on_event("SYNC", None, None)
        self.backoff.reset()
        log.debug("%s: listed %d at resourceVersion %s", self.name, len(fresh), rv)
        return rv

    def _watch(self, rv: str) -> str:
        """Watch from ``rv`` until the stream ends; "" means relist."""
        timeout = max(1, int(self.watch_timeout * (1 + self.rng.random())))
        stream = self.watcher(rv, timeout)
        self._stream = stream
        try:
            if self.stop.is_set():
                return rv
            for event in stream:
                meta = event.object.get("metadata") or {}
                if event.type == "BOOKMARK":
                    rv = str(meta.get("resourceVersion") or rv)
                    continue
                if event.type == "ERROR":
                    error = ApiError.from_status(event.object)
                    if error.expired or error.too_large_resource_version:
                        return ""
                    raise error
                obj = self.transform(event.object)
                key = object_key(obj)
                with self._lock:
                    old = self._items.get(key)
                    if event.type == "DELETED":
                        self._items.pop(key, None)
                    elif event.type in ("ADDED", "MODIFIED"):
                        self._items[key] = obj
                    else:
                        continue
                if event.type == "DELETED":
                    self.on_event("DELETED", None, old or obj)
                else:
                    self.on_event(event.type, obj, old)
                rv = str(meta.get("resourceVersion") or rv)
                self.resource_version = rv
                self.backoff.reset()
        finally:
            self._stream = None
            stream.close()
        return rv

    def run(self) -> None:
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                    self.resource_version = rv
                    continue
                rv = self._watch(rv)
            except ReadTimeoutError:
                continue  # a silent connection: watch again at once
            except Exception as exc:
                if self.stop.is_set():
                    break
                self.errors += 1
                if isinstance(exc, ApiError) and exc.expired:
                    rv = ""
                delay = self.backoff.next()
                log.warning("%s: list/watch failed (%s); retrying in %.2fs", self.name, exc, delay)
                self.stop.wait(delay)

    def start(self) -> Informer:
        thread = threading.Thread(target=self.run, name=f"informer-{self.name}", daemon=True)
        self._thread = thread
        thread.start()
        return self

    def interrupt(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.close()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
