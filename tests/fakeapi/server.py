"""A small Kubernetes API server for tests: real HTTP on 127.0.0.1, the real wire protocol.

There is no kube-apiserver on these machines, so the cache is tested against this instead, with the
real ``kubernetes`` client talking to it through a generated kubeconfig.  It follows the protocol
where a client can tell the difference:

- ``GET /api/v1/{plural}`` and ``/api/v1/namespaces/{ns}/{plural}`` (and
  ``/apis/{group}/{version}/...``) list with ``metadata.resourceVersion``, paging with
  ``limit``/``continue`` (410 Expired for a stale token), equality label/field selectors;
- ``?watch=true`` answers 200 with a chunked stream of newline-delimited ``{"type","object"}``
  events (ADDED/MODIFIED/DELETED), BOOKMARKs when ``allowWatchBookmarks=true``, an ERROR event
  with a 410 ``Expired`` Status for a compacted resourceVersion, and ends after ``timeoutSeconds``;
- create (POST, ``generateName``), get, replace (PUT, with resourceVersion precondition), merge
  patch (PATCH; a ``metadata.resourceVersion`` in the patch is a precondition), delete with
  ``DeleteOptions`` (UID/resourceVersion preconditions, graceful deletion of bound pods);
  ``POST .../pods/{name}/binding`` sets ``spec.nodeName`` (409 when already bound); optional
  pod admission (``store.pod_admission``: PriorityClass resolution);
- Pods, Nodes, Namespaces, Leases, PriorityClasses, ConfigMaps, Deployments and PodTemplates,
  custom resources added with ``store.add_type`` (``crds.py``: CapacityBuffers, validated
  against the CRD's schema), discovery of ``/apis/{group}/{version}`` (404 for a group version
  nothing serves), and a garbage-collector pass on demand (``store.collect_garbage()``,
  ownerReferences);
- errors are ``metav1.Status`` JSON with the real reasons and codes; a bearer token is required.

Fault controls for tests: ``cut_watches()`` (drop every watch connection, optionally mid-line),
``before_request`` (a hook that can hold or count requests: a slow API server),
``store.compact()``, ``stop()``/``start()`` (server down, same port), and
``store.reset_versions()`` (restarted with unrelated resourceVersions).

It is a test double and knows it: no admission, no namespaces check, no field defaulting, no
authorization beyond the token, HTTP without TLS.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from tests.fakeapi.store import (
    NODES,
    PODS,
    ApiStore,
    Change,
    Obj,
    Requirement,
    ResourceType,
    StatusError,
    expired,
    matches,
    parse_selector,
    too_large,
)

LOOPBACK = "127.0.0.1"


@dataclass(slots=True, eq=False)
class _Watch:
    rt: ResourceType
    cut: threading.Event = field(default_factory=threading.Event)
    partial: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients dropping connections is what the fault tests do

    def process_request(self, request: Any, client_address: Any) -> None:
        self.fake._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.fake._connections.discard(request)
        super().shutdown_request(request)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # --- plumbing ---

    @property
    def fake(self) -> FakeApiServer:
        return self.server.fake

    def _send_json(self, code: int, body: Any) -> None:
        data = orjson.dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Obj:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise StatusError(400, "BadRequest", f"invalid JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise StatusError(400, "BadRequest", "body must be a JSON object")
        return body

    def _route(self) -> tuple[ResourceType | None, str | None, str, str, dict[str, str]]:
        """(type, namespace or None, name, subresource, query)."""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise StatusError(
                404, "NotFound", f"the server could not find the requested resource {url.path}"
            )
        if not rest and group:
            self._discovery(group, version)
            return None, None, "", "", query
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise StatusError(
                404, "NotFound", f"the server could not find the requested resource {url.path}"
            )
        rt = self.fake.store.resource(group, version, rest[0])
        if ns is not None and not rt.namespaced:
            raise StatusError(404, "NotFound", f"{rt.plural} is not namespaced")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return rt, ns, name, sub, query

    def _discovery(self, group: str, version: str) -> None:
        """``GET /apis/{group}/{version}``: the APIResourceList of the types served there, or
        404 when none is (a CRD not installed).  Only the fields clients read."""
        types = self.fake.store.types.values()
        served = [rt for rt in types if (rt.group, rt.version) == (group, version)]
        if not served:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        resources = [
            {"name": rt.plural, "singularName": rt.kind.lower(), "namespaced": rt.namespaced,
             "kind": rt.kind, "verbs": verbs}
            for rt in served
        ]  # fmt: skip
        self._send_json(
            200,
            {"kind": "APIResourceList", "apiVersion": "v1",
             "groupVersion": f"{group}/{version}", "resources": resources},
        )  # fmt: skip

    def _authorized(self) -> bool:
        token = self.fake.token
        if not token or self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self._send_json(401, StatusError(401, "Unauthorized", "Unauthorized").status())
        return False

    def _dispatch(self, method: str) -> None:
        if self.fake.refuse_requests:
            self.close_connection = True
            return
        hook = self.fake.before_request
        if hook is not None:
            hook(method, self.path)  # e.g. hold a request to play a slow API server
        try:
            if self.path.startswith("/_fake/"):
                self._control(method)
                return
            if self.path == "/version":
                self._send_json(200, {"major": "1", "minor": "36", "gitVersion": "v1.36.0-fake"})
                return
            if not self._authorized():
                return
            rt, ns, name, sub, query = self._route()
            if rt is None:
                return  # answered (discovery)
            self._resource(method, rt=rt, ns=ns, name=name, sub=sub, query=query)
        except StatusError as exc:
            self._send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- resources ---

    def _resource(
        self,
        method: str,
        *,
        rt: ResourceType,
        ns: str | None,
        name: str,
        sub: str,
        query: dict[str, str],
    ) -> None:
        store = self.fake.store
        key_ns = ns or ""
        if sub:
            if rt == PODS and sub == "binding" and method == "POST" and ns is not None:
                store.bind(ns, name, self._body())
                self._send_json(
                    201,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "code": 201,
                    },
                )
                return
            raise StatusError(
                404, "NotFound", f"subresource {sub!r} is not served by the fake API server"
            )
        if rt.namespaced and ns is None and (name or method != "GET"):
            raise StatusError(
                404, "NotFound", f"{rt.plural} is namespaced; use /namespaces/{{ns}}/{rt.plural}"
            )
        if method == "GET" and not name:
            if _truthy(query.get("watch")):
                self._watch(rt, ns, query)
            else:
                self._list(rt, ns, query)
            return
        if method == "GET":
            self._send_json(200, store.get(rt, key_ns, name))
        elif method == "POST" and not name:
            self._send_json(201, store.create(rt, key_ns, self._body()))
        elif method == "PUT" and name:
            self._send_json(200, store.replace(rt, key_ns, name, self._body()))
        elif method == "PATCH" and name:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype not in (
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ):
                raise StatusError(
                    415,
                    "UnsupportedMediaType",
                    f"the fake API server does not support patch type {ctype!r}",
                )
            self._send_json(200, store.patch(rt, key_ns, name, self._body()))
        elif method == "DELETE" and name:
            options = self._body() if int(self.headers.get("Content-Length") or 0) else {}
            if query.get("gracePeriodSeconds"):
                options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
            self._send_json(200, store.delete(rt, key_ns, name, options))
        else:
            raise StatusError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _list(self, rt: ResourceType, ns: str | None, query: dict[str, str]) -> None:
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise StatusError(400, "BadRequest", "limit must be an integer") from None
        labels = parse_selector(query.get("labelSelector"))
        fields = parse_selector(query.get("fieldSelector"), fields=True)
        page_no = 0
        token = query.get("continue", "")
        items, rv, next_token = self.fake.store.list(
            rt, ns, limit=limit, token=token, labels=labels, fields=fields
        )
        meta: Obj = {"resourceVersion": rv}
        if next_token:
            meta["continue"] = next_token
        self._send_json(
            200,
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": meta,
                "items": items,
            },
        )
        hook = self.fake.store.hooks.after_list_page
        if hook is not None:
            page_no = 0 if not token else 1
            hook(rt, page_no)

    # --- watch ---

    def _start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunks(self, lines: list[bytes]) -> None:
        self.wfile.write(b"".join(b"%X\r\n%s\r\n" % (len(line), line) for line in lines))

    def _watch(self, rt: ResourceType, ns: str | None, query: dict[str, str]) -> None:
        store = self.fake.store
        labels = parse_selector(query.get("labelSelector"))
        fields = parse_selector(query.get("fieldSelector"), fields=True)
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        try:
            timeout = float(query.get("timeoutSeconds") or self.fake.default_watch_seconds)
        except ValueError:
            raise StatusError(400, "BadRequest", "timeoutSeconds must be a number") from None
        raw_rv = query.get("resourceVersion", "")
        try:
            start_rv = None if raw_rv in ("", "0") else int(raw_rv)
        except ValueError:
            raise StatusError(400, "BadRequest", f"invalid resourceVersion {raw_rv!r}") from None
        deadline = time.monotonic() + timeout
        watch = _Watch(rt)
        self._start_chunked()
        self.fake._watches.add(watch)
        try:
            for lines in self._watch_lines(
                watch,
                rt=rt,
                ns=ns,
                start_rv=start_rv,
                labels=labels,
                fields=fields,
                bookmarks=bookmarks,
                deadline=deadline,
            ):
                if watch.cut.is_set():
                    break
                self._chunks(lines)
            if watch.cut.is_set():
                if watch.partial:
                    self._chunks(
                        [
                            b'{"type":"MODIFIED","object":{"kind":"'
                            + rt.kind.encode()
                            + b'","metadata":{"na'
                        ]
                    )
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(b"0\r\n\r\n")
        finally:
            self.fake._watches.discard(watch)
            with store.cond:
                store.cond.notify_all()

    def _watch_lines(
        self,
        watch: _Watch,
        *,
        rt: ResourceType,
        ns: str | None,
        start_rv: int | None,
        labels: list[Requirement],
        fields: list[Requirement],
        bookmarks: bool,
        deadline: float,
    ) -> Iterator[list[bytes]]:
        store = self.fake.store

        def event(kind: str, obj: Obj) -> bytes:
            return orjson.dumps({"type": kind, "object": obj}) + b"\n"

        def error(exc: StatusError) -> list[bytes]:
            return [event("ERROR", exc.status())]

        def bookmark(rv: int) -> bytes:
            return event(
                "BOOKMARK",
                {
                    "kind": rt.kind,
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(rv)},
                },
            )

        failure: StatusError | None = None
        initial: list[bytes] = []
        with store.cond:
            epoch = store.epoch
            if start_rv is None:
                # "Start at most recent": synthetic ADDED for the current state, then changes.
                initial = [
                    event("ADDED", obj)
                    for (obj_ns, _), obj in sorted(store.objects[rt].items())
                    if (ns is None or obj_ns == ns) and matches(obj, labels, fields)
                ]
                cursor = store.offset + len(store.history)
                last_rv = store.rv
            elif start_rv < store.floor:
                failure = expired(f"too old resource version: {start_rv} ({store.floor})")
            else:
                wait_until = time.monotonic() + self.fake.too_large_wait
                while (
                    start_rv > store.rv and time.monotonic() < wait_until and not watch.cut.is_set()
                ):
                    store.cond.wait(wait_until - time.monotonic())
                if start_rv > store.rv:
                    failure = too_large(start_rv, store.rv)
                cursor = store.position_after(start_rv)
                last_rv = start_rv
        if failure is not None:
            yield error(failure)
            return
        if initial:
            yield initial
        next_bookmark = time.monotonic() + self.fake.bookmark_interval
        while True:
            with store.cond:
                while True:
                    now = time.monotonic()
                    if watch.cut.is_set() or self.fake._stopping or now >= deadline:
                        changes: list[Change] = []
                        break
                    if store.epoch != epoch or cursor < store.offset:
                        # History we still had to send was compacted away (or etcd was restored).
                        failure = expired(f"too old resource version: {last_rv} ({store.floor})")
                        changes = []
                        break
                    end = store.offset + len(store.history)
                    if cursor < end and not self.fake.paused.is_set():
                        changes = store.history[
                            cursor - store.offset : cursor - store.offset + 2000
                        ]
                        cursor += len(changes)
                        last_rv = changes[-1].rv
                        break
                    if bookmarks and now >= next_bookmark and cursor == end:
                        changes = []
                        break
                    wake = min(deadline, next_bookmark if bookmarks else deadline)
                    store.cond.wait(
                        min(wake - now, 0.05) if self.fake.paused.is_set() else wake - now
                    )
                current_rv = store.rv
                caught_up = cursor == store.offset + len(store.history)
            if failure is not None:
                yield error(failure)
                return
            if watch.cut.is_set() or self.fake._stopping:
                yield []
                return
            lines = [line for c in changes if (line := self._render(c, rt, ns, labels, fields))]
            now = time.monotonic()
            if bookmarks and caught_up and (now >= next_bookmark or now >= deadline):
                lines.append(bookmark(current_rv))
                next_bookmark = now + self.fake.bookmark_interval
            if lines:
                yield lines
            if now >= deadline:
                return

    @staticmethod
    def _render(
        change: Change,
        rt: ResourceType,
        ns: str | None,
        labels: list[Requirement],
        fields: list[Requirement],
    ) -> bytes | None:
        if change.rt != rt:
            return None
        meta = change.obj.get("metadata") or {}
        if ns is not None and meta.get("namespace") != ns:
            return None
        new_match = change.type != "DELETED" and matches(change.obj, labels, fields)
        old_match = change.previous is not None and matches(change.previous, labels, fields)
        if change.type == "DELETED":
            kind = "DELETED" if old_match else ""
        elif new_match and old_match:
            kind = "MODIFIED"
        elif new_match:
            kind = "ADDED"
        elif old_match:
            kind = "DELETED"  # stopped matching the selector
        else:
            kind = ""
        if not kind:
            return None
        return orjson.dumps({"type": kind, "object": change.obj}) + b"\n"

    # --- control endpoints (benchmark subprocess only) ---

    def _control(self, method: str) -> None:
        store = self.fake.store
        if self.path == "/_fake/stats" and method == "GET":
            with store.cond:
                counts = {rt.plural: len(objs) for rt, objs in store.objects.items()}
                self._send_json(200, {"resourceVersion": store.rv, "counts": counts})
            return
        if self.path in ("/_fake/pause", "/_fake/resume") and method == "POST":
            if self.path.endswith("pause"):
                self.fake.paused.set()
            else:
                self.fake.paused.clear()
            self._send_json(200, {"paused": self.fake.paused.is_set()})
            return
        if self.path == "/_fake/expire" and method == "POST":
            # Make every watcher relist: hold their events back, write one node and one pod
            # change, compact past them and drop the watches, so each resumes from a
            # resourceVersion that is gone (410 Expired).
            self.fake.paused.set()
            try:
                with store.cond:
                    node = min(store.objects[NODES], default=None)
                    pod = min(store.objects[PODS], default=None)
                for rt, key in ((NODES, node), (PODS, pod)):
                    if key is not None:
                        store.patch(rt, *key, {"metadata": {"labels": {"expired": str(store.rv)}}})
                floor = store.compact()
                self.fake.cut_watches(partial=False)
            finally:
                self.fake.paused.clear()
            self._send_json(200, {"floor": floor})
            return
        if self.path == "/_fake/churn" and method == "POST":
            body = self._body()
            count = int(body.get("count", 1000))
            started = time.perf_counter()
            done = touch_pods(store, count)
            self._send_json(200, {"events": done, "seconds": time.perf_counter() - started})
            return
        raise StatusError(404, "NotFound", f"no control endpoint {self.path}")


def touch_pods(store: ApiStore, count: int) -> int:
    """``count`` MODIFIED pod events (a label bump), round-robin over the pods: churn for the
    benchmark, written in batches so watchers stream while it runs."""
    with store.cond:
        keys = list(store.objects[PODS])
    if not keys:
        return 0
    done = 0
    while done < count:
        with store.cond:
            for _ in range(min(1000, count - done)):
                key = keys[done % len(keys)]
                current = store.objects[PODS].get(key)
                if current is not None:
                    labels = {**(current["metadata"].get("labels") or {}), "churn": str(done)}
                    obj = {**current, "metadata": {**current["metadata"], "labels": labels}}
                    store._stamp(PODS, obj)
                    store.objects[PODS][key] = obj
                    store.history.append(Change(store.rv, PODS, "MODIFIED", obj, current))
                done += 1
            store.cond.notify_all()
    return done


class FakeApiServer:
    """The server: start/stop on a fixed loopback port, plus fault controls."""

    def __init__(
        self,
        store: ApiStore | None = None,
        *,
        port: int = 0,
        token: str = "fake-token",
        bookmark_interval: float = 1.0,
        too_large_wait: float = 0.3,
        default_watch_seconds: float = 1800.0,
    ) -> None:
        self.store = store or ApiStore()
        self.port = port
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.too_large_wait = too_large_wait
        self.default_watch_seconds = default_watch_seconds
        self.refuse_requests = False
        #: Called with (method, path) before each request is handled, on its handler thread.
        self.before_request: Callable[[str, str], None] | None = None
        #: While set, open watches hold their events back (a slow watch); clear to release.
        self.paused = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[Any] = set()
        self._watches: set[_Watch] = set()
        self._stopping = False

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeApiServer:
        if self._server is not None:
            return self
        self._stopping = False
        server = _Server((LOOPBACK, self.port), _Handler)
        server.fake = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeapi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (the port stays reserved for start())."""
        server = self._server
        if server is None:
            return
        self._stopping = True
        with self.store.cond:
            self.store.cond.notify_all()
        server.shutdown()
        server.server_close()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._connections.clear()
        self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def active_watches(self, rt: ResourceType | None = None) -> int:
        return sum(1 for w in list(self._watches) if rt is None or w.rt == rt)

    def cut_watches(self, *, partial: bool = True) -> int:
        """Drop every open watch connection without the final chunk; with ``partial``, after
        half an event line, as a connection reset mid-write would."""
        watches = list(self._watches)
        for w in watches:
            w.partial = partial
            w.cut.set()
        with self.store.cond:
            self.store.cond.notify_all()
        return len(watches)

    def kubeconfig(self, context: str = "fake") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: Path, context: str = "fake") -> Path:
        path.write_text(json.dumps(self.kubeconfig(context), indent=2), encoding="utf-8")
        return path


__all__ = ["NODES", "PODS", "FakeApiServer", "touch_pods"]
