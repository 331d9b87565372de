"""``scheduler-extender plan``: users per node and memory-overcommit risk, before deploying.

Parses flags (``planner.inputs``), reads the catalog, builds the plan (``planner.plan``) and
prints it (``planner.render``).  Bad input never raises: it prints ``scheduler-extender plan:
error: --flag: problem`` and returns 2, like argparse does for its own errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from rich.console import Console

from scheduler_extender.planner import choices
from scheduler_extender.planner.catalog import (
    load_catalog,
)
from scheduler_extender.planner.inputs import (
    PROG,
    PlanError,
    build_parser,
)
from scheduler_extender.planner.plan import (
    build_plan,
)
from scheduler_extender.planner.render import (
    catalog_rows,
    plan_json,
    render_catalog,
    render_plan,
)


def main(argv: Sequence[str]) -> int:
    if list(argv[:1]) == ["choices"]:
        return choices.main(argv[1:])
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
