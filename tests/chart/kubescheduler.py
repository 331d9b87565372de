"""A check of KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) without kube-scheduler.

Two layers, both written from the upstream sources:

- Shape: pydantic models mirroring ``staging/src/k8s.io/kube-scheduler/config/v1/types.go``
  field by field, with unknown fields forbidden (kube-scheduler decodes its config strictly, so
  a misspelled key is a startup error, not a no-op).
- Rules: ``pkg/scheduler/apis/config/validation/validation.go``
  (``ValidateKubeSchedulerConfiguration``, ``validateExtenders``) and
  ``validation_pluginargs.go`` (``ValidateNodeResourcesFitArgs``),
  plus this project's own rule (docs/install.md): a filter verb needs ``nodeCacheCapable``.

``problems(config)`` returns a list of messages; empty means valid.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LeaderElection(_Strict):
    leaderElect: bool | None = None
    leaseDuration: str | None = None
    renewDeadline: str | None = None
    retryPeriod: str | None = None
    resourceLock: str | None = None
    resourceName: str | None = None
    resourceNamespace: str | None = None


class ClientConnection(_Strict):
    kubeconfig: str | None = None
    acceptContentTypes: str | None = None
    contentType: str | None = None
    qps: float | None = None
    burst: int | None = None


class Plugin(_Strict):
    name: str
    weight: int | None = None


class PluginSet(_Strict):
    enabled: list[Plugin] | None = None
    disabled: list[Plugin] | None = None


class Plugins(_Strict):
    preEnqueue: PluginSet | None = None
    queueSort: PluginSet | None = None
    preFilter: PluginSet | None = None
    filter: PluginSet | None = None
    postFilter: PluginSet | None = None
    preScore: PluginSet | None = None
    score: PluginSet | None = None
    reserve: PluginSet | None = None
    permit: PluginSet | None = None
    preBind: PluginSet | None = None
    bind: PluginSet | None = None
    postBind: PluginSet | None = None
    multiPoint: PluginSet | None = None
    placementGenerate: PluginSet | None = None
    placementScore: PluginSet | None = None
    placementFeasible: PluginSet | None = None
    podGroupPostFilter: PluginSet | None = None


class PluginConfig(_Strict):
    name: str
    args: dict[str, Any] | None = None


class Profile(_Strict):
    schedulerName: str | None = None
    percentageOfNodesToScore: int | None = None
    percentageOfPlacementsToScore: int | None = None
    plugins: Plugins | None = None
    pluginConfig: list[PluginConfig] | None = None


class ManagedResource(_Strict):
    name: str
    ignoredByScheduler: bool | None = None


class ExtenderTLS(_Strict):
    insecure: bool | None = None
    serverName: str | None = None
    certFile: str | None = None
    keyFile: str | None = None
    caFile: str | None = None
    certData: str | None = None
    keyData: str | None = None
    caData: str | None = None


class Extender(_Strict):
    urlPrefix: str
    filterVerb: str | None = None
    preemptVerb: str | None = None
    prioritizeVerb: str | None = None
    weight: int | None = None
    bindVerb: str | None = None
    enableHTTPS: bool | None = None
    tlsConfig: ExtenderTLS | None = None
    httpTimeout: str | None = None
    nodeCacheCapable: bool | None = None
    managedResources: list[ManagedResource] | None = None
    ignorable: bool | None = None


class KubeSchedulerConfiguration(_Strict):
    apiVersion: str = Field(pattern=r"^kubescheduler\.config\.k8s\.io/v1$")
    kind: str = Field(pattern=r"^KubeSchedulerConfiguration$")
    parallelism: int | None = None
    leaderElection: LeaderElection | None = None
    clientConnection: ClientConnection | None = None
    enableProfiling: bool | None = None
    enableContentionProfiling: bool | None = None
    percentageOfNodesToScore: int | None = None
    percentageOfPlacementsToScore: int | None = None
    podInitialBackoffSeconds: int | None = None
    podMaxBackoffSeconds: int | None = None
    profiles: list[Profile] | None = None
    extenders: list[Extender] | None = None
    delayCacheUntilActive: bool | None = None


#: Plugins removed from the v1 API (validation.go ``invalidPluginsByVersion``).
INVALID_PLUGINS = {"AzureDiskLimits", "CinderLimits", "EBSLimits", "GCEPDLimits"}
SCORING_STRATEGIES = {"LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"}
#: A Go ``time.ParseDuration`` string.
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
#: ``validation.IsQualifiedName`` (an optional DNS-subdomain prefix, then a name).
QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def _check_percentage(path: str, value: int | None, out: list[str]) -> None:
    if value is not None and not 0 <= value <= 100:
        out.append(f"{path}: {value} not in valid range [0-100]")


def _check_fit_args(path: str, args: dict[str, Any], out: list[str]) -> None:
    strategy = args.get("scoringStrategy")
    if strategy is None:
        return
    kind = strategy.get("type")
    if kind not in SCORING_STRATEGIES:
        out.append(f"{path}.scoringStrategy.type: unsupported value {kind!r}")
    seen: set[str] = set()
    for i, res in enumerate(strategy.get("resources") or []):
        name, weight = res.get("name"), res.get("weight")
        if name in seen:
            out.append(f"{path}.scoringStrategy.resources[{i}].name: duplicate {name!r}")
        seen.add(name)
        if kind != "RequestedToCapacityRatio" and not (
            isinstance(weight, int) and 1 <= weight <= 100
        ):
            out.append(
                f"{path}.scoringStrategy.resources[{i}].weight: {weight} not in valid range "
                "[1, 100]"
            )


def _check_profile(i: int, profile: Profile, out: list[str]) -> None:
    path = f"profiles[{i}]"
    if not profile.schedulerName:
        out.append(f"{path}.schedulerName: Required value")
    _check_percentage(f"{path}.percentageOfNodesToScore", profile.percentageOfNodesToScore, out)
    if profile.plugins is not None:
        for stage, plugin_set in profile.plugins:
            for j, plugin in enumerate((plugin_set.enabled or []) if plugin_set else []):
                if plugin.name in INVALID_PLUGINS:
                    out.append(f"{path}.plugins.{stage}.enabled[{j}]: {plugin.name} was removed")
    seen: set[str] = set()
    for j, pc in enumerate(profile.pluginConfig or []):
        where = f"{path}.pluginConfig[{j}]"
        if pc.name in seen:
            out.append(f"{where}: Duplicate value {pc.name!r}")
        seen.add(pc.name)
        if pc.name in INVALID_PLUGINS:
            out.append(f"{where}: {pc.name} was removed")
        if pc.name == "NodeResourcesFit" and pc.args is not None:
            _check_fit_args(f"{where}.args", pc.args, out)


def _check_extenders(extenders: list[Extender], out: list[str]) -> None:
    binders = 0
    managed: set[str] = set()
    for i, ext in enumerate(extenders):
        path = f"extenders[{i}]"
        if ext.prioritizeVerb and (ext.weight or 0) <= 0:
            out.append(f"{path}.weight: must have a positive weight applied to it")
        if ext.bindVerb:
            binders += 1
        for j, res in enumerate(ext.managedResources or []):
            if not QUALIFIED_NAME.match(res.name) or "/" not in res.name:
                out.append(f"{path}.managedResources[{j}].name: invalid extended resource name")
            if res.name in managed:
                out.append(f"{path}.managedResources[{j}].name: duplicate {res.name!r}")
            managed.add(res.name)
        # Beyond upstream validation: what kube-scheduler would fail on at runtime, and the
        # trap in docs/install.md (filter without nodeCacheCapable rebuilds nodes without pods).
        if ext.httpTimeout is not None and not GO_DURATION.match(ext.httpTimeout):
            out.append(f"{path}.httpTimeout: {ext.httpTimeout!r} is not a Go duration")
        scheme = "https://" if ext.enableHTTPS else "http://"
        if not ext.urlPrefix.startswith(scheme):
            out.append(f"{path}.urlPrefix: {ext.urlPrefix!r} does not start with {scheme}")
        if ext.filterVerb and not ext.nodeCacheCapable:
            out.append(f"{path}: filterVerb without nodeCacheCapable strips pods from nodes")
    if binders > 1:
        out.append(f"extenders: found {binders} extenders implementing bind, only one can")


def problems(config: dict[str, Any]) -> list[str]:
    """Every reason kube-scheduler would reject ``config`` (plus the project's own rules)."""
    try:
        cfg = KubeSchedulerConfiguration.model_validate(config)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
    out: list[str] = []
    le = cfg.leaderElection
    if le is not None and le.leaderElect:
        if le.resourceLock != "leases":
            out.append('leaderElection.resourceLock: resourceLock value must be "leases"')
        if not le.resourceName:
            out.append("leaderElection.resourceName: Required value")
        if not le.resourceNamespace:
            out.append("leaderElection.resourceNamespace: Required value")
    if cfg.parallelism is not None and cfg.parallelism <= 0:
        out.append("parallelism: should be an integer value greater than zero")
    if not cfg.profiles:
        out.append("profiles: Required value")
    names: set[str | None] = set()
    for i, profile in enumerate(cfg.profiles or []):
        _check_profile(i, profile, out)
        if profile.schedulerName in names:
            out.append(f"profiles[{i}].schedulerName: Duplicate value")
        names.add(profile.schedulerName)
    _check_percentage("percentageOfNodesToScore", cfg.percentageOfNodesToScore, out)
    if cfg.podInitialBackoffSeconds is not None and cfg.podInitialBackoffSeconds <= 0:
        out.append("podInitialBackoffSeconds: must be greater than 0")
    if cfg.podMaxBackoffSeconds is not None and cfg.podMaxBackoffSeconds < (
        cfg.podInitialBackoffSeconds or 1
    ):
        out.append("podMaxBackoffSeconds: must be >= podInitialBackoffSeconds")
    _check_extenders(cfg.extenders or [], out)
    return out
