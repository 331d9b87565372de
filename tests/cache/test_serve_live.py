"""``serve`` picks live state when a cluster config is found, says so, and serves from it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler_extender.extender.serve import NoClusterError, choose_state
from scheduler_extender.extender.settings import Settings
from scheduler_extender.kube.client import KubeConfigError
from tests.cache.conftest import Probe, eventually
from tests.factories import pod_json
from tests.fakeapi import NODES, FakeApiServer


@pytest.fixture
def no_cluster_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment with no cluster config anywhere: empty HOME, no $KUBECONFIG, not a pod."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("how", "settings", "source"),
    [
        pytest.param("flag", {}, "live", id="kubeconfig-setting"),
        pytest.param("env", {}, "live", id="KUBECONFIG"),
        pytest.param("home", {}, "live", id="home-kube-config"),
        pytest.param("flag", {"live_state": "off"}, "demo", id="live-state-off"),
        pytest.param("none", {}, "demo", id="nothing-found"),
    ],
)
def test_choose_state(
    how: str,
    settings: dict[str, object],
    source: str,
    server: FakeApiServer,
    no_cluster_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = server.write_kubeconfig(no_cluster_env / "kc")
    if how == "flag":
        settings = {**settings, "kubeconfig": path}
    elif how == "env":
        monkeypatch.setenv("KUBECONFIG", f"{no_cluster_env / 'missing'}{os.pathsep}{path}")
    elif how == "home":
        (no_cluster_env / ".kube").mkdir()
        path.rename(no_cluster_env / ".kube" / "config")
    serving = choose_state(Settings(**settings))  # type: ignore[arg-type]
    if source == "live":
        assert serving.live is not None and serving.binder is None
        assert serving.state.describe().startswith("live cluster state from kubeconfig")
    else:
        assert serving.live is None
        assert serving.state.describe().startswith("embedded demo snapshot")
        assert serving.why


def test_live_state_on_without_a_cluster_is_an_error(no_cluster_env: Path) -> None:
    with pytest.raises(NoClusterError, match="no cluster config found"):
        choose_state(Settings(live_state="on"))


@pytest.mark.parametrize(
    ("content", "context", "match"),
    [
        pytest.param("::: not yaml", None, "cannot load cluster config", id="garbage"),
        pytest.param(None, "nope", "cannot load cluster config", id="unknown-context"),
    ],
)
def test_bad_cluster_config_is_a_clear_error(
    server: FakeApiServer, no_cluster_env: Path, content: str | None, context: str, match: str
) -> None:
    path = server.write_kubeconfig(no_cluster_env / "kc")
    if content is not None:
        path.write_text(content)
    with pytest.raises(KubeConfigError, match=match):
        choose_state(Settings(kubeconfig=path, kube_context=context))


def test_bind_enabled_gives_a_binder(server: FakeApiServer, no_cluster_env: Path) -> None:
    path = server.write_kubeconfig(no_cluster_env / "kc")
    assert choose_state(Settings(kubeconfig=path, bind_enabled=True)).binder is not None


def test_serve_command_against_the_fake_cluster(server: FakeApiServer, tmp_path: Path) -> None:
    """The real CLI: says it serves live state, turns ready, scores the cluster's nodes."""
    path = server.write_kubeconfig(tmp_path / "kc")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "scheduler_extender.cli", "serve", "--kubeconfig", str(path),
           "--port", str(port), "--bind-enabled", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "serving live cluster state from kubeconfig" in first, first
        assert "bind enabled" in first
        probe = Probe(port, [])

        def ready() -> bool:
            try:
                return probe.get("/readyz") == (200, "ok\n")
            except OSError:
                return False

        eventually(ready, 20, "the served extender to become ready")
        names = sorted(n["metadata"]["name"] for n in server.store.items(NODES))
        status, scores = probe.post("/prioritize", {"Pod": pod_json(), "NodeNames": names})
        assert status == 200 and sorted(s["Host"] for s in scores) == names
        metrics = probe.get("/metrics")[1]
        assert 'scheduler_extender_cache_synced{kind="pods"} 1.0' in metrics
        # SIGTERM (what the kubelet sends): a graceful stop that stops the live cache's threads
        # before the process dies of the signal, as uvicorn's convention has it.
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
        assert proc.returncode == -signal.SIGTERM
        assert rest.rstrip().endswith("scheduler-extender: stopped"), rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
