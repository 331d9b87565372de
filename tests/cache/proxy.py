"""A TCP proxy on 127.0.0.1 that can *hang*: connections stay open but nothing gets through.

A hung API server (or a load balancer that black-holes traffic) is not a down one: connects
succeed, requests are accepted, and then nothing comes back.  Stopping the fake API server cannot
show that (connections are refused or reset at once), so the tests put this proxy in front of
it.  While frozen it keeps accepting and reading, relays nothing in either direction and closes
nothing; ``thaw()`` resumes relaying whatever is still connected.

It also records the request line of every request clients send through it, frozen or not, so a
test can count how many attempts a call made.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from types import TracebackType

REQUEST_LINE = re.compile(rb"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]\r\n")


class FreezingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self._thawed = threading.Event()
        self._thawed.set()
        self._closing = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    def requests_since(self, mark: int, path_prefix: str = "") -> list[tuple[str, str]]:
        with self._lock:
            return [r for r in self.requests[mark:] if r[1].startswith(path_prefix)]

    def close(self) -> None:
        self._closing = True
        self._thawed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> FreezingProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets |= {client, upstream}
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client:
                    with self._lock:
                        self.requests += [
                            (m.group(1).decode(), m.group(2).decode())
                            for m in REQUEST_LINE.finditer(data)
                        ]
                while not self._thawed.wait(0.05):
                    pass
                if self._closing:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets -= {source, sink}
