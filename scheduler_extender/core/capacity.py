"""Users per node and the risk that a full node runs out of memory.

The arithmetic behind the Zero to JupyterHub guide's "Balancing guaranteed vs maximum memory and
CPU" section (docs/source/administrator/optimization.md in jupyterhub/zero-to-jupyterhub-k8s):

- **Fit.**  The scheduler packs by *requests* (KubeSpawner's guarantees), so a node takes
  ``floor(available / guarantee)`` users for cpu and for memory, and ``max-pods`` minus the
  DaemonSet pods for pods; the smallest of the three is the users per node, and it names the
  binding constraint.
- **Risk.**  Users actually use between their guarantee and their limit.  Under a stated usage
  model (each user independently *heavy* with probability ``p``, using ``heavy`` bytes, or a
  uniform amount up to ``heavy``; otherwise ``base`` bytes) the probability that the users'
  total exceeds what the node has for them is computed exactly, as a rational number, and can be
  cross-checked by Monte Carlo with an injected random source.
- **Recommendation.**  Risk grows with the number of users on a node, so the largest users per
  node whose risk stays under a target is found by bisection, and with it the range of memory
  guarantees that packs exactly that many users.

Pure: integers (millicores, bytes, counts) and ``Fraction`` probabilities in, plain dataclasses
out.  No I/O, no clock, and no randomness of its own: Monte Carlo draws from the ``UniformSource``
it is given (the planner passes a seeded ``random.Random``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Protocol


class Constraint(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    PODS = "pods"


@dataclass(frozen=True, slots=True)
class NodeSpace:
    """What a node offers to user pods: allocatable minus the DaemonSets' requests.

    ``cpu`` in millicores, ``memory`` in bytes, ``pods`` a count; each may be zero or negative
    when the DaemonSets alone fill the node (then no user fits).
    """

    cpu: int
    memory: int
    pods: int


@dataclass(frozen=True, slots=True)
class UserRequests:
    """One user pod's requests (KubeSpawner's ``cpu_guarantee``/``mem_guarantee``): cpu in
    millicores, memory in bytes.  Zero means "no request", which never limits the fit."""

    cpu: int
    memory: int


@dataclass(frozen=True, slots=True)
class Fit:
    """How many users a node takes.  ``per_constraint[c]`` is ``None`` when ``c`` does not
    limit (the user requests none of it); ``binding`` lists every constraint that attains the
    minimum, in cpu, memory, pods order."""

    users: int
    per_constraint: Mapping[Constraint, int | None]
    binding: tuple[Constraint, ...]


def fit_users(space: NodeSpace, user: UserRequests) -> Fit:
    """Users per node: the minimum over cpu, memory and pods of ``floor(available / request)``."""
    caps: dict[Constraint, int | None] = {
        Constraint.CPU: _cap(space.cpu, user.cpu),
        Constraint.MEMORY: _cap(space.memory, user.memory),
        Constraint.PODS: max(space.pods, 0),
    }
    users = min(c for c in caps.values() if c is not None)
    binding = tuple(name for name, c in caps.items() if c == users)
    return Fit(users, MappingProxyType(caps), binding)


def _cap(available: int, request: int) -> int | None:
    if request <= 0:
        return None
    return max(available, 0) // request


# --- the usage model -------------------------------------------------------------------------


class HeavyShape(StrEnum):
    """How much a heavy user uses.  ``SPIKE``: exactly ``heavy`` bytes (the guide's "10 users
    load a 10 GB dataset").  ``UNIFORM``: uniformly between ``base`` and ``heavy``."""

    SPIKE = "spike"
    UNIFORM = "uniform"


@dataclass(frozen=True, slots=True)
class UsageModel:
    """Each user independently is heavy with probability ``p_heavy`` and then uses ``heavy``
    bytes (``SPIKE``) or a uniform amount in ``[base, heavy]`` (``UNIFORM``); otherwise it uses
    ``base`` bytes.  ``heavy`` is at most the memory limit: a container cannot hold more."""

    base: int
    heavy: int
    p_heavy: Fraction
    shape: HeavyShape = HeavyShape.SPIKE

    def __post_init__(self) -> None:
        if not 0 <= self.base <= self.heavy:
            raise ValueError("need 0 <= base <= heavy")
        if not 0 <= self.p_heavy <= 1:
            raise ValueError("p_heavy must be within [0, 1]")


def node_demand(users: int, heavy_users: int, base: int, heavy: int) -> int:
    """Memory ``users`` ask for when ``heavy_users`` of them use ``heavy`` and the rest ``base``
    (the guide's ``(10 * 10GB) + (40 * 1GB) = 140GB``)."""
    return heavy_users * heavy + (users - heavy_users) * base


def heavy_users_to_overflow(model: UsageModel, users: int, capacity: int) -> int | None:
    """The fewest heavy users (each at the full ``heavy`` size) that push ``users`` past
    ``capacity`` bytes; 0 when the base use alone overflows, ``None`` when even all of them
    heavy fit."""
    slack = capacity - users * model.base
    if slack < 0:
        return 0
    step = model.heavy - model.base
    if step == 0:
        return None
    k = slack // step + 1
    return k if k <= users else None


def overflow_probability(model: UsageModel, users: int, capacity: int) -> Fraction:
    """Exact ``P(total use of `users` > capacity)`` under ``model``.

    With ``K ~ Binomial(users, p)`` heavy users the total is ``users*base + (heavy-base)*X``
    where ``X = K`` (``SPIKE``) or ``X`` is a sum of ``K`` independent U(0,1) (``UNIFORM``, the
    Irwin-Hall distribution).  Overflow means ``X > x`` with
    ``x = (capacity - users*base) / (heavy - base)``, so the answer is
    ``sum_k C(n,k) p^k (1-p)^(n-k) P(X_k > x)``, summed exactly over one common denominator.
    """
    if users <= 0:
        return Fraction(0)
    slack = capacity - users * model.base
    if slack < 0:
        return Fraction(1)
    step = model.heavy - model.base
    if step == 0:
        return Fraction(0)
    x = Fraction(slack, step)
    r, q = model.p_heavy.numerator, model.p_heavy.denominator
    if model.shape is HeavyShape.SPIKE:
        # P(K > x) = sum over k > x of C(n,k) r^k (q-r)^(n-k) / q^n
        first = math.floor(x) + 1
        numerator = sum(
            math.comb(users, k) * r**k * (q - r) ** (users - k) for k in range(first, users + 1)
        )
        return Fraction(numerator, q**users)
    return _uniform_overflow(users, x, r, q)


def _uniform_overflow(n: int, x: Fraction, r: int, q: int) -> Fraction:
    """``sum_k C(n,k) p^k (1-p)^(n-k) P(S_k > x)`` for Irwin-Hall ``S_k``, ``p = r/q``, ``x >= 0``.

    ``P(S_k > x) = (k! d^k - N_k) / (k! d^k)`` with ``x = a/d`` and
    ``N_k = sum_{j<=floor(x)} (-1)^j C(k,j) (a - j d)^k`` (see ``irwin_hall_tail``).  Because
    ``x`` is the same for every ``k``, the powers ``(a - j d)^k`` and the binomial row ``C(k, j)``
    are updated from ``k - 1`` instead of recomputed, and every term is brought over the single
    denominator ``q^n n! d^n``, so the sum is one pass of integer arithmetic.  (Terms with
    ``k <= x`` vanish: ``S_k <= k``.)
    """
    if x >= n:
        return Fraction(0)  # S_k <= k <= n <= x: never overflows
    a, d = x.numerator, x.denominator
    top = math.floor(x)  # < n, so at most n terms per k
    bases = [a - j * d for j in range(top + 1)]
    powers = [1] * (top + 1)
    row = [1] + [0] * top  # C(k, j) for j <= top
    n_fact = math.factorial(n)
    k_fact = 1
    total = 0
    for k in range(n + 1):
        if k:
            k_fact *= k
            for j in range(top + 1):
                powers[j] *= bases[j]
            for j in range(min(k, top), 0, -1):
                row[j] += row[j - 1]
        if k <= x:
            continue
        n_k = sum((-1) ** j * row[j] * powers[j] for j in range(top + 1))
        tail = k_fact * d**k - n_k  # over k! d^k
        weight = math.comb(n, k) * r**k * (q - r) ** (n - k)  # over q^n
        total += weight * tail * (n_fact // k_fact) * d ** (n - k)
    return Fraction(total, q**n * n_fact * d**n)


def irwin_hall_tail(k: int, x: Fraction) -> Fraction:
    """Exact ``P(U_1 + ... + U_k > x)`` for independent U(0,1).

    ``F_k(x) = (1/k!) sum_{j=0}^{floor(x)} (-1)^j C(k,j) (x-j)^k`` for ``0 <= x <= k``; with
    ``x = a/d`` every term is an integer over ``k! d^k``, so the sum is done in integers.  The
    distribution is symmetric about ``k/2``, so the shorter side of the sum is used.
    ref: Irwin (1927), Hall (1927); e.g. https://en.wikipedia.org/wiki/Irwin%E2%80%93Hall_distribution
    """
    if x < 0:
        return Fraction(1)
    if x >= k:
        return Fraction(0)
    if x > Fraction(k, 2):
        return 1 - irwin_hall_tail(k, k - x)
    a, d = x.numerator, x.denominator
    numerator = sum(
        (-1) ** j * math.comb(k, j) * (a - j * d) ** k for j in range(math.floor(x) + 1)
    )
    return 1 - Fraction(numerator, math.factorial(k) * d**k)


# --- Monte Carlo cross-check -----------------------------------------------------------------


class UniformSource(Protocol):
    """Anything with ``random() -> float`` uniform on [0, 1), e.g. a seeded ``random.Random``."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class MonteCarloEstimate:
    draws: int
    overflows: int

    @property
    def probability(self) -> float:
        return self.overflows / self.draws if self.draws else 0.0

    @property
    def standard_error(self) -> float:
        """Binomial standard error of the estimate, ``sqrt(q(1-q)/draws)``."""
        if not self.draws:
            return 0.0
        q = self.probability
        return math.sqrt(q * (1 - q) / self.draws)


def sample_overflow(
    model: UsageModel, users: int, capacity: int, draws: int, rng: UniformSource
) -> MonteCarloEstimate:
    """Estimate ``overflow_probability`` by simulating ``draws`` nodes user by user.

    Each user is drawn independently (heavy with probability ``p``, then its size), exactly as
    the model states, so agreement with the exact sum checks both the model code and the sum.
    """
    p = float(model.p_heavy)
    step = model.heavy - model.base
    uniform = model.shape is HeavyShape.UNIFORM
    budget = capacity - users * model.base  # what the heavy excess may add without overflow
    overflows = 0
    for _ in range(draws):
        excess = 0.0
        for _ in range(users):
            if rng.random() < p:
                excess += step * rng.random() if uniform else step
        if excess > budget:
            overflows += 1
    return MonteCarloEstimate(draws, overflows)


# --- recommendation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The densest packing whose overflow risk stays within ``target``.

    ``users`` is the largest number of users per node with risk at most ``target`` (bounded by
    what cpu and pods allow); ``risk`` is the exact risk at that many users.

    When memory is what stops the packing (``bound_by`` is memory), every memory guarantee in
    ``[guarantee_min, guarantee_max]`` bytes packs exactly ``users`` users: ``guarantee_min`` is
    the smallest guarantee that keeps the risk within the target (one byte less packs one more
    user).  When cpu or pods stop it first (``bound_by`` names which), the risk at that packing
    is already within the target, ``guarantee_min`` is ``None`` (any smaller guarantee packs
    the same) and ``guarantee_max`` is the largest guarantee that does not lower the packing.
    ``users`` is 0 and everything else ``None`` when not even one user stays within the target.
    """

    target: Fraction
    users: int
    risk: Fraction
    guarantee_min: int | None
    guarantee_max: int | None
    bound_by: Constraint | None


def max_users_within(model: UsageModel, capacity: int, target: Fraction, ceiling: int) -> int:
    """The largest ``n <= ceiling`` with ``overflow_probability(model, n, capacity) <= target``.

    Adding a user never lowers the total use, so the risk is non-decreasing in ``n`` and
    bisection is exact.
    """
    lo, hi = 0, max(ceiling, 0)  # invariant: risk(lo) <= target (risk(0) == 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if overflow_probability(model, mid, capacity) <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


def recommend(
    space: NodeSpace, user: UserRequests, model: UsageModel, target: Fraction
) -> Recommendation:
    """The largest users per node (smallest memory guarantee) keeping the risk within
    ``target``, with the cpu request held as given."""
    others = fit_users(space, UserRequests(user.cpu, 0))  # what cpu and pods allow
    ceiling = others.users
    n = max_users_within(model, space.memory, target, ceiling)
    risk = overflow_probability(model, n, space.memory)
    if n == 0:
        return Recommendation(target, 0, risk, None, None, None)
    g_max = space.memory // n
    if n == ceiling:
        # cpu or pods stop the packing here; memory need only not bind sooner.
        return Recommendation(target, n, risk, None, g_max, others.binding[0])
    g_min = space.memory // (n + 1) + 1  # the smallest g with floor(memory / g) == n
    return Recommendation(target, n, risk, g_min, g_max, Constraint.MEMORY)
