"""Suite-wide hooks: every test under tests/core/ carries the ``core`` marker, so
``pytest -m core`` (``make test-core``) runs the pure policy tests alone as a fast inner loop;
``make test`` always runs everything."""

from __future__ import annotations

from pathlib import Path

import pytest

CORE_TESTS = Path(__file__).parent / "core"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CORE_TESTS in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.core)
