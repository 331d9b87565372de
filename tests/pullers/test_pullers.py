"""``scheduler-extender await-images``: the pure assessment, the loop, and the real client.

The end-to-end tests run ``main`` with the real ``kubernetes`` client against a tiny API server
on 127.0.0.1 that serves exactly the two reads the awaiter makes (GET a DaemonSet, LIST pods
by label selector) in Kubernetes JSON, including the 404 ``Status`` body.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from scheduler_extender.kube import client as kube_module
from scheduler_extender.kube.client import connect
from scheduler_extender.pullers import awaiter as pullers
from scheduler_extender.pullers.awaiter import (
    ApiRefusedError,
    ApiUnavailableError,
    NodeStatus,
    Progress,
    WaitOptions,
    assess,
    label_selector,
    wait,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SELECTOR = {"matchLabels": {"app.kubernetes.io/component": "hook-image-puller"}}


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def daemonset(desired: int, generation: int = 1, observed: int | None = 1) -> dict[str, Any]:
    status: dict[str, Any] = {"desiredNumberScheduled": desired}
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "hook-image-puller", "namespace": "jhub", "generation": generation},
        "spec": {"selector": SELECTOR},
        "status": status,
    }


def pod(
    node: str,
    *,
    scheduled: bool = True,
    ready: bool = False,
    age: float = 60,
    inits: list[dict[str, Any]] | None = None,
    n_inits: int = 3,
    generation: int = 1,
    terminating: bool = False,
    unschedulable_message: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "initContainers": [{"name": f"image-pull-{i}"} for i in range(n_inits)],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In",
                                          "values": [node]}]}
                    ]
                }
            }
        },
    }  # fmt: skip
    if scheduled:
        spec["nodeName"] = node
    conditions: list[dict[str, Any]] = [
        {"type": "Ready", "status": "True" if ready else "False"},
        {"type": "PodScheduled", "status": "True" if scheduled else "False"},
    ]
    if unschedulable_message:
        conditions[1].update(reason="Unschedulable", message=unschedulable_message)
    meta: dict[str, Any] = {
        "name": f"hook-image-puller-{node}",
        "creationTimestamp": ts(age),
        "labels": {"pod-template-generation": str(generation)},
    }
    if terminating:
        meta["deletionTimestamp"] = ts(0)
    status: dict[str, Any] = {"conditions": conditions}
    if inits is not None:
        status["initContainerStatuses"] = inits
    return {"metadata": meta, "spec": spec, "status": status}


def terminated(image: str, code: int = 0) -> dict[str, Any]:
    return {"image": image, "state": {"terminated": {"exitCode": code, "reason": "Completed"}}}


def waiting(image: str, reason: str) -> dict[str, Any]:
    return {"image": image, "state": {"waiting": {"reason": reason}}}


# --------------------------------------------------------------------------------------------
# assess
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ds", "pods", "wait_s", "expected"),
    [
        pytest.param(daemonset(0), [], 10, (True, 0, [], []), id="no-nodes-is-done"),
        pytest.param(
            daemonset(2), [pod("a", ready=True), pod("b", ready=True)], 10, (True, 2, [], []),
            id="all-ready",
        ),
        pytest.param(
            daemonset(2), [pod("a", ready=True), pod("b")], 10, (False, 1, ["b"], []),
            id="one-pulling",
        ),
        pytest.param(
            daemonset(2), [pod("a", ready=True)], 10, (False, 1, [], []),
            id="pod-not-created-yet",
        ),
        pytest.param(
            daemonset(2), [pod("a", ready=True), pod("b", scheduled=False, age=3)], 10,
            (False, 1, ["b"], []), id="unscheduled-young-is-waited-for",
        ),
        pytest.param(
            daemonset(2), [pod("a", ready=True), pod("b", scheduled=False, age=30)], 10,
            (True, 1, [], ["b"]), id="unscheduled-old-is-skipped",
        ),
        pytest.param(
            daemonset(2), [pod("a", ready=True), pod("b", scheduled=False, age=3000)], None,
            (False, 1, ["b"], []), id="negative-wait-waits-forever",
        ),
        pytest.param(
            daemonset(1, generation=2, observed=1), [pod("a", ready=True, generation=1)], 10,
            (False, 0, [], []), id="controller-not-caught-up",
        ),
        pytest.param(
            daemonset(1, generation=2, observed=2),
            [pod("a", ready=True, generation=1), pod("a", generation=2)], 10,
            (False, 0, ["a"], []), id="old-generation-pods-ignored",
        ),
        pytest.param(
            daemonset(1), [pod("a", ready=True, terminating=True)], 10, (False, 0, [], []),
            id="terminating-pods-ignored",
        ),
        pytest.param(
            daemonset(1, generation=3, observed=None), [pod("a", ready=True, generation=3)], 10,
            (False, 1, [], []), id="no-observed-generation-is-not-rolled-out",
        ),
    ],
)  # fmt: skip
def test_assess(
    ds: dict[str, Any],
    pods: list[dict[str, Any]],
    wait_s: float | None,
    expected: tuple[bool, int, list[str], list[str]],
) -> None:
    done, ready, waiting_nodes, skipped_nodes = expected
    progress = assess(ds, pods, NOW, wait_s)
    assert progress.done is done
    assert progress.ready == ready
    assert [w.node for w in progress.waiting] == waiting_nodes
    assert [s.node for s in progress.skipped] == skipped_nodes


@pytest.mark.parametrize(
    ("the_pod", "expected"),
    [
        pytest.param(pod("a", inits=[]), "0/3 images pulled", id="nothing-yet"),
        pytest.param(
            pod("a", inits=[terminated("x:1"), waiting("y:2", "PodInitializing"),
                            waiting("z:3", "PodInitializing")]),
            "1/3 images pulled", id="in-progress",
        ),
        pytest.param(
            pod("a", inits=[terminated("x:1"), waiting("y:2", "ImagePullBackOff")]),
            "1/3 images pulled; y:2: ImagePullBackOff", id="pull-backoff-names-image",
        ),
        pytest.param(
            pod("a", inits=[terminated("x:1", code=127)]),
            "0/3 images pulled; x:1: exited 127 (Completed)", id="no-shell-in-image",
        ),
        pytest.param(
            pod("a", n_inits=1, inits=[terminated("x:1")]),
            "images pulled, pod starting", id="all-pulled",
        ),
        pytest.param(
            pod("a", scheduled=False, age=4, unschedulable_message="0/3 nodes are available"),
            "not scheduled for 4s (0/3 nodes are available)", id="unschedulable-message",
        ),
    ],
)  # fmt: skip
def test_waiting_reason_says_what_is_missing(the_pod: dict[str, Any], expected: str) -> None:
    progress = assess(daemonset(1), [the_pod], NOW, None)
    assert progress.waiting == (NodeStatus("a", expected),)


def test_unscheduled_pod_node_comes_from_daemonset_affinity() -> None:
    progress = assess(daemonset(1), [pod("node-7", scheduled=False, age=1)], NOW, 10)
    assert progress.waiting[0].node == "node-7"


def test_summary_lists_counts_and_nodes() -> None:
    progress = Progress(
        desired=9,
        ready=1,
        rolled_out=True,
        waiting=tuple(NodeStatus(f"n{i}", "1/2 images pulled") for i in range(7)),
        skipped=(NodeStatus("s", "x"),),
    )
    line = progress.summary()
    assert line.startswith("1 of 9 nodes have the images (1 skipped")
    assert "n0: 1/2 images pulled" in line and "n4" in line and "n5" not in line
    assert line.endswith("and 2 more")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2", id="labels-sorted"),
        pytest.param(
            {"matchExpressions": [
                {"key": "k", "operator": "In", "values": ["x", "y"]},
                {"key": "n", "operator": "NotIn", "values": ["z"]},
                {"key": "e", "operator": "Exists"},
                {"key": "d", "operator": "DoesNotExist"},
            ]},
            "k in (x,y),n notin (z),e,!d", id="expressions",
        ),
        pytest.param({}, "", id="empty"),
    ],
)  # fmt: skip
def test_label_selector(selector: dict[str, Any], expected: str) -> None:
    assert label_selector(selector) == expected


def test_label_selector_rejects_unknown_operator() -> None:
    with pytest.raises(ValueError, match="Gt"):
        label_selector({"matchExpressions": [{"key": "k", "operator": "Gt"}]})


# --------------------------------------------------------------------------------------------
# wait: the loop, at the level of the thin wrapper
# --------------------------------------------------------------------------------------------


class ScriptedReader:
    """Returns one scripted (daemonset, pods) state per poll; an Exception entry is raised."""

    def __init__(self, states: list[Any]) -> None:
        self.states = states
        self.calls = 0
        self.selectors: list[str] = []

    def _state(self) -> Any:
        state = self.states[min(self.calls, len(self.states) - 1)]
        if isinstance(state, Exception):
            self.calls += 1
            raise state
        return state

    def read_daemonset(self, namespace: str, name: str) -> dict[str, Any] | None:
        state = self._state()
        if state is None:
            self.calls += 1
        return None if state is None else state[0]

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        state = self._state()
        self.calls += 1
        return list(state[1])


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def run_wait(states: list[Any], timeout: float | None = 60) -> tuple[int, str, ScriptedReader]:
    reader = ScriptedReader(states)
    clock = FakeClock()
    out = io.StringIO()
    opts = WaitOptions(
        namespace="jhub",
        daemonset="hook-image-puller",
        timeout=timeout,
        interval=2,
        clock=clock,
        sleep=clock.sleep,
        now=lambda: NOW,
    )
    return wait(reader, opts, out), out.getvalue(), reader


def test_wait_reports_progress_then_succeeds() -> None:
    pulling = (daemonset(2), [pod("a", ready=True), pod("b", inits=[terminated("x:1")])])
    done = (daemonset(2), [pod("a", ready=True), pod("b", ready=True)])
    code, out, reader = run_wait([None, pulling, pulling, done])
    assert code == 0
    lines = out.splitlines()
    assert "DaemonSet not found (yet)" in lines[0]
    assert "1 of 2 nodes have the images; waiting for b: 1/3 images pulled" in lines[1]
    assert len(lines) == 3, "an unchanged state is not printed again before the heartbeat"
    assert lines[-1].startswith("await-images: jhub/hook-image-puller: done after 6s")
    assert reader.selectors[0] == "app.kubernetes.io/component=hook-image-puller"


def test_wait_times_out_naming_the_missing_node() -> None:
    stuck = (daemonset(2), [pod("a", ready=True), pod("b", inits=[waiting("y:2", "ErrImagePull")])])
    code, out, _ = run_wait([stuck], timeout=10)
    assert code == 1
    assert "timed out after 10s" in out.splitlines()[-1]
    assert "b: 0/3 images pulled; y:2: ErrImagePull" in out.splitlines()[-1]


def test_wait_heartbeat_repeats_unchanged_line() -> None:
    stuck = (daemonset(1), [pod("a")])
    code, out, _ = run_wait([stuck], timeout=70)
    assert code == 1
    assert sum("[" in line for line in out.splitlines()) == 3  # at 0s, 30s and 60s


def test_wait_retries_when_api_unavailable() -> None:
    done = (daemonset(1), [pod("a", ready=True)])
    code, out, _ = run_wait([ApiUnavailableError("HTTP 503"), done])
    assert code == 0
    assert "API not reachable, retrying (HTTP 503)" in out


def test_wait_stops_when_api_refuses() -> None:
    code, out, _ = run_wait([ApiRefusedError("HTTP 403 Forbidden")])
    assert code == 1
    assert "check the awaiter's RBAC" in out


# --------------------------------------------------------------------------------------------
# main, end to end: the real kubernetes client against a loopback API
# --------------------------------------------------------------------------------------------


class FakeApi:
    """Serves a scripted sequence of DaemonSet states; every pods LIST returns the pods of the
    state most recently served for the DaemonSet GET."""

    def __init__(self, states: list[tuple[dict[str, Any], list[dict[str, Any]]] | None]) -> None:
        self.states = states
        self.index = -1
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []
        self.status_override: int | None = None

    def handle(self, path: str, query: dict[str, list[str]], auth: str) -> tuple[int, Any]:
        self.requests.append((path, query, auth))
        if self.status_override is not None:
            code = self.status_override
            return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "Forbidden", "code": code}  # fmt: skip
        if path == "/apis/apps/v1/namespaces/jhub/daemonsets/hook-image-puller":
            self.index = min(self.index + 1, len(self.states) - 1)
            state = self.states[self.index]
            if state is None:
                return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404}  # fmt: skip
            return 200, state[0]
        if path == "/api/v1/namespaces/jhub/pods":
            state = self.states[self.index]
            items = state[1] if state else []
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        return 404, {"kind": "Status", "code": 404}


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[tuple[FakeApi, Path]]:
    api = FakeApi([])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            code, body = api.handle(
                url.path, parse_qs(url.query), self.headers.get("Authorization", "")
            )
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "fake",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "u", "user": {"token": "secret-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
                "current-context": "fake",
            }
        )
    )
    try:
        yield api, kubeconfig
    finally:
        server.shutdown()
        server.server_close()


def run_main(kubeconfig: Path, *extra: str) -> int:
    return pullers.main(
        [
            "--kubeconfig", str(kubeconfig), "--namespace", "jhub",
            "--daemonset", "hook-image-puller", "--interval", "0.01", *extra,
        ]
    )  # fmt: skip


def test_main_waits_through_real_client(
    fake_api: tuple[FakeApi, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    api, kubeconfig = fake_api
    now = datetime.now(UTC)
    fresh = {"creationTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    pulling = pod("a", inits=[terminated("x:1")])
    pulling["metadata"].update(fresh)
    api.states = [
        None,
        (daemonset(1), [pulling]),
        (daemonset(1), [pod("a", ready=True)]),
    ]
    assert run_main(kubeconfig) == 0
    out = capsys.readouterr().out
    assert "DaemonSet not found (yet)" in out
    assert "0 of 1 nodes have the images; waiting for a: 1/3 images pulled" in out
    assert "done after" in out
    pod_lists = [r for r in api.requests if r[0].endswith("/pods")]
    assert pod_lists[0][1]["labelSelector"] == ["app.kubernetes.io/component=hook-image-puller"]
    assert all(r[2] == "Bearer secret-token" for r in api.requests)


def test_main_forbidden_is_a_clear_failure(
    fake_api: tuple[FakeApi, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    api, kubeconfig = fake_api
    api.status_override = 403
    assert run_main(kubeconfig) == 1
    assert "HTTP 403" in capsys.readouterr().out


def test_main_times_out(fake_api: tuple[FakeApi, Path], capsys: pytest.CaptureFixture[str]) -> None:
    api, kubeconfig = fake_api
    api.states = [(daemonset(1), [pod("a", inits=[waiting("y:2", "ImagePullBackOff")])])]
    assert run_main(kubeconfig, "--timeout", "0.2") == 1
    assert "timed out after 0s" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--daemonset", "x", "--namespace", "n", "--interval", "0"],
                     "--interval must be > 0", id="interval"),
        pytest.param(["--daemonset", "x", "--kubeconfig", "/nonexistent/kubeconfig",
                      "--namespace", "n"], "cannot configure the Kubernetes client",
                     id="bad-kubeconfig"),
        pytest.param(["--namespace", "n"], "the following arguments are required: --daemonset",
                     id="missing-daemonset"),
        pytest.param(["--daemonset", "x", "--timeout", "soon"], "invalid _seconds_or_none",
                     id="bad-timeout"),
    ],
)  # fmt: skip
def test_main_rejects_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pullers.main(argv) == 2
    assert message in capsys.readouterr().err


def test_main_needs_a_namespace_outside_a_pod(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.setattr(pullers, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "absent")
    assert pullers.main(["--daemonset", "x"]) == 2
    assert "--namespace is required" in capsys.readouterr().err


def test_namespace_from_service_account_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    ns_file = tmp_path / "namespace"
    ns_file.write_text("hub-ns\n")
    monkeypatch.setattr(pullers, "SERVICE_ACCOUNT_NAMESPACE", ns_file)
    assert pullers.default_namespace() == "hub-ns"
    monkeypatch.setenv("POD_NAMESPACE", "from-env")
    assert pullers.default_namespace() == "from-env"


@pytest.mark.parametrize(
    ("status", "expect"),
    [
        pytest.param(404, None, id="not-found-is-none"),
        pytest.param(403, ApiRefusedError, id="forbidden-gives-up"),
        pytest.param(401, ApiRefusedError, id="unauthorized-gives-up"),
        pytest.param(500, ApiUnavailableError, id="server-error-retries"),
        pytest.param(429, ApiUnavailableError, id="throttled-retries"),
    ],
)
def test_reader_sorts_api_errors_through_the_shared_client(
    fake_api: tuple[FakeApi, Path], status: int, expect: type[Exception] | None
) -> None:
    api, kubeconfig = fake_api
    api.status_override = status
    kube = connect(kubeconfig=kubeconfig)
    assert kube is not None
    reader = pullers.KubeReader(kube)
    try:
        if expect is None:
            assert reader.read_daemonset("jhub", "hook-image-puller") is None
        else:
            with pytest.raises(expect, match=f"HTTP {status}"):
                reader.read_daemonset("jhub", "hook-image-puller")
            with pytest.raises(expect, match=f"HTTP {status}"):
                reader.list_pods("jhub", "app=x")
    finally:
        kube.close()
    assert len(api.requests) == (1 if expect is None else 2)  # one attempt each, no retries


def test_main_without_cluster_config_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``KUBERNETES_SERVICE_HOST`` alone is not a pod: without the service account token the
    shared ``kube.connect`` finds no config, and the awaiter says what it looked for."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setattr(kube_module, "SERVICE_TOKEN", tmp_path / "no-token")
    assert pullers.main(["--daemonset", "x", "--namespace", "n"]) == 2
    assert "no cluster config found" in capsys.readouterr().err
