"""A CycloneDX 1.5 SBOM of the image it runs in: every Python distribution installed (name,
version, licence, the SHA-256 of the wheel it came from) and every Debian package of the
base. Run by the Dockerfile's last step; the image keeps it at
/usr/local/share/ramp/sbom.cdx.json.

Usage: python sbom.py [WHEEL_SHA256SUMS] > sbom.cdx.json
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

DPKG_STATUS = Path("/var/lib/dpkg/status")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_hashes(path: Path | None) -> dict[tuple[str, str], str]:
    """(normalised name, version) -> sha256 of the wheels a ``sha256sum`` file lists."""
    out: dict[tuple[str, str], str] = {}
    if path is None or not path.is_file():
        return out
    for line in path.read_text().splitlines():
        digest, _, file = line.strip().partition("  ")
        parts = Path(file).name.split("-")
        if len(parts) >= 2 and file.endswith(".whl"):
            out[(_norm(parts[0]), parts[1])] = digest
    return out


def python_components(hashes: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for dist in metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if not name:
            continue
        component: dict[str, Any] = {
            "type": "library",
            "name": name,
            "version": version,
            "purl": f"pkg:pypi/{_norm(name)}@{version}",
        }
        licence = dist.metadata.get("License-Expression") or dist.metadata.get("License")
        if licence and len(licence) < 100:
            component["licenses"] = [{"license": {"name": licence}}]
        digest = hashes.get((_norm(name), version))
        if digest:
            component["hashes"] = [{"alg": "SHA-256", "content": digest}]
        seen[_norm(name)] = component
    return [seen[k] for k in sorted(seen)]


def debian_components(status: Path = DPKG_STATUS) -> list[dict[str, Any]]:
    if not status.is_file():
        return []
    out = []
    for block in status.read_text(errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, re.M))
        if not fields.get("Package") or "installed" not in fields.get("Status", ""):
            continue
        name, version, arch = fields["Package"], fields.get("Version", ""), fields.get(
            "Architecture", ""
        )
        out.append(
            {
                "type": "library",
                "name": name,
                "version": version,
                "purl": f"pkg:deb/debian/{name}@{version}?arch={arch}",
            }
        )
    return sorted(out, key=lambda c: c["name"])


def sbom(wheel_sums: Path | None) -> dict[str, Any]:
    hashes = wheel_hashes(wheel_sums)
    ramp_version = next(
        (d.version for d in metadata.distributions() if d.metadata["Name"] == "ramp-operator"),
        "unknown",
    )
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "component": {
                "type": "container",
                "name": "ramp-operator",
                "version": ramp_version,
            },
        },
        "components": python_components(hashes) + debian_components(),
    }


if __name__ == "__main__":
    sums = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    json.dump(sbom(sums), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
