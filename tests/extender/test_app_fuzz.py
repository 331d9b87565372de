"""Whatever shape the scheduler (or anything else) sends, the answer is 200 or a 400: never a 500.

Pods are generated in the Kubernetes shape with any field possibly replaced by arbitrary JSON,
so the generator reaches deep paths (containers[i].resources.requests.cpu...) that plain random
JSON would almost never hit.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import StaticState
from tests.factories import node, pod, snapshot

CLIENT = TestClient(
    create_app(
        Settings(), state=StaticState(snapshot([node("a"), node("b")], [pod(node_name="a")]))
    )
)

any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field as Kubernetes shapes it, or anything at all."""
    return st.one_of(strategy, strategy, strategy, any_json)


quantities = st.sampled_from(
    ["1", "50m", "512Mi", "0.5", "1e999999", "-1", "Infinity", "NaN", "x", "9300P", "1e3"]
)
resource_list = st.dictionaries(
    st.sampled_from(["cpu", "memory", "pods", "nvidia.com/gpu", "hugepages-2Mi"]),
    maybe(quantities),
    max_size=3,
)
pod_resources = st.fixed_dictionaries({}, optional={"requests": maybe(resource_list)})
container = st.fixed_dictionaries(
    {},
    optional={
        "name": maybe(st.sampled_from(["notebook", "sidecar"])),
        "image": maybe(st.sampled_from(["jupyter/base", "quay.io/x/y:1", "a@sha256:f"])),
        "restartPolicy": maybe(st.just("Always")),
        "resources": maybe(
            st.fixed_dictionaries({}, optional={"requests": maybe(resource_list),
                                                "limits": maybe(resource_list)})
        ),
    },
)  # fmt: skip
requirement = st.fixed_dictionaries(
    {},
    optional={
        "key": maybe(st.sampled_from(["hub.jupyter.org/node-purpose", "n"])),
        "operator": maybe(st.sampled_from(["In", "NotIn", "Exists", "Gt", "Lt", "Bogus"])),
        "values": maybe(st.lists(maybe(st.sampled_from(["user", "1", "x"])), max_size=2)),
    },
)
pods = st.fixed_dictionaries(
    {},
    optional={
        "metadata": maybe(st.fixed_dictionaries({}, optional={
            "name": maybe(st.text(max_size=5)),
            "uid": maybe(st.text(max_size=5)),
            "labels": maybe(st.dictionaries(st.text(max_size=3), maybe(st.text(max_size=3)))),
            "creationTimestamp": maybe(st.sampled_from(["2026-11-25T10:00:00Z", "never"])),
        })),
        "spec": maybe(st.fixed_dictionaries({}, optional={
            "containers": maybe(st.lists(maybe(container), max_size=3)),
            "initContainers": maybe(st.lists(maybe(container), max_size=2)),
            "priority": maybe(st.integers(-(2**40), 2**40)),
            "overhead": maybe(resource_list),
            "resources": maybe(pod_resources),
            "nodeSelector": maybe(st.dictionaries(st.text(max_size=3), maybe(st.text(max_size=3)))),
            "tolerations": maybe(st.lists(maybe(st.fixed_dictionaries({}, optional={
                "key": maybe(st.text(max_size=3)), "operator": maybe(st.just("Exists")),
                "effect": maybe(st.just("NoSchedule"))})), max_size=2)),
            "affinity": maybe(st.fixed_dictionaries({}, optional={"nodeAffinity": maybe(
                st.fixed_dictionaries({}, optional={
                    "requiredDuringSchedulingIgnoredDuringExecution": maybe(
                        st.fixed_dictionaries({}, optional={"nodeSelectorTerms": maybe(st.lists(
                            maybe(st.fixed_dictionaries({}, optional={
                                "matchExpressions": maybe(st.lists(maybe(requirement), max_size=2)),
                                "matchFields": maybe(st.lists(maybe(requirement), max_size=1)),
                            })), max_size=2))}))}))})),
        })),
        "status": maybe(st.fixed_dictionaries({}, optional={
            "phase": maybe(st.just("Running")),
            "containerStatuses": maybe(st.lists(maybe(st.fixed_dictionaries({}, optional={
                "name": maybe(st.just("notebook")),
                "allocatedResources": maybe(resource_list),
                "resources": maybe(st.fixed_dictionaries({}, optional={
                    "requests": maybe(resource_list)})),
            })), max_size=2)),
        })),
    },
)  # fmt: skip

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(the_pod=pods, names=maybe(st.lists(maybe(st.sampled_from(["a", "b", "ghost"])), max_size=3)))
def test_filter_and_prioritize_never_500(the_pod: Any, names: Any) -> None:
    for verb in ("filter", "prioritize"):
        reply = CLIENT.post(f"/{verb}", json={"Pod": the_pod, "NodeNames": names})
        assert reply.status_code in (200, 400), reply.text
        if reply.status_code == 400:
            assert reply.json()["error"]


@FUZZ
@given(the_pod=pods, victim=pods, pdb=maybe(st.integers(0, 3)))
def test_preempt_never_500(the_pod: Any, victim: Any, pdb: Any) -> None:
    full = {"Pod": the_pod, "NodeNameToVictims": {"a": {"Pods": [victim], "NumPDBViolations": pdb}}}
    meta = {
        "Pod": the_pod,
        "NodeNameToMetaVictims": {"a": {"Pods": [{"UID": "uid-1"}], "NumPDBViolations": pdb}},
    }
    for body in (full, meta):
        reply = CLIENT.post("/preempt", json=body)
        assert reply.status_code in (200, 400), reply.text
