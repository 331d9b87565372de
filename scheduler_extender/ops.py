"""The operations endpoints every long-running command exposes: ``/metrics``, ``/healthz`` and
``/readyz``, with one meaning everywhere.

Two transports serve them, on purpose: the extender answers on its asyncio event loop (FastAPI,
``extender.app``), so a liveness probe that gets through proves the loop that answers
kube-scheduler is not frozen; the placeholder controller has no event loop (threads and blocking
API calls), so it serves them from a small threaded ``http.server`` (``placeholders.ops``).  What
each path answers is decided here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

#: A health check: (ok, one line of text for the body).
Check = Callable[[], tuple[bool, str]]
PATHS = ("/metrics", "/healthz", "/readyz")


@dataclass(frozen=True, slots=True)
class OpsReply:
    status: int
    body: bytes
    content_type: str


def ops_reply(path: str, registry: CollectorRegistry, checks: Mapping[str, Check]) -> OpsReply:
    """The answer to ``GET path``: the registry's exposition for ``/metrics``; for a check, 200
    or 503 with its text (a check that raises is a failed check, not a dead server); else
    404."""
    if path == "/metrics":
        return OpsReply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
    check = checks.get(path)
    if check is None:
        return OpsReply(404, b"not found: /metrics, /healthz or /readyz\n", "text/plain")
    try:
        ok, text = check()
    except Exception as exc:
        log.exception("%s check failed", path)
        ok, text = False, f"check failed: {type(exc).__name__}: {exc}"
    return OpsReply(200 if ok else 503, (text.rstrip("\n") + "\n").encode(), "text/plain")
