"""``scheduler-extender serve``: pick a cluster state, build the app, run uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import shlex
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from scheduler_extender.extender.settings import Settings, UnknownSettingError, load_settings
from scheduler_extender.extender.state import (
    ClusterState,
    SnapshotFileError,
    StaticState,
    demo_state,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from scheduler_extender.cache.live import LiveState
    from scheduler_extender.extender.app import Binder
    from scheduler_extender.extender.lifetimes import LifetimeLearner

log = logging.getLogger("scheduler_extender")

#: GIL switch interval with live state (Python's default is 0.005 s).
SWITCH_INTERVAL = 0.001

#: A user pod like KubeSpawner creates, for the printed example.
EXAMPLE_POD = {
    "metadata": {"name": "jupyter-alice", "namespace": "jhub", "uid": "example-uid-alice"},
    "spec": {
        "schedulerName": "user-scheduler",
        "priority": 0,
        "tolerations": [
            {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
             "effect": "NoSchedule"}
        ],
        "containers": [
            {"name": "notebook", "image": "quay.io/jupyter/scipy-notebook:2024-07-29",
             "resources": {"requests": {"cpu": "50m", "memory": "512Mi"}}}
        ],
    },
}  # fmt: skip


@dataclass
class Serving:
    """What ``serve`` runs: the state, the binder when binding is on, and the live state to
    start and stop (None for static state)."""

    state: ClusterState
    binder: Binder | None = None
    live: LiveState | None = None
    why: str = ""
    #: The session-lifetime learner the live cache feeds (drain term).
    lifetimes: LifetimeLearner | None = None


class NoClusterError(RuntimeError):
    pass


def choose_state(settings: Settings, registry: CollectorRegistry | None = None) -> Serving:
    """A snapshot file when given; else the live cluster when a config is found (unless
    ``live_state=off``); else the embedded demo."""
    rule = settings.placeholder_rule()
    if settings.state_file is not None:
        from scheduler_extender.extender.state import load_snapshot_file

        snap = load_snapshot_file(settings.state_file, rule)
        return Serving(StaticState(snap, str(settings.state_file)))
    why = "live_state=off"
    if settings.live_state != "off":
        from scheduler_extender.cache.live import LiveBinder, LiveState
        from scheduler_extender.core.drain import prior_of
        from scheduler_extender.extender.lifetimes import LifetimeLearner
        from scheduler_extender.kube.client import connect

        kube = connect(kubeconfig=settings.kubeconfig, context=settings.kube_context)
        if kube is not None:
            lifetimes = LifetimeLearner(
                prior_of(settings.policy()), settings.lifetime_refresh_seconds
            )
            live = LiveState(
                kube,
                settings.cache_options(),
                rule=rule,
                registry=registry,
                on_ended=lifetimes.observe_pods,
            )
            binder = LiveBinder(live, kube) if settings.bind_enabled else None
            return Serving(live, binder, live, lifetimes=lifetimes)
        why = (
            "no cluster config found: not in a pod, no --kubeconfig, $KUBECONFIG or ~/.kube/config"
        )
        if settings.live_state == "on":
            raise NoClusterError(f"live_state=on but {why}")
    return Serving(demo_state(rule), why=why)


def example_commands(settings: Settings, state: ClusterState) -> str:
    """Ready-to-paste curl commands against this server."""
    names = sorted(state.snapshot().nodes)
    body = json.dumps({"Pod": EXAMPLE_POD, "NodeNames": names}, separators=(",", ":"))
    base = f"http://{settings.host}:{settings.port}"
    header = "-H 'Content-Type: application/json'"
    return "\n".join(
        [
            "Try it (kube-scheduler sends exactly these bodies):",
            f"  curl -s {base}/prioritize {header} -d {shlex.quote(body)}",
            f"  curl -s {base}/filter {header} -d {shlex.quote(body)}",
            f"  curl -s {base}/metrics | grep scheduler_extender_",
        ]
    )


def listen(host: str, port: int, setting: str) -> socket.socket:
    """A listening socket, bound before anything starts, so a taken port is one clear error
    line (naming the setting) instead of a traceback after the live cache has started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        # create_server appends "(while attempting to bind ...)" to strerror; errno says it all.
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(f"cannot listen on {host}:{port} ({setting}): {why}") from None


def main(argv: Sequence[str]) -> int:
    try:
        settings = load_settings(argv)
    except (ValidationError, UnknownSettingError, FileNotFoundError) as exc:
        print(f"scheduler-extender serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    sockets: list[socket.socket] = []
    try:
        sockets.append(listen(settings.host, settings.port, "port"))
        if settings.metrics_port is not None:
            sockets.append(listen(settings.metrics_host, settings.metrics_port, "metrics_port"))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        print(f"scheduler-extender serve: {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        for sock in sockets:
            stack.enter_context(sock)
        caught = _serve(settings, sockets)
    if caught is None:
        return 2
    print("scheduler-extender: stopped", file=sys.stderr, flush=True)
    # uvicorn's convention, kept: after a graceful shutdown on a signal, die of that signal.
    for sig in caught:
        signal.raise_signal(sig)
    return 0


def _serve(settings: Settings, sockets: list[socket.socket]) -> list[int] | None:
    """Serve until a signal; the signals caught (uvicorn's are re-raised by ``main`` only after
    the live cache has stopped), or None when the state cannot be loaded."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    try:
        serving = choose_state(settings, registry)
    except (SnapshotFileError, OSError, ValueError, RuntimeError) as exc:
        print(f"scheduler-extender serve: cannot load cluster state: {exc}", file=sys.stderr)
        return None
    state = serving.state

    from scheduler_extender.extender.app import create_app

    app = create_app(
        settings,
        state=state,
        binder=serving.binder,
        registry=registry,
        lifetimes=serving.lifetimes,
    )
    where = f"http://{settings.host}:{settings.port}"
    if serving.live is not None:
        # The cache's threads convert and apply in Python; a short switch interval hands the GIL
        # back to the event loop sooner (benchmarks/cache_sync.py measures the difference).
        # The live cache freezes the GC after its first sync instead (see CacheOptions).
        sys.setswitchinterval(SWITCH_INTERVAL)
        serving.live.start()
        bind = "bind enabled" if serving.binder is not None else "bind disabled"
        print(f"scheduler-extender: serving {state.describe()}, {bind}, on {where}")
        print(f"  /readyz answers 503 until nodes and pods are listed: curl -s {where}/readyz")
    else:
        # The state is a large, long-lived object graph (150k pods at the upstream envelope);
        # keep the cyclic GC from re-walking it during requests (measured: p99 at 5,000 nodes
        # roughly halves; see benchmarks/README.md).
        gc.collect()
        gc.freeze()
        because = f" ({serving.why})" if serving.why else ""
        print(f"scheduler-extender: serving {state.describe()} on {where}{because}")
        print(example_commands(settings, state), flush=True)
    if settings.metrics_port is not None:
        print(
            f"  metrics, health and readiness also on "
            f"http://{settings.metrics_host}:{settings.metrics_port} (no verbs there)",
            flush=True,
        )
    try:
        return run_servers(app, settings, state, registry, sockets)
    finally:
        if serving.live is not None:
            serving.live.stop()


def run_servers(
    app: Any,
    settings: Settings,
    state: ClusterState,
    registry: CollectorRegistry,
    sockets: Sequence[socket.socket],
) -> list[int]:
    """uvicorn for the verbs on ``sockets[0]`` and, with ``metrics_port``, a second listener
    for /metrics, /healthz and /readyz on ``sockets[1]`` in the same event loop.  SIGINT and
    SIGTERM stop both gracefully (a second one forces the exit, as uvicorn does).  Returns the
    signals that stopped them, for the caller to re-raise after its own cleanup (uvicorn would
    re-raise as soon as it has stopped, before the live cache is stopped).  The signal handlers
    are ours, set on the event loop; uvicorn's are switched off through its ``capture_signals``
    hook, so nothing here reads uvicorn's private state."""
    import uvicorn

    from scheduler_extender.extender.app import create_ops_app

    class _NoSignals(uvicorn.Server):
        """A uvicorn server that leaves signals to ``run_servers``."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    def config(asgi: Any, host: str, port: int) -> uvicorn.Config:
        return uvicorn.Config(
            asgi, host=host, port=port, log_level=settings.log_level, access_log=False
        )

    servers = [(_NoSignals(config(app, settings.host, settings.port)), sockets[0])]
    if settings.metrics_port is not None:
        ops_app = create_ops_app(state, registry)
        ops = _NoSignals(config(ops_app, settings.metrics_host, settings.metrics_port))
        servers.append((ops, sockets[1]))
    main = servers[0][0]
    caught: list[int] = []

    def on_signal(signum: int) -> None:
        if caught:
            for server, _ in servers:
                server.force_exit = True
        caught.append(signum)
        main.should_exit = True

    async def serve_all() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        others = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in servers[1:]]
        try:
            await main.serve(sockets=[servers[0][1]])
        finally:
            for server, _ in servers[1:]:
                server.should_exit = True
            await asyncio.gather(*others)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=main.config.get_loop_factory()) as runner:
        runner.run(serve_all())
    return caught[:1]
