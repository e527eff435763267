"""The image's Python dependencies are hash-locked (issue 20): requirements.lock pins every
runtime dependency of pyproject.toml, each with its hashes, the versions satisfy
pyproject's ranges, and the Dockerfile fetches exactly those with ``--require-hashes``
(wheels only) and writes an SBOM into the image."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of requirements.lock."""
    text = re.sub(r"\\\n\s*", " ", LOCK.read_text())
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)\s*(.*)$", line)
        assert found, f"not an exact pin: {line!r}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", found.group(3))
        out[_norm(found.group(1))] = (found.group(2), hashes)
    return out


def test_every_runtime_dependency_is_pinned_with_hashes() -> None:
    pins = locked()
    assert all(hashes for _, hashes in pins.values()), [n for n, (_, h) in pins.items() if not h]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = _norm(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name][0]), (spec, pins[name][0])


def test_the_dockerfile_installs_the_lock_with_hashes_and_writes_an_sbom() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile
    assert re.search(
        r"--require-hashes --only-binary=:all:[^\n]*\n\s*-r requirements.lock", dockerfile
    )
    assert "pip wheel --no-deps" in dockerfile  # ramp's own wheel pulls nothing unhashed
    assert "tools/sbom.py" in dockerfile and "sbom.cdx.json" in dockerfile


def test_the_sbom_lists_installed_distributions_with_wheel_hashes(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{'ab' * 32}  /wheels/rich-{_rich()}-py3-none-any.whl\n")
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "sbom.py"), str(sums)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    bom = json.loads(out)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
    by_name = {_norm(c["name"]): c for c in bom["components"]}
    assert {"kopf", "kubernetes", "aiohttp", "rich"} <= by_name.keys()
    assert by_name["rich"]["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert by_name["kopf"]["purl"].startswith("pkg:pypi/kopf@")


def _rich() -> str:
    from importlib.metadata import version

    return version("rich")
