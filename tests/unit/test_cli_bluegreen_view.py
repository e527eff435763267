"""``kubectl ramp get NAME`` of a blue-green Rollout: the blue/green panel, against goldens.

The statuses are the ones :mod:`ramp.core.bluegreen` writes at each point of a release
(blue = ``stableRevision``, green = ``canaryRevision``, ``status.blueGreen``), the clock is
fixed. Regenerate after an intended change with ``RAMP_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import argparse
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_cli_render import EVENTS, check_golden, condition, deployment, event, template

from ramp.cli.client import CliError
from ramp.cli.commands import Commands
from ramp.cli.facts import progress_line
from ramp.cli.render import render_text
from ramp.cli.render_bluegreen import in_window, rollback_refusal

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
BLUE, GREEN = "5ab1e00c0f", "c0ffee1234"
PRE_QUERY = 'sum(rate(http_requests_total{revision="c0ffee1234",code=~"5.."}[1m]))'


def bg_rollout(status: dict[str, Any], **strategy: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "shop", "generation": 2, "uid": "u-1"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": template("shop/checkout:2"),
            "strategy": {
                "blueGreen": {
                    "activeService": "checkout",
                    "previewService": "checkout-preview",
                    "previewReplicaCount": 2,
                    "scaleDownDelaySeconds": 300,
                    "prePromotionAnalysis": {"templates": [{"templateName": "error-rate"}]},
                    "postPromotionAnalysis": {"templates": [{"templateName": "error-rate"}]},
                    **strategy,
                }
            },
        },
        "status": {"observedGeneration": 2, **status},
    }


def measurement(analysis: str, time: str, value: str) -> dict[str, str]:
    return {
        "metric": "error-ratio",
        "analysis": analysis,
        "revision": GREEN,
        "query": PRE_QUERY,
        "time": time,
        "value": value,
        "verdict": "Pass",
        "message": "result < 0.01",
    }


PRE_PROMOTION = bg_rollout(
    {
        "phase": "Progressing",
        "message": "pre-promotion analysis: error-ratio 1/2 passes",
        "stableRevision": BLUE,
        "canaryRevision": GREEN,
        "weights": {"desired": 0, "actual": 0},
        "replicas": 4,
        "readyReplicas": 4,
        "blueGreen": {
            "activeRevision": BLUE,
            "previewRevision": GREEN,
            "waitingFor": "pre-promotion analysis: error-ratio 1/2 passes",
        },
        "conditions": [
            condition("Available", "True", "MinimumReplicasAvailable", "4 ready, 4 required"),
            condition("Progressing", "True", "RolloutInProgress", "pre-promotion analysis"),
        ],
        "measurements": [measurement("pre-promotion", "2025-03-01T11:59:50Z", "0.001")],
    }
)
RELEASE_DEPLOYMENTS = [
    deployment(BLUE, "stable", "shop/checkout:1", 4, 4),
    deployment(GREEN, "canary", "shop/checkout:2", 2, 2),
]
BG_EVENTS = [
    *EVENTS[:1],
    event(2, "2025-03-01T11:59:00Z", "RolloutStarted", f"rolling out revision {GREEN}"),
    event(3, "2025-03-01T11:59:40Z", "AnalysisStarted", "pre-promotion analysis started"),
]

GREEN_COMING_UP = bg_rollout(
    {
        "phase": "Progressing",
        "message": "switch: waiting for green 1/2 ready",
        "stableRevision": BLUE,
        "canaryRevision": GREEN,
        "replicas": 4,
        "readyReplicas": 4,
        "blueGreen": {
            "activeRevision": BLUE,
            "previewRevision": BLUE,
            "waitingFor": "green 1/2 ready",
        },
    }
)

WAITING_FOR_PROMOTE = bg_rollout(
    {
        "phase": "Paused",
        "message": "green ready and verified; waiting for promote (kubectl ramp promote, ...)",
        "stableRevision": BLUE,
        "canaryRevision": GREEN,
        "replicas": 4,
        "readyReplicas": 4,
        "blueGreen": {
            "activeRevision": BLUE,
            "previewRevision": GREEN,
            "verifiedAt": "2025-03-01T11:59:00Z",
            "waitingFor": "waiting for promote",
        },
    },
    autoPromotionEnabled=False,
)

SWITCHED = bg_rollout(
    {
        "phase": "Progressing",
        "message": "post-promotion analysis: error-ratio 1/2 passes",
        "stableRevision": BLUE,
        "canaryRevision": GREEN,
        "weights": {"desired": 100, "actual": 100},
        "replicas": 4,
        "readyReplicas": 4,
        "blueGreen": {
            "activeRevision": GREEN,
            "previewRevision": GREEN,
            "promoted": True,
            "switchedAt": "2025-03-01T11:59:30Z",
        },
        "measurements": [measurement("post-promotion", "2025-03-01T11:59:50Z", "0.002")],
    }
)
SWITCHED_DEPLOYMENTS = [
    deployment(BLUE, "stable", "shop/checkout:1", 4, 4),
    deployment(GREEN, "canary", "shop/checkout:2", 4, 4),
]

WARM = bg_rollout(
    {
        "phase": "Healthy",
        "message": f"revision {GREEN} is active; {BLUE} stays warm until 2025-03-01T12:04:30Z",
        "stableRevision": GREEN,
        "replicas": 4,
        "readyReplicas": 4,
        "blueGreen": {
            "activeRevision": GREEN,
            "previewRevision": GREEN,
            "warmRevision": BLUE,
            "warmUntil": "2025-03-01T12:04:30Z",
        },
    }
)
STEADY_DEPLOYMENTS = [
    deployment(BLUE, "stable", "shop/checkout:1", 0, 0),
    deployment(GREEN, "stable", "shop/checkout:2", 4, 4),
]

ABORTED = bg_rollout(
    {
        "phase": "Aborted",
        "message": f"aborted: rolled back to {BLUE} (ramp.dev/rollback); active {BLUE} 4/4 ready",
        "stableRevision": BLUE,
        "canaryRevision": GREEN,
        "abortedRevision": GREEN,
        "abortReason": "UserRollback",
        "abortMessage": f"rolled back to {BLUE} (ramp.dev/rollback)",
        "replicas": 4,
        "readyReplicas": 4,
        "blueGreen": {
            "activeRevision": BLUE,
            "previewRevision": BLUE,
            "abortedAt": "2025-03-01T11:59:55Z",
        },
    }
)

CASES = [
    ("bg-green-coming-up.txt", GREEN_COMING_UP, RELEASE_DEPLOYMENTS, []),
    ("bg-pre-promotion.txt", PRE_PROMOTION, RELEASE_DEPLOYMENTS, BG_EVENTS),
    ("bg-waiting-for-promote.txt", WAITING_FOR_PROMOTE, RELEASE_DEPLOYMENTS, []),
    ("bg-switched.txt", SWITCHED, SWITCHED_DEPLOYMENTS, []),
    ("bg-warm.txt", WARM, [*STEADY_DEPLOYMENTS[1:], deployment(BLUE, "stable", "x:1", 4, 4)], []),
    ("bg-aborted.txt", ABORTED, SWITCHED_DEPLOYMENTS, []),
]


@pytest.mark.parametrize(("golden", "obj", "deps", "events"), CASES, ids=[c[0] for c in CASES])
def test_blue_green_view_matches_golden(
    golden: str, obj: dict[str, Any], deps: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    check_golden(golden, render_text(obj, deps, events, NOW))


def test_mid_release_the_panel_says_what_each_service_shows_and_why_no_switch() -> None:
    text = render_text(PRE_PROMOTION, RELEASE_DEPLOYMENTS, BG_EVENTS, NOW)
    assert "Steps" not in text  # no canary steps for a blue-green Rollout
    assert f"Active    {BLUE} (blue, 4/4 ready)" in text
    assert f"Preview   {GREEN} (green, 2/2 ready) via Service checkout-preview" in text
    assert "not yet: pre-promotion analysis: error-ratio 1/2 passes" in text
    assert "4/4 active  (blue 4, green 2)" in text
    assert "pre-promotion" in text and "0.001" in text


def test_preview_shows_the_active_revision_until_green_is_ready_and_when_no_release_runs() -> None:
    coming = render_text(GREEN_COMING_UP, RELEASE_DEPLOYMENTS, [], NOW)
    assert f"{BLUE} (blue, 4/4 ready) via Service checkout-preview: the active revision " in coming
    assert "(until green has ready pods)" in coming
    assert "not yet: green 1/2 ready" in coming
    warm = render_text(WARM, STEADY_DEPLOYMENTS, [], NOW)
    assert "the active revision (no release running)" in warm


def test_rollback_window_shown_with_the_time_left_and_then_over() -> None:
    text = render_text(WARM, STEADY_DEPLOYMENTS, [], NOW)
    assert f"{BLUE} warm until 2025-03-01T12:04:30Z (in 4m30s)" in text
    assert "kubectl ramp undo checkout flips back" in text
    assert in_window(WARM, NOW)
    later = NOW + timedelta(minutes=5)
    text = render_text(WARM, STEADY_DEPLOYMENTS, [], later)
    assert "window over at 2025-03-01T12:04:30Z" in text
    assert not in_window(WARM, later)
    done = copy.deepcopy(WARM)
    done["status"]["blueGreen"] = {"activeRevision": GREEN, "previewRevision": GREEN}
    assert "no warm previous revision" in render_text(done, STEADY_DEPLOYMENTS[1:], [], NOW)
    assert not in_window(done, NOW)


def test_after_the_switch_blue_is_warm_and_the_switch_time_is_shown() -> None:
    text = render_text(SWITCHED, SWITCHED_DEPLOYMENTS, [], NOW)
    assert "switched to green at 2025-03-01T11:59:30Z (30s ago)" in text
    assert f"blue {BLUE} is warm" in text
    assert "active+preview" in text


def test_waiting_for_promote_and_the_list_and_progress_lines() -> None:
    text = render_text(WAITING_FOR_PROMOTE, RELEASE_DEPLOYMENTS, [], NOW)
    assert "not yet: waiting for promote" in text
    assert progress_line(SWITCHED) == (
        f"Progressing ready 4/4 active {GREEN}: post-promotion analysis: error-ratio 1/2 passes"
    )


def test_live_view_of_a_blue_green_rollout_fits_80_columns() -> None:
    text = render_text(PRE_PROMOTION, RELEASE_DEPLOYMENTS, BG_EVENTS, NOW, width=80, compact=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Blue/green" in text


# -- undo: the rollback token only inside the window ------------------------------------------


def test_undo_may_flip_back_only_inside_the_rollback_window() -> None:
    assert rollback_refusal(WARM, NOW) is None
    over = rollback_refusal(WARM, NOW + timedelta(minutes=5))
    assert over is not None and "the rollback window closed at 2025-03-01T12:04:30Z" in over
    done = copy.deepcopy(WARM)
    done["status"]["blueGreen"] = {"activeRevision": GREEN, "previewRevision": GREEN}
    gone = rollback_refusal(done, NOW)
    assert gone is not None and "no warm previous revision" in gone
    mid = rollback_refusal(PRE_PROMOTION, NOW)
    assert mid is not None and "has not moved" in mid and "kubectl ramp abort checkout" in mid
    after = rollback_refusal(SWITCHED, NOW)
    assert after is not None and "is on green" in after


class FakeKube:
    """The three calls ``undo`` of a blue-green Rollout makes; the operator's answer is
    ``answer`` (the Rollout after it handled the token) and its Events."""

    namespace = "shop"

    def __init__(self, rollout: dict[str, Any], events: list[dict[str, Any]]) -> None:
        self.rollout, self.events_list, self.tokens = rollout, events, []

    def get(self, name: str) -> dict[str, Any]:
        return self.rollout

    def request(self, name: str, verb: str) -> str:
        self.tokens.append(verb)
        return "t-1"

    def events(self, name: str, uid: str | None) -> list[dict[str, Any]]:
        return self.events_list


def undo_with_answer(
    monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any], events: list[dict[str, Any]]
) -> tuple[FakeKube, Commands]:
    rollout = copy.deepcopy(WARM)
    rollout["status"]["blueGreen"]["warmUntil"] = "2999-01-01T00:00:00Z"  # open, by our clock
    kube = FakeKube(rollout, events)
    args = argparse.Namespace(name="checkout", to_revision=None, wait=True, timeout=5.0)
    commands = Commands(args)
    commands._kube = kube  # type: ignore[assignment]
    monkeypatch.setattr(Commands, "_wait_for", lambda self, name, predicate, timeout: answer)
    return kube, commands


def test_undo_prints_the_operators_refusal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "rollback requested but no warm previous revision to flip back to (its window is over)"
    refused = event(9, "2025-03-01T12:00:01Z", "RollbackIgnored", reason, kind="Warning")
    kube, commands = undo_with_answer(monkeypatch, WARM, [refused])
    with pytest.raises(CliError, match=r"the operator refused the rollback: rollback requested"):
        commands.undo()
    assert kube.tokens == ["rollback"]
    assert "rollback requested (ramp.dev/rollback=t-1)" in capsys.readouterr().out


def test_undo_reports_the_flip_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flipped = copy.deepcopy(ABORTED)
    flipped["status"]["stableRevision"] = BLUE
    _, commands = undo_with_answer(monkeypatch, flipped, [])
    assert commands.undo() == 0
    out = capsys.readouterr().out
    assert "flipped back: Aborted ready 4/4 active 5ab1e00c0f" in out


def test_the_blue_green_view_shows_the_configuration_each_side_reads() -> None:
    from ramp.core.config_tracking import CONFIG_ANNOTATION

    deployments = copy.deepcopy(RELEASE_DEPLOYMENTS)
    for dep, digest in zip(deployments, ("1111111111", "2222222222"), strict=True):
        dep["spec"]["template"].setdefault("metadata", {})["annotations"] = {
            CONFIG_ANNOTATION: f'{{"ConfigMap/settings":"settings-{digest}"}}'
        }
    text = render_text(PRE_PROMOTION, deployments, BG_EVENTS, NOW)
    assert "CONFIG" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.split()[:1]}
    assert "ConfigMap settings-1111111111" in lines[BLUE]
    assert "ConfigMap settings-2222222222" in lines[GREEN]
    assert "CONFIG" not in render_text(PRE_PROMOTION, RELEASE_DEPLOYMENTS, BG_EVENTS, NOW)
