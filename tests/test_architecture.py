"""The core stays pure: an allow-list of what ``scheduler_extender.core`` may import.

import-linter (pyproject.toml) forbids named modules; a forbid-list cannot name everything
(``uuid``, ``secrets``, ``tempfile``, ``urllib``, ``concurrent`` would all slip through), so this
test also checks that every import in core is from a short list of side-effect-free modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import scheduler_extender.core as core_package

CORE = Path(core_package.__file__).parent
#: Pure standard-library modules: data structures, maths, typing.  Nothing that reads a clock,
#: draws random numbers, touches files, processes, threads or the network.
ALLOWED = {
    "__future__", "bisect", "collections", "collections.abc", "dataclasses", "decimal", "enum",
    "fractions", "functools", "heapq", "itertools", "math", "operator", "types", "typing",
}  # fmt: skip


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside the package
                names.append("scheduler_extender.core")
            elif node.module:
                names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_only_pure_modules(path: Path) -> None:
    bad = [
        name
        for name in _imports(path)
        if name not in ALLOWED and not name.startswith("scheduler_extender.core")
    ]
    assert bad == [], f"{path.name} imports {bad}: core must stay pure (see the module docstring)"


def test_the_check_catches_an_impure_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import uuid\nfrom concurrent.futures import ThreadPoolExecutor\n")
    assert [n for n in _imports(sample) if n not in ALLOWED] == ["uuid", "concurrent.futures"]
