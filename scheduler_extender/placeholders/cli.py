"""``scheduler-extender placeholders``: parse flags, load the config, connect, choose the backend
(``backend: capacityBuffer`` needs the API server to serve CapacityBuffers; else
``capacityBuffer.fallback`` runs pods or refuses, exit 2), run the controller with its ops
server (/metrics, /healthz, /readyz) until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from scheduler_extender.kube.client import ApiError, KubeConfigError, connect
from scheduler_extender.placeholders.buffers import BuffersUnavailableError, choose_backend
from scheduler_extender.placeholders.config import ConfigError, load_config
from scheduler_extender.placeholders.controller import PlaceholderController
from scheduler_extender.placeholders.ops import OpsServer
from scheduler_extender.placeholders.pods import template_pod

log = logging.getLogger(__name__)


def default_identity() -> str:
    """The Lease holder identity: the pod name (unique per replica) plus a random suffix, so
    a restarted container never mistakes its predecessor's lease for its own."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scheduler-extender placeholders",
        description="Keep pools of low-priority placeholder pods as spare capacity "
        "(docs/placeholders.md).",
    )
    p.add_argument("--config", required=True, type=Path, help="the controller's YAML config")
    p.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: in-cluster)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--identity", help="Lease holder identity (default: $POD_NAME + suffix)")
    p.add_argument(
        "--log-level",
        default=os.environ.get("SCHEDULER_EXTENDER_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
    )
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.add_argument(
        "--ops-address",
        default="0.0.0.0",  # all interfaces: the kubelet probes the pod IP
        help="address of the metricsPort server (/metrics, /healthz, /readyz)",
    )
    return p


def main(argv: Sequence[str]) -> int:
    try:
        args = parser().parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        config = load_config(args.config)
        for pool in config.pools:
            template_pod(config, pool)
    except (ConfigError, ValueError) as exc:
        print(f"scheduler-extender placeholders: invalid config: {exc}", file=sys.stderr)
        return 2
    if args.check:
        names = ", ".join(f"{p.name} ({p.count.mode}, {p.size})" for p in config.pools)
        about: str = config.backend
        if about == "capacityBuffer":
            about += f" (fallback {config.capacity_buffer.fallback})"
        print(f"config OK: {len(config.pools)} pool(s): {names or 'none'}; backend {about}")
        return 0
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        kube = connect(kubeconfig=args.kubeconfig, context=args.context)
    except KubeConfigError as exc:
        print(f"scheduler-extender placeholders: {exc}", file=sys.stderr)
        return 2
    if kube is None:
        print(
            "scheduler-extender placeholders: no cluster config found (not in a pod, no "
            "kubeconfig); pass --kubeconfig",
            file=sys.stderr,
        )
        return 2
    try:
        backend = choose_backend(config, kube)
    except BuffersUnavailableError as exc:
        kube.close()
        print(f"scheduler-extender placeholders: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:  # discovery failed: not an answer either way; a restart retries
        kube.close()
        print(
            f"scheduler-extender placeholders: cannot tell whether the API server serves "
            f"CapacityBuffers (backend capacityBuffer): {exc}",
            file=sys.stderr,
        )
        return 1
    registry = CollectorRegistry()
    controller = PlaceholderController(
        config,
        kube,
        identity=args.identity or default_identity(),
        registry=registry,
        backend=backend,
    )
    ops: OpsServer | None = None
    if config.metrics_port:
        try:
            ops = OpsServer(
                config.metrics_port,
                registry,
                healthz=controller.liveness,
                readyz=controller.readiness,
                host=args.ops_address,
            )
        except OSError as exc:
            kube.close()
            print(
                f"scheduler-extender placeholders: cannot listen on metricsPort "
                f"{args.ops_address}:{config.metrics_port}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
        ops.start()
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "placeholder controller %s: %d pool(s) in %s, Lease %s, backend %s, %s",
        controller.identity,
        len(config.pools),
        config.namespace,
        config.lease_name,
        controller.backend,
        kube.source,
    )
    controller.start()
    done.wait()
    controller.shutdown()
    if ops is not None:
        ops.close()
    kube.close()
    return 0
