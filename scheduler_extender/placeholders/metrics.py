"""The placeholder controller's Prometheus metrics (one registry per controller)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    """Every series the controller exports, named ``scheduler_extender_placeholders_*``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        prefix = "scheduler_extender_placeholders"
        self.desired = Gauge(
            f"{prefix}_desired", "Planned placeholders per pool.", ["pool"], registry=registry
        )
        self.actual = Gauge(
            f"{prefix}_actual",
            "Placeholder pods per pool and phase (bound to a node, or pending). Backend pods; "
            "with capacityBuffer only leftovers being deleted (see buffer_replicas).",
            ["pool", "phase"],
            registry=registry,
        )
        self.rate = Gauge(
            f"{prefix}_arrival_rate_per_minute",
            "Estimated user arrivals per minute (adaptive pools).",
            ["pool"],
            registry=registry,
        )
        self.ready = Gauge(
            f"{prefix}_node_ready_seconds",
            "Learned node creation -> Ready seconds (adaptive pools).",
            ["pool"],
            registry=registry,
        )
        self.preemptions = Counter(
            f"{prefix}_preemptions",
            "Bound placeholders removed by someone else (preempted by a user, drained...).",
            ["pool", "reason"],
            registry=registry,
        )
        self.created = Counter(
            f"{prefix}_created", "Placeholder pods created.", ["pool"], registry=registry
        )
        self.deleted = Counter(
            f"{prefix}_deleted", "Placeholder pods deleted.", ["pool"], registry=registry
        )
        self.errors = Counter(
            f"{prefix}_api_errors", "Failed API calls, by operation.", ["op"], registry=registry
        )
        self.leader = Gauge(
            f"{prefix}_leader", "1 while this replica holds the Lease.", registry=registry
        )
        self.reconciles = Counter(
            f"{prefix}_reconciles", "Reconcile passes (as leader).", registry=registry
        )
        self.view_ok = Gauge(
            f"{prefix}_view_ok",
            "1 while the informer is listed and its watch works; 0 while it cannot be trusted.",
            ["informer"],
            registry=registry,
        )
        self.paused = Counter(
            f"{prefix}_paused_reconciles",
            "Reconcile passes that made no writes because the placeholder pods' view was broken.",
            registry=registry,
        )
        self.forecast_weeks = Gauge(
            f"{prefix}_forecast_history_weeks",
            "Forecast pools: weeks of arrivals the learned profile holds, averaged over the "
            "week's buckets (0: nothing learned; the pool plans as adaptive until the buckets "
            "ahead have forecastMinWeeks).",
            ["pool"],
            registry=registry,
        )
        self.buffer_replicas = Gauge(
            f"{prefix}_buffer_replicas",
            "Backend capacityBuffer: chunks the autoscaler reports provisioned for the pool's "
            "CapacityBuffer (its status.replicas; absent until it reports).",
            ["pool"],
            registry=registry,
        )
        self.buffer_ready = Gauge(
            f"{prefix}_buffer_ready",
            "Backend capacityBuffer: 1 while the pool's CapacityBuffer has condition Ready=True, "
            "0 while Ready is False or Unknown (absent until the autoscaler sets it).",
            ["pool"],
            registry=registry,
        )
