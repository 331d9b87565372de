"""What a cluster view says about itself: whether it is complete and fresh enough to schedule by.

It lives with the cache (the only source that can be unready) so that the cache does not depend
on the extender service that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str = ""
