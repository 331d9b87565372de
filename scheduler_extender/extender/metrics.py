"""Prometheus metrics of the extender service, in a registry owned by each app instance.

No module-level collectors: tests and benchmarks build many apps in one process, and each must
count only its own requests.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Latency buckets in seconds: the interesting range is 0.5 ms .. the scheduler's 5 s timeout.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)  # fmt: skip


class ExtenderMetrics:
    """The service's instruments."""

    def __init__(self, registry: CollectorRegistry, nodes_known: Callable[[], float]) -> None:
        self.registry = registry
        self.latency = Histogram(
            "scheduler_extender_request_duration_seconds",
            "Time to answer one extender call, by verb.",
            ["verb"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "scheduler_extender_requests",
            "Extender calls by verb and outcome (ok, bad_request, not_ready, error).",
            ["verb", "outcome"],
            registry=registry,
        )
        self.unknown_nodes = Counter(
            "scheduler_extender_unknown_nodes",
            "Candidate nodes the cluster state did not know (passed by filter, neutral score).",
            ["verb"],
            registry=registry,
        )
        self.filtered_out = Counter(
            "scheduler_extender_filtered_nodes",
            "Nodes rejected by filter, by whether preemption could help.",
            ["resolvable"],
            registry=registry,
        )
        self.preempt_dropped = Counter(
            "scheduler_extender_preempt_candidates_dropped",
            "Preemption candidates the extender dropped in favour of better ones.",
            registry=registry,
        )
        self.binds = Counter(
            "scheduler_extender_binds",
            "Bind calls by result (bound, failed, disabled).",
            ["result"],
            registry=registry,
        )
        known = Gauge(
            "scheduler_extender_nodes_known",
            "Nodes in the extender's current cluster snapshot.",
            registry=registry,
        )
        known.set_function(nodes_known)
