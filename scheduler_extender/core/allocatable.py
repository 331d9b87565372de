"""What a cloud node offers to pods: capacity minus the provider's reservations.

Managed Kubernetes services reserve part of every node for the kubelet, the container runtime
and the OS (``kube-reserved``/``system-reserved``) and keep a hard eviction threshold free;
``allocatable = capacity - reserved - eviction threshold`` is what the scheduler packs against.
Each provider documents its own formula; this module encodes them so the planner can estimate
allocatable for a node type without a cluster.  Pure integer arithmetic: cpu in millicores,
memory in bytes; no I/O (the node-type data file is read by the planner shell).

Sources (cited again next to each formula):
- GKE: https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes
  ("Memory and CPU reservations" and "eviction threshold").
- EKS (Amazon Linux AMI): awslabs/amazon-eks-ami ``files/bootstrap.sh``
  (``get_memory_mebibytes_to_reserve``, ``get_cpu_millicores_to_reserve``, ``evictionHard``)
  and ``files/eni-max-pods.txt`` (max pods = ENIs x (IPv4 per ENI - 1) + 2).
- AKS: MicrosoftDocs/azure-aks-docs ``articles/aks/node-resource-reservations.md``
  (https://learn.microsoft.com/azure/aks/node-resource-reservations).

These are estimates of what the kubelet will report: the kernel keeps a little of the machine's
memory for itself, so the real ``status.capacity.memory`` is slightly below the advertised size.
Operators with a running node should pass its real allocatable instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

KI = 1024
MI = 1024 * KI
GI = 1024 * MI


class Provider(StrEnum):
    """Whose reservation formula applies.  ``NONE`` means the sizes given are already
    allocatable (nothing is subtracted)."""

    NONE = "none"
    GKE = "gke"
    EKS = "eks"
    AKS = "aks"


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a provider keeps back on one node: cpu in millicores, memory in bytes (kube/system
    reserved), plus the hard eviction threshold in bytes."""

    cpu: int
    memory: int
    eviction: int

    @property
    def memory_total(self) -> int:
        return self.memory + self.eviction


@dataclass(frozen=True, slots=True)
class Allocatable:
    """A node's allocatable cpu (millicores), memory (bytes) and pod slots."""

    cpu: int
    memory: int
    pods: int


_Tiers = tuple[tuple[int | None, Fraction], ...]


def _tiered(total: int, tiers: _Tiers, *, floor_each: bool = False) -> Fraction:
    """Sum ``rate * (part of total inside the tier)`` over consecutive tiers ``(upper, rate)``
    (``upper=None``: no upper bound).  ``floor_each`` rounds each tier down to a whole unit."""
    reserved = Fraction(0)
    lower = 0
    for upper, rate in tiers:
        top = total if upper is None else min(total, upper)
        if top <= lower:
            break
        part = (top - lower) * rate
        reserved += math.floor(part) if floor_each else part
        lower = top
    return reserved


#: 6% of the first core, 1% of the next, 0.5% of the next 2, 0.25% of any above 4.
#: ref: GKE plan-node-sizes "CPU reservations"; the EKS AMI copies it (bootstrap.sh).
_CPU_TIERS: _Tiers = (
    (1000, Fraction(6, 100)),
    (2000, Fraction(1, 100)),
    (4000, Fraction(5, 1000)),
    (None, Fraction(25, 10000)),
)

#: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2% above
#: 128 GiB.  ref: GKE plan-node-sizes "Memory reservations" (and AKS before 1.29).
_MEMORY_TIERS: _Tiers = (
    (4 * GI, Fraction(25, 100)),
    (8 * GI, Fraction(20, 100)),
    (16 * GI, Fraction(10, 100)),
    (128 * GI, Fraction(6, 100)),
    (None, Fraction(2, 100)),
)


def tiered_cpu_reserved(cpu: int) -> int:
    """GKE/EKS kube-reserved cpu (millicores) for ``cpu`` millicores of capacity.

    Each tier is rounded down to a whole millicore the way the EKS AMI's shell arithmetic does
    (``(range * percent) / 100 / 100``), so 4 cores reserve 80m and 8 cores 90m.
    """
    return int(_tiered(cpu, _CPU_TIERS, floor_each=True))


def gke_reservation(cpu: int, memory: int) -> Reservation:
    """GKE Standard: tiered memory (255 MiB below 1 GiB), tiered cpu, 100 MiB eviction.

    ref: https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes
    The memory tiers give fractional bytes (6% of 10 GiB is 614.4 MiB); they are rounded up, so
    the estimate errs on the side of less allocatable memory.
    """
    mem = 255 * MI if memory < GI else math.ceil(_tiered(memory, _MEMORY_TIERS))
    return Reservation(tiered_cpu_reserved(cpu), mem, 100 * MI)


def eks_reservation(cpu: int, max_pods: int) -> Reservation:
    """EKS Amazon Linux AMI: memory ``11 MiB * maxPods + 255 MiB``, tiered cpu, 100 MiB
    eviction (``evictionHard: memory.available: 100Mi``).

    ref: awslabs/amazon-eks-ami files/bootstrap.sh get_memory_mebibytes_to_reserve.
    """
    return Reservation(tiered_cpu_reserved(cpu), (11 * max_pods + 255) * MI, 100 * MI)


def eks_max_pods(enis: int, ipv4_per_eni: int) -> int:
    """Pods an EKS node admits with the VPC CNI without prefix delegation: every pod but the
    host-network ones (aws-node, kube-proxy) takes a secondary IP; each ENI's first IP is the
    ENI's own.  ref: awslabs/amazon-eks-ami files/eni-max-pods.txt header."""
    return enis * (ipv4_per_eni - 1) + 2


#: AKS kube-reserved cpu by core count (millicores).
#: ref: azure-aks-docs articles/aks/node-resource-reservations.md "CPU reservations".
AKS_CPU_TABLE = {1: 60, 2: 100, 4: 140, 8: 180, 16: 260, 32: 420, 64: 740}


def aks_cpu_reserved(cpu: int) -> int:
    """AKS kube-reserved cpu.  The documented table is used as is.  For core counts it does not
    list from 4 up (6, 12, 48, 96...), ``100m + 10m per core`` is used: it reproduces every
    listed entry from 4 cores up exactly (4 -> 140 ... 64 -> 740).  Below 4 an unlisted count
    (3) takes the next lower listed entry."""
    cores = max(cpu // 1000, 1)
    if cores in AKS_CPU_TABLE:
        return AKS_CPU_TABLE[cores]
    if cores < 4:
        return AKS_CPU_TABLE[max(c for c in AKS_CPU_TABLE if c <= cores)]
    return 100 + 10 * cores


def aks_reservation(cpu: int, memory: int, max_pods: int) -> Reservation:
    """AKS 1.29 and later: kube-reserved memory is the lesser of ``20 MB * maxPods + 50 MB``
    and 25% of memory; eviction threshold 100 Mi; cpu from the documented table.

    ref: azure-aks-docs articles/aks/node-resource-reservations.md.  The page writes "MB" and
    mixes decimal and binary in its examples; the kubelet takes ``kube-reserved`` in Mi, so
    this reads "20 MB" and "50 MB" as MiB.  (Before 1.29 AKS used GKE's tiers plus a 750 Mi
    eviction threshold; that is not modelled.)
    """
    mem = min((20 * max_pods + 50) * MI, memory // 4)
    return Reservation(aks_cpu_reserved(cpu), mem, 100 * MI)


def reservation(provider: Provider, cpu: int, memory: int, max_pods: int) -> Reservation:
    """The reservation ``provider`` makes on a node of this capacity and pod limit."""
    if provider is Provider.GKE:
        return gke_reservation(cpu, memory)
    if provider is Provider.EKS:
        return eks_reservation(cpu, max_pods)
    if provider is Provider.AKS:
        return aks_reservation(cpu, memory, max_pods)
    return Reservation(0, 0, 0)


def allocatable(provider: Provider, cpu: int, memory: int, max_pods: int) -> Allocatable:
    """Capacity minus the provider's reservation; never negative."""
    r = reservation(provider, cpu, memory, max_pods)
    return Allocatable(max(cpu - r.cpu, 0), max(memory - r.memory_total, 0), max_pods)
