"""The pure half of the import: observations -> sessions -> trace rows, selectors, windows."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler_extender.trace.prometheus import Selection, parse_selector, windows
from scheduler_extender.trace.sessions import Observation, assemble, cpu_quantity, iso, merge


def test_merge_keeps_the_earliest_creation_and_deletion_and_the_last_sighting() -> None:
    obs = Observation(created=100, last_seen=500, cpu=0.05)
    merge(obs, Observation(created=100, last_seen=900, deleted=880, memory=2.0**30))
    merge(obs, Observation(last_seen=950, deleted=890, image="img"))
    assert obs == Observation(
        created=100, last_seen=950, deleted=880, cpu=0.05, memory=2.0**30, image="img"
    )


@pytest.mark.parametrize(
    ("obs", "present", "arrival", "end", "is_open"),
    [
        (Observation(created=10, last_seen=50), False, 10, 50, False),
        (Observation(created=10, last_seen=50, deleted=40), False, 10, 40, False),
        # Terminating at --until but deleted before it: closed, even if still exported.
        (Observation(created=10, last_seen=100, deleted=90), True, 10, 90, False),
        (Observation(created=10, last_seen=100), True, 10, 100, True),
        # Deletion after --until: still running at the end.
        (Observation(created=10, last_seen=100, deleted=150), True, 10, 100, True),
        (Observation(created=-50, last_seen=30), False, 0, 30, False),
    ],
    ids=["last-sample", "deletion", "terminating", "open", "deleted-later", "before-since"],
)
def test_session_ends(
    obs: Observation, present: bool, arrival: float, end: float, is_open: bool
) -> None:
    key = ("ns", "jupyter-a", "u1")
    sessions, summary = assemble(
        {key: obs}, since=0, until=100, present_at_end=[key] if present else []
    )
    assert [(s.arrival, s.end, s.open) for s in sessions] == [(arrival, end, is_open)]
    assert summary.open == int(is_open)
    assert summary.started_before == int((obs.created or 0) < 0)


def test_same_name_two_uids_are_two_sessions_and_a_pod_without_creation_is_skipped() -> None:
    pods = {
        ("ns", "jupyter-a", "u2"): Observation(created=60, last_seen=90),
        ("ns", "jupyter-a", "u1"): Observation(created=10, last_seen=50),
        ("ns", "jupyter-b", "u3"): Observation(last_seen=50),
    }
    sessions, summary = assemble(pods, since=0, until=100, present_at_end=[])
    assert [s.uid for s in sessions] == ["u1", "u2"]
    assert summary.recreated_names == 1 and summary.dropped == ["ns/jupyter-b"]
    assert summary.missing_cpu == summary.missing_memory == 2


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("component=singleuser-server", {"label_component": "singleuser-server"}),
        ("hub.jupyter.org/username=ann, app=jupyterhub",
         {"label_hub_jupyter_org_username": "ann", "label_app": "jupyterhub"}),
        ("", {}),
    ],
    ids=["one", "sanitized", "empty"],
)  # fmt: skip
def test_parse_selector(text: str, labels: dict[str, str]) -> None:
    assert parse_selector(text) == labels


@pytest.mark.parametrize("text", ["component", "a!=b", "a==b", "=x"])
def test_parse_selector_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--selector"):
        parse_selector(text)


def test_promql_strings_are_quoted() -> None:
    sel = Selection(namespace='we"ird', labels=None, pod_pattern=r"jupyter-\w+")
    assert sel.matchers() == r'{namespace="we\"ird",pod=~"jupyter-\\w+"}'
    by_label = Selection(labels={"label_component": "singleuser-server"})
    assert by_label.restrict("x", "60000ms") == (
        "(x) and on(namespace, pod) max_over_time(kube_pod_labels{label_component="
        '"singleuser-server"}[60000ms])'
    )


@given(st.integers(0, 10**9), st.integers(1, 10**6), st.integers(0, 300), st.integers(0, 10**6))
def test_windows_tile_the_range(since: int, window: int, whole: int, rest: int) -> None:
    length = window * whole + rest % window or window
    parts = list(windows(since, since + length, window))
    assert parts[0][0] == since and parts[-1][1] == since + length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert all(0 < end - start <= window for start, end in parts)


def test_trace_cells() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1.5) == "1970-01-01T00:00:01.500Z"
    assert cpu_quantity(0.05) == "50m" and cpu_quantity(0.0501) == "51m"
