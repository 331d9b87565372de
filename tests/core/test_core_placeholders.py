"""The placeholder planner (pure): estimators, windows, sizes, the three count modes, and the
reconcile decision, as tables; invariants with hypothesis."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_extender.core.placeholders import (
    CountMode,
    CountSpec,
    Existing,
    NodeSample,
    PlaceholderObservation,
    PoolObservation,
    PoolSpec,
    SizeMode,
    Window,
    arrival_rate,
    image_pull_seconds,
    local_weekday_minute,
    make_window,
    node_belongs,
    node_placeholder_requests,
    node_ready_seconds,
    parse_clock,
    plan_placeholders,
    plan_pool,
    reconcile_pool,
    users_per_placeholder,
    window_count,
)
from scheduler_extender.core.types import Pod, Resources, Taint, Toleration
from tests.factories import GI, MI, USER_TOLERATIONS, node

MONDAY = 1_767_571_200.0  # 2026-01-05 00:00 UTC, a Monday
USER = Resources(50, 512 * MI, 1)
TEMPLATE = Pod(uid="t", requests=USER, priority=-10, placeholder=True, tolerations=USER_TOLERATIONS)


def sample(
    name: str = "n", created: float = 0.0, ready: float | None = 100.0, **kw: object
) -> NodeSample:
    return NodeSample(name, created, Resources(4000, 16 * GI, 110), ready, **kw)  # type: ignore[arg-type]


# --- time and windows ---


@pytest.mark.parametrize(
    ("time", "offset", "expected"),
    [
        pytest.param(MONDAY, 0, (0, 0), id="monday-midnight"),
        pytest.param(MONDAY + 17 * 3600 + 30 * 60, 0, (0, 1050), id="monday-1730"),
        pytest.param(MONDAY - 60, 0, (6, 1439), id="sunday-2359"),
        pytest.param(MONDAY, 3600, (0, 60), id="utc+1"),
        pytest.param(MONDAY, -3600, (6, 1380), id="utc-1-is-sunday"),
        pytest.param(0.0, 0, (3, 0), id="epoch-was-a-thursday"),
    ],
)
def test_local_weekday_minute(time: float, offset: float, expected: tuple[int, int]) -> None:
    assert local_weekday_minute(time, offset) == expected


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("00:00", 0), ("17:05", 1025), ("23:59", 1439), ("24:00", 1440)],
)
def test_parse_clock(text: str, minutes: int) -> None:
    assert parse_clock(text) == minutes


@pytest.mark.parametrize("text", ["7:00", "24:01", "12:60", "ab:cd", "1200", "", "١٢:٠٠"])
def test_parse_clock_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_clock(text)


@pytest.mark.parametrize(
    ("days", "start", "end", "message"),
    [
        (["Monday"], "17:00", "18:00", "unknown day"),
        ([], "17:00", "18:00", "at least one day"),
        (["Mon"], "17:00", "17:00", "empty window"),
        (["Mon"], "24:00", "02:00", "before 24:00"),
    ],
)
def test_make_window_rejects(days: list[str], start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_window(days, start, end, 1)


CLASS = make_window(["Mon", "Wed"], "17:00", "19:00", 30)
NIGHT = make_window(["Fri"], "22:00", "02:00", 5)


@pytest.mark.parametrize(
    ("window", "weekday", "minute", "active"),
    [
        pytest.param(CLASS, 0, 17 * 60, True, id="class-start-inclusive"),
        pytest.param(CLASS, 0, 19 * 60, False, id="class-end-exclusive"),
        pytest.param(CLASS, 1, 18 * 60, False, id="class-not-tuesday"),
        pytest.param(CLASS, 2, 18 * 60, True, id="class-wednesday"),
        pytest.param(NIGHT, 4, 23 * 60, True, id="night-friday-late"),
        pytest.param(NIGHT, 5, 60, True, id="night-wraps-into-saturday"),
        pytest.param(NIGHT, 5, 3 * 60, False, id="night-over"),
        pytest.param(NIGHT, 4, 60, False, id="night-not-friday-early"),
        pytest.param(make_window(["Sun"], "23:00", "24:00", 1), 6, 1439, True, id="to-24"),
    ],
)
def test_window_active(window: Window, weekday: int, minute: int, active: bool) -> None:
    assert window.active(weekday, minute) is active


def test_overlapping_windows_take_the_largest() -> None:
    small = make_window(["Mon"], "16:00", "20:00", 3)
    at = MONDAY + 18 * 3600
    assert window_count([CLASS, small], at) == 30
    assert window_count([small], at) == 3
    assert window_count([CLASS], MONDAY + 12 * 3600) is None


# --- estimators ---


@pytest.mark.parametrize(
    ("arrivals", "now", "latest", "expected"),
    [
        pytest.param([], 1000.0, True, 0.0, id="none"),
        pytest.param([900.0, 950.0, 999.0], 1000.0, True, 3 / 600, id="long-window"),
        pytest.param([100.0, 300.0], 1000.0, True, 0.0, id="too-old"),
        pytest.param([991, 992, 993, 994, 995], 1000.0, True, 5 / 60, id="burst"),
        pytest.param([995.0, 999.0], 1000.0, True, 2 / 600, id="too-few-for-a-burst"),
        pytest.param([990.0, 1005.0], 1000.0, True, 2 / 600, id="future-counts-now"),
        pytest.param([990.0, 1005.0], 1000.0, False, 1 / 600, id="past-instant-not-yet"),
    ],
)
def test_arrival_rate(arrivals: list[float], now: float, latest: bool, expected: float) -> None:
    rate = arrival_rate(
        sorted(arrivals), now, window=600, burst_window=60, burst_min_arrivals=5, latest=latest
    )
    assert rate == pytest.approx(expected)


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        pytest.param([], 300.0, id="default"),
        pytest.param([sample(ready=None)], 300.0, id="not-ready-teaches-nothing"),
        pytest.param([sample("a", 0, 120), sample("b", 10, 250), sample("c", 20, 200)], 180.0,
                     id="median"),
        pytest.param([sample("a", 0, 100), sample("b", 5, 110), sample("flap", 10, 90_000)],
                     105.0, id="a-flapping-node-does-not-move-it"),
        pytest.param([sample(f"old{i}", i, i + 1000) for i in range(10)]
                     + [sample(f"new{i}", 100 + i, 160 + i) for i in range(10)], 60.0,
                     id="only-the-newest-ten"),
    ],
)  # fmt: skip
def test_node_ready_seconds(nodes: list[NodeSample], expected: float) -> None:
    assert node_ready_seconds(nodes, samples=10, default=300.0) == expected


def test_image_pull_seconds() -> None:
    nodes = [sample("a", 0, 100, images_ready=400), sample("b", 0, 100, images_ready=600),
             sample("c", 0, 100)]  # fmt: skip
    assert image_pull_seconds(nodes, samples=10, default=0.0) == 400.0
    assert image_pull_seconds([sample()], samples=10, default=42.0) == 42.0


# --- sizes ---


@pytest.mark.parametrize(
    ("taints", "selector", "belongs"),
    [
        pytest.param(None, {}, True, id="user-node-tolerated"),
        pytest.param((Taint("gpu", "", "NoSchedule"),), {}, False, id="untolerated"),
        pytest.param((Taint("soft", "", "PreferNoSchedule"),), {}, True, id="soft-taint"),
        pytest.param(None, {"pool": "big"}, False, id="selector-mismatch"),
    ],
)
def test_node_belongs(taints: tuple[Taint, ...] | None, selector: dict, belongs: bool) -> None:
    template = replace(TEMPLATE, node_selector=selector)
    assert node_belongs(template, node("n", taints=taints)) is belongs


def pool(size: SizeMode = SizeMode.USER, **count: object) -> PoolSpec:
    return PoolSpec("p", TEMPLATE, size, CountSpec(**count))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "nodes", "expected"),
    [
        pytest.param(pool(SizeMode.NODE), [], None, id="no-node-no-size"),
        pytest.param(pool(SizeMode.NODE), [sample(overhead=Resources(200, GI, 3))],
                     Resources(3800, 15 * GI, 1), id="allocatable-minus-overhead"),
        pytest.param(pool(SizeMode.NODE), [sample()],
                     Resources(3600, math.floor(16 * GI * 0.9), 1), id="overhead-guess"),
        pytest.param(replace(pool(SizeMode.NODE), node_fraction=0.5),
                     [sample(overhead=Resources())], Resources(2000, 8 * GI, 1), id="fraction"),
        pytest.param(pool(SizeMode.NODE),
                     [sample("a", overhead=Resources()),
                      NodeSample("b", 0, Resources(2000, 32 * GI, 110), 1, overhead=Resources())],
                     Resources(2000, 16 * GI, 1), id="smallest-per-resource"),
        pytest.param(replace(pool(SizeMode.NODE), node_requests=Resources(7000, 28 * GI)), [],
                     Resources(7000, 28 * GI, 1), id="explicit"),
    ],
)  # fmt: skip
def test_node_placeholder_requests(
    spec: PoolSpec, nodes: list[NodeSample], expected: Resources | None
) -> None:
    assert node_placeholder_requests(spec, nodes) == expected


def test_node_placeholder_holds_the_gpus() -> None:
    gpu_user = Resources(1000, 8 * GI, 1, {"nvidia.com/gpu": 1})
    spec = replace(pool(SizeMode.NODE), template=replace(TEMPLATE, requests=gpu_user))
    gpu_node = NodeSample("g", 0, Resources(8000, 64 * GI, 110, {"nvidia.com/gpu": 4,
                          "ephemeral-storage": 10**11}), 1, overhead=Resources())  # fmt: skip
    held = node_placeholder_requests(spec, [gpu_node])
    assert held == Resources(8000, 64 * GI, 1, {"nvidia.com/gpu": 4})
    assert users_per_placeholder(gpu_user, held) == 4


@pytest.mark.parametrize(
    ("user", "held", "pods", "expected"),
    [
        (USER, Resources(4000, 16 * GI, 1), None, 32),
        (USER, Resources(4000, 16 * GI, 1), 20, 20),
        (Resources(0, 450 * 10**6, 1), Resources(7910, 48273 * MI, 1), 101, 101),
        (USER, Resources(10, 10, 1), None, 1),
        (Resources(0, 0, 1), Resources(4000, 16 * GI, 1), None, 1),
    ],
)
def test_users_per_placeholder(
    user: Resources, held: Resources, pods: int | None, expected: int
) -> None:
    assert users_per_placeholder(user, held, pods) == expected


# --- plans ---


def observe(
    arrivals: tuple[float, ...] = (), nodes: tuple[NodeSample, ...] = ()
) -> PoolObservation:
    return PoolObservation(arrivals, nodes)


NOON = MONDAY + 12 * 3600
READY_NODES = (sample("a", NOON - 5000, NOON - 4800), sample("b", NOON - 4000, NOON - 3800))


@pytest.mark.parametrize(
    ("spec", "observed", "at", "desired", "reason"),
    [
        pytest.param(pool(static=3), observe(), NOON, 3, "static", id="static"),
        pytest.param(pool(mode=CountMode.STATIC, static=30, max=20), observe(), NOON, 30,
                     "static", id="static-is-not-clamped"),
        pytest.param(pool(mode=CountMode.SCHEDULE, min=1, windows=(CLASS,)), observe(),
                     MONDAY + 18 * 3600, 30, "window", id="schedule-inside"),
        pytest.param(pool(mode=CountMode.SCHEDULE, min=1, windows=(CLASS,)), observe(),
                     NOON, 1, "outside windows: min", id="schedule-outside"),
        pytest.param(pool(mode=CountMode.ADAPTIVE, min=0, scale_down_delay=0), observe(
            nodes=READY_NODES), NOON, 0, "rate x lead x safety", id="adaptive-quiet"),
        # 30 arrivals in the last 15 min: 1/30 per s x 200 s ready x 1.5 = 10
        pytest.param(pool(mode=CountMode.ADAPTIVE, scale_down_delay=0, burst_min_arrivals=99),
                     observe(tuple(NOON - 30 * i for i in range(30)), READY_NODES), NOON, 10,
                     "rate x lead x safety", id="adaptive-formula"),
        pytest.param(pool(mode=CountMode.ADAPTIVE, max=4, scale_down_delay=0),
                     observe(tuple(NOON - 30 * i for i in range(30)), READY_NODES), NOON, 4,
                     "rate x lead x safety", id="adaptive-max"),
        pytest.param(pool(mode=CountMode.ADAPTIVE, min=2, scale_down_delay=0),
                     observe(nodes=READY_NODES), NOON, 2, "rate x lead x safety",
                     id="adaptive-min"),
        pytest.param(pool(mode=CountMode.ADAPTIVE, scale_down_delay=0, windows=(CLASS,)),
                     observe(nodes=READY_NODES), MONDAY + 18 * 3600, 30, "window floor",
                     id="adaptive-window-floor"),
        # Arrivals 10 minutes ago, none since: the stabilization keeps the higher count.
        pytest.param(pool(mode=CountMode.ADAPTIVE, rate_window=300, burst_min_arrivals=99,
                          scale_down_delay=600, max=100),
                     observe(tuple(NOON - 600 - 10 * i for i in range(30)), READY_NODES), NOON,
                     30, "rate x lead x safety", id="adaptive-falls-slowly"),
        pytest.param(pool(mode=CountMode.ADAPTIVE, rate_window=300, burst_min_arrivals=99,
                          scale_down_delay=0),
                     observe(tuple(NOON - 600 - 10 * i for i in range(30)), READY_NODES), NOON,
                     0, "rate x lead x safety", id="adaptive-no-stabilization"),
        pytest.param(pool(SizeMode.NODE, mode=CountMode.ADAPTIVE, scale_down_delay=0,
                          burst_min_arrivals=99),
                     observe(tuple(NOON - 30 * i for i in range(30)),
                             tuple(replace(n, overhead=Resources()) for n in READY_NODES)),
                     NOON, 1, "rate x lead x safety", id="adaptive-node-sized"),
        pytest.param(pool(SizeMode.NODE, static=2), observe(), NOON, 2,
                     "node size unknown: no ready node of the pool and no nodeRequests",
                     id="node-size-unknown"),
    ],
)  # fmt: skip
def test_plan_pool(
    spec: PoolSpec, observed: PoolObservation, at: float, desired: int, reason: str
) -> None:
    plan = plan_pool(spec, observed, at)
    assert (plan.desired, plan.reason) == (desired, reason)


def test_plan_figures_and_lead_time() -> None:
    spec = pool(mode=CountMode.ADAPTIVE, scale_down_delay=0, burst_min_arrivals=99,
                boot_seconds=60, image_pull_seconds=40)  # fmt: skip
    arrivals = tuple(NOON - 60 * i for i in range(15))  # 15 in 15 min
    plan = plan_pool(spec, observe(arrivals, READY_NODES), NOON)
    assert plan.arrival_rate == pytest.approx(1 / 60)
    assert (plan.ready_seconds, plan.pull_seconds) == (200.0, 40.0)
    # 1/60 per s x (200 + 40 + 60) s x 1.5 = 7.5 -> 8
    assert plan.demand == pytest.approx(7.5) and plan.desired == 8


def test_plan_placeholders_by_pool_and_local_time() -> None:
    a = replace(pool(mode=CountMode.SCHEDULE, windows=(CLASS,)), name="a")
    b = replace(pool(static=2), name="b")
    at = MONDAY + 16 * 3600 + 30 * 60  # 16:30 UTC = 17:30 at UTC+1
    plans = plan_placeholders([a, b], PlaceholderObservation(at, {}, utc_offset=3600))
    assert {k: v.desired for k, v in plans.items()} == {"a": 30, "b": 2}


@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(st.floats(NOON - 4000, NOON + 10), max_size=80),
    lo=st.integers(0, 5),
    span=st.integers(0, 20),
    safety=st.floats(0, 5),
    delay=st.sampled_from([0.0, 300.0, 600.0]),
)
def test_adaptive_stays_within_min_max(
    arrivals: list[float], lo: int, span: int, safety: float, delay: float
) -> None:
    spec = pool(mode=CountMode.ADAPTIVE, min=lo, max=lo + span, safety=safety,
                scale_down_delay=delay)  # fmt: skip
    plan = plan_pool(spec, observe(tuple(arrivals), READY_NODES), NOON)
    assert lo <= plan.desired <= lo + span
    more = plan_pool(spec, observe((*arrivals, NOON, NOON, NOON), READY_NODES), NOON)
    assert more.desired >= plan.desired, "more arrivals never lower the count"


# --- reconcile ---


def ex(name: str, node: str = "", created: float = 0.0, hash_: str = "h", **kw: bool) -> Existing:
    return Existing(name, f"uid-{name}", created, node, hash_, **kw)


@pytest.mark.parametrize(
    ("desired", "hash_", "pods", "create", "delete"),
    [
        pytest.param(3, "h", [], 3, (), id="create-all"),
        pytest.param(3, "h", [ex("a", "n1"), ex("b")], 1, (), id="create-missing"),
        pytest.param(2, "h", [ex("a", "n1"), ex("b", "n1")], 0, (), id="steady"),
        pytest.param(2, "h", [ex("a", "n1"), ex("b"), ex("c", "n2")], 0, ("b",),
                     id="surplus-pending-first"),
        pytest.param(1, "h", [ex("a", "n1", 1), ex("b", "n2", 2), ex("c", "n2", 3)], 0,
                     ("c", "b"), id="surplus-from-the-fullest-node-newest-first"),
        pytest.param(2, "h", [ex("a", "n1"), ex("b", terminating=True)], 1, (),
                     id="terminating-is-replaced-not-deleted"),
        pytest.param(2, "h", [ex("a", "n1"), ex("b", "n1", finished=True)], 1, ("b",),
                     id="finished-is-cleaned-up"),
        pytest.param(2, "new", [ex("a", "n1"), ex("b", "n1", hash_="new")], 1, ("a",),
                     id="stale-spec-replaced"),
        pytest.param(2, None, [ex("a", "n1", hash_="x")], 0, (), id="unknown-size-holds"),
        pytest.param(0, None, [ex("a", "n1", hash_="x")], 0, ("a",),
                     id="unknown-size-still-scales-down"),
        pytest.param(0, "h", [ex("a")], 0, ("a",), id="zero"),
    ],
)  # fmt: skip
def test_reconcile_pool(
    desired: int, hash_: str | None, pods: list[Existing], create: int, delete: tuple[str, ...]
) -> None:
    actions = reconcile_pool(desired, hash_, pods)
    assert (actions.create, actions.delete) == (create, delete)


@settings(max_examples=200, deadline=None)
@given(
    desired=st.integers(0, 8),
    pods=st.lists(
        st.tuples(st.sampled_from(["", "n1", "n2"]), st.sampled_from(["h", "old"]),
                  st.booleans(), st.booleans()),
        max_size=12,
    ),
)  # fmt: skip
def test_reconcile_converges(desired: int, pods: list[tuple[str, str, bool, bool]]) -> None:
    existing = [
        ex(f"p{i}", node, float(i), h, terminating=term, finished=fin and not term)
        for i, (node, h, term, fin) in enumerate(pods)
    ]
    actions = reconcile_pool(desired, "h", existing)
    deleted = set(actions.delete)
    assert not deleted & {p.name for p in existing if p.terminating}, "terminating left alone"
    after = [p for p in existing if p.name not in deleted and not p.terminating]
    assert all(p.spec_hash == "h" and not p.finished for p in after)
    assert len(after) + actions.create == desired
    surplus_bound = [
        p for p in existing
        if p.name in deleted and p.node and p.spec_hash == "h" and not p.finished
    ]  # fmt: skip
    if surplus_bound:
        assert all(p.node for p in after), "bound placeholders go only after pending ones"


def test_plans_are_deterministic() -> None:
    spec = pool(mode=CountMode.ADAPTIVE)
    obs = observe(tuple(NOON - 7 * i for i in range(50)), READY_NODES)
    assert plan_pool(spec, obs, NOON) == plan_pool(spec, obs, NOON)


def test_tolerations_decide_membership_of_tainted_pools() -> None:
    gpu = Taint("nvidia.com/gpu", "present", "NoSchedule")
    template = replace(TEMPLATE, tolerations=(Toleration("nvidia.com/gpu", "Exists"),))
    assert node_belongs(template, node("g", taints=(gpu,)))
    assert not node_belongs(TEMPLATE, node("g", taints=(gpu,)))
