"""A plan (and the catalog) as a rich table or as JSON."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from rich.console import Console
from rich.table import Table

from scheduler_extender.core.allocatable import (
    GI,
    MI,
    allocatable,
)
from scheduler_extender.core.capacity import (
    Constraint,
    Fit,
    HeavyShape,
    node_demand,
)
from scheduler_extender.planner.catalog import (
    Catalog,
)
from scheduler_extender.planner.plan import (
    Plan,
    suggested_guarantee,
)


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
    """The plan as readable tables: the node, users per node, the overcommit risk and the
    recommendation, then notes."""
    n, fit = plan.node, plan.fit
    binding = ", ".join(c.value for c in fit.binding)
    console.print(
        f"[bold]{n.name}[/bold] ({n.provider.value}): {fit.users} users per node, "
        f"bound by {binding}.\n"
    )
    for table in (_node_table, _users_table, _risk_table, _recommendation_table):
        table(plan, console)
    _notes(plan, console)


def _node_table(plan: Plan, console: Console) -> None:
    n = plan.node
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


def _users_table(plan: Plan, console: Console) -> None:
    n, fit = plan.node, plan.fit
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


def _risk_table(plan: Plan, console: Console) -> None:
    n, model = plan.node, plan.model
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


def _recommendation_table(plan: Plan, console: Console) -> None:
    rec = plan.recommendation
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


def _notes(plan: Plan, console: Console) -> None:
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
