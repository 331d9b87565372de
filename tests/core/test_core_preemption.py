"""Preemption steering: placeholders before users, image-ready nodes, then the most packed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scheduler_extender.core.policy import PolicyConfig
from scheduler_extender.core.preemption import Candidate, choose_candidates, classify_victims
from scheduler_extender.core.types import Pod, Snapshot
from tests.factories import GI, node, placeholder, pod, snapshot

CFG = PolicyConfig()


def _cluster() -> tuple[dict[str, Pod], Snapshot]:
    ph_packed = placeholder("packed")
    ph_empty = placeholder("empty-noimage")
    ph_img = placeholder("empty-image")
    user_packed = pod(cpu=3000, memory=20 * GI, node_name="packed")
    user_mixed = pod(node_name="mixed")
    pods = {
        "ph_packed": ph_packed,
        "ph_empty": ph_empty,
        "ph_img": ph_img,
        "user_packed": user_packed,
        "user_mixed": user_mixed,
    }
    snap = snapshot(
        [
            node("packed", created=1.0),
            node("empty-noimage", images=(), created=3.0),
            node("empty-image", created=2.0),
            node("mixed", created=0.5),
        ],
        pods.values(),
    )
    return pods, snap


def _cand(node_name: str, *victims: Pod, pdb: int = 0) -> Candidate:
    return Candidate(
        node_name, tuple(v.uid for v in victims), tuple(v.placeholder for v in victims), pdb
    )


def test_placeholder_only_candidates_win_over_user_victims() -> None:
    pods, snap = _cluster()
    cands = [_cand("mixed", pods["user_mixed"]), _cand("empty-image", pods["ph_img"])]
    assert choose_candidates(pod(), cands, snap, CFG) == ("empty-image",)


def test_user_victims_are_kept_when_nothing_else_exists() -> None:
    pods, snap = _cluster()
    cands = [_cand("mixed", pods["user_mixed"])]
    assert choose_candidates(pod(), cands, snap, CFG) == ("mixed",)


def test_image_holding_node_beats_image_less_node() -> None:
    pods, snap = _cluster()
    cands = [_cand("empty-noimage", pods["ph_empty"]), _cand("empty-image", pods["ph_img"])]
    assert choose_candidates(pod(), cands, snap, CFG) == ("empty-image",)


def test_most_packed_by_users_wins_among_equals() -> None:
    pods, snap = _cluster()
    cands = [_cand("empty-image", pods["ph_img"]), _cand("packed", pods["ph_packed"])]
    assert choose_candidates(pod(), cands, snap, CFG) == ("packed",)


def test_keep_all_returns_every_candidate_best_first() -> None:
    pods, snap = _cluster()
    cands = [
        _cand("empty-noimage", pods["ph_empty"]),
        _cand("empty-image", pods["ph_img"]),
        _cand("packed", pods["ph_packed"]),
    ]
    config = replace(CFG, preempt_keep=0)
    # image filter keeps the two image holders, packed first
    assert choose_candidates(pod(), cands, snap, config) == ("packed", "empty-image")


def test_pod_without_images_skips_the_image_step() -> None:
    pods, snap = _cluster()
    cands = [_cand("empty-noimage", pods["ph_empty"]), _cand("empty-image", pods["ph_img"])]
    config = replace(CFG, preempt_keep=0)
    chosen = choose_candidates(pod(images=()), cands, snap, config)
    assert set(chosen) == {"empty-noimage", "empty-image"}


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        pytest.param([], (), id="no-candidates"),
        pytest.param([Candidate("packed", (), ())], (), id="no-victims-is-dropped"),
        pytest.param([Candidate("ghost", ("u1",), (None,))], ("ghost",),
                     id="unknown-node-kept-if-alone"),
    ],
)  # fmt: skip
def test_edge_cases(candidates: list[Candidate], expected: tuple[str, ...]) -> None:
    _, snap = _cluster()
    assert choose_candidates(pod(), candidates, snap, CFG) == expected


def test_unknown_victims_count_as_users() -> None:
    pods, snap = _cluster()
    unknown = Candidate("packed", ("who-knows",), classify_victims(["who-knows"], snap))
    assert unknown.placeholder_victims == (None,)
    cands = [unknown, _cand("empty-noimage", pods["ph_empty"])]
    assert choose_candidates(pod(), cands, snap, CFG) == ("empty-noimage",)


def test_classify_victims() -> None:
    pods, snap = _cluster()
    uids = [pods["ph_img"].uid, pods["user_mixed"].uid, "missing"]
    assert classify_victims(uids, snap) == (True, False, None)


def test_fewest_pdb_violations_come_before_packing() -> None:
    """kube-scheduler's own choice starts with the fewest PDB violations; with one candidate
    kept, steering must not hand it a violating one when a clean one exists."""
    pods, snap = _cluster()
    cands = [
        _cand("packed", pods["ph_packed"], pdb=1),
        _cand("empty-image", pods["ph_img"], pdb=0),
    ]
    assert choose_candidates(pod(), cands, snap, CFG) == ("empty-image",)
