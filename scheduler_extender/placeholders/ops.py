"""The placeholder controller's operations port: ``/metrics``, ``/healthz`` and ``/readyz``.

One small HTTP server (the standard library's, in a daemon thread: the controller has no event
loop) on ``metricsPort``, so the chart can point the kubelet's probes at the same port
Prometheus scrapes; what each path answers is ``scheduler_extender.ops``'s:

- ``/healthz`` (liveness): the reconcile loop and the leader election still run and the loop
  went round recently.  A wedged process is restarted; a controller that merely cannot reach
  the API server is *not* (restarting it would not help), so API health is not part of it;
- ``/readyz`` (readiness): every informer has listed once.  Nothing routes traffic to the
  controller, so readiness only paces rollouts; the body also says whether the view of the
  placeholder pods works now;
- ``/metrics``: the Prometheus registry, as ``prometheus_client.start_http_server`` served it.

The port is bound when the server is made, so a port in use fails at start-up with an
``OSError`` the command turns into one line.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry

from scheduler_extender.ops import Check, ops_reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    checks: dict[str, Check]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
        pass

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        reply = ops_reply(self.path.split("?", 1)[0], self.server.registry, self.server.checks)
        self._send(reply.status, reply.body, reply.content_type)

    do_HEAD = do_GET


class OpsServer:
    """Binds ``host:port`` at once (``OSError`` when taken); ``start()`` serves in a thread."""

    def __init__(
        self,
        port: int,
        registry: CollectorRegistry,
        *,
        healthz: Check,
        readyz: Check,
        host: str = "0.0.0.0",  # all interfaces: the kubelet probes the pod IP
    ) -> None:
        server = _Server((host, port), _Handler)
        server.registry = registry
        server.checks = {"/healthz": healthz, "/readyz": readyz}
        self._server = server
        self.port: int = server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> OpsServer:
        thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="ops-http",
            daemon=True,
        )
        thread.start()
        self._thread = thread
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
