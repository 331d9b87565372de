"""The service's lifetime learner, the cache's report of ended user pods, and the app's use of
both for the drain term."""

from __future__ import annotations

from fastapi.testclient import TestClient

from scheduler_extender.cache.store import Store
from scheduler_extender.core.lifetime import LifetimePrior
from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.lifetimes import LifetimeLearner
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import StaticState
from tests.factories import node, placeholder, pod, pod_json, snapshot

NOW = 1_704_067_200.0 + 10 * 3600


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_learner_counts_user_pods_and_refits_only_when_due() -> None:
    clock = Clock(NOW)
    learner = LifetimeLearner(LifetimePrior(weight=5), refresh_seconds=300, clock=clock)
    first = learner.model
    assert first.observations == 0
    learner.observe_pods([pod(created=NOW - 7200), placeholder(), pod(created=NOW - 7200)])
    assert learner.observations == 2  # the placeholder is not a session
    assert learner.model is first  # fitted less than refresh_seconds ago
    clock.now += 301
    learner.observe_pods([pod(created=clock.now - 7200) for _ in range(7)])
    assert learner.model is first  # due by time, but 9 new lifetimes are too few to refit
    learner.observe_pods([pod(created=clock.now - 7200)])
    assert learner.model is not first
    assert learner.model.observations == 10
    assert learner.drain(123.0).now == 123.0
    assert learner.drain(123.0).model is learner.model


def test_store_reports_user_pods_that_leave_a_node() -> None:
    store = Store()
    store.upsert_node(node("n1"))
    user = pod(node_name="n1", uid="u1")
    pending = pod(uid="u2")
    ph = placeholder("n1")
    for p in (user, pending, ph):
        store.upsert_pod(p)
    for uid in ("u1", "u2", ph.uid, "never-seen"):
        store.delete_pod(uid)
    assert [p.uid for p in store.ended] == ["u1"]


def test_app_applies_the_drain_term_with_its_clock() -> None:
    """A node kept up by a 4-hour session beats a fuller node of young ones only with the term."""
    snap = snapshot(
        [node("old"), node("young")],
        [pod(node_name="old", created=NOW - 4 * 3600),
         pod(node_name="young", created=NOW - 900), pod(node_name="young", created=NOW - 900)],
    )  # fmt: skip
    body = {"Pod": pod_json(), "NodeNames": ["old", "young"]}
    results = {}
    for weight in (0.0, 1.0):
        settings = Settings(
            drain_weight=weight, drain_cohorts=False, culler_timeout_seconds=600,
            culler_every_seconds=60, session_sigma=1.2,
        )  # fmt: skip
        app = create_app(settings, state=StaticState(snap))
        app.state.extender.clock = Clock(NOW)
        reply = TestClient(app).post("/prioritize", json=body)
        assert reply.status_code == 200, reply.text
        results[weight] = {e["Host"]: e["Score"] for e in reply.json()}
    assert results[0.0] == {"old": 9, "young": 10}
    assert results[1.0] == {"old": 10, "young": 9}
