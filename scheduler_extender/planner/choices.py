"""``scheduler-extender plan choices``: z2jh ``singleuser.profileList`` resource choices.

From one node type (the planner's catalog, or a live node measured through the API with
``--from-node``) this prints a profileList entry whose ``profile_options`` let a user pick how
much of a node to take, in the style 2i2c generates for its hubs (ref: 2i2c-org/infrastructure
``deployer/commands/generate/resource_allocation/generate_choices.py``):

- the space for users is allocatable minus the DaemonSets' requests (what the planner calls
  ``NodeSpace``), less a small margin (2% of it, at most 2 GiB and 1 CPU) so a DaemonSet
  added later does not push the largest choice off the node;
- the largest choice is that whole space, and each next one half the previous;
- memory guarantee = limit by default (no overcommit), or the limit over ``--limit-ratio``
  (the z2jh guide's "start near 2:1", docs ``administrator/optimization``);
- the cpu guarantee is the choice's share of the node's cpu (by memory guarantee), the cpu
  limit the whole usable cpu, so memory is what binds and a lone user can still use the node;
- every choice carries a node selector on the instance type, so entries for several node
  types can sit side by side in one profileList.

Every number comes from the planner's public functions (``resolve_node``) and the pure core
(``fit_users``, ``overflow_probability``); this module does the halving, the rounding and the
text.  Bad input prints ``scheduler-extender plan choices: error: --flag: problem`` and
returns 2, as ``plan`` does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from scheduler_extender.core.allocatable import GI, MI
from scheduler_extender.core.capacity import (
    Fit,
    HeavyShape,
    NodeSpace,
    UsageModel,
    UserRequests,
    fit_users,
    heavy_users_to_overflow,
    overflow_probability,
)
from scheduler_extender.kube.convert import (
    ConversionError,
    is_terminal,
    node_from_json,
    pod_requests,
)
from scheduler_extender.planner.catalog import load_catalog
from scheduler_extender.planner.inputs import (
    DEFAULT_HEAVY_PROBABILITY,
    PlanError,
    PlanParser,
    parse_count,
    parse_probability,
)
from scheduler_extender.planner.plan import resolve_node
from scheduler_extender.planner.render import fmt_bytes, fmt_cpu, fmt_p

PROG = "scheduler-extender plan choices"
#: The well-known label every cloud provider sets to the machine type
#: (ref: https://kubernetes.io/docs/reference/labels-annotations-taints/#nodekubernetesioinstance-type).
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
DEFAULT_CHOICES = 5
MAX_CHOICES = 10
DEFAULT_MARGIN = "0.02"
#: The margin never takes more than this (2i2c's caps).
MARGIN_MEMORY_CAP = 2 * GI
MARGIN_CPU_CAP = 1000
#: Below this a choice is not worth offering (a notebook server alone needs about this much).
MIN_CHOICE_MEMORY = 256 * MI
REQUEST_TIMEOUT = 30.0


# --- the arithmetic --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capacity:
    """The node the choices are for: its name, the instance-type label value the choices
    select, and the space for users (allocatable minus DaemonSets)."""

    name: str
    instance_type: str | None
    space: NodeSpace
    source: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """``limit_ratio`` is memory limit / guarantee (1: no overcommit); ``margin`` the share of
    the space held back; ``count`` how many choices; the rest is the planner's usage model."""

    limit_ratio: Fraction = Fraction(1)
    margin: Fraction = Fraction(DEFAULT_MARGIN)
    count: int = DEFAULT_CHOICES
    heavy_probability: Fraction = Fraction(DEFAULT_HEAVY_PROBABILITY)
    heavy_shape: HeavyShape = HeavyShape.SPIKE


@dataclass(frozen=True, slots=True)
class Choice:
    key: str
    mem_limit: int
    mem_guarantee: int
    cpu_guarantee: int  # millicores
    cpu_limit: int  # millicores
    fit: Fit
    risk: Fraction
    overflow_at: int | None


def usable(space: NodeSpace, margin: Fraction) -> tuple[int, int]:
    """(cpu millicores, memory bytes) left for the choices after the margin."""
    mem_margin = min(math.ceil(space.memory * margin), MARGIN_MEMORY_CAP)
    cpu_margin = min(math.ceil(space.cpu * margin), MARGIN_CPU_CAP)
    return space.cpu - cpu_margin, space.memory - mem_margin


def memory_text(n: int) -> str:
    """1.5 GiB, 768 MiB: one decimal at most, never rounded up past the real amount."""
    if n >= GI:
        tenths = n * 10 // GI
        return f"{tenths // 10}.{tenths % 10} GiB".replace(".0 GiB", " GiB")
    return f"{n // MI} MiB"


def cpu_text(m: int) -> str:
    """~0.4, ~3.8: cpu in cores to one decimal, rounded down."""
    return f"~{m // 100 / 10:g}"


def choice_key(mem_limit: int) -> str:
    return "mem_" + memory_text(mem_limit).lower().replace(".", "_").replace(" ", "")


def make_choices(capacity: Capacity, policy: Policy) -> list[Choice]:
    """The choices, smallest first.  A halving that drops below ``MIN_CHOICE_MEMORY`` ends the
    list early."""
    cpu, memory = usable(capacity.space, policy.margin)
    out: list[Choice] = []
    for i in range(policy.count):
        limit = (memory >> i) // MI * MI  # whole MiB, rounded down: never more than the space
        if limit < MIN_CHOICE_MEMORY:
            break
        guarantee = math.floor(limit / policy.limit_ratio) // MI * MI
        cpu_guarantee = cpu * guarantee // memory
        fit = fit_users(capacity.space, UserRequests(cpu_guarantee, guarantee))
        model = UsageModel(guarantee, limit, policy.heavy_probability, policy.heavy_shape)
        out.append(
            Choice(
                choice_key(limit),
                limit,
                guarantee,
                cpu_guarantee,
                cpu,
                fit,
                overflow_probability(model, fit.users, capacity.space.memory),
                heavy_users_to_overflow(model, fit.users, capacity.space.memory),
            )
        )
    return out[::-1]


def profile(capacity: Capacity, choices: Sequence[Choice], policy: Policy) -> dict[str, Any]:
    """One ``singleuser.profileList`` item offering ``choices``."""
    options: dict[str, Any] = {}
    for i, c in enumerate(choices):
        if policy.limit_ratio == 1:
            name = f"{memory_text(c.mem_limit)} RAM, {cpu_text(c.cpu_guarantee)} CPUs"
        else:
            name = (
                f"{memory_text(c.mem_guarantee)} RAM guaranteed, up to "
                f"{memory_text(c.mem_limit)}, {cpu_text(c.cpu_guarantee)} CPUs"
            )
        if c.cpu_guarantee < c.cpu_limit:
            text = f"Up to {cpu_text(c.cpu_limit)} CPUs when available"
        else:
            text = f"{cpu_text(c.cpu_limit)} CPUs always available"
        override: dict[str, Any] = {
            # KubeSpawner reads a plain integer as bytes, unlike z2jh's "M" (= MiB) strings.
            "mem_guarantee": c.mem_guarantee,
            "mem_limit": c.mem_limit,
            "cpu_guarantee": c.cpu_guarantee / 1000,
            "cpu_limit": c.cpu_limit / 1000,
        }
        if capacity.instance_type:
            override["node_selector"] = {INSTANCE_TYPE_LABEL: capacity.instance_type}
        entry: dict[str, Any] = {"display_name": name, "description": text}
        if i == 0:
            entry["default"] = True
        entry["kubespawner_override"] = override
        options[c.key] = entry
    return {
        "display_name": capacity.name,
        "description": f"A share of one {capacity.name} node",
        "profile_options": {
            "resource_allocation": {"display_name": "Resource allocation", "choices": options}
        },
    }


# --- capacity: from the catalog or from a live node ------------------------------------------


def from_catalog(args: argparse.Namespace) -> Capacity:
    """The planner's own resolution of a catalog node type (allocatable, DaemonSets)."""
    ns = argparse.Namespace(
        node_type=args.node_type,
        node_cpu=None,
        node_memory=None,
        provider=None,
        max_pods=args.max_pods,
        daemonset_cpu=args.daemonset_cpu,
        daemonset_memory=args.daemonset_memory,
        daemonset_pods=args.daemonset_pods,
    )
    node = resolve_node(ns, load_catalog())
    return Capacity(node.name, node.name, node.space, "catalog", node.notes)


def node_capacity(node_obj: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Capacity:
    """A live node's space for users: its ``status.allocatable`` minus the effective requests
    of the DaemonSet pods bound to it (the pods listed with ``spec.nodeName``)."""
    node = node_from_json(node_obj)
    ds_cpu = ds_memory = ds_pods = 0
    names = []
    for i, pod in enumerate(pods):
        meta = pod.get("metadata") or {}
        owners = meta.get("ownerReferences") or []
        if is_terminal(pod) or not any(o.get("kind") == "DaemonSet" for o in owners):
            continue
        req = pod_requests(pod.get("spec") or {}, f"pods[{i}].spec", pod)
        ds_cpu, ds_memory, ds_pods = ds_cpu + req.cpu, ds_memory + req.memory, ds_pods + 1
        names.append(str(meta.get("name") or "?"))
    alloc = node.allocatable
    space = NodeSpace(alloc.cpu - ds_cpu, alloc.memory - ds_memory, alloc.pods - ds_pods)
    notes: tuple[str, ...] = (
        f"measured on node {node.name}: allocatable {fmt_cpu(alloc.cpu)} cpu, "
        f"{fmt_bytes(alloc.memory)}, {alloc.pods} pods; {ds_pods} DaemonSet pod(s) "
        f"request {fmt_cpu(ds_cpu)} cpu, {fmt_bytes(ds_memory)}",
    )
    instance_type = node.labels.get(INSTANCE_TYPE_LABEL)
    if not instance_type:
        notes += (f"node {node.name} has no {INSTANCE_TYPE_LABEL} label: no node selector",)
    return Capacity(instance_type or node.name, instance_type, space, f"node {node.name}", notes)


def from_node(args: argparse.Namespace) -> Capacity:
    # Only --from-node pays for importing the kubernetes client.
    from scheduler_extender.kube.client import ApiError, KubeConfigError, connect  # noqa: PLC0415

    try:
        kube = connect(kubeconfig=args.kubeconfig, context=args.context)
    except KubeConfigError as exc:
        raise PlanError("--kubeconfig", str(exc)) from None
    if kube is None:
        raise PlanError("--from-node", "no cluster config found (in-cluster or kubeconfig)")
    try:
        node_obj = kube.get_node(args.from_node, timeout=REQUEST_TIMEOUT)
        pods: list[dict[str, Any]] = []
        token = ""
        while True:
            page = kube.list_pods(
                None,
                field_selector=f"spec.nodeName={args.from_node}",
                limit=500,
                continue_token=token,
                timeout=REQUEST_TIMEOUT,
            )
            pods += page.items
            token = page.continue_token
            if not token:
                break
        return node_capacity(node_obj, pods)
    except ApiError as exc:
        raise PlanError("--from-node", f"reading node {args.from_node!r}: {exc}") from None
    except ConversionError as exc:
        raise PlanError("--from-node", f"node {args.from_node!r}: {exc}") from None
    finally:
        kube.close()


# --- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = PlanParser(
        prog=PROG,
        description=(
            "z2jh singleuser.profileList resource choices for one node type: the largest takes "
            "the node's whole space for users, each next one half. Paste the output under "
            "singleuser.profileList."
        ),
    )
    node = p.add_argument_group("node (a --node-type from the catalog, or --from-node)")
    node.add_argument("--node-type", help="a node type of `plan --list-node-types`")
    node.add_argument(
        "--from-node",
        metavar="NAME",
        help="measure a live node: its allocatable minus its DaemonSet pods' requests",
    )
    node.add_argument("--kubeconfig", type=Path, help="with --from-node (default: the usual)")
    node.add_argument("--context", help="with --from-node: the kubeconfig context")
    node.add_argument("--max-pods", help="with --node-type: the kubelet's maxPods")
    node.add_argument("--daemonset-cpu", help="with --node-type: DaemonSets' cpu per node")
    node.add_argument("--daemonset-memory", help="with --node-type: DaemonSets' memory per node")
    node.add_argument("--daemonset-pods", help="with --node-type: DaemonSet pods per node")
    node.add_argument(
        "--instance-type",
        help=f"the {INSTANCE_TYPE_LABEL} value to select (default: the node type's name, or "
        "the live node's label)",
    )

    pol = p.add_argument_group("choices")
    pol.add_argument(
        "--choices",
        default=str(DEFAULT_CHOICES),
        help=f"how many choices, largest first, each half the previous (default "
        f"{DEFAULT_CHOICES}; fewer when they would drop below {MIN_CHOICE_MEMORY // MI} MiB)",
    )
    pol.add_argument(
        "--limit-ratio",
        default="1",
        help="memory limit / guarantee: 1 (default) is no overcommit, guarantee = limit; the "
        "z2jh guide suggests starting near 2",
    )
    pol.add_argument(
        "--margin",
        default=DEFAULT_MARGIN,
        help=f"share of the node held back (default {DEFAULT_MARGIN}, at most 2 GiB and 1 CPU)",
    )
    pol.add_argument(
        "--heavy-probability",
        default=DEFAULT_HEAVY_PROBABILITY,
        help="for the risk: chance each user is heavy, i.e. uses its whole limit "
        f"(default {DEFAULT_HEAVY_PROBABILITY})",
    )
    pol.add_argument(
        "--heavy-shape", choices=[s.value for s in HeavyShape], default=HeavyShape.SPIKE.value
    )
    p.add_argument("--output", choices=["yaml", "json"], default="yaml")
    return p


def parse_policy(args: argparse.Namespace) -> Policy:
    ratio = parse_ratio("--limit-ratio", args.limit_ratio)
    margin = parse_probability("--margin", args.margin)
    if margin >= 1:
        raise PlanError("--margin", f"must be below 1, got {args.margin!r}")
    count = parse_count("--choices", args.choices, maximum=MAX_CHOICES)
    if count < 1:
        raise PlanError("--choices", "must be at least 1")
    return Policy(
        limit_ratio=ratio,
        margin=margin,
        count=count,
        heavy_probability=parse_probability("--heavy-probability", args.heavy_probability),
        heavy_shape=HeavyShape(args.heavy_shape),
    )


def parse_ratio(flag: str, text: str) -> Fraction:
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise PlanError(flag, f"expected a number such as 2 or 1.5, got {text!r}") from None
    if value < 1:
        raise PlanError(flag, f"must be at least 1 (limit >= guarantee), got {text!r}")
    return value


def resolve_capacity(args: argparse.Namespace) -> Capacity:
    if bool(args.node_type) == bool(args.from_node):
        raise PlanError("--node-type", "give either --node-type or --from-node")
    if args.from_node:
        for flag in ("max_pods", "daemonset_cpu", "daemonset_memory", "daemonset_pods"):
            if getattr(args, flag) is not None:
                name = "--" + flag.replace("_", "-")
                raise PlanError(name, "only applies to --node-type (--from-node measures)")
        capacity = from_node(args)
    else:
        capacity = from_catalog(args)
    if args.instance_type is not None:
        capacity = Capacity(
            capacity.name, args.instance_type or None, capacity.space, capacity.source,
            capacity.notes,
        )  # fmt: skip
    return capacity


def choices_json(capacity: Capacity, choices: Sequence[Choice], policy: Policy) -> dict[str, Any]:
    cpu, memory = usable(capacity.space, policy.margin)
    return {
        "node": {
            "name": capacity.name,
            "source": capacity.source,
            "instance_type": capacity.instance_type,
            "for_users": {
                "cpu_millicores": capacity.space.cpu,
                "memory_bytes": capacity.space.memory,
                "pods": capacity.space.pods,
            },
            "after_margin": {"cpu_millicores": cpu, "memory_bytes": memory},
        },
        "policy": {
            "limit_ratio": float(policy.limit_ratio),
            "margin": float(policy.margin),
            "heavy_probability": float(policy.heavy_probability),
            "heavy_shape": policy.heavy_shape.value,
        },
        "choices": [
            {
                "key": c.key,
                "memory_guarantee_bytes": c.mem_guarantee,
                "memory_limit_bytes": c.mem_limit,
                "cpu_guarantee_millicores": c.cpu_guarantee,
                "cpu_limit_millicores": c.cpu_limit,
                "users_per_node": c.fit.users,
                "bound_by": [b.value for b in c.fit.binding],
                "overflow_probability": float(c.risk),
                "heavy_users_to_overflow": c.overflow_at,
            }
            for c in choices
        ],
        "profile": profile(capacity, choices, policy),
        "notes": list(capacity.notes),
    }


def choices_yaml(capacity: Capacity, choices: Sequence[Choice], policy: Policy) -> str:
    """The profileList item as YAML (a one-item list), each choice preceded by a comment with
    its users per node and overcommit risk."""
    body = yaml.safe_dump(
        [profile(capacity, choices, policy)], sort_keys=False, default_flow_style=False, width=100
    )
    comments = {}
    for c in choices:
        binding = ", ".join(b.value for b in c.fit.binding)
        comments[c.key] = (
            f"{c.fit.users} per node (bound by {binding}); P(node memory overcommitted) "
            f"{fmt_p(c.risk)}"
        )
    lines = []
    for line in body.splitlines():
        key = line.strip().rstrip(":")
        if line.endswith(":") and key in comments:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}# {comments.pop(key)}")
        lines.append(line)
    cpu, memory = usable(capacity.space, policy.margin)
    ratio = "no overcommit" if policy.limit_ratio == 1 else f"limit {policy.limit_ratio}:1"
    header = [
        f"# scheduler-extender plan choices: {capacity.name} ({capacity.source}), {ratio}",
        f"# for users: {fmt_cpu(capacity.space.cpu)} cpu, "
        f"{fmt_bytes(capacity.space.memory)}, {capacity.space.pods} pods; after the "
        f"{float(policy.margin):g} margin: {fmt_cpu(cpu)} cpu, "
        f"{fmt_bytes(memory)}",
        f"# risk: each user heavy (at its limit) with p={float(policy.heavy_probability):g}",
    ]
    header += [f"# note: {n}" for n in capacity.notes]
    return "\n".join(header + lines) + "\n"


def main(argv: Sequence[str]) -> int:
    try:
        args = build_parser().parse_args(list(argv))
        policy = parse_policy(args)
        capacity = resolve_capacity(args)
        choices = make_choices(capacity, policy)
        if not choices:
            raise PlanError(
                None,
                f"{capacity.name} has less than {MIN_CHOICE_MEMORY // MI} MiB for users after "
                "the margin: no choice to offer",
            )
    except PlanError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    if args.output == "json":
        print(json.dumps(choices_json(capacity, choices, policy), indent=2))
    else:
        sys.stdout.write(choices_yaml(capacity, choices, policy))
    return 0
