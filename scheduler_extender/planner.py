"""``scheduler-extender plan``: users per node and memory-overcommit risk, before deploying.

The shell around ``core.capacity`` and ``core.allocatable``: it parses flags (Kubernetes
quantities, or z2jh's powers-of-1024 memory syntax with ``--z2jh-units``), reads the node-type
data file, seeds the Monte Carlo generator, and prints a table or JSON.  Every computation is in
the pure core; this module only turns text into integers and results back into text.

Bad input never raises: it prints ``scheduler-extender plan: error: --flag: problem`` and
returns 2, like argparse does for its own errors.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from scheduler_extender.convert import ConversionError, quantity
from scheduler_extender.core.allocatable import (
    GI,
    MI,
    Allocatable,
    Provider,
    Reservation,
    allocatable,
    eks_max_pods,
    reservation,
)
from scheduler_extender.core.capacity import (
    Constraint,
    Fit,
    HeavyShape,
    MonteCarloEstimate,
    NodeSpace,
    Recommendation,
    UsageModel,
    UserRequests,
    fit_users,
    heavy_users_to_overflow,
    node_demand,
    overflow_probability,
    recommend,
    sample_overflow,
)

PROG = "scheduler-extender plan"
NODE_TYPES_FILE = "node_types.yaml"
#: kubelet's default ``maxPods``.
DEFAULT_MAX_PODS = 110
DEFAULT_HEAVY_PROBABILITY = "0.1"
DEFAULT_RISK_TARGET = "0.01"
DEFAULT_DRAWS = 20_000
MAX_DRAWS = 2_000_000
#: No managed provider admits more pods per node (EKS's largest is 737); it also bounds the
#: exact risk sum, whose cost grows with the users on a node.
MAX_PODS_LIMIT = 1000
#: KubeSpawner's ByteSpecification suffixes (jupyterhub/kubespawner kubespawner/traitlets.py).
Z2JH_SUFFIXES = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class PlanError(Exception):
    """Bad input, reported as ``--flag: message`` (or just ``message``) with exit code 2."""

    def __init__(self, flag: str | None, message: str) -> None:
        super().__init__(f"{flag}: {message}" if flag else message)


# --- node-type catalog -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaemonSet:
    name: str
    cpu: int
    memory: int
    source: str


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    provider: Provider
    title: str
    default_max_pods: int | None
    sources: tuple[str, ...]
    daemonsets: tuple[DaemonSet, ...]
    note: str


@dataclass(frozen=True, slots=True)
class NodeType:
    name: str
    provider: Provider
    cpu: int  # millicores
    memory: int  # bytes
    enis: int | None = None
    ipv4_per_eni: int | None = None

    def default_max_pods(self, info: ProviderInfo) -> int:
        if self.enis is not None and self.ipv4_per_eni is not None:
            return eks_max_pods(self.enis, self.ipv4_per_eni)
        return info.default_max_pods or DEFAULT_MAX_PODS


@dataclass(frozen=True, slots=True)
class Catalog:
    providers: Mapping[Provider, ProviderInfo]
    node_types: Mapping[str, NodeType]


def _millicores(value: Decimal) -> int:
    return math.ceil(value * 1000)


def _bytes(value: Decimal) -> int:
    return math.ceil(value)


def parse_catalog(text: str, origin: str = NODE_TYPES_FILE) -> Catalog:
    """The node-type catalog from YAML text; a malformed entry raises ``ValueError`` naming it."""
    doc = yaml.safe_load(text)
    try:
        providers = {}
        for key, raw in doc["providers"].items():
            provider = Provider(key)
            dss = tuple(
                DaemonSet(
                    d["name"],
                    _millicores(quantity(d["cpu"], f"{key}.daemonsets.cpu")),
                    _bytes(quantity(d["memory"], f"{key}.daemonsets.memory")),
                    d["source"],
                )
                for d in raw.get("daemonsets", ())
            )
            providers[provider] = ProviderInfo(
                provider,
                raw["title"],
                raw.get("default_max_pods"),
                tuple(raw.get("sources", ())),
                dss,
                raw.get("note", ""),
            )
        types = {}
        for name, raw in doc["node_types"].items():
            provider = Provider(raw["provider"])
            if provider not in providers:
                raise ValueError(f"unknown provider {provider}")
            types[name] = NodeType(
                name,
                provider,
                _millicores(quantity(raw["cpu"], f"{name}.cpu")),
                _bytes(quantity(raw["memory"], f"{name}.memory")),
                raw.get("enis"),
                raw.get("ipv4_per_eni"),
            )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{origin}: malformed entry: {exc}") from exc
    return Catalog(providers, types)


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped in ``scheduler_extender/data/node_types.yaml``."""
    text = resources.files("scheduler_extender.data").joinpath(NODE_TYPES_FILE).read_text("utf-8")
    return parse_catalog(text)


# --- flag parsing ----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` returns 2 with one message."""

    def error(self, message: str) -> Any:  # argparse's signature returns NoReturn
        raise PlanError(None, message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description=(
            "Users per node and memory-overcommit risk for a node type and a guarantee/limit "
            "pair. Quantities are Kubernetes quantities: M = 10^6 bytes, Mi = 2^20 bytes, "
            "0.05 or 50m cpu."
        ),
        epilog="'scheduler-extender plan choices --help': z2jh profileList resource choices "
        "for a node type, from the same arithmetic.",
    )
    node = p.add_argument_group("node (a --node-type, or --node-cpu and --node-memory)")
    node.add_argument("--node-type", help="a node type from the catalog (--list-node-types)")
    node.add_argument("--node-cpu", help="node cpu, e.g. 4 or 3920m")
    node.add_argument("--node-memory", help="node memory, e.g. 26G or 24Gi")
    node.add_argument(
        "--provider",
        choices=[p.value for p in Provider],
        help="with --node-cpu/--node-memory: treat them as capacity and subtract this "
        "provider's reservation (default none: they are already allocatable)",
    )
    node.add_argument("--max-pods", help="the kubelet's maxPods (default: 110 or the type's)")
    node.add_argument("--daemonset-cpu", help="cpu every node's DaemonSets request in total")
    node.add_argument("--daemonset-memory", help="memory every node's DaemonSets request")
    node.add_argument("--daemonset-pods", help="number of DaemonSet pods on every node")
    node.add_argument(
        "--list-node-types", action="store_true", help="list the catalog with estimates and exit"
    )

    user = p.add_argument_group("user pods (z2jh singleuser.cpu / singleuser.memory)")
    user.add_argument("--mem-guarantee", help="memory guarantee (request), e.g. 512M")
    user.add_argument("--mem-limit", help="memory limit, e.g. 4G")
    user.add_argument("--cpu-guarantee", default="0", help="cpu guarantee (request), e.g. 0.05")
    user.add_argument("--cpu-limit", help="cpu limit, e.g. 4")
    user.add_argument(
        "--z2jh-units",
        action="store_true",
        help="read --mem-guarantee/--mem-limit as z2jh's config.yaml does: K, M, G, T are "
        "powers of 1024 (KubeSpawner's ByteSpecification), so 512M means 512Mi",
    )

    model = p.add_argument_group("usage model for the overcommit risk")
    model.add_argument("--base-use", help="memory a user uses when not heavy (default: guarantee)")
    model.add_argument("--heavy-use", help="memory a heavy user uses (default: the limit)")
    model.add_argument(
        "--heavy-probability",
        default=DEFAULT_HEAVY_PROBABILITY,
        help=f"chance each user is heavy at a given moment (default {DEFAULT_HEAVY_PROBABILITY})",
    )
    model.add_argument(
        "--heavy-shape",
        choices=[s.value for s in HeavyShape],
        default=HeavyShape.SPIKE.value,
        help="spike: heavy users use exactly --heavy-use; uniform: anywhere from --base-use "
        "to --heavy-use (default spike)",
    )
    model.add_argument("--users", help="users on the node for the risk (default: a full node)")
    model.add_argument(
        "--risk-target",
        default=DEFAULT_RISK_TARGET,
        help=f"largest acceptable overflow probability (default {DEFAULT_RISK_TARGET})",
    )
    model.add_argument(
        "--draws",
        default=str(DEFAULT_DRAWS),
        help=f"Monte Carlo draws for the cross-check, 0 to skip (default {DEFAULT_DRAWS})",
    )
    model.add_argument("--seed", default="0", help="Monte Carlo seed (default 0)")

    p.add_argument("--output", choices=["table", "json"], default="table")
    return p


def parse_quantity(flag: str, text: str) -> Decimal:
    """A non-negative Kubernetes quantity, or a ``PlanError`` naming ``flag``."""
    try:
        return quantity(text.strip(), flag)
    except ConversionError as exc:
        if exc.problem.endswith("must not be negative"):
            raise PlanError(flag, f"must not be negative, got {text!r}") from None
        if exc.problem.endswith(("not finite", "out of range")):
            raise PlanError(flag, f"{text!r} is not a finite quantity in range") from None
        raise PlanError(
            flag, f"{text!r} is not a Kubernetes quantity (e.g. 512Mi, 4G, 0.05, 50m)"
        ) from None


def parse_memory(flag: str, text: str, *, z2jh: bool = False) -> int:
    """Bytes from a Kubernetes quantity, or from z2jh's syntax when ``z2jh`` is set."""
    if not z2jh:
        return _bytes(parse_quantity(flag, text))
    raw = text.strip()
    number, factor = raw, 1
    if raw and raw[-1] in Z2JH_SUFFIXES:
        number, factor = raw[:-1], Z2JH_SUFFIXES[raw[-1]]
    try:
        value = Decimal(number)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite():
        raise PlanError(
            flag,
            f"{text!r} is not z2jh memory syntax: a number of bytes or a K, M, G or T suffix "
            "(powers of 1024), e.g. 512M",
        )
    if value < 0:
        raise PlanError(flag, f"must not be negative, got {text!r}")
    return math.floor(value * factor)  # KubeSpawner: int(float(num) * unit)


def parse_cpu(flag: str, text: str) -> int:
    return _millicores(parse_quantity(flag, text))


def parse_count(flag: str, text: str, *, maximum: int | None = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise PlanError(flag, f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise PlanError(flag, f"must not be negative, got {text!r}")
    if maximum is not None and value > maximum:
        raise PlanError(flag, f"must be at most {maximum}, got {value}")
    return value


def parse_probability(flag: str, text: str, *, open_interval: bool = False) -> Fraction:
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise PlanError(flag, f"expected a probability such as 0.1 or 1/10, got {text!r}") from None
    if open_interval and not 0 < value < 1:
        raise PlanError(flag, f"must be strictly between 0 and 1, got {text!r}")
    if not 0 <= value <= 1:
        raise PlanError(flag, f"must be between 0 and 1, got {text!r}")
    return value


# --- the resolved plan -----------------------------------------------------------------------


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


# --- output ----------------------------------------------------------------------------------


def fmt_bytes(n: int) -> str:
    """Exact Kubernetes notation when the value is round (26Gi, 512M), else binary units to
    two decimals (22.65Gi, 153.6Mi)."""
    if n == 0:
        return "0"
    units = (("Gi", GI), ("G", 10**9)) if abs(n) >= GI else (("Mi", MI), ("M", 10**6))
    for unit, size in units:
        if n % size == 0:
            return f"{n // size}{unit}"
    return f"{n / GI:.2f}Gi" if abs(n) >= GI else f"{n / MI:.1f}Mi"


def fmt_cpu(m: int) -> str:
    return f"{m // 1000}" if m % 1000 == 0 else f"{m}m"


def fmt_z2jh(n: int) -> str:
    """How z2jh's config.yaml would spell ``n`` bytes (its M means MiB)."""
    for unit, size in (("G", GI), ("M", MI), ("K", 1024)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def fmt_p(p: Fraction | float) -> str:
    value = float(p)
    if value == 0:
        return "0"
    if value < 1e-4:
        return f"{value:.2e}"
    return f"{value:.2%}"


def _ratio(limit: int | None, guarantee: int) -> float | None:
    if limit is None or guarantee <= 0:
        return None
    return limit / guarantee


def _fit_json(fit: Fit) -> dict[str, Any]:
    return {
        "users": fit.users,
        "per_constraint": {c.value: n for c, n in fit.per_constraint.items()},
        "binding": [c.value for c in fit.binding],
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON data: integers in base units (millicores, bytes), probabilities
    as floats (the exact rationals can run to thousands of digits)."""
    n = plan.node
    rec = plan.recommendation
    mc = plan.monte_carlo
    suggested = suggested_guarantee(rec)
    return {
        "node": {
            "name": n.name,
            "provider": n.provider.value,
            "capacity": {"cpu_millicores": n.cpu, "memory_bytes": n.memory},
            "reserved": {
                "cpu_millicores": n.reserved.cpu,
                "memory_bytes": n.reserved.memory,
                "eviction_threshold_bytes": n.reserved.eviction,
            },
            "allocatable": {
                "cpu_millicores": n.allocatable.cpu,
                "memory_bytes": n.allocatable.memory,
                "pods": n.allocatable.pods,
            },
            "daemonsets": {
                "cpu_millicores": n.daemonset_cpu,
                "memory_bytes": n.daemonset_memory,
                "pods": n.daemonset_pods,
                "names": list(n.daemonset_names),
            },
            "for_users": {
                "cpu_millicores": n.space.cpu,
                "memory_bytes": n.space.memory,
                "pods": n.space.pods,
            },
        },
        "user": {
            "cpu_guarantee_millicores": plan.user.cpu,
            "cpu_limit_millicores": plan.cpu_limit,
            "memory_guarantee_bytes": plan.user.memory,
            "memory_limit_bytes": plan.mem_limit,
            "memory_limit_to_guarantee": _ratio(plan.mem_limit, plan.user.memory),
            "cpu_limit_to_guarantee": _ratio(plan.cpu_limit, plan.user.cpu),
            "z2jh_units": plan.z2jh_units,
        },
        "fit": _fit_json(plan.fit),
        "risk": {
            "model": {
                "base_bytes": plan.model.base,
                "heavy_bytes": plan.model.heavy,
                "heavy_probability": float(plan.model.p_heavy),
                "heavy_shape": plan.model.shape.value,
            },
            "users": plan.occupancy,
            "capacity_bytes": n.space.memory,
            "overflow_probability": float(plan.risk),
            "heavy_users_to_overflow": plan.overflow_at,
            "monte_carlo": None
            if mc is None
            else {
                "draws": mc.draws,
                "seed": plan.seed,
                "overflows": mc.overflows,
                "overflow_probability": mc.probability,
                "standard_error": mc.standard_error,
            },
        },
        "recommendation": {
            "risk_target": float(rec.target),
            "users": rec.users,
            "overflow_probability": float(rec.risk),
            "bound_by": None if rec.bound_by is None else rec.bound_by.value,
            "memory_guarantee_min_bytes": rec.guarantee_min,
            "memory_guarantee_max_bytes": rec.guarantee_max,
            "suggested_memory_guarantee_bytes": suggested,
            "suggested_memory_limit_to_guarantee": _ratio(plan.mem_limit, suggested or 0),
            "two_to_one": {
                "memory_guarantee_bytes": plan.two_to_one_guarantee,
                "fit": _fit_json(plan.two_to_one_fit),
                "overflow_probability": float(plan.two_to_one_risk),
            },
        },
        "notes": list(plan.notes),
    }


def _binds(fit: Fit, c: Constraint) -> str:
    return " <- binds" if c in fit.binding else ""


def render_plan(plan: Plan, console: Console) -> None:
    """The plan as readable tables."""
    n, fit, rec, model = plan.node, plan.fit, plan.recommendation, plan.model
    binding = ", ".join(c.value for c in fit.binding)
    console.print(
        f"[bold]{n.name}[/bold] ({n.provider.value}): {fit.users} users per node, "
        f"bound by {binding}.\n"
    )

    t = Table(title="Node", title_justify="left")
    for col in ("", "capacity", "reserved", "allocatable", "DaemonSets", "for users"):
        t.add_column(col, justify="right" if col else "left")
    r = n.reserved
    t.add_row(
        "cpu",
        fmt_cpu(n.cpu),
        fmt_cpu(r.cpu),
        fmt_cpu(n.allocatable.cpu),
        fmt_cpu(n.daemonset_cpu),
        fmt_cpu(n.space.cpu),
    )
    mem_reserved = fmt_bytes(r.memory) + (f" + {fmt_bytes(r.eviction)} evict" if r.eviction else "")
    t.add_row(
        "memory",
        fmt_bytes(n.memory),
        mem_reserved,
        fmt_bytes(n.allocatable.memory),
        fmt_bytes(n.daemonset_memory),
        fmt_bytes(n.space.memory),
    )
    t.add_row("pods", "", "", str(n.allocatable.pods), str(n.daemonset_pods), str(n.space.pods))
    console.print(t)

    t = Table(title="Users per node", title_justify="left")
    for col in ("", "request per user", "available", "users"):
        t.add_column(col, justify="right" if col else "left")
    per = fit.per_constraint
    rows = (
        (Constraint.CPU, fmt_cpu(plan.user.cpu) if plan.user.cpu else "none", fmt_cpu(n.space.cpu)),
        (
            Constraint.MEMORY,
            fmt_bytes(plan.user.memory) if plan.user.memory else "none",
            fmt_bytes(n.space.memory),
        ),
        (Constraint.PODS, "1", str(n.space.pods)),
    )
    for c, request, available in rows:
        users = per[c]
        t.add_row(
            c.value,
            request,
            available,
            ("unbounded" if users is None else str(users)) + _binds(fit, c),
        )
    console.print(t)
    mem_ratio = _ratio(plan.mem_limit, plan.user.memory)
    cpu_ratio = _ratio(plan.cpu_limit, plan.user.cpu)
    ratios = [f"memory {mem_ratio:g}:1" if mem_ratio else "memory: no guarantee"]
    if cpu_ratio:
        ratios.append(f"cpu {cpu_ratio:g}:1")
    console.print("limit:guarantee  " + ", ".join(ratios) + "\n")

    t = Table(title="Memory overcommit risk", title_justify="left", show_header=False)
    t.add_column("")
    t.add_column("")
    shape = (
        f"exactly {fmt_bytes(model.heavy)}"
        if model.shape is HeavyShape.SPIKE
        else f"uniformly {fmt_bytes(model.base)}..{fmt_bytes(model.heavy)}"
    )
    t.add_row(
        "usage model",
        f"each user heavy with p={float(model.p_heavy):g} using {shape}, "
        f"else {fmt_bytes(model.base)}",
    )
    t.add_row(
        "users on the node", f"{plan.occupancy} (memory for users: {fmt_bytes(n.space.memory)})"
    )
    t.add_row("P(use > memory for users)", f"{fmt_p(plan.risk)} (exact)")
    if plan.monte_carlo is not None:
        mc = plan.monte_carlo
        t.add_row(
            "Monte Carlo cross-check",
            f"{fmt_p(mc.probability)} +/- {fmt_p(mc.standard_error)} "
            f"({mc.draws} draws, seed {plan.seed})",
        )
    if plan.overflow_at is None:
        over = "never, even all heavy"
    else:
        demand = node_demand(plan.occupancy, plan.overflow_at, model.base, model.heavy)
        who = "1 heavy user" if plan.overflow_at == 1 else f"{plan.overflow_at} heavy users"
        over = f"{who} of {plan.occupancy}: they ask for {fmt_bytes(demand)} in all"
    t.add_row("node overflows at", over)
    console.print(t)

    t = Table(title="Recommendation", title_justify="left", show_header=False)
    t.add_column("")
    t.add_column("")
    t.add_row("risk target", fmt_p(rec.target))
    suggested = suggested_guarantee(rec)
    if suggested is None or rec.guarantee_max is None:
        t.add_row("users per node", "none: even one user exceeds the target")
    else:
        t.add_row("users per node", f"{rec.users} (risk {fmt_p(rec.risk)})")
        if rec.bound_by is Constraint.MEMORY and rec.guarantee_min is not None:
            t.add_row(
                "memory guarantee",
                f"at least {fmt_bytes(rec.guarantee_min)} (any up to "
                f"{fmt_bytes(rec.guarantee_max)} packs the same)",
            )
        else:
            bound = rec.bound_by.value if rec.bound_by else "?"
            t.add_row(
                "memory guarantee",
                f"{bound} binds first; any guarantee up to {fmt_bytes(rec.guarantee_max)} "
                "packs the same",
            )
        ratio = _ratio(plan.mem_limit, suggested)
        t.add_row(
            "suggested setting",
            f"guarantee {fmt_bytes(suggested)} (z2jh: {fmt_z2jh(suggested)}), "
            f"limit:guarantee {ratio:.3g}:1",
        )
    g2 = plan.two_to_one_guarantee
    t.add_row(
        "2:1 starting point",
        f"guarantee {fmt_bytes(g2)} -> {plan.two_to_one_fit.users} users, "
        f"risk {fmt_p(plan.two_to_one_risk)}",
    )
    console.print(t)
    console.print(
        "The z2jh guide suggests starting near a 2:1 limit:guarantee ratio and adjusting from "
        "monitoring (Prometheus + Grafana)."
    )
    for note in plan.notes:
        console.print(f"note: {note}")
    if plan.z2jh_units:
        console.print("note: --mem-guarantee/--mem-limit were read in z2jh units (M = MiB).")
    else:
        console.print(
            "note: quantities are Kubernetes quantities (M = 10^6 bytes, Mi = 2^20); z2jh's "
            "config.yaml means 2^20 by M: pass --z2jh-units to read its values that way."
        )


def catalog_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """Each node type with its estimated allocatable and what is left for users."""
    rows = []
    for nt in catalog.node_types.values():
        info = catalog.providers[nt.provider]
        pods = nt.default_max_pods(info)
        alloc = allocatable(nt.provider, nt.cpu, nt.memory, pods)
        rows.append(
            {
                "name": nt.name,
                "provider": nt.provider.value,
                "cpu_millicores": nt.cpu,
                "memory_bytes": nt.memory,
                "max_pods": pods,
                "allocatable_cpu_millicores": alloc.cpu,
                "allocatable_memory_bytes": alloc.memory,
                "daemonset_cpu_millicores": sum(d.cpu for d in info.daemonsets),
                "daemonset_memory_bytes": sum(d.memory for d in info.daemonsets),
            }
        )
    return rows


def render_catalog(rows: list[dict[str, Any]], console: Console) -> None:
    t = Table(title="Node types (allocatable estimated from each provider's formula)")
    t.add_column("name", no_wrap=True, min_width=16)
    for col in ("provider", "cpu", "memory", "max pods", "alloc cpu", "alloc memory"):
        t.add_column(col, justify="left" if col == "provider" else "right", no_wrap=True)
    for r in rows:
        t.add_row(
            r["name"],
            r["provider"],
            fmt_cpu(r["cpu_millicores"]),
            fmt_bytes(r["memory_bytes"]),
            str(r["max_pods"]),
            fmt_cpu(r["allocatable_cpu_millicores"]),
            f"{r['allocatable_memory_bytes'] / GI:.2f}Gi",
        )
    console.print(t)


def main(argv: Sequence[str]) -> int:
    if list(argv[:1]) == ["choices"]:
        # Imported here: plan_choices builds on this module (a top-level import is a cycle).
        from scheduler_extender import plan_choices  # noqa: PLC0415

        return plan_choices.main(argv[1:])
    out = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    try:
        args = build_parser().parse_args(list(argv))
        catalog = load_catalog()
        if args.list_node_types:
            rows = catalog_rows(catalog)
            if args.output == "json":
                print(json.dumps(rows, indent=2))
            else:
                render_catalog(rows, out)
            return 0
        plan = build_plan(args, catalog)
    except PlanError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    if args.output == "json":
        print(json.dumps(plan_json(plan), indent=2))
    else:
        render_plan(plan, out)
    return 0
