"""A frozen extender is detected: the chart's own liveness probe against a real server.

kube-scheduler waits ``httpTimeout`` on every call to an extender that accepts connections and
never answers (issue 12). The chart's liveness probe must notice, so it must go through the
event loop that serves the verbs. Here a real server (``serve.run_servers``, both listeners,
real HTTP on 127.0.0.1) has its event loop blocked from inside
(tests/extender/frozen_extender.py), and the probe command rendered by the chart is run for real
against it: it fails after its answer deadline (the connection is accepted, nothing answers),
and it passes again once the loop runs."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chart.conftest import render_values
from tests.chart.test_scheduler import extender_container, go_seconds, scheduler_config

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int, method: str, path: str, timeout: float, body: bytes = b"") -> bool:
    """True when ``path`` answers 200 within ``timeout`` seconds; False on a timeout."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body or None, {"Content-Type": "application/json"})
        return conn.getresponse().status == 200
    except TimeoutError:
        return False
    finally:
        conn.close()


class Probe:
    """The chart's rendered liveness probe for an extender on ``port`` (loopback: exec)."""

    def __init__(self, port: int) -> None:
        docs = render_values({"scheduling": {"userScheduler": {"extender": {"port": port}}}})
        self.spec = extender_container(docs)["livenessProbe"]
        self.http_timeout = go_seconds(scheduler_config(docs)["extenders"][0]["httpTimeout"])
        command = self.spec["exec"]["command"]
        assert command[0] == "python"  # the image's python; here the test's interpreter
        self.command = [sys.executable, *command[1:]]
        self.deadline = float(command[-1])  # the answer deadline the probe gives the server

    def run(self) -> tuple[bool, float, str]:
        """(passed, seconds taken, stderr), the kubelet's timeoutSeconds enforced."""
        env = {"PATH": os.environ.get("PATH", "")}
        start = time.monotonic()
        done = subprocess.run(self.command, env=env, capture_output=True, text=True,
                              timeout=self.spec["timeoutSeconds"], check=False)  # fmt: skip
        return done.returncode == 0, time.monotonic() - start, done.stderr


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    port, ops = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.extender.frozen_extender", str(port), str(ops)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _ready(port, ops):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"server did not start: {proc.communicate()[0]}")
            time.sleep(0.05)
        yield proc, port, ops
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _ready(port: int, ops: int) -> bool:
    try:
        return _answers(port, "GET", "/healthz", 1) and _answers(ops, "GET", "/healthz", 1)
    except OSError:  # not listening yet
        return False


def _freeze(port: int, ops: int) -> socket.socket:
    """Send ``POST /test/freeze`` and wait until the loop is stuck in it: /healthz on the
    ops listener stops answering. Returns the request's socket (kept open)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /test/freeze HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    deadline = time.monotonic() + 10
    while _answers(ops, "GET", "/healthz", 0.2):
        assert time.monotonic() < deadline, "the freeze request never blocked the loop"
    return sock


def test_the_liveness_probe_fails_on_a_frozen_loop_and_passes_on_a_running_one(
    server: tuple[subprocess.Popen[str], int, int],
) -> None:
    proc, port, ops = server
    probe = Probe(port)
    prioritize = (GOLDEN / "prioritize_names.request.json").read_bytes()

    passed, _, stderr = probe.run()
    assert passed, stderr
    assert _answers(port, "POST", "/prioritize", probe.http_timeout, prioritize)

    held = _freeze(port, ops)
    try:
        # The verb kube-scheduler calls gets no answer within its httpTimeout: this is the hang
        # the probe must see.
        assert not _answers(port, "POST", "/prioritize", probe.http_timeout, prioritize)
        passed, took, stderr = probe.run()
        assert not passed
        assert "timed out" in stderr  # accepted, never answered; not "connection refused"
        assert took >= probe.deadline
        # (The ops listener, on the same loop, stopped answering too: _freeze waited for that.)
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")  # thaw
        proc.stdin.flush()
        held.close()

    passed, _, stderr = probe.run()
    assert passed, stderr
    assert _answers(port, "POST", "/prioritize", probe.http_timeout, prioritize)
