"""``scheduler-extender`` command line: one entry point, one subcommand per job.

Each subcommand lives in its own module and is imported only when used, so ``plan`` does not pay
for FastAPI and ``serve`` does not pay for matplotlib.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

#: subcommand -> (module, function, one-line help).  Each function takes the remaining argv
#: and returns a process exit code.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": (
        "scheduler_extender.extender.serve",
        "main",
        "Run the extender HTTP service (live cluster, a snapshot file, or the embedded demo).",
    ),
    "simulate": (
        "scheduler_extender.sim.cli",
        "main",
        "Simulate a hub day/week under several scheduling policies and compare them.",
    ),
    "trace": (
        "scheduler_extender.trace.cli",
        "main",
        "Import a hub's user sessions from Prometheus as a simulator trace (CSV).",
    ),
    "recommend": (
        "scheduler_extender.sim.recommend",
        "main",
        "Replay a trace under the wait-cost frontier and print chart values for your target.",
    ),
    "plan": (
        "scheduler_extender.planner.cli",
        "main",
        "Users per node and memory-overcommit risk for a node type and guarantee/limit pair.",
    ),
    "placeholders": (
        "scheduler_extender.placeholders.cli",
        "main",
        "Run the placeholder controller (keeps low-priority pods as spare capacity).",
    ),
    "await-images": (
        "scheduler_extender.pullers.awaiter",
        "main",
        "Wait until the image-puller DaemonSet is ready on every node (Helm hook).",
    ),
}


def usage() -> str:
    lines = ["usage: scheduler-extender <command> [options]", "", "commands:"]
    width = max(len(name) for name in COMMANDS)
    for name, (_, _, text) in COMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {text}")
    lines += ["", "Run 'scheduler-extender <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from scheduler_extender import __version__

        print(__version__)
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"scheduler-extender: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, function, _ = entry
    run: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
    return run(args[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
