"""``trace prometheus`` against a real Prometheus (Debian's package) over 127.0.0.1, backfilled
with the history in conftest.py, and the trace it writes replayed by the simulator's reader."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from scheduler_extender.cli import main as cli_main
from scheduler_extender.sim.scenario import scenario_from_data
from scheduler_extender.sim.workload import departure, read_trace
from scheduler_extender.trace.cli import main
from scheduler_extender.trace.sessions import iso
from tests.trace.conftest import PODS, RANGE, SCRAPE, History, Pod


def run(
    history: History, tmp_path: Path, *extra: str, url: str | None = None
) -> list[dict[str, str]]:
    out = tmp_path / "trace.csv"
    code = main(
        ["prometheus", "--url", url or history.url, "--since", iso(history.base),
         "--until", iso(history.base + RANGE), "--out", str(out), *extra]
    )  # fmt: skip
    assert code == 0
    with out.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def expected(history: History, pods: list[Pod]) -> list[dict[str, str]]:
    """What the trace must say about ``pods``, worked out from their definitions."""
    rows = []
    for pod in pods:
        if pod.deletion is not None:
            end, is_open = pod.deletion, ""
        elif pod.gone > RANGE:
            end, is_open = RANGE, "true"
        else:
            end, is_open = pod.gone - SCRAPE, ""  # the last scrape that saw it
        rows.append({
            "arrival": iso(history.base + max(pod.created, 0)),
            "end": iso(history.base + end),
            "cpu": f"{round(sum(pod.cpu) * 1000)}m" if pod.cpu else "",
            "memory": str(int(pod.memory)) if pod.memory is not None else "",
            "image": pod.image,
            "profile": "",
            "open": is_open,
            "namespace": pod.namespace,
            "pod": pod.name,
            "uid": pod.uid,
            "created": iso(history.base + pod.created),
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["arrival"], r["pod"], r["uid"]))


def users_of(namespace: str, component: str | None = "singleuser-server") -> list[Pod]:
    return [
        p
        for p in PODS
        if p.namespace == namespace and p.component == component and p.name.startswith("jupyter-")
    ]


def test_label_selection_boundaries_recreated_pods_and_missing_requests(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = run(history, tmp_path, "--namespace", "hub")
    assert rows == expected(history, users_of("hub"))
    out = capsys.readouterr().out
    assert "selected user pods by pod labels component=singleuser-server" in out
    assert "1 already running at --since" in out
    assert "1 pod names were reused" in out
    assert "no requests exported: cpu for 1, memory for 1 sessions" in out
    assert "still running at --until (open=true): 2" in out
    # The recreated name is two sessions, told apart by uid.
    assert [r["uid"] for r in rows if r["pod"] == "jupyter-alice"] == ["a1", "a2"]


def test_falls_back_to_the_pod_name_pattern_and_says_so(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = run(history, tmp_path, "--namespace", "plain")
    assert rows == expected(history, users_of("plain", component=None))
    out = capsys.readouterr().out
    assert "selected user pods by pod name matching 'jupyter-.*' in namespace plain" in out
    assert "--metric-labels-allowlist=pods=[component]" in out
    # A custom pattern picks other pods.
    rows = run(history, tmp_path, "--namespace", "plain", "--pod-name-pattern", "web-.*")
    assert [r["pod"] for r in rows] == ["web-1"]


def test_all_namespaces_by_name(history: History, tmp_path: Path) -> None:
    rows = run(history, tmp_path, "--selector", "")
    names = {(r["namespace"], r["pod"], r["uid"]) for r in rows}
    assert names == {(p.namespace, p.name, p.uid) for p in PODS if p.name.startswith("jupyter-")}


def test_a_range_over_max_samples_is_split_with_the_same_result(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = run(history, tmp_path, "--namespace", "hub")
    capsys.readouterr()
    split = run(history, tmp_path, "--namespace", "hub", url=history.limited_url)
    assert split == whole
    summary = capsys.readouterr().out
    splits = int(summary.split(" split ")[0].rsplit(", ", 1)[1])
    assert splits > 0, summary


def test_the_trace_replays_in_the_simulator(history: History, tmp_path: Path) -> None:
    run(history, tmp_path, "--namespace", "hub")
    scenario = scenario_from_data(
        {"name": "t", "duration": "6h",
         "users": {"profiles": [{"name": "p", "cpu": "250m", "memory": "2Gi"}]}},
        "t",
    )  # fmt: skip
    users = read_trace(tmp_path / "trace.csv", scenario)
    assert len(users) == len(users_of("hub"))
    assert users[0].arrival == 0.0  # jupyter-early, clipped to --since
    noreq = [u for u in users if u.cpu == 250]
    assert len(noreq) == 1 and noreq[0].memory == 2 * 2**30  # the profile's requests
    still = [u for u in users if u.open]
    assert len(still) == 2
    assert all(departure(u, scenario, u.arrival) == 6 * 3600.0 for u in still)  # the trace end


def test_registered_in_the_cli(history: History, tmp_path: Path) -> None:
    out = tmp_path / "via-cli.csv"
    code = cli_main(
        ["trace", "prometheus", "--url", history.url, "--namespace", "plain",
         "--since", iso(history.base), "--until", iso(history.base + RANGE), "--out", str(out)]
    )  # fmt: skip
    assert code == 0 and out.read_text(encoding="utf-8").count("jupyter-bob") == 1
