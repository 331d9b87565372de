"""Forecast count mode (pure): learning arrivals by time of week, the look-ahead demand, the
plan's degradation to adaptive, and the persisted form (round trip, corrupt and old input)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.forecast import (
    PROFILE_VERSION,
    WEEK,
    ArrivalProfile,
    ProfileError,
    bucket_index,
    covered,
    empty_profile,
    expected_arrivals,
    fold_arrivals,
    forecast_demand,
    profile_from_dict,
    profile_to_dict,
)
from scheduler_extender.core.placeholders import (
    CountMode,
    CountSpec,
    PoolObservation,
    PoolSpec,
    SizeMode,
    plan_pool,
)
from scheduler_extender.core.types import Pod, Resources
from tests.factories import MI

MONDAY = 1_767_571_200.0  # 2026-01-05 00:00 UTC, a Monday
HOUR = 3600.0


def class_weeks(weeks: int, at: float, count: int, over: float = 300.0) -> list[float]:
    """``count`` arrivals evenly over ``over`` seconds at ``at`` seconds into each of the
    ``weeks`` weeks before MONDAY."""
    out = []
    for k in range(weeks, 0, -1):
        start = MONDAY - k * WEEK + at
        out += [start + over * i / count for i in range(count)]
    return sorted(out)


def learned(arrivals: list[float], weeks: int, alpha: float = 0.3) -> ArrivalProfile:
    return fold_arrivals(
        empty_profile(300), arrivals, observed_since=MONDAY - weeks * WEEK, until=MONDAY,
        alpha=alpha,
    )  # fmt: skip


# --- learning ---------------------------------------------------------------------------


def test_buckets_start_on_monday_local_time() -> None:
    p = empty_profile(3600)
    assert bucket_index(p, MONDAY) == 0
    assert bucket_index(p, MONDAY + 25 * HOUR) == 25
    east = empty_profile(3600, utc_offset=2 * HOUR)  # UTC+2: local Monday starts at 22:00 UTC
    assert bucket_index(east, MONDAY - 2 * HOUR) == 0


def test_first_week_is_taken_as_is_then_exponentially_weighted() -> None:
    p = fold_arrivals(
        empty_profile(3600),
        [MONDAY + 9 * HOUR + 60 * i for i in range(10)],
        observed_since=MONDAY,
        until=MONDAY + WEEK,
        alpha=0.5,
    )
    assert p.counts[9] == 10 and p.seen[9] == 1 and p.seen[10] == 1 and p.counts[10] == 0
    p = fold_arrivals(
        p,
        [MONDAY + WEEK + 9 * HOUR + 60 * i for i in range(30)],
        observed_since=MONDAY + WEEK,
        until=MONDAY + 2 * WEEK,
        alpha=0.5,
    )
    assert p.counts[9] == pytest.approx(20.0)  # 0.5 * 10 + 0.5 * 30
    assert p.seen[9] == 2
    assert p.through == MONDAY + 2 * WEEK


def test_folding_is_idempotent_and_skips_unobserved_time() -> None:
    arrivals = [MONDAY + 9 * HOUR + 60 * i for i in range(10)]
    once = fold_arrivals(
        empty_profile(3600), arrivals, observed_since=MONDAY + 8 * HOUR, until=MONDAY + 12 * HOUR
    )
    twice = fold_arrivals(once, arrivals, observed_since=MONDAY, until=MONDAY + 12 * HOUR)
    assert twice == once
    # Buckets before the caller started watching are not learned as quiet ones.
    assert once.seen[7] == 0 and once.seen[8] == 1 and once.seen[11] == 1 and once.seen[12] == 0
    # An incomplete bucket waits for the next fold.
    partial = fold_arrivals(
        empty_profile(3600), arrivals, observed_since=MONDAY, until=MONDAY + 9.5 * HOUR
    )
    assert partial.seen[9] == 0 and partial.through == MONDAY + 9 * HOUR


def test_fold_rejects_a_bad_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        fold_arrivals(empty_profile(), [], observed_since=0, until=WEEK, alpha=0)


# --- the demand ---------------------------------------------------------------------------


def test_expected_arrivals_spread_each_bucket_evenly() -> None:
    p = learned(class_weeks(2, 9 * HOUR, 300), weeks=2)
    assert expected_arrivals(p, MONDAY + 9 * HOUR, MONDAY + 9 * HOUR + 300) == pytest.approx(300)
    assert expected_arrivals(p, MONDAY + 9 * HOUR + 150, MONDAY + 10 * HOUR) == pytest.approx(150)
    assert expected_arrivals(p, MONDAY + 8 * HOUR, MONDAY + 9 * HOUR) == 0
    # Next Monday's class is the same bucket of the week.
    nxt = MONDAY + WEEK + 9 * HOUR
    assert expected_arrivals(p, nxt, nxt + 300) == pytest.approx(300)


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        pytest.param(2 * 600 + 1, 0.0, id="more-than-two-leads-ahead: nothing yet"),
        pytest.param(2 * 600 - 300, 300.0, id="within-two-leads: the whole class"),
        pytest.param(600, 300.0, id="one-lead-ahead"),
        pytest.param(0, 300.0, id="class-starting"),
        pytest.param(-300, 0.0, id="class-over"),
    ],
)
def test_demand_rises_one_lead_time_ahead_of_the_ramp(before: float, expected: float) -> None:
    """A class of 300 at 09:00 (5 minutes), lead 10 minutes: placeholders that need 10 minutes
    to become room must be there when the class comes, so the demand covers [s, s + lead] for
    s up to one lead ahead: it sees the class from 08:40 on."""
    p = learned(class_weeks(3, 9 * HOUR, 300), weeks=3)
    now = MONDAY + 9 * HOUR - before
    assert forecast_demand(p, now, 600) == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(0, 40), min_size=168, max_size=168),
    offset=st.floats(0, WEEK),
    lead=st.floats(1, 6 * HOUR),
)
def test_demand_is_the_max_of_the_window_sums(
    counts: list[int], offset: float, lead: float
) -> None:
    """The closed form (kinks only) equals a brute-force scan over start instants."""
    p = ArrivalProfile(3600, tuple(float(c) for c in counts), (1,) * 168)
    now = MONDAY + offset
    scan = max(expected_arrivals(p, now + lead * i / 400, now + lead * i / 400 + lead)
               for i in range(401))  # fmt: skip
    assert forecast_demand(p, now, lead) >= scan - 1e-6
    assert forecast_demand(p, now, lead) <= scan + max(counts) * (lead / 400) / 3600 + 1e-6


def test_coverage_counts_weeks_per_bucket() -> None:
    p = learned(class_weeks(1, 9 * HOUR, 10), weeks=1)
    assert covered(p, MONDAY + 8 * HOUR, MONDAY + 10 * HOUR, 1)
    assert not covered(p, MONDAY + 8 * HOUR, MONDAY + 10 * HOUR, 2)
    assert not covered(empty_profile(), MONDAY, MONDAY + 60, 1)


# --- the plan -----------------------------------------------------------------------------

USER = Resources(50, 512 * MI, 1)
TEMPLATE = Pod(uid="t", requests=USER, priority=-10, placeholder=True)


def forecast_pool(**count: Any) -> PoolSpec:
    spec = CountSpec(mode=CountMode.FORECAST, max=1000, safety=1.0, ready_default=300, **count)
    return PoolSpec("user", TEMPLATE, SizeMode.USER, spec)


def test_plan_holds_the_expected_class_ahead_of_time() -> None:
    p = learned(class_weeks(3, 9 * HOUR, 300), weeks=3)
    pool = forecast_pool()
    quiet = plan_pool(pool, PoolObservation(profile=p), MONDAY + 8 * HOUR)
    # Lead 300 s (the default node-ready time): from 08:55 on, [s, s + lead] for s up to one
    # lead ahead covers the whole class.
    ahead = plan_pool(pool, PoolObservation(profile=p), MONDAY + 9 * HOUR - 250)
    assert quiet.desired == 0
    assert ahead.desired == 300 and ahead.forecast == pytest.approx(300)
    assert "forecast" in ahead.reason


def test_a_foreseen_burst_is_not_counted_twice_but_a_surprise_is() -> None:
    """During the class, the arrivals the profile expected do not add a burst reaction; the
    same arrivals on a day the profile expects nothing are met as adaptive meets them."""
    p = learned(class_weeks(3, 9 * HOUR, 300), weeks=3)
    now = MONDAY + 9 * HOUR + 120
    arrivals = tuple(MONDAY + 9 * HOUR + i for i in range(120))  # 120 in the first 2 minutes
    pool = forecast_pool(scale_down_delay=0)
    foreseen = plan_pool(pool, PoolObservation(arrivals, profile=p), now)
    adaptive = replace_mode(pool, CountMode.ADAPTIVE)
    burst = plan_pool(adaptive, PoolObservation(arrivals), now).desired
    assert burst >= 200  # 1 arrival/s x 300 s lead
    assert foreseen.desired < burst
    tuesday = now + 86400.0
    shifted = tuple(t + 86400.0 for t in arrivals)
    surprise = plan_pool(pool, PoolObservation(shifted, profile=p), tuesday)
    assert surprise.desired >= burst


def replace_mode(pool: PoolSpec, mode: CountMode) -> PoolSpec:
    from dataclasses import replace

    return replace(pool, count=replace(pool.count, mode=mode))


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        pytest.param(None, "no learned profile", id="no-profile"),
        pytest.param(empty_profile(), "too little history", id="empty-profile"),
    ],
)
def test_missing_history_degrades_to_adaptive(profile: ArrivalProfile | None, reason: str) -> None:
    arrivals = tuple(MONDAY + 9 * HOUR + 10 * i for i in range(60))  # 6/min for 10 minutes
    now = MONDAY + 9 * HOUR + 600
    pool = forecast_pool()
    plan = plan_pool(pool, PoolObservation(arrivals, profile=profile), now)
    adaptive = plan_pool(replace_mode(pool, CountMode.ADAPTIVE), PoolObservation(arrivals), now)
    assert reason in plan.reason
    assert plan.desired == adaptive.desired > 0


def test_min_weeks_gates_the_profile() -> None:
    p = learned(class_weeks(1, 9 * HOUR, 300), weeks=1)
    now = MONDAY + 9 * HOUR - 250
    assert plan_pool(forecast_pool(), PoolObservation(profile=p), now).desired == 300
    strict = plan_pool(forecast_pool(forecast_min_weeks=2), PoolObservation(profile=p), now)
    assert strict.desired == 0 and "too little history" in strict.reason


# --- persisted form -----------------------------------------------------------------------


def test_round_trip_through_json() -> None:
    p = learned(class_weeks(3, 9 * HOUR, 37), weeks=3, alpha=0.25)
    text = json.dumps(profile_to_dict(p))
    back = profile_from_dict(json.loads(text))
    assert back.seen == p.seen and back.through == p.through
    assert back.bucket_seconds == p.bucket_seconds and back.utc_offset == p.utc_offset
    assert all(math.isclose(a, b, abs_tol=1e-3) for a, b in zip(back.counts, p.counts, strict=True))
    assert profile_to_dict(back) == profile_to_dict(p)


def _good() -> dict[str, Any]:
    return profile_to_dict(empty_profile(3600))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"version": PROFILE_VERSION - 1}, "version: 0 is older", id="older"),
        pytest.param({"version": PROFILE_VERSION + 1}, "version: 2 is newer", id="newer"),
        pytest.param({"version": "1"}, "version: expected an integer", id="version-type"),
        pytest.param({"bucketSeconds": 7}, "bucketSeconds", id="tiny-bucket"),
        pytest.param({"bucketSeconds": 1000}, "bucketSeconds", id="bucket-not-dividing"),
        pytest.param({"counts": [0.0] * 3}, "counts: expected a list of 168", id="short-counts"),
        pytest.param({"counts": [0.0] * 167 + [-1.0]}, "counts.167", id="negative-count"),
        pytest.param({"counts": [0.0] * 167 + ["x"]}, "counts.167", id="string-count"),
        pytest.param({"seen": [0] * 167 + [1.5]}, "seen.167", id="fractional-seen"),
        pytest.param({"through": float("nan")}, "through", id="nan-through"),
        pytest.param({"utcOffset": None}, "utcOffset", id="missing-offset"),
    ],
)
def test_corrupt_or_old_input_is_a_clear_error(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ProfileError, match=field.replace(".", r"\.")):
        profile_from_dict({**_good(), **change})


@pytest.mark.parametrize("data", [None, [], "profile", {"counts": []}], ids=repr)
def test_not_a_profile_at_all(data: object) -> None:
    with pytest.raises(ProfileError):
        profile_from_dict(data)


def test_missing_version_is_reported() -> None:
    data = _good()
    del data["version"]
    with pytest.raises(ProfileError, match="version"):
        profile_from_dict(data)
