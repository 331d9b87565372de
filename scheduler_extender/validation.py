"""One way to say what was wrong with validated input, for every pydantic model we parse
(extender requests, settings, the controller's config, simulator scenarios)."""

from __future__ import annotations

from pydantic import ValidationError


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
