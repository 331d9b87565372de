"""``core.startup_taint.decide_startup_taint``: when a node's startup taint may go."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler_extender.core.startup_taint import STARTUP_TAINT_PREFIX, decide_startup_taint

KEY = STARTUP_TAINT_PREFIX + "user-images"
IMG = "quay.io/jupyter/scipy-notebook:2024-07-29"
NET = "quay.io/jupyterhub/k8s-network-tools:4.1.0"
USER = {"hub.jupyter.org/node-purpose": "user"}


def decide(**kw: Any) -> Any:
    args: dict[str, Any] = {
        "taint_keys": [KEY, "hub.jupyter.org/dedicated"],
        "key": KEY,
        "labels": USER,
        "node_selector": USER,
        "node_images": frozenset({IMG, NET}),
        "wanted_images": frozenset({IMG, NET}),
        "puller_ready": False,
    }
    return decide_startup_taint(**(args | kw))


@pytest.mark.parametrize(
    ("change", "remove", "waiting", "reason"),
    [
        pytest.param({}, True, False, "every image present", id="all-images"),
        pytest.param({"node_images": frozenset({IMG})}, False, True, "waiting for 1 image(s)",
                     id="one-missing"),
        pytest.param({"node_images": frozenset({IMG}), "puller_ready": True}, True, False,
                     "puller Ready", id="puller-ready"),
        pytest.param({"wanted_images": frozenset(), "node_images": frozenset()}, False, True,
                     "waiting for the image puller", id="puller-only-not-ready"),
        pytest.param({"taint_keys": ["hub.jupyter.org/dedicated"]}, False, False,
                     "no startup taint", id="untainted"),
        pytest.param({"labels": {}}, False, False, "not selected", id="not-selected"),
        pytest.param({"labels": {}, "node_selector": {}}, True, False, "every image present",
                     id="empty-selector-selects-all"),
    ],
)  # fmt: skip
def test_decision(change: dict[str, Any], remove: bool, waiting: bool, reason: str) -> None:
    decision = decide(**change)
    assert (decision.remove, decision.waiting) == (remove, waiting)
    assert reason in decision.reason


names = st.frozensets(st.sampled_from([IMG, NET, "a:1", "b:2"]))


@given(node=names, wanted=names.filter(bool), puller=st.booleans())
def test_never_removes_before_the_images_unless_the_puller_is_ready(
    node: frozenset[str], wanted: frozenset[str], puller: bool
) -> None:
    decision = decide(node_images=node, wanted_images=wanted, puller_ready=puller)
    assert decision.remove == (puller or wanted <= node)
    assert decision.waiting == (not decision.remove)
