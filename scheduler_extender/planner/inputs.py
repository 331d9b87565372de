"""``scheduler-extender plan``'s flags and how their text becomes integers: Kubernetes quantities,
z2jh's powers-of-1024 memory syntax (``--z2jh-units``), counts and probabilities.  Bad input raises
``PlanError`` naming the flag; it never escapes as a traceback."""

from __future__ import annotations

import argparse
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

from scheduler_extender.core.allocatable import (
    Provider,
)
from scheduler_extender.core.capacity import (
    HeavyShape,
)
from scheduler_extender.kube.convert import ConversionError, base_units, millicores, quantity

PROG = "scheduler-extender plan"
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


class PlanParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` returns 2 with one message."""

    def error(self, message: str) -> Any:  # argparse's signature returns NoReturn
        raise PlanError(None, message)


def build_parser() -> argparse.ArgumentParser:
    p = PlanParser(
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


def _quantity_error(flag: str, text: str, exc: ConversionError) -> PlanError:
    if exc.reason == "negative":
        return PlanError(flag, f"must not be negative, got {text!r}")
    if exc.reason in ("not-finite", "range"):
        return PlanError(flag, f"{text!r} is not a finite quantity in range")
    return PlanError(flag, f"{text!r} is not a Kubernetes quantity (e.g. 512Mi, 4G, 0.05, 50m)")


def parse_quantity(flag: str, text: str) -> Decimal:
    """A non-negative Kubernetes quantity, or a ``PlanError`` naming ``flag``."""
    try:
        return quantity(text.strip(), flag)
    except ConversionError as exc:
        raise _quantity_error(flag, text, exc) from None


def parse_memory(flag: str, text: str, *, z2jh: bool = False) -> int:
    """Bytes from a Kubernetes quantity, or from z2jh's syntax when ``z2jh`` is set."""
    if not z2jh:
        try:
            return base_units(text.strip(), flag)
        except ConversionError as exc:
            raise _quantity_error(flag, text, exc) from None
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
    try:
        return millicores(text.strip(), flag)
    except ConversionError as exc:
        raise _quantity_error(flag, text, exc) from None


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
