"""``scheduler-extender await-images``: wait until the hook image puller is ready on every node.

The Helm chart's pre-install/pre-upgrade hook creates a DaemonSet whose pods pull every user
image in init containers and then sleep in a pause container; a pod is Ready only once all its
images are on its node. This command polls that DaemonSet and its pods and exits 0 when every
node that should run one has a Ready pod, so ``helm upgrade`` only proceeds (and the hub only
restarts) once users will not wait for image pulls. It exits 1 on timeout, printing which nodes
were still missing what.

A pod that cannot even be scheduled (its node is full of users) would block the upgrade
forever; after ``--pod-scheduling-wait`` seconds such pods are skipped, as the Zero to
JupyterHub awaiter does with ``prePuller.hook.podSchedulingWaitDuration``.

Layering: :func:`assess` is a pure function of the DaemonSet and pod JSON (testable with plain
dicts); :class:`KubeReader` sorts the errors of ``kube.KubeClient`` (the project's one wrapper
over the ``kubernetes`` client, with its config discovery) into "retry" and "give up";
:func:`wait` is the loop with an injected clock. The API is only read (``daemonsets get``,
``pods list``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from urllib3.exceptions import HTTPError

from scheduler_extender.kube.client import ApiError, KubeClient, KubeConfigError, connect
from scheduler_extender.kube.convert import pod_ready

#: Where a pod finds its own namespace (ref: kubernetes.io/docs/tasks/run-application/
#: access-api-from-pod/#directly-accessing-the-rest-api).
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

Json = Mapping[str, Any]


# --------------------------------------------------------------------------------------------
# Pure assessment
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeStatus:
    """Why one node's puller pod is not done (or why it was skipped)."""

    node: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """Where the puller DaemonSet stands at one instant."""

    desired: int
    ready: int
    rolled_out: bool
    waiting: tuple[NodeStatus, ...] = ()
    skipped: tuple[NodeStatus, ...] = ()
    missing_pods: int = 0

    @property
    def done(self) -> bool:
        """Every node that should run a puller has one Ready (or skipped as unschedulable)."""
        return (
            self.rolled_out
            and not self.waiting
            and self.missing_pods == 0
            and self.ready + len(self.skipped) >= self.desired
        )

    def summary(self) -> str:
        """One line for the log: counts first, then the nodes still being waited for."""
        head = f"{self.ready} of {self.desired} nodes have the images"
        if self.skipped:
            head += f" ({len(self.skipped)} skipped: pod could not be scheduled)"
        parts = [head]
        if not self.rolled_out:
            parts.append("DaemonSet controller has not observed the latest spec yet")
        if self.missing_pods:
            parts.append(f"{self.missing_pods} pods not created yet")
        if self.waiting:
            shown = ", ".join(f"{w.node}: {w.reason}" for w in self.waiting[:5])
            more = len(self.waiting) - 5
            parts.append("waiting for " + shown + (f" and {more} more" if more > 0 else ""))
        return "; ".join(parts)


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes writes it (``2024-05-01T10:00:00Z``)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def pod_node(pod: Json) -> str:
    """The node a DaemonSet pod runs on or is meant for.

    An unscheduled DaemonSet pod names its node in a required node affinity on
    ``metadata.name`` (ref: kubernetes pkg/controller/daemon/util/daemonset_util.go,
    ``ReplaceDaemonSetPodNodeNameNodeAffinity``).
    """
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    terms = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("values"):
                return str(req["values"][0])
    return str((pod.get("metadata") or {}).get("name", "?"))


def _condition(pod: Json, kind: str) -> Json | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _pull_reason(pod: Json) -> str:
    """What a scheduled but not yet Ready puller pod is doing, from its container statuses."""
    status = pod.get("status") or {}
    inits = status.get("initContainerStatuses") or []
    total = len((pod.get("spec") or {}).get("initContainers") or []) or len(inits)
    done = sum(
        1 for s in inits if ((s.get("state") or {}).get("terminated") or {}).get("exitCode") == 0
    )
    for s in inits:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            return f"{done}/{total} images pulled; {s.get('image', '?')}: {waiting['reason']}"
        terminated = (s.get("state") or {}).get("terminated")
        if terminated and terminated.get("exitCode") not in (None, 0):
            return (
                f"{done}/{total} images pulled; {s.get('image', '?')}: exited "
                f"{terminated['exitCode']} ({terminated.get('reason', 'Error')})"
            )
    if total and done < total:
        return f"{done}/{total} images pulled"
    return "images pulled, pod starting"


def assess(
    daemonset: Json,
    pods: Sequence[Json],
    now: datetime,
    scheduling_wait: float | None,
) -> Progress:
    """Progress of the puller DaemonSet ``daemonset`` given its ``pods`` at time ``now``.

    ``scheduling_wait`` is how long (seconds) an unscheduled pod is waited for before its node
    is skipped; ``None`` waits forever. Terminating pods and pods of an older template
    generation are ignored, so a DaemonSet re-created by a new hook is judged on its own pods.
    """
    meta = daemonset.get("metadata") or {}
    status = daemonset.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    rolled_out = generation is None or (observed is not None and observed >= generation)
    desired = int(status.get("desiredNumberScheduled") or 0)

    ready = 0
    waiting: list[NodeStatus] = []
    skipped: list[NodeStatus] = []
    seen_nodes: set[str] = set()
    for pod in sorted(pods, key=pod_node):
        pmeta = pod.get("metadata") or {}
        if pmeta.get("deletionTimestamp"):
            continue
        template_gen = (pmeta.get("labels") or {}).get("pod-template-generation")
        if generation is not None and template_gen is not None and template_gen != str(generation):
            continue
        node = pod_node(pod)
        if node in seen_nodes:
            continue
        seen_nodes.add(node)
        if pod_ready(pod):
            ready += 1
            continue
        if not (pod.get("spec") or {}).get("nodeName"):
            created = parse_time(pmeta.get("creationTimestamp"))
            age = (now - created).total_seconds() if created else 0.0
            cond = _condition(pod, "PodScheduled") or {}
            why = cond.get("message") or cond.get("reason") or "not scheduled yet"
            entry = NodeStatus(node, f"not scheduled for {age:.0f}s ({why})")
            if scheduling_wait is not None and age >= scheduling_wait:
                skipped.append(entry)
            else:
                waiting.append(entry)
            continue
        waiting.append(NodeStatus(node, _pull_reason(pod)))

    missing = max(0, desired - len(seen_nodes))
    return Progress(
        desired=desired,
        ready=ready,
        rolled_out=rolled_out,
        waiting=tuple(waiting),
        skipped=tuple(skipped),
        missing_pods=missing,
    )


def label_selector(selector: Json) -> str:
    """A ``metav1.LabelSelector`` as the string form the list API takes.

    ref: kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
    """
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unknown label selector operator {op!r} for key {key!r}")
    return ",".join(parts)


# --------------------------------------------------------------------------------------------
# The thin wrapper over the Kubernetes API (the one mock seam)
# --------------------------------------------------------------------------------------------


class ApiUnavailableError(Exception):
    """A read failed in a way worth retrying (network, 5xx, 429)."""


class ApiRefusedError(Exception):
    """A read failed in a way retrying will not fix (401, 403, 400)."""


class DaemonSetReader(Protocol):
    def read_daemonset(self, namespace: str, name: str) -> Json | None: ...

    def list_pods(self, namespace: str, selector: str) -> list[Json]: ...


class KubeReader:
    """Reads a DaemonSet and its pods as plain Kubernetes JSON through ``kube.KubeClient``."""

    #: Seconds per API call; pods are listed in pages of this many.
    TIMEOUT = 30.0
    PAGE = 500

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    @staticmethod
    def _classify(exc: Exception) -> Exception:
        if isinstance(exc, ApiError):
            if exc.code in (400, 401, 403):
                return ApiRefusedError(f"HTTP {exc}")
            return ApiUnavailableError(f"HTTP {exc}")
        return ApiUnavailableError(f"{type(exc).__name__}: {exc}")

    def read_daemonset(self, namespace: str, name: str) -> Json | None:
        try:
            return self._kube.get_daemonset(namespace, name, timeout=self.TIMEOUT)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise self._classify(exc) from exc
        except (HTTPError, OSError) as exc:
            raise self._classify(exc) from exc

    def list_pods(self, namespace: str, selector: str) -> list[Json]:
        items: list[Json] = []
        token = ""
        try:
            while True:
                page = self._kube.list_pods(
                    namespace,
                    label_selector=selector,
                    limit=self.PAGE,
                    continue_token=token,
                    timeout=self.TIMEOUT,
                )
                items += page.items
                token = page.continue_token
                if not token:
                    return items
        except (ApiError, HTTPError, OSError) as exc:
            raise self._classify(exc) from exc


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@dataclass
class WaitOptions:
    namespace: str
    daemonset: str
    timeout: float | None = 600.0
    interval: float = 2.0
    scheduling_wait: float | None = 10.0
    #: Print the progress line at least this often even when nothing changed.
    heartbeat: float = 30.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def wait(reader: DaemonSetReader, opts: WaitOptions, out: TextIO) -> int:
    """Poll until the DaemonSet is ready everywhere (0) or the timeout passes (1)."""
    where = f"{opts.namespace}/{opts.daemonset}"
    start = opts.clock()
    last_line, last_print = "", -1e18
    progress: Progress | None = None

    def say(line: str) -> None:
        print(f"await-images: {where}: {line}", file=out, flush=True)

    while True:
        elapsed = opts.clock() - start
        line: str
        try:
            ds = reader.read_daemonset(opts.namespace, opts.daemonset)
            if ds is None:
                line = "DaemonSet not found (yet)"
            else:
                selector = label_selector((ds.get("spec") or {}).get("selector") or {})
                pods = reader.list_pods(opts.namespace, selector)
                progress = assess(ds, pods, opts.now(), opts.scheduling_wait)
                if progress.done:
                    say(f"done after {elapsed:.0f}s: {progress.summary()}")
                    return 0
                line = progress.summary()
        except ApiRefusedError as exc:
            say(f"the API refused the request ({exc}); check the awaiter's RBAC")
            return 1
        except ApiUnavailableError as exc:
            line = f"API not reachable, retrying ({exc})"
        if line != last_line or opts.clock() - last_print >= opts.heartbeat:
            say(f"[{elapsed:.0f}s] {line}")
            last_line, last_print = line, opts.clock()
        if opts.timeout is not None and elapsed >= opts.timeout:
            say(f"timed out after {opts.timeout:.0f}s: {line}")
            return 1
        opts.sleep(opts.interval)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _seconds_or_none(text: str) -> float | None:
    value = float(text)
    return None if value < 0 else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scheduler-extender await-images",
        description="Wait until the hook image-puller DaemonSet has a Ready pod on every node "
        "it should run on (all images pulled), printing progress. Exit 0 when done, 1 on "
        "timeout or when the API refuses access, 2 on bad arguments.",
    )
    parser.add_argument("--daemonset", required=True, help="Name of the puller DaemonSet.")
    parser.add_argument(
        "--namespace",
        default=None,
        help="Namespace of the DaemonSet (default: $POD_NAMESPACE, else this pod's own "
        "service-account namespace).",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds_or_none,
        default=600.0,
        help="Give up after this many seconds (default 600; negative: never). Keep it below "
        "helm's --timeout so the awaiter reports what is missing before Helm gives up.",
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="Seconds between polls (default 2)."
    )
    parser.add_argument(
        "--pod-scheduling-wait",
        type=_seconds_or_none,
        default=10.0,
        help="Skip a node whose puller pod has not been scheduled after this many seconds "
        "(default 10; negative: wait for every pod to be scheduled).",
    )
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="Kubeconfig file (default: the in-cluster service account, else $KUBECONFIG, "
        "else ~/.kube/config).",
    )
    parser.add_argument("--context", default=None, help="Kubeconfig context.")
    return parser


def default_namespace() -> str | None:
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    return None


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse exits 2 on errors and 0 on --help
        return int(exc.code or 0)
    if args.interval <= 0:
        print("scheduler-extender await-images: --interval must be > 0", file=sys.stderr)
        return 2
    namespace = args.namespace or default_namespace()
    if not namespace:
        print(
            "scheduler-extender await-images: --namespace is required outside a pod "
            "(or set POD_NAMESPACE)",
            file=sys.stderr,
        )
        return 2
    try:
        kube = connect(
            kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None, context=args.context
        )
    except KubeConfigError as exc:
        print(
            f"scheduler-extender await-images: cannot configure the Kubernetes client: {exc}",
            file=sys.stderr,
        )
        return 2
    if kube is None:
        print(
            "scheduler-extender await-images: cannot configure the Kubernetes client: no "
            "cluster config found (not in a pod with a service account token, no --kubeconfig, "
            "$KUBECONFIG or ~/.kube/config)",
            file=sys.stderr,
        )
        return 2
    opts = WaitOptions(
        namespace=namespace,
        daemonset=args.daemonset,
        timeout=args.timeout,
        interval=args.interval,
        scheduling_wait=args.pod_scheduling_wait,
    )
    try:
        return wait(KubeReader(kube), opts, sys.stdout)
    finally:
        kube.close()
