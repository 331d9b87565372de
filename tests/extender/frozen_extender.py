"""A real extender whose event loop a test can freeze, for tests/extender/test_frozen_loop.py.

``python -m tests.extender.frozen_extender PORT METRICS_PORT`` serves the golden cluster exactly as
``scheduler-extender serve --metrics-port`` does (``serve.run_servers``: the verbs and the ops
listener, two uvicorn servers on one event loop), plus one test-only route: ``POST
/test/freeze`` blocks the event loop itself, with a synchronous read of stdin inside an async
handler, until the test writes a line to the process's stdin. That is what a hang looks like
from outside: the kernel still accepts connections, nothing answers them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from scheduler_extender.extender.app import create_app
from scheduler_extender.extender.serve import listen, run_servers
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import StaticState, load_snapshot_file

GOLDEN = Path(__file__).parent / "golden"


def main(argv: list[str]) -> int:
    port, metrics_port = int(argv[0]), int(argv[1])
    settings = Settings(
        port=port, metrics_port=metrics_port, metrics_host="127.0.0.1", log_level="warning"
    )
    state = StaticState(load_snapshot_file(GOLDEN / "cluster.yaml", settings.placeholder_rule()))
    registry = CollectorRegistry()
    app = create_app(settings, state=state, registry=registry)

    @app.post("/test/freeze")
    async def freeze() -> str:
        # Deliberately blocking inside the loop: no other request on it runs meanwhile.
        sys.stdin.readline()
        return "thawed"

    sockets = [
        listen(settings.host, port, "port"),
        listen(settings.metrics_host, metrics_port, "metrics_port"),
    ]
    run_servers(app, settings, state, registry, sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
