"""The chart grants HTTPRoutes get/list/watch/patch only when rbac.httpRoutes is set (helm
template): the operator reads, watches and patches them; nothing else of the Gateway API."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "tests" / "cluster" / "bin" / "helm"


def rules(*values: str) -> list[dict[str, Any]]:
    if not HELM.exists():
        pytest.fail("helm is not built: run `make cluster-build`")
    args = [str(HELM), "template", "ramp", str(REPO / "charts" / "ramp")]
    for v in values:
        args += ["--set", v]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    found = []
    for doc in yaml.safe_load_all(out):
        if doc and doc.get("kind") in ("ClusterRole", "Role"):
            found += doc.get("rules") or []
    return found


def grants_routes(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in found if "httproutes" in r.get("resources", [])]


def test_no_httproutes_by_default() -> None:
    assert grants_routes(rules()) == []


@pytest.mark.parametrize("scope", ["cluster", "namespace"])
def test_httproutes_get_list_watch_patch_when_enabled(scope: str) -> None:
    granted = grants_routes(rules("rbac.httpRoutes=true", "rbac.services=true", f"scope={scope}"))
    assert granted
    for rule in granted:
        assert rule["apiGroups"] == ["gateway.networking.k8s.io"]
        assert rule["resources"] == ["httproutes"]
        assert rule["verbs"] == ["get", "list", "watch", "patch"]
