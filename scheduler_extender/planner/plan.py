"""The resolved plan: the node after flags and catalog (capacity, reservations, DaemonSets, the
space left for users), how many users fit and what binds, the overcommit risk and the
guarantee that keeps it under target.  Every computation is in ``core.capacity`` and
``core.allocatable``; this module only assembles their inputs and results."""

from __future__ import annotations

import argparse
import difflib
import math
import random
from dataclasses import dataclass, field
from fractions import Fraction

from scheduler_extender.core.allocatable import (
    MI,
    Allocatable,
    Provider,
    Reservation,
    allocatable,
    reservation,
)
from scheduler_extender.core.capacity import (
    Fit,
    HeavyShape,
    MonteCarloEstimate,
    NodeSpace,
    Recommendation,
    UsageModel,
    UserRequests,
    fit_users,
    heavy_users_to_overflow,
    overflow_probability,
    recommend,
    sample_overflow,
)
from scheduler_extender.planner.catalog import (
    DEFAULT_MAX_PODS,
    Catalog,
)
from scheduler_extender.planner.inputs import (
    MAX_DRAWS,
    MAX_PODS_LIMIT,
    PlanError,
    parse_count,
    parse_cpu,
    parse_memory,
    parse_probability,
)


@dataclass(frozen=True, slots=True)
class NodePlan:
    """The node after flags and catalog are resolved: capacity, what the provider reserves,
    allocatable, the DaemonSets' share, and the rest (``space``) for users."""

    name: str
    provider: Provider
    cpu: int
    memory: int
    reserved: Reservation
    allocatable: Allocatable
    daemonset_cpu: int
    daemonset_memory: int
    daemonset_pods: int
    daemonset_names: tuple[str, ...]
    space: NodeSpace
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    node: NodePlan
    user: UserRequests
    mem_limit: int
    cpu_limit: int | None
    z2jh_units: bool
    fit: Fit
    model: UsageModel
    base_defaulted: bool
    occupancy: int
    risk: Fraction
    overflow_at: int | None
    monte_carlo: MonteCarloEstimate | None
    seed: int
    recommendation: Recommendation
    two_to_one_guarantee: int
    two_to_one_fit: Fit
    two_to_one_risk: Fraction
    notes: tuple[str, ...] = field(default=())


def resolve_node(args: argparse.Namespace, catalog: Catalog) -> NodePlan:
    """The node the flags describe, with allocatable and DaemonSet overhead worked out."""
    if args.node_type and (args.node_cpu or args.node_memory):
        raise PlanError("--node-type", "give either --node-type or --node-cpu/--node-memory")
    notes: list[str] = []
    if args.node_type:
        if args.provider:
            raise PlanError("--provider", "only applies to --node-cpu/--node-memory")
        nt = catalog.node_types.get(args.node_type)
        if nt is None:
            close = difflib.get_close_matches(args.node_type, list(catalog.node_types), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise PlanError(
                "--node-type", f"unknown node type {args.node_type!r}{hint} (see --list-node-types)"
            )
        info = catalog.providers[nt.provider]
        name, provider, cpu, memory = nt.name, nt.provider, nt.cpu, nt.memory
        default_pods = nt.default_max_pods(info)
        dss = info.daemonsets
        if info.note:
            notes.append(info.note)
    else:
        if not (args.node_cpu and args.node_memory):
            raise PlanError(
                "--node-type", "give a --node-type, or both --node-cpu and --node-memory"
            )
        cpu = parse_cpu("--node-cpu", args.node_cpu)
        memory = parse_memory("--node-memory", args.node_memory)
        if cpu <= 0:
            raise PlanError("--node-cpu", "must be positive")
        if memory <= 0:
            raise PlanError("--node-memory", "must be positive")
        provider = Provider(args.provider or Provider.NONE.value)
        info_or_none = catalog.providers.get(provider)
        name = f"{args.node_cpu} cpu / {args.node_memory} memory"
        default_pods = (
            info_or_none.default_max_pods if info_or_none and info_or_none.default_max_pods else 0
        ) or DEFAULT_MAX_PODS
        dss = info_or_none.daemonsets if info_or_none else ()
        if provider is Provider.NONE:
            notes.append("--node-cpu/--node-memory are taken as allocatable (no reservation).")
    max_pods = default_pods
    if args.max_pods is not None:
        max_pods = parse_count("--max-pods", args.max_pods, maximum=MAX_PODS_LIMIT)
    if max_pods <= 0:
        raise PlanError("--max-pods", "must be positive")
    reserved = reservation(provider, cpu, memory, max_pods)
    alloc = allocatable(provider, cpu, memory, max_pods)
    ds_cpu = sum(d.cpu for d in dss)
    ds_memory = sum(d.memory for d in dss)
    ds_pods = len(dss)
    names = tuple(d.name for d in dss)
    if args.daemonset_cpu is not None:
        ds_cpu, names = parse_cpu("--daemonset-cpu", args.daemonset_cpu), ("(given)",)
    if args.daemonset_memory is not None:
        ds_memory, names = parse_memory("--daemonset-memory", args.daemonset_memory), ("(given)",)
    if args.daemonset_pods is not None:
        ds_pods, names = parse_count("--daemonset-pods", args.daemonset_pods), ("(given)",)
    space = NodeSpace(alloc.cpu - ds_cpu, alloc.memory - ds_memory, alloc.pods - ds_pods)
    return NodePlan(
        name,
        provider,
        cpu,
        memory,
        reserved,
        alloc,
        ds_cpu,
        ds_memory,
        ds_pods,
        names,
        space,
        tuple(notes),
    )


def build_plan(args: argparse.Namespace, catalog: Catalog) -> Plan:
    """Every number the planner reports, from parsed flags."""
    node = resolve_node(args, catalog)
    if args.mem_guarantee is None:
        raise PlanError("--mem-guarantee", "required (the user pods' memory request)")
    if args.mem_limit is None:
        raise PlanError("--mem-limit", "required (the user pods' memory limit)")
    z2jh = bool(args.z2jh_units)
    mem_g = parse_memory("--mem-guarantee", args.mem_guarantee, z2jh=z2jh)
    mem_l = parse_memory("--mem-limit", args.mem_limit, z2jh=z2jh)
    if mem_l <= 0:
        raise PlanError("--mem-limit", "must be positive")
    if mem_l < mem_g:
        raise PlanError(
            "--mem-limit",
            f"must be at least --mem-guarantee ({args.mem_limit} < {args.mem_guarantee})",
        )
    cpu_g = parse_cpu("--cpu-guarantee", args.cpu_guarantee)
    cpu_l = None if args.cpu_limit is None else parse_cpu("--cpu-limit", args.cpu_limit)
    if cpu_l is not None and cpu_l < cpu_g:
        raise PlanError(
            "--cpu-limit",
            f"must be at least --cpu-guarantee ({args.cpu_limit} < {args.cpu_guarantee})",
        )
    user = UserRequests(cpu_g, mem_g)

    base_defaulted = args.base_use is None
    base = mem_g if base_defaulted else parse_memory("--base-use", args.base_use)
    heavy = mem_l if args.heavy_use is None else parse_memory("--heavy-use", args.heavy_use)
    if heavy > mem_l:
        raise PlanError("--heavy-use", "cannot exceed --mem-limit: the container is killed there")
    if base > heavy:
        flag = "--base-use" if not base_defaulted else "--heavy-use"
        raise PlanError(flag, "the base use must not exceed the heavy use")
    p = parse_probability("--heavy-probability", args.heavy_probability)
    target = parse_probability("--risk-target", args.risk_target, open_interval=True)
    draws = parse_count("--draws", args.draws, maximum=MAX_DRAWS)
    seed = parse_count("--seed", args.seed)
    model = UsageModel(base, heavy, p, HeavyShape(args.heavy_shape))

    fit = fit_users(node.space, user)
    occupancy = fit.users
    if args.users is not None:
        occupancy = parse_count("--users", args.users)
        if occupancy > fit.users:
            raise PlanError(
                "--users", f"{occupancy} is more than the {fit.users} users the node fits"
            )
    capacity = node.space.memory
    risk = overflow_probability(model, occupancy, capacity)
    mc = sample_overflow(model, occupancy, capacity, draws, random.Random(seed)) if draws else None
    two_g = math.ceil(mem_l / 2)
    two_fit = fit_users(node.space, UserRequests(cpu_g, two_g))
    notes = list(node.notes)
    if fit.users == 0:
        notes.append("No user fits on this node: the DaemonSets or one user's requests fill it.")
    if base_defaulted:
        notes.append(
            "Base use defaults to the memory guarantee; pass --base-use with a typical user's "
            "measured memory (e.g. the median of container_memory_working_set_bytes)."
        )
    return Plan(
        node=node,
        user=user,
        mem_limit=mem_l,
        cpu_limit=cpu_l,
        z2jh_units=z2jh,
        fit=fit,
        model=model,
        base_defaulted=base_defaulted,
        occupancy=occupancy,
        risk=risk,
        overflow_at=heavy_users_to_overflow(model, occupancy, capacity),
        monte_carlo=mc,
        seed=seed,
        recommendation=recommend(node.space, user, model, target),
        two_to_one_guarantee=two_g,
        two_to_one_fit=two_fit,
        two_to_one_risk=overflow_probability(model, two_fit.users, capacity),
        notes=tuple(notes),
    )


def suggested_guarantee(rec: Recommendation) -> int | None:
    """A memory guarantee to write in config: the largest one that keeps the recommended
    packing, rounded down to a whole MiB when that stays inside the range.  The largest, not
    the smallest, because within one packing a bigger guarantee costs nothing and protects
    each user more (the kubelet evicts pods using most above their request first)."""
    if rec.guarantee_max is None:
        return None
    rounded = rec.guarantee_max // MI * MI
    low = rec.guarantee_min or 1
    return rounded if rounded >= low else rec.guarantee_max
