"""kubectl ramp get and the dashboard show each HTTPRoute's canary weight, desired and
acknowledged by the gateway (status.routes), and why they differ."""

from __future__ import annotations

from typing import Any

from ramp.cli.dashboard.pages import detail_page
from ramp.cli.dashboard.views import detail, summary
from ramp.cli.render import render_text, route_text

ROUTES = [
    {"name": "shop", "desired": 30, "acknowledged": 5, "message": "writing weight 30"},
    {"name": "shop-internal", "desired": 30, "acknowledged": 30},
]


def rollout() -> dict[str, Any]:
    return {
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "replicas": 3,
            "strategy": {"canary": {"httpRoutes": ["shop"], "steps": [{"setWeight": 30}]}},
        },
        "status": {
            "phase": "Progressing",
            "currentStepIndex": 0,
            "canaryRevision": "c",
            "stableRevision": "s",
            "weights": {"desired": 30, "actual": 25},
            "routes": ROUTES,
        },
    }


def test_route_text() -> None:
    assert route_text(ROUTES[0]) == "desired 30%  acknowledged 5%  (writing weight 30)"
    assert route_text({"name": "x", "desired": 5}) == "desired 5%  acknowledged -%"


def test_kubectl_ramp_get_shows_each_route() -> None:
    text = render_text(rollout(), width=160)
    assert "Route shop " in text and "acknowledged 5%" in text
    assert "Route shop-internal" in text and "acknowledged 30%" in text


def test_dashboard_shows_each_route() -> None:
    row = summary(rollout())
    assert [r["name"] for r in row["routes"]] == ["shop", "shop-internal"]
    view = detail(rollout(), [], [], [], [], [], [])
    html = detail_page("shop", "checkout", view, "ctx", "csrf")
    assert "Route shop</dt>" in html and "30% desired / 5% acknowledged (writing weight 30)" in html


def test_kubectl_ramp_plan_previews_exact_route_weights() -> None:
    from ramp.api.rollout import Rollout
    from ramp.cli.preview import plan_rollout

    body = {
        "metadata": {"name": "checkout"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "c"}},
            "template": {"metadata": {"labels": {"app": "c"}}, "spec": {"containers": [{}]}},
            "strategy": {
                "canary": {
                    "stableService": "s",
                    "canaryService": "c",
                    "httpRoutes": ["shop"],
                    "steps": [{"setWeight": 5}, {"pause": {}}, {"setWeight": 30}],
                }
            },
        },
    }
    plan = plan_rollout(Rollout.model_validate(body))
    first = plan.steps[0]
    assert (first.canary, first.stable, first.actual_weight) == (1, 3, 5)
    assert first.representable and "HTTPRoute shop" in first.note
    assert not plan.warnings
    body["spec"]["strategy"]["canary"].pop("httpRoutes")
    assert plan_rollout(Rollout.model_validate(body)).steps[0].actual_weight == 33
