"""``scheduler-extender serve``: pick a cluster state, build the app, run uvicorn."""

from __future__ import annotations

import gc
import json
import logging
import shlex
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from scheduler_extender.config import Settings, load_settings
from scheduler_extender.state import ClusterState, SnapshotFileError, StaticState, demo_state

log = logging.getLogger("scheduler_extender")

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


def choose_state(settings: Settings) -> ClusterState:
    """The state to serve: a snapshot file when given, else the embedded demo."""
    rule = settings.placeholder_rule()
    if settings.state_file is not None:
        from scheduler_extender.state import load_snapshot_file

        return StaticState(load_snapshot_file(settings.state_file, rule), str(settings.state_file))
    return demo_state(rule)


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


def main(argv: Sequence[str]) -> int:
    try:
        settings = load_settings(argv)
    except (ValidationError, FileNotFoundError) as exc:
        print(f"scheduler-extender serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        state = choose_state(settings)
    except (SnapshotFileError, OSError, ValueError) as exc:
        print(f"scheduler-extender serve: cannot load cluster state: {exc}", file=sys.stderr)
        return 2

    # The state is a large, long-lived object graph (150k pods at the upstream envelope); keep
    # the cyclic GC from re-walking it during requests (measured: p99 at 5,000 nodes roughly
    # halves; see benchmarks/README.md).
    gc.collect()
    gc.freeze()

    import uvicorn

    from scheduler_extender.app import create_app

    app = create_app(settings, state=state)
    print(
        f"scheduler-extender: serving {state.describe()} on http://{settings.host}:{settings.port}"
    )
    print(example_commands(settings, state), flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0
