"""Scenario files: what a simulated hub looks like, as validated data.

A scenario names one user node pool, the users (generated arrivals, bursts, or a trace file), the
culler, the images, placeholders, and the Cluster Autoscaler and kube-scheduler timing.  Every
field has a default taken from DESIGN.md's simulator model (sources in benchmarks/README.md), so a
scenario file only says what differs.  Files are YAML; a bad field is reported by its path
(``users.profiles.0.memory: invalid quantity 'lots'``), never as a traceback.

Durations accept seconds (``600``) or a number with a unit (``10m``, ``2h``, ``7d``); resources
are Kubernetes quantities (``450M``, ``7910m``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

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

from scheduler_extender.core.placeholders import make_window
from scheduler_extender.core.startup_taint import (
    CA_MAX_NODE_STARTUP_SECONDS,
    DEFAULT_STARTUP_TAINT_KEY,
    is_startup_taint,
)
from scheduler_extender.kube.convert import ConversionError, base_units, millicores
from scheduler_extender.validation import describe_validation_error, parse_duration

SCENARIO_PACKAGE = "scheduler_extender.data.scenarios"


class ScenarioError(ValueError):
    """A scenario file or override that cannot be used; the message names the field."""


def _cpu(value: object) -> int:
    try:
        return millicores(value, "cpu")
    except ConversionError as exc:
        raise ValueError(exc.problem) from None


def _bytes(value: object) -> int:
    try:
        return base_units(value, "memory")
    except ConversionError as exc:
        raise ValueError(exc.problem) from None


Duration = Annotated[float, BeforeValidator(parse_duration)]
Millicores = Annotated[int, BeforeValidator(_cpu)]
Bytes = Annotated[int, BeforeValidator(_bytes)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """A uniform distribution ``[min, max]`` (seconds)."""

    min: Duration
    max: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.max < self.min:
            raise ValueError("max must be >= min")
        return self


class Pool(_Model):
    """The user node pool (one node type).  Allocatable is what kubelet reports, not capacity."""

    instance_type: str = "n1-highmem-8"
    cpu: Millicores = 7910
    memory: Bytes = 47 * 1024**3
    pods: int = Field(110, gt=0)
    min_nodes: int = Field(0, ge=0)
    max_nodes: int = Field(1000, gt=0)
    initial_nodes: int = Field(1, ge=0)
    #: Nodes are labelled hub.jupyter.org/node-purpose=user and tainted
    #: hub.jupyter.org/dedicated=user:NoSchedule, as z2jh's user pool recommends.
    dedicated: bool = True

    @model_validator(mode="after")
    def _sizes(self) -> Pool:
        if self.min_nodes > self.max_nodes:
            raise ValueError("min_nodes must be <= max_nodes")
        if not self.min_nodes <= self.initial_nodes <= self.max_nodes:
            raise ValueError("initial_nodes must be within min_nodes..max_nodes")
        return self


class Activity(_Model):
    """How long a user stays active after their server starts (lognormal, capped).

    ``distribution: exponential`` draws a memoryless time with the same ``median`` instead
    (``sigma`` unused): how long a session has lasted then says nothing about how long it will
    last, the case where age-based scoring cannot help (benchmarks/drain.py's sensitivity table).
    """

    median: Duration = 600.0
    sigma: float = Field(1.0, ge=0)
    max: Duration = 8 * 3600.0
    distribution: Literal["lognormal", "exponential"] = "lognormal"


class Profile(_Model):
    """One kind of user server (a KubeSpawner profile)."""

    name: str = "default"
    weight: float = Field(1.0, gt=0)
    cpu: Millicores = 0
    memory: Bytes = 512 * 1024**2
    image: str = "docker.io/jupyter/scipy-notebook:latest"
    activity: Activity = Activity()


class Burst(_Model):
    """``count`` users arriving uniformly within ``over`` seconds after ``at``."""

    at: Duration
    count: int = Field(gt=0)
    over: Duration = 60.0
    profile: str | None = None


class Arrivals(_Model):
    """A non-homogeneous Poisson process shaped by ``hourly`` (24 values) and ``weekly`` (7
    values, Monday first) multipliers.  Give its level as ``rate_per_minute`` (the mean over a
    whole week) or ``peak_per_minute`` (the rate at the busiest hour of the busiest day)."""

    rate_per_minute: float = Field(0.0, ge=0)
    peak_per_minute: float = Field(0.0, ge=0)
    hourly: tuple[float, ...] = (1.0,) * 24
    weekly: tuple[float, ...] = (1.0,) * 7

    @model_validator(mode="after")
    def _shapes(self) -> Arrivals:
        if len(self.hourly) != 24 or any(v < 0 for v in self.hourly):
            raise ValueError("hourly needs 24 non-negative values")
        if len(self.weekly) != 7 or any(v < 0 for v in self.weekly):
            raise ValueError("weekly needs 7 non-negative values")
        if self.rate_per_minute and self.peak_per_minute:
            raise ValueError("give rate_per_minute or peak_per_minute, not both")
        if (self.rate_per_minute or self.peak_per_minute) and (
            sum(self.hourly) == 0 or sum(self.weekly) == 0
        ):
            raise ValueError("hourly and weekly cannot be all zero when arrivals are on")
        return self


class Users(_Model):
    arrivals: Arrivals = Arrivals()
    bursts: tuple[Burst, ...] = ()
    profiles: tuple[Profile, ...] = (Profile(),)
    #: A CSV trace (see workload.read_trace) replaces generated arrivals and bursts.  A relative
    #: path is resolved against the scenario file's directory.
    trace: str | None = None

    @model_validator(mode="after")
    def _profiles(self) -> Users:
        if not self.profiles:
            raise ValueError("at least one profile is needed")
        names = [p.name for p in self.profiles]
        if len(set(names)) != len(names):
            raise ValueError("profile names must be unique")
        for i, burst in enumerate(self.bursts):
            if burst.profile is not None and burst.profile not in names:
                raise ValueError(f"bursts.{i}.profile: unknown profile {burst.profile!r}")
        return self


class Culler(_Model):
    """jupyterhub-idle-culler as z2jh runs it (``cull.timeout``, ``cull.every``,
    ``cull.maxAge``; 0 disables the age limit)."""

    timeout: Duration = 3600.0
    every: Duration = 600.0
    max_age: Duration = 0.0

    @model_validator(mode="after")
    def _positive(self) -> Culler:
        if self.every <= 0:
            raise ValueError("every must be > 0")
        return self


class Image(_Model):
    name: str
    #: Size matters to kube-scheduler's ImageLocality score only.
    size: Bytes = 3 * 1024**3
    pull: Range = Range(min=300.0, max=600.0)


class Images(_Model):
    #: Images not listed here pull in ``default_pull`` and count as 3 GiB.
    known: tuple[Image, ...] = ()
    default_pull: Range = Range(min=300.0, max=600.0)
    #: The continuous image puller (a DaemonSet) pulls every listed image on a node as soon as
    #: it is ready; off, the first user pod on a node pulls its image.
    continuous_puller: bool = True


class Spawner(_Model):
    #: KubeSpawner's ``start_timeout``: a user not running by then has a failed spawn.
    start_timeout: Duration = 300.0
    #: Container start after the image is present (process start, readiness).
    start_latency: Duration = 0.0


class PlaceholderWindow(_Model):
    """A calendar window of the placeholder pool (``days: [Mon]``, ``start: "17:00"``)."""

    days: tuple[str, ...]
    start: str
    end: str
    count: int = Field(ge=0)

    @model_validator(mode="after")
    def _valid(self) -> PlaceholderWindow:
        make_window(self.days, self.start, self.end, self.count)  # raises ValueError naming it
        return self


class Placeholders(_Model):
    """The user placeholder pool, planned by the controller's planner
    (``core.placeholders``; docs/placeholders.md).  ``mode: static`` with ``count`` is z2jh's
    ``scheduling.userPlaceholder.replicas``; ``none`` keeps no placeholders."""

    mode: Literal["none", "static", "adaptive", "schedule", "forecast"] = "static"
    count: int = Field(0, ge=0)
    size: Literal["user", "node"] = "user"
    min: int = Field(0, ge=0)
    max: int = Field(20, ge=0)
    safety: float = Field(1.5, ge=0)
    windows: tuple[PlaceholderWindow, ...] = ()
    rate_window: Duration = 900.0
    burst_window: Duration = 120.0
    burst_min_arrivals: int = Field(5, ge=1)
    scale_down_delay: Duration = 600.0
    ready_default: Duration = 300.0
    boot_seconds: Duration = 0.0
    image_pull_seconds: Duration = 0.0
    #: Learn the image pull time from when nodes get the users' images (the controller does when
    #: the pool lists ``images``); off, ``image_pull_seconds`` is used.
    learn_pulls: bool = False
    node_fraction: float = Field(1.0, gt=0, le=1)
    priority: int = -10
    #: Delay from a placeholder's eviction until the controller's replacement exists (the
    #: watch event, then a create call).
    recreate_delay: Duration = 1.0
    #: Seconds between two plans (the controller plans on every watch event, debounced; this
    #: models a slower reaction, never a faster one).
    plan_interval: Duration = Field(10.0, gt=0)
    #: ``forecast``: the hub has run this many weeks before the simulated span (the same
    #: scenario on other seeds; a trace repeats itself) and learned its arrivals by time of
    #: week from them, in ``forecast_bucket`` buckets with weight ``forecast_alpha``
    #: (``core.forecast``).  0: no history, so forecast degrades to adaptive.
    forecast_history_weeks: int = Field(3, ge=0, le=52)
    forecast_alpha: float = Field(0.3, gt=0, le=1)
    forecast_bucket: Duration = 300.0
    forecast_min_weeks: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> Placeholders:
        if self.min > self.max:
            raise ValueError("min must be <= max")
        bucket = self.forecast_bucket
        if bucket < 60 or bucket != int(bucket) or 604800 % int(bucket):
            raise ValueError("forecast_bucket must be whole seconds, >= 60, dividing a week")
        return self


class Autoscaler(_Model):
    """Cluster Autoscaler flags (names as in its command line).  ``mode: ideal`` replaces the
    model with one that adds a ready node the moment a pod fits nowhere and removes a node the
    moment it holds no user pod."""

    mode: Literal["realistic", "ideal"] = "realistic"
    scan_interval: Duration = 10.0
    provisioning: Range = Range(min=120.0, max=300.0)
    scale_down_utilization_threshold: float = Field(0.5, ge=0, le=1)
    scale_down_unneeded_time: Duration = 600.0
    scale_down_delay_after_add: Duration = 600.0
    max_empty_bulk_delete: int = Field(10, gt=0)
    max_drain_parallelism: int = Field(1, gt=0)
    max_bulk_soft_taint_count: int = Field(10, ge=0)
    expendable_pods_priority_cutoff: int = -10
    #: Time from the delete decision until the node stops being billed.
    node_deletion: Duration = 0.0


class Scheduler(_Model):
    """Timing of the simulated kube-scheduler and of the watch that feeds the extender."""

    #: Seconds per scheduling cycle, per policy kind (None: the policy's own default).
    cycle_seconds: float | None = Field(None, gt=0)
    #: Delay from a bind (or any change) to the extender's watch seeing it.
    watch_delay: Duration = 1.0
    #: Delay from preemption to the preemptor's retry (victims' deletion with grace period 0).
    preemption_retry: Duration = 1.0
    #: kube-scheduler's pod backoff (podInitialBackoffSeconds, podMaxBackoffSeconds).
    initial_backoff: Duration = 1.0
    max_backoff: Duration = 10.0


class StartupTaint(_Model):
    """User nodes the autoscaler adds register with a NoSchedule startup taint
    (``core.startup_taint``); placeholders and the image puller tolerate it, users do not.  The
    controller removes it ``removal_delay`` seconds (its watch event and patch) after the node
    holds every user image.  The Cluster Autoscaler model treats a tainted node as upcoming
    capacity while it is younger than ``max_node_startup_time`` (its MaxNodeStartupTime)."""

    enabled: bool = False
    key: str = DEFAULT_STARTUP_TAINT_KEY
    removal_delay: Duration = 2.0
    max_node_startup_time: Duration = CA_MAX_NODE_STARTUP_SECONDS

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not is_startup_taint(key):
            raise ValueError(
                "must start with startup-taint.cluster-autoscaler.kubernetes.io/ (or the "
                "ignore-taint. prefix), or the autoscaler would treat the node as unusable"
            )
        return key


class Scenario(_Model):
    name: str
    description: str = ""
    # A year at most: longer runs are not what a capacity question needs, and would run for hours.
    duration: Duration = Field(86400.0, gt=0, le=366 * 86400)
    #: Users arrive during ``duration`` only; with ``drain_tail`` the run goes on until the last
    #: user's server is gone and node-hours are counted to then (the drain tail), so a policy
    #: cannot hide the nodes it leaves half-used at the end.  Off, the run stops at ``duration``.
    drain_tail: bool = True
    pool: Pool = Pool()
    users: Users = Users()
    culler: Culler = Culler()
    images: Images = Images()
    spawner: Spawner = Spawner()
    placeholders: Placeholders = Placeholders()
    autoscaler: Autoscaler = Autoscaler()
    scheduler: Scheduler = Scheduler()
    startup_taint: StartupTaint = StartupTaint()
    #: Directory the scenario was loaded from (for relative trace paths); not part of files.
    base_dir: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _taint_needs_puller(self) -> Scenario:
        if self.startup_taint.enabled and not self.images.continuous_puller:
            raise ValueError(
                "startup_taint.enabled needs images.continuous_puller: without a puller no user "
                "pod could pull the image on a tainted node and the taint would never come off"
            )
        return self

    def image(self, name: str) -> Image:
        for image in self.images.known:
            if image.name == name:
                return image
        return Image(name=name, pull=self.images.default_pull)


def scenario_from_data(data: Any, source: str, base_dir: str | None = None) -> Scenario:
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: expected a mapping at the top level")
    try:
        return Scenario.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {describe_validation_error(exc)}") from None


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped in the package."""
    root = resources.files(SCENARIO_PACKAGE)
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {path}")
        text = path.read_text(encoding="utf-8")
        source, base = str(path), str(path.resolve().parent)
    else:
        names = builtin_scenarios()
        if name_or_path not in names:
            raise ScenarioError(
                f"unknown scenario {name_or_path!r}; built in: {', '.join(names)} "
                "(or give a path to a YAML file)"
            )
        root = resources.files(SCENARIO_PACKAGE)
        text = root.joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
        # Shipped traces sit beside their scenario file (a regular directory once installed).
        source, base = f"scenario {name_or_path}", str(root)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    return scenario_from_data(data, source, base)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


def with_overrides(scenario: Scenario, overrides: Sequence[str]) -> Scenario:
    """Apply ``dotted.path=value`` overrides (values parsed as YAML), e.g.
    ``autoscaler.mode=ideal`` or ``placeholders.count=20``."""
    data = _listify(scenario.model_dump(mode="python", exclude={"base_dir"}))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ScenarioError(f"--set {item!r}: expected dotted.path=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node: Any = data
        parts = key.split(".")
        for part in parts[:-1]:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ScenarioError(f"--set {key}: no field {part!r}")
        last = parts[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict) and last in node:
            node[last] = value
        else:
            raise ScenarioError(f"--set {key}: no field {last!r}")
    return scenario_from_data(data, f"scenario {scenario.name} with overrides", scenario.base_dir)
