"""The placeholder controller's configuration file, validated (the chart renders it).

The shape is the contract with the Helm chart (``manifests/chart/templates/placeholders/
_config.tpl``); the fields marked *extension* are optional additions with defaults that keep the
chart's rendering valid.  Keys are camelCase like the rest of a Kubernetes manifest; unknown keys
are errors (a typo must not silently fall back to a default).  A bad value fails with the path of
the field: ``pools.0.count.mode: Input should be 'static', 'adaptive', 'schedule' or 'forecast'``.

``to_pool_spec`` turns a validated pool into the core's ``PoolSpec``; the placeholder pod itself
is built in ``placeholders.pods``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from scheduler_extender.core.placeholders import WEEKDAYS, CountMode, CountSpec, Window, make_window
from scheduler_extender.core.types import Resources
from scheduler_extender.kube.convert import ConversionError, resources_from
from scheduler_extender.validation import describe_validation_error

#: A DNS label (RFC 1123), as pool names must be: they go into labels and pod names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: Kubernetes resource names (namespaces, leases): DNS subdomains.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the field."""


def _quantities(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of resource names to quantities")
    try:
        resources_from(value, "requests")
    except ConversionError as exc:
        raise ValueError(f"{exc.path.removeprefix('requests.')}: {exc.problem}") from None
    return dict(value)


Quantities = Annotated[dict[str, Any], BeforeValidator(_quantities)]
Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class _Model(BaseModel):
    # No NaN or infinity anywhere: ``safety: .nan`` would compare false with every bound and
    # plan nonsense; ``resyncSeconds: .inf`` would never resync.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class WindowModel(_Model):
    """``count`` placeholders on ``days`` from ``start`` to ``end`` (HH:MM, local time)."""

    days: list[Day] = Field(min_length=1)
    start: str
    end: str
    count: int = Field(ge=0)

    @model_validator(mode="after")
    def _window(self) -> WindowModel:
        make_window(self.days, self.start, self.end, self.count)
        return self

    def to_window(self) -> Window:
        return make_window(self.days, self.start, self.end, self.count)


class CountModel(_Model):
    mode: Literal["static", "adaptive", "schedule", "forecast"] = "static"
    static: int = Field(0, ge=0)
    min: int = Field(0, ge=0)
    max: int = Field(20, ge=0)
    safety: float = Field(1.5, ge=0)
    windows: list[WindowModel] = Field(default_factory=list)
    # --- extensions (adaptive mode) ---
    rate_window_seconds: float = Field(900.0, gt=0, alias="rateWindowSeconds")
    burst_window_seconds: float = Field(120.0, ge=0, alias="burstWindowSeconds")
    burst_min_arrivals: int = Field(5, ge=1, alias="burstMinArrivals")
    scale_down_delay_seconds: float = Field(600.0, ge=0, alias="scaleDownDelaySeconds")
    node_ready_seconds: float = Field(300.0, ge=0, alias="nodeReadySeconds")
    #: The learned node-ready time is clamped to this range: a node whose Ready condition
    #: last changed hours after its creation (it flapped, or was repaired) says nothing about
    #: how long a new node takes, and one such sample must not plan for hours of arrivals.
    node_ready_min_seconds: float = Field(30.0, ge=0, alias="nodeReadyMinSeconds")
    node_ready_max_seconds: float = Field(1800.0, gt=0, alias="nodeReadyMaxSeconds")
    ready_samples: int = Field(10, ge=1, alias="readySamples")
    boot_seconds: float = Field(0.0, ge=0, alias="bootSeconds")
    image_pull_seconds: float = Field(0.0, ge=0, alias="imagePullSeconds")
    # --- extensions (forecast mode; placeholders.forecast keeps the learned profile) ---
    #: Weeks of history each time-of-week bucket ahead needs before the profile is trusted.
    forecast_min_weeks: int = Field(1, ge=0, le=520, alias="forecastMinWeeks")
    #: How far each observed week moves a bucket toward what it counted (core.forecast).
    forecast_alpha: float = Field(0.3, gt=0, le=1, alias="forecastAlpha")

    @model_validator(mode="after")
    def _bounds(self) -> CountModel:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        if self.node_ready_min_seconds > self.node_ready_max_seconds:
            raise ValueError(
                f"nodeReadyMinSeconds ({self.node_ready_min_seconds:g}) must be <= "
                f"nodeReadyMaxSeconds ({self.node_ready_max_seconds:g})"
            )
        if self.mode == "schedule" and not self.windows:
            raise ValueError("schedule mode needs at least one window")
        return self


def count_spec(c: CountModel) -> CountSpec:
    """The core's ``CountSpec`` for a pool's ``count:`` block (every field; the simulator's
    scenario maps its own keys onto the same spec, and tests/placeholders/test_sim_parity.py
    checks the two agree)."""
    return CountSpec(
        mode=CountMode(c.mode),
        static=c.static,
        min=c.min,
        max=c.max,
        safety=c.safety,
        windows=tuple(w.to_window() for w in c.windows),
        rate_window=c.rate_window_seconds,
        burst_window=c.burst_window_seconds,
        burst_min_arrivals=c.burst_min_arrivals,
        scale_down_delay=c.scale_down_delay_seconds,
        ready_default=c.node_ready_seconds,
        ready_samples=c.ready_samples,
        ready_min=c.node_ready_min_seconds,
        ready_max=c.node_ready_max_seconds,
        boot_seconds=c.boot_seconds,
        image_pull_seconds=c.image_pull_seconds,
        forecast_min_weeks=c.forecast_min_weeks,
    )


class PoolModel(_Model):
    name: str
    size: Literal["user", "node"] = "user"
    requests: Quantities = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] = Field(default_factory=dict)
    count: CountModel = Field(default_factory=CountModel)
    # --- extensions ---
    #: Node-sized placeholders: share of (allocatable - DaemonSet/static pods) to request.
    node_fraction: float = Field(1.0, gt=0, le=1, alias="nodeFraction")
    #: Node-sized placeholders: explicit requests (pools that scale from zero).
    node_requests: Quantities | None = Field(None, alias="nodeRequests")
    #: The users' images: when a new node of the pool gets them is the learned image pull time.
    images: list[str] = Field(default_factory=list)
    #: Labels a user pod must carry to count as an arrival of this pool (default: every user
    #: pod the controller watches).
    user_labels: dict[str, str] = Field(default_factory=dict, alias="userLabels")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError(f"{value!r} is not a DNS label (a-z, 0-9, '-', at most 63)")
        return value

    def user_requests(self) -> Resources:
        res = resources_from(self.requests, "requests")
        return Resources(res.cpu, res.memory, 1, res.scalar)

    def node_request_resources(self) -> Resources | None:
        if self.node_requests is None:
            return None
        return resources_from(self.node_requests, "nodeRequests")


class OwnerModel(_Model):
    """The object placeholder pods are owned by (garbage collection)."""

    api_version: Literal["apps/v1", "v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["Deployment", "ConfigMap"] = "Deployment"
    name: str = Field(min_length=1)

    @model_validator(mode="after")
    def _pair(self) -> OwnerModel:
        expected = {"Deployment": "apps/v1", "ConfigMap": "v1"}[self.kind]
        if self.api_version != expected:
            raise ValueError(f"a {self.kind} has apiVersion {expected}")
        return self


class UsersModel(_Model):
    """Which pods are user pods (their creations are the arrival rate)."""

    namespace: str | None = None
    label_selector: str = Field("component=singleuser-server", alias="labelSelector")


class LeaderElectionModel(_Model):
    """client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period."""

    lease_duration_seconds: float = Field(15.0, gt=0, alias="leaseDurationSeconds")
    renew_deadline_seconds: float = Field(10.0, gt=0, alias="renewDeadlineSeconds")
    retry_period_seconds: float = Field(2.0, gt=0, alias="retryPeriodSeconds")

    @model_validator(mode="after")
    def _order(self) -> LeaderElectionModel:
        # The same rules as client-go's NewLeaderElector (JitterFactor 1.2).
        if self.lease_duration_seconds <= self.renew_deadline_seconds:
            raise ValueError("leaseDurationSeconds must be greater than renewDeadlineSeconds")
        if self.renew_deadline_seconds <= 1.2 * self.retry_period_seconds:
            raise ValueError("renewDeadlineSeconds must be greater than 1.2 x retryPeriodSeconds")
        return self


class CapacityBufferModel(_Model):
    """The ``capacityBuffer`` backend (scheduler_extender/placeholders/buffers.py)."""

    #: When the API server does not serve CapacityBuffers: ``pods`` keeps placeholder pods,
    #: ``refuse`` stops the controller at startup.
    fallback: Literal["pods", "refuse"] = "pods"
    #: The buffer's ``spec.provisioningStrategy`` (the API's default: active capacity).
    provisioning_strategy: str = Field(
        "buffer.x-k8s.io/active-capacity", min_length=1, alias="provisioningStrategy"
    )


#: A taint key: a qualified name, ``[prefix/]name`` (ref: apimachinery validation
#: IsQualifiedName: the name at most 63 characters, the prefix a DNS subdomain).
_QUALIFIED_NAME = re.compile(
    r"^(?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
#: Taints other controllers own, or that must stay for good: removing one would fight the node
#: lifecycle controller or the autoscaler, or open the user nodes to every pod.
_NOT_STARTUP_TAINTS = (
    "node.kubernetes.io/",
    "node.cloudprovider.kubernetes.io/",
    "node-role.kubernetes.io/",
    "hub.jupyter.org/dedicated",
    "hub.jupyter.org_dedicated",
    "ToBeDeletedByClusterAutoscaler",
    "DeletionCandidateOfClusterAutoscaler",
)


class StartupTaintModel(_Model):
    """``startupTaint``: remove the taint ``key`` from the nodes ``nodeSelector`` selects once
    they hold every one of ``images`` or the continuous image puller's pod (``pullerSelector``,
    in the controller's namespace) is Ready on them."""

    key: str
    images: list[str] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    # --- extension ---
    #: Label selector of the continuous image puller's pods ("" : images only).
    puller_selector: str = Field("", alias="pullerSelector")
    #: Remove the taint this long after the node became Ready even without the images (a
    #: node that can never pull must not stay closed to users); None: never.
    max_wait_seconds: float | None = Field(None, gt=0, alias="maxWaitSeconds")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _QUALIFIED_NAME.match(value) or len(value.rpartition("/")[2]) > 63:
            raise ValueError(f"{value!r} is not a valid taint key ([prefix/]name)")
        if value.startswith(_NOT_STARTUP_TAINTS):
            raise ValueError(
                f"{value!r} is not a startup taint: another controller owns it or it must stay; "
                "use a key under startup-taint.cluster-autoscaler.kubernetes.io/"
            )
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, value: list[str]) -> list[str]:
        for i, image in enumerate(value):
            if not image.strip():
                raise ValueError(f"image {i} is empty")
        return value

    @model_validator(mode="after")
    def _something_to_wait_for(self) -> StartupTaintModel:
        if not self.images and not self.puller_selector:
            raise ValueError(
                "needs images or pullerSelector: with neither, nothing says when a node is "
                "ready for users"
            )
        return self


class ControllerConfig(_Model):
    namespace: str
    lease_name: str = Field(alias="leaseName")
    scheduler_name: str = Field("default-scheduler", min_length=1, alias="schedulerName")
    priority_class_name: str = Field(alias="priorityClassName")
    image: str = Field("registry.k8s.io/pause:3.10", min_length=1)
    resync_seconds: float = Field(60.0, gt=0, alias="resyncSeconds")
    pools: list[PoolModel] = Field(default_factory=list)
    # --- extensions ---
    owner: OwnerModel | None = None
    users: UsersModel = Field(default_factory=UsersModel)
    leader_election: LeaderElectionModel = Field(
        default_factory=LeaderElectionModel, alias="leaderElection"
    )
    #: Prometheus metrics on this port (0: off).
    metrics_port: int = Field(0, ge=0, le=65535, alias="metricsPort")
    #: The time zone windows are written in (an IANA name).
    timezone: str = "UTC"
    #: Learn node-sized placeholders' DaemonSet overhead by listing the pods on a few nodes
    #: (needs cluster-wide ``pods list``); off, ``overhead_guess`` is used.
    measure_node_overhead: bool = Field(True, alias="measureNodeOverhead")
    #: How pools hold spare capacity: ``pods`` (placeholder pods) or ``capacityBuffer`` (one
    #: Cluster Autoscaler CapacityBuffer per pool, sized by the same plan).
    backend: Literal["pods", "capacityBuffer"] = "pods"
    capacity_buffer: CapacityBufferModel = Field(
        default_factory=CapacityBufferModel, alias="capacityBuffer"
    )
    #: Remove the nodes' startup taint once they have the users' images (off when absent).
    startup_taint: StartupTaintModel | None = Field(None, alias="startupTaint")

    @field_validator("namespace", "lease_name", "priority_class_name")
    @classmethod
    def _dns(cls, value: str) -> str:
        if not _DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a valid Kubernetes name")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as UTC)") from None
        return value

    @model_validator(mode="after")
    def _pools(self) -> ControllerConfig:
        names = [p.name for p in self.pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique: {', '.join(dupes)}")
        return self

    @property
    def users_namespace(self) -> str:
        return self.users.namespace or self.namespace


def parse_config(data: Any, source: str = "config") -> ControllerConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return ControllerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc)}") from None


def load_config(path: Path) -> ControllerConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))


__all__ = [
    "WEEKDAYS",
    "CapacityBufferModel",
    "ConfigError",
    "ControllerConfig",
    "CountModel",
    "PoolModel",
    "StartupTaintModel",
    "load_config",
    "parse_config",
]
