"""Run the fake API server in its own process (benchmarks): ``python -m tests.fakeapi``.

Prints ``READY <url>`` once listening, then serves until killed.  Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from pathlib import Path

from tests.fakeapi.objects import populate
from tests.fakeapi.server import FakeApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeapi", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--nodes", type=int, default=0, help="user nodes to create")
    parser.add_argument("--pods", type=int, default=0, help="running user pods to create")
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for this server here")
    parser.add_argument("--bookmark-interval", type=float, default=60.0)
    args = parser.parse_args(argv)
    server = FakeApiServer(port=args.port, bookmark_interval=args.bookmark_interval)
    populate(server.store, args.nodes, args.pods)
    server.store.compact()  # the load is not history a watcher could ask for
    server.start()
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig)
    print(f"READY {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
