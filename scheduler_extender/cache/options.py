"""Timing of the live cache, as a plain value (importing it loads no Kubernetes client).

``Settings.cache_options()`` builds it from the service settings; tests build it directly with
short timeouts.  Defaults follow client-go where it has one (ref:
staging/src/k8s.io/client-go/tools/cache/reflector.go: backoff 800 ms doubling to 30 s, watch
timeouts random in [5 min, 10 min)).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CacheOptions:
    #: Items per list page (``limit``); client-go's pager uses 500.
    page_size: int = 500
    #: Server-side watch timeout; each watch asks for a random value in [t, 2t).
    watch_timeout_seconds: int = 300
    #: A watch connection silent this long is dropped and re-opened (bookmarks arrive about
    #: once a minute on a real API server, so this must be longer).
    watch_read_timeout_seconds: float = 90.0
    #: Timeout of one list page or pod read.
    request_timeout_seconds: float = 30.0
    backoff_initial_seconds: float = 0.8
    backoff_max_seconds: float = 30.0
    #: ``/readyz`` fails once a kind's watch has been broken this long.
    staleness_seconds: float = 60.0
    #: An assumed pod the watch has not confirmed by then is dropped.
    assume_ttl_seconds: float = 30.0
    #: Timeout of one Binding POST (kube-scheduler's extender call times out after 5 s by default).
    bind_timeout_seconds: float = 4.0
    #: Manage the cyclic garbage collector for a process that serves from this cache: no
    #: automatic collections until the first sync is applied, then ``gc.freeze()`` the cache
    #: (and again after each relist), so full collections never walk it.  Global to the
    #: process, hence off by default and on in ``serve``.
    freeze_gc_after_sync: bool = False
    #: The longest the collector stays off waiting for that first sync.  The full upstream
    #: envelope (5,000 nodes, 150,000 pods) syncs in about 20 s here; a sync that never comes
    #: (an RBAC 403 on the list, an API server away) must not leave the process without a
    #: cyclic collector for good.
    gc_pause_max_seconds: float = 120.0
