"""List+watch of one kind (Nodes or Pods), feeding converted changes to the cache.

One ``Reflector`` per kind runs in its own thread, because the ``kubernetes`` client is
synchronous and a watch is a blocking read that may last minutes; the asyncio loop serving
kube-scheduler never waits on it.  The protocol follows client-go's reflector
(ref: staging/src/k8s.io/client-go/tools/cache/reflector.go):

1. **list** the whole collection in pages (``limit``/``continue``), a consistent read;
2. **watch** from the list's resourceVersion with ``allowWatchBookmarks``, remembering the
   resourceVersion of every event and bookmark;
3. when a watch ends (the server's ``timeoutSeconds``, randomized in [t, 2t) as client-go does to
   spread reconnects, or a dropped connection) **watch again** from the last resourceVersion;
4. on ``410 Expired`` (compacted history) or "Too large resource version" (a restored etcd)
   **relist**;
5. on any other failure back off exponentially with jitter (client-go: 800 ms doubling to 30 s)
   and retry, marking the kind *broken* from its last sign of life until it shows one again
   (see ``KindStatus``).  A watch that ends at once with nothing delivered is such a failure,
   and so is an open watch that stays silent past the read timeout (a hung server).

Conversion to core values happens here, in the reflector's thread, so the single thread that
applies changes only does dictionary work.  Objects that fail conversion are logged, counted and
skipped; they never stop the watch.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from urllib3.exceptions import ReadTimeoutError

from scheduler_extender.cache.options import CacheOptions
from scheduler_extender.cache.store import Store
from scheduler_extender.core.types import Node, Pod
from scheduler_extender.kube.client import (
    ApiError,
    Kind,
    KubeClient,
    ListPage,
    Obj,
    WatchStream,
    resource_version,
)
from scheduler_extender.kube.convert import (
    ConversionError,
    PlaceholderRule,
    is_terminal,
    node_from_json,
    pod_from_json,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """One unit of work for the store: a watch event or a whole (re)list of one kind."""

    kind: Kind
    #: ADDED, MODIFIED, DELETED; or LIST_BEGIN, LIST_PAGE, LIST_ABORT and LIST (the list is
    #: complete) for a (re)list delivered page by page.
    type: str
    apply: Callable[[Store], None]


#: A watch that ends sooner than this without delivering a single event or bookmark is a
#: failure, not a restart: it is retried with backoff, so a proxy or server that closes every watch
#: at once cannot drive a hot loop of requests.  client-go does the same ("very short watch: ...
#: watch lasted less than a second and no items received";
#: ref: staging/src/k8s.io/client-go/tools/cache/reflector.go).
MIN_WATCH_SECONDS = 1.0


class WatchSilentError(Exception):
    """An open watch delivered nothing for ``watch_read_timeout_seconds`` (no event, no
    bookmark, no end): the API server or something on the way may be hung."""


@dataclass(slots=True)
class KindStatus:
    """What one reflector reports about itself; written by its thread, read by anyone.

    Health is judged from *signs of life*: a completed list, an event or bookmark, a watch that
    the server ended normally, and a watch that has stayed open for ``MIN_WATCH_SECONDS``.  When
    something fails (an error, a watch silent past the read timeout, a very short watch) the kind
    is broken *since its last sign of life*, not since the failure was noticed: a hung API server
    is only noticed at the read timeout, but the cache stopped moving before that.
    """

    kind: Kind
    synced: bool = False
    connected: bool = False
    broken_since: float | None = None
    last_error: str = ""
    #: Last event or bookmark (for the metric).
    last_event: float | None = None
    #: Last sign of life of any kind.
    last_alive: float | None = None
    #: When the watch that is open now got its response; None while none is open.
    watch_opened: float | None = None
    resource_version: str = ""
    relists: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    conversion_errors: int = 0

    def alive(self, now: float) -> None:
        """A sign of life at ``now``: whatever was broken works again."""
        if self.last_alive is None or now > self.last_alive:
            self.last_alive = now
        self.broken_since = None

    def opened(self, now: float) -> None:
        self.connected = True
        self.watch_opened = now

    def closed(self) -> None:
        self.connected = False
        self.watch_opened = None

    def broken(self, now: float, error: str) -> None:
        """Something failed: broken since the last sign of life (``now`` if there was none)."""
        self.closed()
        self.last_error = error
        if self.broken_since is None:
            self.broken_since = self.last_alive if self.last_alive is not None else now

    def stale_for(self, now: float) -> float | None:
        """Seconds since the last sign of life while broken; None when working.

        A broken kind whose new watch has stayed open for ``MIN_WATCH_SECONDS`` has reconnected
        fine, even before the watch delivers anything (a quiet cluster)."""
        since = self.broken_since
        if since is None:
            return None
        opened = self.watch_opened
        if opened is not None and now - opened >= MIN_WATCH_SECONDS:
            return None
        return now - since


class Backoff:
    """Capped exponential backoff with "equal jitter": the n-th delay is uniform in
    [d/2, d] with d = min(cap, initial * 2**n), so retries from many replicas spread out."""

    def __init__(self, initial: float, cap: float, rng: random.Random) -> None:
        self.initial = initial
        self.cap = cap
        self.rng = rng
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return float(delay / 2 + self.rng.random() * delay / 2)

    def reset(self) -> None:
        self.attempt = 0


def _uid(obj: Obj) -> str:
    meta = obj.get("metadata")
    return str(meta.get("uid") or "") if isinstance(meta, dict) else ""


def _describe(obj: Any) -> str:
    """``namespace/name (uid u)`` of an object of any shape, for logs."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return f"without metadata ({type(obj).__name__})"
    name = str(meta.get("name") or "?")
    if meta.get("namespace"):
        name = f"{meta['namespace']}/{name}"
    return f"{name} (uid {meta.get('uid') or '?'})"


def _page(kind: Kind, values: list[Node | Pod]) -> Callable[[Store], None]:
    return lambda store: store.relist_page(kind, values)


class ListWatch:
    """The list/watch loop of client-go's reflector for one collection (see the module doc),
    with its health in ``status``.  Subclasses say how to list (``_list``, which calls
    ``_listed``), how to open a watch (``_open_watch``) and what an event does (``_event``);
    the loop, the watch bookkeeping, relists on expiry and backoff are here, once."""

    #: Why the next list happens (a label of the relist count): initial, expired...
    relist_reason = "initial"

    def __init__(
        self,
        label: str,
        status: KindStatus,
        *,
        stop: threading.Event,
        clock: Callable[[], float],
        rng: random.Random,
        watch_timeout: float,
        read_timeout: float,
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        self.label = label
        self.status = status
        self.stop = stop
        self.clock = clock
        self.rng = rng
        #: Server-side timeout of a watch; each asks for a random value in [t, 2t).
        self.watch_timeout = watch_timeout
        #: Only for messages: ``_open_watch`` applies it to its request.
        self.read_timeout = read_timeout
        self.backoff = Backoff(backoff_initial, backoff_max, rng)
        self._stream: WatchStream | None = None

    # --- what subclasses provide ---

    def _list(self, reason: str) -> str:
        """List everything, hand it on, call ``_listed``; the resourceVersion to watch from."""
        raise NotImplementedError

    def _open_watch(self, rv: str, timeout: int) -> WatchStream:
        raise NotImplementedError

    def _event(self, event_type: str, obj: Obj) -> None:
        """An ADDED, MODIFIED or DELETED object from the watch."""
        raise NotImplementedError

    def _bookmark(self, rv: str) -> None:
        """Everything up to ``rv`` has been delivered."""

    def _restarted(self, reason: str) -> None:
        self.status.restarts[reason] = self.status.restarts.get(reason, 0) + 1

    # --- shared ---

    def _listed(self, reason: str, rv: str) -> None:
        """Bookkeeping of a complete list: a sign of life, and the backoff starts over."""
        self.status.relists[reason] = self.status.relists.get(reason, 0) + 1
        self.status.synced = True
        self.status.alive(self.clock())
        self.status.resource_version = rv
        self.backoff.reset()

    def _watch(self, rv: str) -> tuple[str, bool]:
        """Watch from ``rv`` until the stream ends.

        Returns the resourceVersion to resume from ("" when the history is gone and a relist is
        needed; ``self.relist_reason`` says why) and whether the watch was *very short* (ended
        before ``MIN_WATCH_SECONDS`` without delivering anything).  Raises ``WatchSilentError``
        when the open stream stays silent past the read timeout, and whatever the client raises
        when the watch cannot be opened or breaks.
        """
        timeout = max(1, int(self.watch_timeout * (1 + self.rng.random())))
        stream = self._open_watch(rv, timeout)
        self._stream = stream
        if self.stop.is_set():
            stream.close()
            return rv, False
        opened = self.clock()
        self.status.opened(opened)
        # A server asked for a very short timeout may legitimately end the watch that soon.
        shortest = min(MIN_WATCH_SECONDS, timeout / 2)
        delivered = 0
        try:
            for event in stream:
                delivered += 1
                now = self.clock()
                self.status.last_event = now
                self.status.alive(now)
                if event.type == "BOOKMARK":
                    rv = resource_version(event.object) or rv
                    self._bookmark(rv)
                    self.status.resource_version = rv
                    self.backoff.reset()
                    continue
                if event.type == "ERROR":
                    error = ApiError.from_status(event.object)
                    if error.expired:
                        self.relist_reason = "expired"
                        return "", False
                    if error.too_large_resource_version:
                        self.relist_reason = "too_large_resource_version"
                        return "", False
                    raise error
                if event.type not in ("ADDED", "MODIFIED", "DELETED"):
                    log.warning(
                        "%s: ignoring watch event of unknown type %r", self.label, event.type
                    )
                    continue
                self._event(event.type, event.object)
                rv = resource_version(event.object) or rv
                self.status.resource_version = rv
                self.backoff.reset()
        except ReadTimeoutError:
            raise WatchSilentError(
                f"watch silent for {self.read_timeout:g}s (no event, bookmark or end)"
            ) from None
        finally:
            self._stream = None
            stream.close()
            lasted = self.clock() - opened
            self.status.closed()
            if delivered == 0 and lasted >= shortest:
                # Open and answering that long, however it ended, is a sign of life.
                self.status.alive(opened + shortest)
        if delivered == 0 and lasted < shortest:
            return rv, True
        # The server ended the watch (its timeoutSeconds): it is alive and we are current.
        self.status.alive(self.clock())
        return rv, False

    def run(self) -> None:
        """List, then watch and re-watch until ``stop`` is set."""
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    rv = self._list(self.relist_reason)
                    continue
                resumed, short = self._watch(rv)
                if not resumed:
                    rv = ""
                    continue
                rv = resumed
                if self.stop.is_set():
                    break
                if short:
                    self._failed(
                        f"very short watch: closed after under {MIN_WATCH_SECONDS:g}s with "
                        "nothing delivered",
                        reason="short",
                    )
                else:
                    self._restarted("closed")
            except WatchSilentError as exc:
                # Maybe a quiet cluster on a server that sends no bookmarks, maybe a hung server:
                # broken since the last sign of life until a new watch proves otherwise.  No
                # backoff: the silence itself was the wait, and a hung server makes the next
                # request wait for its read timeout again.
                self.status.broken(self.clock(), str(exc))
                self._restarted("idle")
                log.warning("%s: %s; watching again", self.label, exc)
            except ApiError as exc:
                # A list whose continue token expired, or a watch the server refused outright
                # (some answer a too-old resourceVersion with 410 rather than an ERROR event):
                # only a fresh list can help, as in client-go.
                if exc.expired:
                    self.relist_reason, rv = "expired", ""
                elif exc.too_large_resource_version:
                    self.relist_reason, rv = "too_large_resource_version", ""
                self._failed(str(exc))
            except Exception as exc:
                if self.stop.is_set():
                    break
                self._failed(f"{type(exc).__name__}: {exc}")
            # A watch that failed mid-stream resumes after the last event it delivered.
            if rv:
                rv = self.status.resource_version or rv
        log.debug("%s: list/watch stopped", self.label)

    def _failed(self, error: str, reason: str = "error") -> None:
        self.status.broken(self.clock(), error)
        self._restarted(reason)
        delay = self.backoff.next()
        log.warning("%s: list/watch failed (%s); retrying in %.2fs", self.label, error, delay)
        self.stop.wait(delay)

    def interrupt(self) -> None:
        """Unblock a watch read from another thread (used when stopping)."""
        stream = self._stream
        if stream is not None:
            stream.close()


class Reflector(ListWatch):
    """Keeps one kind in the store through list, watch, relist and backoff."""

    def __init__(
        self,
        kind: Kind,
        kube: KubeClient,
        sink: Callable[[Change], None],
        options: CacheOptions,
        *,
        rule: PlaceholderRule,
        clock: Callable[[], float],
        rng: random.Random,
        stop: threading.Event,
        on_relist: Callable[[Kind, str], None] = lambda kind, reason: None,
        on_restart: Callable[[Kind, str], None] = lambda kind, reason: None,
        on_skip: Callable[[Kind], None] = lambda kind: None,
    ) -> None:
        super().__init__(
            kind,
            KindStatus(kind),
            stop=stop,
            clock=clock,
            rng=rng,
            watch_timeout=options.watch_timeout_seconds,
            read_timeout=options.watch_read_timeout_seconds,
            backoff_initial=options.backoff_initial_seconds,
            backoff_max=options.backoff_max_seconds,
        )
        self.kind = kind
        self.kube = kube
        self.sink = sink
        self.options = options
        self.rule = rule
        self._on_relist = on_relist
        self._on_restart = on_restart
        self._on_skip = on_skip

    # --- conversion ---

    def _convert(self, obj: Obj) -> Node | Pod | None:
        """The core value for ``obj``, or None when it cannot be converted.

        Any exception counts, not only ``ConversionError``: one object the converter chokes on
        (a quantity of "Infinity", a container that is not an object) must cost that object,
        never the whole list, or the reflector would relist forever and the cache never sync.
        """
        try:
            if self.kind == "nodes":
                return node_from_json(obj)
            return pod_from_json(obj, self.rule)
        except Exception as exc:
            self.status.conversion_errors += 1
            self._on_skip(self.kind)
            problem = str(exc)
            if not isinstance(exc, ConversionError):
                problem = f"{type(exc).__name__}: {exc}"
            what = f"{self.kind[:-1]} {_describe(obj)}"
            log.warning("skipping %s that cannot be converted: %s", what, problem)
            return None

    def _change(self, event_type: str, obj: Obj) -> Change | None:
        if self.kind == "nodes":
            meta = obj.get("metadata")
            name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
            if event_type == "DELETED":
                return Change("nodes", event_type, lambda s: s.delete_node(name))
            node = self._convert(obj)
            if not isinstance(node, Node):
                return None
            return Change("nodes", event_type, lambda s: s.upsert_node(node))
        uid = _uid(obj)
        if event_type == "DELETED" or is_terminal(obj):
            return Change("pods", event_type, lambda s: s.delete_pod(uid))
        pod = self._convert(obj)
        if not isinstance(pod, Pod):
            return None
        return Change("pods", event_type, lambda s: s.upsert_pod(pod))

    # --- list ---

    def _fetch(self, token: str) -> ListPage:
        return self.kube.list(
            self.kind,
            limit=self.options.page_size,
            continue_token=token,
            timeout=self.options.request_timeout_seconds,
        )

    def _list(self, reason: str) -> str:
        """All pages, converting each while the next one is being fetched: the API server's
        time to serve a page overlaps with ours to convert the previous one.

        Each converted page goes to the store at once (``relist_page``), which keeps the objects
        it already holds for unchanged items, so a relist never holds a second full copy of the
        cache; the truth changes only when the last page is in (``end_relist``)."""
        kind = self.kind
        self.sink(Change(kind, "LIST_BEGIN", lambda s: s.begin_relist(kind)))
        count = 0
        try:
            with ThreadPoolExecutor(1, thread_name_prefix=f"list-{kind}") as pool:
                pending = pool.submit(self._fetch, "")
                while True:
                    page = pending.result()
                    more = bool(page.continue_token) and not self.stop.is_set()
                    if more:
                        pending = pool.submit(self._fetch, page.continue_token)
                    values = self._convert_page(page)
                    count += len(values)
                    self.sink(Change(kind, "LIST_PAGE", _page(kind, values)))
                    del values  # the store decides which copies live on
                    if not more:
                        break
        except BaseException:
            self.sink(Change(kind, "LIST_ABORT", lambda s: s.abort_relist(kind)))
            raise
        self.sink(Change(kind, "LIST", lambda s: s.end_relist(kind)))
        rv = page.resource_version
        self._listed(reason, rv)
        self._on_relist(kind, reason)
        log.info("listed %d %s at resourceVersion %s (%s)", count, kind, rv, reason)
        return rv

    def _convert_page(self, page: ListPage) -> list[Node | Pod]:
        values: list[Node | Pod] = []
        for item in page.items:
            if self.kind == "pods" and isinstance(item, dict) and is_terminal(item):
                continue
            value = self._convert(item)
            if value is not None:
                values.append(value)
        page.items.clear()  # the page's JSON can go before the next page arrives
        return values

    # --- watch ---

    def _open_watch(self, rv: str, timeout: int) -> WatchStream:
        return self.kube.watch(
            self.kind,
            resource_version=rv,
            timeout_seconds=timeout,
            read_timeout=self.options.watch_read_timeout_seconds,
        )

    def _event(self, event_type: str, obj: Obj) -> None:
        change = self._change(event_type, obj)
        if change is not None:
            self.sink(change)

    def _restarted(self, reason: str) -> None:
        super()._restarted(reason)
        self._on_restart(self.kind, reason)
