"""One way to say what was wrong with validated input, for every pydantic model we parse
(extender requests, settings, the controller's config, simulator scenarios), and the one
duration syntax the commands accept (``600``, ``10m``, ``2h``, ``7d``)."""

from __future__ import annotations

import math
import re

from pydantic import ValidationError

_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(s|min|m|h|d)?\s*$")


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each offending field, e.g. ``NodeNames.3: Input should be a valid
    string`` or ``pools.0.count: min (5) must be <= max (2)`` (pydantic's "Value error, "
    prefix on our own validators' messages is dropped)."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_duration(value: object) -> float:
    """Seconds from ``600``, ``"600"``, ``"10m"``, ``"1.5h"`` or ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"invalid duration {value!r} (examples: 600, 10m, 2h, 7d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError("expected a duration")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be finite and >= 0")
    return seconds
