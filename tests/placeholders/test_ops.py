"""The controller's operations port over loopback HTTP (review finding I9): ``/healthz``
follows the loop, ``/readyz`` the informers, ``/metrics`` the registry; a port in use is one
line and exit 2."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from scheduler_extender.placeholders.cli import main
from scheduler_extender.placeholders.controller import PlaceholderController
from scheduler_extender.placeholders.ops import OpsServer
from tests.fakeapi import FakeApiServer
from tests.placeholders.conftest import Factory, config, eventually


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def serve(c: PlaceholderController) -> OpsServer:
    return OpsServer(
        0, c.registry, healthz=c.liveness, readyz=c.readiness, host="127.0.0.1"
    ).start()


def test_probes_follow_the_controller(make_controller: Factory) -> None:
    c = make_controller(start=False)
    ops = serve(c)
    try:
        assert get(ops.port, "/healthz") == (503, "threads not running: not started\n")
        status, body = get(ops.port, "/readyz")
        assert status == 503 and body.startswith("not listed yet: placeholders, nodes")
        c.start()
        eventually(lambda: get(ops.port, "/readyz")[0] == 200, what="ready once listed")
        eventually(lambda: get(ops.port, "/readyz")[1] == "ok (leader)\n")
        assert get(ops.port, "/healthz") == (200, "ok\n")
        status, metrics = get(ops.port, "/metrics")
        assert status == 200 and "scheduler_extender_placeholders_reconciles_total" in metrics
        assert get(ops.port, "/nope")[0] == 404
        # A loop that stopped going round (resync 0.5 s: the limit is 61 s).
        tick = c.loop_tick
        assert tick is not None
        c.loop_tick = tick - 120
        status, body = get(ops.port, "/healthz")
        assert status == 503 and body.startswith("reconcile loop stuck for")
        c.shutdown()
        assert get(ops.port, "/healthz") == (503, "stopping\n")
    finally:
        ops.close()


def test_metrics_port_in_use_is_one_line_and_exit_2(
    server: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = config(metricsPort=port).model_dump(by_alias=True, exclude_none=True)
        path = tmp_path / "placeholders.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        argv = ["--config", str(path), "--kubeconfig", str(kubeconfig)]
        assert main([*argv, "--ops-address", "127.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"scheduler-extender placeholders: cannot listen on metricsPort 127.0.0.1:{port}: "
        "Address already in use"
    ]
