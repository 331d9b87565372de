"""The chart's defence against a hung extender (docs/install.md, "A hung extender").

``httpTimeout`` must clear the measured verb latency with a margin and still keep a hung
extender's cost per pod small; the liveness probe must restart a frozen extender within
seconds. The figures are the ones benchmarks/README.md reports (2-core machine).
tests/extender/test_frozen_loop.py runs the rendered probe against a real frozen server.
"""

from __future__ import annotations

import pytest

from tests.chart.conftest import Obj, render_values, rendered
from tests.chart.test_scheduler import extender_container, go_seconds, scheduler_config

#: /prioritize p99 at 5,000 nodes with the machine busy (load 1.8), and the worst single call
#: seen during a full relist of 5,000 nodes / 150,000 pods (benchmarks/README.md).
P99_5000_NODES_BUSY_S = 0.0238
RELIST_MAX_S = 0.158
#: The longest full GC collection measured during that relist.
LONGEST_GC_S = 0.123
#: A class starting at once (DESIGN.md's classroom spike).
CLASS = 300


def test_http_timeout_clears_measured_latency_and_bounds_a_hang() -> None:
    timeout = go_seconds(scheduler_config(rendered("defaults"))["extenders"][0]["httpTimeout"])
    assert timeout >= 10 * P99_5000_NODES_BUSY_S
    assert timeout >= 1.5 * RELIST_MAX_S
    # A hung but alive extender costs the class at most two minutes in all (1s: five).
    assert timeout * CLASS <= 120


def _answer_deadline(probe: Obj) -> float:
    """How long the probe waits for /healthz: urllib's timeout in the in-container probe, the
    kubelet's timeoutSeconds for httpGet."""
    if "exec" in probe:
        return float(probe["exec"]["command"][-1])
    return float(probe["timeoutSeconds"])


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"], ids=["exec", "httpGet"])
def test_liveness_restarts_a_frozen_extender_within_seconds(host: str) -> None:
    docs = render_values({"scheduling": {"userScheduler": {"extender": {"host": host}}}})
    probe = extender_container(docs)["livenessProbe"]
    deadline = _answer_deadline(probe)
    assert ("exec" in probe) is (host == "127.0.0.1")
    # Worst case: frozen just after a success; failureThreshold probes one period apart each
    # wait the deadline, then the container gets its probe-level grace before SIGKILL (a
    # frozen loop never acts on SIGTERM; the pod's 30 s would apply without it).
    worst = probe["periodSeconds"] * probe["failureThreshold"] + deadline
    worst += probe["terminationGracePeriodSeconds"]
    assert worst <= 15
    # Not trigger-happy: two misses in a row, each far longer than a GC pause.
    assert probe["failureThreshold"] >= 2
    assert deadline >= 10 * LONGEST_GC_S
    # The kubelet must not cut the probe short of its own deadline (the exec probe also
    # starts an interpreter), and a probe must end before the next one starts.
    assert deadline <= probe["timeoutSeconds"] < probe["periodSeconds"]
    if "exec" in probe:
        assert probe["timeoutSeconds"] >= deadline + 1
