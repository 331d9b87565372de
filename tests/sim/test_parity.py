"""The simulator's extender decisions are the service's: replay them through the HTTP app.

A small run of the ``extender`` policy records every prioritize and preempt call (the pod, the
node names, the extender's own snapshot at that moment, and what the simulator used).  Each call
is then sent, as kube-scheduler would send it, to the real FastAPI app serving that snapshot
rebuilt from Kubernetes JSON; the replies must match exactly: scores, filter results and kept
preemption candidates.

(Whether the service's filter agrees with kube-scheduler's in-tree filters is a different
question: on the same snapshot it does by construction, since the simulator models the in-tree
filters with the same ``check_node``; on a lagging snapshot it need not, which is why the shipped
configuration leaves the ``filter`` verb off; see docs/install.md.)
"""

from __future__ import annotations

from dataclasses import fields

import pytest
from fastapi.testclient import TestClient

from scheduler_extender.core.drain import prior_of
from scheduler_extender.core.filtering import filter_nodes
from scheduler_extender.core.policy import PolicyConfig
from scheduler_extender.core.scoring import score_nodes
from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.lifetimes import LifetimeLearner
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import StaticState, snapshot_from_objects
from scheduler_extender.sim.engine import Simulation
from scheduler_extender.sim.scenario import scenario_from_data
from scheduler_extender.sim.scheduler import PreemptCall, PrioritizeCall, parse_policy
from tests.factories import pod_to_json, snapshot_objects

SCENARIO = {
    "name": "parity",
    "duration": "3h",
    "pool": {"cpu": "4", "memory": "8Gi", "pods": 30, "initial_nodes": 2, "max_nodes": 20},
    "users": {
        "arrivals": {"rate_per_minute": 3},
        "bursts": [{"at": "1h", "count": 40, "over": "2m"}],
        "profiles": [{"cpu": "100m", "memory": "512Mi", "activity": {"median": "15m"}}],
    },
    "culler": {"timeout": 600, "every": 120},
    "images": {"default_pull": {"min": 30, "max": 90}, "continuous_puller": False},
    "placeholders": {"count": 6},
    "autoscaler": {"provisioning": {"min": 60, "max": 120}},
}


def settings_for(policy: PolicyConfig) -> Settings:
    return Settings(**{f.name: getattr(policy, f.name) for f in fields(PolicyConfig)})


@pytest.fixture(scope="module")
def recorded() -> tuple[list[PrioritizeCall], list[PreemptCall], PolicyConfig]:
    scenario = scenario_from_data(SCENARIO, "parity")
    profile = parse_policy("extender")
    assert profile.extender is not None
    prioritize: list[PrioritizeCall] = []
    preempt: list[PreemptCall] = []
    Simulation(
        scenario, profile, 3, on_prioritize=prioritize.append, on_preempt=preempt.append
    ).run()
    return prioritize, preempt, profile.extender.policy


def _client(call: PrioritizeCall | PreemptCall, policy: PolicyConfig) -> TestClient:
    nodes, pods = snapshot_objects(call.snapshot)
    state = StaticState(snapshot_from_objects(nodes, pods))
    return TestClient(create_app(settings_for(policy), state=state))


def test_the_run_exercises_the_extender(
    recorded: tuple[list[PrioritizeCall], list[PreemptCall], PolicyConfig],
) -> None:
    prioritize, preempt, _ = recorded
    assert len(prioritize) > 100
    assert len({len(c.names) for c in prioritize}) > 1
    assert preempt, "placeholders were never preempted; the scenario no longer tests preempt"


def test_prioritize_and_filter_match_the_http_app(
    recorded: tuple[list[PrioritizeCall], list[PreemptCall], PolicyConfig],
) -> None:
    prioritize, _, policy = recorded
    # Every 7th call keeps the test fast while covering the whole run.
    for call in prioritize[::7]:
        client = _client(call, policy)
        body = {"Pod": pod_to_json(call.pod), "NodeNames": list(call.names)}
        reply = client.post("/prioritize", json=body)
        assert reply.status_code == 200, reply.text
        assert [(e["Host"], e["Score"]) for e in reply.json()] == list(call.scores)
        filtered = client.post("/filter", json=body).json()
        core = filter_nodes(call.pod, call.names, call.snapshot, policy)
        assert filtered["NodeNames"] == list(core.passed)
        assert filtered["FailedNodes"] == dict(core.failed)
        assert filtered["FailedAndUnresolvableNodes"] == dict(core.unresolvable)


def test_preempt_matches_the_http_app(
    recorded: tuple[list[PrioritizeCall], list[PreemptCall], PolicyConfig],
) -> None:
    _, preempt, policy = recorded
    for call in preempt:
        client = _client(call, policy)
        body = {
            "Pod": pod_to_json(call.pod),
            "NodeNameToMetaVictims": {
                c.node: {"Pods": [{"UID": uid} for uid in c.victims], "NumPDBViolations": 0}
                for c in call.candidates
            },
        }
        reply = client.post("/preempt", json=body)
        assert reply.status_code == 200, reply.text
        assert tuple(reply.json()["NodeNameToMetaVictims"]) == call.kept


@pytest.fixture(scope="module", params=["extender-drain", "extender-survival"])
def recorded_drain(request: pytest.FixtureRequest) -> tuple[list[PrioritizeCall], PolicyConfig]:
    """A run of a drain-aware policy: the oldest-session estimate and the all-sessions one."""
    scenario = scenario_from_data(SCENARIO, "parity")
    profile = parse_policy(request.param)
    assert profile.extender is not None and profile.extender.policy.drain_weight > 0
    prioritize: list[PrioritizeCall] = []
    Simulation(scenario, profile, 3, on_prioritize=prioritize.append).run()
    return prioritize, profile.extender.policy


def test_drain_aware_prioritize_matches_the_http_app(
    recorded_drain: tuple[list[PrioritizeCall], PolicyConfig],
) -> None:
    """The drain term through the real app: same snapshot, same clock, same learned model."""
    prioritize, policy = recorded_drain
    assert len(prioritize) > 100
    models = {id(c.drain.model) for c in prioritize if c.drain is not None}
    assert len(models) > 1, "the model was never refitted from observed lifetimes"
    learned = [c for c in prioritize if c.drain is not None and c.drain.model.observations]
    assert learned, "no call used a model with observed lifetimes"
    plain = 0
    for call in prioritize[::5]:
        assert call.drain is not None
        nodes, pods = snapshot_objects(call.snapshot)
        state = StaticState(snapshot_from_objects(nodes, pods))
        lifetimes = LifetimeLearner(prior_of(policy))
        lifetimes.set_model(call.drain.model)
        app = create_app(settings_for(policy), state=state, lifetimes=lifetimes)
        now = call.drain.now
        app.state.extender.clock = lambda now=now: now
        body = {"Pod": pod_to_json(call.pod), "NodeNames": list(call.names)}
        reply = TestClient(app).post("/prioritize", json=body)
        assert reply.status_code == 200, reply.text
        assert [(e["Host"], e["Score"]) for e in reply.json()] == list(call.scores)
        undrained = score_nodes(call.pod, call.names, call.snapshot, policy).scores
        plain += undrained != call.scores
    assert plain, "the drain term never changed a score: the test would not notice it missing"
