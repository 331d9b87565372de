"""The capacityBuffer backend against the fake API server: discovery (CRD absent or present),
create/update/unchanged, conflicts on the resourceVersion, and deletion of a removed pool.

The fake serves CapacityBuffers only when a test installs the type (``with_capacity_buffers``),
and then validates every write against the CRD's schema (tests/fakeapi/crds.py), as
kube-apiserver does; the objects we build are also checked strictly (unknown fields are
errors) and the PodTemplate with kubernetes-validate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from scheduler_extender.cli import main as cli_main
from scheduler_extender.core.placeholders import PoolPlan
from scheduler_extender.core.types import Resources
from scheduler_extender.kube.client import ApiError, KubeClient, connect
from scheduler_extender.placeholders import buffers
from scheduler_extender.placeholders.buffers import (
    MAX_ATTEMPTS,
    BufferBackend,
    BufferError,
    BuffersUnavailableError,
    buffers_served,
    build_buffer,
    build_pod_template,
    choose_backend,
    object_name,
)
from scheduler_extender.placeholders.config import ConfigError, ControllerConfig
from scheduler_extender.placeholders.pods import OwnerRef
from tests.fakeapi import PODTEMPLATES, FakeApiServer, ResourceType
from tests.fakeapi.crds import CAPACITY_BUFFERS, validate, with_capacity_buffers
from tests.placeholders.conftest import NS
from tests.placeholders.conftest import config as base_config

GIB = 1024**3
OWNER = OwnerRef("apps/v1", "Deployment", "hub-placeholders", "owner-uid")


def config(**changes: Any) -> ControllerConfig:
    pools = [
        {"name": "default", "requests": {"cpu": "50m", "memory": "512Mi"},
         "count": {"mode": "static", "static": 3}},
        {"name": "evening", "size": "node", "nodeSelector": {"pool": "large"},
         "count": {"mode": "static", "static": 1}},
    ]  # fmt: skip
    return base_config(**{"backend": "capacityBuffer", "pools": pools, **changes})


def plan(pool: str, desired: int, memory: int = 512 * 1024**2) -> PoolPlan:
    return PoolPlan(pool, desired, Resources(50, memory, 1), 1)


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


@pytest.fixture
def kube(fake: FakeApiServer, tmp_path: Path) -> Iterator[KubeClient]:
    client = connect(kubeconfig=fake.write_kubeconfig(tmp_path / "kubeconfig"))
    assert client is not None
    yield client
    client.close()


@pytest.fixture
def crd(fake: FakeApiServer) -> FakeApiServer:
    with_capacity_buffers(fake.store)
    return fake


def stored_buffer(fake: FakeApiServer, pool: str) -> dict[str, Any]:
    return fake.store.get(CAPACITY_BUFFERS, NS, object_name(pool))


def count_requests(fake: FakeApiServer) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    fake.before_request = lambda method, path: seen.append((method, path))
    return seen


# --- the objects -----------------------------------------------------------------------------


def test_buffer_is_valid_for_the_crd_schema() -> None:
    cfg = config()
    obj = build_buffer(cfg, "default", 3, OWNER)
    stored, problems = validate(obj, strict=True)
    assert problems == []
    assert stored == obj  # nothing pruned, nothing defaulted: every field is declared and set
    assert obj["spec"] == {
        "provisioningStrategy": "buffer.x-k8s.io/active-capacity",
        "podTemplateRef": {"name": "user-placeholder-default"},
        "replicas": 3,
    }
    assert obj["metadata"]["ownerReferences"] == [OWNER.json()]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o["spec"].pop("replicas"), "spec"),  # CEL: podTemplateRef needs replicas
        (lambda o: o["spec"].update(replicas=-1), "spec.replicas"),
        (lambda o: o["spec"].update(podTemplateRef={"name": ""}), "spec.podTemplateRef.name"),
        (lambda o: o["spec"].update(replica=2), "spec.replica"),  # a typo: unknown field
        (lambda o: o["spec"].update(scalableRef={"kind": "Deployment", "name": "x"}), "spec"),
    ],
    ids=["no-replicas", "negative", "empty-ref", "typo", "both-refs"],
)
def test_the_schema_check_catches_mistakes(change: Callable[[Any], Any], field: str) -> None:
    """The check the previous test passes is one that fails on a wrong object."""
    obj = build_buffer(config(), "default", 3, None)
    change(obj)
    _, problems = validate(obj, strict=True)
    assert field in [f for f, _ in problems]


def test_replicas_beyond_int32_are_refused() -> None:
    with pytest.raises(ValueError, match=r"pools\.default: replicas"):
        build_buffer(config(), "default", 2**31, None)


def test_pod_template_is_a_valid_podtemplate_of_the_pool() -> None:
    cfg = config()
    pool = cfg.pools[1]
    obj = build_pod_template(cfg, pool, Resources(3500, 12 * GIB, 1), OWNER)
    kubernetes_validate.validate(obj, "1.30", strict=True)
    spec = obj["template"]["spec"]
    assert spec["containers"][0]["resources"]["requests"] == {
        "cpu": "3500m",
        "memory": str(12 * GIB),
    }
    assert spec["nodeSelector"] == {"pool": "large"}
    assert spec["priorityClassName"] == cfg.priority_class_name
    assert obj["template"]["metadata"]["labels"]["component"] == "user-placeholder"


# --- discovery -------------------------------------------------------------------------------


def test_crd_absent_falls_back_to_pods_with_a_clear_message(
    kube: KubeClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert buffers_served(kube) is False
    with caplog.at_level(logging.WARNING):
        assert choose_backend(config(), kube) == "pods"
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = record.getMessage()
    assert "does not serve CapacityBuffer (autoscaling.x-k8s.io/v1beta1" in message
    assert "falling back to placeholder pods (capacityBuffer.fallback: pods)" in message


def test_crd_absent_refuses_when_configured(kube: KubeClient) -> None:
    cfg = config(capacityBuffer={"fallback": "refuse"})
    with pytest.raises(BuffersUnavailableError, match=r"fallback is refuse") as info:
        choose_backend(cfg, kube)
    assert "install the Cluster Autoscaler's CapacityBuffer CRD" in str(info.value)


def test_pods_backend_asks_nothing(fake: FakeApiServer, kube: KubeClient) -> None:
    seen = count_requests(fake)
    assert choose_backend(config(backend="pods"), kube) == "pods"
    assert seen == []


def test_crd_present(crd: FakeApiServer, kube: KubeClient) -> None:
    assert buffers_served(kube) is True
    assert choose_backend(config(), kube) == "capacityBuffer"


def test_another_version_of_the_group_is_not_enough(fake: FakeApiServer, kube: KubeClient) -> None:
    """A cluster with only the deprecated v1alpha1 serves the group, not v1beta1."""
    fake.store.add_type(
        ResourceType("autoscaling.x-k8s.io", "v1alpha1", "capacitybuffers", "CapacityBuffer", True)
    )
    assert buffers_served(kube) is False


# --- sync ------------------------------------------------------------------------------------


def test_sync_creates_then_leaves_then_updates(crd: FakeApiServer, kube: KubeClient) -> None:
    backend = BufferBackend(config(), kube, owner=lambda: OWNER)
    result = backend.sync("default", plan("default", 3))
    assert result is not None
    assert (result.template, result.buffer, result.conflicts) == ("created", "created", 0)
    buffer = stored_buffer(crd, "default")
    assert buffer["spec"]["replicas"] == 3
    assert buffer["spec"]["podTemplateRef"] == {"name": "user-placeholder-default"}
    template = crd.store.get(PODTEMPLATES, NS, "user-placeholder-default")
    requests = template["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "50m", "memory": str(512 * 1024**2)}

    rv = buffer["metadata"]["resourceVersion"]
    again = backend.sync("default", plan("default", 3))
    assert again is not None
    assert (again.template, again.buffer) == ("unchanged", "unchanged")
    assert stored_buffer(crd, "default")["metadata"]["resourceVersion"] == rv

    grown = backend.sync("default", plan("default", 7, memory=GIB))
    assert grown is not None
    assert (grown.template, grown.buffer) == ("updated", "updated")
    assert stored_buffer(crd, "default")["spec"]["replicas"] == 7
    template = crd.store.get(PODTEMPLATES, NS, "user-placeholder-default")
    requests = template["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests["memory"] == str(GIB)


def test_sync_without_a_size_writes_nothing(crd: FakeApiServer, kube: KubeClient) -> None:
    backend = BufferBackend(config(), kube)
    seen = count_requests(crd)
    assert backend.sync("evening", PoolPlan("evening", 2, None, 1)) is None
    assert seen == []


def test_sync_of_an_unknown_pool(crd: FakeApiServer, kube: KubeClient) -> None:
    with pytest.raises(BufferError, match="pool 'nope' is not in the config"):
        BufferBackend(config(), kube).sync("nope", plan("nope", 1))


def test_conflict_rereads_and_keeps_the_other_writer_s_change(
    crd: FakeApiServer, kube: KubeClient
) -> None:
    backend = BufferBackend(config(), kube)
    backend.sync("default", plan("default", 3))
    name = object_name("default")
    puts = 0

    def meddle(method: str, path: str) -> None:
        nonlocal puts
        if method == "PUT" and "/capacitybuffers/" in path:
            puts += 1
            if puts == 1:  # someone else writes between our read and our write
                crd.store.update(CAPACITY_BUFFERS, NS, name, annotate)

    def annotate(obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"].setdefault("annotations", {})["example.org/owner"] = "ops"
        return obj

    crd.before_request = meddle
    result = backend.sync("default", plan("default", 5))
    assert result is not None
    assert (result.buffer, result.conflicts) == ("updated", 1)
    assert puts == 2
    buffer = stored_buffer(crd, "default")
    assert buffer["spec"]["replicas"] == 5
    assert buffer["metadata"]["annotations"] == {"example.org/owner": "ops"}


def test_endless_conflicts_give_up_with_an_error(crd: FakeApiServer, kube: KubeClient) -> None:
    backend = BufferBackend(config(), kube)
    backend.sync("default", plan("default", 3))
    name = object_name("default")

    def meddle(method: str, path: str) -> None:
        if method == "PUT" and "/capacitybuffers/" in path:
            crd.store.update(CAPACITY_BUFFERS, NS, name, lambda obj: obj)

    crd.before_request = meddle
    with pytest.raises(BufferError, match=f"still conflicting after {MAX_ATTEMPTS} attempts"):
        backend.sync("default", plan("default", 4))
    assert stored_buffer(crd, "default")["spec"]["replicas"] == 3


def test_a_buffer_that_is_not_ours_is_left_alone(crd: FakeApiServer, kube: KubeClient) -> None:
    foreign = build_buffer(config(), "default", 9, None)
    foreign["metadata"]["labels"] = {"team": "ops"}
    crd.store.create(CAPACITY_BUFFERS, NS, foreign)
    backend = BufferBackend(config(), kube)
    with pytest.raises(BufferError, match="exists and is not this controller's"):
        backend.sync("default", plan("default", 3))
    assert backend.remove("default") is True  # only the PodTemplate, which is ours
    assert stored_buffer(crd, "default")["spec"]["replicas"] == 9


def test_the_api_server_rejects_an_invalid_buffer(crd: FakeApiServer, kube: KubeClient) -> None:
    """The fake validates as kube-apiserver does: a buffer without replicas is a 422."""
    backend = BufferBackend(config(), kube)
    backend.sync("default", plan("default", 3))
    current = stored_buffer(crd, "default")
    del current["spec"]["replicas"]
    with pytest.raises(ApiError) as info:
        kube.replace_custom(
            buffers.CAPACITY_BUFFERS, NS, object_name("default"), current, timeout=5
        )
    assert info.value.code == 422
    assert "replicas or limits must also be set" in info.value.message


def test_an_unreachable_api_server_is_a_buffer_error(crd: FakeApiServer, kube: KubeClient) -> None:
    """The controller catches one exception type per pass, whatever failed."""
    backend = BufferBackend(config(), kube, timeout=2)
    backend.sync("default", plan("default", 3))
    crd.refuse_requests = True
    with pytest.raises(BufferError, match="PodTemplate jhub/user-placeholder-default: 0 Network"):
        backend.sync("default", plan("default", 4))
    with pytest.raises(BufferError, match="removing pool default's buffer"):
        backend.remove("default")
    with pytest.raises(BufferError, match="listing this controller's CapacityBuffers"):
        backend.prune()


# --- removal ---------------------------------------------------------------------------------


def test_remove_deletes_buffer_and_template(crd: FakeApiServer, kube: KubeClient) -> None:
    backend = BufferBackend(config(), kube)
    backend.sync("default", plan("default", 3))
    backend.sync("evening", plan("evening", 1, memory=12 * GIB))
    assert backend.remove("default") is True
    assert [o["metadata"]["name"] for o in crd.store.items(CAPACITY_BUFFERS)] == [
        "user-placeholder-evening"
    ]
    assert [o["metadata"]["name"] for o in crd.store.items(PODTEMPLATES)] == [
        "user-placeholder-evening"
    ]
    assert backend.remove("default") is False  # already gone: fine


def test_prune_removes_pools_dropped_from_the_config(crd: FakeApiServer, kube: KubeClient) -> None:
    BufferBackend(config(), kube).sync("evening", plan("evening", 1))
    BufferBackend(config(), kube).sync("default", plan("default", 2))
    # Restarted with the evening pool removed from the config.
    only_default = config(
        pools=[{"name": "default", "requests": {"memory": "512Mi"},
                "count": {"mode": "static", "static": 2}}]
    )  # fmt: skip
    assert BufferBackend(only_default, kube).prune() == ["evening"]
    assert [o["metadata"]["name"] for o in crd.store.items(CAPACITY_BUFFERS)] == [
        "user-placeholder-default"
    ]
    assert BufferBackend(only_default, kube).prune() == []


def test_prune_spares_another_controller_s_buffers(crd: FakeApiServer, kube: KubeClient) -> None:
    other = config(leaseName="other-hub-placeholders")
    BufferBackend(other, kube).sync("evening", plan("evening", 1))
    mine = config(pools=[])
    assert BufferBackend(mine, kube).prune() == []
    assert len(crd.store.items(CAPACITY_BUFFERS)) == 1


# --- config ----------------------------------------------------------------------------------


def test_config_backend_fields() -> None:
    cfg = config(capacityBuffer={"fallback": "refuse", "provisioningStrategy": "x/y"})
    assert (cfg.backend, cfg.capacity_buffer.fallback) == ("capacityBuffer", "refuse")
    assert build_buffer(cfg, "default", 1, None)["spec"]["provisioningStrategy"] == "x/y"
    assert base_config().backend == "pods"
    with pytest.raises(ConfigError, match="backend"):
        config(backend="buffers")
    with pytest.raises(ConfigError, match=r"capacityBuffer\.fallback"):
        config(capacityBuffer={"fallback": "maybe"})


def test_check_names_the_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "placeholders.yaml"
    data = {"namespace": NS, "leaseName": "l", "priorityClassName": "p"}
    data["backend"] = "capacityBuffer"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert cli_main(["placeholders", "--config", str(path), "--check"]) == 0
    assert "backend capacityBuffer (fallback pods)" in capsys.readouterr().out


def test_cli_refuses_to_start_without_the_crd(
    fake: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fallback: refuse, and the API server does not serve CapacityBuffers: exit 2 with the
    reason, before anything is written (no Lease, no pod)."""
    cfg = config(capacityBuffer={"fallback": "refuse"})
    path = tmp_path / "placeholders.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(by_alias=True, exclude_none=True)))
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    seen = count_requests(fake)
    argv = ["placeholders", "--config", str(path), "--kubeconfig", str(kubeconfig)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "does not serve CapacityBuffer" in err and "capacityBuffer.fallback is refuse" in err
    assert seen == [("GET", "/apis/autoscaling.x-k8s.io/v1beta1")]


# --- node-sized templates and the buffer's status --------------------------------------------


@pytest.mark.parametrize(
    ("memory", "outcome"),
    [
        pytest.param(int(12 * GIB * 1.03), "unchanged", id="3%-more-kept"),
        pytest.param(int(12 * GIB * 1.10), "updated", id="10%-more-rewritten"),
        pytest.param(int(12 * GIB * 0.99), "updated", id="less-rewritten"),
    ],
)
def test_node_sized_template_tolerates_a_small_growth(
    crd: FakeApiServer, kube: KubeClient, memory: int, outcome: str
) -> None:
    """As the pods backend keeps node-sized pods within NODE_SIZE_TOLERANCE below the plan,
    the template keeps its requests while the plan's grow by less than that share (a
    template that no longer fits the plan's, smaller, size is rewritten)."""
    backend = BufferBackend(config(), kube)
    first = PoolPlan("evening", 1, Resources(3500, 12 * GIB, 1), 1)
    backend.sync("evening", first, tolerance=0.05)
    drifted = PoolPlan("evening", 1, Resources(3500, memory, 1), 1)
    result = backend.sync("evening", drifted, tolerance=0.05)
    assert result is not None and result.template == outcome
    template = crd.store.get(PODTEMPLATES, NS, "user-placeholder-evening")
    stored = template["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"]
    assert stored == str(12 * GIB if outcome == "unchanged" else memory)
    # Without a tolerance every change is written.
    exact = backend.sync("evening", PoolPlan("evening", 1, Resources(3500, memory + 1, 1), 1))
    assert exact is not None and exact.template == "updated"


def test_node_sized_tolerance_needs_the_same_spec(crd: FakeApiServer, kube: KubeClient) -> None:
    """A template within the tolerance but built from another pool spec (here another image)
    is rewritten: only the size may lag behind."""
    BufferBackend(config(), kube).sync(
        "evening", PoolPlan("evening", 1, Resources(3500, 12 * GIB, 1), 1), tolerance=0.05
    )
    other = BufferBackend(config(image="registry.k8s.io/pause:3.9"), kube)
    grown = PoolPlan("evening", 1, Resources(3500, int(12 * GIB * 1.02), 1), 1)
    result = other.sync("evening", grown, tolerance=0.05)
    assert result is not None and result.template == "updated"


def test_status_is_read_back_and_survives_our_writes(crd: FakeApiServer, kube: KubeClient) -> None:
    """The autoscaler's status (replicas, Ready) is reported; our PUT of the spec keeps it, as
    the status subresource makes kube-apiserver do."""
    backend = BufferBackend(config(), kube)
    created = backend.sync("default", plan("default", 3))
    assert created is not None and (created.status_replicas, created.ready) == (None, None)

    def report(obj: dict[str, Any]) -> dict[str, Any]:
        obj["status"] = {
            "replicas": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned",
                            "message": "", "lastTransitionTime": "2026-01-05T10:00:00Z"}],
        }  # fmt: skip
        return obj

    crd.store.update(CAPACITY_BUFFERS, NS, object_name("default"), report)
    same = backend.sync("default", plan("default", 3))
    assert same is not None and (same.buffer, same.status_replicas, same.ready) == (
        "unchanged", 2, True,
    )  # fmt: skip
    grown = backend.sync("default", plan("default", 5))
    assert grown is not None and (grown.buffer, grown.status_replicas) == ("updated", 2)
    assert stored_buffer(crd, "default")["status"]["replicas"] == 2
