"""matplotlib is the ``sim`` extra: without it the simulator still writes its tables and says
how to get the plots, instead of failing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scheduler_extender.sim.cli import main


def test_simulate_without_matplotlib_writes_tables_and_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    code = main(["--scenario", "workshop", "--policies", "z2jh", "--seeds", "1", "--hours", "1",
                 "--quiet", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    assert (tmp_path / "table.md").is_file()
    assert (tmp_path / "results.json").is_file()
    assert not (tmp_path / "nodes.png").exists()
    assert "pip install 'scheduler-extender[sim]'" in capsys.readouterr().err
