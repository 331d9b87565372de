"""The controller's config: what the chart renders is valid, bad values name their field, and
the command runs as a real process against the local API server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler_extender.cli import main as cli_main
from scheduler_extender.placeholders.config import ConfigError, parse_config
from scheduler_extender.placeholders.pods import template_pod
from tests.chart.conftest import VALUES_SETS, objects, rendered
from tests.fakeapi import LEASES, FakeApiServer
from tests.placeholders.conftest import NS, config, count_is, eventually

BASE: dict[str, Any] = {
    "namespace": "jhub",
    "leaseName": "hub-placeholders",
    "schedulerName": "user-scheduler",
    "priorityClassName": "hub-user-placeholder",
    "image": "registry.k8s.io/pause:3.10",
    "resyncSeconds": 60,
    "pools": [{"name": "default", "requests": {"memory": "512Mi"}}],
}


def with_pool(**pool: Any) -> dict[str, Any]:
    return {**BASE, "pools": [{"name": "default", **pool}]}


@pytest.mark.parametrize("values", list(VALUES_SETS))
def test_every_config_the_chart_renders_is_valid(values: str) -> None:
    maps = [o for o in objects(rendered(values), "ConfigMap") if "placeholders.yaml" in o["data"]]
    for cm in maps:
        cfg = parse_config(yaml.safe_load(cm["data"]["placeholders.yaml"]), values)
        assert cfg.pools, "the chart always renders at least the default pool"
        for pool in cfg.pools:
            template_pod(cfg, pool)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(with_pool(count={"mode": "sometimes"}), "pools.0.count.mode",
                     id="mode"),
        pytest.param(with_pool(count={"mode": "adaptive", "min": 5, "max": 2}),
                     "min (5) must be <= max (2)", id="min-max"),
        pytest.param(with_pool(requests={"memory": "lots"}), "memory: invalid quantity",
                     id="quantity"),
        pytest.param(with_pool(count={"mode": "schedule", "windows": [
            {"days": ["Mon"], "start": "25:00", "end": "26:00", "count": 1}]}),
            "pools.0.count.windows.0", id="window-time"),
        pytest.param(with_pool(count={"mode": "schedule", "windows": [
            {"days": ["Someday"], "start": "17:00", "end": "18:00", "count": 1}]}),
            "pools.0.count.windows.0.days.0", id="window-day"),
        pytest.param(with_pool(count={"mode": "schedule"}), "needs at least one window",
                     id="schedule-without-windows"),
        pytest.param(with_pool(count={"mode": "static", "maximum": 3}),
                     "pools.0.count.maximum: Extra inputs", id="unknown-key"),
        pytest.param(with_pool(size="rack"), "pools.0.size", id="size"),
        pytest.param({**BASE, "pools": [{"name": "a"}, {"name": "a"}]},
                     "pool names must be unique: a", id="duplicate-pools"),
        pytest.param(with_pool(name="Bad Name"), "not a DNS label", id="pool-name"),
        pytest.param({**BASE, "timezone": "Mars/Olympus"}, "unknown time zone", id="timezone"),
        pytest.param({**BASE, "leaderElection": {"leaseDurationSeconds": 5,
                                                 "renewDeadlineSeconds": 10}},
                     "leaseDurationSeconds must be greater", id="lease-order"),
        pytest.param({k: v for k, v in BASE.items() if k != "leaseName"}, "leaseName: Field "
                     "required", id="missing-lease"),
        pytest.param(with_pool(nodeFraction=1.5), "pools.0.nodeFraction", id="fraction"),
        pytest.param({**BASE, "owner": {"kind": "ConfigMap", "name": "x"}},
                     "a ConfigMap has apiVersion v1", id="owner-api-version"),
        # Review finding I10: every kind of bad number or empty name names its field.
        pytest.param(with_pool(count={"static": -1}), "pools.0.count.static: Input should be "
                     "greater than or equal to 0", id="negative-static"),
        pytest.param(with_pool(count={"max": -3}), "pools.0.count.max: Input should be greater",
                     id="negative-max"),
        pytest.param(with_pool(count={"readySamples": 0}), "pools.0.count.readySamples",
                     id="zero-samples"),
        pytest.param(with_pool(count={"burstMinArrivals": 0}),
                     "pools.0.count.burstMinArrivals", id="zero-burst"),
        pytest.param(with_pool(count={"rateWindowSeconds": 0}),
                     "pools.0.count.rateWindowSeconds", id="zero-rate-window"),
        pytest.param(with_pool(count={"safety": float("nan")}),
                     "pools.0.count.safety: Input should be a finite number", id="nan-safety"),
        pytest.param(with_pool(count={"safety": float("inf")}),
                     "pools.0.count.safety: Input should be a finite number", id="inf-safety"),
        pytest.param({**BASE, "resyncSeconds": float("inf")},
                     "resyncSeconds: Input should be a finite number", id="inf-resync"),
        pytest.param({**BASE, "resyncSeconds": 0}, "resyncSeconds: Input should be greater",
                     id="zero-resync"),
        pytest.param(with_pool(count={"nodeReadySeconds": float("nan")}),
                     "pools.0.count.nodeReadySeconds", id="nan-ready"),
        pytest.param(with_pool(count={"nodeReadyMinSeconds": 900, "nodeReadyMaxSeconds": 60}),
                     "nodeReadyMinSeconds (900) must be <= nodeReadyMaxSeconds (60)",
                     id="ready-range"),
        pytest.param(with_pool(nodeFraction=0), "pools.0.nodeFraction", id="zero-fraction"),
        pytest.param({**BASE, "leaderElection": {"retryPeriodSeconds": -1}},
                     "leaderElection.retryPeriodSeconds", id="negative-retry"),
        pytest.param({**BASE, "metricsPort": 70000}, "metricsPort", id="port"),
        pytest.param(with_pool(name=""), "pools.0.name: '' is not a DNS label", id="empty-pool"),
        pytest.param({**BASE, "leaseName": ""}, "leaseName: '' is not a valid", id="empty-lease"),
        pytest.param({**BASE, "namespace": ""}, "namespace: '' is not a valid",
                     id="empty-namespace"),
        pytest.param({**BASE, "priorityClassName": ""}, "priorityClassName: '' is not a valid",
                     id="empty-priority-class"),
        pytest.param({**BASE, "image": ""}, "image: String should have at least 1 character",
                     id="empty-image"),
        pytest.param({**BASE, "schedulerName": ""}, "schedulerName: String should have at "
                     "least 1", id="empty-scheduler"),
        pytest.param({**BASE, "owner": {"name": ""}}, "owner.name: String should have at "
                     "least 1", id="empty-owner"),
    ],
)  # fmt: skip
def test_bad_config_names_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(data, "test")


def test_time_zones_work_without_the_system_zone_database(tmp_path: Path) -> None:
    """Slim images may have no /usr/share/zoneinfo; the tzdata package stands in, so a
    schedule window in Europe/Berlin still validates (a fresh process with an empty TZ path)."""
    script = (
        "import os, zoneinfo\n"
        "from scheduler_extender.placeholders.config import parse_config\n"
        "assert not any(os.path.isdir(p) for p in zoneinfo.TZPATH), zoneinfo.TZPATH\n"
        f"cfg = parse_config({{**{BASE!r}, 'timezone': 'Europe/Berlin'}})\n"
        "print(cfg.timezone)\n"
    )
    env = {**os.environ, "PYTHONTZPATH": str(tmp_path / "no-zoneinfo-here")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Europe/Berlin"


def test_plain_numbers_are_quantities() -> None:
    cfg = parse_config(with_pool(requests={"cpu": 0.05, "memory": 536870912}))
    req = cfg.pools[0].user_requests()
    assert (req.cpu, req.memory, req.pods) == (50, 512 * 1024**2, 1)


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "placeholders.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_check_flag_validates_and_exits(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert cli_main(["placeholders", "--config", str(write(tmp_path, BASE)), "--check"]) == 0
    assert "config OK: 1 pool(s): default (static, user)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(with_pool(count={"mode": "nope"}), "pools.0.count.mode", id="invalid"),
        pytest.param("a: [", "not valid YAML", id="yaml"),
        pytest.param(None, "cannot read", id="missing"),
        pytest.param(["a list"], "expected a mapping", id="not-a-mapping"),
    ],
)
def test_cli_errors_exit_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, message: str
) -> None:
    path = tmp_path / "placeholders.yaml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif content is not None:
        write(tmp_path, content)
    assert cli_main(["placeholders", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "invalid config" in err and message in err


def test_no_cluster_config_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert cli_main(["placeholders", "--config", str(write(tmp_path, BASE))]) == 2
    assert "no cluster config found" in capsys.readouterr().err


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_command_runs_as_a_process_and_releases_its_lease_on_sigterm(
    server: FakeApiServer, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a free port for the ops server
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = config(metricsPort=port).model_dump(by_alias=True, exclude_none=True)
    path = write(tmp_path, cfg)
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    env = {**os.environ, "POD_NAME": "placeholders-0", "SCHEDULER_EXTENDER_LOG_LEVEL": "info"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler_extender.cli", "placeholders", "--config", str(path),
         "--kubeconfig", str(kubeconfig), "--ops-address", "127.0.0.1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        eventually(count_is(server, 3), timeout=20, what="the process to create 3 placeholders")
        # The probes the chart wires, against the real process.
        eventually(lambda: probe(port, "/healthz") == (200, "ok\n"), what="/healthz")
        eventually(lambda: probe(port, "/readyz") == (200, "ok (leader)\n"), what="/readyz")
        holder = server.store.get(LEASES, NS, "hub-placeholders")["spec"]["holderIdentity"]
        assert holder.startswith("placeholders-0_")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert "created 3 placeholder(s)" in err
    assert "holderIdentity" not in server.store.get(LEASES, NS, "hub-placeholders")["spec"]
