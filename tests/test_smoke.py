"""End-to-end smoke: the embedded demo served over the real app answers the scheduler's verbs."""

from fastapi.testclient import TestClient

from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import demo_state
from tests.factories import pod_json


def test_demo_prioritize_prefers_the_busiest_user_node() -> None:
    state = demo_state()
    client = TestClient(create_app(Settings(), state=state))
    names = sorted(state.snapshot().nodes)
    reply = client.post("/prioritize", json={"Pod": pod_json(), "NodeNames": names})
    assert reply.status_code == 200
    scores = {entry["Host"]: entry["Score"] for entry in reply.json()}
    assert max(scores, key=scores.__getitem__) == "user-pool-a"
    assert scores["user-pool-c"] < scores["user-pool-b"]  # deletion candidate is avoided
