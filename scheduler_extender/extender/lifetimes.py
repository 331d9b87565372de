"""The service's lifetime learner: session lengths seen on the watch, fitted for the drain term.

The live cache reports every user pod that leaves a node (deleted, or finished) through
``observe``; its lifetime is the wall-clock time then minus the pod's creation time.  Counts go
into ``core.lifetime``'s fixed bins, and the estimate is refitted (``core.lifetime.fit``) at most
every ``refresh_seconds``, when enough new lifetimes arrived (``refit_due``), on the reporting
thread, never in a request: ``drain(now)`` only reads
the current model and wraps it with the clock.  Departure times are never an input to scoring;
only past lifetimes and the ages of running sessions are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from scheduler_extender.core.drain import Drain
from scheduler_extender.core.lifetime import (
    LIFETIME_GRID,
    LifetimeModel,
    LifetimePrior,
    fit,
    refit_due,
)
from scheduler_extender.core.lifetime import lifetime_bin as _bin
from scheduler_extender.core.types import Pod


class LifetimeLearner:
    """Bin counts of observed session lifetimes and the model fitted from them (thread-safe)."""

    def __init__(
        self,
        prior: LifetimePrior,
        refresh_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prior = prior
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._counts = [0] * len(LIFETIME_GRID)
        self._model: LifetimeModel = fit(self._counts, prior)
        self._fitted_at = clock()

    @property
    def model(self) -> LifetimeModel:
        return self._model

    @property
    def observations(self) -> int:
        with self._lock:
            return sum(self._counts)

    def observe(self, lifetimes: Iterable[float]) -> None:
        """Count lifetimes (seconds); refit when the model is older than ``refresh_seconds``."""
        with self._lock:
            for seconds in lifetimes:
                self._counts[_bin(seconds)] += 1
            now = self.clock()
            if now - self._fitted_at < self.refresh_seconds or not refit_due(
                self._model.observations, sum(self._counts)
            ):
                return
            counts = list(self._counts)
            self._fitted_at = now
        self._model = fit(counts, self.prior)

    def observe_pods(self, pods: Iterable[Pod]) -> None:
        """User pods that just left their node: their lifetime is now minus their creation."""
        now = self.clock()
        self.observe(now - pod.created for pod in pods if not pod.placeholder and pod.created)

    def refit(self) -> LifetimeModel:
        """Fit now (tests, and the first request after a long quiet spell does not need it)."""
        with self._lock:
            counts = list(self._counts)
            self._fitted_at = self.clock()
        self._model = fit(counts, self.prior)
        return self._model

    def set_model(self, model: LifetimeModel) -> None:
        """Use ``model`` until the next refit (restoring a saved estimate; the parity test)."""
        self._model = model

    def drain(self, now: float) -> Drain:
        """The drain term's input for a request at ``now`` (Unix seconds)."""
        return Drain(now, self._model)
