"""The survival estimate (core.lifetime) and the drain term it feeds (core.drain)."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.drain import EMPTY_COST, Drain, drain_cost, prior_of
from scheduler_extender.core.lifetime import (
    AGE_CLASSES,
    FIRST_AGE_CLASS,
    LIFETIME_GRID,
    LifetimePrior,
    empirical_survival,
    fit,
    lifetime_bin,
)
from scheduler_extender.core.policy import PolicyConfig
from scheduler_extender.core.scoring import raw_scores, score_nodes
from scheduler_extender.core.snapshot import node_info
from scheduler_extender.core.types import Pod, Snapshot
from tests.factories import GI, MI, node, placeholder, pod, snapshot

NO_DATA = [0] * len(LIFETIME_GRID)
PRIOR = LifetimePrior(median=600, sigma=1.0, timeout=600, every=60, weight=20)


def counts_of(lifetimes: list[float]) -> list[int]:
    counts = [0] * len(LIFETIME_GRID)
    for t in lifetimes:
        counts[lifetime_bin(t)] += 1
    return counts


# --- bins ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "index"),
    [(-5.0, 0), (math.nan, 0), (0.0, 0), (59.9, 0), (60.0, 1), (74.9, 1), (75.0, 2), (1e9, 49)],
)
def test_lifetime_bins(seconds: float, index: int) -> None:
    assert lifetime_bin(seconds) == index


def test_empirical_survival_counts_what_lasted_past_each_edge() -> None:
    counts = counts_of([30.0, 100.0, 100.0, 5000.0])
    survival = empirical_survival(counts)
    assert survival[0] == 1.0
    assert survival[1] == 0.75  # 30 s ended before 60 s
    k = next(i for i, t in enumerate(LIFETIME_GRID) if t > 100.0)
    assert survival[k] == 0.25
    assert survival[-1] == 0.0


# --- the prior ---------------------------------------------------------------------------------


def test_prior_lives_at_least_the_timeout_and_at_most_max_age() -> None:
    prior = LifetimePrior(median=600, sigma=1.0, timeout=3600, every=600, max_age=6 * 3600)
    assert prior.survival(3600) == 1.0
    assert prior.survival(3600 + 300 + 600) == pytest.approx(0.5)  # offset + median
    assert prior.survival(6 * 3600 + 300) == 0.0
    assert LifetimePrior(sigma=0.0, median=600, timeout=0, every=0).survival(599) == 1.0
    assert LifetimePrior(sigma=0.0, median=600, timeout=0, every=0).survival(601) == 0.0


def test_without_data_the_model_is_the_prior() -> None:
    model = fit(NO_DATA, PRIOR)
    assert model.observations == 0
    for t in (0.0, 700.0, 1500.0, 4000.0):
        assert model.survival_at(t) == pytest.approx(PRIOR.survival(t), abs=0.02)
    # Mean of 630 s + lognormal(600 s, 1): 630 + 600 * e^0.5 = 1619 s (grid error allowed).
    assert model.mean == pytest.approx(630 + 600 * math.exp(0.5), rel=0.03)


def test_data_takes_over_from_the_prior() -> None:
    # Every session lasted exactly 2 hours: after 2,000 of them the prior (weight 20) is noise.
    model = fit(counts_of([7200.0] * 2000), PRIOR)
    assert model.observations == 2000
    assert model.survival_at(3600) == pytest.approx(1.0, abs=0.01)
    assert model.survival_at(9000) == pytest.approx(0.0, abs=0.01)
    assert 6500 < model.mean < 8000


@pytest.mark.parametrize(
    ("counts", "prior", "problem"),
    [
        ([0] * 3, PRIOR, "counts: expected 50 bins"),
        ([-1] + [0] * (len(LIFETIME_GRID) - 1), PRIOR, "counts: bin counts must be >= 0"),
        (NO_DATA, replace(PRIOR, weight=-1), "prior.weight"),
        (NO_DATA, replace(PRIOR, median=math.inf), "prior.median"),
        (NO_DATA, replace(PRIOR, timeout=-1), "prior.timeout"),
    ],
)
def test_bad_input_names_the_field(counts: list[int], prior: LifetimePrior, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        fit(counts, prior)


# --- residual life and drain cost ----------------------------------------------------------------


def heavy_tailed_model() -> tuple[list[float], float]:
    rng = random.Random(7)
    lifetimes = [600 + math.exp(rng.gauss(math.log(600), 1.2)) for _ in range(5000)]
    return lifetimes, fit(counts_of(lifetimes), PRIOR).mean


def test_heavy_tail_old_sessions_have_longer_remaining_life() -> None:
    lifetimes, _ = heavy_tailed_model()
    model = fit(counts_of(lifetimes), PRIOR)
    # Past the culler's fixed part, the longer a session has lasted the longer it will last.
    assert model.residual(3600) < model.residual(2 * 3600) < model.residual(4 * 3600)
    # And the drain cost (what a newcomer adds to a node kept up by such a session) falls.
    assert model.cost(3600) > model.cost(2 * 3600) > model.cost(4 * 3600)
    # The empirical residual at 1 h agrees with the data within the grid's resolution.
    alive = [t - 3600 for t in lifetimes if t > 3600]
    assert model.residual(3600) == pytest.approx(sum(alive) / len(alive), rel=0.15)


def test_costs_lie_in_0_1_and_a_burst_shares_one_class() -> None:
    model = fit(counts_of(heavy_tailed_model()[0]), PRIOR)
    assert all(0.0 <= c <= 1.0 for c in model.costs)
    assert len(model.costs) == len(AGE_CLASSES)
    assert model.cost(0) == model.cost(FIRST_AGE_CLASS - 1) == model.cost(-30)


def test_a_session_past_every_observed_lifetime_costs_like_an_empty_node() -> None:
    model = fit(counts_of([1000.0] * 500), replace(PRIOR, weight=0))
    assert model.cost(40 * 86400) == 1.0


def test_exponential_lifetimes_have_no_age_signal() -> None:
    # Memoryless lifetimes: the remaining life does not depend on age, so neither does the cost
    # (up to the grid's resolution): the drain term then changes nothing but empty vs occupied.
    rng = random.Random(3)
    model = fit(
        counts_of([rng.expovariate(1 / 3600) for _ in range(20000)]), replace(PRIOR, weight=0)
    )
    costs = [model.cost(a) for a in (600, 1800, 3600, 7200)]
    assert max(costs) - min(costs) < 0.08
    assert model.residual(600) == pytest.approx(model.residual(7200), rel=0.2)


# --- the drain term in scoring ------------------------------------------------------------

NOW = 1_704_067_200.0 + 12 * 3600
DRAIN_CFG = PolicyConfig(drain_weight=1.0, drain_cohorts=False)


def test_prior_of_reads_the_policy() -> None:
    cfg = PolicyConfig(
        session_median_seconds=300, culler_timeout_seconds=900, culler_max_age_seconds=7200
    )
    prior = prior_of(cfg)
    assert (prior.median, prior.timeout, prior.max_age) == (300, 900, 7200)


def test_empty_node_costs_most_and_old_sessions_keep_a_node_busy() -> None:
    model = fit(counts_of(heavy_tailed_model()[0]), PRIOR)
    drain = Drain(NOW, model)
    old = node_info(node("old"), [pod(node_name="old", created=NOW - 4 * 3600)])
    young = node_info(node("young"), [pod(node_name="young", created=NOW - 900)])
    empty = node_info(node("empty"))
    assert drain_cost(empty, drain) == EMPTY_COST
    assert drain_cost(old, drain, cohorts=False) < drain_cost(young, drain, cohorts=False) < 1.0
    # Scoring: the half-empty node kept up by a 4-hour session wins over the young one.
    snap = snapshot(
        [node("old"), node("young")],
        [pod(node_name="old", created=NOW - 4 * 3600),
         pod(node_name="young", created=NOW - 900), pod(node_name="young", created=NOW - 900)],
    )  # fmt: skip
    with_drain = dict(score_nodes(pod(), ["old", "young"], snap, DRAIN_CFG, drain).scores)
    without = dict(score_nodes(pod(), ["old", "young"], snap, DRAIN_CFG).scores)
    assert with_drain == {"old": 10, "young": 9}
    assert without == {"old": 9, "young": 10}


def test_placeholders_neither_count_as_sessions_nor_pay_the_drain_cost() -> None:
    model = fit(NO_DATA, PRIOR)
    drain = Drain(NOW, model)
    only_placeholders = node_info(node("n"), [placeholder("n")])
    assert drain_cost(only_placeholders, drain) == EMPTY_COST
    infos = [node_info(node("a")), node_info(node("b"), [pod(node_name="b", created=NOW)])]
    ph = placeholder()
    assert raw_scores(ph, infos, DRAIN_CFG, drain) == raw_scores(ph, infos, DRAIN_CFG)


# --- properties ----------------------------------------------------------------------------

MODEL = fit(counts_of(heavy_tailed_model()[0]), PRIOR)

loads = st.lists(st.integers(min_value=0, max_value=40), min_size=2, max_size=12)


def _cluster(counts: list[int], age: float, sizes: list[int]) -> Snapshot:
    nodes = [node(f"n{i}", created=float(i)) for i in range(len(counts))]
    pods = [
        pod(node_name=f"n{i}", created=NOW - age, memory=sizes[(i + k) % len(sizes)] * MI)
        for i, count in enumerate(counts)
        for k in range(count)
    ]
    return snapshot(nodes, pods)


@settings(max_examples=60, deadline=None)
@given(
    counts=loads,
    age=st.floats(min_value=0, max_value=10 * 3600),
    sizes=st.lists(st.integers(min_value=64, max_value=2048), min_size=1, max_size=4),
    weight=st.floats(min_value=0.05, max_value=5.0),
    cohorts=st.booleans(),
)
def test_same_age_sessions_score_exactly_as_most_allocated(
    counts: list[int], age: float, sizes: list[int], weight: float, cohorts: bool
) -> None:
    """Static packing (every session the same age): the drain term never changes the order."""
    snap = _cluster(counts, age, sizes)
    names = sorted(snap.nodes)
    cfg = PolicyConfig(drain_weight=weight, drain_cohorts=cohorts)
    plain = score_nodes(pod(), names, snap, PolicyConfig()).scores
    drained = score_nodes(pod(), names, snap, cfg, Drain(NOW, MODEL)).scores
    assert drained == plain


@settings(max_examples=60, deadline=None)
@given(
    ages=st.lists(
        st.lists(st.floats(min_value=0, max_value=30 * 3600), max_size=6), min_size=1, max_size=10
    ),
    weight=st.floats(min_value=0, max_value=10),
    cohorts=st.booleans(),
    all_sessions=st.booleans(),
)
def test_scores_are_0_10_and_deterministic(
    ages: list[list[float]], weight: float, cohorts: bool, all_sessions: bool
) -> None:
    nodes = [node(f"n{i}") for i in range(len(ages))]
    pods = [pod(node_name=f"n{i}", created=NOW - a) for i, group in enumerate(ages) for a in group]
    snap = snapshot(nodes, pods)
    names = [n.name for n in nodes]
    cfg = PolicyConfig(drain_weight=weight, drain_cohorts=cohorts, drain_all_sessions=all_sessions)
    first = score_nodes(pod(), names, snap, cfg, Drain(NOW, MODEL)).scores
    again = score_nodes(pod(), names, snapshot(nodes, pods), cfg, Drain(NOW, MODEL)).scores
    assert first == again
    assert all(0 <= s <= 10 for _, s in first)


@pytest.mark.parametrize(
    "cfg",
    [PolicyConfig(drain_weight=1.0), PolicyConfig(drain_weight=10.0, drain_all_sessions=True)],
    ids=["oldest-session", "all-sessions"],
)
def test_sequential_pods_pack_like_most_allocated(cfg: PolicyConfig) -> None:
    """12 users arriving one a minute on nodes of 4: the drain term keeps them on 3 nodes,
    as MostAllocated does (a burst's sessions share the first age class), whichever estimate
    it uses."""
    nodes = [node(f"n{i}", cpu=200, memory=4 * GI, created=float(i)) for i in range(6)]
    placed: list[Pod] = []
    for k in range(12):
        now = NOW + 60 * k
        snap = snapshot(nodes, placed)
        names = [n.name for n in nodes if sum(1 for p in placed if p.node_name == n.name) < 4]
        scored = score_nodes(pod(), names, snap, cfg, Drain(now, MODEL)).scores
        best = max(scored, key=lambda item: item[1])[0]
        placed.append(pod(node_name=best, created=now))
    assert len({p.node_name for p in placed}) == 3
