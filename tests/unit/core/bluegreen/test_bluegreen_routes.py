"""Blue-green through HTTPRoutes, the pure parts: the strategy names its routes with the
canary's field (``httpRoutes``) and the routers, the shell's reader and ``kubectl ramp get``
find them the same way; the preview's header route reuses the ``setHeaderRoute`` match
type; the CRD says what a blue-green route needs. The switch itself, planned by the real
planner against a simulated gateway, is proven in tests/model/test_model_bluegreen_routes.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ramp.api.rollout import RolloutSpec
from ramp.api.routes import HeaderRouteMatch
from ramp.cli.render import render_text
from ramp.core.httproute import KIND, header_match
from ramp.core.routers import exact_routers, routers_for
from ramp.core.traffic_httproute import HTTPRouteRouter, header_matches
from ramp.shell.adapters.traffic_io import ADAPTERS

ROOT = Path(__file__).resolve().parents[4]


def spec(**bg: Any) -> RolloutSpec:
    return RolloutSpec.model_validate(
        {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": []}},
            "strategy": {
                "blueGreen": {"activeService": "shop", "previewService": "shop-preview", **bg}
            },
        }
    )


def test_a_blue_green_rollout_names_its_routes_with_the_canarys_field() -> None:
    routed = spec(httpRoutes=["shop", "shop-internal"])
    assert routed.http_routes == ["shop", "shop-internal"]
    router = routers_for(routed)[-1]
    assert isinstance(router, HTTPRouteRouter) and router.names == ("shop", "shop-internal")
    assert [r.describe() for r in exact_routers(routed)] == ["HTTPRoute shop, shop-internal"]
    assert list(ADAPTERS[KIND].names(routed)) == ["shop", "shop-internal"]
    plain = spec()
    assert plain.http_routes == [] and exact_routers(plain) == ()
    assert list(ADAPTERS[KIND].names(plain)) == []


def test_the_preview_header_route_reuses_the_header_route_match() -> None:
    routed = spec(
        httpRoutes=["shop"],
        previewHeaderRoute=[
            {"headerName": "X-Preview", "headerValue": {"exact": "1"}},
            {"headerName": "X-Team", "headerValue": {"prefix": "qa."}},
            {"headerName": "X-Build", "headerValue": {"regex": "^v2"}},
        ],
    )
    bg = routed.blue_green
    assert bg is not None and bg.preview_header_route is not None
    assert all(isinstance(m, HeaderRouteMatch) for m in bg.preview_header_route)
    written = [header_match(m) for m in header_matches(bg.preview_header_route)]
    assert written == [
        {"type": "Exact", "name": "X-Preview", "value": "1"},
        {"type": "RegularExpression", "name": "X-Team", "value": "^qa\\."},
        {"type": "RegularExpression", "name": "X-Build", "value": "^v2"},
    ]


def test_the_crd_says_what_a_blue_green_route_needs() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "rollouts.ramp.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    bg = schema["properties"]["spec"]["properties"]["strategy"]["properties"]["blueGreen"]
    assert bg["properties"]["httpRoutes"]["items"]["type"] == "string"
    assert bg["properties"]["previewHeaderRoute"]["maxItems"] == 16
    rules = {r["rule"]: r["message"] for r in bg["x-kubernetes-validations"]}
    assert rules["!has(self.httpRoutes) || has(self.previewService)"].startswith(
        "httpRoutes needs previewService"
    )
    assert "!has(self.previewHeaderRoute) || has(self.httpRoutes)" in rules


def test_kubectl_ramp_get_shows_the_routes_of_a_blue_green_rollout() -> None:
    rollout = {
        "metadata": {"name": "shop", "namespace": "ns"},
        "spec": {
            "replicas": 3,
            "strategy": {"blueGreen": {"activeService": "shop", "httpRoutes": ["shop"]}},
        },
        "status": {
            "phase": "Progressing",
            "stableRevision": "b",
            "canaryRevision": "g",
            "routes": [{"name": "shop", "desired": 100, "acknowledged": 0, "message": "m"}],
        },
    }
    text = render_text(rollout, width=160)
    assert "Route shop  preview desired 100%  acknowledged 0%  (m)" in text
