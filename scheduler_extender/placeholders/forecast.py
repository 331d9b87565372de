"""``forecast`` pools' learned arrivals by time of week, kept in a ConfigMap the controller owns.

The profile itself is ``core.forecast`` (pure); this module reads, folds and writes it:

- the ConfigMap is ``<leaseName>-forecast`` in the controller's namespace, one data key per
  forecast pool (the pool's name) holding ``profile_to_dict`` as JSON, with an ownerReference to
  the controller's owner (its Deployment) like the placeholder pods;
- only the leader touches it: on becoming leader it reads it once (missing: empty profiles; a
  pool's entry that is not JSON, has the wrong shape or another version: one WARNING naming the
  problem, and that pool starts from an empty profile, so it plans as adaptive until it has
  history, as ``core.placeholders`` does without enough weeks);
- every pass folds the complete buckets since the profile's ``through`` into it, but only time
  the controller actually watched: from when its user informer last (re)listed, and no earlier
  than the oldest arrival the observer still keeps (``Observer.horizon``);
- at most every ``write_interval`` seconds (and on shutdown) the profiles are written back with
  a resourceVersion precondition; a 409 re-reads the ConfigMap, folds again into what is
  stored there (folding is idempotent) and tries once more; a 404 (deleted since it was read)
  creates it again; anything else waits for the next interval.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from scheduler_extender.core.forecast import (
    ArrivalProfile,
    ProfileError,
    empty_profile,
    fold_arrivals,
    profile_from_dict,
    profile_to_dict,
)
from scheduler_extender.kube.client import ApiError, KubeClient, Obj
from scheduler_extender.placeholders.config import ControllerConfig
from scheduler_extender.placeholders.metrics import Metrics
from scheduler_extender.placeholders.pods import OwnerRef

log = logging.getLogger(__name__)

#: How often learned profiles are written back (seconds of wall time).
WRITE_INTERVAL = 300.0


def config_map_name(config: ControllerConfig) -> str:
    return f"{config.lease_name}-forecast"


def forecast_pools(config: ControllerConfig) -> dict[str, float]:
    """Pool name -> its ``forecastAlpha``, for the pools in ``forecast`` mode."""
    return {p.name: p.count.forecast_alpha for p in config.pools if p.count.mode == "forecast"}


def parse_entry(text: object) -> ArrivalProfile:
    """One pool's stored profile; ``ProfileError`` naming the problem."""
    if not isinstance(text, str):
        raise ProfileError("expected a JSON string")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProfileError(f"not JSON: {exc}") from None
    return profile_from_dict(data)


class ForecastStore:
    """The forecast pools' profiles, their ConfigMap's resourceVersion, and when they were last
    written.  ``fold`` and ``flush`` run in the reconcile loop; ``profile`` from anywhere."""

    def __init__(
        self,
        config: ControllerConfig,
        kube: KubeClient,
        metrics: Metrics,
        *,
        owner: Callable[[], OwnerRef | None],
        wall: Callable[[], float],
        request_timeout: float,
        write_interval: float = WRITE_INTERVAL,
    ) -> None:
        self.namespace = config.namespace
        self.name = config_map_name(config)
        self.kube = kube
        self.metrics = metrics
        self.owner = owner
        self.wall = wall
        self.request_timeout = request_timeout
        self.write_interval = write_interval
        self.alphas = forecast_pools(config)
        self._lock = threading.Lock()
        self._profiles: dict[str, ArrivalProfile] = {}
        #: The ConfigMap's resourceVersion as last read or written ("" : it does not exist).
        self._rv = ""
        #: The ConfigMap's keys of pools not in forecast mode now (written back unchanged).
        self._others: dict[str, str] = {}
        self._loaded = False
        self._written: dict[str, ArrivalProfile] = {}
        self._last_write: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.alphas)

    def profile(self, pool: str) -> ArrivalProfile | None:
        """What ``pool`` has learned (None before the ConfigMap was read)."""
        with self._lock:
            return self._profiles.get(pool)

    def forget(self) -> None:
        """Leadership changed: read the ConfigMap again before the next fold (the other replica
        may have written it)."""
        with self._lock:
            self._loaded = False

    # --- reading ---

    def _read(self, utc_offset: float) -> tuple[str, dict[str, ArrivalProfile], dict[str, str]]:
        """The ConfigMap's resourceVersion, the stored profiles (an empty one for a pool missing
        or unusable, logged) and its other keys (pools not forecasting now: kept as they are)."""
        try:
            obj = self.kube.get_config_map(self.namespace, self.name, timeout=self.request_timeout)
        except ApiError as exc:
            if exc.code != 404:
                raise
            return "", {p: empty_profile(utc_offset=utc_offset) for p in self.alphas}, {}
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        data = obj.get("data") or {}
        out: dict[str, ArrivalProfile] = {}
        for pool in self.alphas:
            if pool not in data:
                out[pool] = empty_profile(utc_offset=utc_offset)
                continue
            try:
                out[pool] = parse_entry(data[pool])
            except ProfileError as exc:
                log.warning(
                    "pool %s: the forecast profile in ConfigMap %s/%s key %s is unusable (%s); "
                    "starting from an empty profile: the pool plans as adaptive until it has "
                    "history again, and the next write replaces the entry",
                    pool,
                    self.namespace,
                    self.name,
                    pool,
                    exc,
                )
                self.metrics.errors.labels("forecast-profile-unusable").inc()
                out[pool] = empty_profile(utc_offset=utc_offset)
        others = {k: str(v) for k, v in data.items() if k not in self.alphas}
        return rv, out, others

    def load(self, utc_offset: float) -> bool:
        """Read the ConfigMap if not read since becoming leader; whether profiles are known."""
        with self._lock:
            if self._loaded:
                return True
        try:
            rv, profiles, others = self._read(utc_offset)
        except ApiError as exc:
            self.metrics.errors.labels("forecast-read").inc()
            log.warning("cannot read ConfigMap %s/%s: %s", self.namespace, self.name, exc)
            return False
        with self._lock:
            self._rv = rv
            self._others = others
            self._profiles = profiles
            self._written = dict(profiles)
            self._loaded = True
        self._export()
        return True

    # --- learning ---

    def fold(
        self,
        arrivals: Mapping[str, Sequence[float]],
        *,
        observed_since: float,
        until: float,
        utc_offset: float,
    ) -> None:
        """Fold each forecast pool's arrivals (sorted Unix times covering
        ``[observed_since, until)``) into its profile."""
        if not self.load(utc_offset):
            return
        with self._lock:
            self._profiles = self._folded(self._profiles, arrivals, observed_since, until)
        self._export()

    def _folded(
        self,
        profiles: Mapping[str, ArrivalProfile],
        arrivals: Mapping[str, Sequence[float]],
        observed_since: float,
        until: float,
    ) -> dict[str, ArrivalProfile]:
        out = dict(profiles)
        for pool, alpha in self.alphas.items():
            out[pool] = fold_arrivals(
                out[pool],
                arrivals.get(pool, ()),
                observed_since=observed_since,
                until=until,
                alpha=alpha,
            )
        return out

    def _export(self) -> None:
        with self._lock:
            profiles = dict(self._profiles)
        for pool, profile in profiles.items():
            weeks = sum(profile.seen) / profile.buckets if profile.buckets else 0.0
            self.metrics.forecast_weeks.labels(pool).set(weeks)

    # --- writing ---

    def _body(
        self, profiles: Mapping[str, ArrivalProfile], others: Mapping[str, str], rv: str
    ) -> Obj:
        meta: Obj = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/component": "placeholder-forecast"},
        }
        owner = self.owner()
        if owner is not None:
            meta["ownerReferences"] = [owner.json()]
        if rv:
            meta["resourceVersion"] = rv
        data = dict(others) | {
            pool: json.dumps(profile_to_dict(p), separators=(",", ":"))
            for pool, p in sorted(profiles.items())
        }
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}

    def _put(
        self, profiles: Mapping[str, ArrivalProfile], others: Mapping[str, str], rv: str
    ) -> str:
        body = self._body(profiles, others, rv)
        if rv:
            out = self.kube.replace_config_map(
                self.namespace, self.name, body, timeout=self.request_timeout
            )
        else:
            out = self.kube.create_config_map(self.namespace, body, timeout=self.request_timeout)
        return str((out.get("metadata") or {}).get("resourceVersion") or "")

    def flush(
        self,
        arrivals: Mapping[str, Sequence[float]],
        *,
        observed_since: float,
        until: float,
        utc_offset: float,
        force: bool = False,
    ) -> bool:
        """Write the profiles back if ``write_interval`` has passed (or ``force``) and they
        changed; on a conflict, re-read, fold ``arrivals`` into what is stored and try once
        more.  Whether the ConfigMap now holds them."""
        now = self.wall()
        with self._lock:
            if not self._loaded:
                return False
            if self._profiles == self._written:
                return True
            due = self._last_write is None or now - self._last_write >= self.write_interval
            if not (due or force):
                return False
            profiles, others, rv = dict(self._profiles), dict(self._others), self._rv
            self._last_write = now
        for attempt in (1, 2):
            try:
                new_rv = self._put(profiles, others, rv)
            except ApiError as exc:
                if exc.code == 404 and rv and attempt == 1:
                    rv = ""  # deleted since it was read: create it again
                    continue
                if exc.code != 409 or attempt == 2:
                    self.metrics.errors.labels("forecast-write").inc()
                    log.warning("cannot write ConfigMap %s/%s: %s", self.namespace, self.name, exc)
                    return False
                try:
                    rv, stored, others = self._read(utc_offset)
                except ApiError as read_exc:
                    self.metrics.errors.labels("forecast-read").inc()
                    log.warning(
                        "cannot read ConfigMap %s/%s: %s", self.namespace, self.name, read_exc
                    )
                    return False
                profiles = self._folded(stored, arrivals, observed_since, until)
                continue
            with self._lock:
                self._rv = new_rv
                self._others = others
                self._profiles = dict(profiles)
                self._written = dict(profiles)
            self._export()
            return True
        return False
