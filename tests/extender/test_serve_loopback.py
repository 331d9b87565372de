"""The real command over real HTTP on 127.0.0.1: `scheduler-extender serve` as a process."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


SERVE = [sys.executable, "-m", "scheduler_extender.cli", "serve"]
#: The golden state file, quiet logs: what most tests serve.
GOLDEN_STATE = ["--state-file", str(GOLDEN / "cluster.yaml"), "--log-level", "warning"]


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_ok(port: int, path: str, seconds: float = 30) -> bool:
    """Poll ``GET path`` until it answers 200; False if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _serve_result(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = _free_port()
    proc = _spawn("--port", str(port), *GOLDEN_STATE)
    if not _wait_ok(port, "/healthz"):
        proc.kill()
        pytest.fail(f"server did not start: {proc.communicate()[0]}")
    yield port, proc
    proc.terminate()
    proc.wait(timeout=10)


def test_golden_pairs_over_real_http(server: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = server
    for verb, case in [("filter", "filter_names"), ("prioritize", "prioritize_names"),
                       ("preempt", "preempt_meta")]:  # fmt: skip
        status, body = _post(port, f"/{verb}", (GOLDEN / f"{case}.request.json").read_bytes())
        assert status == 200
        expected = json.loads((GOLDEN / f"{case}.response.json").read_text())
        assert json.loads(body) == expected


def test_garbage_then_good_request_on_the_same_server(
    server: tuple[int, subprocess.Popen[str]],
) -> None:
    port, proc = server
    status, body = _post(port, "/prioritize", b"\x00\xff garbage")
    assert status == 400
    assert b"invalid JSON" in body
    status, _ = _post(port, "/prioritize", (GOLDEN / "prioritize_names.request.json").read_bytes())
    assert status == 200
    assert proc.poll() is None  # still running


def test_startup_says_which_state_it_serves_and_prints_a_curl_example() -> None:
    port = _free_port()
    proc = _spawn("--port", str(port))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        third = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "serving embedded demo snapshot (5 nodes, 43 pods)" in first
    assert f"http://127.0.0.1:{port}" in first
    assert "Try it" in second
    assert third.strip().startswith(f"curl -s http://127.0.0.1:{port}/prioritize")


def test_invalid_settings_exit_2_with_the_field_named() -> None:
    result = _serve_result("--port", "0")
    assert result.returncode == 2
    assert "port" in result.stderr


def test_metrics_port_serves_metrics_but_never_the_verbs() -> None:
    port, ops = _free_port(), _free_port()
    proc = _spawn(
        "--port", str(port), "--metrics-port", str(ops), "--metrics-host", "127.0.0.1",
        *GOLDEN_STATE,
    )  # fmt: skip
    try:
        if not _wait_ok(ops, "/readyz"):
            pytest.fail("metrics listener did not start")
        status, _ = _post(
            port, "/prioritize", (GOLDEN / "prioritize_names.request.json").read_bytes()
        )
        assert status == 200
        conn = http.client.HTTPConnection("127.0.0.1", ops, timeout=5)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        assert 'scheduler_extender_requests_total{outcome="ok",verb="prioritize"} 1.0' in metrics
        for verb in ("prioritize", "bind"):
            status, _ = _post(ops, f"/{verb}", b"{}")
            assert status == 404
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then the signal is re-raised: both listeners stop.
        assert proc.wait(timeout=15) == -signal.SIGTERM


@pytest.mark.parametrize("setting", ["port", "metrics_port"])
def test_a_port_in_use_is_one_clear_line_naming_the_setting(setting: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        free = str(_free_port())
        port, ops = (busy, free) if setting == "port" else (free, busy)
        result = _serve_result(
            "--port", port, "--metrics-port", ops, "--host", "127.0.0.1",
            "--metrics-host", "127.0.0.1", *GOLDEN_STATE,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"scheduler-extender serve: cannot listen on 127.0.0.1:{busy} ({setting}): "
        "Address already in use"
    ), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_metrics_port_equal_to_port_is_refused() -> None:
    port = str(_free_port())
    result = _serve_result("--port", port, "--metrics-port", port, *GOLDEN_STATE)
    assert result.returncode == 2
    assert "metrics_port" in result.stderr and "must differ from port" in result.stderr
    assert "Traceback" not in result.stderr
