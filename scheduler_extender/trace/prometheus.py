"""Read user pods' lifetimes and requests from Prometheus (kube-state-metrics series).

The client is plain httpx: five instant queries per time window need no more than a GET and a
JSON decode, and ``prometheus-api-client`` would pull pandas, numpy and matplotlib into the
service image for it (docs/simulator.md says more).

Memory stays flat however long the range: the range is asked one window (a day by default) at
a time, at the window's end, and each answer is reduced to one small record per pod before the
next window is asked.  Four queries use ``*_over_time`` functions, which Prometheus reduces to
one value per pod (creation time, deletion timestamp, requests, image).  The last-seen time
comes from the window's raw ``kube_pod_created`` samples (a range vector), whose last timestamp
is exact; ``max_over_time(timestamp(...)[1d:1m])`` would say the same only at the subquery's
resolution and costs Prometheus one evaluation per pod and step (the whole import took 3 to 4
times as long with it in ``benchmarks/trace_import.py``).  When Prometheus refuses a window
(``--query.max-samples``, its ``--query.timeout``, the 11,000 points resolution limit), the
window is split in two and each half asked again.

Series used (kube-state-metrics v2; ref: kube-state-metrics docs/pod-metrics.md): every pod
series carries ``namespace``, ``pod`` and ``uid``.

- ``kube_pod_created``: creation time (value); its last sample's timestamp is when the pod was
  last seen.
- ``kube_pod_deletion_timestamp``: set while the pod terminates (often caught by no scrape).
- ``kube_pod_container_resource_requests{resource="cpu"|"memory"}``: cores / bytes, per container.
- ``kube_pod_container_info{container="notebook"}``: the image of KubeSpawner's container.
- ``kube_pod_labels``: ``label_<name>`` per pod label, but only for labels allow-listed with
  ``--metric-labels-allowlist``; hence the fallback to KubeSpawner's pod name pattern.
"""

from __future__ import annotations

import json
import math
import re
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from scheduler_extender.trace.sessions import Observation, PodKey, merge

#: Prometheus's answers when a query is too large for it; the window is then split.
#: ref: prometheus promql/engine.go (ErrTooManySamples, ErrQueryTimeout: its own
#: --query.timeout) and web/api/v1/api.go (11,000 points per series).
_TOO_LARGE = re.compile(
    r"too many samples|maximum resolution|exceeded maximum|query timed out", re.IGNORECASE
)
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
#: A window is not split below this many seconds.
MIN_WINDOW = 300.0


class PrometheusError(Exception):
    """Prometheus could not be asked or refused; ``str()`` is a one-line explanation."""


class QueryTooLargeError(PrometheusError):
    """Prometheus refused a query for its size: ask again with a shorter window."""


Sample = tuple[Mapping[str, str], float, float]  # labels, sample timestamp, value


class Prometheus:
    """The HTTP API's instant query (``/api/v1/query``), with one-line errors."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        token: str | None = None,
        ca_file: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: ssl.SSLContext | bool = True
        if ca_file:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise PrometheusError(f"--ca-file {ca_file}: {exc}") from None
        self.queries = 0
        self._http = httpx.Client(
            headers=headers, timeout=timeout, verify=verify, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _get(self, expr: str, at: float, kind: str) -> tuple[list[Any], str]:
        endpoint = f"{self.url}/api/v1/query"
        self.queries += 1
        try:
            response = self._http.get(endpoint, params={"query": expr, "time": f"{at:.3f}"})
        except httpx.TimeoutException:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {self.timeout:g} s (--timeout)"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        return _decode(response, endpoint, kind), endpoint

    def query(self, expr: str, at: float) -> list[Sample]:
        """The instant vector ``expr`` evaluated at unix time ``at``."""
        result, endpoint = self._get(expr, at, "vector")
        out: list[Sample] = []
        for item in result:
            try:
                labels = item["metric"]
                stamp, raw = item["value"]
                out.append((labels, float(stamp), float(raw)))
            except (KeyError, TypeError, ValueError):
                raise PrometheusError(f"{endpoint}: malformed sample {item!r:.200}") from None
        return out

    def last_sample_times(self, selector: str, at: float) -> list[tuple[Mapping[str, str], float]]:
        """For each series of the range vector ``selector`` (e.g. ``x{...}[1d]``) at ``at``, the
        timestamp of its last raw sample."""
        result, endpoint = self._get(selector, at, "matrix")
        out: list[tuple[Mapping[str, str], float]] = []
        for item in result:
            try:
                labels = item["metric"]
                values = item["values"]
                if values:
                    out.append((labels, float(values[-1][0])))
            except (KeyError, TypeError, ValueError, IndexError):
                raise PrometheusError(f"{endpoint}: malformed series {item!r:.200}") from None
        return out


def _decode(response: httpx.Response, endpoint: str, kind: str) -> list[Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    problem = body.get("error") if isinstance(body, dict) else None
    if response.status_code != 200 or (isinstance(body, dict) and body.get("status") == "error"):
        text = str(problem) if problem else _first_line(response.text)
        if _TOO_LARGE.search(text):
            raise QueryTooLargeError(text)
        raise PrometheusError(f"Prometheus answered HTTP {response.status_code} on {endpoint}: "
                              f"{text}")  # fmt: skip
    if not isinstance(body, dict):
        raise PrometheusError(
            f"{endpoint} did not answer with JSON (is --url the Prometheus server, not a login "
            f"page?): {_first_line(response.text)!r}"
        )
    data = body.get("data")
    if body.get("status") != "success" or not isinstance(data, dict):
        raise PrometheusError(f"{endpoint}: unexpected answer: {_first_line(response.text)!r}")
    if data.get("resultType") != kind or not isinstance(data.get("result"), list):
        raise PrometheusError(f"{endpoint}: expected {kind}, got {data.get('resultType')}")
    result: list[Any] = data["result"]
    return result


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(empty body)"
    return line[:200]


def _quote(value: str) -> str:
    """A PromQL string literal (double quotes; backslash and quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_selector(text: str) -> dict[str, str]:
    """``component=singleuser-server,app=jupyterhub`` -> kube-state-metrics label names
    (``label_component``; ksm turns every character outside ``[a-zA-Z0-9_]`` into ``_``)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or value.startswith("=") or key.endswith("!"):
            raise ValueError(f"--selector: expected label=value[,label=value], got {part!r}")
        out["label_" + _LABEL_NAME.sub("_", key.strip())] = value.strip()
    return out


@dataclass(frozen=True, slots=True)
class Selection:
    """Which pods are users' servers."""

    namespace: str | None = None
    labels: Mapping[str, str] | None = None  # ksm label names; None: select by name
    pod_pattern: str = "jupyter-.*"
    container: str = "notebook"

    def matchers(self, *extra: str) -> str:
        parts = [f"namespace={_quote(self.namespace)}"] if self.namespace else []
        if self.labels is None:
            parts.append(f"pod=~{_quote(self.pod_pattern)}")
        return "{" + ",".join([*parts, *extra]) + "}"

    def labels_matchers(self) -> str:
        parts = [f"namespace={_quote(self.namespace)}"] if self.namespace else []
        parts += [f"{k}={_quote(v)}" for k, v in sorted((self.labels or {}).items())]
        return "{" + ",".join(parts) + "}"

    def restrict(self, expr: str, window: str | None) -> str:
        """``expr`` kept to labelled pods (label mode); unchanged when selecting by name."""
        if self.labels is None:
            return expr
        labels = f"kube_pod_labels{self.labels_matchers()}"
        if window is not None:
            labels = f"max_over_time({labels}[{window}])"
        return f"({expr}) and on(namespace, pod) {labels}"

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        if self.labels is None:
            return f"pod name matching {self.pod_pattern!r}{where}"
        wanted = ",".join(f"{k.removeprefix('label_')}={v}" for k, v in sorted(self.labels.items()))
        return f"pod labels {wanted} (kube_pod_labels){where}"


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _key(labels: Mapping[str, str]) -> PodKey:
    return (labels.get("namespace", ""), labels.get("pod", ""), labels.get("uid", ""))


def window_queries(sel: Selection, length: float) -> dict[str, str]:
    """The PromQL asked for each window of ``length`` seconds (evaluated at its end).  ``seen``
    is a range vector of raw samples (not restricted to labelled pods: the importer keeps only
    the pods the other queries name)."""
    w = _duration(length)
    requests = sel.matchers('resource=~"cpu|memory"')
    info = sel.matchers(f"container={_quote(sel.container)}")
    return {
        "seen": f"kube_pod_created{sel.matchers()}[{w}]",
        "created": sel.restrict(f"min_over_time(kube_pod_created{sel.matchers()}[{w}])", w),
        "deleted": sel.restrict(
            f"min_over_time(kube_pod_deletion_timestamp{sel.matchers()}[{w}])", w
        ),
        # Per container first (duplicate series count once), then summed over the pod.
        "requests": sel.restrict(
            "sum by (namespace, pod, uid, resource) "
            "(max by (namespace, pod, uid, resource, container) "
            f"(max_over_time(kube_pod_container_resource_requests{requests}[{w}])))",
            w,
        ),
        "image": sel.restrict(f"max_over_time(kube_pod_container_info{info}[{w}])", w),
    }


def windows(since: float, until: float, length: float) -> Iterator[tuple[float, float]]:
    start = since
    while start < until:
        end = min(until, start + length)
        yield start, end
        start = end


@dataclass(slots=True)
class ImportResult:
    pods: dict[PodKey, Observation]
    present_at_end: set[PodKey]
    selection: Selection
    why: str  # how the selection was chosen
    windows: int
    splits: int
    queries: int


class Importer:
    """Pages ``[since, until]`` by windows, splitting any window Prometheus finds too large."""

    def __init__(
        self,
        prom: Prometheus,
        *,
        window: float = 86400.0,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.prom = prom
        self.window = window
        self.progress = progress
        self.splits = 0
        self.windows = 0
        self._importing = False  # progress is reported for the import pass only

    def _each_window(self, since: float, until: float, ask: Callable[[float, float], bool]) -> bool:
        """Calls ``ask(start, end)`` for windows covering the range; ``ask`` returns True to
        stop early.  A window Prometheus refuses for its size is halved and retried."""
        pending = list(reversed(list(windows(since, until, self.window))))
        while pending:
            start, end = pending.pop()
            try:
                stop = ask(start, end)
            except QueryTooLargeError as exc:
                if end - start < 2 * MIN_WINDOW:
                    raise PrometheusError(
                        f"Prometheus refuses even a {end - start:.0f} s window ({exc}); raise "
                        "its --query.max-samples or --query.timeout"
                    ) from None
                mid = start + math.floor((end - start) / 2)
                self.splits += 1
                pending += [(mid, end), (start, mid)]
                continue
            self.windows += 1
            if self.progress is not None and self._importing:
                self.progress(end)
            if stop:
                return True
        return False

    def choose_selection(
        self, since: float, until: float, wanted: Selection
    ) -> tuple[Selection, str]:
        """Label selection if kube_pod_labels carries the wanted labels anywhere in the range,
        else KubeSpawner's pod name pattern."""
        if not wanted.labels:
            return Selection(wanted.namespace, None, wanted.pod_pattern, wanted.container), (
                "no --selector given"
            )

        def ask(start: float, end: float) -> bool:
            expr = f"count(max_over_time(kube_pod_labels{wanted.labels_matchers()}"
            expr += f"[{_duration(end - start)}]))"
            return any(value > 0 for _, _, value in self.prom.query(expr, end))

        if self._each_window(since, until, ask):
            return wanted, "kube_pod_labels has these labels"
        by_name = Selection(wanted.namespace, None, wanted.pod_pattern, wanted.container)
        names = ",".join(sorted(k.removeprefix("label_") for k in wanted.labels))
        return by_name, (
            "kube_pod_labels has no such labels in the range (kube-state-metrics v2 exports pod "
            f"labels only when allow-listed: --metric-labels-allowlist=pods=[{names}])"
        )

    def run(self, since: float, until: float, wanted: Selection) -> ImportResult:
        selection, why = self.choose_selection(since, until, wanted)
        self.windows = self.splits = 0
        self._importing = True
        pods: dict[PodKey, Observation] = {}

        def ask(start: float, end: float) -> bool:
            found: dict[PodKey, Observation] = {}
            queries = window_queries(selection, end - start)

            def get(key: PodKey) -> Observation:
                obs = found.get(key)
                if obs is None:
                    obs = found[key] = Observation()
                return obs

            # Ask everything for this window before merging, so a split leaves no half window.
            # A pod may come in several series (two kube-state-metrics replicas, two scrape
            # jobs): merge them like windows.
            for labels, _, value in self._finite(queries["created"], end):
                merge(get(_key(labels)), Observation(created=value))
            for labels, stamp in self.prom.last_sample_times(queries["seen"], end):
                obs = found.get(_key(labels))
                if obs is not None:  # a selected pod (label mode asks for all pods)
                    merge(obs, Observation(last_seen=stamp))
            for labels, _, value in self._finite(queries["deleted"], end):
                merge(get(_key(labels)), Observation(deleted=value))
            for labels, _, value in self._finite(queries["requests"], end):
                if labels.get("resource") == "cpu":
                    merge(get(_key(labels)), Observation(cpu=value))
                elif labels.get("resource") == "memory":
                    merge(get(_key(labels)), Observation(memory=value))
            for labels, _, _ in self._finite(queries["image"], end):
                # image_spec (ksm >= 2.9) is the image as written in the pod spec.
                image = labels.get("image_spec") or labels.get("image")
                if image:
                    get(_key(labels)).image = image
            for key, obs in found.items():
                if key in pods:
                    merge(pods[key], obs)
                else:
                    pods[key] = obs
            return False

        self._each_window(since, until, ask)
        present = {
            _key(labels)
            for labels, _, _ in self.prom.query(
                selection.restrict(f"kube_pod_created{selection.matchers()}", None), until
            )
        }
        return ImportResult(
            pods, present, selection, why, self.windows, self.splits, self.prom.queries
        )

    def _finite(self, expr: str, at: float) -> Sequence[Sample]:
        return [s for s in self.prom.query(expr, at) if math.isfinite(s[2])]
