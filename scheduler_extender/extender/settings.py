"""The extender's settings: one object, every field documented, from CLI, env and a YAML file.

Precedence, highest first: command-line flags (``--port 9000``), environment variables
(``SCHEDULER_EXTENDER_PORT=9000``), the YAML file named by ``--config`` or
``SCHEDULER_EXTENDER_CONFIG`` (keys are the field names), then the defaults below.
``scheduler-extender serve --help`` lists every field.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from scheduler_extender.cache.options import CacheOptions
from scheduler_extender.core.policy import NodePurpose, Normalization, PolicyConfig
from scheduler_extender.kube.convert import PlaceholderRule

ENV_PREFIX = "SCHEDULER_EXTENDER_"
_config_file: ContextVar[Path | None] = ContextVar("_config_file", default=None)
_DEFAULT_POLICY = PolicyConfig()
_DEFAULT_CACHE = CacheOptions()


class Settings(BaseSettings):
    """Settings of ``scheduler-extender serve``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="scheduler-extender serve",
        validate_default=True,
        allow_inf_nan=False,
    )

    config: Path | None = Field(
        None,
        description="YAML file of settings, keys being the field names below (also "
        "SCHEDULER_EXTENDER_CONFIG). Read first: flags and environment variables override it.",
    )

    # --- service ---------------------------------------------------------------------------
    host: str = Field(
        "127.0.0.1",
        description="Address to listen on. The shipped chart runs the extender as a sidecar of "
        "kube-scheduler and keeps it on loopback.",
    )
    port: int = Field(8888, ge=1, le=65535, description="TCP port to listen on.")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Log level: debug, info, warning, error or critical."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Also serve /metrics, /healthz and /readyz (never the extender verbs) on this "
        "port, so Prometheus can scrape from the pod network while the verbs stay on `host`.",
    )
    metrics_host: str = Field(
        "0.0.0.0",
        description="Address for the metrics_port listener.",
    )
    max_body_bytes: int = Field(
        64 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted; larger ones get HTTP 400. Names mode needs "
        "little; full-node mode sends every candidate Node object (tens of KiB each).",
    )
    state_file: Path | None = Field(
        None,
        description="Serve from a cluster snapshot file (YAML or JSON: a kubectl List of Nodes "
        "and Pods, or {nodes: [...], pods: [...]}) instead of the live API. Empty: the live "
        "cluster when one is configured, else the embedded demo snapshot.",
    )

    # --- cluster connection / live state ----------------------------------------------------
    live_state: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Where cluster state comes from when no state_file is given. auto: watch the "
        "cluster when a config is found (in-cluster service account, kubeconfig, $KUBECONFIG or "
        "~/.kube/config), else serve the embedded demo; on: require a cluster; off: demo only.",
    )
    kubeconfig: Path | None = Field(
        None,
        description="Kubeconfig file to use instead of in-cluster config / $KUBECONFIG / "
        "~/.kube/config.",
    )
    kube_context: str | None = Field(
        None, description="Kubeconfig context to use (default: the file's current-context)."
    )
    bind_enabled: bool = Field(
        False,
        description="Serve the bind verb: create the pods/binding subresource and count the pod "
        "on its node at once (needs RBAC create on pods/binding; configure bindVerb in the "
        "scheduler). Off: /bind answers with an error, and the cache learns of bindings from "
        "the watch only.",
    )
    list_page_size: int = Field(
        _DEFAULT_CACHE.page_size, ge=1, description="Items per page when listing pods and nodes."
    )
    watch_timeout_seconds: int = Field(
        _DEFAULT_CACHE.watch_timeout_seconds,
        ge=1,
        description="Server-side timeout of each watch; each watch asks for a random value in "
        "[t, 2t) and is then reopened from its last resourceVersion.",
    )
    watch_idle_timeout_seconds: float = Field(
        _DEFAULT_CACHE.watch_read_timeout_seconds,
        gt=0,
        description="Reopen a watch connection that has been silent this long (the API server "
        "sends bookmarks about once a minute).",
    )
    api_request_timeout_seconds: float = Field(
        _DEFAULT_CACHE.request_timeout_seconds,
        gt=0,
        description="Timeout of one list page or pod read.",
    )
    backoff_initial_seconds: float = Field(
        _DEFAULT_CACHE.backoff_initial_seconds,
        gt=0,
        description="First retry delay after a failed list/watch; doubles per failure, jittered.",
    )
    backoff_max_seconds: float = Field(
        _DEFAULT_CACHE.backoff_max_seconds, gt=0, description="Cap of the retry delay."
    )
    staleness_seconds: float = Field(
        _DEFAULT_CACHE.staleness_seconds,
        gt=0,
        description="/readyz fails (and the verbs answer 503) once a kind has shown no sign of "
        "life (a list, an event or bookmark, a healthy watch) for this long.",
    )
    assume_ttl_seconds: float = Field(
        _DEFAULT_CACHE.assume_ttl_seconds,
        gt=0,
        description="Drop a pod assumed by bind if the watch has not confirmed it by then.",
    )
    bind_timeout_seconds: float = Field(
        _DEFAULT_CACHE.bind_timeout_seconds,
        gt=0,
        description="Timeout of one Binding POST; keep it under the scheduler's extender "
        "httpTimeout (5 s by default) so a slow API server yields an error reply, not a timeout.",
    )

    # --- policy ----------------------------------------------------------------------------
    cpu_weight: int = Field(
        _DEFAULT_POLICY.cpu_weight, ge=0, description="Weight of cpu in the packing score."
    )
    memory_weight: int = Field(
        _DEFAULT_POLICY.memory_weight, ge=0, description="Weight of memory in the packing score."
    )
    placeholders_as_load: bool = Field(
        _DEFAULT_POLICY.placeholders_as_load,
        description="Count placeholder pods as load when packing (default: they are spare "
        "capacity that users preempt, not load).",
    )
    image_weight: float = Field(
        _DEFAULT_POLICY.image_weight,
        ge=0,
        description="Score bonus for a node holding all of the pod's images (packing spans 0..1).",
    )
    deletion_candidate_penalty: float = Field(
        _DEFAULT_POLICY.deletion_candidate_penalty,
        ge=0,
        description="Score penalty for nodes tainted DeletionCandidateOfClusterAutoscaler.",
    )
    match_node_purpose: NodePurpose = Field(
        _DEFAULT_POLICY.match_node_purpose,
        description="hub.jupyter.org/node-purpose=user nodes: ignore, prefer (score bonus) or "
        "require (filter; the pods must carry the same required affinity, as z2jh sets it, or "
        "the Cluster Autoscaler will disagree).",
    )
    purpose_weight: float = Field(
        _DEFAULT_POLICY.purpose_weight,
        ge=0,
        description="Score bonus for user-purpose nodes when match_node_purpose is prefer/require.",
    )
    normalization: Normalization = Field(
        _DEFAULT_POLICY.normalization,
        description="How raw scores become 0..10: rank (exact order of the best ten) or linear.",
    )
    prefer_older_nodes: bool = Field(
        _DEFAULT_POLICY.prefer_older_nodes,
        description="Break score ties toward older nodes (a First-Fit-like stable order).",
    )
    preempt_keep: int = Field(
        _DEFAULT_POLICY.preempt_keep,
        ge=0,
        description="Preemption candidates returned to the scheduler, best first (0: all).",
    )
    # --- drain-aware scoring (core.drain, core.lifetime) -------------------------------------
    drain_weight: float = Field(
        _DEFAULT_POLICY.drain_weight,
        ge=0,
        description="Weight of the drain term (packing spans 0..1): subtract this times the "
        "expected share of a new session's life it would add to a node's busy time, estimated "
        "from the ages of the node's user sessions and the session lengths learned from the "
        "watch. 0 turns it off (plain packing). Default 0: in the simulator it does not beat "
        "plain packing by more than seed noise (benchmarks/README.md, drain-aware scoring); try "
        "0.3 on hubs with long, heavy-tailed sessions and measure with `simulate`.",
    )
    drain_cohorts: bool = Field(
        _DEFAULT_POLICY.drain_cohorts,
        description="With the drain term: also count each node's youngest session (the cost is "
        "the smaller of its oldest's and its youngest's), so sessions that started together "
        "share nodes. Turn off to judge nodes by their oldest session only.",
    )
    drain_all_sessions: bool = Field(
        _DEFAULT_POLICY.drain_all_sessions,
        description="With the drain term: estimate the cost from every user session's age (the "
        "chance that all of a node's users are gone before a new one would be) instead of the "
        "oldest (and youngest) only. Reads every pod of every candidate node per request (p50 "
        "17.7 ms instead of 1.1 ms for a prioritize over 500 nodes of 30 pods), and in the "
        "simulator it is no better than the default estimate (benchmarks/README.md, "
        "drain-aware scoring): a reference, not a recommendation.",
    )
    session_median_seconds: float = Field(
        _DEFAULT_POLICY.session_median_seconds,
        ge=0,
        description="Prior for the drain term until lifetimes are observed: the median time a "
        "user is active before going idle (seconds; lognormal). Set it to your hub's median "
        "session length minus the culler timeout if you know it.",
    )
    session_sigma: float = Field(
        _DEFAULT_POLICY.session_sigma,
        ge=0,
        description="Prior: the lognormal sigma of active time (1.0: heavy-tailed, a few "
        "sessions last ten times the median). Lower it for classes of fixed length.",
    )
    lifetime_prior_weight: float = Field(
        _DEFAULT_POLICY.lifetime_prior_weight,
        ge=0,
        description="How many observed session lifetimes the prior counts as; observed ones "
        "take over after a few times this many. Raise it if few sessions end per day.",
    )
    culler_timeout_seconds: float = Field(
        _DEFAULT_POLICY.culler_timeout_seconds,
        ge=0,
        description="The hub's idle-culler timeout (z2jh cull.timeout, default 3600): a session "
        "lives at least this long after its user's last activity. Set it to your cull.timeout.",
    )
    culler_every_seconds: float = Field(
        _DEFAULT_POLICY.culler_every_seconds,
        ge=0,
        description="How often the culler runs (z2jh cull.every, default 600). Set it to your "
        "cull.every.",
    )
    culler_max_age_seconds: float = Field(
        _DEFAULT_POLICY.culler_max_age_seconds,
        ge=0,
        description="The culler's maximum server age (z2jh cull.maxAge; 0: none). Set it to "
        "your cull.maxAge.",
    )
    lifetime_refresh_seconds: float = Field(
        300.0,
        gt=0,
        description="Refit the learned session-length estimate at most this often (seconds). "
        "Each refit takes about 20 ms on the cache's thread, never in a request.",
    )
    placeholder_labels: dict[str, str] = Field(
        default_factory=lambda: {"component": "user-placeholder"},
        description="A pod carrying any of these labels is a placeholder.",
    )
    placeholder_max_priority: int | None = Field(
        -10,
        description="A pod with priority at or below this is a placeholder (null: labels only).",
    )

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError(
                f"metrics_port ({self.metrics_port}) must differ from port: the verbs and the "
                "metrics listener cannot share a port"
            )
        return self

    def policy(self) -> PolicyConfig:
        """The core policy these settings describe."""
        return PolicyConfig(
            cpu_weight=self.cpu_weight,
            memory_weight=self.memory_weight,
            placeholders_as_load=self.placeholders_as_load,
            image_weight=self.image_weight,
            deletion_candidate_penalty=self.deletion_candidate_penalty,
            match_node_purpose=self.match_node_purpose,
            purpose_weight=self.purpose_weight,
            normalization=self.normalization,
            prefer_older_nodes=self.prefer_older_nodes,
            preempt_keep=self.preempt_keep,
            drain_weight=self.drain_weight,
            drain_cohorts=self.drain_cohorts,
            drain_all_sessions=self.drain_all_sessions,
            session_median_seconds=self.session_median_seconds,
            session_sigma=self.session_sigma,
            lifetime_prior_weight=self.lifetime_prior_weight,
            culler_timeout_seconds=self.culler_timeout_seconds,
            culler_every_seconds=self.culler_every_seconds,
            culler_max_age_seconds=self.culler_max_age_seconds,
        )

    def cache_options(self) -> CacheOptions:
        """Timing of the live cache these settings describe."""
        return CacheOptions(
            page_size=self.list_page_size,
            watch_timeout_seconds=self.watch_timeout_seconds,
            watch_read_timeout_seconds=self.watch_idle_timeout_seconds,
            request_timeout_seconds=self.api_request_timeout_seconds,
            backoff_initial_seconds=self.backoff_initial_seconds,
            backoff_max_seconds=self.backoff_max_seconds,
            staleness_seconds=self.staleness_seconds,
            assume_ttl_seconds=self.assume_ttl_seconds,
            bind_timeout_seconds=self.bind_timeout_seconds,
            freeze_gc_after_sync=True,
        )

    def placeholder_rule(self) -> PlaceholderRule:
        return PlaceholderRule(dict(self.placeholder_labels), self.placeholder_max_priority)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


#: Variables the kubelet injects for Services in the namespace (``<NAME>_SERVICE_HOST``,
#: ``<NAME>_PORT_8888_TCP_ADDR``...): a Service whose name starts with "scheduler-extender" yields
#: some with our prefix.  They are not settings; the chart also sets ``enableServiceLinks: false``.
_SERVICE_LINK = re.compile(
    r"_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_\w+)?)?)$"
)


class UnknownSettingError(ValueError):
    """An environment variable with our prefix names no setting (most likely a typo)."""


def unknown_environment(cls: type[Settings] = Settings) -> list[str]:
    """``SCHEDULER_EXTENDER_*`` environment variables that name no setting.

    pydantic-settings silently ignores them, so a misspelt ``..._CPU_WEIGTH`` in a Deployment
    would quietly leave the default in force; ``load_settings`` refuses to start instead.
    """
    known = {ENV_PREFIX + name.upper() for name in cls.model_fields}
    return sorted(
        k
        for k in os.environ
        if k.upper().startswith(ENV_PREFIX)
        and k.upper() not in known
        and not _SERVICE_LINK.search(k.upper())
    )


def load_settings(argv: Sequence[str] = (), cls: type[Settings] = Settings) -> Settings:
    """Settings from ``argv`` (flags), the environment and an optional YAML file."""
    unknown = unknown_environment(cls)
    if unknown:
        hints = []
        for name in unknown:
            field = name[len(ENV_PREFIX) :].lower()
            close = difflib.get_close_matches(field, list(cls.model_fields), n=1)
            hint = f" (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else ""
            hints.append(f"{name}{hint}")
        raise UnknownSettingError("unknown settings in the environment: " + ", ".join(hints))
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, rest = pre.parse_known_args(list(argv))
    path = known.config or (
        Path(os.environ[ENV_PREFIX + "CONFIG"]) if os.environ.get(ENV_PREFIX + "CONFIG") else None
    )
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    token = _config_file.set(path)
    try:
        return cls(_cli_parse_args=rest)
    finally:
        _config_file.reset(token)
