"""The pure capacity model: fit, exact overflow risk, Monte Carlo agreement, recommendation."""

from __future__ import annotations

import random
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.capacity import (
    Constraint,
    HeavyShape,
    NodeSpace,
    UsageModel,
    UserRequests,
    fit_users,
    heavy_users_to_overflow,
    irwin_hall_tail,
    max_users_within,
    node_demand,
    overflow_probability,
    recommend,
    sample_overflow,
)

G = 10**9
MI = 1024**2


# --- fit -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "user", "users", "binding"),
    [
        (NodeSpace(4000, 26 * G, 110), UserRequests(50, 512 * 10**6), 50, (Constraint.MEMORY,)),
        (NodeSpace(1000, 100 * G, 110), UserRequests(100, G), 10, (Constraint.CPU,)),
        (NodeSpace(64000, 100 * G, 110), UserRequests(0, 100 * MI), 110, (Constraint.PODS,)),
        (
            NodeSpace(4000, 4 * G, 110),
            UserRequests(1000, G),
            4,
            (Constraint.CPU, Constraint.MEMORY),
        ),
        (NodeSpace(4000, -5, 110), UserRequests(50, G), 0, (Constraint.MEMORY,)),
    ],
    ids=["memory-binds", "cpu-binds", "pods-bind-no-cpu-request", "tie", "overfull-node"],
)
def test_fit_users(
    space: NodeSpace, user: UserRequests, users: int, binding: tuple[Constraint, ...]
) -> None:
    fit = fit_users(space, user)
    assert fit.users == users
    assert fit.binding == binding


def test_no_request_never_limits() -> None:
    fit = fit_users(NodeSpace(1, 1, 7), UserRequests(0, 0))
    assert fit.per_constraint[Constraint.CPU] is None
    assert fit.per_constraint[Constraint.MEMORY] is None
    assert fit.users == 7


@given(
    cpu=st.integers(-1000, 10**6),
    memory=st.integers(-(10**9), 10**13),
    pods=st.integers(-5, 800),
    req_cpu=st.integers(0, 10**5),
    req_mem=st.integers(0, 10**11),
)
def test_fit_is_the_most_that_fits(
    cpu: int, memory: int, pods: int, req_cpu: int, req_mem: int
) -> None:
    space, user = NodeSpace(cpu, memory, pods), UserRequests(req_cpu, req_mem)
    fit = fit_users(space, user)
    n = fit.users
    assert 0 <= n <= max(pods, 0)
    assert n * req_cpu <= max(cpu, 0)
    assert n * req_mem <= max(memory, 0)
    # one more user breaks every binding constraint
    need = {Constraint.CPU: (req_cpu, cpu), Constraint.MEMORY: (req_mem, memory)}
    for c in fit.binding:
        if c is Constraint.PODS:
            assert n + 1 > pods
        else:
            req, avail = need[c]
            assert (n + 1) * req > avail


# --- exact risk against hand-computed values -------------------------------------------------


@pytest.mark.parametrize(
    ("k", "x", "tail"),
    [
        (0, Fraction(0), Fraction(0)),
        (0, Fraction(-1), Fraction(1)),
        (1, Fraction(1, 4), Fraction(3, 4)),
        (2, Fraction(1, 2), Fraction(7, 8)),
        (2, Fraction(1), Fraction(1, 2)),
        (2, Fraction(3, 2), Fraction(1, 8)),
        (3, Fraction(1), Fraction(5, 6)),
        (3, Fraction(3, 2), Fraction(1, 2)),
        (3, Fraction(2), Fraction(1, 6)),
        (4, Fraction(4), Fraction(0)),
    ],
    ids=str,
)
def test_irwin_hall_tail_hand_values(k: int, x: Fraction, tail: Fraction) -> None:
    """P(U1+...+Uk > x): by geometry (triangle for k=2) and F_3(1) = 1/6, symmetry at k/2."""
    assert irwin_hall_tail(k, x) == tail


def _binomial_tail(n: int, p: Fraction, at_least: int) -> Fraction:
    return 1 - sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(at_least))


@pytest.mark.parametrize(
    ("model", "users", "capacity", "expected"),
    [
        # 2 users, fair coin, any heavy one overflows: 1 - 1/4
        (UsageModel(0, 2, Fraction(1, 2)), 2, 1, Fraction(3, 4)),
        # 3 users, overflow needs 2 heavy: (3 + 1) / 8
        (UsageModel(0, 1, Fraction(1, 2)), 3, 1, Fraction(1, 2)),
        # the guide's node: 50 users at 1G, heavy at 10G, 100G; overflow needs 6 heavy
        (
            UsageModel(G, 10 * G, Fraction(1, 10)),
            50,
            100 * G,
            _binomial_tail(50, Fraction(1, 10), 6),
        ),
        (UsageModel(G, 10 * G, Fraction(1, 5)), 50, 100 * G, _binomial_tail(50, Fraction(1, 5), 6)),
        # base use alone overflows
        (UsageModel(3 * G, 4 * G, Fraction(0)), 40, 100 * G, Fraction(1)),
        # everyone heavy still fits
        (UsageModel(G, 2 * G, Fraction(1)), 50, 100 * G, Fraction(0)),
        # uniform: 2 users each heavy for sure, U(0,1) GB each, overflow above 1.5 GB -> 1/8
        (UsageModel(0, G, Fraction(1), HeavyShape.UNIFORM), 2, 3 * G // 2, Fraction(1, 8)),
        # uniform with p = 1/2: P(K=1)*P(U>1) + P(K=2)*P(U1+U2>1) = 0 + 1/4 * 1/2
        (UsageModel(0, G, Fraction(1, 2), HeavyShape.UNIFORM), 2, G, Fraction(1, 8)),
    ],
    ids=[
        "two-users-one-heavy",
        "three-users-two-heavy",
        "guide-50-users-p0.1",
        "guide-50-users-p0.2",
        "base-overflows",
        "all-heavy-fits",
        "uniform-both-heavy",
        "uniform-coin",
    ],
)
def test_overflow_probability_exact(
    model: UsageModel, users: int, capacity: int, expected: Fraction
) -> None:
    assert overflow_probability(model, users, capacity) == expected


def test_guide_binomial_tails_match_published_tables() -> None:
    """Standard binomial tables: P(X <= 5) = 0.6161 for Bin(50, 0.1) and 0.0480 for
    Bin(50, 0.2), so overflow (6 or more heavy) is 0.3839 and 0.9520."""
    p1 = overflow_probability(UsageModel(G, 10 * G, Fraction(1, 10)), 50, 100 * G)
    p2 = overflow_probability(UsageModel(G, 10 * G, Fraction(1, 5)), 50, 100 * G)
    assert round(float(p1), 4) == 0.3839
    assert round(float(p2), 4) == 0.9520


def test_guide_demand_140gb() -> None:
    """optimization.md: 10 of 50 users load 10GB: (10 * 10GB) + (40 * 1GB) = 140GB > 100GB."""
    assert node_demand(50, 10, G, 10 * G) == 140 * G
    model = UsageModel(G, 10 * G, Fraction(1, 10))
    assert heavy_users_to_overflow(model, 50, 100 * G) == 6  # 50 + 6 * 9 = 104 > 100
    assert node_demand(50, 5, G, 10 * G) <= 100 * G < node_demand(50, 6, G, 10 * G)


# --- Monte Carlo agrees with the exact sum ---------------------------------------------------


@pytest.mark.parametrize(
    ("model", "users", "capacity", "seed"),
    [
        (UsageModel(G, 10 * G, Fraction(1, 10)), 50, 100 * G, 1),
        (UsageModel(G, 20 * G, Fraction(1, 10), HeavyShape.UNIFORM), 50, 100 * G, 2),
        (UsageModel(300 * MI, 4096 * MI, Fraction(1, 20), HeavyShape.UNIFORM), 45, 23197 * MI, 3),
        (UsageModel(512 * MI, 2048 * MI, Fraction(3, 10)), 30, 23197 * MI, 4),
    ],
    ids=["guide-spike", "guide-uniform-20G-limit", "z2jh-uniform", "spike-30-users"],
)
def test_monte_carlo_agrees_with_exact(
    model: UsageModel, users: int, capacity: int, seed: int
) -> None:
    exact = float(overflow_probability(model, users, capacity))
    est = sample_overflow(model, users, capacity, 20_000, random.Random(seed))
    assert est.draws == 20_000
    # within 4 standard errors (plus a floor for estimates near 0 or 1)
    assert abs(est.probability - exact) <= 4 * est.standard_error + 2e-3


def test_monte_carlo_is_reproducible_with_a_seed() -> None:
    model = UsageModel(G, 10 * G, Fraction(1, 10))
    a = sample_overflow(model, 50, 100 * G, 2000, random.Random(7))
    b = sample_overflow(model, 50, 100 * G, 2000, random.Random(7))
    assert a == b


# --- invariants ------------------------------------------------------------------------------

models = st.builds(
    lambda base, extra, p, shape: UsageModel(base, base + extra, p, shape),
    st.integers(0, 4 * G),
    st.integers(0, 8 * G),
    st.fractions(0, 1, max_denominator=100),
    st.sampled_from(list(HeavyShape)),
)


@settings(max_examples=60, deadline=None)
@given(model=models, users=st.integers(0, 40), capacity=st.integers(0, 100 * G))
def test_risk_is_a_probability_non_decreasing_in_users(
    model: UsageModel, users: int, capacity: int
) -> None:
    here = overflow_probability(model, users, capacity)
    assert 0 <= here <= 1
    assert here <= overflow_probability(model, users + 1, capacity)
    assert overflow_probability(model, users, capacity + G) <= here


@settings(max_examples=60, deadline=None)
@given(model=models, users=st.integers(0, 30), capacity=st.integers(0, 100 * G))
def test_uniform_heavy_is_never_riskier_than_spike(
    model: UsageModel, users: int, capacity: int
) -> None:
    spike = UsageModel(model.base, model.heavy, model.p_heavy, HeavyShape.SPIKE)
    uniform = UsageModel(model.base, model.heavy, model.p_heavy, HeavyShape.UNIFORM)
    assert overflow_probability(uniform, users, capacity) <= overflow_probability(
        spike, users, capacity
    )


@settings(max_examples=60, deadline=None)
@given(
    model=models.filter(lambda m: m.heavy > m.base),
    users=st.integers(1, 30),
    capacity=st.integers(0, 100 * G),
)
def test_uniform_overflow_equals_the_direct_irwin_hall_sum(
    model: UsageModel, users: int, capacity: int
) -> None:
    """The one-pass integer sum equals sum_k Binomial(k) * irwin_hall_tail(k, x), term by term
    the textbook formula."""
    uniform = UsageModel(model.base, model.heavy, model.p_heavy, HeavyShape.UNIFORM)
    slack = capacity - users * model.base
    if slack < 0:
        return
    x = Fraction(slack, model.heavy - model.base)
    p = model.p_heavy
    direct = sum(
        comb(users, k) * p**k * (1 - p) ** (users - k) * irwin_hall_tail(k, x)
        for k in range(users + 1)
    )
    assert overflow_probability(uniform, users, capacity) == direct


@given(st.integers(1, 25), st.fractions(0, 25, max_denominator=50))
def test_irwin_hall_symmetry(k: int, x: Fraction) -> None:
    if x <= k:
        assert irwin_hall_tail(k, x) + irwin_hall_tail(k, k - x) == 1


@settings(max_examples=40, deadline=None)
@given(
    model=models,
    memory=st.integers(G, 200 * G),
    cpu=st.integers(100, 64000),
    req_cpu=st.integers(0, 2000),
    target=st.fractions(Fraction(1, 1000), Fraction(1, 2), max_denominator=1000),
)
def test_recommendation_is_the_densest_within_target(
    model: UsageModel, memory: int, cpu: int, req_cpu: int, target: Fraction
) -> None:
    space = NodeSpace(cpu, memory, 110)
    rec = recommend(space, UserRequests(req_cpu, G), model, target)
    ceiling = fit_users(space, UserRequests(req_cpu, 0)).users
    assert rec.users <= ceiling
    assert overflow_probability(model, rec.users, memory) <= target
    if rec.users < ceiling:
        assert overflow_probability(model, rec.users + 1, memory) > target
    if rec.users == 0:
        assert rec.guarantee_max is None
        return
    assert rec.guarantee_max is not None
    assert fit_users(space, UserRequests(req_cpu, rec.guarantee_max)).users == rec.users
    if rec.bound_by is Constraint.MEMORY:
        assert rec.guarantee_min is not None
        assert fit_users(space, UserRequests(req_cpu, rec.guarantee_min)).users == rec.users
        assert fit_users(space, UserRequests(req_cpu, rec.guarantee_min - 1)).users > rec.users


def test_max_users_within_on_the_guide_node() -> None:
    """100 GB for users, 1 GB base, 10 GB spikes with p = 0.1: the largest packing whose
    overflow probability is at most 1%, checked against the binomial tails on either side."""
    model = UsageModel(G, 10 * G, Fraction(1, 10))
    n = max_users_within(model, 100 * G, Fraction(1, 100), 110)
    assert overflow_probability(model, n, 100 * G) <= Fraction(1, 100)
    assert overflow_probability(model, n + 1, 100 * G) > Fraction(1, 100)
    assert 10 <= n <= 50


def test_usage_model_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="base <= heavy"):
        UsageModel(2, 1, Fraction(1, 2))
    with pytest.raises(ValueError, match="p_heavy"):
        UsageModel(1, 2, Fraction(3, 2))
