"""The startup taint (pure): which keys the Cluster Autoscaler treats as startup taints, and the
decision to remove ours from a node."""

from __future__ import annotations

import pytest

from scheduler_extender.core.matching import first_untolerated
from scheduler_extender.core.startup_taint import (
    DEFAULT_STARTUP_TAINT_KEY,
    TaintDecision,
    has_startup_taint,
    is_startup_taint,
    startup_taint,
    startup_taint_decision,
    startup_toleration,
    without_taint,
)
from scheduler_extender.core.types import Taint

KEY = DEFAULT_STARTUP_TAINT_KEY
TAINT = startup_taint(KEY)
DEDICATED = Taint("hub.jupyter.org/dedicated", "user", "NoSchedule")
IMAGE = "quay.io/jupyter/scipy-notebook:2024-01-15"
OTHER = "gcr.io/binderhub/r2d-example:2024.01"


@pytest.mark.parametrize(
    ("key", "extra", "expected"),
    [
        ("startup-taint.cluster-autoscaler.kubernetes.io/hub-images", (), True),
        ("ignore-taint.cluster-autoscaler.kubernetes.io/anything", (), True),
        ("status-taint.cluster-autoscaler.kubernetes.io/x", (), False),
        ("hub.jupyter.org/dedicated", (), False),
        ("example.com/warming", ("example.com/warming",), True),
        ("startup-taint.cluster-autoscaler.kubernetes.io", (), False),
    ],
    ids=["startup-prefix", "ignore-prefix", "status-prefix", "other", "flag", "no-slash"],
)
def test_which_keys_ca_treats_as_startup_taints(
    key: str, extra: tuple[str, ...], expected: bool
) -> None:
    assert is_startup_taint(key, extra) is expected


def test_users_do_not_tolerate_it_placeholders_do() -> None:
    assert first_untolerated((TAINT,), ()) == TAINT
    assert first_untolerated((TAINT,), (startup_toleration(KEY),)) is None
    assert has_startup_taint((DEDICATED, TAINT)) and not has_startup_taint((DEDICATED,))


def test_removal_keeps_the_other_taints_in_order() -> None:
    soft = Taint("DeletionCandidateOfClusterAutoscaler", "", "PreferNoSchedule")
    assert without_taint((DEDICATED, TAINT, soft), KEY) == (DEDICATED, soft)


@pytest.mark.parametrize(
    ("taints", "images", "required", "kwargs", "expected"),
    [
        pytest.param((DEDICATED,), {IMAGE}, {IMAGE}, {}, TaintDecision(False, "no startup taint"),
                     id="no-taint"),
        pytest.param((DEDICATED, TAINT), {IMAGE, OTHER}, {IMAGE}, {},
                     TaintDecision(True, "images present"), id="images-present"),
        pytest.param((TAINT,), {IMAGE}, {IMAGE, OTHER}, {},
                     TaintDecision(False, "waiting for images", (OTHER,)), id="one-missing"),
        pytest.param((TAINT,), set(), {IMAGE}, {"puller_ready": True},
                     TaintDecision(True, "image puller ready", (IMAGE,)), id="puller-ready"),
        pytest.param((TAINT,), set(), set(), {},
                     TaintDecision(False, "waiting for the image puller"), id="no-images-listed"),
        pytest.param((TAINT,), set(), {IMAGE}, {"ready_since": 100.0, "now": 1000.0,
                                                "max_wait": 900.0},
                     TaintDecision(True, "timed out after 900 s without the images", (IMAGE,)),
                     id="timed-out"),
        pytest.param((TAINT,), set(), {IMAGE}, {"ready_since": 100.0, "now": 999.0,
                                                "max_wait": 900.0},
                     TaintDecision(False, "waiting for images", (IMAGE,)), id="not-yet-timed-out"),
    ],
)  # fmt: skip
def test_decision(
    taints: tuple[Taint, ...],
    images: set[str],
    required: set[str],
    kwargs: dict[str, object],
    expected: TaintDecision,
) -> None:
    assert startup_taint_decision(taints, images, required, key=KEY, **kwargs) == expected  # type: ignore[arg-type]


def test_another_key_is_not_ours_to_remove() -> None:
    theirs = Taint("startup-taint.cluster-autoscaler.kubernetes.io/cni", "true", "NoSchedule")
    decision = startup_taint_decision((theirs,), {IMAGE}, {IMAGE}, key=KEY)
    assert decision == TaintDecision(False, "no startup taint")
