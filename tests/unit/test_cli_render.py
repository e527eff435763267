"""The ``kubectl ramp get NAME [--watch]`` view rendered to text, against golden snapshots.

The objects are built by hand in the shape the API server returns them (camelCase, as in
a captured ``kubectl get -o json``), with the clock fixed, so the snapshot covers every
field of the view: steps with the current one marked, desired and actual weight, ready
pods per revision, the latest measurements, conditions and recent Events.
Regenerate after an intended change with ``RAMP_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ramp.api.labels import revision_hash
from ramp.cli.facts import outcome, progress_line
from ramp.cli.render import render_text, rollouts_table, to_text
from ramp.cli.templates import original_template

GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = bool(os.environ.get("RAMP_UPDATE_GOLDEN"))
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
STABLE, CANARY = "5ab1e00c0f", "c0ffee1234"
QUERY = (
    'sum(rate(http_requests_total{namespace="shop",rollout="checkout",revision="c0ffee1234",'
    'code=~"5.."}[1m])) / sum(rate(http_requests_total{namespace="shop",rollout="checkout",'
    'revision="c0ffee1234"}[1m]))'
)


def template(image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "checkout"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def condition(ctype: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-03-01T11:58:00Z",
    }


def measurement(time: str, value: str, verdict: str, message: str) -> dict[str, str]:
    return {
        "metric": "error-ratio",
        "analysis": "step-3",
        "revision": CANARY,
        "query": QUERY,
        "time": time,
        "value": value,
        "verdict": verdict,
        "message": message,
    }


def deployment(revision: str, role: str, image: str, replicas: int, ready: int) -> dict[str, Any]:
    pod = template(image)
    pod["metadata"]["labels"]["ramp.dev/revision"] = revision
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"checkout-{revision}",
            "namespace": "shop",
            "generation": 3,
            "labels": {
                "ramp.dev/rollout": "checkout",
                "ramp.dev/revision": revision,
                "ramp.dev/role": role,
            },
        },
        "spec": {"replicas": replicas, "template": pod},
        "status": {"observedGeneration": 3, "replicas": replicas, "readyReplicas": ready},
    }


def event(n: int, time: str, reason: str, message: str, kind: str = "Normal") -> dict[str, Any]:
    return {
        "metadata": {"name": f"checkout.{n:04x}", "namespace": "shop", "resourceVersion": str(n)},
        "involvedObject": {"kind": "Rollout", "name": "checkout", "uid": "u-1"},
        "type": kind,
        "reason": reason,
        "message": message,
        "firstTimestamp": time,
        "lastTimestamp": time,
    }


def rollout(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "shop", "generation": 2, "uid": "u-1"},
        "spec": {
            "replicas": 10,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": template("shop/checkout:2"),
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 20},
                        {"pause": {"duration": "30s"}},
                        {"analysis": {"templates": [{"templateName": "error-rate"}]}},
                        {"setWeight": 50},
                        {"pause": {}},
                        {"setWeight": 100},
                    ]
                }
            },
        },
        "status": {"observedGeneration": 2, **status},
    }


EVENTS = [
    event(1, "2025-03-01T11:50:00Z", "Initialized", f"revision {STABLE} is stable"),
    event(
        2,
        "2025-03-01T11:58:00Z",
        "RolloutStarted",
        f"rolling out revision {CANARY} (stable {STABLE}), 6 steps",
    ),
    event(3, "2025-03-01T11:58:02Z", "StepCompleted", "step 1/6 (setWeight 20) complete"),
    event(4, "2025-03-01T11:58:32Z", "StepCompleted", "step 2/6 (pause 30s) complete"),
]

IN_PROGRESS = rollout(
    {
        "phase": "Progressing",
        "message": "step 3 analysis: error-ratio 2/3 passes",
        "stableRevision": STABLE,
        "canaryRevision": CANARY,
        "currentStepIndex": 2,
        "stepStartedAt": "2025-03-01T11:58:32Z",
        "weights": {"desired": 20, "actual": 20},
        "replicas": 10,
        "readyReplicas": 10,
        "canaryReadyReplicas": 2,
        "stableReadyReplicas": 8,
        "conditions": [
            condition("Available", "True", "MinimumReplicasAvailable", "10 ready, 10 required"),
            condition("Progressing", "True", "RolloutInProgress", "step 3 analysis"),
            condition("Paused", "False", "NotPaused"),
            condition("Healthy", "False", "NotHealthy", "step 3 analysis"),
            condition("Aborted", "False", "NotAborted"),
        ],
        "measurements": [
            measurement("2025-03-01T11:59:40Z", "0.0012", "Pass", "result < 0.01"),
            measurement("2025-03-01T11:59:50Z", "0.0009", "Pass", "result < 0.01"),
        ],
    }
)
IN_PROGRESS_DEPLOYMENTS = [
    deployment(STABLE, "stable", "shop/checkout:1", 8, 8),
    deployment(CANARY, "canary", "shop/checkout:2", 2, 2),
]

ABORTED = rollout(
    {
        "phase": "Aborted",
        "message": (
            f"aborted: step 3 analysis: error-ratio is 0.25 (failureCondition result >= 0.05); "
            f"stable {STABLE} 10/10 ready; retry with ramp.dev/retry or change the template"
        ),
        "stableRevision": STABLE,
        "canaryRevision": CANARY,
        "abortedRevision": CANARY,
        "abortReason": "AnalysisFailed",
        "abortMessage": "step 3 analysis: error-ratio is 0.25 (failureCondition result >= 0.05)",
        "currentStepIndex": 2,
        "weights": {"desired": 20, "actual": 0},
        "replicas": 10,
        "readyReplicas": 10,
        "canaryReadyReplicas": 0,
        "stableReadyReplicas": 10,
        "conditions": [
            condition("Available", "True", "MinimumReplicasAvailable", "10 ready, 10 required"),
            condition("Progressing", "False", "RolloutAborted", "step 3 analysis failed"),
            condition("Healthy", "False", "NotHealthy", "aborted"),
            condition("Aborted", "True", "AnalysisFailed", "error-ratio is 0.25"),
        ],
        "measurements": [
            measurement("2025-03-01T11:59:40Z", "0.0012", "Pass", "result < 0.01"),
            measurement("2025-03-01T11:59:50Z", "0.25", "Fail", "result >= 0.05"),
        ],
    }
)
ABORTED_DEPLOYMENTS = [
    deployment(STABLE, "stable", "shop/checkout:1", 10, 10),
    deployment(CANARY, "canary", "shop/checkout:2", 0, 0),
]
ABORTED_EVENTS = [
    *EVENTS,
    event(
        5,
        "2025-03-01T11:59:50Z",
        "Aborted",
        f"rollout of {CANARY} aborted: step 3 analysis: error-ratio is 0.25",
        kind="Warning",
    ),
]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"view differs from {path} (RAMP_UPDATE_GOLDEN=1 to update)"


def test_view_of_a_rollout_in_progress() -> None:
    text = render_text(IN_PROGRESS, IN_PROGRESS_DEPLOYMENTS, EVENTS, NOW)
    check_golden("in-progress.txt", text)
    # What the snapshot must show, said plainly:
    assert "▶ 3 analysis error-rate" in text  # the current step, marked
    assert "✔ 2 pause 30s" in text and "○ 4 setWeight 50" in text
    assert "desired 20%  actual 20%" in text
    assert "stable 8, canary 2" in text
    assert "0.0009" in text and "Pass" in text


def test_view_of_an_aborted_rollout() -> None:
    text = render_text(ABORTED, ABORTED_DEPLOYMENTS, ABORTED_EVENTS, NOW)
    check_golden("aborted.txt", text)
    assert "Aborted" in text
    assert "✖ 3 analysis error-rate" in text  # where it stopped
    assert "AnalysisFailed: step 3 analysis: error-ratio is 0.25" in text
    assert "0.25" in text and "Fail" in text


def test_view_without_status_or_children() -> None:
    bare = copy.deepcopy(IN_PROGRESS)
    del bare["status"]
    text = render_text(bare)
    assert "Unknown" in text and "· 1 setWeight 20" in text


def test_view_shows_the_configuration_each_revision_reads() -> None:
    from ramp.core.config_tracking import CONFIG_ANNOTATION

    deployments = copy.deepcopy(IN_PROGRESS_DEPLOYMENTS)
    for dep, digest in zip(deployments, ("1111111111", "2222222222"), strict=True):
        dep["spec"]["template"].setdefault("metadata", {})["annotations"] = {
            CONFIG_ANNOTATION: f'{{"ConfigMap/settings":"settings-{digest}"}}'
        }
    text = render_text(IN_PROGRESS, deployments, EVENTS, NOW)
    assert "CONFIG" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.split()[:1]}
    assert "ConfigMap settings-1111111111" in lines[STABLE]
    assert "ConfigMap settings-2222222222" in lines[CANARY]
    assert "CONFIG" not in render_text(IN_PROGRESS, IN_PROGRESS_DEPLOYMENTS, EVENTS, NOW)


def test_list_view() -> None:
    text = to_text(rollouts_table([IN_PROGRESS, ABORTED]))
    check_golden("list.txt", text)


def test_events_are_ordered_by_time_then_by_the_api_servers_order() -> None:
    same_second = [
        event(9, "2025-03-01T11:58:00Z", "StepCompleted", "second"),
        event(8, "2025-03-01T11:58:00Z", "RolloutStarted", "first"),
    ]
    text = render_text(IN_PROGRESS, [], same_second, NOW)
    assert text.index("RolloutStarted") < text.index("StepCompleted")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (IN_PROGRESS, None),
        (ABORTED, "Aborted"),
        (rollout({"phase": "Healthy", "stableRevision": STABLE}), "Healthy"),
        (rollout({"phase": "Degraded"}), "Degraded"),
        (rollout({"phase": "Healthy", "observedGeneration": 1}), None),  # spec not seen yet
    ],
    ids=["progressing", "aborted", "healthy", "degraded", "stale-status"],
)
def test_outcome_for_status(obj: dict[str, Any], expected: str | None) -> None:
    assert outcome(obj) == expected


def test_progress_line() -> None:
    assert progress_line(IN_PROGRESS) == (
        "Progressing step 3/6 weight 20/20 ready 10/10: step 3 analysis: error-ratio 2/3 passes"
    )


def test_progress_line_of_a_routed_canary_shows_each_route_desired_and_acknowledged() -> None:
    routed = copy.deepcopy(IN_PROGRESS)
    routed["status"]["routes"] = [
        {"name": "checkout", "desired": 5, "acknowledged": 5},
        {"name": "checkout-internal", "desired": 5, "acknowledged": 0, "message": "waiting"},
    ]
    assert progress_line(routed) == (
        "Progressing step 3/6 weight 20/20 route checkout 5/5 route checkout-internal 5/0 "
        "ready 10/10: step 3 analysis: error-ratio 2/3 passes"
    )


# -- undo: the exact template back from a defaulted Deployment ------------------------------

DEFAULTED_BY_THE_API_SERVER = {
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 30,
    "dnsPolicy": "ClusterFirst",
    "securityContext": {},
    "schedulerName": "default-scheduler",
}
CONTAINER_DEFAULTED = {
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
    "imagePullPolicy": "IfNotPresent",
}


def as_stored(original: dict[str, Any]) -> dict[str, Any]:
    """The pod template as a child Deployment stores it (label added, defaults filled)."""
    stored = copy.deepcopy(original)
    stored["metadata"]["labels"]["ramp.dev/revision"] = revision_hash(original)
    stored["spec"].update(DEFAULTED_BY_THE_API_SERVER)
    for c in stored["spec"]["containers"]:
        for key, value in CONTAINER_DEFAULTED.items():
            c.setdefault(key, value)
    return stored


@pytest.mark.parametrize(
    "original",
    [
        template("shop/checkout:1"),
        # The user wrote a default value: it must stay.
        {
            "metadata": {"labels": {"app": "a"}},
            "spec": {
                "restartPolicy": "Always",
                "containers": [
                    {"name": "app", "image": "x:1", "imagePullPolicy": "IfNotPresent"},
                    {"name": "side", "image": "y:2", "ports": [{"containerPort": 80}]},
                ],
            },
        },
    ],
    ids=["no-defaults-written", "some-defaults-written"],
)
def test_undo_recovers_the_exact_template(original: dict[str, Any]) -> None:
    stored = as_stored(original)
    assert revision_hash(stored) != revision_hash(original)
    assert original_template(stored, revision_hash(original)) == original


def test_undo_refuses_a_template_it_cannot_prove() -> None:
    stored = as_stored(template("x:1"))
    stored["spec"]["containers"][0]["image"] = "x:2"
    assert original_template(stored, revision_hash(template("x:1"))) is None


def test_live_view_keeps_each_condition_and_event_on_one_line() -> None:
    """The live view must fit a terminal: long messages are cut, not wrapped."""
    width = 80
    text = render_text(
        ABORTED, ABORTED_DEPLOYMENTS, ABORTED_EVENTS, NOW, width=width, compact=width
    )
    check_golden("aborted-compact-80.txt", text)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    events = lines[lines.index("Events") + 3 :]
    assert len(events) == len(ABORTED_EVENTS), events
    assert events[-1].rstrip().endswith("…")
