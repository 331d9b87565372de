"""How long user sessions live: a survival estimate learned from the servers that ended.

The extender never knows when a user will leave.  What it can know is how long past sessions
lasted (a pod's deletion time minus its creation time, seen on the watch) and how old each running
session is.  Session lengths on hubs are heavy-tailed (lognormal-like activity plus the culler's
idle timeout): a session that has lasted two hours is likely to last much longer than one that
started two minutes ago.  Google's lifetime-aware VM allocation work (Ling et al., "LAVA:
Lifetime-Aware VM Allocation with Learned Distributions and Adaptation to Mispredictions",
MLSys 2025, arXiv:2412.09840) makes the same point for VMs: predict a *distribution*, and
re-predict the remaining lifetime as a VM ages, instead of trusting one guess made at creation.

This module keeps the estimate small and deterministic:

- Lifetimes are counted in fixed, log-spaced bins (``LIFETIME_GRID``, one minute to 30 days), so
  the shell's learner is a list of integers (``lifetime_bin`` says which to increment).
- ``fit`` turns the counts into a survival function ``S(t) = P(lifetime > t)`` on the grid, as a
  mixture of the empirical survival and a prior (``LifetimePrior``: lognormal activity plus the
  culler's idle timeout, capped by its maximum age) worth ``prior.weight`` observations, so a fresh
  extender with no data behaves sensibly and data takes over as it arrives.
- From ``S`` it tabulates, per age class of a node's *oldest* user session, the **drain cost**
  (``LifetimeModel.cost``): the expected time a new session would add to the node's busy life,
  ``E[(T_new - R)+]``, where ``R`` is the remaining life of that oldest session given its age
  and ``T_new`` a new session's life, divided by the new session's expected life ``E[T_new]`` so
  it lies in 0..1.  An empty node costs 1 (the new session alone keeps it up); a node whose oldest
  session will very likely outlive the newcomer costs about 0.  With independent lifetimes,
  ``E[(T - R)+] = integral of P(R <= t) * P(T > t) dt``.

Only the oldest session is used (``core.drain``; optionally the youngest too): one number per
node (cheap at 5,000 nodes), and the cost is equal on every occupied node when all sessions have
the same age, so packing then decides exactly as MostAllocated would.  Ages are grouped in
classes (the first spans ``FIRST_AGE_CLASS`` seconds), so sessions started seconds apart, as in a
burst, never outweigh a difference in load.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

#: Lifetime bin edges in seconds: 0, then 60 s growing by 25 % per bin up to about 30 days.
LIFETIME_GRID: tuple[float, ...] = (0.0, *(60.0 * 1.25**k for k in range(49)))
#: Ages below this share one class, so a burst's sessions (seconds apart) cost the same.
FIRST_AGE_CLASS = 300.0
#: Age classes: [0, FIRST_AGE_CLASS), then the lifetime grid's edges above it.
AGE_CLASSES: tuple[float, ...] = (0.0, *(t for t in LIFETIME_GRID if t >= FIRST_AGE_CLASS))


#: Where the all-sessions cost (``added_cost``) integrates: the lifetime grid's interval midpoints.
MIDPOINTS: tuple[float, ...] = tuple((a + b) / 2 for a, b in itertools.pairwise(LIFETIME_GRID))

#: A refit is worth its cost (2.4 ms on the project's VM, measured quiet) once this many new
#: lifetimes were seen, and at least this share of those already in the model: early on the
#: estimate moves with every few sessions, later only a sizeable batch changes it.
REFIT_MIN_NEW = 10
REFIT_SHARE = 0.05


def refit_due(fitted: int, observed: int) -> bool:
    """Whether a model fitted on ``fitted`` lifetimes is worth refitting now that ``observed``
    have been seen."""
    return observed - fitted >= max(REFIT_MIN_NEW, REFIT_SHARE * fitted)


def lifetime_bin(seconds: float) -> int:
    """The index of the ``LIFETIME_GRID`` bin a lifetime of ``seconds`` falls in (the last bin
    is open-ended; a negative or NaN lifetime counts as 0)."""
    if not seconds > 0:
        return 0
    return bisect_right(LIFETIME_GRID, seconds) - 1


@dataclass(frozen=True, slots=True)
class LifetimePrior:
    """What to assume before any session has been seen to end.

    A session lives ``activity + timeout`` rounded up to the culler's next pass (on average
    ``every / 2`` later), at most ``max_age`` (+ that rounding) when ``max_age`` > 0; activity is
    lognormal with ``median`` and ``sigma``.  ``weight`` is how many observed lifetimes the prior
    counts as.  Times in seconds.
    """

    median: float = 600.0
    sigma: float = 1.0
    timeout: float = 3600.0
    every: float = 600.0
    max_age: float = 0.0
    weight: float = 20.0

    def survival(self, t: float) -> float:
        """``P(lifetime > t)`` under the prior."""
        offset = self.timeout + self.every / 2
        if self.max_age > 0 and t >= self.max_age + self.every / 2:
            return 0.0
        x = t - offset
        if x <= 0:
            return 1.0
        if self.median <= 0:
            return 0.0
        if self.sigma <= 0:
            return 1.0 if x < self.median else 0.0
        z = (math.log(x) - math.log(self.median)) / (self.sigma * math.sqrt(2.0))
        return 0.5 * math.erfc(z)


@dataclass(frozen=True, slots=True)
class LifetimeModel:
    """A fitted survival estimate and its drain-cost table (see the module docstring)."""

    #: ``S(t)`` at each ``LIFETIME_GRID`` point.
    survival: tuple[float, ...]
    #: The drain cost of each ``AGE_CLASSES`` class, in 0..1.
    costs: tuple[float, ...]
    #: Expected lifetime of a new session (seconds).
    mean: float
    #: How many observed lifetimes went into it.
    observations: int
    #: For the all-sessions cost (``added_cost``): per age class, ``log P(R <= t)`` at each
    #: integration point ``t`` (``-inf`` where it is 0), ``R`` the remaining life of a session
    #: of that class's age.
    ended_log: tuple[tuple[float, ...], ...] = ()
    #: The integration weights: ``dt * S(t) / mean`` at the same points.
    weights: tuple[float, ...] = ()

    def age_class(self, age: float) -> int:
        """The ``AGE_CLASSES`` index of a session ``age`` seconds old."""
        if age < FIRST_AGE_CLASS:
            return 0
        return bisect_right(AGE_CLASSES, age) - 1

    def cost(self, age: float) -> float:
        """The drain cost of a node whose oldest user session is ``age`` seconds old."""
        return self.costs[self.age_class(age)]

    def survival_at(self, t: float) -> float:
        """``S(t)``, linear between grid points, 0 beyond the grid."""
        return _interpolate(self.survival, t)

    def residual(self, age: float) -> float:
        """Expected remaining life of a session that is ``age`` seconds old (0 if the estimate
        says no session lives that long)."""
        alive = self.survival_at(age)
        if alive <= 0:
            return 0.0
        grid = LIFETIME_GRID
        total = 0.0
        prev_t, prev_s = 0.0, 1.0
        for t in grid[1:]:
            s = self.survival_at(age + t) / alive
            total += (t - prev_t) * (s + prev_s) / 2
            prev_t, prev_s = t, s
        return total


def added_cost(ended: Iterable[tuple[Sequence[float], int]], weights: Sequence[float]) -> float:
    """The drain cost of one more session on a node, in 0..1: ``E[(T_new - R_node)+] /
    E[T_new]``, where ``R_node`` is the time until *every* user session on the node has ended
    (independent lifetimes), ``T_new`` the new session's life.

    ``ended`` gives, per group of sessions alike (an age class, or a known departure), the
    group's row of ``log P(R <= t)`` (``LifetimeModel.ended_log``) and its size; ``weights``
    are the model's (``LifetimeModel.weights``).  ``E[(T - R)+] = integral of P(R <= t) *
    P(T > t) dt`` and ``P(R_node <= t)`` is the product of each session's ``P(R_i <= t)``, so
    every session counts, the young as much as the old.  1 for a node without user sessions.
    """
    size = len(weights)
    total = [0.0] * size
    empty = True
    for row, n in ended:
        empty = False
        for k in range(size):
            total[k] += n * row[k]
    if empty:
        return 1.0
    cost = 0.0
    for w, log_p in zip(weights, total, strict=True):
        if log_p > -50.0:
            cost += w * math.exp(log_p)
    return min(1.0, cost)


def _interpolate(values: Sequence[float], t: float) -> float:
    grid = LIFETIME_GRID
    if t <= 0:
        return values[0]
    if t >= grid[-1]:
        return 0.0
    i = bisect_right(grid, t) - 1
    t0, t1 = grid[i], grid[i + 1]
    return values[i] + (values[i + 1] - values[i]) * (t - t0) / (t1 - t0)


def empirical_survival(counts: Sequence[int]) -> tuple[float, ...]:
    """``P(lifetime > t)`` at each grid point from bin counts (a lifetime in bin ``i`` is taken
    at its bin's upper edge, so survival is not underestimated)."""
    total = sum(counts)
    if total <= 0:
        return tuple(1.0 for _ in LIFETIME_GRID)
    out = []
    above = total
    for i in range(len(LIFETIME_GRID)):
        # Lifetimes in bins < i ended at or before grid[i].
        if i > 0:
            above -= counts[i - 1]
        out.append(above / total)
    return tuple(out)


def fit(counts: Sequence[int], prior: LifetimePrior) -> LifetimeModel:
    """The survival estimate from lifetime bin counts (``lifetime_bin``) and the prior.

    Raises ``ValueError`` naming the problem when ``counts`` has the wrong length or a negative
    entry, or the prior is unusable.
    """
    if len(counts) != len(LIFETIME_GRID):
        raise ValueError(f"counts: expected {len(LIFETIME_GRID)} bins, got {len(counts)}")
    if any(c < 0 for c in counts):
        raise ValueError("counts: bin counts must be >= 0")
    if not prior.weight >= 0 or not math.isfinite(prior.weight):
        raise ValueError("prior.weight: must be a finite number >= 0")
    for name in ("median", "sigma", "timeout", "every", "max_age"):
        value = getattr(prior, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"prior.{name}: must be a finite number >= 0")
    n = sum(counts)
    weight = prior.weight if prior.weight > 0 or n > 0 else 1.0
    empirical = empirical_survival(counts)
    survival = tuple(
        (weight * prior.survival(t) + n * e) / (weight + n)
        for t, e in zip(LIFETIME_GRID, empirical, strict=True)
    )
    # Make it a survival function: starts at 1, never increases.
    fixed: list[float] = []
    level = 1.0
    for s in survival:
        level = min(level, max(0.0, s))
        fixed.append(level)
    survival = tuple(fixed)
    mean = _area(lambda t: _interpolate(survival, t))
    ages = _class_ages()
    costs = tuple(_cost(survival, age, mean) for age in ages)
    weights = _weights(survival, mean)
    ended_log = tuple(_ended_log(survival, age, MIDPOINTS) for age in ages)
    return LifetimeModel(survival, costs, mean, n, ended_log, weights)


def _weights(survival: tuple[float, ...], mean: float) -> tuple[float, ...]:
    """``dt * S(t) / mean`` at the midpoints of the lifetime grid's intervals, cut where ``S``
    is 0 (no session lives that long, so nothing is added there)."""
    weights: list[float] = []
    if mean <= 0:
        return ()
    for (a, b), t in zip(itertools.pairwise(LIFETIME_GRID), MIDPOINTS, strict=True):
        s = _interpolate(survival, t)
        if s <= 0:
            break
        weights.append((b - a) * s / mean)
    return tuple(weights)


def _ended_log(
    survival: tuple[float, ...], age: float, points: Sequence[float]
) -> tuple[float, ...]:
    """``log P(R_age <= t)`` at each point (``-inf`` where 0)."""
    alive = _interpolate(survival, age)
    out: list[float] = []
    for t in points:
        ended = 1.0 if alive <= 0 else 1.0 - _interpolate(survival, age + t) / alive
        out.append(math.log(ended) if ended > 0 else -math.inf)
    return tuple(out)


def _class_ages() -> list[float]:
    """The age each class is evaluated at: its midpoint (the last class: its start)."""
    edges = AGE_CLASSES
    return [(a + b) / 2 for a, b in itertools.pairwise(edges)] + [edges[-1]]


def _area(curve: Callable[[float], float]) -> float:
    """Trapezoid integral of ``curve`` over the grid."""
    grid = LIFETIME_GRID
    total = 0.0
    prev = curve(grid[0])
    for a, b in itertools.pairwise(grid):
        value = curve(b)
        total += (b - a) * (prev + value) / 2
        prev = value
    return total


def _cost(survival: tuple[float, ...], age: float, mean: float) -> float:
    """``E[(T_new - R_age)+] / E[T_new]`` (module docstring), clamped to 0..1."""
    if mean <= 0:
        return 0.0
    alive = _interpolate(survival, age)
    if alive <= 0:
        # Nobody is estimated to live this long: the session may end any moment.
        return 1.0

    def integrand(t: float) -> float:
        ended_by_t = 1.0 - _interpolate(survival, age + t) / alive
        return ended_by_t * _interpolate(survival, t)

    value = _area(integrand) / mean
    return min(1.0, max(0.0, value))
