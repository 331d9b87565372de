"""Provider reservation formulas against the numbers their sources publish."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler_extender.core.allocatable import (
    AKS_CPU_TABLE,
    GI,
    MI,
    Provider,
    aks_cpu_reserved,
    aks_reservation,
    allocatable,
    eks_max_pods,
    eks_reservation,
    gke_reservation,
    reservation,
    tiered_cpu_reserved,
)


@pytest.mark.parametrize(
    ("cores", "millicores"),
    [
        (1, 60),  # 6% of the first core
        (2, 70),  # + 1% of the second
        (4, 80),  # + 0.5% of cores 3-4
        (8, 90),  # + 0.25% of each core above 4
        (16, 110),
        (64, 230),
    ],
    ids=["1-core", "2-core", "4-core", "8-core", "16-core", "64-core"],
)
def test_tiered_cpu_reservation(cores: int, millicores: int) -> None:
    # ref: GKE plan-node-sizes "CPU reservations";
    # EKS AMI bootstrap.sh get_cpu_millicores_to_reserve
    assert tiered_cpu_reserved(cores * 1000) == millicores


@pytest.mark.parametrize(
    ("memory_gib", "reserved_plus_eviction_mib"),
    [(8, 1944), (16, 2763), (128, 9644), (256, 12266)],
    ids=["8GiB", "16GiB", "128GiB", "256GiB"],
)
def test_gke_memory_tiers_match_published_table(
    memory_gib: int, reserved_plus_eviction_mib: int
) -> None:
    """The same tiers + 100Mi eviction, tabulated (rounded up to whole MiB) by
    https://docs.nebius.com/kubernetes/node-groups/kube-reserved ("Examples")."""
    r = gke_reservation(4000, memory_gib * GI)
    assert -(-r.memory_total // MI) == reserved_plus_eviction_mib


def test_gke_memory_150gib_matches_calculator() -> None:
    """hatemosphere/gke-node-allocatable-memory-calculator README: 150 GiB reserves 9.8577 GiB
    in total (tiers + 100 MiB eviction)."""
    r = gke_reservation(4000, 150 * GI)
    assert round(r.memory_total / GI, 4) == 9.8577


def test_gke_n1_highmem_4_by_hand() -> None:
    """26 GiB: 25% of 4 + 20% of 4 + 10% of 8 + 6% of 10 GiB = 3276.8 MiB (rounded up to a byte),
    plus the 100 MiB eviction threshold; cpu 60 + 10 + 10 = 80m."""
    r = gke_reservation(4000, 26 * GI)
    assert r.cpu == 80
    assert r.memory == -(-32768 * MI // 10)  # ceil(3276.8 MiB)
    assert r.eviction == 100 * MI
    alloc = allocatable(Provider.GKE, 4000, 26 * GI, 110)
    assert alloc.cpu == 3920
    assert alloc.memory == 26 * GI - r.memory - 100 * MI


def test_gke_small_machine_flat_reservation() -> None:
    assert gke_reservation(1000, 600 * MI).memory == 255 * MI


@pytest.mark.parametrize(
    ("enis", "ips", "max_pods"),
    [(3, 10, 29), (4, 15, 58), (8, 30, 234), (3, 12, 35), (15, 50, 737)],
    ids=["m5.large", "m5.xlarge", "m5.4xlarge", "t3.large", "m5.24xlarge"],
)
def test_eks_max_pods_matches_eni_max_pods_txt(enis: int, ips: int, max_pods: int) -> None:
    # ref: awslabs/amazon-eks-ami files/eni-max-pods.txt (m5.large 29, m5.xlarge 58, ...)
    assert eks_max_pods(enis, ips) == max_pods


def test_eks_memory_reservation_is_per_pod() -> None:
    # 11 MiB * 29 + 255 MiB = 574 MiB (bootstrap.sh get_memory_mebibytes_to_reserve)
    r = eks_reservation(2000, 29)
    assert r.memory == 574 * MI
    assert r.cpu == 70
    assert r.eviction == 100 * MI


@pytest.mark.parametrize(("cores", "millicores"), sorted(AKS_CPU_TABLE.items()), ids=str)
def test_aks_cpu_table(cores: int, millicores: int) -> None:
    # ref: azure-aks-docs node-resource-reservations.md "CPU reservations"
    assert aks_cpu_reserved(cores * 1000) == millicores


def test_aks_cpu_unlisted_counts() -> None:
    assert aks_cpu_reserved(3000) == AKS_CPU_TABLE[2]
    assert aks_cpu_reserved(12000) == 220  # between the 8- and 16-core entries


@pytest.mark.parametrize(
    ("memory", "max_pods", "reserved"),
    [(8 * GI, 30, 650 * MI), (4 * GI, 70, 1 * GI)],
    ids=["8GB-30pods-per-pod-rule", "4GB-70pods-25pct-rule"],
)
def test_aks_memory_examples(memory: int, max_pods: int, reserved: int) -> None:
    """The doc's two examples: 20*30+50 = 650; 25% of 4 < 20*70+50 = 1450.  The doc writes MB;
    read as MiB (the kubelet's unit), 25% of 4 GiB is exactly 1 GiB."""
    r = aks_reservation(4000, memory, max_pods)
    assert r.memory == reserved
    assert r.eviction == 100 * MI


def test_no_provider_reserves_nothing() -> None:
    assert reservation(Provider.NONE, 4000, GI, 110).memory_total == 0
    assert allocatable(Provider.NONE, 4000, GI, 110).memory == GI


@given(
    provider=st.sampled_from(list(Provider)),
    cores=st.integers(1, 256),
    memory=st.integers(256 * MI, 4096 * GI),
    pods=st.integers(1, 737),
)
def test_allocatable_never_exceeds_capacity(
    provider: Provider, cores: int, memory: int, pods: int
) -> None:
    alloc = allocatable(provider, cores * 1000, memory, pods)
    assert 0 <= alloc.cpu <= cores * 1000
    assert 0 <= alloc.memory <= memory
    assert alloc.pods == pods


@given(st.integers(1, 512), st.integers(1, 512))
def test_bigger_machines_reserve_more(a: int, b: int) -> None:
    small, big = sorted((a, b))
    assert tiered_cpu_reserved(small * 1000) <= tiered_cpu_reserved(big * 1000)
    assert gke_reservation(1000, small * GI).memory <= gke_reservation(1000, big * GI).memory
