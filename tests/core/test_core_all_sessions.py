"""The drain cost from every user session's age (``drain_all_sessions``, ``added_cost``)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.drain import EMPTY_COST, Drain, all_sessions_cost, drain_cost
from scheduler_extender.core.lifetime import LifetimePrior, added_cost, fit
from scheduler_extender.core.policy import PolicyConfig
from scheduler_extender.core.scoring import score_nodes
from scheduler_extender.core.snapshot import node_info
from scheduler_extender.core.types import NodeInfo
from tests.core.test_core_lifetime import counts_of
from tests.factories import node, pod, snapshot

NOW = 1_704_067_200.0 + 12 * 3600
PRIOR = LifetimePrior(median=600, sigma=1.0, timeout=600, every=60, weight=20)
_rng = random.Random(11)
LIFETIMES = [600 + math.exp(_rng.gauss(math.log(600), 1.2)) for _ in range(5000)]
MODEL = fit(counts_of(LIFETIMES), PRIOR)


def _cost(ages: list[float], known: dict[str, float] | None = None) -> float:
    pods = [
        pod(name=f"p{i}", uid=f"p{i}", node_name="n", created=NOW - a) for i, a in enumerate(ages)
    ]
    return all_sessions_cost(node_info(node("n"), pods), Drain(NOW, MODEL, known))


def test_one_session_costs_what_the_oldest_session_estimate_says() -> None:
    # With a single session both estimators integrate the same quantity (on different grids).
    for age in (0.0, 900.0, 3600.0, 4 * 3600.0):
        assert _cost([age]) == pytest.approx(MODEL.cost(age), abs=0.03)


def test_a_node_without_sessions_costs_the_whole_new_session() -> None:
    assert _cost([]) == EMPTY_COST
    assert added_cost([], MODEL.weights) == 1.0


def test_every_session_counts_not_only_the_oldest() -> None:
    # The oldest-session estimate sees no difference between these nodes; with every session
    # counted, ten young users are far more likely to keep the node up than one.
    def info(ages: Sequence[float]) -> NodeInfo:
        pods = [pod(name=f"p{i}", node_name="n", created=NOW - a) for i, a in enumerate(ages)]
        return node_info(node("n"), pods)

    one, eleven = info([4 * 3600, 300]), info([4 * 3600] + [300] * 10)
    drain = Drain(NOW, MODEL)
    assert drain_cost(one, drain, cohorts=False) == drain_cost(eleven, drain, cohorts=False)
    assert all_sessions_cost(eleven, drain) < all_sessions_cost(one, drain)


@settings(max_examples=80, deadline=None)
@given(
    ages=st.lists(st.floats(min_value=0, max_value=20 * 3600), min_size=0, max_size=12),
    extra=st.floats(min_value=0, max_value=20 * 3600),
)
def test_one_more_session_never_raises_the_cost(ages: list[float], extra: float) -> None:
    assert 0.0 <= _cost([*ages, extra]) <= _cost(ages) + 1e-12 <= 1.0 + 1e-12


def test_known_departures_are_used_exactly() -> None:
    # The simulator's survival-exact reference: a user known to stay 10 more hours keeps the
    # node busy past almost any new session (cost near 0); one leaving now leaves the newcomer
    # alone on the node (cost near that of an empty node).
    stays = _cost([60.0], {"p0": NOW + 10 * 3600})
    leaves = _cost([60.0], {"p0": NOW})
    assert stays < 0.05
    assert leaves == pytest.approx(1.0, abs=0.02)
    # Unknown pods fall back to their age.
    assert _cost([60.0], {"other": NOW}) == _cost([60.0])


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=40), min_size=2, max_size=12),
    age=st.floats(min_value=0, max_value=10 * 3600),
    weight=st.floats(min_value=0.05, max_value=50.0),
)
def test_static_packing_of_equal_users_scores_as_most_allocated(
    counts: list[int], age: float, weight: float
) -> None:
    """Every session the same age and size: more users means both more load and a lower cost,
    so the order among candidates is MostAllocated's.  (With users of different sizes the
    all-sessions cost counts heads, not bytes, and may differ: one reason it stays off.)"""
    nodes = [node(f"n{i}", created=float(i)) for i in range(len(counts))]
    pods = [
        pod(node_name=f"n{i}", created=NOW - age) for i, count in enumerate(counts)
        for _ in range(count)
    ]  # fmt: skip
    snap = snapshot(nodes, pods)
    names = sorted(snap.nodes)
    cfg = PolicyConfig(drain_weight=weight, drain_all_sessions=True)
    plain = score_nodes(pod(), names, snap, PolicyConfig()).scores
    drained = score_nodes(pod(), names, snap, cfg, Drain(NOW, MODEL)).scores
    assert drained == plain
