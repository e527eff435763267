"""``kubectl ramp plan`` of a blue-green Rollout: the sequence and its times, said plainly
(the full output is pinned by the goldens of ``test_cli_plan.py``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ramp.cli.preview import load_documents
from ramp.cli.preview_bluegreen import BlueGreenPlan, plan_blue_green

GOLDEN = Path(__file__).parent / "golden" / "plan"


def plan_of(manifest: str, replicas: int | None = None, **strategy: object) -> BlueGreenPlan:
    docs = list(yaml.safe_load_all((GOLDEN / manifest).read_text()))
    for doc in docs:
        if doc.get("kind") == "Rollout":
            doc["spec"]["strategy"]["blueGreen"].update(strategy)
    rollouts, templates = load_documents(docs)
    return plan_blue_green(rollouts[0], templates, replicas)


def test_the_sequence_in_order_with_the_sizes_and_the_services() -> None:
    plan = plan_of("bluegreen.yaml")
    steps = [(s.step.split(" ")[0:2], s.blue, s.green, s.active, s.preview) for s in plan.steps]
    assert steps == [
        (["green", "up"], 6, 2, "blue", "blue"),
        (["preview", "pinned"], 6, 2, "blue", "green"),
        (["pre-promotion", "analysis"], 6, 2, "blue", "green"),
        (["auto-promotion", "after"], 6, 2, "blue", "green"),
        (["green", "to"], 6, 6, "blue", "green"),
        (["switch", "checkout"], 6, 6, "green", "green"),
        (["post-promotion", "analysis"], 6, 6, "green", "green"),
        (["blue", "warm"], 6, 6, "green", "green"),
        (["blue", "scaled"], 0, 6, "green", "green"),
    ]


def test_times_come_from_the_files_values() -> None:
    plan = plan_of("bluegreen.yaml")
    least = {" ".join(s.step.split(" ")[:2]): s.least_seconds for s in plan.steps}
    assert least["pre-promotion analysis"] == 50  # initialDelay 30s + 2 * interval 10s
    assert least["auto-promotion after"] == 120  # autoPromotionSeconds
    assert least["post-promotion analysis"] == 60  # the slower metric: latency-p99, 0s + 1 * 1m
    # Blue stays warm scaleDownDelaySeconds after the switch, the post analysis included.
    assert plan.rollback_window_seconds == 300
    assert least["blue warm"] == 300 - 60
    assert plan.switch_after_seconds == 50 + 120
    assert plan.least_seconds == 50 + 120 + 60 + 240
    assert "removed at once" in plan.on_abort  # abortScaleDownDelaySeconds: 0


def test_a_post_analysis_longer_than_the_delay_leaves_no_extra_warm_time() -> None:
    plan = plan_of("bluegreen.yaml", scaleDownDelaySeconds=10)
    assert next(s for s in plan.steps if s.step.startswith("blue warm")).least_seconds == 0


def test_manual_promotion_defaults_and_an_unknown_template() -> None:
    plan = plan_of("bluegreen-manual.yaml")
    assert [s.step for s in plan.steps][:4] == [
        "green up at full size",  # no previewReplicaCount: full size, no "to full size" row
        "pre-promotion analysis smoke",
        "wait for promote",
        "switch api to green",
    ]
    assert plan.waits_for_promote == [3] and plan.unknown == [2]
    assert all(s.preview == "-" for s in plan.steps)  # no previewService
    assert plan.rollback_window_seconds == 30  # the default scaleDownDelaySeconds


def test_fewer_replicas_than_previewreplicacount_is_warned() -> None:
    plan = plan_of("bluegreen.yaml", replicas=1)
    assert plan.steps[0].green == 1
    assert plan.warnings == ["previewReplicaCount 2 is more than 1 replicas: green runs 1"]


def test_through_an_httproute_the_weights_switch_and_an_abort_writes_them_back() -> None:
    """With ``httpRoutes`` the switch is the route's weights (active/preview), 0/100 in one
    patch while the active Service keeps blue until completion; a failed post-promotion
    analysis or an abort writes 100/0 back; the preview's header route is said."""
    plan = plan_of("bluegreen-routes.yaml")
    rows = [(s.step.split(" ")[0], s.active, s.preview, s.route) for s in plan.steps]
    assert rows == [
        ("green", "blue", "blue", "100/0"),
        ("preview", "blue", "green", "100/0"),
        ("wait", "blue", "green", "100/0"),
        ("switch", "blue", "green", "0/100"),
        ("post-promotion", "blue", "green", "0/100"),
        ("blue", "green", "green", "100/0"),  # completed: the active Service selects green
        ("blue", "green", "green", "100/0"),
    ]
    assert plan.routes == "checkout"
    assert "acknowledges" in plan.steps[3].note
    assert "100/0 (blue) at once" in plan.steps[4].note
    assert "X-Preview exact 'yes'" in plan.steps[1].note
    assert "writes 100/0 back" in plan.on_abort and "acknowledges" in plan.on_abort
    data = plan.to_data()
    assert data["routes"] == "checkout" and data["steps"][3]["route"] == "0/100"


def test_without_an_httproute_no_route_is_said() -> None:
    plan = plan_of("bluegreen.yaml")
    assert plan.routes == "" and {s.route for s in plan.steps} == {""}
    data = plan.to_data()
    assert "routes" not in data and all("route" not in s for s in data["steps"])
    assert "flips back to blue at once" in plan.on_abort
