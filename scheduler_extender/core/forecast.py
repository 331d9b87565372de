"""Arrivals by time of week: a learned profile, and what it expects over the next minutes.

Hubs have strong daily and weekly cycles (a class every Monday at 9, quiet weekends).  An
``ArrivalProfile`` holds, for every bucket of the week (5 minutes by default, local time, Monday
00:00 first), the expected number of user pod creations, learned as an exponentially weighted
mean over past weeks: each complete bucket the controller observes moves that bucket's value by
``alpha`` toward what it counted.  ``seen`` counts the weeks each bucket has been observed, so a
hub that started mid-week knows which times it has no history for.

``forecast_demand(profile, now, lead)`` is what the placeholder planner holds room for: users
who arrive before capacity requested now can serve them.  A placeholder needs ``lead`` seconds
(a new node, plus the image pull) to turn into room, so the count needed at a future instant
``s`` must exist from ``s - lead``; the planner takes the largest expected arrivals over
``[s, s + lead]`` for ``s`` in ``[now, now + lead]``: it rises one lead time ahead of a ramp.

``profile_to_dict`` / ``profile_from_dict`` are the persisted form (the controller keeps it in a
ConfigMap), with a ``version`` field; anything malformed, from an older or newer version, raises
``ProfileError`` naming the field, so the caller can log it and fall back to adaptive.

Pure: no clock (times are Unix seconds passed in), no I/O, no JSON text (dicts only).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WEEK = 7 * 86400.0
#: 1970-01-01 (Unix time 0) was a Thursday: the Monday 00:00 before it was 3 days earlier, so
#: a local time plus this is seconds since a Monday 00:00.
_MONDAY_OFFSET = 3 * 86400.0
PROFILE_VERSION = 1
#: A bucket's week count stops growing here (it only says "enough history").
MAX_SEEN = 520


class ProfileError(ValueError):
    """A persisted profile that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class ArrivalProfile:
    """Expected arrivals per bucket of the week (``counts``, Monday 00:00 local first), how many
    weeks each bucket has been observed (``seen``), the bucket length, the UTC offset the buckets
    are in, and the Unix time up to which arrivals have been folded in (``through``)."""

    bucket_seconds: int
    counts: tuple[float, ...]
    seen: tuple[int, ...]
    utc_offset: float = 0.0
    through: float = 0.0

    @property
    def buckets(self) -> int:
        return len(self.counts)


def empty_profile(bucket_seconds: int = 300, utc_offset: float = 0.0) -> ArrivalProfile:
    """A profile that knows nothing yet."""
    _check_bucket(bucket_seconds, "bucket_seconds")
    n = int(WEEK) // bucket_seconds
    return ArrivalProfile(bucket_seconds, (0.0,) * n, (0,) * n, utc_offset, 0.0)


def _check_bucket(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{name}: expected an integer number of seconds, got {value!r}")
    if value < 60 or int(WEEK) % value:
        raise ProfileError(f"{name}: {value} must be >= 60 and divide a week (604800 s)")
    return value


def _local(profile: ArrivalProfile, time: float) -> float:
    """Seconds since a local Monday 00:00 (any week): the profile's timeline."""
    return time + profile.utc_offset + _MONDAY_OFFSET


def bucket_index(profile: ArrivalProfile, time: float) -> int:
    """The bucket of the week that ``time`` (Unix seconds) falls in."""
    local = _local(profile, time)
    return math.floor(local / profile.bucket_seconds) % profile.buckets


# --- learning -----------------------------------------------------------------------------


def fold_arrivals(
    profile: ArrivalProfile,
    arrivals: Sequence[float],
    *,
    observed_since: float,
    until: float,
    alpha: float = 0.3,
) -> ArrivalProfile:
    """Fold every complete bucket in ``[max(profile.through, observed_since), until)`` into the
    profile: ``count = (1 - alpha) * count + alpha * observed`` (the observed count itself when
    the bucket was never seen).  ``arrivals`` are sorted creation times covering at least that
    span; buckets before ``observed_since`` (when the caller was not watching) are left as they
    are, never taken for quiet ones.  Idempotent: folding the same span twice changes nothing."""
    if not 0 < alpha <= 1:
        raise ValueError("alpha must be in (0, 1]")
    size = profile.bucket_seconds
    start = max(profile.through, observed_since)
    # First bucket boundary at or after ``start`` on the local timeline.
    first = math.ceil(_local(profile, start) / size) * size
    last = math.floor(_local(profile, until) / size) * size
    if last <= first:
        return profile
    counts = list(profile.counts)
    seen = list(profile.seen)
    shift = profile.utc_offset + _MONDAY_OFFSET
    edge = first
    while edge < last:
        lo = edge - shift
        hi = lo + size
        observed = bisect_left(arrivals, hi) - bisect_left(arrivals, lo)
        i = int(edge // size) % profile.buckets
        counts[i] = float(observed) if seen[i] == 0 else (1 - alpha) * counts[i] + alpha * observed
        seen[i] = min(MAX_SEEN, seen[i] + 1)
        edge += size
    return ArrivalProfile(size, tuple(counts), tuple(seen), profile.utc_offset, last - shift)


# --- forecasting --------------------------------------------------------------------------


def expected_arrivals(profile: ArrivalProfile, start: float, end: float) -> float:
    """Expected arrivals in ``[start, end)``, each bucket's count spread evenly over it."""
    if end <= start:
        return 0.0
    size = profile.bucket_seconds
    total = 0.0
    t = _local(profile, start)
    stop = _local(profile, end)
    while t < stop:
        edge = (math.floor(t / size) + 1) * size
        upto = min(edge, stop)
        total += profile.counts[int(t // size) % profile.buckets] * (upto - t) / size
        t = upto
    return total


def covered(profile: ArrivalProfile, start: float, end: float, min_weeks: int = 1) -> bool:
    """Whether every bucket overlapping ``[start, end]`` has been seen ``min_weeks`` times."""
    size = profile.bucket_seconds
    first = math.floor(_local(profile, start) / size)
    last = math.floor(_local(profile, end) / size)
    return all(profile.seen[i % profile.buckets] >= min_weeks for i in range(first, last + 1))


def forecast_demand(profile: ArrivalProfile, now: float, lead: float) -> float:
    """The largest expected arrivals over ``[s, s + lead]`` for ``s`` in ``[now, now + lead]``.

    The window sum is piecewise linear in ``s`` with kinks where either end crosses a bucket
    boundary, so its maximum is at one of those instants or at the ends of the range."""
    if lead <= 0:
        return 0.0
    size = profile.bucket_seconds
    shift = profile.utc_offset + _MONDAY_OFFSET
    candidates = {now, now + lead}
    lo = math.ceil(_local(profile, now) / size)
    hi = math.floor(_local(profile, now + 2 * lead) / size)
    for k in range(lo, hi + 1):
        edge = k * size - shift
        for s in (edge, edge - lead):
            if now <= s <= now + lead:
                candidates.add(s)
    return max(expected_arrivals(profile, s, s + lead) for s in candidates)


# --- persisted form -----------------------------------------------------------------------


def profile_to_dict(profile: ArrivalProfile) -> dict[str, Any]:
    """The persisted form (JSON-ready; counts rounded to 1/1000 of an arrival)."""
    return {
        "version": PROFILE_VERSION,
        "bucketSeconds": profile.bucket_seconds,
        "utcOffset": profile.utc_offset,
        "through": profile.through,
        "counts": [round(c, 3) for c in profile.counts],
        "seen": list(profile.seen),
    }


def _finite(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(f"{key}: expected a finite number, got {value!r}")
    return float(value)


def profile_from_dict(data: object) -> ArrivalProfile:
    """A profile from ``profile_to_dict``'s form; ``ProfileError`` naming the field when it is
    malformed or from another version (an older one must be relearned)."""
    if not isinstance(data, Mapping):
        raise ProfileError("profile: expected a mapping")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProfileError(f"version: expected an integer, got {version!r}")
    if version < PROFILE_VERSION:
        raise ProfileError(
            f"version: {version} is older than {PROFILE_VERSION}; the profile must be relearned"
        )
    if version > PROFILE_VERSION:
        raise ProfileError(
            f"version: {version} is newer than {PROFILE_VERSION}, which this release reads"
        )
    size = _check_bucket(data.get("bucketSeconds"), "bucketSeconds")
    n = int(WEEK) // size
    counts = data.get("counts")
    if not isinstance(counts, list) or len(counts) != n:
        raise ProfileError(f"counts: expected a list of {n} numbers (one per bucket)")
    for i, c in enumerate(counts):
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c < 0:
            raise ProfileError(f"counts.{i}: expected a finite number >= 0, got {c!r}")
    seen = data.get("seen")
    if not isinstance(seen, list) or len(seen) != n:
        raise ProfileError(f"seen: expected a list of {n} integers (one per bucket)")
    for i, s in enumerate(seen):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ProfileError(f"seen.{i}: expected an integer >= 0, got {s!r}")
    return ArrivalProfile(
        size,
        tuple(float(c) for c in counts),
        tuple(min(MAX_SEEN, s) for s in seen),
        _finite(data, "utcOffset"),
        _finite(data, "through"),
    )
